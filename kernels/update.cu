// Sort-inverse centroid update; see update.cuh for the steps.
#include "kernels/update.cuh"

#include <algorithm>
#include <type_traits>
#include <cub/device/device_radix_sort.cuh>

#include "kernels/common.cuh"
#include "kernels/device_props.cuh"
#include "src/cuda/cuda_check.hpp"

namespace flashkmeans::kernels {

namespace {

// Sorted points per warp: a warp adds its sum to a cluster once per run of
// that cluster in its segment, so long segments cut atomics (n8M-k1024: 256
// points, 8.76 -> 8.56 ms on H100) but leave fewer warps, which costs where
// points are few (largeD, 2^18 points: 3.67 -> 4.25 ms with 256).
constexpr int kSegShort = 64, kSegLong = 256;
constexpr int64_t kLongSegPoints = int64_t(4) << 20;  // long segments from 4M points on
constexpr int kColsPerLane = 4;    // run_sums_kernel: columns a lane sums per pass over the segment
constexpr int kRowsInFlight = 8;   // gather_sums_kernel: row loads a lane issues before adding
constexpr int kWarps = 8;

__global__ void build_keys_kernel(const int32_t* labels, int64_t n, int64_t total, int kbits,
                                  uint32_t* keys, int32_t* vals) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
         i += int64_t(gridDim.x) * blockDim.x) {
        const uint32_t b = uint32_t(i / n);
        keys[i] = (b << kbits) | uint32_t(labels[i]);
        vals[i] = int32_t(i);
    }
}

/// The raw bytes a lane loads of a row at once (VB = 16 or 8), kept raw
/// while in flight so that 16-bit rows hold half the registers.
template <int VB>
using RawChunk = std::conditional_t<VB == 16, uint4, uint2>;

template <class T, int VB>
__device__ __forceinline__ void unpack(const RawChunk<VB>& q, float (&v)[VB / sizeof(T)]) {
    T e[VB / sizeof(T)];
    static_assert(sizeof(e) == sizeof(q));
    memcpy(e, &q, sizeof(q));
#pragma unroll
    for (int j = 0; j < int(VB / sizeof(T)); ++j) v[j] = to_float(e[j]);
}

/// dst[0..E) += a with 16- or 8-byte float atomics where the card has them
/// (sm_90); dst is aligned to them (the launcher checks).
template <int E>
__device__ __forceinline__ void atomic_add_row(float* dst, const float (&a)[E]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    constexpr int W = E % 4 == 0 ? 4 : E % 2 == 0 ? 2 : 1;
#else
    constexpr int W = 1;
#endif
#pragma unroll
    for (int j = 0; j < E; j += W) {
        if constexpr (W == 4) atomicAdd(reinterpret_cast<float4*>(dst + j), make_float4(a[j], a[j + 1], a[j + 2], a[j + 3]));
        else if constexpr (W == 2) atomicAdd(reinterpret_cast<float2*>(dst + j), make_float2(a[j], a[j + 1]));
        else atomicAdd(dst + j, a[j]);
    }
}

