// FlashAssign argmin on Hopper tensor cores for few centroids (K <= 128) and
// f16/bf16 rows of up to 128 elements: the centroids stay in shared memory
// for the whole launch and the points stream past them.
//
// With K <= 128 a point's distances are one m64n128 wgmma chain, so there is
// little work per byte of x and the pass should be bound by reading x once
// (seed-k100: 32 x 75600 rows of 256 bytes, 0.62 GB). The resident kernel
// (assign_wgmma.cuh) copies a block's points once and then exposes that copy,
// which at this K is most of a block's life. Here a block is persistent over
// the point tiles of one problem (tiles blockIdx.x, + gridDim.x, ...): thread
// 0 keeps S tiles of 128 points in flight (tensor-map copies with 128-byte
// swizzle, rows past n arriving as zeros) in a ring guarded by full/empty
// mbarriers, while the block's 2 warpgroups (64 points each) multiply the
// current tile with both operands in shared memory and fold it into the
// argmin (WgArgmin, as the other wgmma kernels). Two blocks share an SM, so
// one block's reduction overlaps the other's MMAs and copies. Measured on the
// H200 (bench/NOTES.md): one block an SM with a 5-stage ring (160 KB in
// flight) was slower, 0.70 against 0.61 ms an iteration at seed-k100, and
// refilling a late-released stage at the top of the next tile changed nothing.
#pragma once

#include <cuda.h>

#include "kernels/assign_wgmma_long.cuh"

