// FlashAssign: nearest centroid of every point, the running (min, argmin) in
// registers while centroid tiles stream past (stream.cuh); one label and one
// distance per point leave the chip, plus a per-block objective sum.
#include "kernels/stream_launch.cuh"
#include "kernels/assign_wgmma.cuh"
#include "kernels/assign_small.cuh"
#include "kernels/assign_wgmma_long.cuh"
#include "kernels/assign_wgmma_smallk.cuh"
#include "kernels/device_props.cuh"
#include "kernels/scratch.cuh"
#include "kernels/tensor_map.cuh"

#include <algorithm>
#include <cstdlib>
#include <string>

#include <climits>

namespace flashkmeans::kernels {

template <class Math>
struct ArgminEpi {
    using Args = AssignArgs;
    /// finish() reuses the pipeline's shared memory for its row reduction.
    static constexpr size_t kFinishSmem =
            size_t(kBM) * Math::OWNERS * (sizeof(float) + sizeof(int)) + sizeof(double) * (kBM / 32);
    const Args& a;
    int b;
    int64_t row0;
    int rows_valid;
    // Per row slot: the best key so far and its centroid. The key leaves out
    // the row's constant ||x||^2: L2 key = max(||c||^2 - 2 x.c, -||x||^2), so
    // that ||x||^2 + key is Faiss's distance clamped at 0 (a clamped tie goes
    // to the lower index as in Faiss); IP key = -x.c. A thread meets its
    // columns in ascending order, so a strict < keeps the lowest index.
    float best[Math::ROWS];
    int bidx[Math::ROWS];
    float xn[Math::ROWS];

    __device__ ArgminEpi(const Args& args, int b_, int64_t row0_, int rows_valid_, char*,
                         const Math& m)
        : a(args), b(b_), row0(row0_), rows_valid(rows_valid_) {
#pragma unroll
        for (int i = 0; i < Math::ROWS; ++i) {
            best[i] = INFINITY;
            bidx[i] = INT_MAX;
            const int r = m.row(i);
            xn[i] = (!a.ip && r < rows_valid) ? a.xnorm[b * a.n + row0 + r] : 0.f;
        }
    }

    template <bool FULL>
    __device__ void tile_keys(const Math& m, int64_t c0, int cols_valid) {
        const float* cn = a.cnorm + b * a.k + c0;
        const int base = int(c0);
        if (a.ip) {
            m.for_each([&](int i, int c, float dot) {
                const float v = -dot;
                if ((FULL || c < cols_valid) && v < best[i]) { best[i] = v; bidx[i] = base + c; }
            });
        } else {
            m.for_each([&](int i, int c, float dot) {
                if (FULL || c < cols_valid) {
                    const float v = fmaxf(fmaf(-2.f, dot, cn[c]), -xn[i]);
                    if (v < best[i]) { best[i] = v; bidx[i] = base + c; }
                }
            });
        }
    }

    __device__ void tile(const Math& m, int64_t c0, int cols_valid) {
        if (cols_valid == kBN) tile_keys<true>(m, c0, cols_valid);
        else tile_keys<false>(m, c0, cols_valid);
    }

    __device__ float xn_row(int r) const { return a.xnorm[b * a.n + row0 + r]; }

