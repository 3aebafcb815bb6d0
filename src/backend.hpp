// The interface the one Lloyd driver (lloyd.cpp) is written against. A backend
// owns the data of B independent problems (each n points of dimension d) and
// their current centroids, wherever it keeps them (host memory, GPU memory),
// and implements the three data-sized steps: assignment, centroid update and
// centroid post-processing. Everything of size O(k) or smaller (splitting empty
// clusters, statistics, keeping the best redo) is the driver's.
#pragma once

#include <flashkmeans/array_view.hpp>
#include <flashkmeans/params.hpp>

namespace flashkmeans {
class Communicator;
}

#include <cstdint>
#include <memory>
#include <vector>

namespace flashkmeans::detail {

struct ProblemShape {
    int64_t batch = 1;  ///< B
    int64_t n = 0;      ///< points per problem (after subsampling)
    int64_t d = 0;
    int64_t k = 0;
};

class Backend {
   public:
    virtual ~Backend() = default;
    virtual const char* name() const = 0;

    /// Take the problems' data. x is (B, N, d) (or (N, d) when B = 1);
    /// `rows`, when non-empty, selects the n rows of each problem to cluster
    /// (subsampling), otherwise all N are used. weights, when non-empty, is
    /// (B, N) and is selected by `rows` the same way. Norms of x are computed here,
    /// once per fit.
    virtual void load(const ArrayView& x, const ArrayView& weights,
                      const std::vector<int>& rows, const ProblemShape& shape,
                      Metric metric, Precision precision) = 0;

    /// Copy rows `ids` (count k_ids) of the loaded data of problem b, as
    /// float32, to host memory `out` (k_ids x d). Used for seeding.
    virtual void gather_rows(int64_t b, const int* ids, int64_t k_ids,
                             float* out) const = 0;

    /// Replace all B x k centroids with `host` (B, k, d) float32.
    virtual void set_centroids(const float* host) = 0;
    virtual void get_centroids(float* host) const = 0;

    /// Assign every point to its nearest centroid (the assignment and its
    /// objective stay in the backend). May return before the work is done
    /// (GPU): the driver reads the objective with objective() after update(),
    /// whose results it waits for anyway, so that no wait of its own
    /// separates the assignment from the update.
    virtual void assign() = 0;

    /// The objective of the last assign() for each problem, to obj[b]: the sum
    /// over this backend's points of the distance (L2: ||x-c||^2 clamped at 0,
    /// as Faiss) or of the inner product (IP). Waits for the assignment when
    /// it is still running (no update() since).
    virtual void objective(double* obj) = 0;

    /// Seconds the last assignment ran, when the backend measures it itself
    /// (GPU: events around the kernels, read by objective()); negative when
    /// the driver's host clock around assign() is the measure (CPU).
    virtual double assign_seconds() const { return -1; }

    /// New centroids from the last assignment: for each problem and cluster
    /// j >= k_frozen, weight sum w[b][j] and point count cnt[b][j] are
    /// written to host memory; centroid j becomes the weighted mean of its
    /// points when w > 0 and is left unchanged when w == 0 (the driver splits
    /// those). Frozen centroids (j < k_frozen) are untouched, their w and cnt
    /// are still reported.
    /// comm (data-parallel fits): the per-cluster sums, weights and counts of
    /// this rank's points are summed over the ranks before the division, so
    /// w, cnt and the centroids are those of all ranks' points together.
    virtual void update(int64_t k_frozen, float* w, int64_t* cnt,
                        Communicator* comm = nullptr) = 0;

    /// spherical: L2-normalise each centroid; int_centroids: round to integers.
    /// Neither: nothing, not even a wait.
    virtual void post_process(bool spherical, bool int_centroids) = 0;

    /// The last assignment, (B, n) on the host.
    virtual void get_labels(int64_t* host) const = 0;
};

/// faiss_blas_blocking: see KMeansParams::faiss_blas_blocking.
std::unique_ptr<Backend> make_cpu_backend(bool faiss_blas_blocking = false);

/// Top-k search of x (n, d) against centroids c (k, d) on the CPU; labels and
/// distances are (n, topk) host arrays (distances may be null).
void cpu_search(const ArrayView& x, const ArrayView& c, int64_t topk,
                Metric metric, int64_t* labels, float* distances);
/// The same on the GPU. x and c may be host or device arrays; labels and
/// distances live where x lives. Throws when the build has no CUDA backend.
void cuda_search(const ArrayView& x, const ArrayView& c, int64_t topk,
                 Metric metric, Precision precision, int gpu_id,
                 int64_t* labels, float* distances);
/// Number of NaN/Inf values in a GPU array (1-, 2- or 3-dimensional, unit
/// stride along its last dimension). Throws without the CUDA backend.
int64_t cuda_count_nonfinite(const ArrayView& x);
/// Number of visible CUDA devices (0 without the CUDA backend or a GPU).
int cuda_device_count();
/// Copies `bytes` between host memory and GPU memory (to_device: host `src`
/// to device `dst`), ordered on `stream` (a cudaStream_t, may be null), and
/// waits for it. Throws without the CUDA backend.
void cuda_copy(void* dst, const void* src, size_t bytes, bool to_device, void* stream);
/// Null when this build has no CUDA backend.
/// deterministic: see KMeansParams::deterministic.
std::unique_ptr<Backend> make_cuda_backend(int gpu_id, size_t device_memory_budget,
                                           bool deterministic = false);

}  // namespace flashkmeans::detail
