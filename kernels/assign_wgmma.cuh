// FlashAssign argmin on Hopper tensor cores (sm_90a wgmma): f16/bf16 rows of
// up to 64 words (D <= 128) and f32 rows computed in tf32, up to 128 words.
//
// A block of 4 warpgroups owns 256 points, 64 a warpgroup, copied once into
// shared memory in wgmma's "core matrix" layout. f16/bf16 load their A
// fragments into registers from there (32 registers at D = 128) and reuse
// them for every centroid tile; tf32 reads A from shared memory (its register
// form would need 64 registers at D = 128 beside the accumulators).
//
// Centroids are packed once per call (pack_tiles_kernel) into tiles of BN
// rows in the same layout followed by their norms, so that thread 0 moves a
// tile with one bulk copy (cp.async.bulk) into an S-stage ring guarded by
// mbarriers: "full" (the copy's bytes landed) and "empty" (all 16 warps have
// reduced the tile). Warpgroups are coupled only through those barriers.
//
// A tile is computed as 64-column sub-tiles accumulated alternately into two
// sets of 32 fp32 registers; the wgmma of sub-tile u + 1 is issued before the
// argmin of sub-tile u, so the tensor cores run while the FP32 pipes do the
// epilogue. The epilogue keeps a running (min, code) per row slot with ~4
// instructions a dot product and reduces across the 4 threads sharing a row
// once, at the end.
//
// Measured on H100 (bench/NOTES.md, "assign kernel v4"): the centroid fetch
// was the limit of the previous version (2048 cp.async of 16 bytes a tile
// and a __syncthreads a tile); with bulk copies ivf-n4M-k65536 went from 206
// to 176 ms. Tried and measured no faster: overlapping the epilogue alone
// (same cp.async fetch), multicasting each tile to a 2-block cluster (L2
// bandwidth is not the limit), and a persistent grid with A from shared
// memory (ptxas keeps wgmmas overlapped across nested loops only without an
// accumulator in flight at the inner back edge, and then they overlap less).
// On the H200 (NOTES, "Session of 2026-12-03 (night)"), persistent blocks
// with A in registers and the next item's points copied during this one
// were 10-35% slower in three loop shapes. In a nested loop, a wgmma in
// flight at the inner loop's entry also makes ptxas serialize them all.
#pragma once

#include "kernels/assign.cuh"
#include "kernels/tma.cuh"
#include "kernels/wgmma.cuh"

#include <climits>

namespace flashkmeans::kernels {

enum class WgOp { f16, bf16, tf32 };

constexpr int kWgNwg = 4;                 // warpgroups a block
constexpr int kWgBM = 64 * kWgNwg;        // points a block
constexpr int kWgThreads = 128 * kWgNwg;
constexpr int kWgSub = 64;                // columns a sub-tile (one m64n64 wgmma chain)
constexpr int kWgMaxWords16 = 64;         // f16/bf16: words a row the A registers hold
constexpr int kWgMaxWordsTf32 = 128;      // tf32: words a row (128 KB of points in smem)

/// Each k step is 32 bytes of a row: k16 for 16-bit types, k8 for tf32.
__host__ __device__ constexpr int wg_nks(WgOp op, int words) {
    return op == WgOp::tf32 ? (words <= 64 ? 8 : 16) : (words <= 32 ? 4 : 8);
}
/// Centroids a tile, and pipeline stages: tf32 at D > 64 keeps 128 KB of
/// points resident, which leaves room for 3 stages of 64 centroids.
__host__ __device__ constexpr int wg_bn(WgOp op, int nks) { return op == WgOp::tf32 && nks > 8 ? 64 : 128; }
__host__ __device__ constexpr int wg_stages(WgOp op, int nks) { return op == WgOp::tf32 && nks > 8 ? 3 : 4; }
__host__ __device__ constexpr size_t wg_smem_bytes(WgOp op, int nks) {
    return size_t(kWgBM) * nks * 32 +
           wg_stages(op, nks) * (size_t(wg_bn(op, nks)) * nks * 32 + wg_bn(op, nks) * sizeof(float)) +
           16 * sizeof(double) + 2 * wg_stages(op, nks) * sizeof(uint64_t);
}

__device__ __forceinline__ void ldsm_x4_addr(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr)
                 : "memory");
}
__device__ __forceinline__ uint4 round_tf32x4(uint4 v) {
    uint4 r;
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r.x) : "f"(__uint_as_float(v.x)));
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r.y) : "f"(__uint_as_float(v.y)));
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r.z) : "f"(__uint_as_float(v.z)));
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r.w) : "f"(__uint_as_float(v.w)));
    return r;
}

