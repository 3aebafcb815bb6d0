// The CUDA backend through the driver's interface (backend.hpp): update sums
// and counts against a float64 reference, empty and frozen clusters, batched
// problems equal to one-by-one, device inputs in place, subsampling, post-
// processing, top-k search, and errors. Host outputs are poisoned before each
// call.
#include "gpu_test_util.hpp"

#include <flashkmeans/error.hpp>

#include <cstdlib>
#include <numeric>

#include "kernels/scratch.cuh"

using namespace fktest;
namespace fkd = flashkmeans::detail;
namespace fkk = flashkmeans::kernels;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<float> pick_centroids(const std::vector<float>& x, int64_t B, int64_t n, int64_t k,
                                  int64_t d, uint64_t seed) {
    std::mt19937_64 g(seed);
    std::vector<float> c(size_t(B * k * d));
    for (int64_t b = 0; b < B; ++b)
        for (int64_t j = 0; j < k; ++j) {
            const int64_t s = int64_t(g() % uint64_t(n));
            std::copy_n(&x[size_t((b * n + s) * d)], d, &c[size_t((b * k + j) * d)]);
        }
    return c;
}

struct Step {
    std::vector<double> obj;
    std::vector<int64_t> labels;
    std::vector<float> w, cent;
    std::vector<int64_t> cnt;
};

Step one_step(fkd::Backend& be, int64_t B, int64_t n, int64_t k, int64_t d,
              const std::vector<float>& c0, int64_t k_frozen) {
    Step s;
    be.set_centroids(c0.data());
    s.obj.assign(size_t(B), double(kNaN));
    be.assign();
    s.labels.assign(size_t(B * n), -7);
    be.get_labels(s.labels.data());
    s.w.assign(size_t(B * k), kNaN);
    s.cnt.assign(size_t(B * k), -7);
    be.update(k_frozen, s.w.data(), s.cnt.data());
    be.objective(s.obj.data());  // the driver's order: after the update
    s.cent.assign(size_t(B * k * d), kNaN);
    be.get_centroids(s.cent.data());
    return s;
}

void check_update(const Step& s, const std::vector<float>& x, const std::vector<float>* wts,
                  const std::vector<float>& c0, int64_t B, int64_t n, int64_t k, int64_t d,
                  int64_t k_frozen) {
    for (int64_t b = 0; b < B; ++b) {
        std::vector<double> sum(size_t(k * d), 0.0), w(size_t(k), 0.0);
        std::vector<int64_t> cnt(size_t(k), 0);
        for (int64_t i = 0; i < n; ++i) {
            const int64_t l = s.labels[size_t(b * n + i)];
            ASSERT_GE(l, 0);
            ASSERT_LT(l, k);
            const double wi = wts ? (*wts)[size_t(b * n + i)] : 1.0;
            w[size_t(l)] += wi;
            ++cnt[size_t(l)];
            for (int64_t t = 0; t < d; ++t) sum[size_t(l * d + t)] += wi * x[size_t((b * n + i) * d + t)];
        }
        for (int64_t j = 0; j < k; ++j) {
            const size_t bj = size_t(b * k + j);
            ASSERT_EQ(s.cnt[bj], cnt[size_t(j)]) << "count of cluster " << j << " problem " << b;
            ASSERT_NEAR(s.w[bj], w[size_t(j)], 1e-5 * std::max(1.0, w[size_t(j)])) << "weight of " << j;
            for (int64_t t = 0; t < d; ++t) {
                const float got = s.cent[bj * size_t(d) + size_t(t)];
                const float before = c0[bj * size_t(d) + size_t(t)];
                if (j < k_frozen || w[size_t(j)] == 0) {
                    ASSERT_EQ(std::memcmp(&got, &before, 4), 0)
                        << "frozen/empty centroid " << j << " changed at " << t;
                } else {
                    const double want = sum[size_t(j * d + t)] / w[size_t(j)];
                    ASSERT_NEAR(got, want, 2e-5 * (1.0 + std::abs(want)))
                        << "centroid " << j << " coordinate " << t << " problem " << b;
                }
            }
        }
    }
}

