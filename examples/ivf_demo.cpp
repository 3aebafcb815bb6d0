// The demo: train the same IVF-Flat index with stock Faiss and with the
// flashkmeans trainer, side by side on built-in data, and compare training
// time, final k-means objective and recall@10 at a fixed nprobe.
#include <flashkmeans/faiss/clustering.hpp>
#include <flashkmeans/kmeans.hpp>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIVFFlat.h>

#include "synthetic_data.hpp"

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <unordered_set>

namespace {

constexpr int64_t kDim = 64, kBase = 200000, kQueries = 1000, kTopK = 10;
constexpr int64_t kLists = 1024, kProbe = 16;

struct Outcome {
    double train_s, objective, recall;
};

double recall_at_k(const std::vector<faiss::Index::idx_t>& got, const std::vector<faiss::Index::idx_t>& truth) {
    int64_t hits = 0;
    for (int64_t q = 0; q < kQueries; q++) {
        std::unordered_set<faiss::Index::idx_t> t(&truth[q * kTopK], &truth[(q + 1) * kTopK]);
        for (int64_t r = 0; r < kTopK; r++) hits += t.count(got[q * kTopK + r]);
    }
    return double(hits) / (kQueries * kTopK);
}

/// Trains index's coarse quantizer with `clus` (as IndexIVF::train does with
/// its own faiss::Clustering), adds the base vectors and searches.
Outcome run(faiss::Clustering& clus, const std::vector<float>& base,
            const std::vector<float>& queries, const std::vector<faiss::Index::idx_t>& truth) {
    faiss::IndexFlatL2 quantizer(kDim);
    faiss::IndexIVFFlat index(&quantizer, kDim, kLists);
    const auto t0 = std::chrono::steady_clock::now();
    clus.train(kBase, base.data(), quantizer);
    quantizer.is_trained = true;
    index.is_trained = true;  // IVF-Flat has nothing else to train
    const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    index.add(kBase, base.data());
    index.nprobe = kProbe;
    std::vector<float> dist(kQueries * kTopK);
    std::vector<faiss::Index::idx_t> ids(kQueries * kTopK);
    index.search(kQueries, queries.data(), kTopK, dist.data(), ids.data());
    return {train_s, clus.iteration_stats.back().obj, recall_at_k(ids, truth)};
}

}  // namespace

int main() {
    std::printf("flashkmeans demo: IVF%lld,Flat on %lld built-in %lld-d vectors, %lld queries, nprobe=%lld\n",
                (long long)kLists, (long long)kBase, (long long)kDim, (long long)kQueries, (long long)kProbe);
    std::printf("engine backend: %s\n\n", flashkmeans::cuda_available() ? "cuda (GPU found)" : "cpu (no GPU found)");
    // Base and queries are drawn from the same distribution; queries are
    // held out from the base.
    auto all = flashkmeans::examples::clustered_vectors(kBase + kQueries, kDim, 2000, 1);
    const std::vector<float> queries(all.begin() + kBase * kDim, all.end());
    all.resize(kBase * kDim);
    const std::vector<float>& base = all;

    faiss::IndexFlatL2 exact(kDim);
    exact.add(kBase, base.data());
    std::vector<float> td(kQueries * kTopK);
    std::vector<faiss::Index::idx_t> truth(kQueries * kTopK);
    exact.search(kQueries, queries.data(), kTopK, td.data(), truth.data());

    faiss::ClusteringParameters cp;
    cp.niter = 10;  // what IndexIVF uses for its coarse quantizer
    faiss::Clustering stock(kDim, kLists, cp);
    flashkmeans::Clustering ours(kDim, kLists, cp);
    const Outcome f = run(stock, base, queries, truth);
    const Outcome o = run(ours, base, queries, truth);

    std::printf("%-22s %12s %16s %12s\n", "trainer", "train (s)", "objective", "recall@10");
    std::printf("%-22s %12.3f %16.6g %12.4f\n", "faiss::Clustering", f.train_s, f.objective, f.recall);
    std::printf("%-22s %12.3f %16.6g %12.4f\n", "flashkmeans::Clustering", o.train_s, o.objective, o.recall);
    std::printf("\nspeed-up %.2fx, objective difference %.2e (relative), recall difference %+.4f\n",
                f.train_s / o.train_s, std::abs(o.objective - f.objective) / f.objective, o.recall - f.recall);
    return 0;
}