/// Byte offset of 16-byte chunk q of row r in the core-matrix layout (8-row x
/// 16-byte matrices, kq chunks a row): K-adjacent matrices 128 bytes apart,
/// 8-row groups kq * 128 bytes apart.
__device__ __forceinline__ int cm_offset(int kq, int r, int q) { return ((r >> 3) * kq + q) * 128 + (r & 7) * 16; }

/// The two row slots (rows g and g + 8 of its warp's 16) of one thread: the
/// best key so far and its centroid. L2 key = ||c||^2 - 2 x.c (the row's
/// ||x||^2 left out), clamped at -||x||^2 so that ||x||^2 + key is Faiss's
/// distance clamped at 0 and a clamped tie goes to the lower index; IP key =
/// -x.c. A thread meets its columns in ascending order, so a strict < keeps
/// the lowest index.
struct WgArgmin {
    float best[2], xn[2];
    int bidx[2];

    __device__ WgArgmin(const AssignArgs& a, int b, int64_t row0, int rbase, int rows_valid) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            best[h] = INFINITY;
            bidx[h] = INT_MAX;
            const int r = rbase + 8 * h;
            xn[h] = (!a.ip && r < rows_valid) ? a.xnorm[b * a.n + row0 + r] : 0.f;
        }
    }

    /// acc[4 jn + 2 h + e] = dot(row g + 8 h, centroid c0 + 8 jn + 2 t + e);
    /// cv of the 64 columns are valid; cn = the sub-tile's norms + 2 t.
    __device__ __forceinline__ void sub_tile(const float (&acc)[32], const float* cn, int c0, int cv, bool ip,
                                             int t) {
        if (cv <= 0) return;
        if (cv >= kWgSub) return sub_tile_all(acc, cn, c0, ip, t);
        if (ip) running_min<true, false>(acc, cn, c0, cv, t);
        else running_min<false, false>(acc, cn, c0, cv, t);
    }

    /// A sub-tile whose 64 columns are all valid: the same running minimum
    /// without a validity test a column. Measured on the H200 (bench/NOTES.md,
    /// "epilogue without column tests"): 5-11% off the iteration at K >= 1024.
    /// Splitting the minimum into 2 or 4 independent chains merged at the end
    /// (shorter dependency chains, more instructions) measured slower than one.
    __device__ __forceinline__ void sub_tile_all(const float (&acc)[32], const float* cn, int c0, bool ip, int t) {
        if (ip) running_min<true, true>(acc, cn, c0, kWgSub, t);
        else running_min<false, true>(acc, cn, c0, kWgSub, t);
    }

    /// The same as sub_tile_all, with the column search deferred: the running
    /// minimum alone (one FMNMX a column on the ALU pipe, against FSETP, SEL
    /// and FMNMX), and only when a thread of the warp improves on its best,
    /// the lowest column equal to the new minimum, from the same FFMAs, so
    /// labels and distances are the eager form's bit for bit. ncu on the
    /// H200 had the ALU pipe at ~50% beside the tensor pipe's ~55%, with
    /// "math pipe throttle" among the top stalls, and the card at its 700 W
    /// cap (~1.75 GHz). A thread improves on its i-th sub-tile with
    /// probability ~1/i, so a warp of 32 takes the search in most sub-tiles
    /// while K is small and in ever fewer as it grows: kWgLazyMinK.
    __device__ __forceinline__ void sub_tile_lazy(const float (&acc)[32], const float* cn, int c0, bool ip, int t) {
        if (ip) lazy_min<true>(acc, cn, c0, t);
        else lazy_min<false>(acc, cn, c0, t);
    }

    template <bool IP>
    __device__ __forceinline__ void lazy_min(const float (&acc)[32], const float* cn, int c0, int t) {
        // Both row slots' minima first, so that the norms die before the
        // column searches (which read them again from shared memory).
        float mn[2] = {best[0], best[1]};
#pragma unroll
        for (int jn = 0; jn < 8; ++jn) {
            const float2 cn2 = IP ? float2{0.f, 0.f} : *reinterpret_cast<const float2*>(cn + 8 * jn);
#pragma unroll
            for (int h = 0; h < 2; ++h)
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const float a2 = acc[4 * jn + 2 * h + e];
                    mn[h] = fminf(IP ? -a2 : fmaf(-2.f, a2, e ? cn2.y : cn2.x), mn[h]);
                }
        }
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const bool improved = mn[h] < best[h];  // strict: a tie keeps the earlier, lower index
            if (__any_sync(0xffffffffu, improved) && improved) {
                int code = 0;
#pragma unroll
                for (int i = 15; i >= 0; --i) {  // the lowest column holding the minimum
                    const int jn = i >> 1, e = i & 1;
                    const float a2 = acc[4 * jn + 2 * h + e];
                    if ((IP ? -a2 : fmaf(-2.f, a2, cn[8 * jn + e])) == mn[h]) code = 8 * jn + e;
                }
                commit(acc, cn, c0, kWgSub, IP, t, h, mn[h], code);
            }
        }
    }

    /// Each row slot's running minimum over the sub-tile's columns (FULL: all
    /// 64 valid, no test a column).
    template <bool IP, bool FULL>
    __device__ __forceinline__ void running_min(const float (&acc)[32], const float* cn, int c0, int cv, int t) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            float bb = best[h];
            int code = -1;
