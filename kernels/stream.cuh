// The FlashAssign main loop, shared by the argmin (assign.cu) and top-k
// (topk_assign.cu) kernels.
//
// A block owns kBM points of one problem (blockIdx.y). Centroid tiles of kBN
// rows stream past in chunks of BKW 32-bit words along D, double-buffered
// through cp.async. The points either stay resident in shared memory for the
// whole pass (XRES, for D up to a few hundred) or stream chunk by chunk beside
// the centroids (split-D, any D). After the last chunk of a centroid tile the
// block holds kBM x kBN dot products in registers and hands them to the
// epilogue (running argmin, or top-k merge); nothing of size N x K is written.
//
// Operands are addressed in 32-bit words so that one Math policy serves f16,
// bf16 (two elements a word) and tf32/f32 (one). Rows of both operands are
// padded to multiples of 16 bytes in device memory; bytes past d are zero (our
// copies) or absent (in-place inputs whose row is a multiple of 16 bytes), so
// only the row/column tails beyond n, k and the padded D need masking, done by
// zero-filling cp.async.
#pragma once

#include "kernels/common.cuh"

namespace flashkmeans::kernels {

constexpr int kBM = 128;      // points per block
constexpr int kBN = 64;       // centroids per streamed tile
constexpr int kThreads = 256; // threads a block, unless the Math policy says otherwise (Math::THREADS)
constexpr int kPadW = 4;      // row padding in words: conflict-free fragment loads
// The chunk of D (BKW, 32-bit words) is a template parameter: 32 words (128
// bytes) for short rows, 64 to halve the barriers per centroid tile otherwise.

/// One operand: B row-major matrices of 16-byte-padded rows, in words.
struct Operand {
    const uint32_t* data;
    int64_t ld;     // words between rows
    int64_t batch;  // words between problems
    int64_t rows;   // valid rows per problem
    int q;          // valid 16-byte pieces per row
};

struct StreamGeom {
    Operand x, c;
    int nk;  // chunks of BKW words covering x.q * 4 words (set by the launcher)
};

// ---- Math policies: how a block's THREADS threads compute a kBM x kBN tile ----

/// Tensor cores: 8 warps as 4 (M) x 2 (N), a 32 x 32 warp tile of m16n8 MMAs.
template <class T>
struct MmaMath {
    static constexpr int THREADS = kThreads;
    static constexpr int MIN_BLOCKS = 1;  // blocks an SM the registers must allow
    static constexpr bool UNROLL_STREAMED_COPIES = true;  // load_rows
    static constexpr int ROWS = 4;    // point rows each thread holds results for
    static constexpr int OWNERS = 8;  // threads sharing one point row
    float acc[2][4][4];
    int wm, wn, g, t;

