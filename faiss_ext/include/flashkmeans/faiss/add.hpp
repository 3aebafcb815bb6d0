// Adding vectors to Faiss indexes with the encoding's nearest-centroid
// searches on the flashkmeans engine (GPU when present): the IVF coarse
// assignment and, for IndexIVFPQ, the M sub-quantizer assignments that make
// the PQ codes. What is stored is what the index's own add() stores: the same
// inverted lists, ids and codes (up to exact distance ties), so the index
// stays a stock Faiss index.
//
// x is an (n, d) row-major float32 host array, d being the index's dimension.
// Errors are faiss::FaissException.
#pragma once

#include <cstdint>  // Faiss 1.7.3's headers use int64_t without including it

#include <faiss/Index.h>

#include <flashkmeans/faiss/engine_options.hpp>

namespace flashkmeans {

struct AddOptions {
    /// Where the assignments run and in which arithmetic.
    EngineOptions engine;
    /// Vectors encoded per step, bounding the temporary host memory to about
    /// batch_size * (4 d + 48 + M + code size) bytes (IVFPQ; d: the IVF
    /// index's dimension). 0: as many as make 512 MiB of residuals, e.g. 1M
    /// vectors of d = 128. An IndexPreTransform's chain is applied a batch
    /// at a time too (Faiss applies it to all n at once; BLAS may round the
    /// transformed vectors differently when a batch holds fewer rows).
    faiss::Index::idx_t batch_size = 0;
};

/// index->add(n, x) (xids null) or index->add_with_ids(n, x, xids), with:
///  - IndexIVFPQ (by residual or not, any nbits): coarse list numbers from
///    one engine assignment per batch against the quantizer's centroids,
///    residuals on the host, then the PQ code of each subspace m from one
///    engine assignment against sub-quantizer m; the codes enter through
///    IndexIVF::add_sa_codes (ids: xids, or ntotal, ntotal + 1, ...).
///  - other IVF indexes whose add is IndexIVF's (IVFFlat, IVFSQ, IVFPQR,
///    additive quantizers, spectral hash): coarse assignment on the engine,
///    then the index's own add_core(n, x, xids, list_nos).
///  - IndexPreTransform: the chain applied by Faiss (apply_chain), then the
///    wrapped index through this function; IndexIDMap / IndexIDMap2: the
///    wrapped index through this function, ids appended as Faiss does (xids
///    are required, as IndexIDMap::add refuses plain adds).
///  - anything else: index->add / add_with_ids, unchanged.
/// Coarse quantizers that are flat indexes (IndexFlat, IndexFlashFlat; L2 or
/// inner product, following their metric_type) are searched on the engine;
/// other quantizers (HNSW, residual, ...) assign with their own search, and
/// only the PQ encoding moves to the engine. PQ codes are L2, as in Faiss.
/// An untrained index throws what Faiss's add throws ("'is_trained' failed").
void add(faiss::Index* index, faiss::Index::idx_t n, const float* x,
         const faiss::Index::idx_t* xids = nullptr, const AddOptions& options = {});

}  // namespace flashkmeans
