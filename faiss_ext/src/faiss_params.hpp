// faiss::ClusteringParameters -> flashkmeans::KMeansParams, with Faiss's own
// permutation (so the same seed subsamples and seeds as stock Faiss) and
// Faiss's interrupt callback checked between iterations.
#pragma once

#include <cstdint>

#include <faiss/Clustering.h>

#include <flashkmeans/faiss/engine_options.hpp>
#include <flashkmeans/params.hpp>

namespace flashkmeans {

KMeansParams kmeans_params(const faiss::ClusteringParameters& cp, Metric metric,
                           const EngineOptions& engine);

}  // namespace flashkmeans