    __device__ void finish(const Math& m, char* smem) {
        float* rv = reinterpret_cast<float*>(smem);
        int* ri = reinterpret_cast<int*>(rv + kBM * Math::OWNERS);
        double* red = reinterpret_cast<double*>(ri + kBM * Math::OWNERS);
#pragma unroll
        for (int i = 0; i < Math::ROWS; ++i) {
            rv[m.row(i) * Math::OWNERS + m.owner()] = best[i];
            ri[m.row(i) * Math::OWNERS + m.owner()] = bidx[i];
        }
        __syncthreads();
        double contrib = 0;
        const int r = threadIdx.x;
        if (r < kBM) {
            float v = rv[r * Math::OWNERS];
            int id = ri[r * Math::OWNERS];
            for (int o = 1; o < Math::OWNERS; ++o) {
                const float v2 = rv[r * Math::OWNERS + o];
                const int i2 = ri[r * Math::OWNERS + o];
                if (better(v2, i2, v, id)) { v = v2; id = i2; }
            }
            if (r < rows_valid) {
                if (id == INT_MAX) id = 0;  // every distance NaN: keep a valid label
                const float out = a.ip ? -v : fmaxf(xn_row(r) + v, 0.f);
                a.labels[b * a.n + row0 + r] = id;
                if (a.dist) a.dist[b * a.n + row0 + r] = out;
                contrib = out;
            }
        }
        // Block sum in double: warps 0..3 hold the kBM rows.
        for (int off = 16; off > 0; off >>= 1) contrib += __shfl_down_sync(0xffffffffu, contrib, off);
        if ((threadIdx.x & 31) == 0 && threadIdx.x < kBM) red[threadIdx.x >> 5] = contrib;
        __syncthreads();
        if (threadIdx.x == 0) {
            double s = 0;
            for (int w = 0; w < kBM / 32; ++w) s += red[w];
            a.partial[int64_t(b) * gridDim.x + blockIdx.x] = s;
        }
    }
};

namespace {

__global__ void wgmma_probe_kernel(int* out) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
    *out = 1;
#else
    *out = 0;
#endif
}

/// Whether this binary holds sm_90a code for the current device (a compute_90
/// PTX JIT or an sm_80 image has no wgmma). Probed once per device.
bool wgmma_available() {
    static int cache[64];  // 0 unknown, 1 no, 2 yes
    int dev = 0;
    FK_CUDA_CHECK(cudaGetDevice(&dev));
    if (dev < 0 || dev >= 64) return false;
    if (cache[dev] == 0) {
        int major = 0;
        FK_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
        int ok = 0;
        if (major == 9) {
            int* d = nullptr;
            FK_CUDA_CHECK(cudaMalloc(&d, sizeof(int)));
            wgmma_probe_kernel<<<1, 1>>>(d);
            cudaError_t e = cudaGetLastError();
            if (e == cudaSuccess) e = cudaMemcpy(&ok, d, sizeof(int), cudaMemcpyDeviceToHost);
            cudaFree(d);
            if (e != cudaSuccess) ok = 0;
        }
        cache[dev] = ok ? 2 : 1;
    }
    return cache[dev] == 2;
}

template <WgOp OP, int NKS>
void launch_wgmma_nks(const StreamGeom& geo, int batch, const AssignArgs& args, cudaStream_t stream) {
    // The centroids as packed tiles (rows in the wgmma layout, then norms),
    // so that one bulk copy moves a tile.
    constexpr int BN = wg_bn(OP, NKS), tile_bytes = wg_tile_bytes(OP, NKS);
    const int ntiles = int((geo.c.rows + BN - 1) / BN);
    const size_t bytes = size_t(batch) * size_t(ntiles) * tile_bytes;
    void* packed = scratch_alloc(bytes, stream);
    const int64_t chunks = int64_t(batch) * ntiles * (BN * 2 * NKS + BN / 4);
    const unsigned pblocks = unsigned(std::min<int64_t>((chunks + 255) / 256, 8192));
    pack_tiles_kernel<OP, NKS><<<pblocks, 256, 0, stream>>>(geo.c, batch, args.cnorm, args.k, args.ip, ntiles,
                                                           static_cast<unsigned char*>(packed));
    FK_CUDA_CHECK(cudaGetLastError());

    // FK_LAZY_MIN_K=<k>: another threshold for the deferred column search,
    // for comparisons and for the tests that hold it to the eager one.
    const char* lazy_env = std::getenv("FK_LAZY_MIN_K");
    const int64_t lazy_min_k = lazy_env ? int64_t(std::atoll(lazy_env)) : kWgLazyMinK;
    const bool lazy = OP != WgOp::tf32 && geo.c.rows >= lazy_min_k;
    auto kernel = lazy ? assign_wgmma_kernel<OP, NKS, OP != WgOp::tf32> : assign_wgmma_kernel<OP, NKS, false>;
    const size_t smem = wg_smem_bytes(OP, NKS);
    FK_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    const dim3 grid(unsigned((geo.x.rows + kWgBM - 1) / kWgBM), unsigned(batch));
    kernel<<<grid, kWgThreads, smem, stream>>>(geo, WgTiles{static_cast<const unsigned char*>(packed), ntiles}, args);
    FK_CUDA_CHECK(cudaGetLastError());
    scratch_free(packed, stream);
}

template <WgOp OP>
void launch_wgmma(const StreamGeom& geo, int batch, const AssignArgs& args, cudaStream_t stream) {
    constexpr int small = wg_nks(OP, 1), large = small * 2;
    if (wg_nks(OP, int(geo.x.q) * 4) == small) launch_wgmma_nks<OP, small>(geo, batch, args, stream);
    else launch_wgmma_nks<OP, large>(geo, batch, args, stream);
}

template <int W, bool IP>
void launch_small_variant(const StreamGeom& geo, int batch, const AssignArgs& args, cudaStream_t stream) {
    const dim3 grid(unsigned((geo.x.rows + kSmallRows - 1) / kSmallRows), unsigned(batch));
    assign_small_kernel<W, IP><<<grid, kSmallThreads, small_smem_bytes(W, geo.c.rows), stream>>>(geo, args);
    FK_CUDA_CHECK(cudaGetLastError());
}

/// Exact f32 rows of one or two 16-byte pieces (assign_small.cuh).
void launch_small(const StreamGeom& geo, int batch, const AssignArgs& args, cudaStream_t stream) {
    if (geo.x.q == 1) {
        if (args.ip) launch_small_variant<4, true>(geo, batch, args, stream);
        else launch_small_variant<4, false>(geo, batch, args, stream);
    } else {
        if (args.ip) launch_small_variant<8, true>(geo, batch, args, stream);
        else launch_small_variant<8, false>(geo, batch, args, stream);
    }
}

/// Tensor maps of the points and centroids of a call (the long and small-K
/// kernels), read in boxes of 64 elements x box_x / box_c rows.
WlMaps make_maps(const StreamGeom& geo, int batch, bool bf16, int box_x, int box_c) {
    const int64_t cols = int64_t(geo.x.q) * 8;  // 16-bit elements a padded row
    // A problem stride is required even for one problem: any multiple of 16.
    auto bstride = [&](const Operand& o) { return batch > 1 ? o.batch * 4 : o.ld * 4 * std::max<int64_t>(o.rows, 1); };
    WlMaps maps;
    maps.x = make_tensor_map_16bit(geo.x.data, bf16, cols, geo.x.rows, batch, geo.x.ld * 4, bstride(geo.x), kWlBK,
                                   box_x);
    maps.c = make_tensor_map_16bit(geo.c.data, bf16, cols, geo.c.rows, batch, geo.c.ld * 4, bstride(geo.c), kWlBK,
                                   box_c);
    return maps;
}

/// Tensor maps need 16-byte aligned bases and strides.
bool tma_ok(const Operand& o, int batch) {
    return reinterpret_cast<uintptr_t>(o.data) % 16 == 0 && o.ld % 4 == 0 && (batch == 1 || o.batch % 4 == 0) &&
           o.rows < INT_MAX;
}

/// K <= 128 (assign_wgmma_smallk.cuh): one problem's tiles spread over as
/// many persistent blocks as fill the GPU once.
template <WgOp OP>
void launch_wgmma_smallk(const StreamGeom& geo, int batch, const AssignArgs& args, cudaStream_t stream) {
    const WlMaps maps = make_maps(geo, batch, OP == WgOp::bf16, kWsBM, kWsBN);
    const int nkc = geo.x.q * 8 > 64 ? 2 : 1;
    auto kernel = nkc == 1 ? assign_wgmma_smallk_kernel<OP, 1> : assign_wgmma_smallk_kernel<OP, 2>;
    const size_t smem = ws_smem_bytes(nkc);
    FK_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    int per_sm = 0;
    FK_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kWsThreads, smem));
    const int64_t ntiles = (geo.x.rows + kWsBM - 1) / kWsBM;
    // Blocks a problem: the largest count with which every problem's blocks
    // run at once (one wave: a second, partial wave would cost as much as the first).
    const int64_t slots = int64_t(std::max(per_sm, 1)) * sm_count();
    const int64_t per_problem = std::clamp<int64_t>(slots / batch, 1, ntiles);
    const dim3 grid{unsigned(per_problem), unsigned(batch)};
    kernel<<<grid, kWsThreads, smem, stream>>>(maps, geo.x.rows, args);
    FK_CUDA_CHECK(cudaGetLastError());
}

