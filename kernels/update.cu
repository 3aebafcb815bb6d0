// Sort-inverse centroid update; see update.cuh for the steps.
#include "kernels/update.cuh"

#include <algorithm>
#include <cstdlib>
#include <type_traits>
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>
#include <string>

#include "kernels/common.cuh"
#include "kernels/device_props.cuh"
#include "src/cuda/cuda_check.hpp"

namespace flashkmeans::kernels {

namespace {

// Rows a warp stages (row offset, weight) in shared memory at a time; its
// lane groups share them.
constexpr int kStage = 256;
constexpr int kRowsInFlight = 8;  // row loads a lane issues before adding
constexpr int kWarps = 8;
// Piece sizes, measured on the H200 (bench/NOTES.md, update v4): each piece
// costs a descriptor, a stored partial and a fold. 128 points below 4M
// points (32 and 64 were 3-10% slower a whole iteration at n1M and largeD;
// 256 not measured there), 256 from 4M on (n8M level with the atomic kernel;
// 128 not measured there).
constexpr int kPieceShort = 128, kPieceLong = 256;
constexpr int64_t kLongPiecePoints = int64_t(4) << 20;

/// blockIdx.y = problem (no 64-bit division a point).
__global__ void build_keys_kernel(const int32_t* labels, int64_t n, int kbits, uint32_t* keys,
                                  int32_t* vals) {
    const uint32_t hi = uint32_t(blockIdx.y) << kbits;
    const int64_t off = int64_t(blockIdx.y) * n;
    for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
         i += int64_t(gridDim.x) * blockDim.x) {
        keys[off + i] = hi | uint32_t(labels[off + i]);
        vals[off + i] = int32_t(off + i);
    }
}

__device__ __forceinline__ int64_t cluster_of(uint32_t key, int kbits, int64_t k) {
    return int64_t(key >> kbits) * k + (key & ((1u << kbits) - 1u));
}

/// begin/end (zeroed by the caller) of each cluster's run in the sorted keys
/// (16-byte aligned); four keys a thread.
__global__ void runs_kernel(const uint32_t* keys, int64_t total, int kbits, int64_t k,
                            int32_t* begin, int32_t* end) {
    for (int64_t q = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; q * 4 < total;
         q += int64_t(gridDim.x) * blockDim.x) {
        const int64_t i0 = q * 4;
        uint32_t v[6];  // keys i0 - 1 .. i0 + 4; ~0u beyond the ends (no cluster has it)
        if (i0 + 4 <= total) {
            const uint4 m = *reinterpret_cast<const uint4*>(keys + i0);
            v[1] = m.x; v[2] = m.y; v[3] = m.z; v[4] = m.w;
        } else {
            for (int j = 0; j < 4; ++j) v[1 + j] = i0 + j < total ? keys[i0 + j] : ~0u;
        }
        v[0] = i0 > 0 ? keys[i0 - 1] : ~0u;
        v[5] = i0 + 4 < total ? keys[i0 + 4] : ~0u;
#pragma unroll
        for (int j = 1; j <= 4; ++j) {
            if (i0 + j - 1 >= total) break;
            if (v[j] != v[j - 1]) begin[cluster_of(v[j], kbits, k)] = int32_t(i0 + j - 1);
            if (v[j] != v[j + 1]) end[cluster_of(v[j], kbits, k)] = int32_t(i0 + j);
        }
    }
}

/// Per cluster: its count before this call (base), the new count, and the
/// pieces this call touches (items; items[nc] = 0 for the scan's total).
__global__ void items_kernel(int64_t nc, int piece, const int32_t* begin, const int32_t* end,
                             int32_t* cnt, int32_t* base, int32_t* items) {
    for (int64_t cl = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; cl <= nc;
         cl += int64_t(gridDim.x) * blockDim.x) {
        if (cl == nc) {
            items[cl] = 0;
            continue;
        }
        const int32_t len = end[cl] - begin[cl], b0 = cnt[cl];
        base[cl] = b0;
        cnt[cl] = b0 + len;
        items[cl] = len > 0 ? (b0 + len - 1) / piece - b0 / piece + 1 : 0;
    }
}

/// What a lane group needs of its piece, found once per piece here rather
/// than in the sums kernel (a binary search is ~15 dependent loads, which
/// held back the row loads there: bench/NOTES.md).
struct PieceDesc {
    int32_t start;  // first point in the sorted order
    int32_t len;    // points; bit 31: continues a piece an earlier call left open
    int32_t cl;     // cluster (problem * k + label)
    int32_t b;      // problem
};
constexpr int32_t kContinues = int32_t(0x80000000u);

__global__ void describe_kernel(int64_t nc, int64_t k, int piece, const int32_t* item_off,
                                const int32_t* begin, const int32_t* base, const int32_t* cnt,
                                PieceDesc* desc) {
    const int64_t items = item_off[nc];
    for (int64_t item = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; item < items;
         item += int64_t(gridDim.x) * blockDim.x) {
        int64_t lo = 0, hi = nc;  // item_off[lo] <= item < item_off[hi]
        while (hi - lo > 1) {
            const int64_t mid = (lo + hi) >> 1;
            if (item_off[mid] <= item) lo = mid;
            else hi = mid;
        }
        const int64_t cl = lo, S = piece;
        const int64_t b0 = base[cl], q = b0 / S + (item - item_off[cl]);
        const int64_t r_lo = max(b0, q * S), r_hi = min(int64_t(cnt[cl]), (q + 1) * S);
        PieceDesc d;
        d.start = int32_t(begin[cl] + (r_lo - b0));
        d.len = int32_t(r_hi - r_lo) | (r_lo != q * S ? kContinues : 0);
        d.cl = int32_t(cl);
        d.b = int32_t(cl / k);
        desc[item] = d;
    }
}

/// The raw bytes a lane loads of a row at once (VB = 16, 8, or one
/// element), kept raw while in flight so that 16-bit rows hold half the
/// registers.
template <int VB>
using RawChunk = std::conditional_t<
    VB == 16, uint4, std::conditional_t<VB == 8, uint2, std::conditional_t<VB == 4, uint32_t, uint16_t>>>;

template <class T, int VB>
__device__ __forceinline__ void unpack(const RawChunk<VB>& q, float (&v)[VB / sizeof(T)]) {
    T e[VB / sizeof(T)];
    static_assert(sizeof(e) == sizeof(q));
    memcpy(e, &q, sizeof(q));
#pragma unroll
    for (int j = 0; j < int(VB / sizeof(T)); ++j) v[j] = to_float(e[j]);
}

/// a = src[0..E) / dst[0..E) = a, in 16- or 8-byte vectors where E allows;
/// the row is aligned to them (rows of d floats, d % E == 0).
template <int E>
constexpr int kRowVec = E % 4 == 0 ? 4 : E % 2 == 0 ? 2 : 1;
template <int E>
__device__ __forceinline__ void load_row(const float* src, float (&a)[E]) {
#pragma unroll
    for (int j = 0; j < E; j += kRowVec<E>) {
        if constexpr (kRowVec<E> == 4) {
            const float4 v = *reinterpret_cast<const float4*>(src + j);
            a[j] = v.x, a[j + 1] = v.y, a[j + 2] = v.z, a[j + 3] = v.w;
        } else if constexpr (kRowVec<E> == 2) {
            const float2 v = *reinterpret_cast<const float2*>(src + j);
            a[j] = v.x, a[j + 1] = v.y;
        } else {
            a[j] = src[j];
        }
    }
}
template <int E>
__device__ __forceinline__ void store_row(float* dst, const float (&a)[E]) {
#pragma unroll
    for (int j = 0; j < E; j += kRowVec<E>) {
        if constexpr (kRowVec<E> == 4) *reinterpret_cast<float4*>(dst + j) = make_float4(a[j], a[j + 1], a[j + 2], a[j + 3]);
        else if constexpr (kRowVec<E> == 2) *reinterpret_cast<float2*>(dst + j) = make_float2(a[j], a[j + 1]);
        else dst[j] = a[j];
    }
}

struct PieceArgs {
    const int32_t* vals;     // sorted point indices
    const float* weights;    // (B * n) or null
    const PieceDesc* desc;   // (items)
    const int32_t* cnt;      // (nc) its points up to the end of this call
    const int32_t* item_off; // (nc + 1) its first piece of this call
    float* open;             // (nc, d) the piece an earlier call left open
    float* open_w;           // (nc)
    float* pieces;           // (items, d) one partial a piece
    float* piece_w;          // (items)
    int64_t nc, n, d, ld, bstride;
    int piece;
};

/// One lane group a piece: the piece's points (all of one cluster, in index
/// order) staged in shared memory a round at a time, kRowsInFlight row
/// loads issued before any is added, then the partial stored (no atomics).
/// A piece that continues one an earlier call left open starts from it.
/// Groups are the power of two lanes that covers a row in VB-byte chunks
/// (at most 32; longer rows take several passes). Why this shape: the
/// gather in cluster order is bound by loads in flight (bench/NOTES.md).
template <class T, int VB>
__global__ void __launch_bounds__(kWarps * 32, 4)
    piece_sums_kernel(const T* x, PieceArgs a, int lanes) {
    constexpr int E = VB / sizeof(T), U = kRowsInFlight;
    __shared__ int64_t s_off[kWarps][kStage];  // element offset of the point's row in x
    __shared__ float s_wt[kWarps][kStage];
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int groups = 32 / lanes, g = lane / lanes, gl = lane % lanes, cap = kStage / groups;
    const int64_t item = (int64_t(blockIdx.x) * kWarps + warp) * groups + g;
    if (item >= a.item_off[a.nc]) return;  // the whole group leaves
    const PieceDesc pd = a.desc[item];
    const int64_t cl = pd.cl, p0 = pd.start;
    const int m = pd.len & ~kContinues;
    const bool cont = (pd.len & kContinues) != 0;
    const int64_t xoff = pd.b * (a.bstride - a.n * a.ld);  // row of point i: xoff + i * ld
    const unsigned gmask = lanes == 32 ? 0xffffffffu : ((1u << lanes) - 1u) << (g * lanes);
    int64_t* soff = &s_off[warp][g * cap];
    float* swt = &s_wt[warp][g * cap];
    const int chunks = int(a.d / E);  // VB-byte chunks a row
    for (int c0 = 0; c0 < chunks; c0 += lanes) {
        const bool lane_in = c0 + gl < chunks;
        const int col = (c0 + gl) * E;
        float acc[E];
#pragma unroll
        for (int e = 0; e < E; ++e) acc[e] = 0.f;
        float wacc = 0.f;
        if (cont) {
            if (lane_in) load_row<E>(a.open + cl * a.d + col, acc);
            wacc = a.open_w[cl];
        }
        for (int r0 = 0; r0 < m; r0 += cap) {
            const int len = min(cap, m - r0);
            if (c0 == 0 || m > cap) {  // one round stays staged across passes
                __syncwarp(gmask);
                for (int p = gl; p < len; p += lanes) {
                    const int32_t vi = a.vals[p0 + r0 + p];
                    soff[p] = xoff + int64_t(vi) * a.ld;
                    swt[p] = a.weights ? a.weights[vi] : 1.f;
                }
                __syncwarp(gmask);
            }
            for (int i0 = 0; i0 < len; i0 += U) {
                RawChunk<VB> qv[U];
#pragma unroll
                for (int u = 0; u < U; ++u) {
                    qv[u] = RawChunk<VB>{};
                    if (i0 + u < len && lane_in)
                        qv[u] = __ldg(reinterpret_cast<const RawChunk<VB>*>(x + soff[i0 + u] + col));
                }
#pragma unroll
                for (int u = 0; u < U; ++u) {
                    if (i0 + u >= len) break;
                    const float w = swt[i0 + u];
                    float v[E];
                    unpack<T, VB>(qv[u], v);
#pragma unroll
                    for (int e = 0; e < E; ++e) acc[e] = fmaf(w, v[e], acc[e]);
                    wacc += w;
                }
            }
        }
        if (lane_in) store_row<E>(a.pieces + item * a.d + col, acc);
        if (c0 == 0 && gl == 0) a.piece_w[item] = wacc;
    }
}

constexpr int kFoldAhead = 8;  // piece loads issued before any is added

/// tot[0..V) += pieces[0], pieces[stride], ... (`fold` of them, in order),
/// then the carried piece open[0..V) when `carry_in`; open = pieces[keep_at *
/// stride] when `keep`. The loads of kFoldAhead pieces are issued before any
/// is added (the additions keep their order): one dependent load a piece left
/// the fold waiting on memory latency (H200, seed-k100: 67 us an iteration).
template <int V>
__device__ __forceinline__ void fold_element(float* tot, const float* pieces, int64_t stride, int fold,
                                             bool carry_in, bool keep, int keep_at, float* open) {
    float s[V];
    load_row<V>(tot, s);
    for (int i0 = 0; i0 < fold; i0 += kFoldAhead) {
        float q[kFoldAhead][V];
#pragma unroll
        for (int u = 0; u < kFoldAhead; ++u)
            if (i0 + u < fold) load_row<V>(pieces + (i0 + u) * stride, q[u]);
#pragma unroll
        for (int u = 0; u < kFoldAhead; ++u)
            if (i0 + u < fold)
#pragma unroll
                for (int e = 0; e < V; ++e) s[e] += q[u][e];
    }
    if (carry_in) {
        float o[V];
        load_row<V>(open, o);
#pragma unroll
        for (int e = 0; e < V; ++e) s[e] += o[e];
    }
    store_row<V>(tot, s);
    if (keep) {
        float kept[V];
        load_row<V>(pieces + keep_at * stride, kept);
        store_row<V>(open, kept);
    }
}

/// One warp a cluster: its sum += this call's pieces in order. The last
/// piece, when the cluster's count is not a multiple of the piece size, is
/// still open: it is carried to the next call, or folded in the last call.
/// Lanes take 4 columns at a time where rows allow 16-byte accesses.
__global__ void fold_pieces_kernel(PieceArgs a, bool last, float* sums, float* wsum) {
    const int64_t cl = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5), d = a.d;
    const int lane = threadIdx.x & 31;
    if (cl >= a.nc) return;
    const int32_t i0 = a.item_off[cl], ni = a.item_off[cl + 1] - i0;
    const bool open_end = a.cnt[cl] % a.piece != 0;
    const bool keep = open_end && !last && ni > 0;      // its last piece carried on
    const bool carry_in = open_end && last && ni == 0;  // left open by an earlier call
    const int fold = ni - (keep ? 1 : 0);
    if (fold == 0 && !keep && !carry_in) return;
    const bool vec4 = d % 4 == 0 &&
                      (reinterpret_cast<uintptr_t>(sums) | reinterpret_cast<uintptr_t>(a.pieces) |
                       reinterpret_cast<uintptr_t>(a.open)) % 16 == 0;
    if (vec4) {
        for (int64_t c = 4 * lane; c < d; c += 128)
            fold_element<4>(sums + cl * d + c, a.pieces + i0 * d + c, d, fold, carry_in, keep, ni - 1,
                            a.open + cl * d + c);
    } else {
        for (int64_t c = lane; c < d; c += 32)
            fold_element<1>(sums + cl * d + c, a.pieces + i0 * d + c, d, fold, carry_in, keep, ni - 1,
                            a.open + cl * d + c);
    }
    if (lane == 0)
        fold_element<1>(wsum + cl, a.piece_w + i0, 1, fold, carry_in, keep, ni - 1, a.open_w + cl);
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

/// One warp a centroid (no 64-bit division an element).
__global__ void finalize_kernel(const float* sums, const float* wsum, int64_t rows, int64_t k,
                                int64_t d, int64_t k_frozen, float* c) {
    const int64_t r = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);  // b * k + j
    if (r >= rows || r % k < k_frozen) return;
    const float w = wsum[r];
    if (!(w > 0.f)) return;
    const float inv = 1.f / w;
    for (int64_t e = r * d + (threadIdx.x & 31); e < (r + 1) * d; e += 32) c[e] = sums[e] * inv;
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

namespace {

/// The scratch's parts, carved in this order from one allocation (`base`
/// null: offsets only, for the size).
struct Scratch {
    uint32_t* keys[2];
    int32_t* vals[2];
    void* sort_temp;
    size_t sort_bytes;
    int32_t *begin, *end, *base, *items, *item_off;  // per cluster (+1 for items, item_off)
    void* scan_temp;
    size_t scan_bytes;
    PieceDesc* desc;
    float *pieces, *piece_w, *open, *open_w;
    size_t bytes;
};

/// Pieces a call can touch: a cluster's len points span at most
/// len / piece + 2 of them, and each holds at least one point of the call.
int64_t max_items(const UpdateShape& s) {
    const int64_t total = int64_t(s.batch) * s.rows, nc = int64_t(s.batch) * s.k;
    return std::min(total, (total + s.piece - 1) / s.piece + 2 * std::min(nc, total));
}

Scratch carve(char* base, const UpdateShape& s) {
    const int64_t total = int64_t(s.batch) * s.rows, nc = int64_t(s.batch) * s.k;
    const int64_t items = max_items(s);
    Scratch r{};
    size_t off = 0;
    auto take = [&](size_t bytes) {
        void* p = base ? base + off : nullptr;
        off += (bytes + 255) / 256 * 256;
        return p;
    };
    for (int i = 0; i < 2; ++i) {
        r.keys[i] = static_cast<uint32_t*>(take(size_t(total) * 4));
        r.vals[i] = static_cast<int32_t*>(take(size_t(total) * 4));
    }
    FK_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, r.sort_bytes, (const uint32_t*)nullptr,
                                                  (uint32_t*)nullptr, (const int32_t*)nullptr,
                                                  (int32_t*)nullptr, total, 0, 32));
    r.sort_temp = take(r.sort_bytes);
    r.begin = static_cast<int32_t*>(take(size_t(nc) * 4));
    r.end = static_cast<int32_t*>(take(size_t(nc) * 4));
    r.base = static_cast<int32_t*>(take(size_t(nc) * 4));
    r.items = static_cast<int32_t*>(take(size_t(nc + 1) * 4));
    r.item_off = static_cast<int32_t*>(take(size_t(nc + 1) * 4));
    FK_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(nullptr, r.scan_bytes, (const int32_t*)nullptr,
                                                (int32_t*)nullptr, nc + 1));
    r.scan_temp = take(r.scan_bytes);
    r.desc = static_cast<PieceDesc*>(take(size_t(items) * sizeof(PieceDesc)));
    r.pieces = static_cast<float*>(take(size_t(items) * size_t(s.d) * 4));
    r.piece_w = static_cast<float*>(take(size_t(items) * 4));
    r.open = static_cast<float*>(take(size_t(nc) * size_t(s.d) * 4));
    r.open_w = static_cast<float*>(take(size_t(nc) * 4));
    r.bytes = off;
    return r;
}

}  // namespace

