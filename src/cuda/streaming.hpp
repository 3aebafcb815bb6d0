// Fits whose points do not fit the device memory budget: the first rows of
// every problem stay resident, the rest pass through the device in chunks
// each iteration, copied on their own stream while the compute stream works
// on other rows. Of those chunks, as many as the budget allows are copied
// once and then kept on the device ("cached"); the others are streamed
// through two device slots every iteration. Cached chunks are spread evenly
// among the streamed ones, so that the copies overlap computation over the
// whole pass instead of only at its start (the resident rows are processed
// first, then the chunks in order).
//
// Device memory of a streamed fit (B problems, n points, k centroids, d dims,
// s bytes an element of the storage type, ld = d rounded up to 16 bytes,
// r resident rows, C rows a chunk and R rows in cached chunks, per problem):
//   labels, weights (all rows)   B n (4 + 4 if weighted)
//   resident rows + their norms  B r (ld s + 4)
//   cached chunks                B R ld s
//   two chunk slots              2 B C ld s    (0 when nothing is streamed)
//   two norm buffers             2 B C 4       (0 when r = n)
//   sorting one segment          B C 16 + CUB temporary storage for B C pairs
//   objective partials           B 8 (n / 128 + segments)
//   centroids                    B k (d 4 + ld s + d 4 + 12)
// The split between resident rows and cached chunks is a fixed rule of r
// and C (cached_chunk_count), so that the plan can size every candidate r;
// the RowStreamer takes the plan's counts rather than applying the rule
// again. Work goes in segments of at most C rows (the resident rows too, so
// that the update's sort buffers are those of one chunk): per segment,
// FlashAssign then the sort-inverse sums added to the running totals.
//
// Defining FLASHKMEANS_STREAMING_INFO_ONLY before including this header gives
// StreamingPlanInfo and StreamingInfo alone (plain C++, no CUDA headers): the
// benchmarks read the plan of a fit through them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace flashkmeans::detail {

/// What a CUDA fit keeps where; exposed to tests and benchmarks through a
/// dynamic_cast of the backend to StreamingInfo.
struct StreamingPlanInfo {
    bool streaming = false;       ///< false: all rows resident, one segment
    int64_t resident_rows = 0;    ///< first rows of each problem kept on the device
    int64_t chunk_rows = 0;       ///< rows of each problem per chunk / segment
    int64_t chunks = 0;           ///< chunks per iteration after the resident rows
    int64_t cached_chunks = 0;    ///< of those, kept on the device after their first copy
    size_t device_bytes = 0;      ///< device memory of the plan (formula above)
    size_t available_bytes = 0;   ///< what the plan was made to fit
    bool pinned_source = false;   ///< chunks copied straight from the user's memory (pinned or registered)
    bool registered_source = false;  ///< the fit page-locked the streamed range itself
    /// The last complete pass over the chunks (call after the fit's stream
    /// was synchronised): bytes copied host->device; the copy engine's time,
    /// summed over the chunk copies (each between its own events, recorded on
    /// the copy stream after the copy's waits for a free slot), so that
    /// bytes / copy_ms is the transfer rate; and the span from the first
    /// copy's start to the last copy's end, which also counts the time the
    /// copy stream waited for slots to be freed or chunks to be packed.
    double last_pass_bytes = 0, last_pass_copy_ms = 0, last_pass_span_ms = 0;
    /// Copies in that pass, and the host milliseconds the fit's thread spent
    /// waiting for packed chunks (staged path only).
    int64_t last_pass_copies = 0;
    double last_pass_pack_wait_ms = 0;
};

class StreamingInfo {
   public:
    virtual ~StreamingInfo() = default;
    virtual StreamingPlanInfo streaming_info() const = 0;
};

/// Rows in `cached` of the `chunk`-row chunks of a `range` of rows (a plan's
/// cached rows: range = n - resident_rows).
int64_t cached_rows_of(int64_t range, int64_t chunk, int64_t cached);

}  // namespace flashkmeans::detail

#ifndef FLASHKMEANS_STREAMING_INFO_ONLY

