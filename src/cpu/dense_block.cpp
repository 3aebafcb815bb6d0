#include "cpu/dense_block.hpp"

#include "half.hpp"

#include <cstring>

namespace flashkmeans::detail {

const float* packed_f32_rows(const ArrayView& x, int64_t b,
                             const std::vector<int>& rows,
                             std::vector<float>& storage) {
    const bool batched = x.ndim == 3;
    const int64_t N = x.shape[batched ? 1 : 0];
    const int64_t d = x.shape[batched ? 2 : 1];
    const int64_t row_stride = x.strides[batched ? 1 : 0];
    const int64_t col_stride = x.strides[batched ? 2 : 1];
    const int64_t esize = dtype_size(x.dtype);
    auto base = static_cast<const char*>(x.data) + (batched ? b * x.strides[0] * esize : 0);

    if (rows.empty() && x.dtype == DType::f32 && col_stride == 1 && row_stride == d)
        return reinterpret_cast<const float*>(base);

    const int64_t n = rows.empty() ? N : int64_t(rows.size());
    storage.resize(n * d);
    std::vector<char> gathered;  // one row with unit element stride
#pragma omp parallel for if (n * d > 65536) firstprivate(gathered)
    for (int64_t i = 0; i < n; i++) {
        const int64_t src_row = rows.empty() ? i : rows[i];
        const char* src = base + src_row * row_stride * esize;
        if (col_stride != 1) {
            gathered.resize(d * esize);
            for (int64_t j = 0; j < d; j++)
                std::memcpy(&gathered[j * esize], src + j * col_stride * esize, esize);
            src = gathered.data();
        }
        row_to_float(src, x.dtype, d, &storage[i * d]);
    }
    return storage.data();
}

void row_norms(const float* x, int64_t n, int64_t d, float* out) {
#pragma omp parallel for if (n * d > 65536)
    for (int64_t i = 0; i < n; i++) {
        const float* r = x + i * d;
        // Accumulated in double, as Faiss's portable fvec_norm_L2sqr does, so
        // that distances (and near-ties) are bit-identical to its IndexFlat.
        double s = 0;
        for (int64_t j = 0; j < d; j++) s += r[j] * r[j];
        out[i] = float(s);
    }
}

}  // namespace flashkmeans::detail
