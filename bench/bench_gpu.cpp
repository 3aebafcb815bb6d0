// GPU benchmark (not a test): ms per Lloyd iteration of the engine on the
// BENCH.md cases, data resident on the device (passed as device pointers,
// zero-copy), fixed iteration count, median over iterations after warm-up.
// Usage: bench_gpu [out.json] [case ...]   (no case names: all of them)
#include <flashkmeans/kmeans.hpp>

#include <cuda_runtime.h>
#include <omp.h>

#include "../src/half.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

using namespace flashkmeans;

struct Case {
    const char* name;
    int64_t B, N, K, D;
    DType dtype;
    Precision precision;
};

const Case kCases[] = {
    {"seed-batched", 32, 75600, 1000, 128, DType::f16, Precision::automatic},
    {"seed-k100", 32, 75600, 100, 128, DType::f16, Precision::automatic},
    {"n1M-k1024", 1, 1 << 20, 1024, 128, DType::f16, Precision::automatic},
    {"n8M-k1024", 1, 1 << 23, 1024, 128, DType::f16, Precision::automatic},
    {"ivf-n1M-k16384", 1, 1 << 20, 16384, 128, DType::f32, Precision::tf32},
    {"ivf-n4M-k65536", 1, 1 << 22, 65536, 128, DType::f16, Precision::automatic},
    {"largeD", 1, 1 << 18, 1024, 1024, DType::f16, Precision::automatic},
    {"pq-train", 32, 1 << 16, 256, 4, DType::f32, Precision::exact},
};

#define CUDA_OK(call)                                                                   \
    do {                                                                                \
        cudaError_t e_ = (call);                                                        \
        if (e_ != cudaSuccess) {                                                        \
            std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call,           \
                         cudaGetErrorString(e_));                                       \
            std::exit(1);                                                               \
        }                                                                               \
    } while (0)

