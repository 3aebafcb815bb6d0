// NCCL inside the library (single-process multi-GPU fits).
#pragma once

#include <flashkmeans/distributed.hpp>

#include <memory>
#include <vector>

namespace flashkmeans::detail {

/// One communicator per GPU of `gpus`, all in this process (ncclCommInitAll).
/// Throws when NCCL is unavailable.
std::vector<std::unique_ptr<Communicator>> make_nccl_communicators_all(const std::vector<int>& gpus);

}  // namespace flashkmeans::detail
