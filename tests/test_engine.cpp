// The engine API without Faiss: validation errors, batched fits, dtypes,
// assignment, and the driver's bookkeeping.
#include <flashkmeans/kmeans.hpp>

#include <gtest/gtest.h>

#include "half.hpp"
#include "test_data.hpp"
#include "test_support.hpp"

#include <cmath>
#include <limits>

namespace {

using namespace flashkmeans;
using flashkmeans::testing::blobs;
using flashkmeans::testing::cpu_params;
using flashkmeans::testing::rel_diff;

template <class F>
void expect_error(F&& f, const std::string& needle) {
    try {
        f();
        FAIL() << "expected flashkmeans::Error mentioning '" << needle << "'";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

TEST(EngineErrors, BadArguments) {
    auto x = blobs(100, 4, 3, 1);
    const auto xv = matrix_view(x.data(), 100, 4);
    expect_error([&] { fit(xv, 0, cpu_params()); }, "k: must be positive");
    expect_error([&] { fit(xv, 101, cpu_params()); }, "at least the number of clusters k");
    expect_error([&] { fit(matrix_view(nullptr, 100, 4), 5, cpu_params()); }, "x: null data pointer");
    expect_error([&] { fit(batch_view(x.data(), 1, 100, 4), 5, cpu_params()); }, "x: expected 2 dimensions");
    expect_error([&] { fit_batched(xv, 5, cpu_params()); }, "x: expected 3 dimensions");
    std::vector<float> w(99, 1.f);
    expect_error([&] { fit(xv, 5, cpu_params(), vector_view(w.data(), 99)); }, "weights: expected shape");
    std::vector<float> init(6 * 4, 0.f);
    expect_error([&] { fit(xv, 5, cpu_params(), {}, matrix_view(init.data(), 6, 4)); },
                 "init_centroids: 6 centroids given, more than k = 5");
    expect_error([&] { fit(xv, 5, cpu_params(), {}, matrix_view(init.data(), 4, 6)); },
                 "init_centroids: dimension 6");
    KMeansParams p = cpu_params();
    p.nredo = 0;
    expect_error([&] { fit(xv, 5, p); }, "nredo");
    x[17] = std::numeric_limits<float>::infinity();
    expect_error([&] { fit(xv, 5, cpu_params()); }, "x: input contains NaN or Inf");
    p = cpu_params();
    p.check_finite = false;  // the caller opted out: no error
    EXPECT_NO_THROW(fit(xv, 5, p));
}

TEST(EngineErrors, CudaRequestedWithoutGpu) {
    if (cuda_available()) GTEST_SKIP() << "a GPU is present";
    auto x = blobs(100, 4, 3, 1);
    KMeansParams p;
    p.device = DeviceChoice::cuda;
    expect_error([&] { fit(matrix_view(x.data(), 100, 4), 5, p); }, "device: cuda requested");
}

TEST(Engine, ObjectiveDecreasesAndStatsFilled) {
    auto x = blobs(3000, 16, 20, 2);
    auto r = fit(matrix_view(x.data(), 3000, 16), 20, cpu_params(10));
    ASSERT_EQ(r.iteration_stats.size(), 1u);
    ASSERT_EQ(r.iteration_stats[0].size(), 10u);
    for (size_t i = 1; i < 10; i++)
        EXPECT_LE(r.iteration_stats[0][i].obj, r.iteration_stats[0][i - 1].obj * (1 + 1e-6));
    EXPECT_EQ(r.obj[0], r.iteration_stats[0].back().obj);
    EXPECT_STREQ(r.backend, "cpu");
}

TEST(Engine, EarlyStopWhenObjectiveRepeats) {
    auto x = blobs(2000, 8, 6, 21);
    KMeansParams p = cpu_params(200);
    p.early_stop_threshold = 0;
    auto r = fit(matrix_view(x.data(), 2000, 8), 6, p);
    const auto& s = r.iteration_stats[0];
    ASSERT_GE(s.size(), 2u);
    EXPECT_LT(s.size(), 200u);
    EXPECT_EQ(float(s[s.size() - 1].obj), float(s[s.size() - 2].obj));
    p.early_stop_threshold = -1;  // never: every iteration runs
    p.niter = 40;
    EXPECT_EQ(fit(matrix_view(x.data(), 2000, 8), 6, p).iteration_stats[0].size(), 40u);
}

TEST(Engine, BatchedEqualsLooping) {
    const int64_t B = 3, n = 1500, d = 13, k = 17;
    std::vector<float> x;
    for (int b = 0; b < B; b++) {
        auto xb = blobs(n, d, 20, 100 + b);
        x.insert(x.end(), xb.begin(), xb.end());
    }
    auto batched = fit_batched(batch_view(x.data(), B, n, d), k, cpu_params());
    for (int64_t b = 0; b < B; b++) {
        auto single = fit(matrix_view(&x[b * n * d], n, d), k, cpu_params());
        EXPECT_EQ(std::vector<float>(&batched.centroids[b * k * d], &batched.centroids[(b + 1) * k * d]),
                  single.centroids) << "problem " << b;
        EXPECT_EQ(batched.obj[b], single.obj[0]);
    }
}

TEST(Engine, HalfInputsMatchTheirFloatValues) {
    const int64_t n = 2000, d = 24, k = 12;
    auto x = blobs(n, d, 12, 3);
    std::vector<uint16_t> h(n * d), bh(n * d);
    std::vector<float> xh(n * d), xb(n * d);
    for (int64_t i = 0; i < n * d; i++) {
        h[i] = detail::float_to_half(x[i]);
        bh[i] = detail::float_to_bf16(x[i]);
        xh[i] = detail::half_to_float(h[i]);
        xb[i] = detail::bf16_to_float(bh[i]);
    }
    auto r16 = fit(matrix_view(h.data(), n, d, DType::f16), k, cpu_params());
    auto r32 = fit(matrix_view(xh.data(), n, d), k, cpu_params());
    EXPECT_EQ(r16.centroids, r32.centroids);
    auto rb = fit(matrix_view(bh.data(), n, d, DType::bf16), k, cpu_params());
    auto rb32 = fit(matrix_view(xb.data(), n, d), k, cpu_params());
    EXPECT_EQ(rb.centroids, rb32.centroids);
}

TEST(Engine, StridedInputMatchesPacked) {
    const int64_t n = 1000, d = 10, k = 8, ld = 16;
    auto x = blobs(n, d, 8, 4);
    std::vector<float> padded(n * ld, 123.f);
    for (int64_t i = 0; i < n; i++) std::copy_n(&x[i * d], d, &padded[i * ld]);
    ArrayView v = matrix_view(padded.data(), n, d);
    v.strides[0] = ld;
    EXPECT_FALSE(v.contiguous());
    EXPECT_EQ(fit(v, k, cpu_params()).centroids,
              fit(matrix_view(x.data(), n, d), k, cpu_params()).centroids);
}

TEST(Engine, HalfConversionRoundTrip) {
    for (float f : {0.f, -0.f, 1.f, -2.5f, 65504.f, 6.1035156e-05f, 5.96e-08f, 1e-3f, 3.14159f}) {
        EXPECT_EQ(detail::half_to_float(detail::float_to_half(f)), f == 5.96e-08f ? 5.9604645e-08f
                                                                  : f == 1e-3f ? 0.0010004044f
                                                                  : f == 3.14159f ? 3.140625f : f);
    }
    EXPECT_TRUE(std::isinf(detail::half_to_float(detail::float_to_half(1e6f))));
    EXPECT_EQ(detail::bf16_to_float(detail::float_to_bf16(1.f)), 1.f);
    EXPECT_EQ(detail::bf16_to_float(detail::float_to_bf16(3.14159f)), 3.140625f);
}

}  // namespace
