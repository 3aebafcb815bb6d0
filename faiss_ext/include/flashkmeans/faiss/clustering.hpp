// A drop-in for faiss::Clustering whose k-means runs on the flashkmeans
// engine (GPU when present, else the BLAS CPU path). Every field of
// faiss::ClusteringParameters keeps its meaning; the same seed gives the same
// centroids as stock Faiss up to floating-point rounding.
#pragma once

#include <cstdint>  // Faiss 1.7.3's headers use int64_t without including it

#include <faiss/Clustering.h>
#include <faiss/Index.h>

#include <flashkmeans/params.hpp>

namespace flashkmeans {

struct Clustering : faiss::Clustering {
    /// Where to run and in which arithmetic; the defaults pick the GPU when
    /// one is present and exact float32 products for float32 input.
    DeviceChoice device = DeviceChoice::automatic;
    Precision precision = Precision::automatic;
    int gpu_id = 0;
    /// CPU only: break exact ties (identical centroids) bit for bit as stock
    /// Faiss on this machine does, at Faiss's speed. See
    /// KMeansParams::faiss_blas_blocking.
    bool faiss_blas_blocking = false;

    Clustering(int d, int k);
    Clustering(int d, int k, const faiss::ClusteringParameters& cp);

    /// Same contract as faiss::Clustering::train: x is (n, d) float32,
    /// weights null or (n); the centroids end up in `centroids` and in
    /// `index` (reset first), and per-iteration statistics are appended to
    /// `iteration_stats`. `index` only receives the result; assignment runs
    /// on the engine, for IndexFlatL2 / IndexFlatIP semantics (index.metric_type).
    void train(idx_t n, const float* x, faiss::Index& index,
               const float* weights = nullptr) override;
};

/// Like faiss::kmeans_clustering: L2 k-means with default parameters;
/// centroids (k, d) is written; returns the final objective.
float kmeans_clustering(size_t d, size_t n, size_t k, const float* x,
                        float* centroids);

}  // namespace flashkmeans
