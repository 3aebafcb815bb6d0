#include "lloyd.hpp"

#include "random.hpp"
#include "split_clusters.hpp"

#include <flashkmeans/distributed.hpp>
#include <flashkmeans/error.hpp>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

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

/// Which points of the fit this rank holds. Point i of the fit is input row
/// rows[i] of the global data, or row i (i < n) when `rows` is empty; this
/// rank holds input rows [off, off + count).
class PointOwnership {
   public:
    PointOwnership(const std::vector<int>& rows, int64_t n, int64_t off, int64_t count,
                   bool one_rank)
        : off_(off), end_(std::min(n, off + count)) {
        if (rows.empty()) {
            // Fit points are the first n rows: all local rows, or a prefix.
            if (off + count > n)
                for (int64_t i = off; i < end_; i++) local_rows_.push_back(int(i - off));
            local_count_ = std::max<int64_t>(0, end_ - off);
            return;
        }
        local_count_ = int64_t(rows.size());
        if (one_rank) {  // every point, in fit order
            local_rows_ = rows;
            identity_ = true;
            return;
        }
        local_of_.assign(rows.size(), -1);
        for (size_t i = 0; i < rows.size(); i++)
            if (rows[i] >= off && rows[i] < off + count) {
                local_of_[i] = int(local_rows_.size());
                local_rows_.push_back(int(rows[i] - off));
            }
        local_count_ = int64_t(local_rows_.size());
    }
    /// Rows of this rank's input to load, in fit order (empty: all of them).
    const std::vector<int>& local_rows() const { return local_rows_; }
    int64_t local_count() const { return local_count_; }
    /// This rank's index of fit point i, or -1.
    int64_t local(int64_t i) const {
        if (identity_) return i;
        if (!local_of_.empty()) return local_of_[size_t(i)];
        return i >= off_ && i < end_ ? i - off_ : -1;
    }

   private:
    int64_t off_, end_, local_count_ = 0;
    bool identity_ = false;
    std::vector<int> local_rows_;
    std::vector<int> local_of_;  // subsampled data-parallel fits only
};

/// Fit points ids[0..count) of every problem, as float32, into out (B, stride
/// floats apart, count x d each). Data-parallel: each rank copies the points it
/// holds into zeros and one sum over the ranks assembles them everywhere.
void gather_points(const Backend& be, const PointOwnership& own, Communicator* comm,
                   int64_t B, const int* ids, int64_t count, int64_t d, float* out,
                   int64_t stride) {
    if (count == 0) return;
    if (!comm) {
        for (int64_t b = 0; b < B; b++) be.gather_rows(b, ids, count, out + b * stride);
        return;
    }
    std::vector<int> mine;
    std::vector<int64_t> pos;
    for (int64_t i = 0; i < count; i++) {
        const int64_t l = own.local(ids[i]);
        if (l < 0) continue;
        mine.push_back(int(l));
        pos.push_back(i);
    }
    std::vector<float> all(size_t(B * count * d), 0.f), got(mine.size() * size_t(d));
    for (int64_t b = 0; b < B; b++) {
        be.gather_rows(b, mine.data(), int64_t(mine.size()), got.data());
        for (size_t m = 0; m < mine.size(); m++)
            std::memcpy(&all[size_t((b * count + pos[m]) * d)], &got[m * size_t(d)],
                        sizeof(float) * size_t(d));
    }
    comm->all_reduce_sum(all.data(), all.size(), ReduceType::f32, false, nullptr);
    for (int64_t b = 0; b < B; b++)
        std::memcpy(out + b * stride, &all[size_t(b * count * d)], sizeof(float) * size_t(count * d));
}

}  // namespace

