#include "cpu/block_knn.hpp"

#include "cpu/blas.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

namespace flashkmeans::detail {
namespace {

// Per-thread tiles of 128 rows x 1024 centroids (512 KiB of cross terms)
// stay in a core's L2. Without thread control over BLAS, blocks of 4096 rows
// keep a multi-threaded sgemm efficient instead.
constexpr int64_t kRowsPerTile = 128;
constexpr int64_t kRowsPerBlock = 4096;
constexpr int64_t kCentroidsPerBlock = 1024;

/// Keeps the best `topk` (value, label) of one row sorted best-first.
/// `worse(a, b)` is true when a is a worse score than b.
template <bool kL2>
inline void insert_sorted(float* vals, int64_t* ids, int64_t topk, float v, int64_t id) {
    auto worse = [](float a, float b) { return kL2 ? a > b : a < b; };
    if (!worse(vals[topk - 1], v)) return;  // not better than the current worst
    int64_t pos = topk - 1;
    while (pos > 0 && worse(vals[pos - 1], v)) {
        vals[pos] = vals[pos - 1];
        ids[pos] = ids[pos - 1];
        pos--;
    }
    vals[pos] = v;
    ids[pos] = id;
}

template <bool kL2>
void fold_block(const float* ip, const float* xn, const float* yn, int64_t i0,
                int64_t i1, int64_t j0, int64_t j1, int64_t topk,
                int64_t* labels, float* distances, bool parallel) {
    const int64_t nj = j1 - j0;
#pragma omp parallel for if (parallel && (i1 - i0) * nj > 65536)
    for (int64_t i = i0; i < i1; i++) {
        const float* row = ip + (i - i0) * nj;
        float* vals = distances + i * topk;
        int64_t* ids = labels + i * topk;
        if (topk == 1) {
            float best = vals[0];
            int64_t arg = ids[0];
            for (int64_t j = 0; j < nj; j++) {
                float v = row[j];
                if (kL2) {
                    v = xn[i] + yn[j0 + j] - 2 * v;
                    if (v < 0) v = 0;  // round-off for (near-)identical vectors
                    if (v < best) { best = v; arg = j0 + j; }
                } else if (v > best) {
                    best = v;
                    arg = j0 + j;
                }
            }
            vals[0] = best;
            ids[0] = arg;
        } else {
            for (int64_t j = 0; j < nj; j++) {
                float v = row[j];
                if (kL2) {
                    v = xn[i] + yn[j0 + j] - 2 * v;
                    if (v < 0) v = 0;
                }
                insert_sorted<kL2>(vals, ids, topk, v, j0 + j);
            }
        }
    }
}

}  // namespace

void block_knn(const float* x, const float* xn, int64_t n, const float* y,
               const float* yn, int64_t k, int64_t d, Metric metric,
               int64_t topk, int64_t* labels, float* distances,
               bool faiss_blas_blocking) {
    const bool l2 = metric == Metric::L2;
    std::fill(labels, labels + n * topk, int64_t(-1));
    std::fill(distances, distances + n * topk, l2 ? HUGE_VALF : -HUGE_VALF);
    if (n == 0 || k == 0) return;

    // Each thread takes tiles of rows and runs single-threaded sgemm on
    // them, so that a tile's cross terms are folded while still in its
    // core's cache; BLAS's own threads would write a large block to memory
    // first and read it back.
    // Called from inside a parallel region (e.g. Faiss's IVF search calls its
    // quantizer from several threads), the caller's threads are the
    // parallelism: one tile stream per caller, BLAS left as it is.
    std::unique_ptr<SingleThreadedBlas> blas_guard;
    if (!faiss_blas_blocking && !omp_in_parallel())
        blas_guard = std::make_unique<SingleThreadedBlas>();
    const bool tiled = blas_guard && blas_guard->active();
    const int64_t rows_per_tile = tiled ? kRowsPerTile : kRowsPerBlock;
    const int64_t by = std::min(k, kCentroidsPerBlock);
#pragma omp parallel if (tiled)
    {
        std::unique_ptr<float[]> ip(new float[std::min(n, rows_per_tile) * by]);
#pragma omp for schedule(dynamic)
        for (int64_t i0 = 0; i0 < n; i0 += rows_per_tile) {
            const int64_t i1 = std::min(n, i0 + rows_per_tile);
            for (int64_t j0 = 0; j0 < k; j0 += kCentroidsPerBlock) {
                const int64_t j1 = std::min(k, j0 + kCentroidsPerBlock);
                cross_products(x + i0 * d, int(i1 - i0), y + j0 * d, int(j1 - j0), int(d), ip.get());
                if (l2)
                    fold_block<true>(ip.get(), xn, yn, i0, i1, j0, j1, topk, labels, distances, !tiled);
                else
                    fold_block<false>(ip.get(), xn, yn, i0, i1, j0, j1, topk, labels, distances, !tiled);
            }
        }
    }
}

}  // namespace flashkmeans::detail