#pragma unroll
            for (int jn = 0; jn < 8; ++jn) {
                const float2 cn2 = IP ? float2{0.f, 0.f} : *reinterpret_cast<const float2*>(cn + 8 * jn);
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const float a2 = acc[4 * jn + 2 * h + e];
                    const float v = IP ? -a2 : fmaf(-2.f, a2, e ? cn2.y : cn2.x);
                    const bool ok = FULL || 8 * jn + 2 * t + e < cv;
                    if (ok && v < bb) code = 8 * jn + e;
                    bb = ok ? fminf(v, bb) : bb;
                }
            }
            commit(acc, cn, c0, cv, IP, t, h, bb, code);
        }
    }

    /// Row slot h's minimum over the sub-tile: bb (with best[h] folded in)
    /// and its column code (8 jn + e; -1: best[h] stays).
    __device__ __forceinline__ void commit(const float (&acc)[32], const float* cn, int c0, int cv, bool ip, int t,
                                           int h, float bb, int code) {
        if (!ip && bb < -xn[h]) {
            // Rare: a distance clamped at zero. Replay the sub-tile with the
            // clamped keys so that a clamped tie goes to the lower index.
            float b2 = best[h];
            int i2 = bidx[h];
            for (int jn = 0; jn < 8; ++jn)
                for (int e = 0; e < 2; ++e) {
                    const int c = 8 * jn + 2 * t + e;
                    if (c < cv) {
                        const float v = fmaxf(fmaf(-2.f, acc[4 * jn + 2 * h + e], cn[8 * jn + e]), -xn[h]);
                        if (v < b2) { b2 = v; i2 = c0 + c; }
                    }
                }
            best[h] = b2;
            bidx[h] = i2;
        } else if (code >= 0) {
            best[h] = bb;
            bidx[h] = c0 + 2 * t + code;
        }
    }

    /// Reduce across the quad sharing each row, write labels and distances,
    /// and one objective partial per 128 points (kBM: the caller's partial
    /// array), BM rows a block. red: one double a warp (16 at most) of shared memory.
    template <int BM>
    __device__ void finish(const AssignArgs& a, int b, int64_t row0, int64_t nrows, int rbase, int rows_valid,
                           double* red) const {
        static_assert(BM % kBM == 0, "a block's rows are whole objective slots");
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
        double contrib = 0;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            float v = best[h];
            int id = bidx[h];
#pragma unroll
            for (int off = 1; off < 4; off <<= 1) {
                const float v2 = __shfl_xor_sync(0xffffffffu, v, off);
                const int i2 = __shfl_xor_sync(0xffffffffu, id, off);
                if (better(v2, i2, v, id)) { v = v2; id = i2; }
            }
            const int r = rbase + 8 * h;
            if ((lane & 3) == 0 && r < rows_valid) {
                if (id == INT_MAX) id = 0;  // every distance NaN: keep a valid label
                const float out = a.ip ? -v : fmaxf(xn[h] + v, 0.f);
                a.labels[b * a.n + row0 + r] = id;
                if (a.dist) a.dist[b * a.n + row0 + r] = out;
                contrib += out;
            }
        }
        for (int off = 16; off > 0; off >>= 1) contrib += __shfl_down_sync(0xffffffffu, contrib, off);
        if (lane == 0) red[warp] = contrib;
        __syncthreads();
        if (threadIdx.x < BM / kBM) {
            const int64_t slot = row0 / kBM + threadIdx.x;
            if (slot * kBM < nrows) {
                constexpr int warps_per_slot = kBM / 16;
                double s = 0;
                for (int w = warps_per_slot * threadIdx.x; w < warps_per_slot * (threadIdx.x + 1); ++w) s += red[w];
                a.partial[int64_t(b) * stream_grid_x(nrows) + slot] = s;
            }
        }
    }
};

