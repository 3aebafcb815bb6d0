// FlashAssign argmin on Hopper tensor cores (sm_90a wgmma) in tf32, for f32
// points of up to 128 words (D <= 128) a row.
//
// tf32 wgmma reads 32-bit operands; the register form of A would need 4
// registers a k8 step (64 for D = 128) beside the accumulators, more than 4
// warpgroups a block can hold at 128 registers a thread. So both operands come
// from shared memory: the block's 256 points (4 warpgroups x 64) stay resident
// there in the wgmma "core matrix" layout for the whole pass, and centroid
// tiles of BN rows stream through a 3-stage cp.async pipeline in the same
// layout. D <= 64 (NKS = 8): 64 KB of points, BN = 128 (m64n128k8);
// D <= 128 (NKS = 16): 128 KB of points, BN = 64 (m64n64k8), 225 KB in all.
//
// The tensor cores truncate f32 operands to tf32; the mma.sync path rounds
// them to nearest (cvt.rna). To compute the same products, each thread rounds
// the point chunks it copied once they land (once a block), and the launcher
// hands this kernel a rounded copy of the centroids (assign.cu).
//
// The epilogue is the f16 wgmma kernel's (assign_wgmma.cuh): a running
// (min, code) a row slot, reduced across the quad at the end.
#pragma once

#include "kernels/assign_wgmma.cuh"

namespace flashkmeans::kernels {

constexpr int kWtStages = 3;
constexpr int kWtNwg = 4;          // warpgroups a block, 64 points each
constexpr int kWtBM = 64 * kWtNwg;  // points a block
constexpr int kWtMaxWords = 128;

/// BN: centroids a tile for NKS k8 steps (32 bytes each) a row.
__host__ __device__ constexpr int wt_bn(int nks) { return nks <= 8 ? 128 : 64; }
__host__ __device__ constexpr size_t wt_smem_bytes(int nks) {
    return size_t(kWtBM) * nks * 32 + kWtStages * (size_t(wt_bn(nks)) * nks * 32 + wt_bn(nks) * sizeof(float)) +
           16 * sizeof(double);
}

__device__ __forceinline__ uint4 round_tf32x4(uint4 v) {
    uint4 r;
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r.x) : "f"(__uint_as_float(v.x)));
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r.y) : "f"(__uint_as_float(v.y)));
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r.z) : "f"(__uint_as_float(v.z)));
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r.w) : "f"(__uint_as_float(v.w)));
    return r;
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
template <int BN>
struct WgmmaTf32;
template <>
struct WgmmaTf32<64> {
    __device__ __forceinline__ static void run(float (&d)[32], uint64_t da, uint64_t db, int acc) {
        wg::wgmma_m64n64k8_tf32_ss(d, da, db, acc);
    }
};
template <>
struct WgmmaTf32<128> {
    __device__ __forceinline__ static void run(float (&d)[64], uint64_t da, uint64_t db, int acc) {
        wg::wgmma_m64n128k8_tf32_ss(d, da, db, acc);
    }
};
#endif

