// A non-owning view of a 1-, 2- or 3-dimensional array that lives in host or
// device memory. Every array crossing the engine's API is one of these, so that
// numpy arrays, DLPack tensors (torch, cupy) and raw pointers all enter without
// copies. Strides are in elements, not bytes (DLPack's convention).
#pragma once

#include <cstdint>
#include <string>

namespace flashkmeans {

enum class DType : int { f32 = 0, f16 = 1, bf16 = 2 };

/// Size in bytes of one element of `t`.
inline int64_t dtype_size(DType t) { return t == DType::f32 ? 4 : 2; }
const char* dtype_name(DType t);

enum class MemoryKind : int {
    host = 0,  ///< ordinary (pageable) host memory
    pinned,    ///< page-locked host memory (faster host->device copies)
    cuda,      ///< device memory of GPU `device_id`
};

struct ArrayView {
    const void* data = nullptr;
    int ndim = 0;
    int64_t shape[3] = {0, 0, 0};
    int64_t strides[3] = {0, 0, 0};  ///< in elements
    DType dtype = DType::f32;
    MemoryKind memory = MemoryKind::host;
    int device_id = 0;  ///< meaningful for MemoryKind::cuda

    bool empty() const { return data == nullptr; }
    int64_t numel() const;
    /// True when the elements are packed row-major with no gaps.
    bool contiguous() const;
    bool on_device() const { return memory == MemoryKind::cuda; }
    /// Human-readable "(n, d) f32 host" for error messages.
    std::string describe() const;
};

/// A contiguous row-major (n, d) matrix of `dtype` at `data`.
ArrayView matrix_view(const void* data, int64_t n, int64_t d,
                      DType dtype = DType::f32,
                      MemoryKind memory = MemoryKind::host, int device_id = 0);
/// A contiguous row-major (b, n, d) batch of matrices.
ArrayView batch_view(const void* data, int64_t b, int64_t n, int64_t d,
                     DType dtype = DType::f32,
                     MemoryKind memory = MemoryKind::host, int device_id = 0);
/// A contiguous vector of `n` elements.
ArrayView vector_view(const void* data, int64_t n, DType dtype = DType::f32,
                      MemoryKind memory = MemoryKind::host, int device_id = 0);

}  // namespace flashkmeans
