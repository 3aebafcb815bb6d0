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

#include <mutex>

namespace flashkmeans::detail {

/// While alive, OpenBLAS runs each call on the calling thread (the engine
/// parallelises over tiles itself); active() is false for other BLAS.
/// OpenBLAS's thread count is process-wide, so guards alive at the same time
/// in several threads share one saved value: the first sets 1, the last
/// restores it.
class SingleThreadedBlas {
   public:
    SingleThreadedBlas() {
        if (!openblas_set_num_threads || !openblas_get_num_threads) return;
        std::lock_guard<std::mutex> lock(state().mutex);
        if (state().holders++ == 0) {
            state().saved = openblas_get_num_threads();
            openblas_set_num_threads(1);
        }
        active_ = true;
    }
    ~SingleThreadedBlas() {
        if (!active_) return;
        std::lock_guard<std::mutex> lock(state().mutex);
        if (--state().holders == 0) openblas_set_num_threads(state().saved);
    }
    bool active() const { return active_; }
    SingleThreadedBlas(const SingleThreadedBlas&) = delete;
    SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

   private:
    struct Shared {
        std::mutex mutex;
        int holders = 0;
        int saved = 1;
    };
    static Shared& state() {
        static Shared s;
        return s;
    }
    bool active_ = false;
};

/// ip (nx, ny) row-major = x (nx, d) * y (ny, d)^T; all row-major, packed.
inline void cross_products(const float* x, int nx, const float* y, int ny,
                           int d, float* ip) {
    const float one = 1, zero = 0;
    sgemm_("Transpose", "Not transpose", &ny, &nx, &d, &one, y, &d, x, &d,
           &zero, ip, &ny);
}

}  // namespace flashkmeans::detail