/// geo.c must hold tf32-rounded values (the launcher's copy).
template <int NKS>
__global__ void __launch_bounds__(kWtNwg * 128, 1) assign_wgmma_tf32_kernel(StreamGeom geo, AssignArgs a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int BM = kWtBM, NT = 128 * kWtNwg, BN = wt_bn(NKS), NACC = BN / 2, NJ = BN / 8;
    constexpr int kq = 2 * NKS;  // 16-byte chunks per smem row
    constexpr int xbytes = BM * NKS * 32, stage_bytes = BN * NKS * 32;
    extern __shared__ __align__(128) unsigned char wsm[];
    unsigned char* xs = wsm;
    unsigned char* cstage = wsm + xbytes;
    float* cns = reinterpret_cast<float*>(cstage + kWtStages * stage_bytes);
    double* red = reinterpret_cast<double*>(cns + kWtStages * BN);

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int b = blockIdx.y;
    const int64_t row0 = int64_t(blockIdx.x) * BM;
    const int rows_valid = int(min64(BM, geo.x.rows - row0));
    const uint32_t* X = geo.x.data + b * geo.x.batch + row0 * geo.x.ld;
    const uint32_t* C = geo.c.data + b * geo.c.batch;
    const int64_t K = geo.c.rows;
    const int ntiles = int((K + BN - 1) / BN);
    const bool ip = a.ip;
    const float* cnorm = ip ? nullptr : a.cnorm + b * a.k;

    // Core-matrix layout: 16-byte chunk q of row r at ((r / 8) * kq + q) * 128
    // + (r % 8) * 16. Pairs of lanes fetch the two halves of a 32-byte sector.
    auto issue_c = [&](int jt) {
        const int st = jt % kWtStages;
        const int64_t c0 = int64_t(jt) * BN;
        const int cv = int(min64(BN, K - c0));
        unsigned char* dst = cstage + st * stage_bytes;
        const uint32_t* src = C + c0 * geo.c.ld;
#pragma unroll 4
        for (int idx = tid; idx < BN * kq; idx += NT) {
            const int rest = idx >> 1, r = rest & (BN - 1), q = ((rest / BN) << 1) | (idx & 1);
            const bool ok = r < cv && q < geo.c.q;
            cp_async16(dst + ((r >> 3) * kq + q) * 128 + (r & 7) * 16, ok ? src + r * geo.c.ld + q * 4 : src, ok);
        }
        if (!ip && tid < BN) {
            const bool ok = tid < cv;
            cp_async4(cns + st * BN + tid, ok ? cnorm + c0 + tid : cnorm, ok);
        }
    };
    auto x_chunk = [&](int idx, int& r, int& q) {
        const int rest = idx >> 1;
        r = rest & (BM - 1);
        q = ((rest / BM) << 1) | (idx & 1);
    };

    // Prologue: the points and tile 0 in group 0, tile 1 in group 1.
    for (int idx = tid; idx < BM * kq; idx += NT) {
        int r, q;
        x_chunk(idx, r, q);
        const bool ok = r < rows_valid && q < geo.x.q;
        cp_async16(xs + ((r >> 3) * kq + q) * 128 + (r & 7) * 16, ok ? X + r * geo.x.ld + q * 4 : X, ok);
    }
    issue_c(0);
    cp_async_commit();
    if (ntiles > 1) issue_c(1);
    cp_async_commit();

    // Rows of this thread: 64 * wg + 16 * wi + g + 8 h.
    const int rbase = 64 * (warp >> 2) + 16 * (warp & 3) + g;
    float best[2], xn[2];
    int bidx[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
        best[h] = INFINITY;
        bidx[h] = INT_MAX;
        const int r = rbase + 8 * h;
        xn[h] = (!ip && r < rows_valid) ? a.xnorm[b * a.n + row0 + r] : 0.f;
    }

    float acc[NACC];
    const uint32_t xa = smem_addr(xs) + (warp >> 2) * 8 * kq * 128;  // this warpgroup's 64 rows
    constexpr uint32_t lbo = 128, sbo = kq * 128;

    for (int jt = 0; jt < ntiles; ++jt) {
        cp_async_wait<1>();
        if (jt == 0) {
            // Round the point chunks this thread copied (visible to it now).
            for (int idx = tid; idx < BM * kq; idx += NT) {
                int r, q;
                x_chunk(idx, r, q);
                uint4* p = reinterpret_cast<uint4*>(xs + ((r >> 3) * kq + q) * 128 + (r & 7) * 16);
                *p = round_tf32x4(*p);
            }
        }
        wg::fence_proxy_async();
        __syncthreads();
        if (jt + 2 < ntiles) issue_c(jt + 2);
        cp_async_commit();

        const int st = jt % kWtStages;
        const uint32_t cb = smem_addr(cstage + st * stage_bytes);
        wg::fence();
#pragma unroll
        for (int ks = 0; ks < NKS; ++ks)
            WgmmaTf32<BN>::run(acc, wg::desc_noswizzle(xa + ks * 256, lbo, sbo),
                               wg::desc_noswizzle(cb + ks * 256, lbo, sbo), ks);
        wg::commit();
        wg::wait<0>();
        wg::acc_fence(acc);

        // Epilogue. acc[4 jn + 2 h + e] = dot(row g + 8 h, column 8 jn + 2 t + e).
        const int64_t c0 = int64_t(jt) * BN;
        const int cv = int(min64(BN, K - c0));
        const float* cn = cns + st * BN + 2 * t;
        const bool full = cv == BN;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            float bb = best[h];
            int code = -1;
            if (ip) {
#pragma unroll
                for (int jn = 0; jn < NJ; ++jn)
#pragma unroll
                    for (int e = 0; e < 2; ++e) {
                        const float v = -acc[4 * jn + 2 * h + e];
                        const bool ok = full || 8 * jn + 2 * t + e < cv;
                        if (ok && v < bb) { bb = v; code = 8 * jn + e; }
                    }
            } else {
#pragma unroll
                for (int jn = 0; jn < NJ; ++jn) {
                    const float2 cn2 = *reinterpret_cast<const float2*>(cn + 8 * jn);
#pragma unroll
                    for (int e = 0; e < 2; ++e) {
                        const float v = fmaf(-2.f, acc[4 * jn + 2 * h + e], e ? cn2.y : cn2.x);
                        const bool ok = full || 8 * jn + 2 * t + e < cv;
                        if (ok && v < bb) code = 8 * jn + e;
                        bb = ok ? fminf(v, bb) : bb;
                    }
                }
            }
            if (!ip && bb < -xn[h]) {
                // Rare: a distance clamped at zero. Replay the tile with the
                // clamped keys so that a clamped tie goes to the lower index.
                float b2 = best[h];
                int i2 = bidx[h];
                for (int jn = 0; jn < NJ; ++jn)
                    for (int e = 0; e < 2; ++e) {
                        const int c = 8 * jn + 2 * t + e;
                        if (c < cv) {
                            const float v = fmaxf(fmaf(-2.f, acc[4 * jn + 2 * h + e], cn[8 * jn + e]), -xn[h]);
                            if (v < b2) { b2 = v; i2 = int(c0) + c; }
                        }
                    }
                best[h] = b2;
                bidx[h] = i2;
            } else if (code >= 0) {
                best[h] = bb;
                bidx[h] = int(c0) + 2 * t + code;
            }
        }
    }
    cp_async_wait<0>();

    // The 4 threads of a quad share each row.
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
        if (t == 0 && r < rows_valid) {
            if (id == INT_MAX) id = 0;  // every distance NaN: keep a valid label
            const float out = ip ? -v : fmaxf(xn[h] + v, 0.f);
            a.labels[b * a.n + row0 + r] = id;
            if (a.dist) a.dist[b * a.n + row0 + r] = out;
            contrib += out;
        }
    }
    for (int off = 16; off > 0; off >>= 1) contrib += __shfl_down_sync(0xffffffffu, contrib, off);
    if (lane == 0) red[warp] = contrib;
    __syncthreads();
    // One objective partial per 128 points (kBM: the caller's partial array).
    if (tid < kWtNwg / 2) {
        const int64_t slot = int64_t(blockIdx.x) * (kWtNwg / 2) + tid;
        if (slot * kBM < geo.x.rows) {
            double s = 0;
            for (int w = 8 * tid; w < 8 * tid + 8; ++w) s += red[w];
            a.partial[int64_t(b) * stream_grid_x(geo.x.rows) + slot] = s;
        }
    }
#endif
}

/// dst (B, rows, w words, compact) = src rounded to tf32; w = 4 q.
__global__ void round_tf32_rows_kernel(Operand src, int batch, uint32_t* dst) {
    const int64_t qpr = src.q;
    const int64_t total = int64_t(batch) * src.rows * qpr;
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total;
         i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t q = i % qpr, rr = i / qpr, r = rr % src.rows, b = rr / src.rows;
        const uint4 v = *reinterpret_cast<const uint4*>(src.data + b * src.batch + r * src.ld + 4 * q);
        reinterpret_cast<uint4*>(dst)[i] = round_tf32x4(v);
    }
}

}  // namespace flashkmeans::kernels
