// Host entry points of the small data-movement kernels (norms.cu): squared
// row norms, strided/gathered/converted row copies, centroid post-processing.
#pragma once

#include <cuda_runtime.h>
#include <flashkmeans/array_view.hpp>

#include <cstdint>

namespace flashkmeans::kernels {

/// A batch of row-major matrices in device memory; strides in elements.
struct RowsRef {
    const void* data;
    DType dtype;
    int64_t ld;     // elements between rows
    int64_t batch;  // elements between problems
};

/// out[b * rows + i] = ||row i of problem b||^2 over the first d elements.
void row_norms(const RowsRef& x, int batch, int64_t rows, int64_t d, float* out,
               cudaStream_t stream);

/// dst row i of problem b = src row sel[i] of problem b (or i when sel is null),
/// converted to dst's type; elements [d, dst.ld) of each dst row become 0.
void copy_rows(const RowsRef& src, const int32_t* sel, int batch, int64_t rows, int64_t d,
               void* dst, DType dst_type, int64_t dst_ld, int64_t dst_batch,
               cudaStream_t stream);

/// copy_rows of all rows (no selection) and, in the same launch,
/// norms[b * rows + i] = what row_norms gives for dst row i of problem b,
/// bit for bit (the norm of the converted values).
void copy_rows_with_norms(const RowsRef& src, int batch, int64_t rows, int64_t d, void* dst,
                          DType dst_type, int64_t dst_ld, int64_t dst_batch, float* norms,
                          cudaStream_t stream);

/// *count += number of NaN/Inf values in the first d elements of the rows
/// (count is a device counter the caller zeroes).
void count_nonfinite(const RowsRef& x, int batch, int64_t rows, int64_t d,
                     unsigned long long* count, cudaStream_t stream);

/// out[i] = in[i] for n labels (the argmin kernel writes int32).
void widen_labels(const int32_t* in, int64_t n, int64_t* out, cudaStream_t stream);

/// In place on `rows` contiguous float rows of length d: spherical scales a
/// row by 1/||row|| when its norm is positive; round applies roundf.
void post_process_rows(float* c, int64_t rows, int64_t d, bool spherical, bool round,
                       cudaStream_t stream);

}  // namespace flashkmeans::kernels
