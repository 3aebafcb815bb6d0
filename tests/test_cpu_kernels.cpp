// The CPU backend's kernels against float64 references on fresh random
// inputs, outputs poisoned before each call.
#include <flashkmeans/kmeans.hpp>

#include <gtest/gtest.h>

#include "backend.hpp"
#include "split_clusters.hpp"
#include "test_data.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

namespace {

using namespace flashkmeans;

std::vector<float> normal(int64_t n, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> g;
    std::vector<float> v(n);
    for (float& f : v) f = g(rng);
    return v;
}

/// float64 distances of row i to every centroid.
std::vector<double> ref_scores(const float* x, const float* c, int64_t k, int64_t d, Metric m) {
    std::vector<double> s(k);
    for (int64_t j = 0; j < k; j++) {
        double acc = 0;
        for (int64_t t = 0; t < d; t++) {
            const double a = x[t], b = c[j * d + t];
            acc += m == Metric::L2 ? (a - b) * (a - b) : a * b;
        }
        s[j] = acc;
    }
    return s;
}

void check_assign(int64_t n, int64_t k, int64_t d, int64_t topk, Metric m, uint64_t seed) {
    auto x = normal(n * d, seed), c = normal(k * d, seed + 1);
    std::vector<int64_t> labels(n * topk, -7);
    std::vector<float> dist(n * topk, std::numeric_limits<float>::quiet_NaN());
    AssignParams p;
    p.metric = m;
    p.device = DeviceChoice::cpu;
    assign(matrix_view(x.data(), n, d), matrix_view(c.data(), k, d), topk, labels.data(), dist.data(), p);
    const double sign = m == Metric::L2 ? 1 : -1;  // smaller is better after this
    for (int64_t i = 0; i < n; i++) {
        auto s = ref_scores(&x[i * d], c.data(), k, d, m);
        std::vector<int64_t> order(k);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return sign * s[a] < sign * s[b]; });
        const double scale = 1e-5 * (1 + std::abs(s[order[0]]) + d);
        for (int64_t r = 0; r < topk; r++) {
            const int64_t got = labels[i * topk + r];
            if (r >= k) {
                EXPECT_EQ(got, -1);
                continue;
            }
            ASSERT_GE(got, 0) << "row " << i << " rank " << r;
            ASSERT_LT(got, k);
            // A different label is fine only when its exact score ties the
            // reference's within rounding: check the gap, not the label.
            EXPECT_LE(std::abs(s[got] - s[order[r]]), scale) << "row " << i << " rank " << r;
            EXPECT_NEAR(dist[i * topk + r], s[got], scale) << "row " << i << " rank " << r;
        }
    }
}

TEST(CpuAssign, MatchesFloat64Reference) {
    uint64_t seed = 1;
    for (Metric m : {Metric::L2, Metric::inner_product}) {
        check_assign(1, 1, 1, 1, m, seed++);
        check_assign(1, 5, 3, 1, m, seed++);
        check_assign(50, 50, 96, 1, m, seed++);      // K = N
        check_assign(300, 1031, 3, 1, m, seed++);    // K not a multiple of the block
        check_assign(4100, 7, 33, 1, m, seed++);     // N not a multiple of the block
        check_assign(64, 40, 1000, 1, m, seed++);    // large D
        check_assign(200, 70, 17, 5, m, seed++);     // top-k
        check_assign(20, 3, 8, 5, m, seed++);        // topk > k: -1 padding
    }
}

TEST(CpuUpdate, SumsAndCountsMatchFloat64Reference) {
    const int64_t n = 5000, d = 19, k = 37, k_frozen = 3;
    auto x = normal(n * d, 11), c = normal(k * d, 12);
    auto w = flashkmeans::testing::random_weights(n, 13);
    auto backend = detail::make_cpu_backend();
    backend->load(matrix_view(x.data(), n, d), vector_view(w.data(), n), {}, {1, n, d, k},
                  Metric::L2, Precision::exact);
    backend->set_centroids(c.data());
    double obj = NAN;
    backend->assign();
    backend->objective(&obj);
    std::vector<int64_t> labels(n, -7);
    backend->get_labels(labels.data());
    std::vector<float> wsum(k, NAN);
    std::vector<int64_t> cnt(k, -7);
    backend->update(k_frozen, wsum.data(), cnt.data());
    std::vector<float> out(k * d, NAN);
    backend->get_centroids(out.data());

    std::vector<double> ref_w(k, 0), ref_s(k * d, 0);
    std::vector<int64_t> ref_c(k, 0);
    double ref_obj = 0;
    for (int64_t i = 0; i < n; i++) {
        const int64_t j = labels[i];
        auto s = ref_scores(&x[i * d], c.data(), k, d, Metric::L2);
        ASSERT_LE(s[j] - *std::min_element(s.begin(), s.end()), 1e-4) << "row " << i;
        ref_obj += s[j];
        ref_w[j] += w[i];
        ref_c[j]++;
        for (int64_t t = 0; t < d; t++) ref_s[j * d + t] += double(w[i]) * x[i * d + t];
    }
    EXPECT_LE(flashkmeans::testing::rel_diff(obj, ref_obj), 1e-5);
    for (int64_t j = 0; j < k; j++) {
        EXPECT_EQ(cnt[j], ref_c[j]);
        EXPECT_NEAR(wsum[j], ref_w[j], 1e-4 * (1 + ref_w[j]));
        for (int64_t t = 0; t < d; t++) {
            const double expect = j < k_frozen || ref_w[j] == 0 ? c[j * d + t] : ref_s[j * d + t] / ref_w[j];
            EXPECT_NEAR(out[j * d + t], expect, 1e-4) << "cluster " << j << " dim " << t;
        }
    }
}

TEST(SplitClusters, FillsEveryEmptyClusterAndConservesWeight) {
    const int64_t k = 10, d = 4, n = 100;
    std::vector<float> w = {40, 0, 30, 0, 10, 0, 10, 5, 5, 0};
    std::vector<float> c(k * d);
    for (int64_t i = 0; i < k * d; i++) c[i] = float(i + 1);
    const float total = std::accumulate(w.begin(), w.end(), 0.f);
    const int nsplit = detail::split_empty_clusters(d, k, n, 0, w.data(), c.data());
    EXPECT_EQ(nsplit, 4);
    for (float v : w) EXPECT_GT(v, 0);
    EXPECT_FLOAT_EQ(std::accumulate(w.begin(), w.end(), 0.f), total);
    // A split cluster is a perturbed copy of its donor: relative change 1/1024.
    for (int64_t j : {1, 3, 5, 9}) {
        bool found = false;
        for (int64_t donor = 0; donor < k && !found; donor++) {
            if (donor == j) continue;
            found = std::abs(c[j * d] / c[donor * d] - (1 + 1.f / 1024) / (1 - 1.f / 1024)) < 1e-5;
        }
        EXPECT_TRUE(found) << "cluster " << j;
    }
}

}  // namespace