KMeansResult run_lloyd(Backend& backend, const LloydInputs& in,
                       const KMeansParams& p) {
    const bool batched = in.x.ndim == 3;
    const int64_t B = batched ? in.x.shape[0] : 1;
    const int64_t N_local = in.x.shape[batched ? 1 : 0];
    const int64_t d = in.x.shape[batched ? 2 : 1];
    const int64_t k = in.k;
    Communicator* const comm = in.comm;
    // Data-parallel fits subsample and seed from the global rows, as a
    // one-rank fit of all of them would.
    const int64_t N = comm ? in.global_rows : N_local;
    const bool talk = !comm || comm->rank() == 0;  // verbose output from rank 0 only
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
        if (p.verbose && talk)
            std::printf("Sampling a subset of %" PRId64 " / %" PRId64 " for training\n", n, N);
        rows.resize(N);
        perm_fn(rows.data(), N, p.seed);
        rows.resize(n);
    } else if (N < k * p.min_points_per_centroid && talk) {
        std::fprintf(stderr,
                     "WARNING clustering %" PRId64 " points to %" PRId64
                     " centroids: please provide at least %" PRId64 " training points\n",
                     N, k, k * p.min_points_per_centroid);
    }

    std::vector<float> centroids(B * k * d);
    if (n == k) {
        // As Faiss: the centroids are the first k input rows (of the input,
        // not of the subsample), and one placeholder iteration is recorded.
        if (p.verbose && talk)
            std::printf("Number of training points (%" PRId64 ") same as number of clusters, just copying\n", n);
        std::vector<int> first(k);
        for (int64_t i = 0; i < k; i++) first[i] = int(i);
        const PointOwnership own({}, k, in.row_offset, N_local, !comm);
        backend.load(in.x, in.weights, own.local_rows(), {B, own.local_count(), d, k}, p.metric,
                     p.precision);
        gather_points(backend, own, comm, B, first.data(), k, d, centroids.data(), k * d);
        for (int64_t b = 0; b < B; b++) res.iteration_stats[b].push_back({0.0, 0.0, 0.0, 1.0, 0});
        res.centroids = std::move(centroids);
        return res;
    }

    if (p.verbose && talk)
        std::printf("Clustering %" PRId64 " points in %" PRId64 "D to %" PRId64
                    " clusters, redo %d times, %d iterations (%" PRId64 " problems, %s%s)\n",
                    n, d, k, p.nredo, p.niter, B, backend.name(),
                    comm ? (", " + std::to_string(comm->size()) + " ranks").c_str() : "");

    const PointOwnership own(rows, n, in.row_offset, N_local, !comm);
    backend.load(in.x, in.weights, own.local_rows(), {B, own.local_count(), d, k}, p.metric,
                 p.precision);

    const int64_t k_input = copy_init_centroids(in.init_centroids, B, k, d, centroids);
    const int64_t k_frozen = p.frozen_centroids ? k_input : 0;
    if (p.verbose && talk && k_input > 0)
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
        if (p.verbose && talk && p.nredo > 1) std::printf("Outer iteration %d / %d\n", redo, p.nredo);

        // Seed the non-provided centroids from the data. As in Faiss, the
        // provided ones are only copied before the first redo; later redos
        // start from where the previous one left them.
        perm_fn(perm.data(), n, p.seed + 1 + redo * 15486557LL);
        gather_points(backend, own, comm, B, perm.data() + k_input, k - k_input, d,
                      &centroids[k_input * d], k * d);
        backend.set_centroids(centroids.data());
        backend.post_process(p.spherical, p.int_centroids);  // neither: a no-op

        for (int it = 0; it < p.niter; it++) {
            const auto ts = std::chrono::steady_clock::now();
            backend.assign();  // on the GPU: enqueued only, the update waits for it
            const double t_host = seconds_since(ts);

            backend.update(k_frozen, w.data(), cnt.data(), comm);
            // After the update, which waited for the assignment: reading the
            // objective costs no wait of its own. The update does not use it,
            // so its sum over the ranks can come after the update's.
            backend.objective(obj.data());
            const double t_dev = backend.assign_seconds();
            t_search += t_dev >= 0 ? t_dev : t_host;
            if (comm) comm->all_reduce_sum(obj.data(), size_t(B), ReduceType::f64, false, nullptr);

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
                // Every rank split the same clusters the same way (same w,
                // same centroids); rank 0's centroids are the ones kept.
                if (comm)
                    comm->broadcast(centroids.data(), centroids.size() * sizeof(float), 0, false,
                                    nullptr);
                backend.set_centroids(centroids.data());
            }

            const double elapsed = seconds_since(t0);
            for (int64_t b = 0; b < B; b++)
                stats[b].push_back({obj[b], elapsed, t_search,
                                    imbalance_factor(&cnt[b * k], k), nsplit[b]});
            const IterationStats& s0 = stats[0].back();
            if (p.verbose && talk) {
                std::printf("  Iteration %d (%.2f s, search %.2f s): objective=%g imbalance=%.3f nsplit=%d       \r",
                            it, s0.time, s0.time_search, s0.obj, s0.imbalance_factor, s0.nsplit);
                std::fflush(stdout);
            }
            backend.post_process(p.spherical, p.int_centroids);  // neither: a no-op
            if (p.on_iteration) p.on_iteration(redo, it, s0);
            if (it > 0 && p.early_stop_threshold >= 0 && converged(stats, p.early_stop_threshold)) {
                if (p.verbose && talk) std::printf("\n  Converged at iteration %d: objective did not change", it);
                break;
            }
        }
        if (p.verbose && talk) std::printf("\n");

        backend.get_centroids(centroids.data());
        if (p.nredo > 1) {
            if (best_centroids.empty()) best_centroids = centroids;
            for (int64_t b = 0; b < B; b++) {
                if (!better(obj[b], best_obj[b], p.metric)) continue;
                if (p.verbose && talk && B == 1) std::printf("Objective improved: keep new clusters\n");
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
