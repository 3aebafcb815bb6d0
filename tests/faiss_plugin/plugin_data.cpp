#include "plugin_data.hpp"

#include "synthetic_data.hpp"

#include <faiss/IndexFlat.h>

namespace flashkmeans::testing {

Dataset clustered_dataset(int64_t nb, int64_t nq, int64_t d, int64_t centers, uint64_t seed) {
    Dataset ds;
    ds.d = d;
    ds.nb = nb;
    ds.nq = nq;
    ds.base = examples::clustered_vectors(nb + nq, d, centers, seed);
    ds.queries.assign(ds.base.begin() + nb * d, ds.base.end());
    ds.base.resize(nb * d);
    compute_ground_truth(ds);
    return ds;
}

void compute_ground_truth(Dataset& ds) {
    faiss::IndexFlatL2 exact(ds.d);
    exact.add(ds.nb, ds.base.data());
    std::vector<float> dist(ds.nq);
    ds.truth.resize(ds.nq);
    exact.search(ds.nq, ds.queries.data(), 1, dist.data(), ds.truth.data());
}

double recall_at(const Dataset& ds, const std::vector<faiss::Index::idx_t>& ids, int64_t k_searched,
                 int64_t k) {
    int64_t hits = 0;
    for (int64_t q = 0; q < ds.nq; q++)
        for (int64_t r = 0; r < k; r++)
            if (ids[q * k_searched + r] == ds.truth[q]) {
                hits++;
                break;
            }
    return 100.0 * double(hits) / double(ds.nq);
}

std::vector<faiss::Index::idx_t> add_and_search(faiss::Index& index, const Dataset& ds, int64_t k) {
    index.add(ds.nb, ds.base.data());
    std::vector<float> dist(ds.nq * k);
    std::vector<faiss::Index::idx_t> ids(ds.nq * k);
    index.search(ds.nq, ds.queries.data(), k, dist.data(), ids.data());
    return ids;
}

}  // namespace flashkmeans::testing
