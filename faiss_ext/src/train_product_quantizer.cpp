#include <flashkmeans/faiss/train.hpp>

#include "engine_errors.hpp"
#include "faiss_params.hpp"

#include <flashkmeans/kmeans.hpp>

#include <faiss/impl/FaissAssert.h>

#include <cstdio>

namespace flashkmeans {

namespace {

/// The M sub-vectors of x (n, M * dsub) as M problems, without a copy: the
/// batch stride is one sub-vector, the row stride a whole vector.
ArrayView subspace_batch(const float* x, size_t n, size_t M, size_t dsub) {
    ArrayView v = batch_view(x, int64_t(M), int64_t(n), int64_t(dsub));
    v.strides[0] = int64_t(dsub);
    v.strides[1] = int64_t(M * dsub);
    v.strides[2] = 1;
    return v;
}

}  // namespace

void train_product_quantizer(faiss::ProductQuantizer& pq, size_t n, const float* x,
                             const EngineOptions& engine) {
    using PQ = faiss::ProductQuantizer;
    FAISS_THROW_IF_NOT_MSG(x != nullptr, "train_product_quantizer: x is null");
    FAISS_THROW_IF_NOT_FMT(pq.M > 0 && pq.dsub > 0 && pq.M * pq.dsub == pq.d,
                           "train_product_quantizer: inconsistent quantizer d=%zd M=%zd dsub=%zd",
                           pq.d, pq.M, pq.dsub);
    if (pq.train_type == PQ::Train_hypercube || pq.train_type == PQ::Train_hypercube_pca) {
        pq.train(n, x);  // a deterministic initialisation, then Faiss's loop
        return;
    }
    KMeansParams p = kmeans_params(pq.cp, Metric::L2, engine);
    p.verbose = p.verbose || pq.verbose;
    const int64_t ksub = int64_t(pq.ksub);

    KMeansResult res;
    if (pq.train_type == PQ::Train_shared) {
        // One codebook for all sub-vectors: the n * M sub-vectors are rows.
        if (p.verbose) std::printf("Training all PQ slices at once\n");
        with_faiss_errors("train_product_quantizer", [&] {
            res = fit(matrix_view(x, int64_t(n * pq.M), int64_t(pq.dsub)), ksub, p);
        });
        for (size_t m = 0; m < pq.M; m++) pq.set_params(res.centroids.data(), int(m));
        return;
    }

    const bool hot_start = pq.train_type == PQ::Train_hot_start;
    FAISS_THROW_IF_NOT_MSG(!hot_start || pq.centroids.size() == pq.M * pq.ksub * pq.dsub,
                           "train_product_quantizer: Train_hot_start needs the "
                           "quantizer's centroids to be set");
    if (p.verbose)
        std::printf("Training %zd PQ slices of %zd centroids as one batched problem\n",
                    pq.M, pq.ksub);
    // pq.centroids is laid out (M, ksub, dsub): the batch layout of the engine.
    const std::vector<float> init = hot_start ? pq.centroids : std::vector<float>{};
    with_faiss_errors("train_product_quantizer", [&] {
        res = fit_batched(subspace_batch(x, n, pq.M, pq.dsub), ksub, p, {},
                          hot_start ? batch_view(init.data(), int64_t(pq.M), ksub,
                                                 int64_t(pq.dsub))
                                    : ArrayView{});
    });
    for (size_t m = 0; m < pq.M; m++)
        pq.set_params(res.centroids.data() + m * pq.ksub * pq.dsub, int(m));
}

}  // namespace flashkmeans
