// A faiss::IndexFlat whose k-NN search runs on the flashkmeans engine's
// assign / top-k kernels (GPU when present, else the BLAS CPU path).
//
// Because it *is* an IndexFlat, it works wherever Faiss takes a flat index:
// as an IVF `quantizer` (coarse assignment for add and the nprobe lists of a
// search), as `IndexIVF::clustering_index`, as `ProductQuantizer::assign_index`.
// faiss::write_index writes it as a plain IndexFlat ("IxF2" / "IxFI"), so a
// saved index is read back by stock Faiss without this library.
#pragma once

#include <cstdint>  // Faiss 1.7.3's headers use int64_t without including it

#include <faiss/IndexFlat.h>

#include <flashkmeans/faiss/engine_options.hpp>

namespace flashkmeans {

struct IndexFlashFlat : faiss::IndexFlat {
    /// Where searches run and in which arithmetic.
    EngineOptions engine;

    /// metric: faiss::METRIC_L2 or faiss::METRIC_INNER_PRODUCT; anything else
    /// throws faiss::FaissException.
    explicit IndexFlashFlat(idx_t d, faiss::MetricType metric = faiss::METRIC_L2);
    /// Takes over the vectors of a stock flat index (a copy).
    explicit IndexFlashFlat(const faiss::IndexFlat& flat);
    IndexFlashFlat();

    /// Faiss's contract (distances: squared L2, or inner products, best
    /// first; -1 labels beyond ntotal). Throws when the index is empty: an
    /// empty quantizer means its IVF index was used before training.
    /// Search parameters with an IDSelector fall back to IndexFlat::search.
    void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels,
                const faiss::SearchParameters* params = nullptr) const override;
};

}  // namespace flashkmeans
