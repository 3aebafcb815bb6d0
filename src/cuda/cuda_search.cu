// Top-k search of points against centroids on the GPU (IVF probing, faiss
// quantizer search). Device memory: the points (unless used in place), their
// norms, the centroids' compute copy and norms, and (n, topk) keys + labels
// when x lives on the host; nothing of size n x k.
#include "backend.hpp"

#include "kernels/assign.cuh"
#include "kernels/norms.cuh"
#include "src/cuda/cuda_check.hpp"
#include "src/cuda/device_data.hpp"

namespace flashkmeans::detail {

void cuda_search(const ArrayView& x, const ArrayView& c, int64_t topk, Metric metric,
                 Precision precision, int gpu_id, int64_t* labels, float* distances) {
    if (topk < 1 || topk > kernels::kMaxTopk)
        throw Error("flashkmeans: GPU search supports 1 <= k <= " +
                    std::to_string(kernels::kMaxTopk) + " results per point, got " +
                    std::to_string(topk));
    if (labels == nullptr) throw Error("flashkmeans: search needs a labels array");
    if (x.ndim != 2 || c.ndim != 2)
        throw Error("flashkmeans: search wants x (n, d) and centroids (k, d), got " +
                    describe_view(x) + " and " + describe_view(c));
    const int64_t d = x.shape[1];
    if (d < 1) throw Error("flashkmeans: search with d = 0");
    const int64_t n = check_points_view(x, 1, d, gpu_id, "x");
    const int64_t k = check_points_view(c, 1, d, gpu_id, "centroids");
    if (n == 0) return;
    if (k < 1) throw Error("flashkmeans: search against 0 centroids");
    if (k >= (int64_t(1) << 31)) throw Error("flashkmeans: too many centroids");
    if (cuda_device_count() <= gpu_id)
        throw Error("flashkmeans: GPU " + std::to_string(gpu_id) + " is not visible");

    DeviceGuard guard(gpu_id);
    cudaStream_t stream = nullptr;
    FK_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    struct StreamOwner {
        cudaStream_t s;
        ~StreamOwner() {
            (void)cudaStreamSynchronize(s);
            (void)cudaStreamDestroy(s);
        }
    } owner{stream};

    const ComputePlan plan = plan_compute(x.dtype, precision);
    DeviceRows xd, cd;
    upload_rows(x, 1, n, d, {}, nullptr, plan.store, gpu_id, stream, xd);
    // Norms of the centroids as the kernel sees them (rounded to the storage type).
    upload_rows(c, 1, k, d, {}, nullptr, plan.store, gpu_id, stream, cd);
    const bool ip = metric == Metric::inner_product;
    DeviceBuffer xnorm(size_t(n) * 4), cnorm(size_t(k) * 4);
    kernels::row_norms(xd.ref(), 1, n, d, xnorm.get<float>(), stream);
    kernels::row_norms(cd.ref(), 1, k, d, cnorm.get<float>(), stream);

    if (topk == 1) {
        // One nearest centroid: the fused argmin kernel (FlashAssign), not
        // the top-k merge, which costs several times more per distance.
        DeviceBuffer lab32(size_t(n) * 4), dist_buf, labs64,
                partial(size_t(kernels::stream_grid_x(n)) * 8);
        float* dist = distances && x.on_device() ? distances : nullptr;
        if (distances && !dist) {
            dist_buf.reset(size_t(n) * 4);
            dist = dist_buf.get<float>();
        }
        kernels::StreamGeom geo;
        geo.x = xd.operand(n, d);
        geo.c = cd.operand(k, d);
        kernels::AssignArgs a{xnorm.get<float>(), cnorm.get<float>(), n, k, ip,
                              lab32.get<int32_t>(), dist, partial.get<double>()};
        kernels::launch_assign(geo, 1, plan.math, a, stream);
        int64_t* out = labels;
        if (!x.on_device()) {
            labs64.reset(size_t(n) * 8);
            out = labs64.get<int64_t>();
        }
        kernels::widen_labels(lab32.get<int32_t>(), n, out, stream);
        if (!x.on_device()) {
            FK_CUDA_CHECK(cudaMemcpyAsync(labels, out, size_t(n) * 8, cudaMemcpyDeviceToHost, stream));
            if (distances)
                FK_CUDA_CHECK(cudaMemcpyAsync(distances, dist, size_t(n) * 4,
                                              cudaMemcpyDeviceToHost, stream));
        }
        FK_CUDA_CHECK(cudaStreamSynchronize(stream));
        return;
    }

    const size_t cells = size_t(n * topk);
    DeviceBuffer keys_buf, labels_buf;
    float* keys = nullptr;
    int64_t* labs = nullptr;
    if (x.on_device()) {
        labs = labels;
        if (distances) keys = distances;
    }
    if (!keys) {
        keys_buf.reset(cells * 4);
        keys = keys_buf.get<float>();
    }
    if (!labs) {
        labels_buf.reset(cells * 8);
        labs = labels_buf.get<int64_t>();
    }
    kernels::fill_topk(keys, labs, int64_t(cells), stream);
    kernels::StreamGeom geo;
    geo.x = xd.operand(n, d);
    geo.c = cd.operand(k, d);
    kernels::TopkArgs a{xnorm.get<float>(), cnorm.get<float>(), ip, int(topk), keys, labs};
    kernels::launch_topk(geo, plan.math, a, stream);
    kernels::finish_topk(keys, int64_t(cells), ip, stream);
    if (!x.on_device()) {
        FK_CUDA_CHECK(cudaMemcpyAsync(labels, labs, cells * 8, cudaMemcpyDeviceToHost, stream));
        if (distances)
            FK_CUDA_CHECK(cudaMemcpyAsync(distances, keys, cells * 4, cudaMemcpyDeviceToHost,
                                          stream));
    }
    FK_CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace flashkmeans::detail
