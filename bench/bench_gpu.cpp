// GPU benchmark (not a test): ms per Lloyd iteration of the engine on the
// BENCH.md cases, data resident on the device (passed as device pointers,
// zero-copy), fixed iteration count, median over iterations after warm-up.
// Out-of-core cases (names "ooc-..."): f32 data in host memory (pinned or
// pageable) with a device memory budget, so that it is streamed; they also
// report the plan (resident / cached / streamed rows) and the host->device
// copy rate against a pinned cudaMemcpy measured in the same process.
// Usage: bench_gpu [out.json] [case ...]
//   no case names: the in-memory cases; "ooc": all out-of-core cases.
#include <flashkmeans/kmeans.hpp>

#include <cuda_runtime.h>
#include <omp.h>

#include "../src/half.hpp"
// Internal: the fit is run through the driver on a backend we keep, so that
// its streaming plan and copy times can be read after the fit.
#include "backend.hpp"
#include "lloyd.hpp"
#define FLASHKMEANS_STREAMING_INFO_ONLY
#include "cuda/streaming.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
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
    bool probe_only = false;  ///< run only when named (kernel experiments, not BENCH.md cases)
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
    // Probes: f16 at the K between the BENCH.md cases (assign kernel choices).
    {"probe-n4M-k4096", 1, 1 << 22, 4096, 128, DType::f16, Precision::automatic, true},
    {"probe-n1M-k8192", 1, 1 << 20, 8192, 128, DType::f16, Precision::automatic, true},
    {"probe-n1M-k16384", 1, 1 << 20, 16384, 128, DType::f16, Precision::automatic, true},
    {"probe-n1M-k32768", 1, 1 << 20, 32768, 128, DType::f16, Precision::automatic, true},
    // Probes: exact fp32 (no tensor cores), the precision cuVS's KMeans runs in.
    {"fp32-n1M-k1024", 1, 1 << 20, 1024, 128, DType::f32, Precision::exact, true},
    {"fp32-ivf-n1M-k16384", 1, 1 << 20, 16384, 128, DType::f32, Precision::exact, true},
    {"fp32-largeD", 1, 1 << 18, 1024, 1024, DType::f32, Precision::exact, true},
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
/// Box-Muller per pair), stored as `dtype` into `out` (count elements).
void fill_random_normal(void* out_, int64_t count, DType dtype, uint64_t seed) {
    char* out = static_cast<char*>(out_);
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
}

std::vector<char> random_normal(int64_t count, DType dtype, uint64_t seed) {
    std::vector<char> out(count * dtype_size(dtype));
    fill_random_normal(out.data(), count, dtype, seed);
    return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? NAN : v[v.size() / 2];
}

// ---- out-of-core cases ----

struct OocCase {
    const char* name;
    int64_t N, K, D;
    bool pinned;          ///< cudaMallocHost memory (MemoryKind::pinned), else malloc
    size_t budget;        ///< KMeansParams::device_memory_budget (0: most of the free memory)
    int niter, warmup;    ///< iterations of the fit, of which the first `warmup` are not timed
    const char* register_env;  ///< FLASHKMEANS_STREAM_REGISTER for the fit, null: unset
    Precision precision = Precision::tf32;  ///< fp16: the rows are kept (and streamed) as f16
};

const OocCase kOocCases[] = {
    // 8.6 GB pinned, fits the card: one upload, then resident.
    {"ooc-n16M-k4096", 1, 0, 0, true, 0, 12, 3, nullptr},
    // The same in fp16 compute (half the device copy, twice the tensor rate).
    {"ooc-n16M-k4096-fp16", 1, 0, 0, true, 0, 12, 3, nullptr, Precision::fp16},
    // The same data pageable with a 4 GiB budget: streamed (the fit page-locks it).
    {"ooc-n16M-k4096-pageable", 1, 0, 0, false, size_t(4) << 30, 12, 3, nullptr},
    // ... and with page-locking off: packed by host threads into pinned staging.
    {"ooc-n16M-k4096-pageable-staged", 1, 0, 0, false, size_t(4) << 30, 12, 3, "0"},
    // 68.7 GB pinned, 40 GiB budget: streamed.
    {"ooc-n128M-k4096", 1, 0, 0, true, size_t(40) << 30, 5, 2, nullptr},
};

OocCase shaped(OocCase c) {
    const bool big = std::strstr(c.name, "n128M") != nullptr;
    c.N = int64_t(1) << (big ? 27 : 24);
    c.K = 4096;
    c.D = 128;
    return c;
}

