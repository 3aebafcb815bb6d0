// Input checks that must run where the data lives: a NaN/Inf scan of GPU
// arrays (host arrays are scanned on the host, src/checks.cpp).
#include "backend.hpp"

#include "kernels/norms.cuh"
#include "src/cuda/cuda_check.hpp"

namespace flashkmeans::detail {

int64_t cuda_count_nonfinite(const ArrayView& x) {
    const int nd = x.ndim;
    const int64_t cols = x.shape[nd - 1];
    const int64_t rows = nd >= 2 ? x.shape[nd - 2] : 1;
    const int64_t batch = nd == 3 ? x.shape[0] : 1;
    if (cols > 1 && x.strides[nd - 1] != 1)
        throw Error("flashkmeans: the NaN/Inf check of a GPU array needs unit stride along its "
                    "last dimension, got " + x.describe());
    DeviceGuard guard(x.device_id);
    DeviceBuffer count(sizeof(unsigned long long));
    FK_CUDA_CHECK(cudaMemset(count.get(), 0, sizeof(unsigned long long)));
    const kernels::RowsRef ref{x.data, x.dtype, nd >= 2 ? x.strides[nd - 2] : cols,
                               nd == 3 ? x.strides[0] : 0};
    kernels::count_nonfinite(ref, int(batch), rows, cols, count.get<unsigned long long>(), nullptr);
    unsigned long long host = 0;
    FK_CUDA_CHECK(cudaMemcpy(&host, count.get(), sizeof(host), cudaMemcpyDeviceToHost));
    return int64_t(host);
}

}  // namespace flashkmeans::detail
