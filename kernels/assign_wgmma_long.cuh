// FlashAssign argmin on Hopper tensor cores for f16/bf16 rows longer than
// the register-resident kernel takes (D > 128): a GEMM main loop over D with
// the argmin as its epilogue.
//
// A block of 2 warpgroups owns 128 points (64 a warpgroup) and walks the
// centroids in tiles of 256. For each tile it runs over D in chunks of 64
// elements (128 bytes): a stage holds the points' chunk (128 x 64) and the
// centroids' chunk (256 x 64), both fetched by thread 0 with one tensor-map
// copy each (TMA, 128-byte swizzle: wgmma reads them as they land, no packing
// pass, rows and columns past n, k and d arrive as zeros), into an S-stage
// ring guarded by full/empty mbarriers as in assign_wgmma.cuh. Each
// warpgroup accumulates its 64 x 256 tile in 128 registers with m64n256k16
// (both operands from shared memory) and, after the last chunk, folds the
// tile into the running argmin (WgArgmin, 64 columns at a time).
//
// The points' chunks are fetched again for every centroid tile (from L2: a
// block's rows are 128 x D x 2 bytes, 256 KB at D = 1024). The epilogue is
// not overlapped with this warpgroup's MMAs: at D = 1024 it is ~8% of a
// tile's tensor time (16 K outputs a warpgroup against 33.5 M MACs a tile).
#pragma once

#include <cuda.h>

#include "kernels/assign_wgmma.cuh"

