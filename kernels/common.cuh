// Device-side building blocks shared by the kernels: element types, 16-byte
// asynchronous copies into shared memory and the tensor-core instructions.
// Everything here is header-only device code; no host logic.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cstdint>

namespace flashkmeans::kernels {

/// Conversions between the three storage types and float.
__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <class T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
    return __float2bfloat16_rn(v);
}

// ---- asynchronous global -> shared copies (sm_80+) -------------------------

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

/// Copy 16 bytes, or write 16 zero bytes when !valid (the source is not read).
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
    const int src_bytes = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem)),
                 "l"(gmem), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

/// Four 8 x 8 matrices of 16-bit pairs (= 8 rows x 4 words each) from shared
/// memory; lane l gives the row address of matrix l / 8. Lane l receives word
/// (l / 4, l % 4) of each matrix: the mma fragment layout, in words, for every
/// element type (tf32 included).
__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const uint32_t* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p))
                 : "memory");
}

// ---- tensor cores: one warp-wide m16n8 product, fp32 accumulation ----------
// Fragments are 32-bit words; for 16-bit types a word holds two consecutive k
// elements, for tf32 one. In word units the fragment layouts of
// m16n8k16 (f16/bf16) and m16n8k8 (tf32) coincide: with g = lane/4, t = lane%4,
// a = {(g,t), (g+8,t), (g,t+4), (g+8,t+4)}, b = {(n=g,t), (n=g,t+4)}.

template <class T> struct Mma;

template <> struct Mma<__half> {
    __device__ __forceinline__ static uint32_t prep(uint32_t w) { return w; }
    __device__ __forceinline__ static void run(float (&d)[4], const uint32_t (&a)[4],
                                               const uint32_t (&b)[2]) {
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
            "{%8,%9}, {%0,%1,%2,%3};\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
};

template <> struct Mma<__nv_bfloat16> {
    __device__ __forceinline__ static uint32_t prep(uint32_t w) { return w; }
    __device__ __forceinline__ static void run(float (&d)[4], const uint32_t (&a)[4],
                                               const uint32_t (&b)[2]) {
        asm volatile(
            "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
            "{%8,%9}, {%0,%1,%2,%3};\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
};

/// float storage on the tf32 path: round each operand to nearest tf32 first
/// (the unit would otherwise truncate the low mantissa bits).
template <> struct Mma<float> {
    __device__ __forceinline__ static uint32_t prep(uint32_t w) {
        uint32_t r;
        asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(__uint_as_float(w)));
        return r;
    }
    __device__ __forceinline__ static void run(float (&d)[4], const uint32_t (&a)[4],
                                               const uint32_t (&b)[2]) {
        asm volatile(
            "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
            "{%8,%9}, {%0,%1,%2,%3};\n"
            : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
            : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    }
};

/// (value, index) ordering used by every argmin: lower value, then lower index.
__device__ __forceinline__ bool better(float v, int i, float bv, int bi) {
    return v < bv || (v == bv && i < bi);
}

}  // namespace flashkmeans::kernels