int piece_points(int64_t fit_points) {
    // FK_PIECE=<points>: another size, for comparisons (read once: every
    // call of a fit must use the same size).
    static const int forced = [] {
        const char* e = std::getenv("FK_PIECE");
        return e ? std::max(1, std::atoi(e)) : 0;
    }();
    if (forced) return forced;
    return fit_points >= kLongPiecePoints ? kPieceLong : kPieceShort;
}

UpdateShape update_shape(int batch, int64_t rows, int64_t fit_rows, int64_t k, int64_t d, bool deterministic) {
    UpdateShape s;
    s.batch = batch;
    s.rows = rows;
    s.k = k;
    s.d = d;
    s.piece = piece_points(int64_t(batch) * fit_rows);
    s.deterministic = deterministic;
    return s;
}

size_t update_bytes(const UpdateShape& s) { return carve(nullptr, s).bytes; }

void cluster_sums(const int32_t* labels, const RowsRef& x, const float* weights, int batch,
                  int64_t n, int64_t k, int64_t d, const UpdateBuffers& buf, SumsCall call,
                  float* sums, float* wsum, int32_t* cnt, cudaStream_t stream) {
    const int64_t total = int64_t(batch) * n, nc = int64_t(batch) * k;
    if (call.first) {
        FK_CUDA_CHECK(cudaMemsetAsync(sums, 0, sizeof(float) * nc * d, stream));
        FK_CUDA_CHECK(cudaMemsetAsync(wsum, 0, sizeof(float) * nc, stream));
        FK_CUDA_CHECK(cudaMemsetAsync(cnt, 0, sizeof(int32_t) * nc, stream));
    }
    if (!buf.shape.deterministic && d <= kSmallMaxD && small_sums_smem(k, d) <= kSmallMaxSmem) {
        if (total == 0) return;
        switch (x.dtype) {
            case DType::f32: launch_small_sums<float>(labels, x, weights, batch, n, k, d, sums, wsum, cnt, stream); break;
            case DType::f16: launch_small_sums<__half>(labels, x, weights, batch, n, k, d, sums, wsum, cnt, stream); break;
            case DType::bf16: launch_small_sums<__nv_bfloat16>(labels, x, weights, batch, n, k, d, sums, wsum, cnt, stream); break;
        }
        return;
    }
    const UpdateShape& cap = buf.shape;
    if (batch != cap.batch || k != cap.k || d != cap.d || n > cap.rows)
        throw Error("flashkmeans: internal: update scratch for (" + std::to_string(cap.batch) + ", " +
                    std::to_string(cap.rows) + ", " + std::to_string(cap.k) + ", " +
                    std::to_string(cap.d) + ") used for (" + std::to_string(batch) + ", " +
                    std::to_string(n) + ", " + std::to_string(k) + ", " + std::to_string(d) + ")");
    const Scratch s = carve(static_cast<char*>(buf.data), cap);
    PieceArgs a{};
    a.vals = s.vals[0];
    a.weights = weights;
    a.desc = s.desc;
    a.cnt = cnt;
    a.item_off = s.item_off;
    a.open = s.open;
    a.open_w = s.open_w;
    a.pieces = s.pieces;
    a.piece_w = s.piece_w;
    a.nc = nc;
    a.n = n;
    a.d = d;
    a.ld = x.ld;
    a.bstride = x.batch;
    a.piece = cap.piece;
    FK_CUDA_CHECK(cudaMemsetAsync(s.begin, 0, size_t(nc) * 4, stream));
    FK_CUDA_CHECK(cudaMemsetAsync(s.end, 0, size_t(nc) * 4, stream));
    if (total > 0) {
        const int kbits = bits_for(k);
        // The label bits only: a stable sort on them leaves each label's
        // points in index order, which is problem by problem, so every
        // cluster (problem, label) is still one run, in index order. The
        // problem's bits would add passes (seed-k100: 7 bits, one pass of
        // CUB's 8-bit digits, against 12 bits and two).
        const int end_bit = kbits;
        const dim3 kgrid(std::min(grid_for(n, 256), 65535u / std::max(1u, unsigned(batch)) + 1u),
                         unsigned(batch));
        build_keys_kernel<<<kgrid, 256, 0, stream>>>(labels, n, kbits, s.keys[0], s.vals[0]);
        FK_CUDA_CHECK(cudaGetLastError());
        const uint32_t* skeys = s.keys[0];
        if (end_bit > 0) {
            size_t temp = s.sort_bytes;
            FK_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(s.sort_temp, temp, s.keys[0], s.keys[1],
                                                          s.vals[0], s.vals[1], total, 0, end_bit,
                                                          stream));
            skeys = s.keys[1];
            a.vals = s.vals[1];
        }
        runs_kernel<<<grid_for((total + 3) / 4, 256), 256, 0, stream>>>(skeys, total, kbits, k,
                                                                         s.begin, s.end);
        FK_CUDA_CHECK(cudaGetLastError());
    }
    items_kernel<<<grid_for(nc + 1, 256), 256, 0, stream>>>(nc, cap.piece, s.begin, s.end, cnt,
                                                             s.base, s.items);
    FK_CUDA_CHECK(cudaGetLastError());
    size_t scan_bytes = s.scan_bytes;
    FK_CUDA_CHECK(cub::DeviceScan::ExclusiveSum(s.scan_temp, scan_bytes, s.items, s.item_off,
                                                nc + 1, stream));
    if (total > 0) {
        describe_kernel<<<grid_for(max_items(cap), 256), 256, 0, stream>>>(
            nc, k, cap.piece, s.item_off, s.begin, s.base, cnt, s.desc);
        FK_CUDA_CHECK(cudaGetLastError());
        // Rows read in 16- or 8-byte chunks where every row start and the
        // row length allow it, else element by element.
        const int64_t esize = dtype_size(x.dtype);
        auto vec_ok = [&](int64_t vb) {
            const int64_t e = vb / esize;
            return d % e == 0 && x.ld % e == 0 && x.batch % e == 0 &&
                   reinterpret_cast<uintptr_t>(x.data) % vb == 0;
        };
        const int vb = vec_ok(16) ? 16 : vec_ok(8) ? 8 : int(esize);
        int lanes = 1;  // a power of two covering a row's chunks, at most 32
        while (lanes < 32 && lanes * vb < d * esize) lanes *= 2;
        const int64_t groups = 32 / lanes;
        const int64_t warps = (max_items(cap) + groups - 1) / groups;
        const unsigned blocks = unsigned((warps + kWarps - 1) / kWarps);
        auto launch = [&](auto tag) {
            using T = decltype(tag);
            const T* xt = static_cast<const T*>(x.data);
            if (vb == 16) piece_sums_kernel<T, 16><<<blocks, kWarps * 32, 0, stream>>>(xt, a, lanes);
            else if (vb == 8) piece_sums_kernel<T, 8><<<blocks, kWarps * 32, 0, stream>>>(xt, a, lanes);
            else piece_sums_kernel<T, sizeof(T)><<<blocks, kWarps * 32, 0, stream>>>(xt, a, lanes);
        };
        switch (x.dtype) {
            case DType::f32: launch(float{}); break;
            case DType::f16: launch(__half{}); break;
            case DType::bf16: launch(__nv_bfloat16{}); break;
        }
        FK_CUDA_CHECK(cudaGetLastError());
    }
    if (nc > 0) {
        fold_pieces_kernel<<<unsigned((nc + kWarps - 1) / kWarps), kWarps * 32, 0, stream>>>(
            a, call.last, sums, wsum);
        FK_CUDA_CHECK(cudaGetLastError());
    }
}

void finalize_centroids(const float* sums, const float* wsum, int batch, int64_t k, int64_t d,
                        int64_t k_frozen, float* centroids, cudaStream_t stream) {
    const int64_t rows = int64_t(batch) * k;
    if (rows == 0 || d == 0) return;
    finalize_kernel<<<unsigned((rows + kWarps - 1) / kWarps), kWarps * 32, 0, stream>>>(
        sums, wsum, rows, k, d, k_frozen, centroids);
    FK_CUDA_CHECK(cudaGetLastError());
}

}  // namespace flashkmeans::kernels
