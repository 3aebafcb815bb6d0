// fit / fit_batched with the GIL released. The engine calls back after every
// iteration; there we take the GIL back to notice Ctrl-C (a pending
// KeyboardInterrupt is thrown through the engine, which stops between
// iterations) and to feed the optional Python progress callback.
#include "array_conversion.hpp"
#include "bindings.hpp"

#include <flashkmeans/kmeans.hpp>

#include <nanobind/stl/optional.h>
#include <nanobind/stl/vector.h>

#include <cstdio>
#include <memory>
#include <vector>

namespace nb = nanobind;

namespace flashkmeans::python {
namespace {

nb::dict stats_dict(const IterationStats& s) {
    nb::dict d;
    d["obj"] = s.obj;
    d["time"] = s.time;
    d["time_search"] = s.time_search;
    d["imbalance_factor"] = s.imbalance_factor;
    d["nsplit"] = s.nsplit;
    return d;
}

/// (B, k, d) float32 numpy array that owns the result's centroid vector.
nb::object centroids_array(KMeansResult& r) {
    auto* owned = new std::vector<float>(std::move(r.centroids));
    nb::capsule owner(owned, [](void* p) noexcept { delete static_cast<std::vector<float>*>(p); });
    const size_t shape[3] = {size_t(r.batch), size_t(r.k), size_t(r.d)};
    return nb::cast(nb::ndarray<nb::numpy, float>(owned->data(), 3, shape, owner));
}

nb::dict run_fit(const InputArray& x, int64_t k, KMeansParams params,
                 const std::optional<InputArray>& weights,
                 const std::optional<InputArray>& init_centroids, bool batched,
                 nb::object callback) {
    const ArrayView xv = to_view(x, "x");
    const ArrayView wv = to_optional_view(weights, "weights");
    const ArrayView iv = to_optional_view(init_centroids, "init_centroids");
    params.on_iteration = [&callback](int redo, int it, const IterationStats& s) {
        nb::gil_scoped_acquire gil;
        if (PyErr_CheckSignals() != 0) throw nb::python_error();
        if (!callback.is_none()) callback(redo, it, stats_dict(s));
    };
    KMeansResult r;
    {
        nb::gil_scoped_release nogil;
        r = batched ? fit_batched(xv, k, params, wv, iv) : fit(xv, k, params, wv, iv);
        if (params.verbose) std::fflush(stdout);  // C and Python buffer stdout separately
    }
    nb::list stats;
    for (const auto& per_problem : r.iteration_stats) {
        nb::list l;
        for (const IterationStats& s : per_problem) l.append(stats_dict(s));
        stats.append(l);
    }
    nb::dict out;
    out["obj"] = nb::cast(r.obj);
    out["iteration_stats"] = stats;
    out["backend"] = r.backend;
    out["centroids"] = centroids_array(r);
    return out;
}

}  // namespace

void bind_fit(nb::module_& m) {
    m.def("fit", &run_fit, nb::arg("x"), nb::arg("k"), nb::arg("params"),
          nb::arg("weights").none() = nb::none(), nb::arg("init_centroids").none() = nb::none(),
          nb::arg("batched") = false, nb::arg("callback").none() = nb::none(),
          "Engine fit of x (n, d), or (B, n, d) with batched=True. Returns a dict with "
          "centroids (B, k, d) float32 numpy, obj (list of B), iteration_stats "
          "(B lists of dicts) and backend ('cpu' or 'cuda').");
}

}  // namespace flashkmeans::python