    __device__ MmaMath() {
        const int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
        wm = w & 3; wn = w >> 2; g = lane >> 2; t = lane & 3;
    }
    __device__ int row(int i) const { return 32 * wm + 16 * (i >> 1) + 8 * (i & 1) + g; }
    __device__ int owner() const { return wn * 4 + t; }
    __device__ void zero() {
#pragma unroll
        for (int a = 0; a < 2; ++a)
#pragma unroll
            for (int b = 0; b < 4; ++b)
#pragma unroll
                for (int e = 0; e < 4; ++e) acc[a][b][e] = 0.f;
    }
    template <int BKW>
    __device__ void step(const uint32_t* xs, const uint32_t* cs) {
        constexpr int xsw = BKW + kPadW, csw = BKW + kPadW;
        const int lane = threadIdx.x & 31;
        // ldmatrix row addresses: A matrices (rows 0-7 | 8-15) x (words 0-3 | 4-7),
        // B matrices (words 0-3 | 4-7) x (n-tile 2p | 2p+1).
        const uint32_t* pa = xs + (32 * wm + (lane & 15)) * xsw + (lane >> 4) * 4;
        const uint32_t* pb = cs + (32 * wn + (lane & 7) + (lane >> 4) * 8) * csw + ((lane >> 3) & 1) * 4;
#pragma unroll
        for (int kk = 0; kk < BKW; kk += 8) {
            uint32_t a[2][4], b[4][2];
#pragma unroll
            for (int mt = 0; mt < 2; ++mt) {
                ldsm_x4(a[mt], pa + 16 * mt * xsw + kk);
#pragma unroll
                for (int e = 0; e < 4; ++e) a[mt][e] = Mma<T>::prep(a[mt][e]);
            }
#pragma unroll
            for (int p = 0; p < 2; ++p) {
                uint32_t r[4];
                ldsm_x4(r, pb + 16 * p * csw + kk);
                b[2 * p][0] = Mma<T>::prep(r[0]);
                b[2 * p][1] = Mma<T>::prep(r[1]);
                b[2 * p + 1][0] = Mma<T>::prep(r[2]);
                b[2 * p + 1][1] = Mma<T>::prep(r[3]);
            }
#pragma unroll
            for (int mt = 0; mt < 2; ++mt)
#pragma unroll
                for (int nt = 0; nt < 4; ++nt) Mma<T>::run(acc[mt][nt], a[mt], b[nt]);
        }
    }
    /// f(row slot, column in tile, dot); columns rise within a row slot.
    template <class F>
    __device__ void for_each(F&& f) const {
#pragma unroll
        for (int mt = 0; mt < 2; ++mt)
#pragma unroll
            for (int h = 0; h < 2; ++h)
#pragma unroll
                for (int nt = 0; nt < 4; ++nt)
#pragma unroll
                    for (int e = 0; e < 2; ++e)
                        f(mt * 2 + h, 32 * wn + 8 * nt + 2 * t + e, acc[mt][nt][2 * h + e]);
    }
};

/// Exact float32: FFMA, products summed in ascending k like a plain dot
/// product (one fmaf chain an output, from 0). 4 warps, each 32 points x the
/// tile's 64 centroids, a thread 8 x 8 outputs: rows 32 w + ty + 4 i,
/// columns tx + 8 j (lane = 8 ty + tx). Per 4 k of a row, a thread loads 8
/// point and 8 centroid float4s for 256 FFMAs (the former 16 x 16 grid of
/// 8 x 4 outputs: 12 for 128), and a warp's loads are 4 (points) or 8
/// (centroids) consecutive padded rows, one shared-memory wavefront each.
/// 128 threads: with the 64 accumulators, the centroid float4s of two k
/// steps in flight and the argmin's row state, ptxas takes ~245 registers;
/// two blocks an SM fit those and, at D = 128 f32, the shared memory. Same
/// bits as the 16 x 16 form; 12-13% faster on the H200 (bench/NOTES.md).
struct FfmaMath {
    static constexpr int THREADS = 128;
    static constexpr int MIN_BLOCKS = 2;
    static constexpr bool UNROLL_STREAMED_COPIES = false;  // load_rows
    static constexpr int ROWS = 8;
    static constexpr int OWNERS = 8;
    float acc[8][8];
    int tx, r0;  // r0: this thread's first row, 32 w + ty

    __device__ FfmaMath() {
        const int lane = threadIdx.x & 31;
        tx = lane & 7;
        r0 = 32 * (threadIdx.x >> 5) + (lane >> 3);
    }
    __device__ int row(int i) const { return r0 + 4 * i; }
    __device__ int owner() const { return tx; }
    __device__ void zero() {
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
            for (int j = 0; j < 8; ++j) acc[i][j] = 0.f;
    }
    template <int BKW>
    __device__ void step(const uint32_t* xs, const uint32_t* cs) {
        constexpr int xsw = BKW + kPadW, csw = BKW + kPadW;
        const uint32_t* xp = xs + r0 * xsw;
        const uint32_t* cp = cs + tx * csw;
#pragma unroll 2
        for (int kq = 0; kq < BKW; kq += 4) {
            float4 cv[8];
#pragma unroll
            for (int j = 0; j < 8; ++j) cv[j] = *reinterpret_cast<const float4*>(cp + 8 * j * csw + kq);
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                const float4 xv = *reinterpret_cast<const float4*>(xp + 4 * i * xsw + kq);
#pragma unroll
                for (int j = 0; j < 8; ++j) {
                    float s = acc[i][j];
                    s = fmaf(xv.x, cv[j].x, s);
                    s = fmaf(xv.y, cv[j].y, s);
                    s = fmaf(xv.z, cv[j].z, s);
                    s = fmaf(xv.w, cv[j].w, s);
                    acc[i][j] = s;
                }
            }
        }
    }
    template <class F>
    __device__ void for_each(F&& f) const {
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
            for (int j = 0; j < 8; ++j) f(i, tx + 8 * j, acc[i][j]);
    }
};

__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// ---- loading ----------------------------------------------------------------

/// rows [0, R) x 16-byte pieces [q0, q0 + NQ) of `src` into dst (row stride
/// DSW words); rows >= valid_rows and pieces >= q_valid become zeros. Every
/// count is a compile-time constant and a thread keeps one piece column, so
/// a copy needs no index arithmetic beyond its row (with a runtime piece
/// count it took ~20 instructions; unrolled this way the exact resident
/// kernel got 6.5% faster and the mma.sync kernel 7-10%, bench/NOTES.md).
/// UNROLL = false keeps the rows in a loop (the exact kernel with streamed
/// points: 2.5% slower unrolled, 24 copies a step beside its FFMAs).
template <int R, int NQ, int NT, int DSW, bool UNROLL = true>
__device__ __forceinline__ void load_rows(uint32_t* dst, const uint32_t* src, int64_t ld,
                                          int valid_rows, int q0, int q_valid) {
    static_assert(NT % NQ == 0, "whole rows a pass");
    const int q = int(threadIdx.x) % NQ, r0 = int(threadIdx.x) / NQ;
    const bool q_ok = q0 + q < q_valid;
    src += (q0 + q) * 4;
    dst += q * 4;
#pragma unroll(UNROLL ? (R * NQ + NT - 1) / NT : 1)
    for (int i = 0; i < (R * NQ + NT - 1) / NT; ++i) {
        const int r = r0 + i * (NT / NQ);
        if ((R * NQ) % NT != 0 && r >= R) break;  // short rows: a partial last pass
        const bool ok = q_ok && r < valid_rows;
        cp_async16(dst + r * DSW, ok ? src + r * ld : src, ok);
    }
}