/// Rows longer than the register-resident kernel takes (assign_wgmma_long.cuh).
template <WgOp OP>
void launch_wgmma_long(const StreamGeom& geo, int batch, const AssignArgs& args, cudaStream_t stream) {
    const int64_t cols = int64_t(geo.x.q) * 8;  // 16-bit elements a padded row
    const int nkc = int((cols + kWlBK - 1) / kWlBK);
    const int ntiles = int((geo.c.rows + kWlBN - 1) / kWlBN);
    const WlMaps maps = make_maps(geo, batch, OP == WgOp::bf16, kWlBM, kWlBN);
    // ||c||^2 padded to whole tiles (zeros past k).
    const size_t pad_bytes = size_t(batch) * ntiles * kWlBN * sizeof(float);
    void* cn_pad = scratch_alloc(pad_bytes, stream);
    FK_CUDA_CHECK(cudaMemsetAsync(cn_pad, 0, pad_bytes, stream));
    if (!args.ip)
        FK_CUDA_CHECK(cudaMemcpy2DAsync(cn_pad, size_t(ntiles) * kWlBN * sizeof(float), args.cnorm,
                                        size_t(args.k) * sizeof(float), size_t(args.k) * sizeof(float), size_t(batch),
                                        cudaMemcpyDeviceToDevice, stream));
    auto kernel = assign_wgmma_long_kernel<OP>;
    FK_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kWlSmemBytes)));
    const dim3 grid(unsigned((geo.x.rows + kWlBM - 1) / kWlBM), unsigned(batch));
    kernel<<<grid, kWlThreads, kWlSmemBytes, stream>>>(maps, nkc, ntiles, static_cast<const float*>(cn_pad),
                                                      geo.x.rows, args);
    FK_CUDA_CHECK(cudaGetLastError());
    scratch_free(cn_pad, stream);
}

}  // namespace

