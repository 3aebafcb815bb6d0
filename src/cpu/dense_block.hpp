// Host-side float32 copy of (a subset of) an ArrayView: the CPU backend and
// CPU search work on packed float32 rows.
#pragma once

#include <flashkmeans/array_view.hpp>

#include <cstdint>
#include <vector>

namespace flashkmeans::detail {

/// Rows of problem b of x ((N, d) or (B, N, d), host memory) as packed
/// float32. When `rows` is non-empty only those rows are taken, in that order.
/// Returns a pointer into x itself when no conversion is needed (f32, packed,
/// no row selection); otherwise fills `storage`.
const float* packed_f32_rows(const ArrayView& x, int64_t b,
                             const std::vector<int>& rows,
                             std::vector<float>& storage);

/// Squared L2 norms of n packed rows of dimension d.
void row_norms(const float* x, int64_t n, int64_t d, float* out);

}  // namespace flashkmeans::detail
