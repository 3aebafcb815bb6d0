#include <flashkmeans/array_view.hpp>

#include <sstream>

namespace flashkmeans {

const char* dtype_name(DType t) {
    switch (t) {
        case DType::f32: return "float32";
        case DType::f16: return "float16";
        case DType::bf16: return "bfloat16";
    }
    return "?";
}

int64_t ArrayView::numel() const {
    int64_t n = ndim > 0 ? 1 : 0;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

bool ArrayView::contiguous() const {
    int64_t expected = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        if (shape[i] != 1 && strides[i] != expected) return false;
        expected *= shape[i];
    }
    return true;
}

std::string ArrayView::describe() const {
    std::ostringstream s;
    s << "(";
    for (int i = 0; i < ndim; i++) s << (i ? ", " : "") << shape[i];
    if (ndim == 1) s << ",";
    s << ") " << dtype_name(dtype) << " "
      << (memory == MemoryKind::cuda ? "cuda:" + std::to_string(device_id)
                                     : memory == MemoryKind::pinned ? "pinned" : "host");
    return s.str();
}

static ArrayView make_view(const void* data, int ndim, const int64_t* shape,
                           DType dtype, MemoryKind memory, int device_id) {
    ArrayView v;
    v.data = data;
    v.ndim = ndim;
    v.dtype = dtype;
    v.memory = memory;
    v.device_id = device_id;
    int64_t stride = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        v.shape[i] = shape[i];
        v.strides[i] = stride;
        stride *= shape[i];
    }
    return v;
}

ArrayView matrix_view(const void* data, int64_t n, int64_t d, DType dtype,
                      MemoryKind memory, int device_id) {
    const int64_t s[2] = {n, d};
    return make_view(data, 2, s, dtype, memory, device_id);
}

ArrayView batch_view(const void* data, int64_t b, int64_t n, int64_t d,
                     DType dtype, MemoryKind memory, int device_id) {
    const int64_t s[3] = {b, n, d};
    return make_view(data, 3, s, dtype, memory, device_id);
}

ArrayView vector_view(const void* data, int64_t n, DType dtype,
                      MemoryKind memory, int device_id) {
    const int64_t s[1] = {n};
    return make_view(data, 1, s, dtype, memory, device_id);
}

}  // namespace flashkmeans
