#include "lloyd.hpp"

#include "random.hpp"
#include "split_clusters.hpp"

#include <flashkmeans/error.hpp>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace flashkmeans::detail {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// Faiss's imbalance factor: k * sum(c_j^2) / (sum c_j)^2 over point counts.
double imbalance_factor(const int64_t* cnt, int64_t k) {
    double tot = 0, uf = 0;
    for (int64_t j = 0; j < k; j++) {
        tot += cnt[j];
        uf += double(cnt[j]) * cnt[j];
    }
    return uf * k / (tot * tot);
}

/// Every problem's last two objectives (as float32, as Faiss stores them)
/// differ by at most `threshold` relative to the previous one.
bool converged(const std::vector<std::vector<IterationStats>>& stats, double threshold) {
    for (const auto& s : stats) {
        const float prev = float(s[s.size() - 2].obj), cur = float(s.back().obj);
        if (prev == 0) return false;
        if (std::abs(double(prev) - double(cur)) / std::abs(double(prev)) > threshold) return false;
    }
    return true;
}

bool better(double a, double b, Metric m) {
    return m == Metric::inner_product ? a > b : a < b;
}

/// The first k0 centroids of every problem come from init (B, k0, d) (or
/// (k0, d) when B = 1); returns k0.
int64_t copy_init_centroids(const ArrayView& init, int64_t B, int64_t k,
                            int64_t d, std::vector<float>& centroids) {
    if (init.empty()) return 0;
    const int64_t k0 = init.shape[init.ndim - 2];
    auto src = static_cast<const float*>(init.data);
    for (int64_t b = 0; b < B; b++)
        std::memcpy(&centroids[b * k * d], src + b * k0 * d, sizeof(float) * k0 * d);
    return k0;
}

}  // namespace

