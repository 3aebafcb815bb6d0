// Data and measurements shared by the plugin tests: a base / query split of
// the built-in clustered data, exact ground truth and recall.
#pragma once

#include <cstdint>
#include <faiss/Index.h>

#include <vector>

namespace flashkmeans::testing {

struct Dataset {
    int64_t d = 0, nb = 0, nq = 0;
    std::vector<float> base, queries;
    std::vector<faiss::Index::idx_t> truth;  ///< (nq,) exact L2 nearest neighbour in base
};

/// examples::clustered_vectors split into base and held-out queries, with
/// ground truth.
Dataset clustered_dataset(int64_t nb, int64_t nq, int64_t d, int64_t centers, uint64_t seed);

/// Fills ds.truth by exact L2 search (faiss::IndexFlatL2).
void compute_ground_truth(Dataset& ds);

/// Faiss's "1-recall@k": the fraction of queries whose true nearest
/// neighbour is among the first k results, in percent.
double recall_at(const Dataset& ds, const std::vector<faiss::Index::idx_t>& ids, int64_t k_searched,
                 int64_t k);

/// Adds the base to `index` and searches the queries for `k` neighbours.
std::vector<faiss::Index::idx_t> add_and_search(faiss::Index& index, const Dataset& ds, int64_t k);

}  // namespace flashkmeans::testing
