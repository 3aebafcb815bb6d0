// KMeansParams and its enums, field for field, so that the Python layer sets
// the engine's parameters by name and the defaults live in one place (params.hpp).
#include "bindings.hpp"

#include <flashkmeans/params.hpp>

namespace nb = nanobind;

namespace flashkmeans::python {

void bind_params(nb::module_& m) {
    nb::enum_<Metric>(m, "Metric")
        .value("L2", Metric::L2)
        .value("inner_product", Metric::inner_product);
    nb::enum_<Precision>(m, "Precision")
        .value("automatic", Precision::automatic)
        .value("exact", Precision::exact)
        .value("tf32", Precision::tf32)
        .value("fp16", Precision::fp16)
        .value("bf16", Precision::bf16);
    nb::enum_<DeviceChoice>(m, "DeviceChoice")
        .value("automatic", DeviceChoice::automatic)
        .value("cpu", DeviceChoice::cpu)
        .value("cuda", DeviceChoice::cuda);

    // on_iteration and permutation are not exposed: the fit binding installs
    // its own on_iteration (signals, progress), and the permutation is Faiss's.
    nb::class_<KMeansParams>(m, "KMeansParams")
        .def(nb::init<>())
        .def_rw("niter", &KMeansParams::niter)
        .def_rw("nredo", &KMeansParams::nredo)
        .def_rw("verbose", &KMeansParams::verbose)
        .def_rw("spherical", &KMeansParams::spherical)
        .def_rw("int_centroids", &KMeansParams::int_centroids)
        .def_rw("frozen_centroids", &KMeansParams::frozen_centroids)
        .def_rw("min_points_per_centroid", &KMeansParams::min_points_per_centroid)
        .def_rw("max_points_per_centroid", &KMeansParams::max_points_per_centroid)
        .def_rw("seed", &KMeansParams::seed)
        .def_rw("metric", &KMeansParams::metric)
        .def_rw("precision", &KMeansParams::precision)
        .def_rw("device", &KMeansParams::device)
        .def_rw("gpu_id", &KMeansParams::gpu_id)
        .def_rw("num_gpus", &KMeansParams::num_gpus)
        .def_rw("check_finite", &KMeansParams::check_finite)
        .def_rw("device_memory_budget", &KMeansParams::device_memory_budget)
        .def_rw("deterministic", &KMeansParams::deterministic)
        .def_rw("faiss_blas_blocking", &KMeansParams::faiss_blas_blocking)
        .def_rw("early_stop_threshold", &KMeansParams::early_stop_threshold);
}

}  // namespace flashkmeans::python