/// Bytes of one packed centroid tile: BN rows in the core-matrix layout, then
/// their BN squared norms (zero for IP).
__host__ __device__ constexpr int wg_tile_bytes(WgOp op, int nks) {
    return wg_bn(op, nks) * nks * 32 + wg_bn(op, nks) * int(sizeof(float));
}

/// The centroids of every problem as packed tiles (pack_tiles_kernel): tile
/// jt of problem b at tiles + (b * ntiles + jt) * wg_tile_bytes.
struct WgTiles {
    const unsigned char* tiles;
    int ntiles;
};

/// The deferred column search (WgArgmin::sub_tile_lazy) from this many
/// centroids on, f16/bf16 only. Measured on the H200 (bench/NOTES.md,
/// "deferred column search"), f16, D = 128, lazy against eager: K = 4096
/// 2% slower, 8192 level, 16384 5% faster, 32768 8%, 65536 9-10%; tf32 at
/// K = 16384 14% slower (not understood; tf32 stays eager).
constexpr int64_t kWgLazyMinK = 16384;

/// NKS = wg_nks(OP, words a row); LAZY: the loop's sub-tiles with the
/// deferred column search.
template <WgOp OP, int NKS, bool LAZY>
__global__ void __launch_bounds__(kWgThreads, 1) assign_wgmma_kernel(StreamGeom geo, WgTiles ct, AssignArgs a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr bool TF32 = OP == WgOp::tf32;
    constexpr int BM = kWgBM, NT = kWgThreads, BN = wg_bn(OP, NKS), S = wg_stages(OP, NKS);
    constexpr int SPT = BN / kWgSub;  // sub-tiles a tile
    constexpr int kq = 2 * NKS;       // 16-byte chunks a row
    constexpr uint32_t lbo = 128, sbo = kq * 128;
    constexpr int xbytes = BM * NKS * 32, tile_bytes = wg_tile_bytes(OP, NKS), data_bytes = BN * NKS * 32;
    static_assert(tile_bytes % 128 == 0, "stages stay 128-byte aligned");
    extern __shared__ __align__(128) unsigned char wsm[];
    unsigned char* xs = wsm;
    unsigned char* cstage = wsm + xbytes;  // S x (tile data, norms)
    double* red = reinterpret_cast<double*>(cstage + S * tile_bytes);
    uint64_t* full = reinterpret_cast<uint64_t*>(red + 16);  // tile landed
    uint64_t* empty = full + S;                              // all 16 warps done with it

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, t = lane & 3;
    const int b = blockIdx.y;
    const int64_t row0 = int64_t(blockIdx.x) * BM;
    const int rows_valid = int(min64(BM, geo.x.rows - row0));
    const uint32_t* X = geo.x.data + b * geo.x.batch + row0 * geo.x.ld;
    const int64_t K = geo.c.rows;
    const int ntiles = ct.ntiles;
    const bool ip = a.ip;
    const unsigned char* tiles = ct.tiles + int64_t(b) * ntiles * tile_bytes;

    if (tid == 0) {
        for (int s = 0; s < S; ++s) {
            tma::mbar_init(full + s, 1);
            tma::mbar_init(empty + s, 16);
        }
    }
    __syncthreads();

    // Thread 0 fetches tile jt into stage jt % S, with one bulk copy (data and
    // norms), once all 16 warps have released tile jt - S.
    int next = 0;  // thread 0: the next tile to fetch
    auto fetch = [&]() {
        const int st = next % S;
        tma::mbar_arrive_expect_tx(full + st, tile_bytes);
        tma::bulk_copy(cstage + st * tile_bytes, tiles + int64_t(next) * tile_bytes, tile_bytes, full + st);
        ++next;
    };
    auto fetch_ready = [&]() {  // thread 0, without blocking
        while (next < ntiles && (next < S || tma::mbar_test(empty + next % S, ((next / S) - 1) & 1))) fetch();
    };
    auto fetch_until = [&](int T) {  // thread 0: tiles up to T, blocking
        while (next <= T && next < ntiles) {
            if (next >= S) tma::mbar_wait(empty + next % S, ((next / S) - 1) & 1);
            fetch();
        }
    };
    if (tid == 0) fetch_ready();

    // The points, rows in the core-matrix layout.
    for (int idx = tid; idx < BM * kq; idx += NT) {
        const int rest = idx >> 1, r = rest & (BM - 1), q = ((rest / BM) << 1) | (idx & 1);
        const bool ok = r < rows_valid && q < geo.x.q;
        cp_async16(xs + cm_offset(kq, r, q), ok ? X + r * geo.x.ld + q * 4 : X, ok);
    }
    cp_async_commit();
    cp_async_wait<0>();
    if constexpr (TF32) {
        // The tensor cores would truncate f32 to tf32; round to nearest, as
        // the mma.sync path does, the chunks this thread copied.
        for (int idx = tid; idx < BM * kq; idx += NT) {
            const int rest = idx >> 1, r = rest & (BM - 1), q = ((rest / BM) << 1) | (idx & 1);
            uint4* p = reinterpret_cast<uint4*>(xs + cm_offset(kq, r, q));
            *p = round_tf32x4(*p);
        }
    }
    wg::fence_proxy_async();
    __syncthreads();

    // This thread's rows: 64 * warpgroup + 16 * (warp in group) + g + 8 h.
    const int rbase = 64 * (warp >> 2) + 16 * (warp & 3) + (lane >> 2);
    WgArgmin am(a, b, row0, rbase, rows_valid);

    constexpr int NA = TF32 ? 1 : NKS;
    uint32_t afr[NA][4];
    if constexpr (!TF32) {
        const int r = 64 * (warp >> 2) + 16 * (warp & 3) + (lane & 15);
#pragma unroll
        for (int ks = 0; ks < NKS; ++ks) ldsm_x4_addr(afr[ks], smem_addr(xs) + cm_offset(kq, r, 2 * ks + (lane >> 4)));
    }
    // tf32: this warpgroup's 64 rows. From threadIdx, not wg::warpgroup_index():
    // with the A descriptors in uniform registers (16 back-to-back wgmmas a
    // sub-tile, ~64 fewer instructions) ivf-n1M took 18.9 ms against 15.5
    // on the H200 (bench/NOTES.md, "uniform descriptors"); not understood.
    const uint32_t xa = smem_addr(xs) + (warp >> 2) * 8 * sbo;

    // Before the first sub-tile of tile T: make sure it was fetched, wait
    // until it has landed.
    auto acquire = [&](int u) {
        if (u % SPT != 0 || u / SPT >= ntiles) return;
        const int T = u / SPT;
        if (tid == 0) fetch_until(T);
        __syncwarp();
        tma::mbar_wait(full + T % S, (T / S) & 1);
    };
    // After the last sub-tile of tile T is reduced (its wgmma waited for, its
    // norms read): every warp releases the stage.
    auto release = [&](int u) {
        if (u % SPT != SPT - 1 || u / SPT >= ntiles) return;
        const int st = (u / SPT) % S;
        wg::fence_proxy_async();  // the norms were read through the generic proxy
        __syncwarp();
        if (lane == 0) tma::mbar_arrive(empty + st);
        if (tid == 0) fetch_ready();
        __syncwarp();
    };

    // A k step advances a descriptor's address field (bytes / 16) by 256 / 16;
    // shared addresses stay below 2^18, so the field never carries over.
    const uint64_t da0 = wg::desc_noswizzle(xa, lbo, sbo);
    auto issue_sub = [&](float (&acc)[32], int u) {
        acquire(u);
        const uint64_t db0 = wg::desc_noswizzle(
                smem_addr(cstage + ((u / SPT) % S) * tile_bytes) + (u % SPT) * 8 * sbo, lbo, sbo);
        wg::fence();
#pragma unroll
        for (int ks = 0; ks < NKS; ++ks) {
            const uint64_t db = db0 + ks * 16;
            if constexpr (OP == WgOp::f16) wg::wgmma_m64n64k16_f16(acc, afr[ks], db, ks);
            else if constexpr (OP == WgOp::bf16) wg::wgmma_m64n64k16_bf16(acc, afr[ks], db, ks);
            else wg::wgmma_m64n64k8_tf32_ss(acc, da0 + ks * 16, db, ks);
        }
        wg::commit();
    };
    // in_loop: a sub-tile of the main loop below, whose columns are all
    // valid (only the last tile can be partial, and the last two sub-tiles
    // are reduced after the loop), so the loop carries no column tests.
    auto reduce = [&](float (&acc)[32], int u, bool in_loop) {
        wg::acc_fence(acc);
        const int c0 = u * kWgSub;
        const float* cn = reinterpret_cast<const float*>(cstage + ((u / SPT) % S) * tile_bytes + data_bytes) +
                          (u % SPT) * kWgSub + 2 * t;
        if (in_loop && LAZY) am.sub_tile_lazy(acc, cn, c0, ip, t);
        else if (in_loop) am.sub_tile_all(acc, cn, c0, ip, t);
        else am.sub_tile(acc, cn, c0, int(min64(kWgSub, K - c0)), ip, t);
        release(u);
    };

    // Sub-tile u runs in acc0 for even u, acc1 for odd u; u + 1 is issued
    // before u is reduced. The count is rounded up to even (a last sub-tile
    // past K is computed on a stale stage and skipped by sub_tile) so that
    // the loop body is one straight sequence. ptxas serializes every wgmma
    // of the kernel (C7514) if a wgmma still in flight at the loop's back
    // edge is read after it, so the body ends waiting for acc0's: by then
    // it has run beside the reduction of acc1, and the next iteration's
    // first reduction again overlaps a fresh wgmma.
    const int nsub = (ntiles * SPT + 1) & ~1;
    float acc0[32], acc1[32];
    issue_sub(acc0, 0);
    int u = 0;
    for (; u + 2 < nsub; u += 2) {
        issue_sub(acc1, u + 1);
        wg::wait<1>();
        reduce(acc0, u, true);
        issue_sub(acc0, u + 2);
        wg::wait<1>();
        reduce(acc1, u + 1, true);
        wg::wait<0>();
    }
    issue_sub(acc1, u + 1);
    wg::wait<1>();
    reduce(acc0, u, false);
    wg::wait<0>();
    reduce(acc1, u + 1, false);
    am.finish<kWgBM>(a, b, row0, geo.x.rows, rbase, rows_valid, red);
#endif
}

