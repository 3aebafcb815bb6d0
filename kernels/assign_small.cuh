// Exact (float32 FFMA) argmin for rows of at most 8 floats: PQ sub-spaces
// (D = 2..8) and other low-dimensional data.
//
// The general kernel (stream.cuh + FfmaMath) computes a 128 x 64 tile a block
// step, with a barrier and a cp.async round every 64 centroids and rows padded
// to 8 words. At D = 4 that is latency, not arithmetic: 526 us of a 760 us
// pq-train iteration (32 x 65536 points, K = 256) on the H200 (ncu,
// bench/NOTES.md), ~4x what its FMAs need.
//
// Here a thread keeps two points in registers (rows t and t + 128 of the
// block's 256), and the problem's centroids, a chunk of up to kSmallChunk at a
// time, sit in shared memory; every thread reads the same centroid (a
// broadcast), so the inner loop is the dot product's FFMAs, the key, a compare
// and two selects a centroid and point, with no barrier.
//
// Arithmetic and order are those of FfmaMath + ArgminEpi: the dot product is
// summed in ascending k starting from 0, the key is max(||c||^2 - 2 x.c,
// -||x||^2) (IP: -x.c), a strict < in ascending centroid order keeps the
// lowest index, and each 128-row objective partial is summed in the same
// shuffle tree. So labels, distances and partials are those of the general
// kernel bit for bit (up to the sign of a zero IP distance: FfmaMath also
// adds the zero padding words); tests/gpu/test_assign.cu checks that.
#pragma once

#include "kernels/assign.cuh"

#include <climits>

namespace flashkmeans::kernels {

constexpr int kSmallThreads = 128;                  // a block: 2 rows a thread
constexpr int kSmallRows = 2 * kSmallThreads;       // rows a block (two 128-row slots)
constexpr int kSmallChunk = 1024;                   // centroids in shared memory at a time
constexpr int kSmallMaxWords = 8;                   // words (floats) a row, padded
static_assert(kSmallThreads == kBM, "a slot of objective partials is a block half");

/// Centroids a block holds at a time, and the shared memory they take
/// (rows, then norms): sized to k when k is small, so that D = 5..8 rows do
/// not cap the blocks an SM at 6.
__host__ __device__ constexpr int small_chunk(int64_t k) { return k < kSmallChunk ? int(k) : kSmallChunk; }
__host__ __device__ constexpr size_t small_smem_bytes(int words, int64_t k) {
    return size_t(small_chunk(k)) * (size_t(words) + 1) * sizeof(float);
}

/// W: words a padded row (4 or 8); IP: inner product (argmax of x.c).
template <int W, bool IP>
__global__ void __launch_bounds__(kSmallThreads) assign_small_kernel(StreamGeom geo, AssignArgs a) {
    static_assert(W == 4 || W == 8, "rows of one or two 16-byte pieces");
    const int64_t n = geo.x.rows, k = geo.c.rows;
    const int chunk = small_chunk(k);
    extern __shared__ __align__(16) float ssm[];
    float4* cs = reinterpret_cast<float4*>(ssm);        // chunk x W/4
    float* cns = ssm + size_t(chunk) * W;               // chunk norms
    __shared__ double red[2][kSmallThreads / 32];

    const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
    const int b = blockIdx.y;
    const int64_t row0 = int64_t(blockIdx.x) * kSmallRows;
    const uint32_t* X = geo.x.data + b * geo.x.batch;
    const uint32_t* C = geo.c.data + b * geo.c.batch;

    // This thread's rows: row0 + t (slot 0) and row0 + 128 + t (slot 1).
    float x[2][W], xn[2], best[2];
    int bidx[2];
    bool valid[2];
#pragma unroll
    for (int p = 0; p < 2; ++p) {
        const int64_t r = row0 + kSmallThreads * p + t;
        valid[p] = r < n;
#pragma unroll
        for (int q = 0; q < W / 4; ++q) {
            // W / 4 == geo.x.q (the launcher's choice); rows past n read as zeros.
            const float4 v = valid[p] ? *reinterpret_cast<const float4*>(X + r * geo.x.ld + 4 * q)
                                      : make_float4(0.f, 0.f, 0.f, 0.f);
            x[p][4 * q] = v.x;
            x[p][4 * q + 1] = v.y;
            x[p][4 * q + 2] = v.z;
            x[p][4 * q + 3] = v.w;
        }
        xn[p] = (!IP && valid[p]) ? a.xnorm[b * a.n + r] : 0.f;
        best[p] = INFINITY;
        bidx[p] = INT_MAX;
    }

    for (int64_t c0 = 0; c0 < k; c0 += chunk) {
        const int kc = int(k - c0 < chunk ? k - c0 : chunk);
        __syncthreads();  // every thread is done with the previous chunk
        for (int idx = t; idx < kc * (W / 4); idx += kSmallThreads) {
            const int j = idx / (W / 4), q = idx - j * (W / 4);
            cs[idx] = *reinterpret_cast<const float4*>(C + (c0 + j) * geo.c.ld + 4 * q);
        }
        for (int j = t; j < kc; j += kSmallThreads) cns[j] = IP ? 0.f : a.cnorm[b * a.k + c0 + j];
        __syncthreads();
#pragma unroll 4
        for (int j = 0; j < kc; ++j) {
            float c[W];
#pragma unroll
            for (int q = 0; q < W / 4; ++q) {
                const float4 v = cs[j * (W / 4) + q];
                c[4 * q] = v.x;
                c[4 * q + 1] = v.y;
                c[4 * q + 2] = v.z;
                c[4 * q + 3] = v.w;
            }
            const float cn = cns[j];
#pragma unroll
            for (int p = 0; p < 2; ++p) {
                float dot = 0.f;
#pragma unroll
                for (int w = 0; w < W; ++w) dot = fmaf(x[p][w], c[w], dot);
                const float v = IP ? -dot : fmaxf(fmaf(-2.f, dot, cn), -xn[p]);
                if (v < best[p]) {
                    best[p] = v;
                    bidx[p] = int(c0) + j;
                }
            }
        }
    }

    // Labels, distances, and one objective partial per 128 rows, summed as
    // ArgminEpi::finish sums them (lanes by shuffle-down, then warps in order).
#pragma unroll
    for (int p = 0; p < 2; ++p) {
        const int64_t r = row0 + kSmallThreads * p + t;
        double contrib = 0;
        if (valid[p]) {
            const int id = bidx[p] == INT_MAX ? 0 : bidx[p];  // every distance NaN: keep a valid label
            const float out = IP ? -best[p] : fmaxf(xn[p] + best[p], 0.f);
            a.labels[b * a.n + r] = id;
            if (a.dist) a.dist[b * a.n + r] = out;
            contrib = out;
        }
        for (int off = 16; off > 0; off >>= 1) contrib += __shfl_down_sync(0xffffffffu, contrib, off);
        if (lane == 0) red[p][warp] = contrib;
    }
    __syncthreads();
    if (t < 2) {
        const int64_t slot = row0 / kBM + t;
        if (slot * kBM < n) {
            double s = 0;
            for (int w = 0; w < kSmallThreads / 32; ++w) s += red[t][w];
            a.partial[int64_t(b) * stream_grid_x(n) + slot] = s;
        }
    }
}

}  // namespace flashkmeans::kernels
