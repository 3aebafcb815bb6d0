// Built-in data for the demo and the benchmarks: Gaussian clusters of
// different sizes and spreads, generated from a fixed seed (no download).
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace flashkmeans::examples {

inline std::vector<float> clustered_vectors(int64_t n, int64_t d, int64_t centers,
                                            uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal;
    std::uniform_real_distribution<float> uni(0.5f, 1.5f);
    std::vector<float> c(centers * d), spread(centers), x(n * d);
    for (float& v : c) v = 0.5f * normal(rng);
    for (float& s : spread) s = uni(rng);
    // Zipf-like cluster sizes: real data is never balanced.
    std::vector<double> p(centers);
    for (int64_t j = 0; j < centers; j++) p[j] = 1.0 / (1 + j % 97);
    std::discrete_distribution<int64_t> pick(p.begin(), p.end());
    for (int64_t i = 0; i < n; i++) {
        const int64_t j = pick(rng);
        for (int64_t t = 0; t < d; t++)
            x[i * d + t] = c[j * d + t] + spread[j] * normal(rng);
    }
    return x;
}

}  // namespace flashkmeans::examples
