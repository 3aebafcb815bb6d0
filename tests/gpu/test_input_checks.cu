// Checks on GPU arrays that must run on the device: NaN/Inf input is rejected
// with the argument's name when check_finite is on, and a fit on device data
// equals the fit on the same data in host memory.
#include <flashkmeans/kmeans.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "gpu_test_util.hpp"

namespace {

struct DeviceCopy {
    void* p = nullptr;
    explicit DeviceCopy(const std::vector<float>& h) {
        EXPECT_EQ(cudaMalloc(&p, h.size() * 4), cudaSuccess);
        EXPECT_EQ(cudaMemcpy(p, h.data(), h.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
    }
    ~DeviceCopy() { cudaFree(p); }
};

TEST(GpuInputChecks, NonFiniteDeviceInputIsRejected) {
    FK_REQUIRE_GPU();
    const uint64_t seed = fktest::fresh_seed();
    const int64_t n = 3000, d = 37, k = 10;
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
        auto x = fktest::randn(size_t(n * d), seed);
        x[size_t(1234 * d + 5)] = bad;
        DeviceCopy dx(x);
        fk::KMeansParams p;
        p.niter = 2;
        p.device = fk::DeviceChoice::cuda;
        try {
            fk::fit(fktest::view2(dx.p, n, d, fk::DType::f32, fk::MemoryKind::cuda), k, p);
            FAIL() << "expected an error for " << bad << " (seed " << seed << ")";
        } catch (const fk::Error& e) {
            EXPECT_NE(std::string(e.what()).find("x: input contains NaN or Inf (1 values"),
                      std::string::npos) << e.what();
        }
        p.check_finite = false;  // opted out: no error, and no crash
        EXPECT_NO_THROW(fk::fit(fktest::view2(dx.p, n, d, fk::DType::f32, fk::MemoryKind::cuda), k, p));
    }
}

TEST(GpuInputChecks, DeviceAndHostInputGiveTheSameFit) {
    FK_REQUIRE_GPU();
    const uint64_t seed = fktest::fresh_seed();
    const int64_t n = 5000, d = 24, k = 33;
    const auto x = fktest::randn(size_t(n * d), seed);
    DeviceCopy dx(x);
    fk::KMeansParams p;
    p.niter = 3;  // few iterations: a last-bit difference rarely flips a near-tie
    p.device = fk::DeviceChoice::cuda;
    const auto on_host = fk::fit(fktest::view2(x.data(), n, d, fk::DType::f32), k, p);
    const auto on_dev = fk::fit(fktest::view2(dx.p, n, d, fk::DType::f32, fk::MemoryKind::cuda), k, p);
    // The same arithmetic on the same values; only the order of float
    // additions in the update may differ (d = 24, k = 33 is a small
    // codebook: shared-memory atomics unless KMeansParams::deterministic).
    ASSERT_EQ(on_host.centroids.size(), on_dev.centroids.size());
    for (size_t i = 0; i < on_host.centroids.size(); ++i)
        ASSERT_NEAR(on_host.centroids[i], on_dev.centroids[i], 1e-4) << "seed " << seed << " at " << i;
    EXPECT_NEAR(on_host.obj[0], on_dev.obj[0], 1e-5 * on_host.obj[0]) << "seed " << seed;
}

}  // namespace
