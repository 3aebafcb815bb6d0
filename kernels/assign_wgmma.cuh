// FlashAssign argmin on Hopper tensor cores (sm_90a wgmma), for f16/bf16
// points of up to 64 words (D <= 128) a row.
//
// A block of NWG warpgroups owns 64 * NWG points (64 per warpgroup). Their A
// fragments are loaded once into registers and reused for every centroid
// tile; 128-centroid tiles stream through a 3-stage cp.async pipeline in the
// "core matrix" layout that wgmma reads directly (no swizzle). Each tile is a
// chain of m64n128k16 wgmmas per warpgroup into 64 fp32 accumulators a thread.
// The epilogue keeps a running (min, code) per row with 4 instructions a dot
// product and reduces across the 4 threads sharing a row once, at the end.
//
// Measured on H100 (assign_timing): the centroid-tile traffic from L2 bounds
// this kernel, not the tensor cores; 4 warpgroups (256 points a block, one
// block an SM) halve that traffic against 2 warpgroups (128 points, two
// blocks an SM) and won on every D = 64..128 case, despite the lockstep of the
// four warpgroups' epilogues. The launcher uses NWG = 4.
#pragma once

#include "kernels/assign.cuh"
#include "kernels/wgmma.cuh"

#include <climits>

namespace flashkmeans::kernels {

constexpr int kWgBN = 128;      // centroids per tile
constexpr int kWgStages = 3;
constexpr int kWgMaxWords = 64;  // row words the A registers hold (8 k16 steps)
constexpr int kWgNwg = 4;        // warpgroups (64 points each) a block: see above

struct WgGeom {
    StreamGeom g;
    int nks;    // k16 steps (8 words each): 4 or 8, the kernel's NKS
};

__host__ __device__ constexpr size_t wg_stage_bytes(int nks) { return size_t(kWgBN) * nks * 32; }
/// NWG warpgroups of 64 points each. With 2 the points share tile 2's stage.
__host__ __device__ constexpr size_t wg_smem_bytes(int nks, int nwg) {
    return kWgStages * (wg_stage_bytes(nks) + kWgBN * sizeof(float)) + 16 * sizeof(double) +
           (nwg > 2 ? size_t(64) * nwg * nks * 32 : 0);
}

__device__ __forceinline__ void cp_async4(void* smem, const void* gmem, bool valid) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_addr(smem)), "l"(gmem),
                 "r"(valid ? 4 : 0));
}
__device__ __forceinline__ void ldsm_x4_addr(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr)
                 : "memory");
}

