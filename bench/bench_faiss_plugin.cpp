// Benchmark of the Faiss plugin (not a test): per-phase wall times of
//   1. index training (e.g. IVF4096,PQ32 on 1M x 128) and adding the same
//      vectors, stock faiss::index_factory + train/add vs
//      flashkmeans::index_factory + flashkmeans::train + flashkmeans::add;
//   2. PQ codebook training: Faiss's per-subspace loop vs one batched fit.
// Runs wherever the library builds: on a GPU machine the flashkmeans side
// uses the GPU (Faiss here is CPU-only).
//
//   bench_faiss_plugin [--n N] [--d D] [--index DESC] [--pq-n N] [--pq-m M]
//                      [--skip-stock] [--skip-index] [--json FILE]
#include <flashkmeans/faiss/add.hpp>
#include <flashkmeans/faiss/index_factory.hpp>
#include <flashkmeans/faiss/train.hpp>
#include <flashkmeans/kmeans.hpp>

#include <faiss/impl/ProductQuantizer.h>
#include <faiss/index_factory.h>

#include "../examples/synthetic_data.hpp"

#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace {

struct Options {
    int64_t n = 1000000, d = 128, pq_n = 65536, pq_m = 32;
    // np: polysemous training is not k-means and the same Faiss code on both sides.
    std::string index = "IVF4096,PQ32np", json;
    bool stock = true, run_index = true;
};

Options parse(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        auto next = [&]() -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "%s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--n") o.n = std::atoll(next());
        else if (a == "--d") o.d = std::atoll(next());
        else if (a == "--index") o.index = next();
        else if (a == "--pq-n") o.pq_n = std::atoll(next());
        else if (a == "--pq-m") o.pq_m = std::atoll(next());
        else if (a == "--json") o.json = next();
        else if (a == "--skip-stock") o.stock = false;
        else if (a == "--skip-index") o.run_index = false;
        else {
            std::fprintf(stderr, "unknown argument %s\n", a.c_str());
            std::exit(2);
        }
    }
    return o;
}

double seconds(const std::function<void()>& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct IndexTimes {
    double train = 0, add = 0;
};

IndexTimes time_index(const Options& o, const std::vector<float>& x, bool ours) {
    IndexTimes t;
    std::unique_ptr<faiss::Index> index(
            ours ? flashkmeans::index_factory(int(o.d), o.index.c_str())
                 : faiss::index_factory(int(o.d), o.index.c_str()));
    t.train = seconds([&] {
        if (ours) flashkmeans::train(*index, o.n, x.data());
        else index->train(o.n, x.data());
    });
    t.add = seconds([&] {
        if (ours) flashkmeans::add(index.get(), o.n, x.data());
        else index->add(o.n, x.data());
    });
    std::printf("  %-10s train %8.2f s   add %8.2f s\n", ours ? "flashkmeans" : "faiss", t.train,
                t.add);
    return t;
}

struct PQTimes {
    double train = 0, mse = 0;
};

PQTimes time_pq(const Options& o, const std::vector<float>& x, bool ours) {
    faiss::ProductQuantizer pq(o.d, o.pq_m, 8);
    PQTimes t;
    t.train = seconds([&] {
        if (ours) flashkmeans::train_product_quantizer(pq, o.pq_n, x.data());
        else pq.train(o.pq_n, x.data());
    });
    std::vector<uint8_t> codes(pq.code_size * o.pq_n);
    std::vector<float> rec(x.begin(), x.begin() + o.pq_n * o.d);
    pq.compute_codes(x.data(), codes.data(), o.pq_n);
    pq.decode(codes.data(), rec.data(), o.pq_n);
    double err = 0;
    for (int64_t i = 0; i < o.pq_n * o.d; i++) err += double(x[i] - rec[i]) * (x[i] - rec[i]);
    t.mse = err / double(o.pq_n);
    std::printf("  %-10s PQ%lld train %8.2f s   mse %.5g\n", ours ? "flashkmeans" : "faiss",
                (long long)o.pq_m, t.train, t.mse);
    return t;
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    const int64_t rows = std::max(o.n, o.pq_n);
    std::printf("flashkmeans plugin benchmark: %s on %lld x %lld, PQ%lld on %lld; engine %s, "
                "%d OpenMP threads\n",
                o.index.c_str(), (long long)o.n, (long long)o.d, (long long)o.pq_m,
                (long long)o.pq_n, flashkmeans::cuda_available() ? "cuda" : "cpu",
                omp_get_max_threads());
    const std::vector<float> x = flashkmeans::examples::clustered_vectors(rows, o.d, 10000, 7);

    IndexTimes is{}, io{};
    if (o.run_index) {
        if (o.stock) is = time_index(o, x, false);
        io = time_index(o, x, true);
    }
    PQTimes ps{}, po{};
    if (o.stock) ps = time_pq(o, x, false);
    po = time_pq(o, x, true);

    if (!o.json.empty()) {
        FILE* f = std::fopen(o.json.c_str(), "w");
        if (!f) {
            std::perror(o.json.c_str());
            return 1;
        }
        std::fprintf(f,
                     "{\n  \"index\": \"%s\", \"n\": %lld, \"d\": %lld, \"threads\": %d, "
                     "\"engine\": \"%s\",\n"
                     "  \"faiss\": {\"train_s\": %.3f, \"add_s\": %.3f, \"pq_train_s\": %.3f, "
                     "\"pq_mse\": %.6g},\n"
                     "  \"flashkmeans\": {\"train_s\": %.3f, \"add_s\": %.3f, \"pq_train_s\": "
                     "%.3f, \"pq_mse\": %.6g},\n"
                     "  \"pq\": {\"n\": %lld, \"M\": %lld, \"nbits\": 8}\n}\n",
                     o.index.c_str(), (long long)o.n, (long long)o.d, omp_get_max_threads(),
                     flashkmeans::cuda_available() ? "cuda" : "cpu", is.train, is.add, ps.train,
                     ps.mse, io.train, io.add, po.train, po.mse, (long long)o.pq_n,
                     (long long)o.pq_m);
        std::fclose(f);
    }
    return 0;
}
