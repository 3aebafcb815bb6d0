#include "kernels/device_props.cuh"

#include <cuda_runtime.h>

#include <atomic>

#include "src/cuda/cuda_check.hpp"

namespace flashkmeans::kernels {

int sm_count() {
    // Atomic: ranks of a distributed fit may launch from several threads.
    static std::atomic<int> cache[64];  // 0: not queried yet
    int dev = 0;
    FK_CUDA_CHECK(cudaGetDevice(&dev));
    const bool cached = dev >= 0 && dev < 64;
    int n = cached ? cache[dev].load(std::memory_order_relaxed) : 0;
    if (n == 0) {
        FK_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
        if (cached) cache[dev].store(n, std::memory_order_relaxed);
    }
    return n;
}

}  // namespace flashkmeans::kernels
