#include "array_conversion.hpp"

#include <flashkmeans/error.hpp>

#include <string>

namespace nb = nanobind;

namespace flashkmeans::python {
namespace {

DType to_dtype(nb::dlpack::dtype t, const char* name) {
    using code = nb::dlpack::dtype_code;
    if (t.lanes == 1) {
        if (t.code == uint8_t(code::Float) && t.bits == 32) return DType::f32;
        if (t.code == uint8_t(code::Float) && t.bits == 16) return DType::f16;
        if (t.code == uint8_t(code::Bfloat) && t.bits == 16) return DType::bf16;
    }
    throw Error(std::string(name) + ": expected float32, float16 or bfloat16, got dtype code " +
                std::to_string(t.code) + " with " + std::to_string(t.bits) + " bits");
}

MemoryKind to_memory(int device_type, const char* name) {
    if (device_type == nb::device::cpu::value) return MemoryKind::host;
    if (device_type == nb::device::cuda_host::value) return MemoryKind::pinned;
    if (device_type == nb::device::cuda::value) return MemoryKind::cuda;
    throw Error(std::string(name) + ": arrays on DLPack device type " +
                std::to_string(device_type) + " are not supported (expected CPU or CUDA)");
}

}  // namespace

ArrayView to_view(const InputArray& a, const char* name) {
    if (a.ndim() < 1 || a.ndim() > 3)
        throw Error(std::string(name) + ": expected 1 to 3 dimensions, got " +
                    std::to_string(a.ndim()));
    ArrayView v;
    v.data = a.data();
    v.ndim = int(a.ndim());
    for (int i = 0; i < v.ndim; i++) {
        v.shape[i] = int64_t(a.shape(i));
        v.strides[i] = a.stride(i);
    }
    v.dtype = to_dtype(a.dtype(), name);
    v.memory = to_memory(a.device_type(), name);
    v.device_id = a.device_id();
    return v;
}

ArrayView to_optional_view(const std::optional<InputArray>& a, const char* name) {
    return a ? to_view(*a, name) : ArrayView{};
}

}  // namespace flashkmeans::python