/// Rows whose length and starts are multiples of VB bytes. A warp owns kSeg
/// sorted points, staged once in shared memory (key, row offset, weight) so
/// that the walk holds no per-point registers. The warp is split into groups
/// of `lanes` lanes (the power of two that covers a row in VB-byte chunks, at
/// most 32; longer rows take several passes); each group walks a contiguous
/// part of the segment with kRowsInFlight row loads issued before any is
/// added. Why: the gather in cluster order is bound by loads in flight; the
/// earlier kernel (per-lane point registers, 99 registers, 16 warps an SM,
/// 4 rows of 256 bytes a warp) read at ~1 TB/s on the H200 (bench/NOTES.md).
template <class T, int VB, int kSeg>
__global__ void __launch_bounds__(kWarps * 32, 4)
    gather_sums_kernel(const uint32_t* keys, const int32_t* vals, int64_t total, int kbits, int64_t n,
                       int64_t k, const T* x, int64_t ld, int64_t bstride, int64_t d, int lanes,
                       const float* weights, float* sums, float* wsum, int32_t* cnt) {
    constexpr int E = VB / sizeof(T), U = kRowsInFlight;
    __shared__ uint32_t s_key[kWarps][kSeg];
    __shared__ int64_t s_off[kWarps][kSeg];  // element offset of the point's row in x
    __shared__ float s_wt[kWarps][kSeg];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t seg0 = (int64_t(blockIdx.x) * kWarps + warp) * kSeg;
    if (seg0 >= total) return;
    const int len = int(min(int64_t(kSeg), total - seg0));
    for (int p = lane; p < len; p += 32) {
        const uint32_t kk = keys[seg0 + p];
        const int32_t vi = vals[seg0 + p];
        const int64_t b = int64_t(kk >> kbits);
        s_key[warp][p] = kk;
        s_off[warp][p] = b * bstride + (int64_t(vi) - b * n) * ld;  // no 64-bit divide
        s_wt[warp][p] = weights ? weights[vi] : 1.f;
    }
    __syncwarp();
    const int groups = 32 / lanes, g = lane / lanes, gl = lane % lanes;
    const int per = (len + groups - 1) / groups;
    const int beg = min(len, g * per), end = min(len, beg + per);
    if (beg >= end) return;
    const uint32_t kmask = (1u << kbits) - 1u;
    const int64_t chunks = d / E;  // VB-byte chunks a row
    for (int64_t c0 = 0; c0 < chunks; c0 += lanes) {
        const bool lane_in = c0 + gl < chunks;
        const int64_t col = (c0 + gl) * E;
        float acc[E];
#pragma unroll
        for (int e = 0; e < E; ++e) acc[e] = 0.f;
        float wacc = 0.f;
        int count = 0;
        uint32_t cur = s_key[warp][beg];
        auto flush = [&]() {
            const int64_t cl = int64_t(cur >> kbits) * k + (cur & kmask);
            if (lane_in) atomic_add_row<E>(sums + cl * d + col, acc);
            if (c0 == 0 && gl == 0) {
                atomicAdd(&wsum[cl], wacc);
                atomicAdd(&cnt[cl], count);
            }
#pragma unroll
            for (int e = 0; e < E; ++e) acc[e] = 0.f;
            wacc = 0.f;
            count = 0;
        };
        for (int i0 = beg; i0 < end; i0 += U) {
            RawChunk<VB> q[U];
#pragma unroll
            for (int u = 0; u < U; ++u) {
                q[u] = RawChunk<VB>{};
                if (i0 + u < end && lane_in)
                    q[u] = __ldg(reinterpret_cast<const RawChunk<VB>*>(x + s_off[warp][i0 + u] + col));
            }
#pragma unroll
            for (int u = 0; u < U; ++u) {
                if (i0 + u >= end) break;
                const uint32_t kk = s_key[warp][i0 + u];
                if (kk != cur) {
                    flush();
                    cur = kk;
                }
                const float w = s_wt[warp][i0 + u];
                float v[E];
                unpack<T, VB>(q[u], v);
#pragma unroll
                for (int e = 0; e < E; ++e) acc[e] = fmaf(w, v[e], acc[e]);
                wacc += w;
                ++count;
            }
        }
        flush();
    }
}

/// Any row layout: a warp walks kSeg sorted points, lanes on strided columns
/// (column c * 32 + lane), element by element; for rows the vector kernel
/// above cannot read (odd lengths, unaligned starts).
template <class T, int kSeg>
__global__ void __launch_bounds__(kWarps * 32)
    run_sums_kernel(const uint32_t* keys, const int32_t* vals, int64_t total, int kbits,
                    int64_t n, int64_t k, const T* x, int64_t ld, int64_t bstride, int64_t d,
                    const float* weights, float* sums, float* wsum, int32_t* cnt) {
    constexpr int kUnroll = 4, C = kColsPerLane;
    const int lane = threadIdx.x & 31;
    const int64_t seg0 = (int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5)) * kSeg;
    if (seg0 >= total) return;
    const int len = int(min(int64_t(kSeg), total - seg0));
    // Each lane holds kSeg / 32 of the segment's (key, value, weight) triples.
    uint32_t key[kSeg / 32];
    int32_t val[kSeg / 32];
    float wt[kSeg / 32];
