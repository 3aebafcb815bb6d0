// Stand-ins for builds without NCCL (no CUDA, or nccl.h not found at
// configure time): data-parallel fits then reduce through host memory.
#include "distributed/nccl.hpp"

namespace flashkmeans {
namespace {
[[noreturn]] void unavailable() {
    throw Error("flashkmeans was built without NCCL (configure with nccl.h reachable: "
                "NCCL_ROOT, or the nvidia-nccl pip package); use make_local_communicators()");
}
}  // namespace

bool nccl_available() { return false; }
NcclUniqueId nccl_unique_id() { unavailable(); }
std::unique_ptr<Communicator> make_nccl_communicator(const NcclUniqueId&, int, int, int) {
    unavailable();
}
std::unique_ptr<Communicator> wrap_nccl_communicator(void*, int) { unavailable(); }

namespace detail {
std::vector<std::unique_ptr<Communicator>> make_nccl_communicators_all(const std::vector<int>&) {
    unavailable();
}
}  // namespace detail
}  // namespace flashkmeans