namespace flashkmeans::kernels {

constexpr int kWsBM = 128;        // points a tile (2 warpgroups of 64)
constexpr int kWsBN = 128;        // centroids: all of them, one m64n128 chain
constexpr int kWsThreads = 256;
constexpr int kWsChunk = kWsBM * 128;  // bytes of 128 rows x 64 elements (one swizzle row each)
static_assert(kWsBM == kBM, "a tile is one objective slot");

/// Ring stages: 64 KB of points in flight a block, so that two blocks fit an
/// SM (NKC = 64-element chunks a row: 1 for D <= 64, 2 for D <= 128).
__host__ __device__ constexpr int ws_stages(int nkc) { return 4 / nkc; }
/// Dynamic shared memory: 1 KB of alignment slack, the centroids, the ring,
/// the norms, two sets of reduction doubles and the barriers.
__host__ __device__ constexpr size_t ws_smem_bytes(int nkc) {
    return 1024 + size_t(1 + ws_stages(nkc)) * nkc * kWsChunk + kWsBN * sizeof(float) + 16 * sizeof(double) +
           (2 * ws_stages(nkc) + 1) * sizeof(uint64_t);
}

/// maps: points (d, n, B) in boxes of 64 x kWsBM, centroids (d, k, B) in
/// boxes of 64 x kWsBN.
template <WgOp OP, int NKC>
__global__ void __launch_bounds__(kWsThreads, 2)
        assign_wgmma_smallk_kernel(const __grid_constant__ WlMaps maps, int64_t nrows, AssignArgs a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    static_assert(OP == WgOp::f16 || OP == WgOp::bf16, "16-bit operands");
    constexpr int S = ws_stages(NKC), tile_bytes = NKC * kWsChunk;
    extern __shared__ unsigned char ws_raw[];
    // 128-byte swizzled tiles must start on 1024-byte boundaries.
    unsigned char* cs = reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(ws_raw) + 1023) &
                                                         ~uintptr_t(1023));
    unsigned char* ring = cs + tile_bytes;
    float* cn = reinterpret_cast<float*>(ring + S * tile_bytes);
    double* red = reinterpret_cast<double*>(cn + kWsBN);  // 8 a tile, two tiles' worth
    uint64_t* full = reinterpret_cast<uint64_t*>(red + 16);
    uint64_t* empty = full + S;
    uint64_t* cbar = empty + S;

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, t = lane & 3;
    const int b = blockIdx.y;
    const int64_t ntiles = (nrows + kWsBM - 1) / kWsBM, first = blockIdx.x, step = gridDim.x;
    const int mine = first < ntiles ? int((ntiles - 1 - first) / step + 1) : 0;

    if (tid == 0) {
        tma::prefetch_tensor_map(&maps.x);
        tma::prefetch_tensor_map(&maps.c);
        for (int s = 0; s < S; ++s) {
            tma::mbar_init(full + s, 1);
            tma::mbar_init(empty + s, kWsThreads / 32);
        }
        tma::mbar_init(cbar, 1);
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    // This problem's ||c||^2, zeros past k (and for IP, where they are unused).
    for (int j = tid; j < kWsBN; j += kWsThreads) cn[j] = (!a.ip && j < a.k) ? a.cnorm[int64_t(b) * a.k + j] : 0.f;
    __syncthreads();

    // Thread 0 fetches this block's i-th tile into stage i % S once all 8
    // warps have released tile i - S.
    int next = 0;
    auto fetch = [&]() {
        const int st = next % S;
        const int row = int((first + int64_t(next) * step) * kWsBM);
        tma::mbar_arrive_expect_tx(full + st, tile_bytes);
#pragma unroll
        for (int kc = 0; kc < NKC; ++kc)
            tma::tensor_copy_3d(ring + st * tile_bytes + kc * kWsChunk, &maps.x, 64 * kc, row, b, full + st);
        ++next;
    };
    auto fetch_ready = [&]() {  // without blocking
        while (next < mine && (next < S || tma::mbar_test(empty + next % S, ((next / S) - 1) & 1))) fetch();
    };
    auto fetch_until = [&](int i) {  // tiles up to i, blocking
        while (next <= i && next < mine) {
            if (next >= S) tma::mbar_wait(empty + next % S, ((next / S) - 1) & 1);
            fetch();
        }
    };
    if (tid == 0) {
        // The centroids once (rows past k arrive as zeros), then the first tiles.
        tma::mbar_arrive_expect_tx(cbar, tile_bytes);
#pragma unroll
        for (int kc = 0; kc < NKC; ++kc) tma::tensor_copy_3d(cs + kc * kWsChunk, &maps.c, 64 * kc, 0, b, cbar);
        fetch_ready();
    }
    tma::mbar_wait(cbar, 0);

    const int wgi = wg::warpgroup_index();  // this warpgroup's 64 rows of a tile
    const int rbase = 64 * wgi + 16 * (warp & 3) + (lane >> 2);
    const int64_t K = a.k;
    const uint32_t sb = smem_addr(cs);
    for (int i = 0; i < mine; ++i) {
        const int64_t row0 = (first + int64_t(i) * step) * kWsBM;
        const int rows_valid = int(min64(kWsBM, nrows - row0));
        WgArgmin am(a, b, row0, rbase, rows_valid);  // its ||x||^2 loads overlap the wait and the MMAs
        if (tid == 0) fetch_until(i);
        __syncwarp();
        const int st = i % S;
        tma::mbar_wait(full + st, (i / S) & 1);
        const uint32_t sa = smem_addr(ring + st * tile_bytes) + wgi * (64 * 128);
        float acc[64];
        wg::fence();
#pragma unroll
        for (int kc = 0; kc < NKC; ++kc) {
            const uint64_t da = wg::desc_swizzle128(sa + kc * kWsChunk), db = wg::desc_swizzle128(sb + kc * kWsChunk);
#pragma unroll
            for (int ks = 0; ks < 4; ++ks) {
                if constexpr (OP == WgOp::f16) wg::wgmma_m64n128k16_f16_ss(acc, da + 2 * ks, db + 2 * ks, kc | ks);
                else wg::wgmma_m64n128k16_bf16_ss(acc, da + 2 * ks, db + 2 * ks, kc | ks);
            }
        }
        wg::commit();
        wg::wait<0>();
        wg::acc_fence(acc);
        // The stage is free once this warp's MMAs are done.
        __syncwarp();
        if (lane == 0) tma::mbar_arrive(empty + st);
        if (tid == 0) fetch_ready();
        __syncwarp();
#pragma unroll
        for (int u = 0; u < 2; ++u) {
            const int c0 = u * kWgSub;
            am.sub_tile(*reinterpret_cast<float(*)[32]>(acc + 32 * u), cn + c0 + 2 * t, c0,
                        int(min64(kWgSub, K - c0)), a.ip, t);
        }
        // Alternate reduction slots: a warp can reach the next tile's finish
        // before thread 0 has read this one's.
        am.finish<kWsBM>(a, b, row0, nrows, rbase, rows_valid, red + 8 * (i & 1));
    }
#endif
}

}  // namespace flashkmeans::kernels
