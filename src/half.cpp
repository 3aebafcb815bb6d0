#include "half.hpp"

#include <cstring>

namespace flashkmeans::detail {

float half_to_float(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f) {  // inf / nan
        bits = sign | 0x7f800000u | (mant << 13);
    } else if (exp != 0) {  // normal
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant == 0) {  // zero
        bits = sign;
    } else {  // subnormal: renormalise
        exp = 113;
        while (!(mant & 0x400)) {
            mant <<= 1;
            exp--;
        }
        bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

float bf16_to_float(uint16_t h) {
    const uint32_t bits = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
}

uint16_t float_to_bf16(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x40);
    bits += 0x7fffu + ((bits >> 16) & 1);  // round to nearest even
    return uint16_t(bits >> 16);
}

uint16_t float_to_half(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    const uint16_t sign = uint16_t((bits >> 16) & 0x8000);
    const uint32_t abs = bits & 0x7fffffffu;
    if (abs > 0x7f800000u) return sign | 0x7e00;       // nan
    if (abs >= 0x477ff000u) return sign | 0x7c00;      // overflow -> inf
    if (abs < 0x38800000u) {                           // subnormal or zero
        if (abs < 0x33000000u) return sign;
        const uint32_t exp = abs >> 23;
        const uint32_t mant = (abs & 0x7fffff) | 0x800000;
        const uint32_t shift = 126 - exp;  // 14..24
        uint32_t h = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1);
        const uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return sign | uint16_t(h);
    }
    uint32_t h = ((abs - 0x38000000u) >> 13);
    const uint32_t rem = abs & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return sign | uint16_t(h);
}

void row_to_float(const void* src, DType dtype, int64_t d, float* dst) {
    switch (dtype) {
        case DType::f32:
            std::memcpy(dst, src, sizeof(float) * d);
            break;
        case DType::f16: {
            auto s = static_cast<const uint16_t*>(src);
            for (int64_t j = 0; j < d; j++) dst[j] = half_to_float(s[j]);
            break;
        }
        case DType::bf16: {
            auto s = static_cast<const uint16_t*>(src);
            for (int64_t j = 0; j < d; j++) dst[j] = bf16_to_float(s[j]);
            break;
        }
    }
}

}  // namespace flashkmeans::detail
