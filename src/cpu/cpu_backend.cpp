// The CPU backend: BLAS cross terms fused with the argmin (block_knn), and a
// centroid update that sums each cluster's points in input order, as Faiss's
// compute_centroids does, so that results agree to the last bit where the
// arithmetic allows.
#include "backend.hpp"

#include <flashkmeans/distributed.hpp>

#include "cpu/block_knn.hpp"
#include "cpu/dense_block.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace flashkmeans::detail {
namespace {

class CpuBackend final : public Backend {
   public:
    explicit CpuBackend(bool faiss_blas_blocking) : faiss_blocking_(faiss_blas_blocking) {}
    const char* name() const override { return "cpu"; }

    void load(const ArrayView& x, const ArrayView& weights,
              const std::vector<int>& rows, const ProblemShape& shape,
              Metric metric, Precision) override {
        shape_ = shape;
        metric_ = metric;
        const int64_t B = shape.batch, n = shape.n, d = shape.d;
        storage_.assign(B, {});
        data_.assign(B, nullptr);
        xnorm_.assign(B * n, 0.f);
        for (int64_t b = 0; b < B; b++) {
            data_[b] = packed_f32_rows(x, b, rows, storage_[b]);
            if (metric == Metric::L2) row_norms(data_[b], n, d, &xnorm_[b * n]);
        }
        weights_.clear();
        if (!weights.empty()) {
            // Weights are (N) or (B, N) f32 host arrays, selected like the rows.
            const int64_t N = weights.shape[weights.ndim - 1];
            auto w = static_cast<const float*>(weights.data);
            weights_.resize(B * n);
            for (int64_t b = 0; b < B; b++)
                for (int64_t i = 0; i < n; i++)
                    weights_[b * n + i] = w[b * N + (rows.empty() ? i : rows[i])];
        }
        centroids_.assign(B * shape.k * d, 0.f);
        cnorm_.assign(B * shape.k, 0.f);
        labels_.assign(B * n, -1);
        dist_.assign(B * n, 0.f);
        obj_.assign(size_t(B), 0.0);
    }

    void gather_rows(int64_t b, const int* ids, int64_t count, float* out) const override {
        const int64_t d = shape_.d;
        for (int64_t i = 0; i < count; i++)
            std::memcpy(out + i * d, data_[b] + int64_t(ids[i]) * d, sizeof(float) * d);
    }

    void set_centroids(const float* host) override {
        std::memcpy(centroids_.data(), host, sizeof(float) * centroids_.size());
    }
    void get_centroids(float* host) const override {
        std::memcpy(host, centroids_.data(), sizeof(float) * centroids_.size());
    }

    void assign() override {
        const int64_t n = shape_.n, k = shape_.k, d = shape_.d;
        for (int64_t b = 0; b < shape_.batch; b++) {
            const float* c = &centroids_[b * k * d];
            if (metric_ == Metric::L2) row_norms(c, k, d, &cnorm_[b * k]);
            block_knn(data_[b], &xnorm_[b * n], n, c, &cnorm_[b * k], k, d,
                      metric_, 1, &labels_[b * n], &dist_[b * n], faiss_blocking_);
            double s = 0;
            for (int64_t i = 0; i < n; i++) s += dist_[b * n + i];
            obj_[b] = s;
        }
    }

    void objective(double* obj) override { std::copy(obj_.begin(), obj_.end(), obj); }

