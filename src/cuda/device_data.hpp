// Getting a user's array onto the device in the layout the kernels read:
// rows of the storage type padded to 16 bytes, bytes past d zero. Device
// arrays already in that layout are used in place (no copy); everything else
// is copied once, gathering the selected rows and converting the type on the
// way, so only the rows that are clustered ever reach the device.
#pragma once

#include <cuda_runtime.h>
#include <flashkmeans/array_view.hpp>
#include <flashkmeans/params.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "kernels/assign.cuh"
#include "kernels/norms.cuh"
#include "src/cuda/cuda_check.hpp"

namespace flashkmeans::detail {

/// Storage type on the device and the arithmetic of the cross term for input
/// type `in` under `p` (see docs: f16/bf16 values are exact in tf32, so tf32
/// on 16-bit input runs the 16-bit tensor-core path with identical products).
struct ComputePlan {
    DType store;
    kernels::MathKind math;
};
ComputePlan plan_compute(DType in, Precision p);

/// Elements per 16 bytes of `t`.
inline int64_t elems_per_16b(DType t) { return 16 / dtype_size(t); }
inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

/// "(2, 100, 64) f16 cuda" for error messages.
std::string describe_view(const ArrayView& v);

/// The word-addressed operand of FlashAssign over `rows` rows of x.
kernels::Operand make_operand(const kernels::RowsRef& x, int64_t rows, int64_t d);

/// Rows of B problems on the device, each n x d of `dtype`, row stride ld and
/// problem stride batch (elements), rows padded to 16 bytes.
struct DeviceRows {
    const void* data = nullptr;
    DType dtype = DType::f32;
    int64_t ld = 0, batch = 0;
    DeviceBuffer own;  // empty when the user's array is used in place

    kernels::RowsRef ref() const { return {data, dtype, ld, batch}; }
    kernels::Operand operand(int64_t rows, int64_t d) const { return make_operand(ref(), rows, d); }
};

/// Checks that `x` is (N, d) (batch 1) or (B, N, d) with unit inner stride;
/// returns N. `what` names the argument in error messages.
int64_t check_points_view(const ArrayView& x, int64_t batch, int64_t d, int gpu_id,
                          const char* what);

/// Bytes of device memory upload_rows would allocate.
size_t upload_bytes(const ArrayView& x, int64_t batch, int64_t n, int64_t d, bool gathered,
                    DType store, int gpu_id);

/// A host array's rows as the device stores them: source row (b, i) is row
/// rows[i] (or i) of problem b, converted to `store` and zero-padded to
/// `ld` elements. Points into the caller's memory, which must outlive it.
struct HostRows {
    const char* data = nullptr;
    DType dtype = DType::f32;
    int64_t src_ld = 0, src_batch = 0;    // elements
    const std::vector<int>* rows = nullptr;  // null or empty: no selection
    int64_t d = 0;
    DType store = DType::f32;
    int64_t ld = 0;                       // stored row length in elements

    int64_t row_bytes() const { return ld * dtype_size(store); }
    bool gathered() const { return rows && !rows->empty(); }
    /// The stored bytes of a problem's rows are the source's bytes, packed:
    /// a plain copy (no gather, conversion, padding or row gaps).
    bool plain() const { return !gathered() && dtype == store && ld == d && src_ld == d; }
    const char* src_row(int64_t b, int64_t i) const {
        const int64_t si = gathered() ? (*rows)[size_t(i)] : i;
        return data + (b * src_batch + si * src_ld) * dtype_size(dtype);
    }
};
HostRows host_rows(const ArrayView& x, const std::vector<int>& rows, int64_t d, DType store);

struct PackJob;

/// Packing work running on the process-wide pool of host threads (started on
/// first use: min(hardware threads, 16) - 1 workers that live as long as the
/// process). A default-constructed ticket is complete. wait() returns once
/// the work is done, doing the parts no worker has started on the calling
/// thread meanwhile; the destructor waits too, so a ticket never outlives
/// the memory its work reads or writes unless it is moved out.
class PackTicket {
   public:
    PackTicket() = default;
    PackTicket(PackTicket&&) noexcept = default;
    PackTicket& operator=(PackTicket&& o) noexcept {
        if (this != &o) {
            wait();
            job_ = std::move(o.job_);
        }
        return *this;
    }
    PackTicket(const PackTicket&) = delete;
    PackTicket& operator=(const PackTicket&) = delete;
    ~PackTicket() { wait(); }

    bool pending() const { return job_ != nullptr; }
    void wait();

   private:
    friend PackTicket pack_host_rows_async(const HostRows&, int64_t, int64_t, int64_t, int64_t,
                                           void*);
    std::shared_ptr<PackJob> job_;
};

/// Packs rows i0 .. i0+count-1 of problems b0 .. b0+batch-1 in the stored
/// layout: dst row t is source row (b0 + t / count, i0 + t % count), on the
/// pool's threads; returns at once. `h` is copied, the memory it points to
/// (and h.rows) must stay valid until the ticket is complete. Rows that are
/// a plain copy of the source are moved in contiguous runs with streaming
/// (non-temporal) stores: the destination is usually pinned staging memory
/// read next by the copy engine, so there is no point caching it.
PackTicket pack_host_rows_async(const HostRows& h, int64_t b0, int64_t batch, int64_t i0,
                                int64_t count, void* dst);

/// The same, returning when done (the calling thread works too).
void pack_host_rows(const HostRows& h, int64_t b0, int64_t batch, int64_t i0, int64_t count,
                    void* dst);

/// Host ranges page-locked by fits of this process (cudaHostRegister of a
/// streamed range, see RowStreamer), with the mutex that guards them. A fit
/// registers under it; a pageable copy that must not straddle another fit's
/// registration checks and copies under it.
struct HostRegistrations {
    std::mutex m;
    std::vector<std::pair<uintptr_t, uintptr_t>> ranges;  // [lo, hi)
    bool overlaps(const void* p, size_t bytes) const;     // call with m held
};
HostRegistrations& host_registrations();

/// Row (b, i) as the device stores it, widened back to float32 (d values).
void host_row_as_f32(const HostRows& h, int64_t b, int64_t i, float* out);

/// x as checked by check_points_view; rows (n of them, may be empty = all)
/// selects the rows of every problem; rows_dev is the same list on the device
/// (needed only when x is on the device and rows is non-empty).
void upload_rows(const ArrayView& x, int64_t batch, int64_t n, int64_t d,
                 const std::vector<int>& rows, const int32_t* rows_dev, DType store,
                 int gpu_id, cudaStream_t stream, DeviceRows& out);

}  // namespace flashkmeans::detail
