#include <flashkmeans/faiss/train.hpp>

#include <flashkmeans/faiss/clustering.hpp>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexIVFPQR.h>
#include <faiss/impl/FaissAssert.h>

#include <cinttypes>
#include <faiss/impl/PolysemousTraining.h>
#include <faiss/utils/utils.h>

#include <cstdio>
#include <memory>
#include <vector>

namespace flashkmeans {

namespace {

using idx_t = faiss::Index::idx_t;

flashkmeans::Clustering coarse_clustering(const faiss::IndexIVF& ivf,
                                          const EngineOptions& engine) {
    flashkmeans::Clustering clus(int(ivf.d), int(ivf.nlist), ivf.cp);
    clus.device = engine.device;
    clus.precision = engine.precision;
    clus.gpu_id = engine.gpu_id;
    return clus;
}

/// Level1Quantizer::train_q1, with flashkmeans::Clustering for Faiss's.
void train_coarse_quantizer(faiss::IndexIVF& ivf, idx_t n, const float* x,
                            const EngineOptions& engine) {
    faiss::Index& q = *ivf.quantizer;
    if (q.is_trained && q.ntotal == idx_t(ivf.nlist)) {
        if (ivf.verbose) std::printf("IVF quantizer does not need training.\n");
        return;
    }
    switch (ivf.quantizer_trains_alone) {
        case 0: {  // k-means whose centroids become the quantizer's vectors
            if (ivf.verbose)
                std::printf("Training level-1 quantizer on %" PRId64 " vectors in %zdD\n",
                            int64_t(n), size_t(ivf.d));
            auto clus = coarse_clustering(ivf, engine);
            q.reset();
            if (ivf.clustering_index) {
                clus.train(n, x, *ivf.clustering_index);
                q.add(ivf.nlist, clus.centroids.data());
            } else {
                clus.train(n, x, q);
            }
            q.is_trained = true;
            return;
        }
        case 2: {  // L2 k-means, centroids added to a non-flat quantizer (HNSW)
            // As Faiss: inner product only with spherical centroids, where
            // L2 and inner-product assignment agree.
            FAISS_THROW_IF_NOT_FMT(
                    ivf.metric_type == faiss::METRIC_L2 ||
                            (ivf.metric_type == faiss::METRIC_INNER_PRODUCT && ivf.cp.spherical),
                    "train_ivf: metric mismatch: a quantizer that trains on L2 k-means "
                    "(quantizer_trains_alone = 2) serves metric type %d; expected "
                    "METRIC_L2, or METRIC_INNER_PRODUCT with cp.spherical",
                    int(ivf.metric_type));
            auto clus = coarse_clustering(ivf, engine);
            faiss::IndexFlatL2 receiver(ivf.d);
            clus.train(n, x, ivf.clustering_index ? *ivf.clustering_index : receiver);
            if (!q.is_trained) q.train(ivf.nlist, clus.centroids.data());
            q.add(ivf.nlist, clus.centroids.data());
            return;
        }
        default:  // 1: the quantizer trains itself (e.g. MultiIndexQuantizer)
            q.train(n, x);
            q.verbose = ivf.verbose;
            FAISS_THROW_IF_NOT_MSG(q.ntotal == idx_t(ivf.nlist),
                                   "nlist not consistent with quantizer size");
    }
}

/// IndexIVFPQ::train_residual with the PQ codebooks trained as one batch.
void train_ivfpq_residual(faiss::IndexIVFPQ& ivf, idx_t n, const float* x,
                          const EngineOptions& engine) {
    faiss::ProductQuantizer& pq = ivf.pq;
    // The same subsample (size and seed) as Faiss's.
    size_t ns = size_t(n);
    const float* xs = faiss::fvecs_maybe_subsample(
            ivf.d, &ns, pq.cp.max_points_per_centroid * pq.ksub, x, ivf.verbose, pq.cp.seed);
    std::unique_ptr<const float[]> owned_xs(xs != x ? xs : nullptr);

    std::vector<float> residuals;
    const float* trainset = xs;
    if (ivf.by_residual) {
        if (ivf.verbose) std::printf("computing residuals\n");
        std::vector<idx_t> coarse(ns);
        ivf.quantizer->assign(ns, xs, coarse.data());
        residuals.resize(ns * ivf.d);
        ivf.quantizer->compute_residual_n(ns, xs, residuals.data(), coarse.data());
        trainset = residuals.data();
    }
    if (ivf.verbose)
        std::printf("training %zdx%zd product quantizer on %zd vectors in %dD\n", pq.M,
                    pq.ksub, ns, int(ivf.d));
    pq.verbose = ivf.verbose;
    train_product_quantizer(pq, ns, trainset, engine);

    if (ivf.do_polysemous_training) {
        if (ivf.verbose) std::printf("doing polysemous training for PQ\n");
        faiss::PolysemousTraining default_pt;
        faiss::PolysemousTraining* pt =
                ivf.polysemous_training ? ivf.polysemous_training : &default_pt;
        pt->optimize_pq_for_hamming(pq, ns, trainset);
    }
    if (ivf.by_residual) ivf.precompute_table();
}

}  // namespace

void train_ivf(faiss::IndexIVF& ivf, idx_t n, const float* x, const EngineOptions& engine) {
    FAISS_THROW_IF_NOT_MSG(ivf.quantizer != nullptr, "train_ivf: the index has no quantizer");
    FAISS_THROW_IF_NOT_MSG(x != nullptr || n == 0, "train_ivf: x is null");
    if (ivf.verbose) std::printf("Training level-1 quantizer\n");
    train_coarse_quantizer(ivf, n, x, engine);

    if (ivf.verbose) std::printf("Training IVF residual\n");
    auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(&ivf);
    // IVFPQR trains a second, refinement PQ on the first one's residuals:
    // Faiss's own code does both (its coarse quantizer is trained above).
    if (ivfpq && !dynamic_cast<faiss::IndexIVFPQR*>(&ivf))
        train_ivfpq_residual(*ivfpq, n, x, engine);
    else
        ivf.train_residual(n, x);
    ivf.is_trained = true;
}

}  // namespace flashkmeans
