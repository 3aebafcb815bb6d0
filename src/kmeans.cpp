// Public entry points: validate, pick a backend, hand over to the driver.
#include <flashkmeans/kmeans.hpp>

#include "backend.hpp"
#include "checks.hpp"
#include "fit_setup.hpp"
#include "lloyd.hpp"

namespace flashkmeans {
namespace detail {

std::unique_ptr<Backend> choose_backend(const ArrayView& x, const KMeansParams& p) {
    const DeviceChoice choice = p.device;
    const int gpu_id = p.gpu_id;
    const bool have_gpu = detail::cuda_device_count() > 0;
    if (choice == DeviceChoice::cpu) {
        FLASHKMEANS_CHECK(!x.on_device(), "x: lives on cuda:", x.device_id,
                          " but device=cpu was requested; pass a host array or device=cuda");
        return detail::make_cpu_backend(p.faiss_blas_blocking);
    }
    if (choice == DeviceChoice::cuda || x.on_device()) {
#ifdef FLASHKMEANS_WITH_CUDA
        FLASHKMEANS_CHECK(have_gpu, "device: cuda requested (or x is a GPU array) but no CUDA GPU is visible");
#else
        FLASHKMEANS_CHECK(have_gpu, "device: cuda requested (or x is a GPU array) but this build has no CUDA backend");
#endif
        return detail::make_cuda_backend(x.on_device() ? x.device_id : gpu_id, p.device_memory_budget,
                                         p.deterministic);
    }
    if (have_gpu) return detail::make_cuda_backend(gpu_id, p.device_memory_budget, p.deterministic);
    return detail::make_cpu_backend(p.faiss_blas_blocking);
}

void validate_fit(const ArrayView& x, int64_t k, const KMeansParams& p,
                  const ArrayView& weights, const ArrayView& init, bool batched, bool shard) {
    const int nd = batched ? 3 : 2;
    detail::check_data_array("x", x, nd, shard ? nd - 2 : -1);
    const int64_t B = batched ? x.shape[0] : 1;
    const int64_t n = x.shape[nd - 2], d = x.shape[nd - 1];
    FLASHKMEANS_CHECK(k > 0, "k: must be positive, got ", k);
    if (!shard)
        FLASHKMEANS_CHECK(n >= k, "n: the number of training points (", n,
                          ") must be at least the number of clusters k (", k, ")");
    FLASHKMEANS_CHECK(n <= INT32_MAX, "n: at most 2^31-1 points per problem, got ", n);
    FLASHKMEANS_CHECK(p.niter >= 0, "niter: must be >= 0, got ", p.niter);
    FLASHKMEANS_CHECK(p.nredo >= 1, "nredo: must be >= 1, got ", p.nredo);
    FLASHKMEANS_CHECK(p.max_points_per_centroid >= 0,
                      "max_points_per_centroid: must be >= 0, got ", p.max_points_per_centroid);
    if (!weights.empty()) {
        detail::check_data_array("weights", weights, batched ? 2 : 1, shard ? (batched ? 1 : 0) : -1);
        FLASHKMEANS_CHECK(weights.dtype == DType::f32, "weights: expected float32, got ",
                          weights.describe());
        FLASHKMEANS_CHECK(weights.contiguous(), "weights: must be contiguous, got ",
                          weights.describe());
        FLASHKMEANS_CHECK(weights.memory == x.memory || !x.on_device(),
                          "weights: must live where x lives (", x.describe(), "), got ",
                          weights.describe());
        FLASHKMEANS_CHECK(weights.shape[weights.ndim - 1] == n && (!batched || weights.shape[0] == B),
                          "weights: expected shape ", batched ? "(B, n)" : "(n,)", " matching x ",
                          x.describe(), ", got ", weights.describe());
    }
    if (!init.empty()) {
        detail::check_data_array("init_centroids", init, nd);
        FLASHKMEANS_CHECK(init.dtype == DType::f32 && !init.on_device() && init.contiguous(),
                          "init_centroids: expected a contiguous float32 host array, got ",
                          init.describe());
        FLASHKMEANS_CHECK(init.shape[nd - 1] == d, "init_centroids: dimension ",
                          init.shape[nd - 1], " differs from x's d = ", d);
        FLASHKMEANS_CHECK(init.shape[nd - 2] <= k, "init_centroids: ", init.shape[nd - 2],
                          " centroids given, more than k = ", k);
        FLASHKMEANS_CHECK(!batched || init.shape[0] == B, "init_centroids: batch ",
                          init.shape[0], " differs from x's batch ", B);
    }
    if (p.check_finite) {
        detail::check_finite("x", x);
        if (!weights.empty()) detail::check_finite("weights", weights);
    }
}

std::vector<int> fit_gpus(const ArrayView& x, const KMeansParams& p) {
    FLASHKMEANS_CHECK(p.num_gpus >= 0, "num_gpus: must be >= 0 (0: every visible GPU), got ",
                      p.num_gpus);
    if (x.on_device() || p.device == DeviceChoice::cpu || p.num_gpus == 1) return {p.gpu_id};
    const int visible = cuda_device_count();
    if (visible < 2) return {p.gpu_id};
    FLASHKMEANS_CHECK(p.gpu_id >= 0 && p.gpu_id < visible, "gpu_id: ", p.gpu_id,
                      " requested but ", visible, " CUDA device(s) are visible");
    const int avail = visible - p.gpu_id;
    FLASHKMEANS_CHECK(p.num_gpus <= avail, "num_gpus: ", p.num_gpus, " requested from gpu_id ",
                      p.gpu_id, " but only ", avail, " GPU(s) are visible from there");
    std::vector<int> gpus(size_t(p.num_gpus == 0 ? avail : p.num_gpus));
    for (size_t i = 0; i < gpus.size(); i++) gpus[i] = p.gpu_id + int(i);
    return gpus;
}

}  // namespace detail

namespace {

KMeansResult fit_impl(const ArrayView& x, int64_t k, const KMeansParams& p,
                      const ArrayView& weights, const ArrayView& init, bool batched) {
    detail::validate_fit(x, k, p, weights, init, batched, false);
    const std::vector<int> gpus = detail::fit_gpus(x, p);
    if (gpus.size() > 1) return detail::fit_multi_gpu(x, k, p, weights, init, gpus);
    auto backend = detail::choose_backend(x, p);
    return detail::run_lloyd(*backend, {x, weights, init, k}, p);
}

}  // namespace

KMeansResult fit(const ArrayView& x, int64_t k, const KMeansParams& params,
                 const ArrayView& weights, const ArrayView& init_centroids) {
    return fit_impl(x, k, params, weights, init_centroids, false);
}

KMeansResult fit_batched(const ArrayView& x, int64_t k, const KMeansParams& params,
                         const ArrayView& weights, const ArrayView& init_centroids) {
    return fit_impl(x, k, params, weights, init_centroids, true);
}

void assign(const ArrayView& x, const ArrayView& c, int64_t topk, int64_t* labels,
            float* distances, const AssignParams& p) {
    detail::check_data_array("x", x, 2);
    detail::check_data_array("centroids", c, 2);
    FLASHKMEANS_CHECK(x.shape[1] == c.shape[1], "centroids: dimension ", c.shape[1],
                      " differs from x's d = ", x.shape[1]);
    FLASHKMEANS_CHECK(topk >= 1, "topk: must be >= 1, got ", topk);
    FLASHKMEANS_CHECK(labels != nullptr, "labels: null output pointer");
    const bool gpu = p.device == DeviceChoice::cuda || x.on_device() ||
                     (p.device == DeviceChoice::automatic && detail::cuda_device_count() > 0);
    if (gpu) {
        FLASHKMEANS_CHECK(p.device != DeviceChoice::cpu, "x: lives on the GPU but device=cpu");
        detail::cuda_search(x, c, topk, p.metric, p.precision,
                            x.on_device() ? x.device_id : p.gpu_id, labels, distances);
    } else {
        FLASHKMEANS_CHECK(!c.on_device(), "centroids: lives on the GPU but x is a host array");
        detail::cpu_search(x, c, topk, p.metric, labels, distances);
    }
}

bool cuda_available() { return detail::cuda_device_count() > 0; }

}  // namespace flashkmeans