template <class T, int NKS, int NWG>
__global__ void __launch_bounds__(NWG * 128, 4 / NWG) assign_wgmma_kernel(WgGeom wg, AssignArgs a) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    constexpr int BM = 64 * NWG, NT = 128 * NWG;
    extern __shared__ __align__(128) unsigned char wsm[];
    const StreamGeom& geo = wg.g;
    constexpr int nks = NKS, kq = 2 * NKS;  // 16-byte chunks per smem row
    const size_t stage_bytes = wg_stage_bytes(nks);
    unsigned char* cstage = wsm;                                   // kWgStages C tiles
    float* cns = reinterpret_cast<float*>(wsm + kWgStages * stage_bytes);  // kWgStages x 128 norms
    double* red = reinterpret_cast<double*>(cns + kWgStages * kWgBN);
    unsigned char* xs = NWG == 2 ? cstage + 2 * stage_bytes : reinterpret_cast<unsigned char*>(red + 16);

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int b = blockIdx.y;
    const int64_t row0 = int64_t(blockIdx.x) * BM;
    const int rows_valid = int(min64(BM, geo.x.rows - row0));
    const uint32_t* X = geo.x.data + b * geo.x.batch + row0 * geo.x.ld;
    const uint32_t* C = geo.c.data + b * geo.c.batch;
    const int64_t K = geo.c.rows;
    const int ntiles = int((K + kWgBN - 1) / kWgBN);
    const bool ip = a.ip;
    const float* cnorm = ip ? nullptr : a.cnorm + b * a.k;
    constexpr int xmask = 7;

    // Pairs of lanes fetch the two 16-byte halves of one 32-byte sector.
    auto issue_c = [&](int jt) {
        const int st = jt % kWgStages;
        const int64_t c0 = int64_t(jt) * kWgBN;
        const int cv = int(min64(kWgBN, K - c0));
        unsigned char* dst = cstage + st * stage_bytes;
        const uint32_t* src = C + c0 * geo.c.ld;
        for (int idx = tid; idx < kWgBN * kq; idx += NT) {
            const int rest = idx >> 1, r = rest & (kWgBN - 1), q = ((rest >> 7) << 1) | (idx & 1);
            const bool ok = r < cv && q < geo.c.q;
            cp_async16(dst + ((r >> 3) * kq + q) * 128 + (r & 7) * 16, ok ? src + r * geo.c.ld + q * 4 : src, ok);
        }
        if (!ip && tid < kWgBN) {
            const bool ok = tid < cv;
            cp_async4(cns + st * kWgBN + tid, ok ? cnorm + c0 + tid : cnorm, ok);
        }
    };

    // Prologue: the points (row-major, 16-byte chunks XOR-swizzled by row) and
    // tile 0 in group 0, tile 1 in group 1.
    for (int idx = tid; idx < BM * kq; idx += NT) {
        const int rest = idx >> 1, r = rest & (BM - 1), q = ((rest / BM) << 1) | (idx & 1);
        const bool ok = r < rows_valid && q < geo.x.q;
        cp_async16(xs + r * (kq * 16) + ((q ^ (r & xmask)) * 16), ok ? X + r * geo.x.ld + q * 4 : X, ok);
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

    uint32_t afr[NKS][4];
    float acc[64];

    for (int jt = 0; jt < ntiles; ++jt) {
        cp_async_wait<1>();
        wg::fence_proxy_async();
        __syncthreads();
        if (jt == 0) {
            const int r = 64 * (warp >> 2) + 16 * (warp & 3) + (lane & 15);
            const uint32_t xrow = smem_addr(xs) + r * (kq * 16);
#pragma unroll
            for (int ks = 0; ks < NKS; ++ks) {
                    const int ch = 2 * ks + (lane >> 4);
                    ldsm_x4_addr(afr[ks], xrow + ((ch ^ (r & xmask)) * 16));
                }
            __syncthreads();  // the points' buffer is tile 2's stage
        }
        if (jt + 2 < ntiles) issue_c(jt + 2);
        cp_async_commit();

        const int st = jt % kWgStages;
        const uint32_t cb = smem_addr(cstage + st * stage_bytes);
        const uint32_t lbo = 128, sbo = kq * 128;
        wg::fence();
#pragma unroll
        for (int ks = 0; ks < NKS; ++ks)
            wg::Wgmma<T>::run(acc, afr[ks], wg::desc_noswizzle(cb + ks * 256, lbo, sbo), ks);
        wg::commit();
        wg::wait<0>();
        wg::acc_fence(acc);

        // Epilogue. acc[4 jn + 2 h + e] = dot(row g + 8 h, column 8 jn + 2 t + e).
        const int64_t c0 = int64_t(jt) * kWgBN;
        const int cv = int(min64(kWgBN, K - c0));
        const float* cn = cns + st * kWgBN + 2 * t;
        const bool full = cv == kWgBN;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            float bb = best[h];
            int code = -1;
            if (ip) {
#pragma unroll
                for (int jn = 0; jn < 16; ++jn)
#pragma unroll
                    for (int e = 0; e < 2; ++e) {
                        const float v = -acc[4 * jn + 2 * h + e];
                        const bool ok = full || 8 * jn + 2 * t + e < cv;
                        if (ok && v < bb) { bb = v; code = 8 * jn + e; }
                    }
            } else {
#pragma unroll
                for (int jn = 0; jn < 16; ++jn) {
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
                for (int jn = 0; jn < 16; ++jn)
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
    if (tid < NWG / 2) {
        const int64_t slot = int64_t(blockIdx.x) * (NWG / 2) + tid;
        if (slot * kBM < geo.x.rows) {
            double s = 0;
            for (int w = 8 * tid; w < 8 * tid + 8; ++w) s += red[w];
            a.partial[int64_t(b) * stream_grid_x(geo.x.rows) + slot] = s;
        }
    }
#endif
}

}  // namespace flashkmeans::kernels
