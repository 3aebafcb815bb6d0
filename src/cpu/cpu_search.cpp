#include "backend.hpp"

#include "cpu/block_knn.hpp"
#include "cpu/dense_block.hpp"

namespace flashkmeans::detail {

void cpu_search(const ArrayView& x, const ArrayView& c, int64_t topk,
                Metric metric, int64_t* labels, float* distances) {
    std::vector<float> xs, cs, dist_storage;
    const float* xp = packed_f32_rows(x, 0, {}, xs);
    const float* cp = packed_f32_rows(c, 0, {}, cs);
    const int64_t n = x.shape[0], k = c.shape[0], d = x.shape[1];
    std::vector<float> xn, cn;
    if (metric == Metric::L2) {
        xn.resize(n);
        cn.resize(k);
        row_norms(xp, n, d, xn.data());
        row_norms(cp, k, d, cn.data());
    }
    if (!distances) {
        dist_storage.resize(n * topk);
        distances = dist_storage.data();
    }
    block_knn(xp, xn.data(), n, cp, cn.data(), k, d, metric, topk, labels, distances);
}

}  // namespace flashkmeans::detail
