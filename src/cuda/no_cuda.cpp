// Stand-ins for the CUDA backend in builds without a CUDA compiler.
#include "backend.hpp"

#include <flashkmeans/error.hpp>

namespace flashkmeans::detail {

std::unique_ptr<Backend> make_cuda_backend(int, size_t, bool) { return nullptr; }

void cuda_search(const ArrayView&, const ArrayView&, int64_t, Metric,
                 Precision, int, int64_t*, float*) {
    throw Error("flashkmeans was built without CUDA: device=cuda is unavailable");
}

int64_t cuda_count_nonfinite(const ArrayView&) {
    throw Error("flashkmeans was built without CUDA: GPU arrays are unavailable");
}

int cuda_device_count() { return 0; }

void cuda_copy(void*, const void*, size_t, bool, void*) {
    throw Error("flashkmeans was built without CUDA: GPU buffers are unavailable");
}

}  // namespace flashkmeans::detail