/// Shared memory (bytes) of the main loop; the epilogue's comes after it.
/// Every tile in it is BKW + kPadW words a row: resident points are stored
/// chunk by chunk (nk tiles of kBM rows), so that the Math policies address
/// both operands with compile-time strides (immediate offsets, no address
/// arithmetic in the inner loop).
__host__ __device__ constexpr size_t stream_smem_bytes(bool xres, int nk, int bkw) {
    return sizeof(uint32_t) * size_t(bkw + kPadW) *
           (xres ? size_t(kBM) * nk + 2 * size_t(kBN) : 2 * size_t(kBM + kBN));
}

template <class Math, class Epi, bool XRES, int BKW>
__global__ void __launch_bounds__(Math::THREADS, Math::MIN_BLOCKS)
    stream_kernel(StreamGeom geo, typename Epi::Args eargs) {
    extern __shared__ __align__(16) uint32_t smem[];
    const int b = blockIdx.y;
    const int64_t row0 = int64_t(blockIdx.x) * kBM;
    const int rows_valid = int(min64(kBM, geo.x.rows - row0));
    const uint32_t* X = geo.x.data + b * geo.x.batch + row0 * geo.x.ld;
    const uint32_t* C = geo.c.data + b * geo.c.batch;
    const int nk = geo.nk;
    const int ntiles = int((geo.c.rows + kBN - 1) / kBN);
    const int steps = ntiles * nk;

    constexpr int kChunkQ = BKW / 4;  // 16-byte pieces per row chunk
    constexpr int sw = BKW + kPadW;   // words a row of every tile
    uint32_t* xs = smem;  // XRES: nk resident chunk tiles; else two stages
    uint32_t* cs = smem + (XRES ? nk : 2) * kBM * sw;
    const size_t epi_off = stream_smem_bytes(XRES, nk, BKW);

    auto issue = [&](int s) {
        const int jt = s / nk, kc = s - jt * nk, st = s & 1;
        const int64_t c0 = int64_t(jt) * kBN;
        constexpr bool unroll = XRES || Math::UNROLL_STREAMED_COPIES;
        load_rows<kBN, kChunkQ, Math::THREADS, sw, unroll>(cs + st * kBN * sw, C + c0 * geo.c.ld, geo.c.ld,
                                                           int(min64(kBN, geo.c.rows - c0)), kc * kChunkQ,
                                                           geo.c.q);
        if (!XRES)
            load_rows<kBM, kChunkQ, Math::THREADS, sw, unroll>(xs + st * kBM * sw, X, geo.x.ld, rows_valid,
                                                               kc * kChunkQ, geo.x.q);
    };

    Math m;
    Epi epi(eargs, b, row0, rows_valid, reinterpret_cast<char*>(smem) + epi_off, m);
    if (XRES)
        for (int kc = 0; kc < nk; ++kc)
            load_rows<kBM, kChunkQ, Math::THREADS, sw>(xs + kc * kBM * sw, X, geo.x.ld, rows_valid,
                                                       kc * kChunkQ, geo.x.q);
    issue(0);
    cp_async_commit();
    for (int s = 0; s < steps; ++s) {
        // One barrier a step: after it, step s's data has landed for every
        // thread and every thread is done with step s - 1, whose buffer the
        // copies for step s + 1 (issued right after) overwrite.
        cp_async_wait<0>();
        __syncthreads();
        if (s + 1 < steps) issue(s + 1);
        cp_async_commit();
        const int jt = s / nk, kc = s - jt * nk;
        if (kc == 0) m.zero();
        m.template step<BKW>(xs + (XRES ? kc : s & 1) * kBM * sw, cs + (s & 1) * kBN * sw);
        if (kc == nk - 1) {
            const int64_t c0 = int64_t(jt) * kBN;
            epi.tile(m, c0, int(min64(kBN, geo.c.rows - c0)));
        }
    }
    __syncthreads();  // the epilogue's finish may reuse the pipeline's buffers
    epi.finish(m, reinterpret_cast<char*>(smem));
}

}  // namespace flashkmeans::kernels