/// Host->device rate of a 1 GiB cudaMemcpy from pinned memory, GB/s, median of 5.
double pinned_bandwidth_gbs() {
    const size_t bytes = size_t(1) << 30;
    void *h = nullptr, *d = nullptr;
    CUDA_OK(cudaMallocHost(&h, bytes));
    CUDA_OK(cudaMalloc(&d, bytes));
    std::memset(h, 1, bytes);
    cudaEvent_t e0, e1;
    CUDA_OK(cudaEventCreate(&e0));
    CUDA_OK(cudaEventCreate(&e1));
    std::vector<double> gbs;
    for (int r = 0; r < 6; ++r) {
        CUDA_OK(cudaEventRecord(e0));
        CUDA_OK(cudaMemcpyAsync(d, h, bytes, cudaMemcpyHostToDevice));
        CUDA_OK(cudaEventRecord(e1));
        CUDA_OK(cudaEventSynchronize(e1));
        float ms = 0;
        CUDA_OK(cudaEventElapsedTime(&ms, e0, e1));
        if (r > 0) gbs.push_back(double(bytes) / (ms * 1e-3) / 1e9);  // first one warms up
    }
    CUDA_OK(cudaEventDestroy(e0));
    CUDA_OK(cudaEventDestroy(e1));
    CUDA_OK(cudaFreeHost(h));
    CUDA_OK(cudaFree(d));
    return median(gbs);
}

std::string num(double v) {
    if (!std::isfinite(v)) return "null";
    char b[64];
    std::snprintf(b, sizeof b, "%.6g", v);
    return b;
}

