// Data-parallel fits on the CPU backend: R ranks of one process (threads,
// local communicators) each holding a shard must give the fit of the whole
// data set, seed for seed, up to the summation order of the centroid sums.
#include <flashkmeans/distributed.hpp>
#include <flashkmeans/kmeans.hpp>

#include <gtest/gtest.h>

#include "test_data.hpp"
#include "test_support.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <thread>

namespace {

using namespace flashkmeans;
using flashkmeans::testing::blobs;
using flashkmeans::testing::cpu_params;
using flashkmeans::testing::random_weights;
using flashkmeans::testing::rel_diff;

/// Runs fn(rank, comm) on R threads; returns each rank's exception message
/// ("" when it returned).
std::vector<std::string> on_ranks(int R, const std::function<void(int, Communicator&)>& fn) {
    auto comms = make_local_communicators(R);
    std::vector<std::string> errs(static_cast<size_t>(R));
    std::vector<std::thread> t;
    for (int r = 0; r < R; ++r)
        t.emplace_back([&, r] {
            try {
                fn(r, *comms[size_t(r)]);
            } catch (const std::exception& e) {
                errs[size_t(r)] = e.what();
            }
        });
    for (auto& th : t) th.join();
    return errs;
}

/// Shard boundaries: R uneven contiguous ranges of n rows (some may be empty).
std::vector<int64_t> cuts(int64_t n, int R, uint64_t seed, bool allow_empty = false) {
    std::mt19937_64 g(seed);
    std::vector<int64_t> c{0, n};
    while (int(c.size()) < R + 1) {
        const int64_t v = int64_t(g() % uint64_t(n + 1));
        if (allow_empty || std::find(c.begin(), c.end(), v) == c.end()) c.push_back(v);
    }
    std::sort(c.begin(), c.end());
    return c;
}

/// Fits (B, n, d) data (B = 0: a plain (n, d) fit) on R ranks with shard
/// boundaries `cut`, checks that every rank got the same result, returns rank 0's.
KMeansResult fit_on_ranks(const std::vector<float>& x, int64_t B, int64_t n, int64_t d, int64_t k,
                          const KMeansParams& p, const std::vector<int64_t>& cut,
                          const std::vector<float>& w = {}) {
    const int R = int(cut.size()) - 1;
    std::vector<KMeansResult> res(static_cast<size_t>(R));
    const int64_t Bs = std::max<int64_t>(B, 1);
    auto errs = on_ranks(R, [&](int r, Communicator& comm) {
        const int64_t lo = cut[size_t(r)], m = cut[size_t(r) + 1] - lo;
        ArrayView xv, wv;
        if (B == 0) {
            xv = matrix_view(x.data() + lo * d, m, d);
            if (!w.empty()) wv = vector_view(w.data() + lo, m);
        } else {
            xv = batch_view(x.data() + lo * d, Bs, m, d);
            xv.strides[0] = n * d;  // a slice of each problem
            if (!w.empty()) {
                wv = matrix_view(w.data() + lo, Bs, m);
                wv.strides[0] = n;
            }
        }
        res[size_t(r)] = fit_distributed(xv, k, comm, p, wv);
    });
    for (int r = 0; r < R; ++r) EXPECT_EQ(errs[size_t(r)], "") << "rank " << r;
    for (int r = 1; r < R; ++r) {
        EXPECT_EQ(res[size_t(r)].centroids, res[0].centroids) << "rank " << r;
        EXPECT_EQ(res[size_t(r)].obj, res[0].obj) << "rank " << r;
    }
    return res[0];
}

void expect_close(const KMeansResult& a, const KMeansResult& ref, double tol = 1e-4) {
    ASSERT_EQ(a.centroids.size(), ref.centroids.size());
    double scale = 0;
    for (float v : ref.centroids) scale = std::max(scale, double(std::abs(v)));
    double worst = 0;
    for (size_t i = 0; i < a.centroids.size(); ++i)
        worst = std::max(worst, double(std::abs(a.centroids[i] - ref.centroids[i])));
    EXPECT_LE(worst, tol * std::max(1.0, scale)) << "largest centroid difference";
    ASSERT_EQ(a.iteration_stats.size(), ref.iteration_stats.size());
    for (size_t b = 0; b < a.iteration_stats.size(); ++b) {
        ASSERT_EQ(a.iteration_stats[b].size(), ref.iteration_stats[b].size());
        for (size_t it = 0; it < a.iteration_stats[b].size(); ++it) {
            EXPECT_LE(rel_diff(a.iteration_stats[b][it].obj, ref.iteration_stats[b][it].obj), 1e-5)
                    << "problem " << b << " iteration " << it;
            EXPECT_EQ(a.iteration_stats[b][it].nsplit, ref.iteration_stats[b][it].nsplit)
                    << "problem " << b << " iteration " << it;
        }
    }
}

TEST(LocalCommunicator, SumsInRankOrderAndBroadcasts) {
    const int R = 4;
    std::vector<std::vector<double>> got(R);
    std::vector<std::vector<int64_t>> got_i(R);
    std::vector<std::vector<float>> got_b(R);
    auto errs = on_ranks(R, [&](int r, Communicator& c) {
        EXPECT_EQ(c.rank(), r);
        EXPECT_EQ(c.size(), R);
        std::vector<double> v(1001);
        for (size_t i = 0; i < v.size(); ++i) v[i] = (r + 1) * 0.1 + double(i) * 1e-17 * (r % 2 ? -1 : 1);
        c.all_reduce_sum(v.data(), v.size(), ReduceType::f64, false, nullptr);
        got[size_t(r)] = v;
        std::vector<int64_t> iv{int64_t(r), int64_t(1) << 40, -r};
        c.all_reduce_sum(iv.data(), iv.size(), ReduceType::i64, false, nullptr);
        got_i[size_t(r)] = iv;
        std::vector<float> b(7, float(r));
        c.broadcast(b.data(), b.size() * sizeof(float), 2, false, nullptr);
        got_b[size_t(r)] = b;
    });
    for (const auto& e : errs) EXPECT_EQ(e, "");
    for (int r = 0; r < R; ++r) {
        EXPECT_EQ(got[size_t(r)], got[0]);  // identical bits on every rank
        EXPECT_EQ(got_i[size_t(r)], (std::vector<int64_t>{6, int64_t(4) << 40, -6}));
        EXPECT_EQ(got_b[size_t(r)], std::vector<float>(7, 2.f));
    }
    // Rank order: ((x0 + x1) + x2) + x3.
    double ref = 0.1;
    for (int r = 1; r < R; ++r) ref += (r + 1) * 0.1 + 5 * 1e-17 * (r % 2 ? -1 : 1);
    EXPECT_EQ(got[0][5], ref);
}

TEST(LocalCommunicator, AbortAndSizeMismatchWakeEveryRank) {
    auto errs = on_ranks(3, [&](int r, Communicator& c) {
        if (r == 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            c.abort();  // as a failing rank does
            return;
        }
        double v = 1;
        c.all_reduce_sum(&v, 1, ReduceType::f64, false, nullptr);
    });
    EXPECT_EQ(errs[0], "");
    EXPECT_NE(errs[1].find("another rank"), std::string::npos) << errs[1];
    EXPECT_NE(errs[2].find("another rank"), std::string::npos) << errs[2];

    errs = on_ranks(2, [&](int r, Communicator& c) {
        std::vector<float> v(size_t(3 + r), 1.f);
        c.all_reduce_sum(v.data(), v.size(), ReduceType::f32, false, nullptr);
    });
    for (const auto& e : errs) EXPECT_NE(e.find("different sizes"), std::string::npos) << e;
    EXPECT_THROW(make_local_communicators(0), Error);
}

TEST(DataParallelCpu, OneRankIsTheOneProcessFitBitForBit) {
    const int64_t n = 2000, d = 13, k = 17;
    auto x = blobs(n, d, 20, 3);
    const KMeansParams p = cpu_params(10);
    const KMeansResult ref = fit(matrix_view(x.data(), n, d), k, p);
    const KMeansResult one = fit_on_ranks(x, 0, n, d, k, p, {0, n});
    EXPECT_EQ(one.centroids, ref.centroids);
    EXPECT_EQ(one.obj, ref.obj);
}

TEST(DataParallelCpu, ManyRanksMatchOneRank) {
    const int64_t n = 3001, d = 13, k = 17;
    auto x = blobs(n, d, 20, 4);
    const KMeansParams p = cpu_params(12);
    const KMeansResult ref = fit(matrix_view(x.data(), n, d), k, p);
    for (int R : {2, 3, 5}) {
        SCOPED_TRACE("ranks " + std::to_string(R));
        expect_close(fit_on_ranks(x, 0, n, d, k, p, cuts(n, R, 100 + R)), ref);
    }
}

TEST(DataParallelCpu, SubsampledWeightedAndRedoMatchOneRank) {
    const int64_t n = 4000, d = 9, k = 12;
    auto x = blobs(n, d, 15, 5);
    auto w = random_weights(n, 6);
    KMeansParams p = cpu_params(8);
    p.max_points_per_centroid = 40;  // 480 of the 4000 rows, drawn from the global rows
    p.nredo = 2;
    const KMeansResult ref = fit(matrix_view(x.data(), n, d), k, p, vector_view(w.data(), n));
    expect_close(fit_on_ranks(x, 0, n, d, k, p, cuts(n, 3, 7), w), ref);
}

TEST(DataParallelCpu, BatchedSphericalInnerProduct) {
    const int64_t B = 3, n = 1500, d = 16, k = 10;
    auto x = blobs(B * n, d, 12, 8);
    for (int64_t i = 0; i < B * n; ++i) {  // cosine: unit rows
        double s = 0;
        for (int64_t j = 0; j < d; ++j) s += double(x[i * d + j]) * x[i * d + j];
        for (int64_t j = 0; j < d; ++j) x[i * d + j] = float(x[i * d + j] / std::sqrt(s));
    }
    KMeansParams p = cpu_params(8);
    p.metric = Metric::inner_product;
    p.spherical = true;
    const KMeansResult ref = fit_batched(batch_view(x.data(), B, n, d), k, p);
    expect_close(fit_on_ranks(x, B, n, d, k, p, cuts(n, 4, 9)), ref);
}

TEST(DataParallelCpu, EmptyClustersSplitTheSameWayAndEmptyShards) {
    // 4 of the 12 initial centroids lie far from every point: their clusters
    // are empty after the first assignment and get split. (Not duplicates:
    // identical centroids tie exactly, and BLAS breaks such ties by the row's
    // position in the call, which sharding changes; see faiss_blas_blocking.)
    const int64_t n = 900, d = 5, k = 12;
    auto x = blobs(n, d, 8, 10);
    std::vector<float> init(size_t(k * d));
    for (int64_t j = 0; j < k; ++j)
        for (int64_t t = 0; t < d; ++t)
            init[size_t(j * d + t)] = j < 8 ? x[size_t((j * 97) * d + t)] : 1000.f + float(j * d + t);
    const KMeansParams p = cpu_params(6);
    const KMeansResult ref = fit(matrix_view(x.data(), n, d), k, p, {}, matrix_view(init.data(), k, d));
    int splits = 0;
    for (const auto& s : ref.iteration_stats[0]) splits += s.nsplit;
    ASSERT_GE(splits, 4) << "the case must exercise splitting";
    // Rank 1 holds no row at all.
    const std::vector<int64_t> cut{0, 300, 300, 650, n};
    const int R = int(cut.size()) - 1;
    std::vector<KMeansResult> res(static_cast<size_t>(R));
    auto errs = on_ranks(R, [&](int r, Communicator& comm) {
        const int64_t lo = cut[size_t(r)], m = cut[size_t(r) + 1] - lo;
        res[size_t(r)] = fit_distributed(matrix_view(m ? x.data() + lo * d : nullptr, m, d), k,
                                         comm, p, {}, matrix_view(init.data(), k, d));
    });
    for (const auto& e : errs) EXPECT_EQ(e, "");
    for (int r = 1; r < R; ++r) EXPECT_EQ(res[size_t(r)].centroids, res[0].centroids);
    expect_close(res[0], ref);
}

TEST(DataParallelCpu, AsManyPointsAsClusters) {
    const int64_t n = 40, d = 6, k = 40;
    auto x = blobs(n, d, 5, 11);
    const KMeansParams p = cpu_params(4);
    const KMeansResult ref = fit(matrix_view(x.data(), n, d), k, p);
    const KMeansResult got = fit_on_ranks(x, 0, n, d, k, p, {0, 15, 31, n});
    EXPECT_EQ(got.centroids, ref.centroids);  // the rows themselves
}

TEST(DataParallelCpu, BadArgumentsOnOneRankFailEveryRank) {
    const int64_t n = 600, d = 8;
    auto x = blobs(n, d, 4, 12);
    // Rank 1 passes another d.
    auto errs = on_ranks(2, [&](int r, Communicator& c) {
        fit_distributed(matrix_view(x.data() + r * 300 * d, 300, d - r), 5, c, cpu_params(10));
    });
    for (const auto& e : errs) EXPECT_NE(e.find("same d: rank 0 has 8, rank 1 has 7"), std::string::npos) << e;
    // Rank 0's shard holds a NaN: its own error there, a pointer to it elsewhere.
    auto bad = x;
    bad[3] = std::numeric_limits<float>::quiet_NaN();
    errs = on_ranks(3, [&](int r, Communicator& c) {
        fit_distributed(matrix_view(bad.data() + r * 200 * d, 200, d), 5, c, cpu_params(10));
    });
    EXPECT_NE(errs[0].find("NaN or Inf"), std::string::npos) << errs[0];
    EXPECT_NE(errs[1].find("arguments of rank 0 were rejected"), std::string::npos) << errs[1];
    EXPECT_NE(errs[2].find("arguments of rank 0 were rejected"), std::string::npos) << errs[2];
    // k larger than all ranks' points together, though each shard alone is smaller than k anyway.
    errs = on_ranks(2, [&](int r, Communicator& c) {
        fit_distributed(matrix_view(x.data() + r * 5 * d, 5, d), 11, c, cpu_params(10));
    });
    for (const auto& e : errs)
        EXPECT_NE(e.find("number of training points of all ranks (10)"), std::string::npos) << e;
    // Different seeds would silently give different centroids per rank.
    errs = on_ranks(2, [&](int r, Communicator& c) {
        KMeansParams p = cpu_params(10);
        p.seed = 1 + r;
        fit_distributed(matrix_view(x.data() + r * 300 * d, 300, d), 5, c, p);
    });
    for (const auto& e : errs) EXPECT_NE(e.find("same seed"), std::string::npos) << e;
}

TEST(DataParallelCpu, NcclEntryPointsSayWhenUnavailable) {
    if (nccl_available()) GTEST_SKIP() << "NCCL is available here (tested on the GPU machine)";
    EXPECT_THROW(nccl_unique_id(), Error);
    EXPECT_THROW(wrap_nccl_communicator(nullptr, 0), Error);
}

}  // namespace
