// Data-parallel fits on the GPU: several ranks on one card (local
// communicators, and the multi-GPU driver given the same GPU twice), a
// one-rank NCCL communicator (host and device reductions), and a streamed
// shard, each against the one-GPU fit of the whole data, same seed. The
// first assignment (same seeds on every rank) agrees to 1e-6 (relative); the
// centroid sums are then added in another order (each rank's sums, then the
// all-reduce), a point near a tie can flip, so later iterations agree to
// 1e-4, as the GPU trainer agrees with the CPU trainer.
#include "gpu_test_util.hpp"

#include <flashkmeans/distributed.hpp>
#include <flashkmeans/kmeans.hpp>

#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>

#include "fit_setup.hpp"

using namespace fktest;

namespace {

fk::KMeansParams gpu_params(fk::Precision prec = fk::Precision::exact) {
    fk::KMeansParams p;
    p.niter = 10;
    p.seed = 91;
    p.precision = prec;
    p.device = fk::DeviceChoice::cuda;
    p.num_gpus = 1;
    return p;
}

constexpr double kTol = 1e-4, kTolFirst = 1e-6;  // see the top of the file

/// fit_distributed on R threads, rank r holding rows [cut[r], cut[r+1]).
std::vector<fk::KMeansResult> run_ranks(std::vector<std::unique_ptr<fk::Communicator>>& comms,
                                        const std::vector<float>& x, int64_t d, int64_t k,
                                        const fk::KMeansParams& p, const std::vector<int64_t>& cut,
                                        std::vector<std::string>& errs) {
    const size_t R = comms.size();
    std::vector<fk::KMeansResult> res(R);
    errs.assign(R, "");
    std::vector<std::thread> t;
    for (size_t r = 0; r < R; ++r)
        t.emplace_back([&, r] {
            try {
                const int64_t lo = cut[r], m = cut[r + 1] - lo;
                res[r] = fk::fit_distributed(view2(x.data() + lo * d, m, d, fk::DType::f32), k,
                                             *comms[r], p);
            } catch (const std::exception& e) {
                errs[r] = e.what();
            }
        });
    for (auto& th : t) th.join();
    return res;
}

TEST(DataParallelGpu, LocalRanksSharingOneCardMatchOneGpu) {
    FK_REQUIRE_GPU();
    const int64_t n = 30011, d = 40, k = 96;
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed);
    const auto x = clustered(n, d, 2 * k, seed);
    for (fk::Precision prec : {fk::Precision::exact, fk::Precision::tf32}) {
        SCOPED_TRACE(int(prec));
        const auto p = gpu_params(prec);
        const auto ref = fk::fit(view2(x.data(), n, d, fk::DType::f32), k, p);
        for (int R : {2, 3}) {
            auto comms = fk::make_local_communicators(R);
            std::vector<int64_t> cut;
            for (int r = 0; r <= R; ++r) cut.push_back(n * r / R + (r > 0 && r < R ? 17 * r : 0));
            std::vector<std::string> errs;
            auto res = run_ranks(comms, x, d, k, p, cut, errs);
            for (const auto& e : errs) EXPECT_EQ(e, "");
            for (int r = 1; r < R; ++r) EXPECT_EQ(res[size_t(r)].centroids, res[0].centroids);
            EXPECT_STREQ(res[0].backend, "cuda");
            expect_same_run(res[0], ref, kTol, kTolFirst);
        }
    }
}

TEST(DataParallelGpu, StreamedShardsMatchOneGpu) {
    FK_REQUIRE_GPU();
    // Each rank's shard is over a 1.5 MiB budget: it streams from host memory.
    const int64_t n = 40000, d = 32, k = 50;
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed);
    const auto x = clustered(n, d, 2 * k, seed);
    auto p = gpu_params();
    const auto ref = fk::fit(view2(x.data(), n, d, fk::DType::f32), k, p);
    p.device_memory_budget = size_t(3) << 19;
    auto comms = fk::make_local_communicators(2);
    std::vector<std::string> errs;
    auto res = run_ranks(comms, x, d, k, p, {0, 21000, n}, errs);
    for (const auto& e : errs) EXPECT_EQ(e, "");
    expect_same_run(res[0], ref, kTol, kTolFirst);
}

