// Tensor maps through the driver's cuTensorMapEncodeTiled, reached with the
// runtime's entry-point query so that nothing links libcuda directly.
#include "kernels/tensor_map.cuh"

#include <cudaTypedefs.h>
#include <cuda_runtime.h>
#include <flashkmeans/error.hpp>

#include <mutex>
#include <string>

#include "src/cuda/cuda_check.hpp"

namespace flashkmeans::kernels {

namespace {

PFN_cuTensorMapEncodeTiled_v12000 encode_fn() {
    static PFN_cuTensorMapEncodeTiled_v12000 fn = nullptr;
    static std::once_flag once;
    std::call_once(once, [] {
        void* p = nullptr;
        cudaDriverEntryPointQueryResult q{};
        FK_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q));
        if (q == cudaDriverEntryPointSuccess) fn = reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
    });
    if (!fn) throw Error("flashkmeans: the CUDA driver has no cuTensorMapEncodeTiled (needs a CUDA 12 driver)");
    return fn;
}

}  // namespace

CUtensorMap make_tensor_map_16bit(const void* data, bool bf16, int64_t cols, int64_t rows, int64_t batch,
                                  int64_t ld_bytes, int64_t batch_bytes, int box_cols, int box_rows) {
    CUtensorMap map;
    const cuuint64_t dims[3] = {cuuint64_t(cols), cuuint64_t(rows), cuuint64_t(batch)};
    const cuuint64_t strides[2] = {cuuint64_t(ld_bytes), cuuint64_t(batch_bytes)};
    const cuuint32_t box[3] = {cuuint32_t(box_cols), cuuint32_t(box_rows), 1};
    const cuuint32_t estrides[3] = {1, 1, 1};
    const CUresult r = encode_fn()(&map, bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
                                   3, const_cast<void*>(data), dims, strides, box, estrides,
                                   CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                   CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS)
        throw Error("flashkmeans: cuTensorMapEncodeTiled failed (error " + std::to_string(int(r)) + ") for a " +
                    std::to_string(cols) + " x " + std::to_string(rows) + " x " + std::to_string(batch) +
                    " tensor, row stride " + std::to_string(ld_bytes) + " bytes, problem stride " +
                    std::to_string(batch_bytes) + " bytes");
    return map;
}

}  // namespace flashkmeans::kernels