TEST(CudaBackend, UpdateWeightedFrozenEmpty) {
    FK_REQUIRE_GPU();
    const int64_t B = 2, n = 3000, k = 50, d = 33, k_frozen = 3;
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    const auto x = randn(size_t(B * n * d), seed);
    std::vector<float> wts = randn(size_t(B * n), seed + 1);
    for (auto& v : wts) v = 0.25f + std::abs(v);
    auto c0 = pick_centroids(x, B, n, k, d, seed + 2);
    for (int64_t b = 0; b < B; ++b)  // clusters 10..12 far away: empty
        for (int64_t j = 10; j < 13; ++j)
            for (int64_t t = 0; t < d; ++t) c0[size_t((b * k + j) * d + t)] = 1e4f + float(j);
    auto be = fkd::make_cuda_backend(0, 0);
    be->load(view3(x.data(), B, n, d, fk::DType::f32), view2(wts.data(), B, n, fk::DType::f32), {},
             {B, n, d, k}, fk::Metric::L2, fk::Precision::exact);
    const Step s = one_step(*be, B, n, k, d, c0, k_frozen);
    for (int64_t b = 0; b < B; ++b)
        for (int64_t j = 10; j < 13; ++j) EXPECT_EQ(s.cnt[size_t(b * k + j)], 0);
    check_update(s, x, &wts, c0, B, n, k, d, k_frozen);
    // Objective: unweighted sum of the distances of the labels.
    for (int64_t b = 0; b < B; ++b) {
        double ref = 0;
        for (int64_t i = 0; i < n; ++i)
            ref += score(&x[size_t((b * n + i) * d)], &c0[size_t((b * k + s.labels[size_t(b * n + i)]) * d)], d,
                         fk::Metric::L2);
        EXPECT_NEAR(s.obj[size_t(b)], ref, 1e-5 * ref);
    }
}

/// One update of unweighted f16 rows (B, n, d) against the float64
/// reference; far_last: the last centroid far from every point (empty).
void check_half_update(int64_t B, int64_t n, int64_t k, int64_t d, int64_t k_frozen, bool far_last) {
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed) + " B " + std::to_string(B) + " n " + std::to_string(n) +
                 " k " + std::to_string(k) + " d " + std::to_string(d));
    const auto x = round_to(randn(size_t(B * n * d), seed), fk::DType::f16);
    const auto x16 = to_16bit(x, fk::DType::f16);
    auto c0 = pick_centroids(x, B, n, k, d, seed + 1);
    if (far_last)
        for (int64_t t = 0; t < d; ++t) c0[size_t((k - 1) * d + t)] = 1e4f;
    auto be = fkd::make_cuda_backend(0, 0);
    be->load(view3(x16.data(), B, n, d, fk::DType::f16), {}, {}, {B, n, d, k}, fk::Metric::L2,
             fk::Precision::automatic);
    const Step s = one_step(*be, B, n, k, d, c0, k_frozen);
    check_update(s, x, nullptr, c0, B, n, k, d, k_frozen);
}

// f16 rows: many clusters, and seed-k100's shape (k = 100, d = 128) batched
// with frozen clusters and an empty one.
TEST(CudaBackend, UpdateHalfInputManyClusters) {
    FK_REQUIRE_GPU();
    check_half_update(1, 5000, 300, 96, 0, false);
    check_half_update(2, 4000, 100, 128, 2, true);
}

