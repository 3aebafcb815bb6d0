// Top-k assignment into output arrays that the Python layer allocates with
// the input's own framework and device, so results stay where x lives.
#include "array_conversion.hpp"
#include "bindings.hpp"

#include <flashkmeans/kmeans.hpp>

#include <nanobind/stl/optional.h>

#include <string>

namespace nb = nanobind;

namespace flashkmeans::python {
namespace {

template <class T>
using Output = nb::ndarray<T, nb::c_contig>;

template <class T>
void check_output(const Output<T>& out, const ArrayView& x, int64_t topk, const char* name) {
    const bool on_device = out.device_type() == nb::device::cuda::value;
    if (int64_t(out.size()) != x.shape[0] * topk || on_device != x.on_device() ||
        (on_device && out.device_id() != x.device_id))
        throw Error(std::string(name) + ": expected " + std::to_string(x.shape[0] * topk) +
                    " elements in the memory of x " + x.describe());
}

void run_assign(const InputArray& x, const InputArray& centroids, int64_t topk,
                Output<int64_t> labels, std::optional<Output<float>> distances,
                AssignParams params) {
    const ArrayView xv = to_view(x, "x");
    const ArrayView cv = to_view(centroids, "centroids");
    if (xv.ndim != 2) throw Error("x: expected 2 dimensions, got " + xv.describe());
    check_output(labels, xv, topk, "labels");
    if (distances) check_output(*distances, xv, topk, "distances");
    nb::gil_scoped_release nogil;
    assign(xv, cv, topk, labels.data(), distances ? distances->data() : nullptr, params);
}

}  // namespace

void bind_assign(nb::module_& m) {
    nb::class_<AssignParams>(m, "AssignParams")
        .def(nb::init<>())
        .def_rw("metric", &AssignParams::metric)
        .def_rw("precision", &AssignParams::precision)
        .def_rw("device", &AssignParams::device)
        .def_rw("gpu_id", &AssignParams::gpu_id);
    m.def("assign", &run_assign, nb::arg("x"), nb::arg("centroids"), nb::arg("topk"),
          nb::arg("labels").noconvert(), nb::arg("distances").noconvert().none(),
          nb::arg("params"),
          "Writes the topk nearest centroids of each row of x (n, d) into labels "
          "(n, topk) int64 and, unless None, distances (n, topk) float32, best first.");
}

}  // namespace flashkmeans::python
