// faiss::ClusteringParameters -> flashkmeans::KMeansParams, with Faiss's own
// permutation (so the same seed subsamples and seeds as stock Faiss) and
// Faiss's interrupt callback checked between iterations; and the engine's
// AssignParams for a search under a Faiss metric.
#pragma once

#include <cstdint>

#include <faiss/Clustering.h>
#include <faiss/MetricType.h>

#include <flashkmeans/faiss/engine_options.hpp>
#include <flashkmeans/kmeans.hpp>
#include <flashkmeans/params.hpp>

namespace flashkmeans {

KMeansParams kmeans_params(const faiss::ClusteringParameters& cp, Metric metric,
                           const EngineOptions& engine);

/// Nearest-centroid search on the engine under `metric` (L2 or inner product).
AssignParams assign_params(const EngineOptions& engine, faiss::MetricType metric);

}  // namespace flashkmeans