#pragma unroll
    for (int h = 0; h < kSeg / 32; ++h) {
        const int p = h * 32 + lane;
        key[h] = p < len ? keys[seg0 + p] : 0u;
        val[h] = p < len ? vals[seg0 + p] : 0;
        wt[h] = (p < len && weights) ? weights[val[h]] : 1.f;
    }
    const uint32_t kmask = (1u << kbits) - 1u;
    for (int64_t col0 = 0; col0 < d; col0 += 32 * C) {
        const bool first_pass = col0 == 0;
        float acc[C];
#pragma unroll
        for (int c = 0; c < C; ++c) acc[c] = 0.f;
        float wacc = 0.f;
        int count = 0;
        uint32_t cur = __shfl_sync(0xffffffffu, key[0], 0);
        auto flush = [&](uint32_t kk) {
            const int64_t cl = int64_t(kk >> kbits) * k + (kk & kmask);
#pragma unroll
            for (int c = 0; c < C; ++c) {
                const int64_t col = col0 + c * 32 + lane;
                if (col < d) atomicAdd(&sums[cl * d + col], acc[c]);
                acc[c] = 0.f;
            }
            if (first_pass && lane == 0) {
                atomicAdd(&wsum[cl], wacc);
                atomicAdd(&cnt[cl], count);
            }
            wacc = 0.f;
            count = 0;
        };
#pragma unroll
        for (int h = 0; h < kSeg / 32; ++h) {
            if (h * 32 >= len) break;
            for (int q = 0; q < 32; q += kUnroll) {
                if (h * 32 + q >= len) break;
                uint32_t kk[kUnroll];
                float w[kUnroll], v[kUnroll][C];
#pragma unroll
                for (int u = 0; u < kUnroll; ++u) {
                    kk[u] = __shfl_sync(0xffffffffu, key[h], q + u);
                    const int32_t vi = __shfl_sync(0xffffffffu, val[h], q + u);
                    w[u] = __shfl_sync(0xffffffffu, wt[h], q + u);
                    const int64_t b = int64_t(kk[u] >> kbits), i = int64_t(vi) - b * n;  // no 64-bit divide
                    const T* row = x + b * bstride + i * ld;
                    const bool ok = h * 32 + q + u < len;
#pragma unroll
                    for (int c = 0; c < C; ++c) {
                        const int64_t col = col0 + c * 32 + lane;
                        v[u][c] = ok && col < d ? to_float(row[col]) : 0.f;
                    }
                }
#pragma unroll
                for (int u = 0; u < kUnroll; ++u) {
                    if (h * 32 + q + u >= len) break;
                    if (kk[u] != cur) {
                        flush(cur);
                        cur = kk[u];
                    }
#pragma unroll
                    for (int c = 0; c < C; ++c) acc[c] = fmaf(w[u], v[u][c], acc[c]);
                    wacc += w[u];
                    ++count;
                }
            }
        }
        flush(cur);
    }
}

// Small k x d: a block sums a range of points of one problem into a copy of
// the problem's sums in shared memory (shared atomics, no sort), then adds
// that copy to the global sums once. Threads walk the rows' elements in
// 16-byte vectors (VEC elements) where rows allow it.
// Only for small d: shared-memory float atomics are slow under contention,
// and at d = 128 (seed-k100: k = 100) this path took 2.9 ms against 1.1 ms
// for the sort on H100; at d = 4 (pq-train) 0.76 ms against 1.80 overall.
constexpr int kSmallThreads = 256;
constexpr size_t kSmallMaxSmem = size_t(96) << 10;
constexpr int64_t kSmallMaxD = 32;

template <class T, int VEC>
__global__ void __launch_bounds__(kSmallThreads)
    small_sums_kernel(const int32_t* labels, int64_t n, int64_t k, const T* x, int64_t ld,
                      int64_t bstride, int d, const float* weights, int chunk, float* sums,
                      float* wsum, int32_t* cnt) {
    extern __shared__ float sm[];
    const int kd = int(k) * d;
    float* s_sum = sm;
    float* s_w = sm + kd;
    int* s_cnt = reinterpret_cast<int*>(s_w + k);
    for (int i = threadIdx.x; i < kd + 2 * int(k); i += kSmallThreads) sm[i] = 0.f;
    __syncthreads();
    const int b = blockIdx.y;
    const int64_t p0 = int64_t(blockIdx.x) * chunk;
    const int len = int(min(int64_t(chunk), n - p0));
    const int32_t* lab = labels + int64_t(b) * n + p0;
    const T* xb = x + int64_t(b) * bstride + p0 * ld;
    const float* wb = weights ? weights + int64_t(b) * n + p0 : nullptr;
    const int vrow = d / VEC, nvec = len * vrow;
    for (int v = threadIdx.x; v < nvec; v += kSmallThreads) {
        const int p = v / vrow, c = (v - p * vrow) * VEC;
        const int l = lab[p];
        if (l < 0) continue;  // all-NaN row (check_finite off): left out
        const float w = wb ? wb[p] : 1.f;
        T e[VEC];
        if constexpr (VEC > 1) {
            *reinterpret_cast<uint4*>(e) = __ldg(reinterpret_cast<const uint4*>(xb + p * ld + c));
        } else {
            e[0] = xb[p * ld + c];
        }
        float* dst = s_sum + l * d + c;
#pragma unroll
        for (int j = 0; j < VEC; ++j) atomicAdd(dst + j, w * to_float(e[j]));
        if (c == 0) {
            atomicAdd(&s_w[l], w);
            atomicAdd(&s_cnt[l], 1);
        }
    }
    __syncthreads();
    float* gs = sums + int64_t(b) * kd;
    for (int i = threadIdx.x; i < kd; i += kSmallThreads)
        if (s_sum[i] != 0.f) atomicAdd(&gs[i], s_sum[i]);
    for (int j = threadIdx.x; j < int(k); j += kSmallThreads)
        if (s_cnt[j] != 0) {
            atomicAdd(&wsum[int64_t(b) * k + j], s_w[j]);
            atomicAdd(&cnt[int64_t(b) * k + j], s_cnt[j]);
        }
}