KMeansResult run_lloyd(Backend& backend, const LloydInputs& in,
                       const KMeansParams& p) {
    const bool batched = in.x.ndim == 3;
    const int64_t B = batched ? in.x.shape[0] : 1;
    const int64_t N = in.x.shape[batched ? 1 : 0];
    const int64_t d = in.x.shape[batched ? 2 : 1];
    const int64_t k = in.k;
    const PermutationFn perm_fn =
            p.permutation ? p.permutation : PermutationFn(faiss_compatible_rand_perm);

    KMeansResult res;
    res.batch = B;
    res.k = k;
    res.d = d;
    res.backend = backend.name();
    res.iteration_stats.assign(B, {});
    res.obj.assign(B, 0.0);

    // Subsampling: the first k * max_points_per_centroid of a seeded
    // permutation, the same rows for every problem of a batch.
    std::vector<int> rows;
    int64_t n = N;
    if (p.max_points_per_centroid > 0 && N > k * p.max_points_per_centroid) {
        n = k * p.max_points_per_centroid;
        if (p.verbose)
            std::printf("Sampling a subset of %" PRId64 " / %" PRId64 " for training\n", n, N);
        rows.resize(N);
        perm_fn(rows.data(), N, p.seed);
        rows.resize(n);
    } else if (N < k * p.min_points_per_centroid) {
        std::fprintf(stderr,
                     "WARNING clustering %" PRId64 " points to %" PRId64
                     " centroids: please provide at least %" PRId64 " training points\n",
                     N, k, k * p.min_points_per_centroid);
    }

    std::vector<float> centroids(B * k * d);
    if (n == k) {
        // As Faiss: the centroids are the first k input rows (of the input,
        // not of the subsample), and one placeholder iteration is recorded.
        if (p.verbose)
            std::printf("Number of training points (%" PRId64 ") same as number of clusters, just copying\n", n);
        std::vector<int> first(k);
        for (int64_t i = 0; i < k; i++) first[i] = int(i);
        backend.load(in.x, in.weights, first, {B, k, d, k}, p.metric, p.precision);
        for (int64_t b = 0; b < B; b++) {
            backend.gather_rows(b, first.data(), k, &centroids[b * k * d]);
            res.iteration_stats[b].push_back({0.0, 0.0, 0.0, 1.0, 0});
        }
        res.centroids = std::move(centroids);
        return res;
    }

    if (p.verbose)
        std::printf("Clustering %" PRId64 " points in %" PRId64 "D to %" PRId64
                    " clusters, redo %d times, %d iterations (%" PRId64 " problems, %s)\n",
                    n, d, k, p.nredo, p.niter, B, backend.name());

    backend.load(in.x, in.weights, rows, {B, n, d, k}, p.metric, p.precision);

    const int64_t k_input = copy_init_centroids(in.init_centroids, B, k, d, centroids);
    const int64_t k_frozen = p.frozen_centroids ? k_input : 0;
    if (p.verbose && k_input > 0)
        std::printf("  Using %" PRId64 " centroids provided as input (%sfrozen)\n",
                    k_input, p.frozen_centroids ? "" : "not ");

    std::vector<double> obj(B), best_obj(B);
    for (int64_t b = 0; b < B; b++)
        best_obj[b] = p.metric == Metric::inner_product ? -HUGE_VAL : HUGE_VAL;
    std::vector<float> best_centroids;
    std::vector<std::vector<IterationStats>> stats(B), best_stats(B);
    std::vector<float> w(B * k);
    std::vector<int64_t> cnt(B * k);
    std::vector<int> perm(n);

    const auto t0 = std::chrono::steady_clock::now();
    double t_search = 0;
    for (int redo = 0; redo < p.nredo; redo++) {
        if (p.verbose && p.nredo > 1) std::printf("Outer iteration %d / %d\n", redo, p.nredo);

        // Seed the non-provided centroids from the data. As in Faiss, the
        // provided ones are only copied before the first redo; later redos
        // start from where the previous one left them.
        perm_fn(perm.data(), n, p.seed + 1 + redo * 15486557LL);
        for (int64_t b = 0; b < B; b++)
            backend.gather_rows(b, perm.data() + k_input, k - k_input,
                                &centroids[(b * k + k_input) * d]);
        backend.set_centroids(centroids.data());
        backend.post_process(p.spherical, p.int_centroids);

        for (int it = 0; it < p.niter; it++) {
            const auto ts = std::chrono::steady_clock::now();
            backend.assign(obj.data());
            t_search += seconds_since(ts);

            backend.update(k_frozen, w.data(), cnt.data());

            // Empty clusters are rare: fetch the centroids only when needed.
            std::vector<int> nsplit(B, 0);
            bool any_empty = false;
            for (int64_t j = 0; j < B * k && !any_empty; j++)
                any_empty = (j % k) >= k_frozen && w[j] == 0;
            if (any_empty) {
                backend.get_centroids(centroids.data());
                for (int64_t b = 0; b < B; b++)
                    nsplit[b] = split_empty_clusters(d, k, n, k_frozen, &w[b * k],
                                                     &centroids[b * k * d]);
                backend.set_centroids(centroids.data());
            }

            const double elapsed = seconds_since(t0);
            for (int64_t b = 0; b < B; b++)
                stats[b].push_back({obj[b], elapsed, t_search,
                                    imbalance_factor(&cnt[b * k], k), nsplit[b]});
            const IterationStats& s0 = stats[0].back();
            if (p.verbose) {
                std::printf("  Iteration %d (%.2f s, search %.2f s): objective=%g imbalance=%.3f nsplit=%d       \r",
                            it, s0.time, s0.time_search, s0.obj, s0.imbalance_factor, s0.nsplit);
                std::fflush(stdout);
            }
            backend.post_process(p.spherical, p.int_centroids);
            if (p.on_iteration) p.on_iteration(redo, it, s0);
            if (it > 0 && p.early_stop_threshold >= 0 && converged(stats, p.early_stop_threshold)) {
                if (p.verbose) std::printf("\n  Converged at iteration %d: objective did not change", it);
                break;
            }
        }
        if (p.verbose) std::printf("\n");

        backend.get_centroids(centroids.data());
        if (p.nredo > 1) {
            if (best_centroids.empty()) best_centroids = centroids;
            for (int64_t b = 0; b < B; b++) {
                if (!better(obj[b], best_obj[b], p.metric)) continue;
                if (p.verbose && B == 1) std::printf("Objective improved: keep new clusters\n");
                std::copy(&centroids[b * k * d], &centroids[(b + 1) * k * d], &best_centroids[b * k * d]);
                best_stats[b] = stats[b];  // as Faiss: the stats of every redo so far
                best_obj[b] = obj[b];
            }
        }
    }

    if (p.nredo > 1) {
        res.centroids = std::move(best_centroids);
        res.iteration_stats = std::move(best_stats);
        res.obj = best_obj;
    } else {
        res.centroids = std::move(centroids);
        res.iteration_stats = std::move(stats);
        res.obj = obj;
    }
    return res;
}

}  // namespace flashkmeans::detail
