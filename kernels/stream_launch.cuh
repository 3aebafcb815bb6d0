// Launch configuration of the FlashAssign family, chosen in one place: which
// Math policy (from the compute type), resident points or split-D (from D and
// the device's shared memory), and the dynamic shared memory size.
#pragma once

#include "kernels/assign.cuh"
#include "kernels/stream.cuh"
#include "src/cuda/cuda_check.hpp"

#include <algorithm>
#include <string>

namespace flashkmeans::kernels {

/// Points stay resident in shared memory up to this many words a row (512
/// bytes: D = 256 in f16/bf16, 128 in f32); beyond, the split-D loop.
constexpr int kMaxResidentWords = 128;

template <class Math, class Epi, bool XRES, int BKW>
void launch_stream_variant(const StreamGeom& geo, int batch, const typename Epi::Args& args,
                           size_t epi_smem, cudaStream_t stream) {
    // The epilogue's own region starts after the pipeline's; its finish()
    // may reuse the pipeline's buffers, which must then be large enough.
    const size_t smem = std::max(stream_smem_bytes(XRES, geo.nk, BKW), Epi::kFinishSmem) + epi_smem;
    int dev = 0, optin = 0;
    FK_CUDA_CHECK(cudaGetDevice(&dev));
    FK_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    if (smem > size_t(optin))
        throw Error("flashkmeans: assign kernel needs " + std::to_string(smem) +
                    " bytes of shared memory, the device allows " + std::to_string(optin));
    auto kernel = stream_kernel<Math, Epi, XRES, BKW>;
    FK_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       int(smem)));
    const dim3 grid(unsigned(stream_grid_x(geo.x.rows)), unsigned(batch));
    kernel<<<grid, Math::THREADS, smem, stream>>>(geo, args);
    FK_CUDA_CHECK(cudaGetLastError());
}

template <template <class> class Epi, class Args>
void launch_stream(const StreamGeom& geo_in, int batch, MathKind kind, const Args& args,
                   size_t epi_smem, cudaStream_t stream) {
    if (geo_in.x.rows == 0 || geo_in.c.rows == 0) return;
    if (batch > 65535) throw Error("flashkmeans: at most 65535 problems per launch");
    if (geo_in.x.q != geo_in.c.q)
        throw Error("flashkmeans: points and centroids differ in row length");
    StreamGeom geo = geo_in;
    const int words = geo.x.q * 4;
    const bool wide = words >= 64;
    // Rows of at most 8 words (D <= 8 in f32, 16 in f16/bf16: PQ sub-spaces)
    // take 8-word chunks: a 32-word chunk would be mostly zero padding.
    const bool narrow = words <= 8;
    geo.nk = wide ? (words + 63) / 64 : narrow ? 1 : (words + 31) / 32;
    const bool xres = words <= kMaxResidentWords;
#define FK_VARIANTS(MATH)                                                                        \
    if (wide) {                                                                                  \
        if (xres) launch_stream_variant<MATH, Epi<MATH>, true, 64>(geo, batch, args, epi_smem, stream); \
        else launch_stream_variant<MATH, Epi<MATH>, false, 64>(geo, batch, args, epi_smem, stream);     \
    } else if (narrow) {                                                                         \
        launch_stream_variant<MATH, Epi<MATH>, true, 8>(geo, batch, args, epi_smem, stream);            \
    } else {                                                                                     \
        launch_stream_variant<MATH, Epi<MATH>, true, 32>(geo, batch, args, epi_smem, stream);           \
    }
    switch (kind) {
        case MathKind::f16: FK_VARIANTS(MmaMath<__half>) break;
        case MathKind::bf16: FK_VARIANTS(MmaMath<__nv_bfloat16>) break;
        case MathKind::tf32: FK_VARIANTS(MmaMath<float>) break;
        case MathKind::ffma: FK_VARIANTS(FfmaMath) break;
    }
#undef FK_VARIANTS
}

}  // namespace flashkmeans::kernels
