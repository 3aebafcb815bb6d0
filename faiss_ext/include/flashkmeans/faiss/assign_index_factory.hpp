// The hook Faiss's residual quantizers expose for their k-means and beam
// search (ResidualQuantizer::assign_index_factory): an index factory whose
// indexes are IndexFlashFlat, so those assignments run on the engine.
#pragma once

#include <flashkmeans/faiss/engine_options.hpp>

#include <faiss/Clustering.h>

namespace flashkmeans {

struct FlashAssignIndexFactory : faiss::ProgressiveDimIndexFactory {
    EngineOptions engine;
    explicit FlashAssignIndexFactory(const EngineOptions& e = {}) : engine(e) {}
    /// A new L2 IndexFlashFlat of dimension dim; the caller owns it.
    faiss::Index* operator()(int dim) override;
};

/// A factory for `engine` that lives as long as the process: Faiss stores
/// the hook as a plain pointer it does not own, so the factory must outlive
/// every index that points to it.
FlashAssignIndexFactory* shared_assign_index_factory(const EngineOptions& engine);

}  // namespace flashkmeans
