// Re-seeding of empty clusters, with Faiss's rule: an empty cluster takes a
// copy of a cluster drawn with probability (w - 1) / (n - k), both copies are
// pushed apart by a relative 1/1024, and the weight is shared evenly.
#pragma once

#include <cstdint>

namespace flashkmeans::detail {

/// centroids (k, d) and w (k) of one problem, on the host; clusters below
/// k_frozen are neither split nor chosen. Returns the number of splits.
int split_empty_clusters(int64_t d, int64_t k, int64_t n, int64_t k_frozen,
                         float* w, float* centroids);

}  // namespace flashkmeans::detail
