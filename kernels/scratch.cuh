// Stream-ordered scratch memory for buffers that live for one call (the
// packed centroid tiles of an assign, padded norms).
//
// They come from a per-device memory pool that keeps freed blocks across
// synchronizations. The default pool's release threshold is 0, so every
// cudaStreamSynchronize handed the blocks back to the driver and the next
// iteration mapped them again: ~0.14 ms of a 1.1 ms n1M-k1024 iteration on
// the H200 (bench/NOTES.md, probe5_pool). What the pool holds is at most the
// largest scratch in flight; scratch_trim() gives it back (a backend does so
// when it is destroyed, DeviceBuffer before it reports out of memory).
// FK_SCRATCH_POOL=0 takes the default pool instead (for comparisons).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

namespace flashkmeans::kernels {

/// `bytes` of device memory of the current device, usable in stream order on
/// `stream`; throws OutOfMemoryError when the device has not enough.
void* scratch_alloc(size_t bytes, cudaStream_t stream);
/// Frees in stream order (after the work queued on `stream` so far).
void scratch_free(void* p, cudaStream_t stream);
/// Returns the current device's unused pooled scratch to the driver (nothing
/// where no scratch was allocated yet; never throws).
void scratch_trim();
/// Bytes the current device's pool holds from the driver, in use or not (0
/// where pooling is off or no scratch was allocated yet). For tests: unlike
/// cudaMemGetInfo it does not move with other processes on the device.
size_t scratch_reserved_bytes();

}  // namespace flashkmeans::kernels
