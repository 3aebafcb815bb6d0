// The one Lloyd driver: subsampling, seeding, assign -> update -> split empty
// clusters -> post-process, statistics and nredo, written once against
// Backend for every device, dtype and batch size. Its order of operations is
// faiss::Clustering::train's, so the same seed gives the same centroids.
#pragma once

#include "backend.hpp"

#include <flashkmeans/params.hpp>

namespace flashkmeans::detail {

struct LloydInputs {
    ArrayView x;               ///< (N, d) or (B, N, d), validated
    ArrayView weights;         ///< empty, or (N) / (B, N) f32
    ArrayView init_centroids;  ///< empty, or (k0, d) / (B, k0, d) f32 host
    int64_t k = 0;
    /// Data-parallel fits: x holds rows [row_offset, row_offset + N) of
    /// global_rows rows split over comm's ranks (same on every rank but the
    /// offset). Null for a one-rank fit.
    Communicator* comm = nullptr;
    int64_t global_rows = 0, row_offset = 0;
};

KMeansResult run_lloyd(Backend& backend, const LloydInputs& in,
                       const KMeansParams& params);

}  // namespace flashkmeans::detail
