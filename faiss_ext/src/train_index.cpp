#include <flashkmeans/faiss/train.hpp>

#include <faiss/IndexIDMap.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/impl/FaissAssert.h>

#include <cinttypes>

#include <cstdio>
#include <memory>

namespace flashkmeans {

namespace {

using idx_t = faiss::Index::idx_t;

/// IndexPreTransform::train: train the chain up to the last untrained
/// component (or the sub-index), applying each trained transform to get the
/// next one's input.
void train_pretransform(faiss::IndexPreTransform& ipt, idx_t n, const float* x,
                        const EngineOptions& engine) {
    const int nchain = int(ipt.chain.size());
    int last_untrained = 0;
    if (!ipt.index->is_trained) {
        last_untrained = nchain;
    } else {
        for (int i = nchain - 1; i >= 0; i--)
            if (!ipt.chain[i]->is_trained) {
                last_untrained = i;
                break;
            }
    }
    std::unique_ptr<const float[]> owned;
    const float* xi = x;
    for (int i = 0; i <= last_untrained; i++) {
        if (i == nchain) {
            train(*ipt.index, n, xi, engine);
            break;
        }
        faiss::VectorTransform& vt = *ipt.chain[i];
        if (!vt.is_trained) {
            if (auto* opq = dynamic_cast<faiss::OPQMatrix*>(&vt)) {
                opq->verbose = opq->verbose || ipt.verbose;
                train_opq(*opq, n, xi, engine);
            } else {
                vt.train(n, xi);
            }
        }
        if (i == last_untrained) break;
        owned.reset(vt.apply(n, xi));
        xi = owned.get();
    }
    ipt.is_trained = true;
}

/// IndexPQ::train, with polysemous training on a held-out tail as Faiss does.
void train_index_pq(faiss::IndexPQ& ipq, idx_t n, const float* x, const EngineOptions& engine) {
    if (!ipq.do_polysemous_training) {
        train_product_quantizer(ipq.pq, n, x, engine);
    } else {
        const idx_t nperm = std::min<idx_t>(ipq.polysemous_training.ntrain_permutation, n / 4);
        train_product_quantizer(ipq.pq, n - nperm, x, engine);
        ipq.polysemous_training.optimize_pq_for_hamming(ipq.pq, nperm, x + (n - nperm) * ipq.d);
    }
    ipq.is_trained = true;
}

}  // namespace

void train(faiss::Index& index, idx_t n, const float* x, const EngineOptions& engine) {
    FAISS_THROW_IF_NOT_FMT(n > 0, "train: n = %" PRId64 " training vectors, expected > 0",
                           int64_t(n));
    FAISS_THROW_IF_NOT_MSG(x != nullptr, "train: x is null");
    if (auto* ipt = dynamic_cast<faiss::IndexPreTransform*>(&index)) {
        train_pretransform(*ipt, n, x, engine);
    } else if (auto* idmap = dynamic_cast<faiss::IndexIDMap*>(&index)) {  // and IDMap2
        train(*idmap->index, n, x, engine);
        idmap->is_trained = idmap->index->is_trained;
    } else if (auto* refine = dynamic_cast<faiss::IndexRefine*>(&index)) {
        train(*refine->base_index, n, x, engine);
        train(*refine->refine_index, n, x, engine);
        refine->is_trained = true;
    } else if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(&index)) {
        train_ivf(*ivf, n, x, engine);
    } else if (auto* ipq = dynamic_cast<faiss::IndexPQ*>(&index)) {
        train_index_pq(*ipq, n, x, engine);
    } else {
        index.train(n, x);  // no k-means inside (Flat, SQ, HNSW, LSH, ...)
    }
}

}  // namespace flashkmeans
