// Host entry points of the FlashAssign kernels (assign.cu, topk_assign.cu).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/stream.cuh"

namespace flashkmeans::kernels {

/// The arithmetic of the cross term (see stream.cuh's Math policies).
enum class MathKind { f16, bf16, tf32, ffma };

__host__ __device__ inline int64_t stream_grid_x(int64_t n) { return (n + kBM - 1) / kBM; }

/// Outputs of the argmin pass over B problems.
struct AssignArgs {
    const float* xnorm;  // (B, n) ||x||^2 (unused for IP)
    const float* cnorm;  // (B, k) ||c||^2 (unused for IP)
    int64_t n, k;
    bool ip;             // inner product: argmax of x.c
    int32_t* labels;     // (B, n)
    float* dist;         // (B, n) best distance / similarity, may be null
    double* partial;     // (B, stream_grid_x(n)) per-block objective sums
};

void launch_assign(const StreamGeom& geo, int batch, MathKind kind, const AssignArgs& args,
                   cudaStream_t stream);
/// obj[b] = (first ? 0 : obj[b]) + part[b * gx] + ... + part[b * gx + gx - 1]
/// for each of `batch` problems (gx = stream_grid_x(rows) partials a problem,
/// as launch_assign writes them), added one at a time in index order in
/// double, so that a fit's objective does not depend on where it is summed
/// (a streamed fit sums its segments in row order, one call each).
void sum_partials(const double* part, int batch, int64_t gx, bool first, double* obj, cudaStream_t stream);
/// The kernels launch_assign chooses from.
enum class AssignKernel {
    stream,        // stream.cuh: mma.sync or FFMA, any device (the only one with FK_ASSIGN_PATH=mma)
    small_rows,    // assign_small.cuh: exact f32 rows of 1..8 words
    wgmma_smallk,  // assign_wgmma_smallk.cuh: f16/bf16, D <= 128, K <= 128 (sm_90a)
    wgmma,         // assign_wgmma.cuh: f16/bf16, D <= 128, K > 128 (sm_90a)
    wgmma_tf32,    // assign_wgmma.cuh: tf32, D <= 128, K > 64 (sm_90a)
    wgmma_long,    // assign_wgmma_long.cuh: f16/bf16, D > 128 (sm_90a)
};
/// The kernel launch_assign takes for these operands on the current device.
AssignKernel choose_assign_kernel(const StreamGeom& geo, int batch, MathKind kind);

/// Top-k of one problem. keys/labels (n, topk) must hold +inf / -1 on entry
/// (fill_topk); they come back sorted best first, keys being the L2 distance
/// or the negated inner product (finish_topk turns those back).
struct TopkArgs {
    const float* xnorm;
    const float* cnorm;
    bool ip;
    int topk;
    float* keys;
    int64_t* labels;
};

constexpr int kMaxTopk = 256;

void launch_topk(const StreamGeom& geo, MathKind kind, const TopkArgs& args,
                 cudaStream_t stream);
void fill_topk(float* keys, int64_t* labels, int64_t count, cudaStream_t stream);
/// IP: keys -> similarities (negate).
void finish_topk(float* keys, int64_t count, bool ip, cudaStream_t stream);

}  // namespace flashkmeans::kernels
