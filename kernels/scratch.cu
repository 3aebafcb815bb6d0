#include "kernels/scratch.cuh"

#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>

#include "src/cuda/cuda_check.hpp"

namespace flashkmeans::kernels {

namespace {

constexpr int kMaxDevices = 64;

/// The current device's pool, created on first use when `create`, and kept
/// for the process (destroying it at exit could run after the CUDA context
/// is gone). Null when pooling is off, or not created yet and !create.
cudaMemPool_t pool_of_current_device(bool create) {
    // FK_SCRATCH_POOL=0: the default pool instead, for comparisons.
    static const bool off = [] {
        const char* e = std::getenv("FK_SCRATCH_POOL");
        return e && *e == '0';
    }();
    if (off) return nullptr;
    static std::mutex mu;
    static cudaMemPool_t pools[kMaxDevices] = {};
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= kMaxDevices) {
        (void)cudaGetLastError();
        return nullptr;
    }
    std::lock_guard<std::mutex> lock(mu);
    if (!pools[dev] && create) {
        cudaMemPoolProps props = {};
        props.allocType = cudaMemAllocationTypePinned;
        props.location.type = cudaMemLocationTypeDevice;
        props.location.id = dev;
        cudaMemPool_t pool = nullptr;
        FK_CUDA_CHECK(cudaMemPoolCreate(&pool, &props));
        uint64_t keep = UINT64_MAX;  // never release on synchronization
        FK_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
        pools[dev] = pool;
    }
    return pools[dev];
}

}  // namespace

void* scratch_alloc(size_t bytes, cudaStream_t stream) {
    void* p = nullptr;
    cudaMemPool_t pool = pool_of_current_device(true);
    cudaError_t e = pool ? cudaMallocFromPoolAsync(&p, bytes, pool, stream) : cudaMallocAsync(&p, bytes, stream);
    if (e == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();
        detail::throw_out_of_memory("scratch", bytes);
    }
    FK_CUDA_CHECK(e);
    return p;
}

void scratch_free(void* p, cudaStream_t stream) {
    if (p) FK_CUDA_CHECK(cudaFreeAsync(p, stream));
}

void scratch_trim() {
    // Only an existing pool: this runs in destructors and on out-of-memory.
    if (cudaMemPool_t pool = pool_of_current_device(false)) (void)cudaMemPoolTrimTo(pool, 0);
}

size_t scratch_reserved_bytes() {
    cudaMemPool_t pool = pool_of_current_device(false);
    uint64_t bytes = 0;
    if (pool) FK_CUDA_CHECK(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &bytes));
    return size_t(bytes);
}

}  // namespace flashkmeans::kernels
