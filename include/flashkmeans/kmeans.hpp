// The engine's entry points: exact Lloyd k-means on one problem or on B
// independent problems, and nearest-centroid (top-k) assignment.
//
// Memory: inputs are read where they live (host or GPU); the engine never
// materialises the N x K distance matrix. Peak extra memory per entry point is
// documented in docs/ARCHITECTURE.md.
#pragma once

#include <flashkmeans/array_view.hpp>
#include <flashkmeans/error.hpp>
#include <flashkmeans/params.hpp>

namespace flashkmeans {

/// Cluster the rows of x (n, d) into k clusters.
/// weights: optional (n,) f32, same memory as x. init_centroids: optional
/// (k0, d) f32 host array with k0 <= k used for the first k0 centroids (the
/// rest are seeded from the data); with params.frozen_centroids they never move.
KMeansResult fit(const ArrayView& x, int64_t k, const KMeansParams& params = {},
                 const ArrayView& weights = {},
                 const ArrayView& init_centroids = {});

/// B independent problems: x is (B, n, d); weights optional (B, n);
/// init_centroids optional (B, k0, d) host f32. One launch per step covers all B.
KMeansResult fit_batched(const ArrayView& x, int64_t k,
                         const KMeansParams& params = {},
                         const ArrayView& weights = {},
                         const ArrayView& init_centroids = {});

struct AssignParams {
    Metric metric = Metric::L2;
    Precision precision = Precision::automatic;
    DeviceChoice device = DeviceChoice::automatic;
    int gpu_id = 0;
};

/// For each row of x (n, d), the `topk` nearest centroids of c (k, d), best
/// first (smallest L2 distance, or largest inner product). labels (n, topk)
/// and distances (n, topk) are written in the memory x lives in (host, or the
/// GPU for device arrays); distances may be null. Rows of x beyond k centroids
/// get label -1 and distance +inf (L2) or -inf (IP), as Faiss does.
void assign(const ArrayView& x, const ArrayView& centroids, int64_t topk,
            int64_t* labels, float* distances, const AssignParams& params = {});

/// True when this build has the CUDA backend and a GPU is visible.
bool cuda_available();

}  // namespace flashkmeans
