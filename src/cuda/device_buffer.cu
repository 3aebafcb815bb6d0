// DeviceBuffer's allocation (cuda_check.hpp), kept out of the header so that
// the generic error header does not depend on the kernel layer's scratch pool.
#include "src/cuda/cuda_check.hpp"

#include "kernels/scratch.cuh"

namespace flashkmeans::detail {

void DeviceBuffer::reset(size_t bytes) {
    release();
    if (bytes == 0) return;
    cudaError_t e = cudaMalloc(&p_, bytes);
    if (e == cudaErrorMemoryAllocation) {  // pooled scratch may hold what is missing
        (void)cudaGetLastError();
        kernels::scratch_trim();
        e = cudaMalloc(&p_, bytes);
    }
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        p_ = nullptr;
        if (e == cudaErrorMemoryAllocation) throw_out_of_memory("a buffer", bytes);
        throw_cuda(e, "cudaMalloc", __FILE__, __LINE__);
    }
    n_ = bytes;
}

}  // namespace flashkmeans::detail
