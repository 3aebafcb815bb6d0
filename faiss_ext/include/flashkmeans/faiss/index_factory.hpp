// flashkmeans::index_factory: faiss::index_factory with the engine inside.
#pragma once

#include <cstdint>  // Faiss 1.7.3's headers use int64_t without including it

#include <faiss/Index.h>

#include <flashkmeans/faiss/engine_options.hpp>

namespace flashkmeans {

/// Builds the index faiss::index_factory(d, description, metric) builds (same
/// classes, same parameters) and retrofits it (see retrofit()): its flat IVF
/// quantizer is an IndexFlashFlat, so add and search assign on the engine,
/// and so does the coarse k-means of a plain index->train(). Train with
/// flashkmeans::train(*index, n, x) to also run the PQ / OPQ codebooks as one
/// batched problem and the whole coarse k-means on the engine.
///
/// Accepted tokens (comma separated): IDMap, IDMap2, PCA<d>, PCAW<d>,
/// PCAR<d>, PCAWR<d>, OPQ<M>[_<d>], RR<d>, L2norm, IVF<nlist>,
/// IVF<nlist>_HNSW<m>, Flat, PQ<M>[x<nbits>][np], SQ4, SQ6, SQ8, SQfp16,
/// RFlat, RQ<M>x<nbits>[_<M>x<nbits>...][_N<norm>]. Anything else, or a metric other than METRIC_L2 and
/// METRIC_INNER_PRODUCT, throws faiss::FaissException naming it.
/// The caller owns the returned index (delete it, as with Faiss's factory).
faiss::Index* index_factory(int d, const char* description,
                            faiss::MetricType metric = faiss::METRIC_L2,
                            const EngineOptions& engine = {});

}  // namespace flashkmeans
