#include "test_data.hpp"

#include <algorithm>
#include <cmath>
#include <random>

namespace flashkmeans::testing {

std::vector<float> blobs(int64_t n, int64_t d, int64_t centers, uint64_t seed,
                         float spread) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.f, 1.f);
    std::vector<float> c(centers * d), x(n * d);
    for (float& v : c) v = normal(rng);
    std::uniform_int_distribution<int64_t> pick(0, centers - 1);
    for (int64_t i = 0; i < n; i++) {
        const int64_t j = pick(rng);
        for (int64_t t = 0; t < d; t++) x[i * d + t] = c[j * d + t] + spread * normal(rng);
    }
    return x;
}

std::vector<float> random_weights(int64_t n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> u(0.5f, 2.f);
    std::vector<float> w(n);
    for (float& v : w) v = u(rng);
    return w;
}

double rel_diff(double a, double b) {
    return std::abs(a - b) / std::max(std::abs(b), 1e-30);
}

}  // namespace flashkmeans::testing