/// Packs the centroids into WgTiles (tf32: rounded to nearest); one thread a
/// 16-byte chunk, rows past K and chunks past the row zero.
template <WgOp OP, int NKS>
__global__ void pack_tiles_kernel(Operand c, int batch, const float* cnorm, int64_t k, bool ip, int ntiles,
                                  unsigned char* tiles) {
    constexpr int BN = wg_bn(OP, NKS), kq = 2 * NKS, tile_bytes = wg_tile_bytes(OP, NKS);
    constexpr int per_tile = BN * kq + BN / 4;  // data chunks, then norm chunks (4 norms each)
    const int64_t total = int64_t(batch) * ntiles * per_tile;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t bt = i / per_tile;
        const int w = int(i % per_tile), jt = int(bt % ntiles), b = int(bt / ntiles);
        unsigned char* tile = tiles + bt * tile_bytes;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (w < BN * kq) {
            const int r = w / kq, q = w % kq;
            const int64_t row = int64_t(jt) * BN + r;
            if (row < c.rows && q < c.q) {
                v = *reinterpret_cast<const uint4*>(c.data + b * c.batch + row * c.ld + 4 * q);
                if (OP == WgOp::tf32) v = round_tf32x4(v);
            }
            *reinterpret_cast<uint4*>(tile + cm_offset(kq, r, q)) = v;
        } else {
            const int r0 = 4 * (w - BN * kq);
            float f[4];
            for (int e = 0; e < 4; ++e) {
                const int64_t row = int64_t(jt) * BN + r0 + e;
                f[e] = (!ip && row < k) ? cnorm[b * k + row] : 0.f;
            }
            *reinterpret_cast<float4*>(tile + BN * NKS * 32 + 4 * r0) = make_float4(f[0], f[1], f[2], f[3]);
        }
    }
}

}  // namespace flashkmeans::kernels
