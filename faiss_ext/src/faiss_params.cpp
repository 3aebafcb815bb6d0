#include "faiss_params.hpp"

#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/utils/random.h>

namespace flashkmeans {

KMeansParams kmeans_params(const faiss::ClusteringParameters& cp, Metric metric,
                           const EngineOptions& engine) {
    KMeansParams p;
    p.niter = cp.niter;
    p.nredo = cp.nredo;
    p.verbose = cp.verbose;
    p.spherical = cp.spherical;
    p.int_centroids = cp.int_centroids;
    p.frozen_centroids = cp.frozen_centroids;
    p.min_points_per_centroid = cp.min_points_per_centroid;
    p.max_points_per_centroid = cp.max_points_per_centroid;
    p.seed = cp.seed;
    p.metric = metric;
    p.precision = engine.precision;
    p.device = engine.device;
    p.gpu_id = engine.gpu_id;
    p.permutation = [](int* perm, size_t n, int64_t s) { faiss::rand_perm(perm, n, s); };
    // Interrupts (Python's Ctrl-C through Faiss's callback) stop between iterations.
    p.on_iteration = [](int, int, const IterationStats&) { faiss::InterruptCallback::check(); };
    return p;
}

AssignParams assign_params(const EngineOptions& engine, faiss::MetricType metric) {
    AssignParams ap;
    ap.metric = metric == faiss::METRIC_INNER_PRODUCT ? Metric::inner_product : Metric::L2;
    ap.device = engine.device;
    ap.precision = engine.precision;
    ap.gpu_id = engine.gpu_id;
    return ap;
}

}  // namespace flashkmeans
