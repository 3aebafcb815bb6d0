// The whole fit on the GPU against the CPU trainer, same seed: the objective
// of every iteration agrees to 1e-4 (relative) in exact mode, also for
// weighted, inner-product/spherical and batched problems; the public assign()
// top-k agrees with the CPU's. Built only inside the full project (it needs
// the Lloyd driver and the CPU backend).
#include "gpu_test_util.hpp"

#include <flashkmeans/kmeans.hpp>

using namespace fktest;

namespace {

fk::KMeansParams params(fk::DeviceChoice dev) {
    fk::KMeansParams p;
    p.niter = 12;
    p.seed = 77;
    p.precision = fk::Precision::exact;
    p.device = dev;
    return p;
}

TEST(GpuTrainer, MatchesCpuTrainerExactL2) {
    FK_REQUIRE_GPU();
    const int64_t n = 20000, d = 24, k = 64;
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed);
    const auto x = clustered(n, d, 2 * k, seed);
    const auto xv = view2(x.data(), n, d, fk::DType::f32);
    const auto g = fk::fit(xv, k, params(fk::DeviceChoice::cuda));
    const auto c = fk::fit(xv, k, params(fk::DeviceChoice::cpu));
    EXPECT_STREQ(g.backend, "cuda");
    EXPECT_STREQ(c.backend, "cpu");
    expect_same_run(g, c, 1e-4);
}

TEST(GpuTrainer, MatchesCpuTrainerWeightedSubsampled) {
    FK_REQUIRE_GPU();
    const int64_t n = 9000, d = 10, k = 20;
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed);
    const auto x = clustered(n, d, 2 * k, seed);
    auto w = randn(size_t(n), seed + 1);
    for (auto& v : w) v = 0.5f + std::abs(v);
    auto pg = params(fk::DeviceChoice::cuda), pc = params(fk::DeviceChoice::cpu);
    pg.max_points_per_centroid = pc.max_points_per_centroid = 200;  // subsample 4000 of 9000
    const auto xv = view2(x.data(), n, d, fk::DType::f32);
    const auto wv = view2(w.data(), 1, n, fk::DType::f32);
    fk::ArrayView w1 = wv;
    w1.ndim = 1;
    w1.shape[0] = n;
    w1.strides[0] = 1;
    expect_same_run(fk::fit(xv, k, pg, w1), fk::fit(xv, k, pc, w1), 1e-4);
}

TEST(GpuTrainer, MatchesCpuTrainerSphericalInnerProduct) {
    FK_REQUIRE_GPU();
    const int64_t n = 8000, d = 16, k = 30;
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed);
    auto x = clustered(n, d, 2 * k, seed);
    for (int64_t i = 0; i < n; ++i) {
        const double nr = std::sqrt(norm2(&x[size_t(i * d)], d));
        for (int64_t t = 0; t < d; ++t) x[size_t(i * d + t)] = float(x[size_t(i * d + t)] / nr);
    }
    auto pg = params(fk::DeviceChoice::cuda), pc = params(fk::DeviceChoice::cpu);
    pg.metric = pc.metric = fk::Metric::inner_product;
    pg.spherical = pc.spherical = true;
    const auto xv = view2(x.data(), n, d, fk::DType::f32);
    expect_same_run(fk::fit(xv, k, pg), fk::fit(xv, k, pc), 1e-4);
}

TEST(GpuTrainer, BatchedMatchesCpu) {
    FK_REQUIRE_GPU();
    const int64_t B = 4, n = 3000, d = 8, k = 16;
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed);
    const auto x = clustered(B * n, d, 2 * k, seed);
    const auto xv = view3(x.data(), B, n, d, fk::DType::f32);
    expect_same_run(fk::fit_batched(xv, k, params(fk::DeviceChoice::cuda)),
                    fk::fit_batched(xv, k, params(fk::DeviceChoice::cpu)), 1e-4);
}

TEST(GpuTrainer, HalfPrecisionObjectiveCloseToCpu) {
    FK_REQUIRE_GPU();
    const int64_t n = 20000, d = 64, k = 50;
    const auto x = round_to(randn(size_t(n * d), fresh_seed()), fk::DType::f16);
    const auto x16 = to_16bit(x, fk::DType::f16);
    auto pg = params(fk::DeviceChoice::cuda), pc = params(fk::DeviceChoice::cpu);
    pg.precision = fk::Precision::automatic;  // f16 tensor cores
    const auto g = fk::fit(view2(x16.data(), n, d, fk::DType::f16), k, pg);
    const auto c = fk::fit(view2(x.data(), n, d, fk::DType::f32), k, pc);
    // Different arithmetic, so trajectories may part; the final objective stays close.
    EXPECT_LE(std::abs(g.obj[0] - c.obj[0]), 5e-3 * std::abs(c.obj[0]));
}

TEST(GpuTrainer, PublicAssignTopkMatchesCpu) {
    FK_REQUIRE_GPU();
    const int64_t n = 1000, d = 20, k = 90, topk = 5;
    const uint64_t seed = fresh_seed();
    const auto x = randn(size_t(n * d), seed);
    const auto c = randn(size_t(k * d), seed + 1);
    std::vector<int64_t> lg(size_t(n * topk), -7), lc(size_t(n * topk), -7);
    std::vector<float> dg(size_t(n * topk), NAN), dc(size_t(n * topk), NAN);
    fk::AssignParams ap;
    ap.precision = fk::Precision::exact;
    ap.device = fk::DeviceChoice::cuda;
    fk::assign(view2(x.data(), n, d, fk::DType::f32), view2(c.data(), k, d, fk::DType::f32), topk, lg.data(), dg.data(), ap);
    ap.device = fk::DeviceChoice::cpu;
    fk::assign(view2(x.data(), n, d, fk::DType::f32), view2(c.data(), k, d, fk::DType::f32), topk, lc.data(), dc.data(), ap);
    int64_t differ = 0;
    for (size_t i = 0; i < lg.size(); ++i) {
        ASSERT_NEAR(dg[i], dc[i], 1e-4 * (1 + std::abs(dc[i]))) << "entry " << i;
        differ += lg[i] != lc[i];  // allowed only for near-equal distances (checked above)
    }
    EXPECT_LE(differ, int64_t(lg.size() / 100));
}

}  // namespace
