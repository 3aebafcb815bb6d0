// Host entry points of the sort-inverse centroid update (update.cu).
//
// 1. keys = (problem << kbits) | label, values = global point index;
// 2. CUB radix sort on the kbits + bbits low bits only;
// 3. each warp walks a fixed segment of the sorted order, summing w_i * x_i of
//    one cluster in registers, and adds the sum to the cluster once per run it
//    sees (a run spanning several segments gets one add per segment);
// 4. centroid = sum * (1 / weight) where the weight is positive.
// When d <= 32 and a problem's k x d sums fit in shared memory (<= 96 KiB),
// steps 1-3 are replaced by per-block sums in shared memory (no sort), e.g.
// PQ codebooks (k = 256, d = 4).
#pragma once

#include <cuda_runtime.h>
#include <flashkmeans/array_view.hpp>

#include <cstddef>
#include <cstdint>

#include "kernels/norms.cuh"

namespace flashkmeans::kernels {

/// Bits needed to hold values 0..count-1 (0 for count <= 1).
int bits_for(int64_t count);

/// Device bytes of CUB's temporary storage for sorting `total` pairs.
size_t sort_temp_bytes(int64_t total);

struct UpdateBuffers {
    uint32_t* keys[2];  // (B * n) each
    int32_t* vals[2];   // (B * n) each
    void* sort_temp;
    size_t sort_temp_bytes;
};

/// Sums (B, k, d), weight sums (B, k) and counts (B, k) of the assignment
/// `labels` (B, n) of the rows x (B, n, d). The outputs are zeroed here unless
/// `accumulate`, which adds to them instead: the streamed fit sums one chunk
/// of rows at a time (buf then needs room for B * n of the chunk only).
void cluster_sums(const int32_t* labels, const RowsRef& x, const float* weights, int batch,
                  int64_t n, int64_t k, int64_t d, const UpdateBuffers& buf, float* sums,
                  float* wsum, int32_t* cnt, cudaStream_t stream, bool accumulate = false);

/// centroids[b, j] = sums[b, j] / wsum[b, j] for j >= k_frozen and wsum > 0.
void finalize_centroids(const float* sums, const float* wsum, int batch, int64_t k, int64_t d,
                        int64_t k_frozen, float* centroids, cudaStream_t stream);

}  // namespace flashkmeans::kernels
