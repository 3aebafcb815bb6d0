// Host entry points of the sort-inverse centroid update (update.cu).
//
// 1. keys = (problem << kbits) | label, values = point index; CUB radix sort
//    on the kbits label bits only (stable: a label's points stay in index
//    order, problem by problem, so each cluster's points are one run in
//    index order);
// 2. each cluster's points, numbered in index order across every call of an
//    iteration (its count before the call is the first number), are cut into
//    pieces of `piece` points at multiples of `piece`; a lane group sums one
//    piece sequentially into a partial;
// 3. one warp per cluster folds the pieces into the cluster's sum in piece
//    order; a piece cut by the end of a call is carried to the next call;
// 4. centroid = sum * (1 / weight) where the weight is positive.
// So the sums are deterministic: they depend on the points' order and the
// piece size only, not on thread timing, nor on how the rows are split into
// calls (a streamed fit, chunk by chunk, gets the resident fit's sums bit
// for bit).
// When d <= 32 and a problem's k x d sums fit in shared memory (<= 96 KiB),
// steps 1-3 are replaced by per-block sums in shared memory (no sort), e.g.
// PQ codebooks (k = 256, d = 4); those use float atomics, so their last bits
// depend on timing, unless UpdateShape::deterministic.
#pragma once

#include <cuda_runtime.h>
#include <flashkmeans/array_view.hpp>

#include <cstddef>
#include <cstdint>

#include "kernels/norms.cuh"

namespace flashkmeans::kernels {

/// Bits needed to hold values 0..count-1 (0 for count <= 1).
int bits_for(int64_t count);

/// Capacity of the update's scratch: calls of up to `rows` points per problem.
struct UpdateShape {
    int batch = 1;
    int64_t rows = 0, k = 0, d = 0;
    int piece = 64;  ///< points a piece; the same for every call of a fit
    /// Small codebooks in fixed order too (KMeansParams::deterministic),
    /// instead of shared-memory atomics.
    bool deterministic = false;
};

/// The piece size for a fit of `fit_points` points in all (every problem,
/// every call): long pieces write fewer partials, short ones leave more
/// lane groups where points are few.
int piece_points(int64_t fit_points);

/// The scratch shape for calls of up to `rows` rows a problem, in a fit of
/// `batch` problems of `fit_rows` rows each. The piece size comes from the
/// whole fit, so that streamed and resident fits sum in the same order; the
/// streaming planner and the backend both size the scratch with this.
UpdateShape update_shape(int batch, int64_t rows, int64_t fit_rows, int64_t k, int64_t d, bool deterministic);

/// Device bytes of the scratch for `s` (sort keys and values, CUB's
/// temporary storage, per-cluster runs, piece partials, carried pieces).
size_t update_bytes(const UpdateShape& s);

struct UpdateBuffers {
    void* data = nullptr;  ///< update_bytes(shape) bytes, kept for the whole fit
    UpdateShape shape;
};

/// Which call of an iteration: the first zeroes the outputs, the last folds
/// the pieces still open into the sums. A resident fit makes one call (both).
struct SumsCall {
    bool first = true, last = true;
};

/// Sums (B, k, d), weight sums (B, k) and counts (B, k) of the assignment
/// `labels` (B, n) of the rows x (B, n, d), n <= buf.shape.rows. A streamed
/// fit calls this once a chunk of rows, in row order, with the same `buf`.
void cluster_sums(const int32_t* labels, const RowsRef& x, const float* weights, int batch,
                  int64_t n, int64_t k, int64_t d, const UpdateBuffers& buf, SumsCall call,
                  float* sums, float* wsum, int32_t* cnt, cudaStream_t stream);

/// centroids[b, j] = sums[b, j] / wsum[b, j] for j >= k_frozen and wsum > 0.
void finalize_centroids(const float* sums, const float* wsum, int batch, int64_t k, int64_t d,
                        int64_t k_frozen, float* centroids, cudaStream_t stream);

}  // namespace flashkmeans::kernels
