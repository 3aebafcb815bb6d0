#include <flashkmeans/faiss/clustering.hpp>

#include <flashkmeans/kmeans.hpp>

#include "engine_errors.hpp"
#include "faiss_params.hpp"

#include <faiss/IndexFlat.h>
#include <faiss/impl/FaissAssert.h>

#include <cinttypes>
#include <cmath>
#include <cstring>

namespace flashkmeans {

Clustering::Clustering(int d, int k) : faiss::Clustering(d, k) {}
Clustering::Clustering(int d, int k, const faiss::ClusteringParameters& cp)
        : faiss::Clustering(d, k, cp) {}

void Clustering::train(idx_t nx, const float* x, faiss::Index& index,
                       const float* weights) {
    // The checks and messages of faiss::Clustering::train, as FaissException.
    FAISS_THROW_IF_NOT_FMT(k > 0, "Number of clusters k (%zd) must be positive", k);
    FAISS_THROW_IF_NOT_FMT(nx >= idx_t(k),
                           "Number of training points (%" PRId64
                           ") should be at least as large as number of clusters (%zd)",
                           nx, k);
    FAISS_THROW_IF_NOT_MSG(x != nullptr, "x: training vectors pointer is null");
    FAISS_THROW_IF_NOT_FMT(index.d == idx_t(d),
                           "Index dimension %d not the same as data dimension %d",
                           int(index.d), int(d));
    FAISS_THROW_IF_NOT_FMT(index.metric_type == faiss::METRIC_L2 ||
                                   index.metric_type == faiss::METRIC_INNER_PRODUCT,
                           "index: metric type %d is not supported, expected L2 or inner product",
                           int(index.metric_type));
    FAISS_THROW_IF_NOT_MSG(centroids.size() % d == 0,
                           "size of provided input centroids not a multiple of dimension");
    FAISS_THROW_IF_NOT_FMT(centroids.size() / d <= k,
                           "%zd input centroids provided, more than k = %zd",
                           centroids.size() / d, k);
    for (size_t i = 0; i < size_t(nx) * d; i++)
        FAISS_THROW_IF_NOT_MSG(std::isfinite(x[i]), "input contains NaN's or Inf's");

    const Metric metric = index.metric_type == faiss::METRIC_INNER_PRODUCT ? Metric::inner_product
                                                                           : Metric::L2;
    KMeansParams p = kmeans_params(*this, metric, {device, precision, gpu_id});
    p.faiss_blas_blocking = faiss_blas_blocking;
    p.check_finite = false;  // done above, with Faiss's message

    const ArrayView xv = matrix_view(x, nx, d);
    const ArrayView wv = weights ? vector_view(weights, nx) : ArrayView{};
    const std::vector<float> given = centroids;
    const ArrayView init = given.empty() ? ArrayView{}
                                         : matrix_view(given.data(), given.size() / d, d);
    KMeansResult res;
    with_faiss_errors("Clustering::train", [&] { res = fit(xv, idx_t(k), p, wv, init); });

    centroids = std::move(res.centroids);
    for (const IterationStats& s : res.iteration_stats[0])
        iteration_stats.push_back({float(s.obj), s.time, s.time_search,
                                   s.imbalance_factor, s.nsplit});
    index.reset();
    if (!index.is_trained || update_index) index.train(k, centroids.data());
    index.add(k, centroids.data());
}

float kmeans_clustering(size_t d, size_t n, size_t k, const float* x,
                        float* centroids) {
    Clustering clus{int(d), int(k)};
    clus.verbose = d * n * k > (size_t(1) << 30);  // as Faiss: over 1 Gflop per iteration
    faiss::IndexFlatL2 index(d);
    clus.train(n, x, index);
    std::memcpy(centroids, clus.centroids.data(), sizeof(float) * d * k);
    return clus.iteration_stats.back().obj;
}

}  // namespace flashkmeans
