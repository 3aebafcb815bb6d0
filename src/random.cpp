#include "random.hpp"

#include <utility>

namespace flashkmeans::detail {

void faiss_compatible_rand_perm(int* perm, size_t n, int64_t seed) {
    for (size_t i = 0; i < n; i++) perm[i] = static_cast<int>(i);
    FaissCompatibleRng rng(seed);
    // Fisher-Yates from the front; the last element is never drawn.
    for (size_t i = 0; i + 1 < n; i++) {
        const size_t j = i + rng.rand_int(static_cast<int>(n - i));
        std::swap(perm[i], perm[j]);
    }
}

}  // namespace flashkmeans::detail