// Small k x d (sums in shared memory, no sort): PQ-like sub-spaces (k = 256,
// d = 4, 16-byte vectors) batched and weighted, and an f16 d that is not a
// multiple of the vector width (element by element).
TEST(CudaBackend, UpdateSmallCodebooks) {
    FK_REQUIRE_GPU();
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    {
        const int64_t B = 4, n = 3001, k = 256, d = 4;
        const auto x = randn(size_t(B * n * d), seed);
        std::vector<float> wts = randn(size_t(B * n), seed + 1);
        for (auto& v : wts) v = 0.25f + std::abs(v);
        const auto c0 = pick_centroids(x, B, n, k, d, seed + 2);
        auto be = fkd::make_cuda_backend(0, 0);
        be->load(view3(x.data(), B, n, d, fk::DType::f32), view2(wts.data(), B, n, fk::DType::f32),
                 {}, {B, n, d, k}, fk::Metric::L2, fk::Precision::exact);
        const Step s = one_step(*be, B, n, k, d, c0, 0);
        check_update(s, x, &wts, c0, B, n, k, d, 0);
    }
    {
        const int64_t B = 1, n = 2500, k = 20, d = 6;
        const auto x = round_to(randn(size_t(n * d), seed + 3), fk::DType::f16);
        const auto x16 = to_16bit(x, fk::DType::f16);
        const auto c0 = pick_centroids(x, B, n, k, d, seed + 4);
        auto be = fkd::make_cuda_backend(0, 0);
        be->load(view2(x16.data(), n, d, fk::DType::f16), {}, {}, {B, n, d, k}, fk::Metric::L2,
                 fk::Precision::automatic);
        const Step s = one_step(*be, B, n, k, d, c0, 1);
        check_update(s, x, nullptr, c0, B, n, k, d, 1);
    }
}

// The sort-inverse sums read rows 16 or 8 bytes a lane where the row length
// allows (a warp split into groups of 32 / 16 / 8 ... lanes by row length;
// rows longer than 32 loads take several passes, the last one partial) and
// element by element otherwise (odd d). Batched and weighted, f32, f16, bf16.
TEST(CudaBackend, UpdateVectorAndStridedRows) {
    FK_REQUIRE_GPU();
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    struct Shape { int64_t B, n, k, d; fk::DType t; };
    for (const Shape& sh : {Shape{3, 1700, 37, 130, fk::DType::f32}, Shape{2, 1500, 41, 260, fk::DType::f32},
                            Shape{2, 1300, 29, 200, fk::DType::bf16}, Shape{1, 999, 64, 36, fk::DType::f16},
                            Shape{2, 1100, 33, 37, fk::DType::f16}, Shape{1, 1200, 50, 1032, fk::DType::f16}}) {
        SCOPED_TRACE("d " + std::to_string(sh.d));
        const int64_t B = sh.B, n = sh.n, k = sh.k, d = sh.d;
        auto x = randn(size_t(B * n * d), seed + uint64_t(d));
        std::vector<uint16_t> x16;
        if (sh.t != fk::DType::f32) {
            x = round_to(x, sh.t);
            x16 = to_16bit(x, sh.t);
        }
        std::vector<float> wts = randn(size_t(B * n), seed + 1);
        for (auto& v : wts) v = 0.5f + std::abs(v);
        const auto c0 = pick_centroids(x, B, n, k, d, seed + 2);
        auto be = fkd::make_cuda_backend(0, 0);
        const void* data = sh.t == fk::DType::f32 ? static_cast<const void*>(x.data()) : x16.data();
        be->load(view3(data, B, n, d, sh.t), view2(wts.data(), B, n, fk::DType::f32), {}, {B, n, d, k},
                 fk::Metric::L2, fk::Precision::exact);
        const Step s = one_step(*be, B, n, k, d, c0, 0);
        check_update(s, x, &wts, c0, B, n, k, d, 0);
    }
}

// From 4M points the update sums pieces of 256 points (128 below): 2 x 2.1M
// points, a k x d too large for the shared-memory path.
TEST(CudaBackend, UpdateLongSegments) {
    FK_REQUIRE_GPU();
    check_half_update(2, 2100000, 1500, 20, 0, false);
}

