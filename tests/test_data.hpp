// Deterministic test data: Gaussian blobs, so that k-means has structure to
// find, drawn from a fixed seed (never zeros).
#pragma once

#include <cstdint>
#include <vector>

namespace flashkmeans::testing {

/// n points in d dimensions around `centers` random centres (row-major).
std::vector<float> blobs(int64_t n, int64_t d, int64_t centers, uint64_t seed,
                         float spread = 0.3f);
/// Uniform weights in [0.5, 2).
std::vector<float> random_weights(int64_t n, uint64_t seed);
/// Relative difference |a - b| / max(|b|, tiny).
double rel_diff(double a, double b);

}  // namespace flashkmeans::testing