    void update(int64_t k_frozen, float* w, int64_t* cnt, Communicator* comm) override {
        const int64_t n = shape_.n, k = shape_.k, d = shape_.d, B = shape_.batch;
        const int64_t kf = std::max<int64_t>(0, k_frozen);
        // Sums of the non-frozen clusters of every problem: (B, k - kf, d).
        std::vector<float> sums(size_t(B * (k - kf) * d), 0.f);
        for (int64_t b = 0; b < B; b++) {
            const int64_t* lab = &labels_[b * n];
            const float* x = data_[b];
            const float* wt = weights_.empty() ? nullptr : &weights_[b * n];
            float* wb = w + b * k;
            int64_t* cb = cnt + b * k;
            std::memset(wb, 0, sizeof(float) * k);
            std::memset(cb, 0, sizeof(int64_t) * k);
            // Counts and weight sums in input order (Faiss's order).
            // Points whose distances are all NaN (non-finite input with
            // check_finite off) have label -1 and are left out.
            for (int64_t i = 0; i < n; i++) {
                if (lab[i] < 0) continue;
                cb[lab[i]]++;
                wb[lab[i]] += wt ? wt[i] : 1.0f;
            }
            float* sb = &sums[size_t(b * (k - kf) * d)];
            // Each thread owns a range of clusters and scans the labels in
            // order: no atomics, and per-cluster sums in input order.
#pragma omp parallel
            {
                const int nt = omp_get_num_threads(), rank = omp_get_thread_num();
                const int64_t c0 = kf + (k - kf) * rank / nt;
                const int64_t c1 = kf + (k - kf) * (rank + 1) / nt;
                for (int64_t i = 0; i < n; i++) {
                    const int64_t j = lab[i];
                    if (j < c0 || j >= c1) continue;
                    float* s = &sb[(j - kf) * d];
                    const float* xi = x + i * d;
                    if (wt) {
                        const float wi = wt[i];
                        for (int64_t t = 0; t < d; t++) s[t] += xi[t] * wi;
                    } else {
                        for (int64_t t = 0; t < d; t++) s[t] += xi[t];
                    }
                }
            }
        }
        if (comm) {  // all ranks' points: one sum per array
            comm->all_reduce_sum(sums.data(), sums.size(), ReduceType::f32, false, nullptr);
            comm->all_reduce_sum(w, size_t(B * k), ReduceType::f32, false, nullptr);
            comm->all_reduce_sum(cnt, size_t(B * k), ReduceType::i64, false, nullptr);
        }
        for (int64_t b = 0; b < B; b++) {
            const float* wb = w + b * k;
            const float* sb = &sums[size_t(b * (k - kf) * d)];
            float* c = &centroids_[b * k * d];
#pragma omp parallel for
            for (int64_t j = kf; j < k; j++) {
                if (wb[j] == 0) continue;  // empty: left for the driver to split
                const float inv = 1 / wb[j];
                const float* s = &sb[(j - kf) * d];
                for (int64_t t = 0; t < d; t++) c[j * d + t] = s[t] * inv;
            }
        }
    }

    void post_process(bool spherical, bool int_centroids) override {
        const int64_t rows = shape_.batch * shape_.k, d = shape_.d;
        if (spherical) {
#pragma omp parallel for if (rows * d > 65536)
            for (int64_t i = 0; i < rows; i++) {
                float* c = &centroids_[i * d];
                double acc = 0;  // as Faiss's fvec_renorm_L2
                for (int64_t t = 0; t < d; t++) acc += c[t] * c[t];
                const float nr = float(acc);
                if (nr > 0) {
                    const float inv = 1.0 / std::sqrt(nr);
                    for (int64_t t = 0; t < d; t++) c[t] *= inv;
                }
            }
        }
        if (int_centroids)
            for (float& v : centroids_) v = std::round(v);
    }

    void get_labels(int64_t* host) const override {
        std::memcpy(host, labels_.data(), sizeof(int64_t) * labels_.size());
    }

   private:
    bool faiss_blocking_;
    ProblemShape shape_;
    Metric metric_ = Metric::L2;
    std::vector<std::vector<float>> storage_;  // converted/subsampled copies
    std::vector<const float*> data_;           // (n, d) packed f32 per problem
    std::vector<float> xnorm_, weights_, centroids_, cnorm_, dist_;
    std::vector<int64_t> labels_;
    std::vector<double> obj_;  // of the last assign, per problem
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(bool faiss_blas_blocking) {
    return std::make_unique<CpuBackend>(faiss_blas_blocking);
}

}  // namespace flashkmeans::detail
