// Squared norms, row copies with gather and type conversion, and centroid
// post-processing. Memory-bound helpers run once per fit or once per
// iteration on k rows; simple grid-stride loops.
#include "kernels/norms.cuh"

#include <algorithm>
#include <cmath>

#include "kernels/common.cuh"
#include "src/cuda/cuda_check.hpp"

namespace flashkmeans::kernels {

namespace {

unsigned grid_for(int64_t work, int per_block) {
    return unsigned(std::max<int64_t>(1, std::min<int64_t>((work + per_block - 1) / per_block, 65535)));
}

/// One warp a row; float accumulation like Faiss's fvec_norm_L2sqr.
template <class T>
__global__ void row_norms_kernel(const T* x, int64_t ld, int64_t bstride, int batch,
                                 int64_t rows, int64_t d, float* out) {
    const int lane = threadIdx.x & 31;
    const int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
    for (int64_t r = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32; r < batch * rows;
         r += warps) {
        const int64_t b = r / rows, i = r - b * rows;
        const T* row = x + b * bstride + i * ld;
        float s = 0.f;
        for (int64_t j = lane; j < d; j += 32) {
            const float v = to_float(row[j]);
            s = fmaf(v, v, s);
        }
        for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
        if (lane == 0) out[r] = s;
    }
}

/// norms (null: none): ||dst row||^2 from the stored (converted) values,
/// with row_norms_kernel's lanes, order and reduction, hence its result bit
/// for bit, without a second launch.
template <class S, class D>
__global__ void copy_rows_kernel(const S* src, int64_t sld, int64_t sb, const int32_t* sel,
                                 int batch, int64_t rows, int64_t d, D* dst, int64_t dld,
                                 int64_t db, float* norms) {
    // One warp a row: the two 64-bit divisions once a row, not once an
    // element (the per-iteration centroid copy of seed-batched, 32 x 1000 x
    // 128: 27 us with them on the H200).
    const int lane = threadIdx.x & 31;
    const int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
    for (int64_t r = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32; r < int64_t(batch) * rows;
         r += warps) {
        const int64_t b = r / rows, i = r - b * rows;
        const S* srow = src + b * sb + (sel ? sel[i] : i) * sld;
        D* drow = dst + b * db + i * dld;
        float s = 0.f;
        for (int64_t j = lane; j < dld; j += 32) {
            const D v = from_float<D>(j < d ? to_float(srow[j]) : 0.f);
            drow[j] = v;
            if (norms && j < d) {
                const float f = to_float(v);
                s = fmaf(f, f, s);
            }
        }
        if (norms) {
            for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
            if (lane == 0) norms[r] = s;
        }
    }
}

__global__ void post_process_kernel(float* c, int64_t rows, int64_t d, bool spherical,
                                    bool round) {
    const int lane = threadIdx.x & 31;
    const int64_t warps = int64_t(gridDim.x) * (blockDim.x / 32);
    for (int64_t r = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32; r < rows;
         r += warps) {
        float* row = c + r * d;
        float scale = 1.f;
        if (spherical) {
            float s = 0.f;
            for (int64_t j = lane; j < d; j += 32) s = fmaf(row[j], row[j], s);
            for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
            if (s > 0.f) scale = 1.f / sqrtf(s);
        }
        for (int64_t j = lane; j < d; j += 32) {
            float v = spherical ? row[j] * scale : row[j];
            if (round) v = roundf(v);
            row[j] = v;
        }
    }
}

/// Adds to *count the number of NaN/Inf among the first d elements of each row.
template <class T>
__global__ void count_nonfinite_kernel(const T* x, int64_t ld, int64_t bstride, int batch,
                                       int64_t rows, int64_t d, unsigned long long* count) {
    const int64_t total = int64_t(batch) * rows * d;
    unsigned long long bad = 0;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
         e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t r = e / d, j = e - r * d;
        const int64_t b = r / rows, i = r - b * rows;
        bad += !isfinite(to_float(x[b * bstride + i * ld + j]));
    }
    for (int off = 16; off > 0; off >>= 1) bad += __shfl_xor_sync(0xffffffffu, bad, off);
    if ((threadIdx.x & 31) == 0 && bad) atomicAdd(count, bad);
}

__global__ void widen_labels_kernel(const int32_t* in, int64_t n, int64_t* out) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x)
        out[i] = in[i];
}

