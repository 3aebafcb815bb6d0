// Top-k FlashAssign for IVF probing: the same streaming main loop as the
// argmin (stream.cuh); after each centroid tile the block parks its kBM x kBN
// distances in shared memory and one warp per point merges the tile into that
// point's sorted list of k best (key, label) pairs, which lives in the output
// arrays themselves. Candidates are merged in ascending centroid order and
// inserted after equal keys, so ties keep the lower centroid index first.
#include "kernels/stream_launch.cuh"

namespace flashkmeans::kernels {

namespace {

constexpr int kTileLd = kBN + 1;
constexpr size_t kTopkSmem = sizeof(float) * (size_t(kBM) * kTileLd + kBM);

/// Insert (v, id) into the sorted list (L, I) of length topk whose last key is
/// above v; returns the new last key. Called by a whole warp.
__device__ float insert_sorted(float* L, int64_t* I, int topk, float v, int64_t id, int lane) {
    int cnt = 0;
    for (int p = lane; p < topk; p += 32) cnt += L[p] <= v;
    const int pos = __reduce_add_sync(0xffffffffu, cnt);
    float nv[kMaxTopk / 32];
    int64_t ni[kMaxTopk / 32];
#pragma unroll
    for (int j = 0; j < kMaxTopk / 32; ++j) {
        const int p = lane + 32 * j;
        if (p < topk && p >= pos) {
            nv[j] = p == pos ? v : L[p - 1];
            ni[j] = p == pos ? id : I[p - 1];
        }
    }
    __syncwarp();
#pragma unroll
    for (int j = 0; j < kMaxTopk / 32; ++j) {
        const int p = lane + 32 * j;
        if (p < topk && p >= pos) {
            L[p] = nv[j];
            I[p] = ni[j];
        }
    }
    __syncwarp();
    return L[topk - 1];
}

template <class Math>
struct TopkEpi {
    using Args = TopkArgs;
    static constexpr size_t kFinishSmem = 0;  // finish() is empty
    const Args& a;
    int64_t row0;
    int rows_valid;
    float* T;    // kBM x kTileLd distances of the current tile
    float* thr;  // kBM current k-th best keys
    float xn[Math::ROWS];

    __device__ TopkEpi(const Args& args, int, int64_t row0_, int rows_valid_, char* smem,
                       const Math& m)
        : a(args), row0(row0_), rows_valid(rows_valid_) {
        T = reinterpret_cast<float*>(smem);
        thr = T + kBM * kTileLd;
        for (int r = threadIdx.x; r < kBM; r += Math::THREADS) thr[r] = INFINITY;
#pragma unroll
        for (int i = 0; i < Math::ROWS; ++i) {
            const int r = m.row(i);
            xn[i] = (!a.ip && r < rows_valid) ? a.xnorm[row0 + r] : 0.f;
        }
    }

    __device__ void tile(const Math& m, int64_t c0, int cols_valid) {
        const float* cn = a.cnorm + c0;
        m.for_each([&](int i, int c, float dot) {
            float v = INFINITY;
            if (c < cols_valid) v = a.ip ? -dot : fmaxf(xn[i] + cn[c] - 2.f * dot, 0.f);
            T[m.row(i) * kTileLd + c] = v;
        });
        __syncthreads();
        const int lane = threadIdx.x & 31;
        for (int r = threadIdx.x >> 5; r < rows_valid; r += Math::THREADS / 32) {
            float th = thr[r];
            float* L = a.keys + (row0 + r) * a.topk;
            int64_t* I = a.labels + (row0 + r) * a.topk;
#pragma unroll
            for (int h = 0; h < kBN / 32; ++h) {
                const float v = T[r * kTileLd + 32 * h + lane];
                unsigned mask = __ballot_sync(0xffffffffu, v < th);
                while (mask) {
                    const int src = __ffs(mask) - 1;
                    mask &= mask - 1;
                    const float cv = __shfl_sync(0xffffffffu, v, src);
                    if (cv < th) th = insert_sorted(L, I, a.topk, cv, c0 + 32 * h + src, lane);
                }
            }
            __syncwarp();  // every lane has read thr[r] before lane 0 rewrites it
            if (lane == 0) thr[r] = th;
        }
    }

    __device__ void finish(const Math&, char*) {}
};

__global__ void fill_topk_kernel(float* keys, int64_t* labels, int64_t count) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
         i += int64_t(gridDim.x) * blockDim.x) {
        keys[i] = INFINITY;
        labels[i] = -1;
    }
}

__global__ void negate_kernel(float* keys, int64_t count) {
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < count;
         i += int64_t(gridDim.x) * blockDim.x)
        keys[i] = -keys[i];
}

unsigned elementwise_grid(int64_t count) {
    return unsigned(std::min<int64_t>((count + 255) / 256, 4096));
}

}  // namespace

void launch_topk(const StreamGeom& geo, MathKind kind, const TopkArgs& args,
                 cudaStream_t stream) {
    if (args.topk < 1 || args.topk > kMaxTopk)
        throw Error("flashkmeans: top-k search supports 1 <= k <= " +
                    std::to_string(kMaxTopk) + ", got " + std::to_string(args.topk));
    launch_stream<TopkEpi>(geo, 1, kind, args, kTopkSmem, stream);
}

void fill_topk(float* keys, int64_t* labels, int64_t count, cudaStream_t stream) {
    if (count == 0) return;
    fill_topk_kernel<<<elementwise_grid(count), 256, 0, stream>>>(keys, labels, count);
    FK_CUDA_CHECK(cudaGetLastError());
}

void finish_topk(float* keys, int64_t count, bool ip, cudaStream_t stream) {
    if (!ip || count == 0) return;
    negate_kernel<<<elementwise_grid(count), 256, 0, stream>>>(keys, count);
    FK_CUDA_CHECK(cudaGetLastError());
}

}  // namespace flashkmeans::kernels
