// The Fortran BLAS entry point, called the way Faiss calls it so that the
// cross terms are bit-identical to faiss::IndexFlat's for the same BLAS.
#pragma once

extern "C" {
int sgemm_(const char* transa, const char* transb, const int* m, const int* n,
           const int* k, const float* alpha, const float* a, const int* lda,
           const float* b, const int* ldb, const float* beta, float* c,
           const int* ldc);
}

// OpenBLAS's thread control, when the BLAS in use is OpenBLAS.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" int openblas_get_num_threads() __attribute__((weak));

namespace flashkmeans::detail {

/// While alive, OpenBLAS runs each call on the calling thread (the engine
/// parallelises over tiles itself); active() is false for other BLAS.
class SingleThreadedBlas {
   public:
    SingleThreadedBlas() {
        if (openblas_set_num_threads && openblas_get_num_threads) {
            saved_ = openblas_get_num_threads();
            openblas_set_num_threads(1);
        }
    }
    ~SingleThreadedBlas() {
        if (saved_ > 0) openblas_set_num_threads(saved_);
    }
    bool active() const { return saved_ > 0; }
    SingleThreadedBlas(const SingleThreadedBlas&) = delete;
    SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

   private:
    int saved_ = 0;
};

/// ip (nx, ny) row-major = x (nx, d) * y (ny, d)^T; all row-major, packed.
inline void cross_products(const float* x, int nx, const float* y, int ny,
                           int d, float* ip) {
    const float one = 1, zero = 0;
    sgemm_("Transpose", "Not transpose", &ny, &nx, &d, &one, y, &d, x, &d,
           &zero, ip, &ny);
}

}  // namespace flashkmeans::detail
