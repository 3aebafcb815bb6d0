// Training Faiss indexes with every k-means step on the flashkmeans engine.
// What comes out is the stock Faiss structure, trained: the same fields Faiss's
// own train() fills, so faiss::write_index saves it and stock Faiss reads it.
//
// All inputs are (n, d) row-major float32 host arrays, d being the dimension
// of the index or quantizer they train. Errors are faiss::FaissException.
#pragma once

#include <cstdint>  // Faiss 1.7.3's headers use int64_t without including it

#include <faiss/Index.h>
#include <faiss/IndexIVF.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/ProductQuantizer.h>

#include <flashkmeans/faiss/engine_options.hpp>

namespace flashkmeans {

/// Trains any index faiss::index_factory builds, as index.train(n, x) would:
/// IndexPreTransform chains (OPQ rotations with batched PQ inside, PCA and
/// others by Faiss), IndexIDMap/IDMap2, IndexRefine, IVF indexes (train_ivf)
/// and IndexPQ (train_product_quantizer). Parts without k-means (SQ, Flat,
/// HNSW graph, ...) are trained by their own Faiss train().
void train(faiss::Index& index, faiss::Index::idx_t n, const float* x,
           const EngineOptions& engine = {});

/// IndexIVF::train with the engine: the coarse quantizer as
/// Level1Quantizer::train_q1 does it (index.cp, clustering_index,
/// quantizer_trains_alone 0 or 2) but with flashkmeans::Clustering; then the
/// residual step: for IndexIVFPQ exactly IndexIVFPQ::train_residual
/// (subsample with pq.cp's seed, residuals to the coarse centroids, PQ,
/// polysemous, precomputed tables) with the PQ codebooks as one batched fit;
/// for other IVF types Faiss's own train_residual.
void train_ivf(faiss::IndexIVF& index, faiss::Index::idx_t n, const float* x,
               const EngineOptions& engine = {});

/// ProductQuantizer::train as ONE batched k-means: the M sub-vector problems
/// of k = 2^nbits run together (fit_batched on a strided view of x, no copy).
/// Honours pq.cp (same seed -> same subsample and seeds as Faiss's
/// per-subspace loop), Train_default, Train_hot_start and Train_shared;
/// hypercube initialisations are left to Faiss.
void train_product_quantizer(faiss::ProductQuantizer& pq, size_t n, const float* x,
                             const EngineOptions& engine = {});

/// OPQMatrix::train with each alternation's PQ step batched (see above);
/// rotation updates (SVD) as Faiss does them.
void train_opq(faiss::OPQMatrix& opq, faiss::Index::idx_t n, const float* x,
               const EngineOptions& engine = {});

}  // namespace flashkmeans