#include <cuda_runtime.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "cuda_check.hpp"
#include "device_data.hpp"

namespace flashkmeans::detail {

/// Sizes that decide a streamed plan.
struct StreamShape {
    int64_t batch = 1, n = 0, d = 0, k = 0;
    int64_t row_bytes = 0;      ///< ld * s
    bool weighted = false;
    size_t centroid_bytes = 0;  ///< B k (d 4 + ld s + d 4 + 12)
};

/// Chunks kept on the device after their first copy when `resident` rows
/// are resident and the rest, [resident, n), goes in chunks of `chunk` rows:
/// 15 rows in cached chunks for each resident row, in whole chunks, at most
/// all of them. (The resident rows, processed first, give the copy stream
/// its head start; the cached chunks keep the GPU busy between streamed
/// ones.)
int64_t cached_chunk_count(int64_t n, int64_t resident, int64_t chunk);
/// Rows of every problem in those cached chunks.
int64_t cached_rows(int64_t n, int64_t resident, int64_t chunk);
/// Whether chunk j of `chunks`, `cached` of them kept on the device, is
/// streamed every iteration: streamed chunks spread evenly, the last chunk
/// (the partial one) streamed, the first cached unless none is.
inline bool chunk_streamed(int64_t j, int64_t chunks, int64_t cached) {
    const int64_t t = chunks - cached;
    return (j + 1) * t / chunks > j * t / chunks;
}

/// Device bytes of a streamed fit keeping `resident` rows (and the cached
/// chunks that go with them) with chunks of `chunk` rows (the formula at the
/// top of this file).
size_t streaming_bytes(const StreamShape& s, int64_t resident, int64_t chunk);

/// The largest resident part (and cached chunks) that fits `avail` bytes,
/// with chunks of at most 256 MiB (smaller when the budget is small: an
/// eighth of what is left after the fixed buffers). Throws OutOfMemoryError,
/// naming the bytes needed and available, when even streaming everything in
/// minimal chunks does not fit.
StreamingPlanInfo plan_streaming(const StreamShape& s, size_t avail);

/// The rows [plan.resident_rows, n) of every problem, in chunks of
/// plan.chunk_rows: the plan's cached chunks in one device buffer, copied
/// during the first pass; the others through two device slots every pass.
/// Owns the device memory, a copy stream and the events that order copies
/// after the compute that last read a slot.
///
/// Where the rows come from: rows already in the stored layout (no gather or
/// conversion) are copied straight from the user's memory when it is pinned
/// or when the fit could page-lock it; other rows are gathered/converted by
/// the process-wide packing threads into two pinned staging buffers, the
/// next chunk packed while the current one is copied.
///
/// Page-locking (cudaHostRegister of the whole pages inside the streamed
/// range; the partial pages at its ends stay pageable and are copied from
/// pageable memory) is the default for pageable input when the range is at
/// least 64 MiB and at most half the host's physical memory; failure (read-
/// only or special memory, limits) falls back to packing. The registration
/// lasts as long as the fit's plan: reset() (called by the backend when it
/// loads again and when it is destroyed, which fit() does before returning,
/// also when it throws) unregisters it after the copy stream is idle. A
/// range that overlaps one registered by another fit of this process is
/// packed instead (never copied on the strength of another fit's
/// registration, which may end first). FLASHKMEANS_STREAM_REGISTER=0 turns
/// registration off, =1 registers regardless of size.
class RowStreamer {
   public:
    RowStreamer() = default;
    ~RowStreamer();
    RowStreamer(const RowStreamer&) = delete;
    RowStreamer& operator=(const RowStreamer&) = delete;

    /// Allocates everything (may throw OutOfMemoryError; then nothing is kept).
    /// Throws Error when the plan's chunk counts do not fit its rows.
    void setup(const HostRows& src, bool src_pinned, int64_t batch, int64_t n,
               const StreamingPlanInfo& plan);
    void reset();

