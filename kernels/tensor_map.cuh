// Host side of Hopper tensor-map copies (TMA): describing a batch of
// row-major matrices of 16-bit elements as a 3-D tensor map.
#pragma once

#include <cuda.h>

#include <cstdint>

namespace flashkmeans::kernels {

/// A (cols, rows, batch) tensor of 16-bit elements: rows `ld_bytes` apart,
/// problems `batch_bytes` apart (both multiples of 16, data 16-byte aligned),
/// read in boxes of box_cols x box_rows with 128-byte swizzle (box_cols * 2 ==
/// 128). Elements outside (cols, rows) read as zeros. bf16 picks the element
/// type. Throws flashkmeans::Error when the driver refuses the description.
CUtensorMap make_tensor_map_16bit(const void* data, bool bf16, int64_t cols, int64_t rows, int64_t batch,
                                  int64_t ld_bytes, int64_t batch_bytes, int box_cols, int box_rows);

}  // namespace flashkmeans::kernels