AssignKernel choose_assign_kernel(const StreamGeom& geo, int batch, MathKind kind) {
    // Hopper paths (sm_90a binary on a compute capability 9 device) unless
    // FK_ASSIGN_PATH=mma forces the portable kernels (for comparisons).
    const char* path = std::getenv("FK_ASSIGN_PATH");
    const bool portable_only = path && std::string(path) == "mma";
    const bool shape = geo.x.rows > 0 && geo.c.rows > 0 && batch <= 65535 && geo.x.q == geo.c.q && geo.x.q >= 1;
    if (!shape) return AssignKernel::stream;
    auto hopper = [&]() { return !portable_only && wgmma_available(); };
    const bool wg_kind = kind == MathKind::f16 || kind == MathKind::bf16;
    const bool tma_shape = tma_ok(geo.x, batch) && tma_ok(geo.c, batch);
    const int64_t words = int64_t(geo.x.q) * 4;
    // f16/bf16 rows of up to kWgMaxWords16 words: all centroids resident
    // when K <= 128, else centroid tiles streamed past resident points;
    // longer rows: the main loop over D.
    if (wg_kind && words <= kWgMaxWords16 && geo.c.rows <= kWsBN && tma_shape && hopper())
        return AssignKernel::wgmma_smallk;
    if (wg_kind && words <= kWgMaxWords16 && geo.c.rows > kWsBN && hopper()) return AssignKernel::wgmma;
    if (wg_kind && words > kWgMaxWords16 && tma_shape && hopper()) return AssignKernel::wgmma_long;
    // tf32 on f32 rows of up to kWgMaxWordsTf32 words (D <= 128), past one tile.
    if (kind == MathKind::tf32 && geo.c.rows > 64 && words <= kWgMaxWordsTf32 && hopper())
        return AssignKernel::wgmma_tf32;
    // Exact f32 rows of at most 8 words (D <= 8: PQ sub-spaces): points in
    // registers, centroids broadcast from shared memory, no tile barriers;
    // bit for bit the portable kernel's results.
    if (kind == MathKind::ffma && words <= kSmallMaxWords && !portable_only) return AssignKernel::small_rows;
    return AssignKernel::stream;
}

