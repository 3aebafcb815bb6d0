// The Fortran BLAS entry point, called the way Faiss calls it so that the
// cross terms are bit-identical to faiss::IndexFlat's for the same BLAS.
#pragma once

extern "C" {
int sgemm_(const char* transa, const char* transb, const int* m, const int* n,
           const int* k, const float* alpha, const float* a, const int* lda,
           const float* b, const int* ldb, const float* beta, float* c,
           const int* ldc);
}

namespace flashkmeans::detail {

/// ip (nx, ny) row-major = x (nx, d) * y (ny, d)^T; all row-major, packed.
inline void cross_products(const float* x, int nx, const float* y, int ny,
                           int d, float* ip) {
    const float one = 1, zero = 0;
    sgemm_("Transpose", "Not transpose", &ny, &nx, &d, &one, y, &d, x, &d,
           &zero, ip, &ny);
}

}  // namespace flashkmeans::detail
