// CUDA runtime errors as flashkmeans::Error exceptions (never aborts), an
// owning device buffer, and a guard that makes a device current for a scope.
#pragma once

#include <cuda_runtime.h>
#include <flashkmeans/error.hpp>

#include <cstddef>
#include <string>
#include <utility>

namespace flashkmeans::detail {

[[noreturn]] inline void throw_cuda(cudaError_t e, const char* call, const char* file,
                                    int line) {
    std::string msg = std::string("flashkmeans: CUDA error at ") + file + ":" +
                      std::to_string(line) + " in " + call + ": " + cudaGetErrorName(e) +
                      " (" + cudaGetErrorString(e) + ")";
    if (e == cudaErrorMemoryAllocation) throw OutOfMemoryError(msg);
    throw Error(msg);
}

/// OutOfMemoryError for `bytes` of `what`, with the device's free and total
/// memory at the time.
[[noreturn]] inline void throw_out_of_memory(const char* what, size_t bytes) {
    size_t free_b = 0, total_b = 0;
    (void)cudaMemGetInfo(&free_b, &total_b);
    (void)cudaGetLastError();
    throw OutOfMemoryError("flashkmeans: out of device memory for " + std::string(what) +
                           ": needed " + std::to_string(bytes) + " bytes, " +
                           std::to_string(free_b) + " free of " + std::to_string(total_b));
}

}  // namespace flashkmeans::detail

#define FK_CUDA_CHECK(call)                                                       \
    do {                                                                          \
        cudaError_t fk_err_ = (call);                                             \
        if (fk_err_ != cudaSuccess) {                                             \
            (void)cudaGetLastError(); /* clear a non-sticky error */              \
            ::flashkmeans::detail::throw_cuda(fk_err_, #call, __FILE__, __LINE__); \
        }                                                                         \
    } while (0)

namespace flashkmeans::detail {

/// Makes `dev` current for the scope and restores the previous device.
class DeviceGuard {
   public:
    explicit DeviceGuard(int dev) {
        FK_CUDA_CHECK(cudaGetDevice(&prev_));
        if (prev_ != dev) FK_CUDA_CHECK(cudaSetDevice(dev));
    }
    ~DeviceGuard() {
        int cur = -1;
        if (cudaGetDevice(&cur) == cudaSuccess && cur != prev_) (void)cudaSetDevice(prev_);
    }
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

   private:
    int prev_ = 0;
};

/// Owning cudaMalloc'd bytes. Allocation failure throws OutOfMemoryError with
/// the bytes asked for and the bytes free.
class DeviceBuffer {
   public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(size_t bytes) { reset(bytes); }
    ~DeviceBuffer() { release(); }
    DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
        if (this != &o) {
            release();
            p_ = std::exchange(o.p_, nullptr);
            n_ = std::exchange(o.n_, 0);
        }
        return *this;
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;

    /// Reallocates only when `bytes` exceeds the current size.
    void reserve(size_t bytes) {
        if (bytes > n_) reset(bytes);
    }
    /// On out-of-memory, the pooled scratch (kernels/scratch.cuh) is given
    /// back and the allocation tried once more (device_buffer.cu).
    void reset(size_t bytes);
    void release() {
        if (p_) (void)cudaFree(p_);
        p_ = nullptr;
        n_ = 0;
    }
    template <class T = void>
    T* get() const { return static_cast<T*>(p_); }
    size_t size() const { return n_; }

   private:
    void* p_ = nullptr;
    size_t n_ = 0;
};

}  // namespace flashkmeans::detail
