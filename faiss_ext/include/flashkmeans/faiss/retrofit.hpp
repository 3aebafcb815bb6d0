// Puts the engine into an index built elsewhere (faiss::index_factory,
// faiss::read_index, hand-built), and takes it out again.
#pragma once

#include <cstdint>  // Faiss 1.7.3's headers use int64_t without including it

#include <faiss/Index.h>

#include <flashkmeans/faiss/engine_options.hpp>

namespace flashkmeans {

/// Replaces every exact flat IVF coarse quantizer inside `index` (through
/// IndexPreTransform, IndexIDMap/IDMap2 and IndexRefine's base) by an
/// IndexFlashFlat holding the same centroids, so that IVF add and the coarse
/// step of search assign on the engine. The IVF index owns the new quantizer
/// (own_fields); an old one it owned is deleted, one it did not own is left
/// to its owner. Quantizers already IndexFlashFlat get `engine`'s settings.
/// Non-flat quantizers (HNSW, ...) are left alone. Residual quantizers
/// (IndexResidualQuantizer, IndexIVFResidualQuantizer, product-residual
/// ones, ResidualCoarseQuantizer) get Faiss's assign_index_factory hook set
/// to IndexFlashFlat, so their k-means and beam-search assignments run on the
/// engine (the codebook updates stay Faiss's). Returns how many IVF
/// quantizers and residual quantizers now run on the engine.
int retrofit(faiss::Index& index, const EngineOptions& engine = {});

/// The inverse: IndexFlashFlat quantizers become faiss::IndexFlat with the
/// same vectors and metric, e.g. before handing the index to code that
/// type-checks for Faiss's classes; residual quantizers lose the hook.
/// Returns how many were replaced.
/// (Not needed for faiss::write_index, which writes IndexFlashFlat as a
/// plain flat index.)
int to_stock(faiss::Index& index);

}  // namespace flashkmeans
