// Conversions between float32 and the 16-bit storage types on the host.
#pragma once

#include <flashkmeans/array_view.hpp>

#include <cstdint>

namespace flashkmeans::detail {

float half_to_float(uint16_t h);
float bf16_to_float(uint16_t h);
uint16_t float_to_half(float f);
uint16_t float_to_bf16(float f);


/// Copy a row of `d` elements of `dtype` (host memory, element stride 1) to float.
void row_to_float(const void* src, DType dtype, int64_t d, float* dst);

}  // namespace flashkmeans::detail
