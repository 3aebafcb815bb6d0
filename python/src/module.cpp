// flashkmeans._flashkmeans: the thin layer between Python arrays and the
// engine. Everything user-facing (keyword checking, framework handling,
// faiss/flash-kmeans compatibility) lives in the Python package.
#include "array_conversion.hpp"
#include "bindings.hpp"

#include <flashkmeans/kmeans.hpp>

#include <nanobind/stl/string.h>

namespace nb = nanobind;
using namespace flashkmeans;

NB_MODULE(_flashkmeans, m) {
    // Translators are tried newest first: the subclass is registered second.
    static nb::exception<Error> error(m, "Error", PyExc_RuntimeError);
    static nb::exception<OutOfMemoryError> oom(m, "OutOfMemoryError", error);

    python::bind_params(m);
    python::bind_fit(m);
    python::bind_assign(m);

    m.def("cuda_available", &cuda_available,
          "True when this build has the CUDA backend and a GPU is visible.");
    // What the engine would see of an array; the tests compare its data
    // pointer with the framework's to prove that no copy is made.
    m.def("view_info", [](const python::InputArray& a) {
        const ArrayView v = python::to_view(a, "x");
        nb::dict d;
        d["data"] = reinterpret_cast<uintptr_t>(v.data);
        d["describe"] = v.describe();
        d["contiguous"] = v.contiguous();
        return d;
    });
}
