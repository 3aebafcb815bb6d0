// The Fortran BLAS/LAPACK entry points the OPQ rotation update needs
// (provided by the BLAS Faiss links, e.g. OpenBLAS). Column-major.
#pragma once

extern "C" {
int sgemm_(const char* transa, const char* transb, const int* m, const int* n,
           const int* k, const float* alpha, const float* a, const int* lda,
           const float* b, const int* ldb, const float* beta, float* c, const int* ldc);
int sgesvd_(const char* jobu, const char* jobvt, const int* m, const int* n, float* a,
            const int* lda, float* s, float* u, const int* ldu, float* vt,
            const int* ldvt, float* work, const int* lwork, int* info);
}