// Per-call scratch (the packed centroid tiles: ~17 MB at k = 65536, d = 128
// f16) is pooled across iterations and handed back when the backend goes.
// Measured on the library's own pool, not with cudaMemGetInfo: ctest runs
// other GPU tests beside this one, and their memory moved the device's free
// figure by ~20 MB (a failure on the H200 that was not this library's).
TEST(CudaBackend, PooledScratchIsReturnedWithTheBackend) {
    FK_REQUIRE_GPU();
    if (const char* e = std::getenv("FK_SCRATCH_POOL"); e && *e == '0')
        GTEST_SKIP() << "FK_SCRATCH_POOL=0: scratch comes from the default pool";
    const int64_t n = 65536, d = 128;
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    const auto x = round_to(randn(size_t(n * d), seed), fk::DType::f16);
    const auto x16 = to_16bit(x, fk::DType::f16);
    auto fit_once = [&](int64_t k) {
        const auto c0 = pick_centroids(x, 1, n, k, d, seed + 1);
        auto be = fkd::make_cuda_backend(0, 0);
        be->load(view2(x16.data(), n, d, fk::DType::f16), {}, {}, {1, n, d, k}, fk::Metric::L2,
                 fk::Precision::automatic);
        const Step s = one_step(*be, 1, n, k, d, c0, 0);
        EXPECT_EQ(std::accumulate(s.cnt.begin(), s.cnt.end(), int64_t(0)), n);
        EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        return fkk::scratch_reserved_bytes();  // the backend still alive
    };
    const size_t small = fit_once(1000);
    EXPECT_LE(fkk::scratch_reserved_bytes(), size_t(4) << 20) << "after the small fit";
    const size_t held = fit_once(n);
    EXPECT_GE(held, size_t(n * d * 2)) << "the tiles did not come from the pool (small fit: "
                                       << small << " bytes)";
    FK_CU(cudaDeviceSynchronize());
    EXPECT_LE(fkk::scratch_reserved_bytes(), size_t(4) << 20)
        << "pooled scratch still held after the backend is gone (" << held << " while it lived)";
}