    int64_t chunks() const { return chunks_; }
    int64_t cached_chunks() const { return cached_; }
    int64_t chunk_begin(int64_t j) const { return first_ + j * chunk_; }
    int64_t chunk_size(int64_t j) const { return std::min(chunk_, n_ - chunk_begin(j)); }
    bool cached(int64_t j) const { return cache_index_[size_t(j)] >= 0; }
    bool pinned_source() const { return direct_; }
    bool registered_source() const { return registered_ != nullptr; }

    struct Slot {
        kernels::RowsRef x;  ///< (B, chunk_size(j), ld) on the device
        float* norms;        ///< (B, chunk_size(j)) scratch for ||x||^2
    };
    /// Chunk j on the device for work on `compute`: starts its copy (packing
    /// it on the host first when needed) unless it is a cached chunk already
    /// copied, and makes `compute` wait for the copy. Chunks must be acquired
    /// in order (a pass starts at chunk 0), each released before the
    /// streamed chunk two streamed chunks later is acquired.
    Slot acquire(int64_t j, cudaStream_t compute);
    /// The work on chunk j is enqueued on `compute`: its slot is free once
    /// that work is done.
    void release(int64_t j, cudaStream_t compute);

    /// Bytes and copy-engine milliseconds summed over the copies of the last
    /// complete pass (zeros before one completed; call after the compute
    /// stream was synchronised).
    void last_pass(double& bytes, double& ms) const;
    /// All last_pass_* fields of `p` (see StreamingPlanInfo).
    void last_pass(StreamingPlanInfo& p) const;

   private:
    static constexpr int kRing = 128;  // copies timed by their own events at once
    struct CopyTimes {
        cudaEvent_t start = nullptr, end = nullptr;
        int64_t pass = -1;  // the pass whose copy they time, -1: none
    };
    void enqueue_copy(char* dst, int stage, int64_t r0, int64_t rows);
    void stage_chunk(int stage, int64_t j);
    int64_t next_copy_after(int64_t j) const;
    void prefetch_after(int64_t j);
    double elapsed_ms(const CopyTimes& c) const;

    HostRows src_;
    bool direct_ = false;
    int64_t batch_ = 1, first_ = 0, n_ = 0, chunk_ = 0, chunks_ = 0, cached_ = 0;
    std::vector<int64_t> cache_index_;   // per chunk: place in cache_, -1 when streamed
    std::vector<int64_t> stream_index_;  // per chunk: streamed chunks before it, -1 when cached
    std::vector<int64_t> next_streamed_; // per chunk (and one past): first streamed chunk from it, -1: none
    std::vector<char> loaded_;           // per cached chunk: its copy is enqueued
    DeviceBuffer cache_, slot_[2], norms_[2];
    void* stage_[2] = {nullptr, nullptr};
    int64_t stage_chunk_[2] = {-1, -1};  // chunk packed (or being packed) in staging s
    PackTicket pack_[2];
    cudaStream_t copy_ = nullptr;
    cudaEvent_t free_[2] = {nullptr, nullptr};     // compute done with slot s
    cudaEvent_t staged_[2] = {nullptr, nullptr};   // staging s copied out
    cudaEvent_t t0_ = nullptr, t1_ = nullptr;      // a pass's first copy start, last copy end
    CopyTimes ring_[kRing];
    int64_t copies_ = 0;                 // copies enqueued since setup
    int64_t pass_ = -1;                  // passes started since setup, minus one
    int64_t pass_copies_ = 0;
    double pass_bytes_ = 0, pass_ms_done_ = 0, pass_pack_wait_ms_ = 0;
    bool pass_done_ = false;
    void* registered_ = nullptr;  // page-locked by us [registered_, registered_end_),
    char* registered_end_ = nullptr;  // unregistered in reset()
};

namespace testing {
/// Test hook: the next `count` attempts to allocate a streamed plan fail as
/// if the device ran out of memory, so the fallback to smaller plans runs.
void fail_next_streaming_allocations(int count);
bool take_injected_allocation_failure();
}  // namespace testing

}  // namespace flashkmeans::detail

#endif  // FLASHKMEANS_STREAMING_INFO_ONLY
