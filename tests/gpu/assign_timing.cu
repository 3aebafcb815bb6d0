// Rough timing of the assign and update kernels on one device (a development
// aid, not the benchmark: see BENCH.md for how speed claims are made).
// Usage: assign_timing  -> prints one line per case.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <cstdio>
#include <random>
#include <vector>

#include "kernels/assign.cuh"
#include "kernels/norms.cuh"
#include "kernels/update.cuh"
#include "src/cuda/device_data.hpp"

namespace fk = flashkmeans;
namespace fkd = flashkmeans::detail;
namespace fkk = flashkmeans::kernels;

static void run_case(int64_t B, int64_t n, int64_t k, int64_t d, fk::DType dt, fk::Precision p) {
    const fkd::ComputePlan plan = fkd::plan_compute(dt, p);
    const int64_t es = fk::dtype_size(plan.store);
    const int64_t ld = fkd::round_up(d, 16 / es);
    fkd::DeviceBuffer x(size_t(B * n * ld * es)), c(size_t(B * k * ld * es)), xf(size_t(B * n * d) * 4);
    // Random normal data generated on the host once, converted on the device.
    {
        std::mt19937 g(1);
        std::normal_distribution<float> nd;
        std::vector<float> h(size_t(B * n * d));
        for (auto& v : h) v = nd(g);
        cudaMemcpy(xf.get(), h.data(), h.size() * 4, cudaMemcpyHostToDevice);
    }
    fkk::copy_rows({xf.get(), fk::DType::f32, d, n * d}, nullptr, int(B), n, d, x.get(), plan.store, ld, n * ld, 0);
    fkk::copy_rows({xf.get(), fk::DType::f32, d, n * d}, nullptr, int(B), k, d, c.get(), plan.store, ld, k * ld, 0);
    fkd::DeviceBuffer xn(size_t(B * n) * 4), cn(size_t(B * k) * 4), lab(size_t(B * n) * 4),
        part(size_t(B * fkk::stream_grid_x(n)) * 8);
    fkk::row_norms({x.get(), plan.store, ld, n * ld}, int(B), n, d, xn.get<float>(), 0);
    fkk::row_norms({c.get(), plan.store, ld, k * ld}, int(B), k, d, cn.get<float>(), 0);
    fkd::DeviceRows xr, cr;
    xr.data = x.get(); xr.dtype = plan.store; xr.ld = ld; xr.batch = n * ld;
    cr.data = c.get(); cr.dtype = plan.store; cr.ld = ld; cr.batch = k * ld;
    fkk::StreamGeom geo{xr.operand(n, d), cr.operand(k, d), 0};
    fkk::AssignArgs a{xn.get<float>(), cn.get<float>(), n, k, false, lab.get<int32_t>(), nullptr, part.get<double>()};
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    auto time_it = [&](auto&& f) {
        for (int i = 0; i < 3; ++i) f();
        std::vector<float> ms;
        for (int i = 0; i < 10; ++i) {
            cudaEventRecord(e0);
            f();
            cudaEventRecord(e1);
            cudaEventSynchronize(e1);
            float t = 0;
            cudaEventElapsedTime(&t, e0, e1);
            ms.push_back(t);
        }
        std::sort(ms.begin(), ms.end());
        return ms[ms.size() / 2];
    };
    const float t_assign = time_it([&] { fkk::launch_assign(geo, int(B), plan.math, a, 0); });
    // The portable mma.sync kernel on the same inputs (FK_ASSIGN_PATH=mma), for
    // f16/bf16/tf32: its time and how many labels differ from the default path.
    float t_mma = -1.f;
    int64_t diff = 0;
    if (plan.math == fkk::MathKind::f16 || plan.math == fkk::MathKind::bf16 || plan.math == fkk::MathKind::tf32) {
        std::vector<int32_t> l0(size_t(B * n)), l1(size_t(B * n));
        cudaMemcpy(l0.data(), lab.get(), l0.size() * 4, cudaMemcpyDeviceToHost);
        setenv("FK_ASSIGN_PATH", "mma", 1);
        t_mma = time_it([&] { fkk::launch_assign(geo, int(B), plan.math, a, 0); });
        unsetenv("FK_ASSIGN_PATH");
        cudaMemcpy(l1.data(), lab.get(), l1.size() * 4, cudaMemcpyDeviceToHost);
        for (size_t i = 0; i < l0.size(); ++i) diff += l0[i] != l1[i];
        fkk::launch_assign(geo, int(B), plan.math, a, 0);  // default path's labels for the update
    }
    // Experiments: FK_TIMING_VARIANTS="NAME=VALUE,NAME=VALUE;..." times the
    // default path again under each environment setting (f16 only).
    if (plan.math == fkk::MathKind::f16)
        if (const char* v = std::getenv("FK_TIMING_VARIANTS")) {
            std::string all(v);
            size_t p0 = 0;
            while (p0 < all.size()) {
                size_t p1 = all.find(';', p0);
                if (p1 == std::string::npos) p1 = all.size();
                const std::string set = all.substr(p0, p1 - p0);
                std::vector<std::string> names;
                size_t q0 = 0;
                while (q0 < set.size()) {
                    size_t q1 = set.find(',', q0);
                    if (q1 == std::string::npos) q1 = set.size();
                    const std::string kv = set.substr(q0, q1 - q0);
                    const size_t eq = kv.find('=');
                    if (eq != std::string::npos) {
                        names.push_back(kv.substr(0, eq));
                        setenv(names.back().c_str(), kv.substr(eq + 1).c_str(), 1);
                    }
                    q0 = q1 + 1;
                }
                const float t = time_it([&] { fkk::launch_assign(geo, int(B), plan.math, a, 0); });
                std::printf("    variant %-40s %8.3f ms (%6.1f TFLOP/s) %s\n", set.c_str(), t,
                            2.0 * B * n * k * d / (t * 1e-3) / 1e12, cudaGetErrorString(cudaGetLastError()));
                for (auto& nm : names) unsetenv(nm.c_str());
                p0 = p1 + 1;
            }
            fkk::launch_assign(geo, int(B), plan.math, a, 0);
        }
    // Update on the same labels.
    const fkk::UpdateShape us{int(B), n, k, d, fkk::piece_points(B * n)};
    fkd::DeviceBuffer tmp(fkk::update_bytes(us)), sums(size_t(B * k * d) * 4), ws(size_t(B * k) * 4),
        cnt(size_t(B * k) * 4), cent(size_t(B * k * d) * 4);
    const fkk::UpdateBuffers ub{tmp.get(), us};
    const float t_update = time_it([&] {
        fkk::cluster_sums(lab.get<int32_t>(), {x.get(), plan.store, ld, n * ld}, nullptr, int(B), n, k, d, ub,
                          {}, sums.get<float>(), ws.get<float>(), cnt.get<int32_t>(), 0);
        fkk::finalize_centroids(sums.get<float>(), ws.get<float>(), int(B), k, d, 0, cent.get<float>(), 0);
    });
    const cudaError_t err = cudaDeviceSynchronize();
    const double tflops = 2.0 * B * n * k * d / (t_assign * 1e-3) / 1e12;
    static const char* mnames[] = {"f16", "bf16", "tf32", "ffma"};
    std::printf("B=%-3lld N=%-8lld K=%-6lld D=%-5lld %-5s assign %8.3f ms (%6.1f TFLOP/s)  update %8.3f ms  %s",
                (long long)B, (long long)n, (long long)k, (long long)d, mnames[int(plan.math)], t_assign, tflops,
                t_update, cudaGetErrorString(err));
    if (t_mma > 0)
        std::printf("  | mma.sync path %8.3f ms (%6.1f TFLOP/s), labels differing %lld of %lld",
                    t_mma, 2.0 * B * n * k * d / (t_mma * 1e-3) / 1e12, (long long)diff, (long long)(B * n));
    std::printf("\n");
}