// assign() and update() replay CUDA graphs from their second use
// (cuda_backend.cu). Every output of every iteration equals eager launches
// bit for bit, through the paths that change what a graph holds: centroids
// set from the host mid-fit (as after a split), k_frozen changing (a new
// update graph), the objective read before the update, and an assignment
// repeated without new centroids. FK_CUDA_GRAPHS=require turns a failed
// capture into an error, so this also checks that capture works.
TEST(CudaBackend, GraphReplayEqualsEagerLaunches) {
    FK_REQUIRE_GPU();
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    struct Cfg {
        const char* what;
        int64_t B, n, k, d;
        fk::DType t;
        fk::Precision p;
        fk::Metric m;
        bool weighted, deterministic;
    };
    const Cfg cfgs[] = {
        {"f16, K <= 128", 2, 3000, 100, 128, fk::DType::f16, fk::Precision::automatic, fk::Metric::L2, false, false},
        {"f32 exact, weighted", 1, 2000, 300, 40, fk::DType::f32, fk::Precision::exact, fk::Metric::L2, true, false},
        {"tf32, inner product", 1, 2500, 200, 128, fk::DType::f32, fk::Precision::tf32, fk::Metric::inner_product, false, false},
        {"small codebooks", 4, 1500, 256, 4, fk::DType::f32, fk::Precision::exact, fk::Metric::L2, false, true},
    };
    for (const Cfg& cf : cfgs) {
        SCOPED_TRACE(cf.what);
        const int64_t B = cf.B, n = cf.n, k = cf.k, d = cf.d;
        const auto x = round_to(randn(size_t(B * n * d), seed), cf.t);
        const auto x16 = cf.t == fk::DType::f32 ? std::vector<uint16_t>() : to_16bit(x, cf.t);
        const void* xp = cf.t == fk::DType::f32 ? static_cast<const void*>(x.data()) : x16.data();
        std::vector<float> wts = randn(size_t(B * n), seed + 1);
        for (auto& v : wts) v = 0.25f + std::abs(v);
        const auto c0 = pick_centroids(x, B, n, k, d, seed + 2);
        auto run = [&](const char* mode) {
            ScopedEnv env("FK_CUDA_GRAPHS", mode);
            auto be = fkd::make_cuda_backend(0, 0, cf.deterministic);
            be->load(view3(xp, B, n, d, cf.t),
                     cf.weighted ? view2(wts.data(), B, n, fk::DType::f32) : fk::ArrayView{}, {},
                     {B, n, d, k}, cf.m, cf.p);
            be->set_centroids(c0.data());
            std::vector<Step> out;
            for (int it = 0; it < 7; ++it) {
                Step s;
                s.obj.assign(size_t(B), double(kNaN));
                s.w.assign(size_t(B * k), kNaN);
                s.cnt.assign(size_t(B * k), -7);
                s.cent.assign(size_t(B * k * d), kNaN);
                s.labels.assign(size_t(B * n), -7);
                be->assign();
                if (it == 5) be->objective(s.obj.data());  // before the update
                if (it == 6) be->assign();                 // again, same centroids
                be->update(it < 4 ? 0 : 3, s.w.data(), s.cnt.data());
                be->objective(s.obj.data());
                be->get_labels(s.labels.data());
                be->get_centroids(s.cent.data());
                if (it == 2) {  // as a split would: one centroid moved on the host
                    std::vector<float> c = s.cent;
                    for (int64_t t = 0; t < d; ++t) c[size_t(t)] += 0.5f;
                    be->set_centroids(c.data());
                }
                out.push_back(std::move(s));
            }
            return out;
        };
        const std::vector<Step> eager = run("0"), graph = run("require");
        auto same = [](const auto& a, const auto& b) {
            return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(a[0])) == 0;
        };
        for (size_t it = 0; it < eager.size(); ++it) {
            SCOPED_TRACE("iteration " + std::to_string(it));
            EXPECT_TRUE(same(eager[it].obj, graph[it].obj)) << eager[it].obj[0] << " vs " << graph[it].obj[0];
            EXPECT_TRUE(same(eager[it].labels, graph[it].labels));
            EXPECT_TRUE(same(eager[it].w, graph[it].w));
            EXPECT_TRUE(same(eager[it].cnt, graph[it].cnt));
            EXPECT_TRUE(same(eager[it].cent, graph[it].cent));
            EXPECT_TRUE(std::isfinite(graph[it].obj[0]));
        }
    }
}

TEST(CudaBackend, BatchedEqualsLooping) {
    FK_REQUIRE_GPU();
    const int64_t B = 3, n = 900, k = 40, d = 96;
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    const auto x = randn(size_t(B * n * d), seed);
    const auto c0 = pick_centroids(x, B, n, k, d, seed + 1);
    for (fk::Precision p : {fk::Precision::exact, fk::Precision::tf32}) {
        auto be = fkd::make_cuda_backend(0, 0);
        be->load(view3(x.data(), B, n, d, fk::DType::f32), {}, {}, {B, n, d, k}, fk::Metric::L2, p);
        const Step all = one_step(*be, B, n, k, d, c0, 0);
        for (int64_t b = 0; b < B; ++b) {
            auto one = fkd::make_cuda_backend(0, 0);
            one->load(view2(&x[size_t(b * n * d)], n, d, fk::DType::f32), {}, {}, {1, n, d, k},
                      fk::Metric::L2, p);
            const std::vector<float> cb(c0.begin() + b * k * d, c0.begin() + (b + 1) * k * d);
            const Step s = one_step(*one, 1, n, k, d, cb, 0);
            EXPECT_EQ(s.obj[0], all.obj[size_t(b)]) << "problem " << b;
            for (int64_t i = 0; i < n; ++i)
                ASSERT_EQ(s.labels[size_t(i)], all.labels[size_t(b * n + i)]) << "problem " << b << " point " << i;
            for (int64_t j = 0; j < k; ++j) {
                ASSERT_EQ(s.cnt[size_t(j)], all.cnt[size_t(b * k + j)]);
                for (int64_t t = 0; t < d; ++t)
                    ASSERT_NEAR(s.cent[size_t(j * d + t)], all.cent[size_t((b * k + j) * d + t)],
                                1e-5 * (1 + std::abs(s.cent[size_t(j * d + t)])));
            }
        }
    }
}