namespace flashkmeans::kernels {

constexpr int kWlBM = 128;           // points a block (2 warpgroups of 64)
constexpr int kWlBN = 256;           // centroids a tile (one m64n256 chain)
constexpr int kWlBK = 64;            // elements of D a chunk: one 128-byte swizzle row
constexpr int kWlThreads = 256;
constexpr int kWlStages = 4;
constexpr int kWlABytes = kWlBM * kWlBK * 2;  // 16 KB
constexpr int kWlBBytes = kWlBN * kWlBK * 2;  // 32 KB
constexpr int kWlStageBytes = kWlABytes + kWlBBytes;
/// Dynamic shared memory: 1 KB of alignment slack, the ring, the reduction
/// doubles and the barriers.
constexpr size_t kWlSmemBytes = 1024 + size_t(kWlStages) * kWlStageBytes + 16 * sizeof(double) +
                                2 * kWlStages * sizeof(uint64_t);

/// The tensor maps of one call: points (d, n, B) and centroids (d, k, B).
/// cnorm_pad holds each problem's ||c||^2 padded to whole tiles (zeros past
/// k, unused for IP), so that the epilogue reads them without a bounds check.
struct WlMaps {
    CUtensorMap x, c;
};

template <WgOp OP>
__global__ void __launch_bounds__(kWlThreads, 1)
        assign_wgmma_long_kernel(const __grid_constant__ WlMaps maps, int nkc, int ntiles,
                                 const float* cnorm_pad, int64_t nrows, AssignArgs a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    static_assert(OP == WgOp::f16 || OP == WgOp::bf16, "16-bit operands");
    constexpr int S = kWlStages;
    extern __shared__ unsigned char wl_raw[];
    // 128-byte swizzled tiles must start on 1024-byte boundaries.
    unsigned char* ring = reinterpret_cast<unsigned char*>((reinterpret_cast<uintptr_t>(wl_raw) + 1023) &
                                                           ~uintptr_t(1023));
    double* red = reinterpret_cast<double*>(ring + S * kWlStageBytes);
    uint64_t* full = reinterpret_cast<uint64_t*>(red + 16);
    uint64_t* empty = full + S;

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, t = lane & 3;
    const int b = blockIdx.y;
    const int64_t row0 = int64_t(blockIdx.x) * kWlBM;
    const int rows_valid = int(min64(kWlBM, nrows - row0));
    const int64_t K = a.k;
    const int total = ntiles * nkc;  // chunks of the whole pass: tile-major

    if (tid == 0) {
        tma::prefetch_tensor_map(&maps.x);
        tma::prefetch_tensor_map(&maps.c);
        for (int s = 0; s < S; ++s) {
            tma::mbar_init(full + s, 1);
            tma::mbar_init(empty + s, 8);  // the block's 8 warps
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    __syncthreads();

    // Thread 0 fetches chunk g (tile g / nkc, D chunk g % nkc) into stage g % S
    // once all 8 warps have released chunk g - S.
    int next = 0;
    auto fetch = [&]() {
        const int st = next % S, jt = next / nkc, kc = next % nkc;
        unsigned char* dst = ring + st * kWlStageBytes;
        tma::mbar_arrive_expect_tx(full + st, kWlStageBytes);
        tma::tensor_copy_3d(dst, &maps.x, kc * kWlBK, int(row0), b, full + st);
        tma::tensor_copy_3d(dst + kWlABytes, &maps.c, kc * kWlBK, jt * kWlBN, b, full + st);
        ++next;
    };
    auto fetch_ready = [&]() {
        while (next < total && (next < S || tma::mbar_test(empty + next % S, ((next / S) - 1) & 1))) fetch();
    };
    auto fetch_until = [&](int g) {
        while (next <= g && next < total) {
            if (next >= S) tma::mbar_wait(empty + next % S, ((next / S) - 1) & 1);
            fetch();
        }
    };
    auto release = [&](int g) {
        __syncwarp();
        if (lane == 0) tma::mbar_arrive(empty + g % S);
        if (tid == 0) fetch_ready();
        __syncwarp();
    };
    if (tid == 0) fetch_ready();

    const int wgi = wg::warpgroup_index();  // this warpgroup's 64 rows of the block
    const int rbase = 64 * wgi + 16 * (warp & 3) + (lane >> 2);
    WgArgmin am(a, b, row0, rbase, rows_valid);
    const float* cn_b = cnorm_pad + int64_t(b) * ntiles * kWlBN;

    float acc[128];
    int g = 0;
    for (int jt = 0; jt < ntiles; ++jt) {
        for (int kc = 0; kc < nkc; ++kc, ++g) {
            if (tid == 0) fetch_until(g);
            __syncwarp();
            tma::mbar_wait(full + g % S, (g / S) & 1);
            const uint32_t sa = smem_addr(ring + (g % S) * kWlStageBytes) + wgi * (64 * 128);
            const uint32_t sb = smem_addr(ring + (g % S) * kWlStageBytes + kWlABytes);
            const uint64_t da = wg::desc_swizzle128(sa), db = wg::desc_swizzle128(sb);
            wg::fence();
#pragma unroll
            for (int ks = 0; ks < kWlBK / 16; ++ks) {
                if constexpr (OP == WgOp::f16) wg::wgmma_m64n256k16_f16_ss(acc, da + 2 * ks, db + 2 * ks, kc | ks);
                else wg::wgmma_m64n256k16_bf16_ss(acc, da + 2 * ks, db + 2 * ks, kc | ks);
            }
            wg::commit();
            // Chunk g - 1's MMAs are done once at most this one is in flight.
            wg::wait<1>();
            if (kc > 0) release(g - 1);
        }
        wg::wait<0>();
        wg::acc_fence(acc);
        release(g - 1);
        const int c0 = jt * kWlBN;
#pragma unroll
        for (int u = 0; u < kWlBN / kWgSub; ++u) {
            const int cs = c0 + u * kWgSub;
            am.sub_tile(*reinterpret_cast<float(*)[32]>(acc + 32 * u), cn_b + cs + 2 * t, cs,
                        int(min64(kWgSub, K - cs)), a.ip, t);
        }
    }
    am.finish<kWlBM>(a, b, row0, nrows, rbase, rows_valid, red);
#endif
}

}  // namespace flashkmeans::kernels