/// Standard normal values from a fixed seed, in parallel (splitmix64 +
/// Box-Muller per pair), stored as `dtype`.
std::vector<char> random_normal(int64_t count, DType dtype, uint64_t seed) {
    std::vector<char> out(count * dtype_size(dtype));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < count; i += 2) {
        uint64_t z = seed + 0x9E3779B97F4A7C15ull * uint64_t(i / 2 + 1);
        auto next = [&z]() {
            uint64_t r = (z += 0x9E3779B97F4A7C15ull);
            r = (r ^ (r >> 30)) * 0xBF58476D1CE4E5B9ull;
            r = (r ^ (r >> 27)) * 0x94D049BB133111EBull;
            return double((r ^ (r >> 31)) >> 11) * 0x1.0p-53;
        };
        const double u1 = std::max(next(), 1e-300), u2 = next();
        const double rad = std::sqrt(-2 * std::log(u1));
        const float v[2] = {float(rad * std::cos(2 * M_PI * u2)), float(rad * std::sin(2 * M_PI * u2))};
        for (int t = 0; t < 2 && i + t < count; t++) {
            if (dtype == DType::f32) std::memcpy(&out[(i + t) * 4], &v[t], 4);
            else {
                const uint16_t h = dtype == DType::f16 ? detail::float_to_half(v[t]) : detail::float_to_bf16(v[t]);
                std::memcpy(&out[(i + t) * 2], &h, 2);
            }
        }
    }
    return out;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? NAN : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    const std::string out = argc > 1 ? argv[1] : "bench_gpu.json";
    std::vector<std::string> wanted(argv + std::min(argc, 2), argv + argc);
    if (!cuda_available()) {
        std::fprintf(stderr, "bench_gpu: no CUDA GPU visible\n");
        return 1;
    }
    cudaDeviceProp prop;
    CUDA_OK(cudaGetDeviceProperties(&prop, 0));
    int driver = 0;
    cudaDriverGetVersion(&driver);
    std::printf("device: %s, %d SMs, driver %d\n", prop.name, prop.multiProcessorCount, driver);

    std::ofstream js(out);
    js << "{\n  \"device\": \"" << prop.name << "\",\n  \"driver\": " << driver << ",\n  \"cases\": [\n";
    bool first = true;
    std::printf("%-16s %10s %10s %12s %10s\n", "case", "ms/iter", "TFLOP/s", "assign ms", "dev GiB");
    for (const Case& c : kCases) {
        if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), c.name) == wanted.end()) continue;
        const int64_t count = c.B * c.N * c.D;
        const auto host = random_normal(count, c.dtype, 1234);
        void* dx = nullptr;
        size_t free0, total;
        CUDA_OK(cudaMemGetInfo(&free0, &total));
        CUDA_OK(cudaMalloc(&dx, host.size()));
        CUDA_OK(cudaMemcpy(dx, host.data(), host.size(), cudaMemcpyHostToDevice));
        const ArrayView x = c.B > 1 ? batch_view(dx, c.B, c.N, c.D, c.dtype, MemoryKind::cuda)
                                    : matrix_view(dx, c.N, c.D, c.dtype, MemoryKind::cuda);

        KMeansParams p;
        p.niter = 12;
        p.max_points_per_centroid = 0;  // every point, every iteration
        p.precision = c.precision;
        p.device = DeviceChoice::cuda;
        p.check_finite = false;
        std::vector<double> stamps;
        size_t min_free = free0;
        p.on_iteration = [&](int, int, const IterationStats& s) {
            stamps.push_back(s.time);
            size_t f, t;
            if (cudaMemGetInfo(&f, &t) == cudaSuccess) min_free = std::min(min_free, f);
        };
        const KMeansResult r = c.B > 1 ? fit_batched(x, c.K, p) : fit(x, c.K, p);
        std::vector<double> per_iter;
        for (size_t i = 3; i < stamps.size(); i++) per_iter.push_back(1e3 * (stamps[i] - stamps[i - 1]));
        const double ms = median(per_iter);
        const double tflops = 2.0 * c.B * c.N * c.K * c.D / (ms * 1e-3) / 1e12;

        double assign_ms = NAN;
        if (c.B == 1) {  // assignment alone, labels on the device
            int64_t* labels = nullptr;
            float* dcent = nullptr;
            CUDA_OK(cudaMalloc(&labels, sizeof(int64_t) * c.N));
            CUDA_OK(cudaMalloc(&dcent, sizeof(float) * c.K * c.D));
            CUDA_OK(cudaMemcpy(dcent, r.centroids.data(), sizeof(float) * c.K * c.D, cudaMemcpyHostToDevice));
            AssignParams ap;
            ap.precision = c.precision;
            ap.device = DeviceChoice::cuda;
            std::vector<double> t;
            for (int rep = 0; rep < 6; rep++) {
                CUDA_OK(cudaDeviceSynchronize());
                const auto t0 = std::chrono::steady_clock::now();
                assign(x, matrix_view(dcent, c.K, c.D, DType::f32, MemoryKind::cuda), 1, labels, nullptr, ap);
                CUDA_OK(cudaDeviceSynchronize());
                if (rep > 0) t.push_back(1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
            }
            assign_ms = median(t);
            cudaFree(labels);
            cudaFree(dcent);
        }
        const double dev_gib = double(free0 - min_free) / (1 << 30);
        std::printf("%-16s %10.3f %10.1f %12.3f %10.2f\n", c.name, ms, tflops, assign_ms, dev_gib);
        std::fflush(stdout);
        js << (first ? "" : ",\n") << "    {\"case\": \"" << c.name << "\", \"B\": " << c.B << ", \"N\": " << c.N
           << ", \"K\": " << c.K << ", \"D\": " << c.D << ", \"dtype\": \"" << dtype_name(c.dtype)
           << "\", \"ms_per_iter\": " << ms << ", \"tflops\": " << tflops
           << ", \"assign_ms\": " << (std::isnan(assign_ms) ? std::string("null") : std::to_string(assign_ms))
           << ", \"device_gib_incl_data\": " << dev_gib << ", \"final_obj\": " << r.obj[0] << "}";
        first = false;
        CUDA_OK(cudaFree(dx));
    }
    js << "\n  ]\n}\n";
    return 0;
}