TEST(CudaBackend, DeviceInputsInPlaceStridedAndSubsampled) {
    FK_REQUIRE_GPU();
    const int64_t N = 1500, d = 64, k = 45;
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    const auto x = randn(size_t(N * d), seed);
    const auto c0 = pick_centroids(x, 1, N, k, d, seed + 1);
    // Reference run: host input, all rows.
    auto ref = fkd::make_cuda_backend(0, 0);
    ref->load(view2(x.data(), N, d, fk::DType::f32), {}, {}, {1, N, d, k}, fk::Metric::L2,
              fk::Precision::exact);
    const Step r = one_step(*ref, 1, N, k, d, c0, 0);

    for (int64_t ld : {int64_t(64), int64_t(68), int64_t(70)}) {
        // Padding elements hold NaN: they must never be read.
        std::vector<float> padded(size_t(N * ld), kNaN);
        for (int64_t i = 0; i < N; ++i) std::copy_n(&x[size_t(i * d)], d, &padded[size_t(i * ld)]);
        float* dx = nullptr;
        FK_CU(cudaMalloc(&dx, padded.size() * 4));
        FK_CU(cudaMemcpy(dx, padded.data(), padded.size() * 4, cudaMemcpyHostToDevice));
        auto be = fkd::make_cuda_backend(0, 0);
        be->load(view2(dx, N, d, fk::DType::f32, fk::MemoryKind::cuda, ld), {}, {}, {1, N, d, k},
                 fk::Metric::L2, fk::Precision::exact);
        const Step s = one_step(*be, 1, N, k, d, c0, 0);
        EXPECT_EQ(s.obj[0], r.obj[0]) << "ld " << ld;
        EXPECT_EQ(s.labels, r.labels) << "ld " << ld;
        EXPECT_EQ(s.cnt, r.cnt) << "ld " << ld;

        // Subsampling: rows picked while copying, same result as pre-gathered host rows.
        std::vector<int> rows(700);
        std::mt19937_64 g(seed + 3);
        for (auto& v : rows) v = int(g() % uint64_t(N));
        std::vector<float> xs(rows.size() * size_t(d));
        for (size_t i = 0; i < rows.size(); ++i) std::copy_n(&x[size_t(rows[i]) * size_t(d)], d, &xs[i * size_t(d)]);
        const int64_t n = int64_t(rows.size());
        auto sub = fkd::make_cuda_backend(0, 0);
        sub->load(view2(dx, N, d, fk::DType::f32, fk::MemoryKind::cuda, ld), {}, rows, {1, n, d, k},
                  fk::Metric::L2, fk::Precision::exact);
        auto subh = fkd::make_cuda_backend(0, 0);
        subh->load(view2(xs.data(), n, d, fk::DType::f32), {}, {}, {1, n, d, k}, fk::Metric::L2,
                   fk::Precision::exact);
        const Step a = one_step(*sub, 1, n, k, d, c0, 0), b = one_step(*subh, 1, n, k, d, c0, 0);
        EXPECT_EQ(a.labels, b.labels);
        EXPECT_EQ(a.obj, b.obj);
        // gather_rows returns rows of the subsample as float32.
        std::vector<int> ids = {0, 5, int(n) - 1};
        std::vector<float> out(ids.size() * size_t(d), kNaN);
        sub->gather_rows(0, ids.data(), int64_t(ids.size()), out.data());
        for (size_t i = 0; i < ids.size(); ++i)
            for (int64_t t = 0; t < d; ++t)
                ASSERT_EQ(out[i * size_t(d) + size_t(t)], xs[size_t(ids[i]) * size_t(d) + size_t(t)]);
        FK_CU(cudaFree(dx));
    }
}