/// One out-of-core case: returns its JSON object.
std::string run_ooc(const OocCase& c, double pinned_gbs) {
    const int64_t count = c.N * c.D;
    const size_t bytes = size_t(count) * 4;
    auto t0 = std::chrono::steady_clock::now();
    void* host = nullptr;
    if (c.pinned)
        CUDA_OK(cudaMallocHost(&host, bytes));
    else
        host = std::malloc(bytes);  // plain malloc: the array need not start on a page
    if (!host) {
        std::fprintf(stderr, "%s: host allocation of %zu bytes failed\n", c.name, bytes);
        std::exit(1);
    }
    const double alloc_s = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    fill_random_normal(host, count, DType::f32, 1234);  // all cores, in place
    const double fill_s = seconds_since(t0);
    const ArrayView x = matrix_view(host, c.N, c.D, DType::f32,
                                    c.pinned ? MemoryKind::pinned : MemoryKind::host);

    KMeansParams p;
    p.niter = c.niter;
    p.max_points_per_centroid = 0;  // every point, every iteration
    p.precision = c.precision;
    p.device = DeviceChoice::cuda;
    p.check_finite = false;
    p.device_memory_budget = c.budget;
    std::vector<double> stamps;
    p.on_iteration = [&](int, int, const IterationStats& s) { stamps.push_back(s.time); };
    if (c.register_env) setenv("FLASHKMEANS_STREAM_REGISTER", c.register_env, 1);
    t0 = std::chrono::steady_clock::now();
    // fit() without its argument checks (all pass here), on a backend kept
    // past the fit so that its plan and last pass can be read.
    auto backend = detail::make_cuda_backend(0, c.budget);
    const KMeansResult r = detail::run_lloyd(*backend, {x, {}, {}, c.K}, p);
    const double fit_s = seconds_since(t0);
    if (c.register_env) unsetenv("FLASHKMEANS_STREAM_REGISTER");
    const auto* si = dynamic_cast<const detail::StreamingInfo*>(backend.get());
    const detail::StreamingPlanInfo info = si ? si->streaming_info() : detail::StreamingPlanInfo{};
    backend.reset();  // releases the device memory and any page-locking

    std::vector<double> per_iter;
    for (size_t i = size_t(c.warmup); i < stamps.size(); i++)
        per_iter.push_back(1e3 * (stamps[i] - stamps[i - 1]));
    const double ms = median(per_iter);
    const double tflops = 2.0 * c.N * c.K * c.D / (ms * 1e-3) / 1e12;
    const int64_t res = info.streaming ? info.resident_rows : c.N;
    const int64_t cached_rows =
            info.streaming ? detail::cached_rows_of(c.N - info.resident_rows, info.chunk_rows, info.cached_chunks) : 0;
    const double copy_gbs = info.last_pass_copy_ms > 0
                                ? info.last_pass_bytes / (info.last_pass_copy_ms * 1e-3) / 1e9 : NAN;
    const double span_gbs = info.last_pass_span_ms > 0
                                ? info.last_pass_bytes / (info.last_pass_span_ms * 1e-3) / 1e9 : NAN;
    const double setup_s = fit_s - (stamps.empty() ? 0 : stamps.back());

    std::printf("%-32s %9.1f ms/iter %6.1f TFLOP/s | device rows %lld resident + %lld cached of %lld, "
                "%lld chunks (%lld streamed) of %lld | H2D %.2f GB/iter in %.1f ms = %.1f GB/s "
                "(%.0f%% of pinned %.1f)%s%s | setup %.1f s, alloc %.1f s, fill %.1f s\n",
                c.name, ms, tflops, (long long)res, (long long)cached_rows, (long long)c.N,
                (long long)info.chunks, (long long)(info.chunks - info.cached_chunks),
                (long long)info.chunk_rows, info.last_pass_bytes / 1e9, info.last_pass_copy_ms,
                copy_gbs, 100 * copy_gbs / pinned_gbs, pinned_gbs,
                info.registered_source ? ", registered" : "", info.pinned_source ? ", direct" : ", staged",
                setup_s, alloc_s, fill_s);
    std::printf("%-32s iterations ms:", "");
    for (size_t i = 0; i < stamps.size(); i++)
        std::printf(" %.1f", 1e3 * (stamps[i] - (i ? stamps[i - 1] : 0)));
    std::printf("\n");
    std::fflush(stdout);

    std::string js = std::string("    {\"case\": \"") + c.name + "\", \"B\": 1, \"N\": " +
                     std::to_string(c.N) + ", \"K\": " + std::to_string(c.K) +
                     ", \"D\": " + std::to_string(c.D) +
                     ", \"dtype\": \"f32\", \"precision\": \"" +
                     (c.precision == Precision::fp16 ? "fp16" : "tf32") + "\", \"host_memory\": \"" +
                     (c.pinned ? "pinned" : "pageable") + "\", \"register_env\": " +
                     (c.register_env ? std::string("\"") + c.register_env + "\"" : "null") +
                     ", \"budget_bytes\": " + std::to_string(c.budget) +
                     ", \"iterations\": " + std::to_string(c.niter) +
                     ", \"timed_iterations\": " + std::to_string(per_iter.size()) +
                     ", \"ms_per_iter\": " + num(ms) + ", \"tflops\": " + num(tflops) +
                     ", \"iter_ms\": [";
    for (size_t i = 0; i < stamps.size(); i++)
        js += (i ? ", " : "") + num(1e3 * (stamps[i] - (i ? stamps[i - 1] : 0)));
    js += "], \"streaming\": " + std::string(info.streaming ? "true" : "false") +
          ", \"resident_rows\": " + std::to_string(res) +
          ", \"cached_rows\": " + std::to_string(cached_rows) +
          ", \"chunk_rows\": " + std::to_string(info.chunk_rows) +
          ", \"chunks\": " + std::to_string(info.chunks) +
          ", \"cached_chunks\": " + std::to_string(info.cached_chunks) +
          ", \"streamed_chunks\": " + std::to_string(info.chunks - info.cached_chunks) +
          ", \"device_bytes\": " + std::to_string(info.device_bytes) +
          ", \"pinned_source\": " + (info.pinned_source ? "true" : "false") +
          ", \"registered_source\": " + (info.registered_source ? "true" : "false") +
          ", \"streamed_bytes_per_iter\": " + num(info.last_pass_bytes) +
          ", \"copy_ms_summed\": " + num(info.last_pass_copy_ms) +
          ", \"copy_gbs\": " + num(copy_gbs) +
          ", \"copy_span_ms\": " + num(info.last_pass_span_ms > 0 ? info.last_pass_span_ms : NAN) +
          ", \"copy_span_gbs\": " + num(span_gbs) +
          ", \"pinned_gbs\": " + num(pinned_gbs) +
          ", \"copy_pct_of_pinned\": " + num(100 * copy_gbs / pinned_gbs) +
          ", \"setup_s\": " + num(setup_s) + ", \"host_alloc_s\": " + num(alloc_s) +
          ", \"fill_s\": " + num(fill_s) + ", \"final_obj\": " + num(r.obj[0]) + "}";
    if (c.pinned)
        CUDA_OK(cudaFreeHost(host));
    else
        std::free(host);
    return js;
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
    auto named = [&](const char* name) {
        return std::find(wanted.begin(), wanted.end(), name) != wanted.end();
    };
    for (const Case& c : kCases) {
        if (wanted.empty() ? c.probe_only : !named(c.name)) continue;
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
        // Device memory is sampled in the two untimed first iterations, when
        // every buffer of the fit exists, so that no cudaMemGetInfo falls in a
        // timed interval (sampling every iteration measured no different on
        // the H200, results/h200_2026-12-03/probe5_pool/).
        p.on_iteration = [&](int, int it, const IterationStats& s) {
            stamps.push_back(s.time);
            size_t f, t;
            if (it < 2 && cudaMemGetInfo(&f, &t) == cudaSuccess) min_free = std::min(min_free, f);
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
    // Out-of-core cases: only when named, or all with "ooc".
    double pinned_gbs = NAN;
    for (const OocCase& c0 : kOocCases) {
        if (!named("ooc") && !named(c0.name)) continue;
        if (std::isnan(pinned_gbs)) {
            pinned_gbs = pinned_bandwidth_gbs();
            std::printf("pinned cudaMemcpy H2D, 1 GiB, median of 5: %.1f GB/s\n", pinned_gbs);
        }
        js << (first ? "" : ",\n") << run_ooc(shaped(c0), pinned_gbs);
        js.flush();
        first = false;
    }
    js << "\n  ]";
    if (!std::isnan(pinned_gbs)) js << ",\n  \"pinned_h2d_gbs\": " << num(pinned_gbs);
    js << "\n}\n";
    return 0;
}