int main(int argc, char** argv) {
    cudaDeviceProp prop{};
    cudaGetDeviceProperties(&prop, 0);
    std::printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);
    if (argc > 1 && std::string(argv[1]) == "tf32") {  // the tf32 cases alone
        run_case(1, 1 << 20, 16384, 128, fk::DType::f32, fk::Precision::tf32);  // ivf-n1M-k16384
        run_case(1, 1 << 20, 1024, 128, fk::DType::f32, fk::Precision::tf32);
        run_case(1, 1 << 20, 1024, 96, fk::DType::f32, fk::Precision::tf32);
        run_case(1, 1 << 20, 1024, 64, fk::DType::f32, fk::Precision::tf32);
        run_case(32, 75600, 1000, 128, fk::DType::f32, fk::Precision::tf32);
        return 0;
    }
    run_case(1, 1 << 20, 16384, 128, fk::DType::f32, fk::Precision::tf32);  // ivf-n1M-k16384
    run_case(32, 75600, 1000, 128, fk::DType::f16, fk::Precision::automatic);  // seed-batched
    run_case(1, 1 << 20, 1024, 128, fk::DType::f16, fk::Precision::automatic);  // n1M-k1024
    run_case(1, 1 << 20, 1024, 128, fk::DType::bf16, fk::Precision::automatic);
    run_case(1, 1 << 20, 1024, 128, fk::DType::f32, fk::Precision::tf32);
    run_case(1, 1 << 20, 1024, 128, fk::DType::f32, fk::Precision::exact);
    run_case(1, 1 << 18, 1024, 1024, fk::DType::f16, fk::Precision::automatic);  // largeD
    run_case(1, 1 << 20, 1000, 96, fk::DType::f16, fk::Precision::automatic);
    run_case(1, 1 << 20, 1024, 64, fk::DType::f16, fk::Precision::automatic);
    run_case(32, 75600, 100, 128, fk::DType::f16, fk::Precision::automatic);  // seed-k100
    run_case(32, 1 << 16, 256, 4, fk::DType::f32, fk::Precision::exact);  // pq-train
    return 0;
}
