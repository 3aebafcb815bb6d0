// Blocked nearest-centroid search on the CPU: BLAS computes the cross terms
// one (rows x centroids) block at a time and each block is folded into the
// running best-k of its rows right away, so no n x k matrix is ever held.
#pragma once

#include <flashkmeans/params.hpp>

#include <cstdint>

namespace flashkmeans::detail {

/// x (n, d) packed f32 with squared norms xn (L2 only; may be null for IP),
/// y (k, d) with norms yn. Writes labels/distances (n, topk), best first.
/// L2 distances are ||x||^2 + ||y||^2 - 2 x.y clamped at 0 (Faiss's formula);
/// IP "distances" are the inner products. Missing results (k < topk) are
/// label -1 with distance +inf (L2) / -inf (IP).
void block_knn(const float* x, const float* xn, int64_t n, const float* y,
               const float* yn, int64_t k, int64_t d, Metric metric,
               int64_t topk, int64_t* labels, float* distances,
               bool faiss_blas_blocking = false);

}  // namespace flashkmeans::detail
