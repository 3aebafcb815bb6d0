// What the public fit entry points share: argument checks, the choice of
// backend and of GPUs, and the data-parallel fits (src/distributed/).
#pragma once

#include "backend.hpp"

#include <flashkmeans/distributed.hpp>

#include <memory>
#include <vector>

namespace flashkmeans::detail {

/// Throws Error naming the first bad argument of a fit. shard: x is one
/// rank's part of a data-parallel fit (n >= k is then checked globally).
void validate_fit(const ArrayView& x, int64_t k, const KMeansParams& p,
                  const ArrayView& weights, const ArrayView& init, bool batched, bool shard);

/// The backend for x and p.device, p.gpu_id, p.device_memory_budget,
/// p.faiss_blas_blocking, p.deterministic.
std::unique_ptr<Backend> choose_backend(const ArrayView& x, const KMeansParams& p);

/// The GPUs a fit of x runs on: one entry for a one-device fit (or the CPU),
/// several when host data is split over the GPUs of this host.
std::vector<int> fit_gpus(const ArrayView& x, const KMeansParams& p);

/// x (host) split into contiguous row ranges over `gpus`, one thread each.
KMeansResult fit_multi_gpu(const ArrayView& x, int64_t k, const KMeansParams& p,
                           const ArrayView& weights, const ArrayView& init,
                           const std::vector<int>& gpus);

}  // namespace flashkmeans::detail