namespace {

/// Block b stages problem b's partials in shared memory, where thread 0's
/// sequential adds find them.
constexpr int kObjectiveTile = 2048;  // 16 KiB of doubles
__global__ void sum_partials_kernel(const double* part, int64_t gx, bool first, double* obj) {
    __shared__ double tile[kObjectiveTile];
    const double* p = part + blockIdx.x * gx;
    double s = first ? 0.0 : obj[blockIdx.x];
    for (int64_t t0 = 0; t0 < gx; t0 += kObjectiveTile) {
        const int m = gx - t0 < kObjectiveTile ? int(gx - t0) : kObjectiveTile;
        for (int i = threadIdx.x; i < m; i += blockDim.x) tile[i] = p[t0 + i];
        __syncthreads();
        if (threadIdx.x == 0)
            for (int i = 0; i < m; ++i) s += tile[i];
        __syncthreads();
    }
    if (threadIdx.x == 0) obj[blockIdx.x] = s;
}

}  // namespace

void sum_partials(const double* part, int batch, int64_t gx, bool first, double* obj, cudaStream_t stream) {
    sum_partials_kernel<<<unsigned(batch), 256, 0, stream>>>(part, gx, first, obj);
    FK_CUDA_CHECK(cudaGetLastError());
}

void launch_assign(const StreamGeom& geo, int batch, MathKind kind, const AssignArgs& args,
                   cudaStream_t stream) {
    const bool bf16 = kind == MathKind::bf16;
    switch (choose_assign_kernel(geo, batch, kind)) {
        case AssignKernel::wgmma_smallk:
            return bf16 ? launch_wgmma_smallk<WgOp::bf16>(geo, batch, args, stream)
                        : launch_wgmma_smallk<WgOp::f16>(geo, batch, args, stream);
        case AssignKernel::wgmma:
            return bf16 ? launch_wgmma<WgOp::bf16>(geo, batch, args, stream)
                        : launch_wgmma<WgOp::f16>(geo, batch, args, stream);
        case AssignKernel::wgmma_long:
            return bf16 ? launch_wgmma_long<WgOp::bf16>(geo, batch, args, stream)
                        : launch_wgmma_long<WgOp::f16>(geo, batch, args, stream);
        case AssignKernel::wgmma_tf32: return launch_wgmma<WgOp::tf32>(geo, batch, args, stream);
        case AssignKernel::small_rows: return launch_small(geo, batch, args, stream);
        case AssignKernel::stream: break;
    }
    launch_stream<ArgminEpi>(geo, batch, kind, args, 0, stream);
}

}  // namespace flashkmeans::kernels