template <class F>
void dispatch(DType t, F&& f) {
    switch (t) {
        case DType::f32: f(float{}); break;
        case DType::f16: f(__half{}); break;
        case DType::bf16: f(__nv_bfloat16{}); break;
    }
}

}  // namespace

void row_norms(const RowsRef& x, int batch, int64_t rows, int64_t d, float* out,
               cudaStream_t stream) {
    if (batch * rows == 0) return;
    dispatch(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        row_norms_kernel<T><<<grid_for(batch * rows, 8), 256, 0, stream>>>(
            static_cast<const T*>(x.data), x.ld, x.batch, batch, rows, d, out);
    });
    FK_CUDA_CHECK(cudaGetLastError());
}

namespace {

void launch_copy_rows(const RowsRef& src, const int32_t* sel, int batch, int64_t rows, int64_t d,
                      void* dst, DType dst_type, int64_t dst_ld, int64_t dst_batch, float* norms,
                      cudaStream_t stream) {
    if (batch * rows * dst_ld == 0) return;
    dispatch(src.dtype, [&](auto stag) {
        using S = decltype(stag);
        dispatch(dst_type, [&](auto dtag) {
            using D = decltype(dtag);
            copy_rows_kernel<S, D><<<grid_for(batch * rows * 32, 256), 256, 0, stream>>>(
                static_cast<const S*>(src.data), src.ld, src.batch, sel, batch, rows, d,
                static_cast<D*>(dst), dst_ld, dst_batch, norms);
        });
    });
    FK_CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void copy_rows(const RowsRef& src, const int32_t* sel, int batch, int64_t rows, int64_t d,
               void* dst, DType dst_type, int64_t dst_ld, int64_t dst_batch,
               cudaStream_t stream) {
    launch_copy_rows(src, sel, batch, rows, d, dst, dst_type, dst_ld, dst_batch, nullptr, stream);
}

void copy_rows_with_norms(const RowsRef& src, int batch, int64_t rows, int64_t d, void* dst,
                          DType dst_type, int64_t dst_ld, int64_t dst_batch, float* norms,
                          cudaStream_t stream) {
    launch_copy_rows(src, nullptr, batch, rows, d, dst, dst_type, dst_ld, dst_batch, norms,
                     stream);
}

void count_nonfinite(const RowsRef& x, int batch, int64_t rows, int64_t d,
                     unsigned long long* count, cudaStream_t stream) {
    if (batch * rows * d == 0) return;
    dispatch(x.dtype, [&](auto tag) {
        using T = decltype(tag);
        count_nonfinite_kernel<T><<<grid_for(batch * rows * d, 256), 256, 0, stream>>>(
            static_cast<const T*>(x.data), x.ld, x.batch, batch, rows, d, count);
    });
    FK_CUDA_CHECK(cudaGetLastError());
}

void widen_labels(const int32_t* in, int64_t n, int64_t* out, cudaStream_t stream) {
    if (n == 0) return;
    widen_labels_kernel<<<grid_for(n, 256), 256, 0, stream>>>(in, n, out);
    FK_CUDA_CHECK(cudaGetLastError());
}

void post_process_rows(float* c, int64_t rows, int64_t d, bool spherical, bool round,
                       cudaStream_t stream) {
    if (rows == 0 || (!spherical && !round)) return;
    post_process_kernel<<<grid_for(rows, 8), 256, 0, stream>>>(c, rows, d, spherical, round);
    FK_CUDA_CHECK(cudaGetLastError());
}

}  // namespace flashkmeans::kernels
