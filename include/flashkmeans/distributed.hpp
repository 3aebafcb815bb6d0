// Data-parallel k-means: the points of the same problems are split over
// several ranks (GPUs of one host, processes on several hosts, or threads),
// every rank assigns its shard, and the partial centroid sums, weights and
// counts are summed over the ranks once per iteration (one all-reduce), so
// every rank ends each iteration with the same centroids.
//
// Three ways in:
//   - fit()/fit_batched() with host data and several visible GPUs
//     (KMeansParams::num_gpus): one process drives them all, one thread per
//     GPU, NCCL when it can be loaded, host-memory reduction otherwise;
//   - fit_distributed() on each rank with a Communicator: NCCL from a unique
//     id the caller distributes (MPI, a file, a socket: anything), or an
//     ncclComm_t the application already has;
//   - make_local_communicators(): R ranks of one process that reduce through
//     host memory (several ranks on one GPU, tests, CPU-only machines).
#pragma once

#include <flashkmeans/array_view.hpp>
#include <flashkmeans/error.hpp>
#include <flashkmeans/params.hpp>

#include <array>
#include <memory>
#include <vector>

namespace flashkmeans {

enum class ReduceType : int { f32, f64, i32, i64 };

/// One rank's handle on a group of ranks. Collectives are blocking for the
/// host and must be called by every rank in the same order. After a
/// collective every rank holds the same bits.
class Communicator {
   public:
    virtual ~Communicator() = default;
    virtual int rank() const = 0;
    virtual int size() const = 0;
    /// True when all_reduce_sum/broadcast accept GPU memory of `gpu_id()`
    /// (NCCL, or a local communicator staging through the host).
    virtual bool accepts_device_memory() const = 0;
    /// The GPU this rank's device buffers live on (-1: host only).
    virtual int gpu_id() const = 0;
    /// Element-wise sum over ranks of `count` elements at `data`, in place.
    /// `on_device`: data is GPU memory of gpu_id() and `stream` (a
    /// cudaStream_t, may be null) orders the operation after the work that
    /// produced it; the call returns when the result is in place.
    virtual void all_reduce_sum(void* data, size_t count, ReduceType type, bool on_device,
                                void* stream) = 0;
    /// `bytes` at `data` of rank `root` copied to every rank.
    virtual void broadcast(void* data, size_t bytes, int root, bool on_device,
                           void* stream) = 0;
    /// Makes every rank of this process blocked in (or later entering) a
    /// collective throw PeerFailure instead of waiting for this one: called
    /// when a rank fails mid-fit, so that its failure does not hang the
    /// others. An aborted communicator stays unusable. (Ranks in other
    /// processes see NCCL's asynchronous error, or are ended by the launcher.)
    virtual void abort() = 0;
};

/// `ranks` communicators of one process, one per thread, summing through
/// host memory in rank order (results identical on every rank and
/// independent of thread timing). GPU buffers are staged through the host,
/// so ranks may share one GPU.
std::vector<std::unique_ptr<Communicator>> make_local_communicators(int ranks);

/// True when this build has NCCL support and libnccl.so.2 could be loaded
/// (FLASHKMEANS_NCCL_LIBRARY names the library file to load, if set).
bool nccl_available();

/// 128 opaque bytes (ncclUniqueId): made once by one rank, sent to all.
using NcclUniqueId = std::array<char, 128>;
NcclUniqueId nccl_unique_id();

/// This process's rank of `nranks`, on GPU `gpu_id`, joined through `id`
/// (ncclCommInitRank). Owns the NCCL communicator.
std::unique_ptr<Communicator> make_nccl_communicator(const NcclUniqueId& id, int nranks,
                                                     int rank, int gpu_id);

/// Wraps an ncclComm_t the application already has (not owned; it must
/// outlive the Communicator). `gpu_id` is the GPU the communicator was made on.
std::unique_ptr<Communicator> wrap_nccl_communicator(void* nccl_comm, int gpu_id);

/// One rank's part of a data-parallel fit. x is this rank's shard: (n_r, d),
/// or (B, n_r, d) for B problems (every rank has the same B, d, k, params and
/// init_centroids; n_r may differ, and concatenating the shards in rank order
/// gives the global data set). weights, when given, are the shard's.
/// Subsampling (max_points_per_centroid) and seeding draw from the global
/// rows exactly as a one-rank fit of the concatenated data would, so the
/// result equals that fit's up to the summation order of the centroid sums
/// (float rounding). Every rank returns the same centroids and statistics.
/// Bad arguments on any rank (shapes, NaN, settings that differ between
/// ranks, k above the total number of points) make every rank throw before
/// any work; a failure during the fit throws on its rank and PeerFailure on
/// the others.
KMeansResult fit_distributed(const ArrayView& x, int64_t k, Communicator& comm,
                             const KMeansParams& params = {}, const ArrayView& weights = {},
                             const ArrayView& init_centroids = {});

}  // namespace flashkmeans
