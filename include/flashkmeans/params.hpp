// Parameters and results of a k-means fit. Field names and defaults follow
// faiss::ClusteringParameters so that a Faiss user finds what they expect.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace flashkmeans {

enum class Metric : int {
    L2 = 0,            ///< squared Euclidean distance, lower is better
    inner_product = 1  ///< dot product, higher is better (cosine: normalise x, spherical=true)
};

/// Arithmetic of the point-centroid cross term. Sums for the centroid update
/// are always float32.
enum class Precision : int {
    automatic = 0,  ///< exact for f32 input, the input's own type for f16/bf16
    exact,          ///< float32 products and sums (FFMA on the GPU)
    tf32,           ///< tensor cores, f32 input rounded to tf32
    fp16,           ///< tensor cores, operands in half precision
    bf16,           ///< tensor cores, operands in bfloat16
};

enum class DeviceChoice : int {
    automatic = 0,  ///< the GPU when one is present and the data allow, else the CPU
    cpu,            ///< BLAS-backed CPU backend
    cuda,           ///< the GPU `gpu_id`; an error when there is none
};

/// Permutation of 0..n-1 drawn from `seed`, as faiss::rand_perm does it.
/// The engine's default reproduces Faiss's sequence bit for bit.
using PermutationFn = std::function<void(int* perm, size_t n, int64_t seed)>;

struct IterationStats {
    double obj = 0;            ///< sum of distances (L2) or similarities (IP) of the assignment
    double time = 0;           ///< seconds since the start of the iterations (cumulative, as Faiss)
    double time_search = 0;    ///< cumulative seconds spent in assignment (GPU: measured on the device)
    double imbalance_factor = 0;
    int nsplit = 0;            ///< empty clusters re-seeded after this iteration
};

struct KMeansParams {
    int niter = 25;
    int nredo = 1;  ///< run this many times from different seeds, keep the best objective
    bool verbose = false;
    bool spherical = false;       ///< L2-normalise centroids after each update
    bool int_centroids = false;   ///< round centroid coordinates to integers
    bool frozen_centroids = false;  ///< provided initial centroids stay fixed
    int min_points_per_centroid = 39;   ///< below this, a warning
    int max_points_per_centroid = 256;  ///< above this, subsample (0: never)
    int64_t seed = 1234;
    /// Stop a redo once |obj_prev - obj| / |obj_prev| <= this (objectives
    /// compared as float32, from the second iteration, every problem of a
    /// batch converged). Negative: always run niter iterations (Faiss 1.7);
    /// 0: stop when the objective repeats exactly (Faiss >= 1.14's default).
    double early_stop_threshold = -1;
    Metric metric = Metric::L2;
    Precision precision = Precision::automatic;
    DeviceChoice device = DeviceChoice::automatic;
    int gpu_id = 0;
    /// GPUs that host-resident data is split over (data-parallel, one thread
    /// and one shard per GPU, sums all-reduced through NCCL each iteration):
    /// 0 = every visible GPU from gpu_id on, 1 = gpu_id only, m = GPUs
    /// gpu_id .. gpu_id + m - 1. GPU arrays are fitted on their own GPU.
    int num_gpus = 0;
    /// Reject NaN/Inf in the input (costs one pass over the data).
    bool check_finite = true;
    /// Device memory the engine may use for the resident part of the data, in
    /// bytes; 0 means most of the free memory.
    size_t device_memory_budget = 0;
    /// GPU: every centroid sum in a fixed order, so that a fit is the same
    /// bit for bit from run to run. The update already sums in a fixed
    /// order (and a fit streamed from host memory equals the in-memory one)
    /// except for small codebooks (d <= 32 and k * (d + 2) * 4 bytes <= 96
    /// KiB, e.g. PQ sub-quantizers), which by default use shared-memory
    /// atomics: ~13% faster a PQ training iteration on the H200, last bits
    /// timing-dependent. true takes the fixed-order path there too. The CPU
    /// backend is deterministic either way.
    bool deterministic = false;
    /// CPU only: call BLAS with Faiss's block shapes and threading instead of
    /// the engine's per-core tiles. BLAS rounds a product differently
    /// depending on where it sits in the call, so only this layout breaks
    /// exact ties between identical centroids (duplicate points) the way
    /// stock Faiss does. About 3x slower on 2 cores; off by default.
    bool faiss_blas_blocking = false;
    /// Permutation used for subsampling and seeding; empty = Faiss-compatible default.
    PermutationFn permutation;
    /// Called after each iteration with (redo, iteration, stats of problem 0).
    /// Throwing from it stops the fit (Python uses this for Ctrl-C).
    std::function<void(int, int, const IterationStats&)> on_iteration;
};

/// Result of a fit of B independent problems (B = 1 for `fit`).
struct KMeansResult {
    int64_t batch = 1, k = 0, d = 0;
    std::vector<float> centroids;  ///< (batch, k, d), row-major
    /// Per problem, one entry per iteration of the kept redo: stats[b][it].
    std::vector<std::vector<IterationStats>> iteration_stats;
    std::vector<double> obj;  ///< final objective of each problem
    const char* backend = "";  ///< "cpu" or "cuda"
};

}  // namespace flashkmeans
