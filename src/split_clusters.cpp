#include "split_clusters.hpp"

#include "random.hpp"

#include <cstring>

namespace flashkmeans::detail {

int split_empty_clusters(int64_t d, int64_t k_total, int64_t n,
                         int64_t k_frozen, float* w, float* centroids) {
    // Slightly above float16 epsilon, so that the two halves stay distinct
    // even when later rounded to half precision.
    constexpr float kEps = 1.0f / 1024.0f;
    const int64_t k = k_total - k_frozen;
    float* c = centroids + k_frozen * d;
    w += k_frozen;

    // Faiss seeds this generator with a constant, not with the user's seed.
    FaissCompatibleRng rng(1234);
    int nsplit = 0;
    for (int64_t empty = 0; empty < k; empty++) {
        if (w[empty] != 0) continue;
        int64_t donor = 0;
        // Walk the clusters round-robin until one is drawn; large clusters
        // are the likely donors. The float arithmetic matches Faiss's.
        for (;; donor = (donor + 1) % k) {
            const float p = (w[donor] - 1.0) / float(n - k);
            const float r = rng.rand_float();
            if (r < p) break;
        }
        std::memcpy(c + empty * d, c + donor * d, sizeof(float) * d);
        for (int64_t j = 0; j < d; j++) {
            const float up = 1 + kEps, down = 1 - kEps;
            c[empty * d + j] *= (j % 2 == 0) ? up : down;
            c[donor * d + j] *= (j % 2 == 0) ? down : up;
        }
        w[empty] = w[donor] / 2;
        w[donor] -= w[empty];
        nsplit++;
    }
    return nsplit;
}

}  // namespace flashkmeans::detail
