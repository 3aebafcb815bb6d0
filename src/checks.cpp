#include "checks.hpp"

#include "backend.hpp"
#include "half.hpp"

#include <cmath>
#include <cstring>
#include <vector>

namespace flashkmeans::detail {

void check_data_array(const char* name, const ArrayView& x, int ndim, int may_be_empty) {
    const bool empty = may_be_empty >= 0 && may_be_empty < x.ndim && x.shape[may_be_empty] == 0;
    FLASHKMEANS_CHECK(x.data != nullptr || empty, name, ": null data pointer");
    FLASHKMEANS_CHECK(x.ndim == ndim, name, ": expected ", ndim,
                      " dimensions, got ", x.describe());
    for (int i = 0; i < ndim; i++) {
        FLASHKMEANS_CHECK(x.shape[i] > 0 || (i == may_be_empty && x.shape[i] == 0), name,
                          ": dimension ", i,
                          " must be positive, got ", x.describe());
        FLASHKMEANS_CHECK(x.strides[i] >= 0, name,
                          ": negative strides are not supported, got ", x.describe());
    }
    FLASHKMEANS_CHECK(x.shape[ndim - 1] == 1 || x.strides[ndim - 1] >= 1, name,
                      ": last dimension stride must be >= 1");
}

void check_finite(const char* name, const ArrayView& x) {
    if (x.on_device()) {
        const int64_t bad = cuda_count_nonfinite(x);
        FLASHKMEANS_CHECK(bad == 0, name, ": input contains NaN or Inf (", bad,
                          " values, GPU array ", x.describe(),
                          "); set check_finite=false to skip this check");
        return;
    }
    // x as B matrices of rows x cols; a vector is a single row.
    const bool batched = x.ndim == 3;
    const int64_t B = batched ? x.shape[0] : 1;
    const int64_t rows = x.ndim == 1 ? 1 : x.shape[x.ndim - 2];
    const int64_t cols = x.shape[x.ndim - 1];
    const int64_t rs = x.ndim == 1 ? 0 : x.strides[x.ndim - 2];
    const int64_t cs = x.strides[x.ndim - 1];
    const int64_t es = dtype_size(x.dtype);
    bool bad = false;
    int64_t bad_at = -1;
    for (int64_t b = 0; b < B && !bad; b++) {
        auto base = static_cast<const char*>(x.data) + (batched ? b * x.strides[0] * es : 0);
#pragma omp parallel for reduction(|| : bad) if (rows * cols > 65536)
        for (int64_t i = 0; i < rows; i++) {
            for (int64_t j = 0; j < cols; j++) {
                const char* e = base + (i * rs + j * cs) * es;
                float v;
                if (x.dtype == DType::f32) std::memcpy(&v, e, 4);
                else {
                    uint16_t h;
                    std::memcpy(&h, e, 2);
                    v = x.dtype == DType::f16 ? half_to_float(h) : bf16_to_float(h);
                }
                if (!std::isfinite(v)) {
                    bad = true;
#pragma omp critical
                    bad_at = b * rows + i;
                }
            }
        }
    }
    FLASHKMEANS_CHECK(!bad, name, ": input contains NaN or Inf (for instance in row ",
                      bad_at, "); set check_finite=false to skip this check");
}

}  // namespace flashkmeans::detail
