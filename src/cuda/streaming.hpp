// Fits whose points do not fit the device memory budget: the first rows of
// every problem stay resident on the device, the rest stay in host memory and
// pass through two device slots each iteration, copied on their own stream
// while the compute stream works on the previous chunk.
//
// Device memory of a streamed fit (B problems, n points, k centroids, d dims,
// s bytes an element of the storage type, ld = d rounded up to 16 bytes,
// r resident rows and C rows a chunk, per problem):
//   labels, weights (all rows)   B n (4 + 4 if weighted)
//   resident rows + their norms  B r (ld s + 4)
//   two chunk slots + norms      2 B C (ld s + 4)        (0 when r = n)
//   sorting one segment          B C 16 + CUB temporary storage for B C pairs
//   objective partials           B 8 (n / 128 + segments)
//   centroids                    B k (d 4 + ld s + d 4 + 12)
// Work goes in segments of at most C rows (the resident rows too, so that the
// update's sort buffers are those of one chunk): per segment, FlashAssign
// then the sort-inverse sums added to the running totals.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "src/cuda/cuda_check.hpp"
#include "src/cuda/device_data.hpp"

namespace flashkmeans::detail {

/// What a CUDA fit keeps where; exposed to tests and benchmarks through a
/// dynamic_cast of the backend to StreamingInfo.
struct StreamingPlanInfo {
    bool streaming = false;       ///< false: all rows resident, one segment
    int64_t resident_rows = 0;    ///< first rows of each problem kept on the device
    int64_t chunk_rows = 0;       ///< rows of each problem per chunk / segment
    int64_t chunks = 0;           ///< streamed chunks per iteration
    size_t device_bytes = 0;      ///< device memory of the plan (formula above)
    size_t available_bytes = 0;   ///< what the plan was made to fit
    bool pinned_source = false;   ///< chunks copied straight from the user's memory (pinned or registered)
    bool registered_source = false;  ///< the fit page-locked the streamed range itself
    /// The last pass over the streamed rows: bytes copied host->device and the
    /// milliseconds from the first copy's start to the last copy's end.
    double last_pass_bytes = 0, last_pass_copy_ms = 0;
};

class StreamingInfo {
   public:
    virtual ~StreamingInfo() = default;
    virtual StreamingPlanInfo streaming_info() const = 0;
};

/// Sizes that decide a streamed plan.
struct StreamShape {
    int64_t batch = 1, n = 0, d = 0, k = 0;
    int64_t row_bytes = 0;      ///< ld * s
    bool weighted = false;
    size_t centroid_bytes = 0;  ///< B k (d 4 + ld s + d 4 + 12)
};

/// Device bytes of a streamed fit keeping `resident` rows with chunks of
/// `chunk` rows (the formula at the top of this file).
size_t streaming_bytes(const StreamShape& s, int64_t resident, int64_t chunk);

/// The largest resident part that fits `avail` bytes, with chunks of at most
/// 256 MiB (smaller when the budget is small: an eighth of what is left after
/// the fixed buffers). Throws OutOfMemoryError, naming the bytes needed and
/// available, when even streaming everything in minimal chunks does not fit.
StreamingPlanInfo plan_streaming(const StreamShape& s, size_t avail);

/// The streamed rows [first, n) of every problem, in chunks of `chunk_rows`.
/// Owns the device slots, a copy stream and the events that order copies
/// after the compute that last read a slot. Rows already in the stored layout
/// (no gather or conversion) are copied straight from the user's memory when
/// it is pinned. Other rows are gathered/converted by host threads into two
/// pinned staging buffers, overlapping the copy of the previous chunk.
/// FLASHKMEANS_STREAM_REGISTER=1 (opt-in, experimental) page-locks the
/// streamed range of pageable input for the fit's lifetime instead (whole
/// pages inside the array only) and copies from it directly.
class RowStreamer {
   public:
    RowStreamer() = default;
    ~RowStreamer();
    RowStreamer(const RowStreamer&) = delete;
    RowStreamer& operator=(const RowStreamer&) = delete;

    /// Allocates everything (may throw OutOfMemoryError; then nothing is kept).
    void setup(const HostRows& src, bool src_pinned, int64_t batch, int64_t first, int64_t n,
               int64_t chunk_rows);
    void reset();

    int64_t chunks() const { return chunks_; }
    int64_t chunk_begin(int64_t j) const { return first_ + j * chunk_; }
    int64_t chunk_size(int64_t j) const { return std::min(chunk_, n_ - chunk_begin(j)); }
    bool pinned_source() const { return direct_; }
    bool registered_source() const { return registered_ != nullptr; }

    struct Slot {
        kernels::RowsRef x;  ///< (B, chunk_size(j), ld) on the device
        float* norms;        ///< (B, chunk_size(j)) scratch for ||x||^2
    };
    /// Starts the copy of chunk j (staging it on the host first when needed)
    /// and makes `compute` wait for it. Chunks must be acquired in order,
    /// each released before the one two later is acquired.
    Slot acquire(int64_t j, cudaStream_t compute);
    /// The work on chunk j is enqueued on `compute`: its slot is free once
    /// that work is done.
    void release(int64_t j, cudaStream_t compute);

    /// Bytes and copy-engine milliseconds of the last complete pass (call
    /// after the compute stream was synchronised).
    void last_pass(double& bytes, double& ms) const;

   private:
    HostRows src_;
    bool direct_ = false;
    int64_t batch_ = 1, first_ = 0, n_ = 0, chunk_ = 0, chunks_ = 0;
    DeviceBuffer slot_[2], norms_[2];
    void* stage_[2] = {nullptr, nullptr};
    cudaStream_t copy_ = nullptr;
    cudaEvent_t copied_[2] = {nullptr, nullptr};   // chunk in slot s arrived
    cudaEvent_t free_[2] = {nullptr, nullptr};     // compute done with slot s
    cudaEvent_t staged_[2] = {nullptr, nullptr};   // staging s copied out
    cudaEvent_t t0_ = nullptr, t1_ = nullptr;      // first copy start, last copy end
    double pass_bytes_ = 0;
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