size_t small_sums_smem(int64_t k, int64_t d) { return size_t(k) * size_t(d + 2) * 4; }

template <class T>
void launch_small_sums(const int32_t* labels, const RowsRef& x, const float* weights, int batch,
                       int64_t n, int64_t k, int64_t d, float* sums, float* wsum, int32_t* cnt,
                       cudaStream_t stream) {
    const size_t smem = small_sums_smem(k, d);
    // Points per block: enough that the block's one add per cluster stays
    // small next to its points (>= 8 k), enough blocks to fill the device.
    int64_t chunk = std::max<int64_t>(8 * k, 65536 / std::max<int64_t>(d, 1));
    chunk = std::min<int64_t>(std::max<int64_t>(chunk, 512), 16384);
    const int64_t fill = 4 * int64_t(sm_count());
    while (chunk > 512 && batch * ((n + chunk - 1) / chunk) < fill) chunk /= 2;
    const dim3 grid(unsigned((n + chunk - 1) / chunk), unsigned(batch));
    constexpr int kVec = 16 / sizeof(T);
    const bool vec = d % kVec == 0 && x.ld % kVec == 0 && x.batch % kVec == 0 &&
                     reinterpret_cast<uintptr_t>(x.data) % 16 == 0;
    auto go = [&](auto kernel) {
        FK_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           int(smem)));
        kernel<<<grid, kSmallThreads, smem, stream>>>(labels, n, k, static_cast<const T*>(x.data),
                                                      x.ld, x.batch, int(d), weights, int(chunk),
                                                      sums, wsum, cnt);
    };
    if (vec) go(small_sums_kernel<T, kVec>);
    else go(small_sums_kernel<T, 1>);
    FK_CUDA_CHECK(cudaGetLastError());
}

__global__ void finalize_kernel(const float* sums, const float* wsum, int batch, int64_t k,
                                int64_t d, int64_t k_frozen, float* c) {
    const int64_t total = int64_t(batch) * k * d;
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total;
         e += int64_t(gridDim.x) * blockDim.x) {
        const int64_t r = e / d;  // b * k + j
        const int64_t j = r % k;
        const float w = wsum[r];
        if (j >= k_frozen && w > 0.f) c[e] = sums[e] * (1.f / w);
    }
}

unsigned grid_for(int64_t work, int per_block) {
    return unsigned(std::max<int64_t>(1, std::min<int64_t>((work + per_block - 1) / per_block, 65535)));
}

}  // namespace

int bits_for(int64_t count) {
    int b = 0;
    while ((int64_t(1) << b) < count) ++b;
    return b;
}

size_t sort_temp_bytes(int64_t total) {
    size_t bytes = 0;
    FK_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, bytes, (const uint32_t*)nullptr,
                                                  (uint32_t*)nullptr, (const int32_t*)nullptr,
                                                  (int32_t*)nullptr, total, 0, 32));
    return bytes;
}