TEST(CudaBackend, PostProcessSphericalAndInt) {
    FK_REQUIRE_GPU();
    const int64_t n = 200, d = 7, k = 9;
    const uint64_t seed = fresh_seed();
    const auto x = randn(size_t(n * d), seed, 5.f);
    auto c0 = pick_centroids(x, 1, n, k, d, seed + 1);
    std::fill_n(&c0[0], d, 0.f);  // a zero centroid stays zero
    auto be = fkd::make_cuda_backend(0, 0);
    be->load(view2(x.data(), n, d, fk::DType::f32), {}, {}, {1, n, d, k}, fk::Metric::L2,
             fk::Precision::exact);
    be->set_centroids(c0.data());
    be->post_process(true, false);
    std::vector<float> c(c0.size(), kNaN);
    be->get_centroids(c.data());
    for (int64_t j = 0; j < k; ++j) {
        const double nr = norm2(&c0[size_t(j * d)], d);
        for (int64_t t = 0; t < d; ++t) {
            const double want = nr > 0 ? c0[size_t(j * d + t)] / std::sqrt(nr) : 0.0;
            ASSERT_NEAR(c[size_t(j * d + t)], want, 1e-6);
        }
    }
    be->set_centroids(c0.data());
    be->post_process(false, true);
    be->get_centroids(c.data());
    for (size_t i = 0; i < c.size(); ++i) ASSERT_EQ(c[i], std::round(c0[i]));
}

void check_topk(const std::vector<float>& x, const std::vector<float>& c, int64_t n, int64_t k,
                int64_t d, int64_t topk, fk::Metric m, const std::vector<int64_t>& lab,
                const std::vector<float>& dist) {
    const double sign = m == fk::Metric::L2 ? 1.0 : -1.0;
    for (int64_t i = 0; i < n; ++i) {
        std::vector<double> all(static_cast<size_t>(k));
        for (int64_t j = 0; j < k; ++j) all[size_t(j)] = sign * score(&x[size_t(i * d)], &c[size_t(j * d)], d, m);
        std::vector<double> sorted = all;
        std::sort(sorted.begin(), sorted.end());
        const double tol = 1e-4 * (1 + std::abs(sorted[0]));
        for (int64_t r = 0; r < topk; ++r) {
            const int64_t l = lab[size_t(i * topk + r)];
            const float dv = dist[size_t(i * topk + r)];
            if (r >= k) {
                ASSERT_EQ(l, -1) << "point " << i << " rank " << r;
                ASSERT_EQ(dv, m == fk::Metric::L2 ? INFINITY : -INFINITY);
                continue;
            }
            ASSERT_GE(l, 0) << "point " << i << " rank " << r;
            ASSERT_LT(l, k);
            ASSERT_NEAR(sign * dv, all[size_t(l)], tol) << "point " << i << " rank " << r;
            ASSERT_NEAR(all[size_t(l)], sorted[size_t(r)], tol) << "point " << i << " rank " << r;
            if (r > 0) {
                ASSERT_LE(sign * dist[size_t(i * topk + r - 1)], sign * dv) << "not sorted at " << i;
                ASSERT_NE(lab[size_t(i * topk + r - 1)], l) << "duplicate label at " << i;
            }
        }
    }
}