TEST(DataParallelGpu, MultiGpuDriverWithTheSameGpuTwice) {
    FK_REQUIRE_GPU();
    const int64_t n = 25000, d = 20, k = 40;
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed);
    const auto x = clustered(n, d, 2 * k, seed);
    auto w = randn(size_t(n), seed + 3);
    for (auto& v : w) v = 0.5f + std::abs(v);
    auto p = gpu_params();
    p.max_points_per_centroid = 300;  // 12000 of 25000 rows, drawn from all rows
    const auto xv = view2(x.data(), n, d, fk::DType::f32);
    fk::ArrayView wv = xv;
    wv.ndim = 1;
    wv.data = w.data();
    wv.shape[0] = n;
    wv.strides[0] = 1;
    const auto ref = fk::fit(xv, k, p, wv);
    // Ranks on the same GPU: NCCL cannot, so they reduce through the host.
    const auto got = fk::detail::fit_multi_gpu(xv, k, p, wv, {}, {0, 0, 0});
    expect_same_run(got, ref, kTol, kTolFirst);
    // A bad argument fails every rank before any work, with the real error.
    try {
        fk::detail::fit_multi_gpu(view2(x.data(), 30, d, fk::DType::f32), k, p, {}, {}, {0, 0});
        FAIL() << "expected an error";
    } catch (const fk::Error& e) {
        EXPECT_NE(std::string(e.what()).find("at least the number of clusters"), std::string::npos)
            << e.what();
    }
}

TEST(DataParallelGpu, LocalCollectivesOnDeviceBuffers) {
    FK_REQUIRE_GPU();
    // Ranks sharing the card, each with its own device buffer: a sum in rank
    // order and a broadcast from rank 1, staged through host memory.
    auto comms = fk::make_local_communicators(3);
    std::vector<std::vector<float>> got(3);
    std::vector<std::string> errs(3);
    std::vector<std::thread> t;
    for (int r = 0; r < 3; ++r)
        t.emplace_back([&, r] {
            try {
                float* d = nullptr;
                if (cudaMalloc(&d, 2 * 5 * sizeof(float)) != cudaSuccess) throw std::runtime_error("cudaMalloc");
                std::vector<float> h(10);
                for (int i = 0; i < 10; ++i) h[size_t(i)] = float(r * 100 + i);
                cudaMemcpy(d, h.data(), 40, cudaMemcpyHostToDevice);
                comms[size_t(r)]->all_reduce_sum(d, 5, fk::ReduceType::f32, true, nullptr);
                comms[size_t(r)]->broadcast(d + 5, 5 * sizeof(float), 1, true, nullptr);
                cudaMemcpy(h.data(), d, 40, cudaMemcpyDeviceToHost);
                cudaFree(d);
                got[size_t(r)] = h;
            } catch (const std::exception& e) {
                errs[size_t(r)] = e.what();
            }
        });
    for (auto& th : t) th.join();
    for (int r = 0; r < 3; ++r) {
        EXPECT_EQ(errs[size_t(r)], "") << "rank " << r;
        for (int i = 0; i < 5; ++i) {
            EXPECT_EQ(got[size_t(r)][size_t(i)], float(300 + 3 * i)) << "rank " << r << " sum " << i;
            EXPECT_EQ(got[size_t(r)][size_t(5 + i)], float(100 + 5 + i)) << "rank " << r << " bcast " << i;
        }
    }
}

TEST(DataParallelGpu, OneRankNcclCommunicator) {
    FK_REQUIRE_GPU();
    if (!fk::nccl_available()) GTEST_SKIP() << "NCCL not available (libnccl.so.2 not loadable)";
    const int64_t n = 20000, d = 24, k = 64;
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE(seed);
    const auto x = clustered(n, d, 2 * k, seed);
    const auto p = gpu_params();
    const auto ref = fk::fit(view2(x.data(), n, d, fk::DType::f32), k, p);
    setenv("NCCL_NVLS_ENABLE", "0", 1);  // NVLink multicast stays off in tests (issue 8)
    auto comm = fk::make_nccl_communicator(fk::nccl_unique_id(), 1, 0, 0);
    EXPECT_EQ(comm->size(), 1);
    EXPECT_EQ(comm->gpu_id(), 0);
    // Host data: sums all-reduced on the device by NCCL.
    const auto host = fk::fit_distributed(view2(x.data(), n, d, fk::DType::f32), k, *comm, p);
    expect_same_run(host, ref, kTol, kTolFirst);
    // Device data, and host-memory collectives through NCCL's staging.
    float* dx = nullptr;
    FK_CU(cudaMalloc(&dx, x.size() * 4));
    FK_CU(cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice));
    const auto dev = fk::fit_distributed(
            view2(dx, n, d, fk::DType::f32, fk::MemoryKind::cuda), k, *comm, p);
    FK_CU(cudaFree(dx));
    expect_same_run(dev, ref, kTol, kTolFirst);
    std::vector<double> v{1.5, -2.0};
    comm->all_reduce_sum(v.data(), v.size(), fk::ReduceType::f64, false, nullptr);
    EXPECT_EQ(v, (std::vector<double>{1.5, -2.0}));
}

}  // namespace