void cluster_sums(const int32_t* labels, const RowsRef& x, const float* weights, int batch,
                  int64_t n, int64_t k, int64_t d, const UpdateBuffers& buf, float* sums,
                  float* wsum, int32_t* cnt, cudaStream_t stream, bool accumulate) {
    const int64_t total = int64_t(batch) * n;
    if (!accumulate) {
        FK_CUDA_CHECK(cudaMemsetAsync(sums, 0, sizeof(float) * batch * k * d, stream));
        FK_CUDA_CHECK(cudaMemsetAsync(wsum, 0, sizeof(float) * batch * k, stream));
        FK_CUDA_CHECK(cudaMemsetAsync(cnt, 0, sizeof(int32_t) * batch * k, stream));
    }
    if (total == 0) return;
    if (d <= kSmallMaxD && small_sums_smem(k, d) <= kSmallMaxSmem) {
        switch (x.dtype) {
            case DType::f32: launch_small_sums<float>(labels, x, weights, batch, n, k, d, sums, wsum, cnt, stream); break;
            case DType::f16: launch_small_sums<__half>(labels, x, weights, batch, n, k, d, sums, wsum, cnt, stream); break;
            case DType::bf16: launch_small_sums<__nv_bfloat16>(labels, x, weights, batch, n, k, d, sums, wsum, cnt, stream); break;
        }
        return;
    }
    const int kbits = bits_for(k);
    const int end_bit = kbits + bits_for(batch);
    build_keys_kernel<<<grid_for(total, 256), 256, 0, stream>>>(labels, n, total, kbits,
                                                                buf.keys[0], buf.vals[0]);
    FK_CUDA_CHECK(cudaGetLastError());
    const uint32_t* skeys = buf.keys[0];
    const int32_t* svals = buf.vals[0];
    if (end_bit > 0) {
        size_t temp = buf.sort_temp_bytes;
        FK_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(buf.sort_temp, temp, buf.keys[0],
                                                      buf.keys[1], buf.vals[0], buf.vals[1],
                                                      total, 0, end_bit, stream));
        skeys = buf.keys[1];
        svals = buf.vals[1];
    }
    const bool long_seg = total >= kLongSegPoints;
    const int seg = long_seg ? kSegLong : kSegShort;
    const int64_t segs = (total + seg - 1) / seg;
    const unsigned blocks = unsigned((segs + kWarps - 1) / kWarps);
    // Vector rows: every row start and the row length a multiple of the load
    // width (16 bytes, else 8), and the sums aligned for the vector atomics.
    const int64_t esize = x.dtype == DType::f32 ? 4 : 2;
    auto vec_ok = [&](int64_t vb) {
        const int64_t e = vb / esize;
        return d % e == 0 && x.ld % e == 0 && x.batch % e == 0 &&
               reinterpret_cast<uintptr_t>(x.data) % vb == 0 && reinterpret_cast<uintptr_t>(sums) % 16 == 0;
    };
    const int vb = vec_ok(16) ? 16 : vec_ok(8) ? 8 : 0;
    int lanes = 1;  // a power of two covering a row's chunks, at most 32
    if (vb > 0)
        while (lanes < 32 && lanes * vb < d * esize) lanes *= 2;
    auto launch = [&](auto tag) {
        using T = decltype(tag);
        const T* xt = static_cast<const T*>(x.data);
        auto go = [&](auto kernel, auto... extra) {
            kernel<<<blocks, kWarps * 32, 0, stream>>>(skeys, svals, total, kbits, n, k, xt, x.ld, x.batch, d,
                                                       extra..., weights, sums, wsum, cnt);
        };
        if (vb == 16) go(long_seg ? gather_sums_kernel<T, 16, kSegLong> : gather_sums_kernel<T, 16, kSegShort>, lanes);
        else if (vb == 8) go(long_seg ? gather_sums_kernel<T, 8, kSegLong> : gather_sums_kernel<T, 8, kSegShort>, lanes);
        else go(long_seg ? run_sums_kernel<T, kSegLong> : run_sums_kernel<T, kSegShort>);
    };
    switch (x.dtype) {
        case DType::f32: launch(float{}); break;
        case DType::f16: launch(__half{}); break;
        case DType::bf16: launch(__nv_bfloat16{}); break;
    }
    FK_CUDA_CHECK(cudaGetLastError());
}

void finalize_centroids(const float* sums, const float* wsum, int batch, int64_t k, int64_t d,
                        int64_t k_frozen, float* centroids, cudaStream_t stream) {
    const int64_t total = int64_t(batch) * k * d;
    if (total == 0) return;
    finalize_kernel<<<grid_for(total, 256), 256, 0, stream>>>(sums, wsum, batch, k, d, k_frozen,
                                                              centroids);
    FK_CUDA_CHECK(cudaGetLastError());
}

}  // namespace flashkmeans::kernels