TEST(CudaSearch, TopkMatchesReference) {
    FK_REQUIRE_GPU();
    const int64_t n = 517, k = 300, d = 40;
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    const auto x = randn(size_t(n * d), seed);
    const auto c = randn(size_t(k * d), seed + 1);
    for (fk::Metric m : {fk::Metric::L2, fk::Metric::inner_product})
        for (int64_t topk : {int64_t(1), int64_t(7), int64_t(256)}) {
            std::vector<int64_t> lab(size_t(n * topk), -7);
            std::vector<float> dist(size_t(n * topk), kNaN);
            fkd::cuda_search(view2(x.data(), n, d, fk::DType::f32), view2(c.data(), k, d, fk::DType::f32),
                             topk, m, fk::Precision::exact, 0, lab.data(), dist.data());
            check_topk(x, c, n, k, d, topk, m, lab, dist);
        }
    // Device arrays, outputs on the device; fewer centroids than topk.
    const int64_t ks = 10, topk = 16;
    float *dx = nullptr, *dd = nullptr;
    int64_t* dl = nullptr;
    FK_CU(cudaMalloc(&dx, x.size() * 4));
    FK_CU(cudaMalloc(&dd, size_t(n * topk) * 4));
    FK_CU(cudaMalloc(&dl, size_t(n * topk) * 8));
    FK_CU(cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice));
    FK_CU(cudaMemset(dd, 0xFF, size_t(n * topk) * 4));
    FK_CU(cudaMemset(dl, 0xF9, size_t(n * topk) * 8));
    fkd::cuda_search(view2(dx, n, d, fk::DType::f32, fk::MemoryKind::cuda), view2(c.data(), ks, d, fk::DType::f32),
                     topk, fk::Metric::L2, fk::Precision::exact, 0, dl, dd);
    std::vector<int64_t> lab(size_t(n * topk));
    std::vector<float> dist(size_t(n * topk));
    FK_CU(cudaMemcpy(lab.data(), dl, lab.size() * 8, cudaMemcpyDeviceToHost));
    FK_CU(cudaMemcpy(dist.data(), dd, dist.size() * 4, cudaMemcpyDeviceToHost));
    check_topk(x, c, n, ks, d, topk, fk::Metric::L2, lab, dist);
    FK_CU(cudaFree(dx));
    FK_CU(cudaFree(dd));
    FK_CU(cudaFree(dl));
}

TEST(CudaBackend, ErrorsAreExceptions) {
    FK_REQUIRE_GPU();
    const int64_t n = 100, d = 8, k = 4;
    const auto x = randn(size_t(n * d), 1);
    auto be = fkd::make_cuda_backend(0, 0);
    fk::ArrayView bad = view2(x.data(), n, d, fk::DType::f32);
    bad.strides[1] = 2;
    EXPECT_THROW(be->load(bad, {}, {}, {1, n, d, k}, fk::Metric::L2, fk::Precision::exact), fk::Error);
    EXPECT_THROW(be->load(view2(x.data(), n, d, fk::DType::f32), {}, {}, {1, n, 9, k}, fk::Metric::L2,
                          fk::Precision::exact),
                 fk::Error);
    auto tiny = fkd::make_cuda_backend(0, 1000);
    EXPECT_THROW(tiny->load(view2(x.data(), n, d, fk::DType::f32), {}, {}, {1, n, d, k}, fk::Metric::L2,
                            fk::Precision::exact),
                 fk::OutOfMemoryError);
    std::vector<int64_t> lab(size_t(n * 300));
    EXPECT_THROW(fkd::cuda_search(view2(x.data(), n, d, fk::DType::f32), view2(x.data(), k, d, fk::DType::f32),
                                  300, fk::Metric::L2, fk::Precision::exact, 0, lab.data(), nullptr),
                 fk::Error);
    EXPECT_THROW(fkd::make_cuda_backend(1000, 0), fk::Error);
}

}  // namespace
