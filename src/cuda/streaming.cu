#include "src/cuda/streaming.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/assign.cuh"
#include "kernels/update.cuh"

namespace flashkmeans::detail {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return b > 0 ? (a + b - 1) / b : 0; }

constexpr int64_t kMaxChunkBytes = int64_t(256) << 20;
constexpr int64_t kMinChunkRows = 256;

std::atomic<int> g_fail_allocations{0};

}  // namespace

namespace testing {
void fail_next_streaming_allocations(int count) { g_fail_allocations = count; }
bool take_injected_allocation_failure() {
    int v = g_fail_allocations.load();
    while (v > 0)
        if (g_fail_allocations.compare_exchange_weak(v, v - 1)) return true;
    return false;
}
}  // namespace testing

size_t streaming_bytes(const StreamShape& s, int64_t resident, int64_t chunk) {
    const int64_t B = s.batch, n = s.n, r = std::min(resident, n);
    const int64_t streamed = n - r;
    const int64_t C = std::max<int64_t>(1, std::min(chunk, std::max<int64_t>(n, 1)));
    size_t b = size_t(B * n) * (4 + (s.weighted ? 4 : 0));
    b += size_t(B * r) * size_t(s.row_bytes + 4);
    if (streamed > 0) b += 2 * size_t(B * std::min(C, streamed)) * size_t(s.row_bytes + 4);
    b += size_t(B * C) * 16 + kernels::sort_temp_bytes(B * C);
    const int64_t segs = ceil_div(r, C) + ceil_div(streamed, C);
    b += size_t(B) * 8 * size_t(ceil_div(n, kernels::kBM) + segs);
    b += s.centroid_bytes;
    return b;
}

StreamingPlanInfo plan_streaming(const StreamShape& s, size_t avail) {
    const int64_t B = s.batch, n = s.n;
    const int64_t c_min = std::max<int64_t>(1, std::min(n, kMinChunkRows));
    const size_t least = streaming_bytes(s, 0, c_min);
    if (least > avail)
        throw OutOfMemoryError(
            "flashkmeans: the fit needs at least " + std::to_string(least) +
            " bytes of device memory (streaming every point from host memory in chunks of " +
            std::to_string(c_min) + " rows), " + std::to_string(avail) + " available");
    // Chunks: an eighth of what the fixed buffers leave, at most 256 MiB of
    // rows, so that most of the budget keeps rows resident.
    const int64_t chunk_row_cost = B * (2 * (s.row_bytes + 4) + 24);
    const int64_t left = int64_t(avail - least) + c_min * chunk_row_cost;
    int64_t C = left / 8 / std::max<int64_t>(1, chunk_row_cost);
    C = std::min(C, std::max<int64_t>(1, kMaxChunkBytes / std::max<int64_t>(1, B * s.row_bytes)));
    C = std::max(c_min, std::min(C, n));
    while (C > c_min && streaming_bytes(s, 0, C) > avail) C = std::max(c_min, C / 2);

    const int64_t res_row_cost = B * (s.row_bytes + 4);
    int64_t r = std::min<int64_t>(n, int64_t(avail - streaming_bytes(s, 0, C)) /
                                         std::max<int64_t>(1, res_row_cost));
    while (r > 0 && streaming_bytes(s, r, C) > avail) r -= std::max<int64_t>(1, r / 512);
    r = std::max<int64_t>(0, r);

    StreamingPlanInfo p;
    p.streaming = true;
    p.resident_rows = r;
    p.chunk_rows = C;
    p.chunks = ceil_div(n - r, C);
    p.device_bytes = streaming_bytes(s, r, C);
    p.available_bytes = avail;
    return p;
}

// ---------------------------------------------------------------------------

RowStreamer::~RowStreamer() { reset(); }

void RowStreamer::reset() {
    if (copy_) (void)cudaStreamSynchronize(copy_);
    for (int s = 0; s < 2; ++s) {
        for (cudaEvent_t* e : {&copied_[s], &free_[s], &staged_[s]})
            if (*e) (void)cudaEventDestroy(std::exchange(*e, nullptr));
        if (stage_[s]) (void)cudaFreeHost(std::exchange(stage_[s], nullptr));
        slot_[s].release();
        norms_[s].release();
    }
    for (cudaEvent_t* e : {&t0_, &t1_})
        if (*e) (void)cudaEventDestroy(std::exchange(*e, nullptr));
    if (copy_) (void)cudaStreamDestroy(std::exchange(copy_, nullptr));
    if (registered_) (void)cudaHostUnregister(std::exchange(registered_, nullptr));
    chunks_ = 0;
    pass_bytes_ = 0;
    pass_done_ = false;
    direct_ = false;
}

namespace {

/// Page-locks the whole pages inside [p, p + bytes) (only pages holding
/// nothing but the user's array: a host buffer that straddles the edge of a
/// registered range is rejected by cudaMemcpy, so pages shared with other
/// objects must stay pageable). Returns the registered [lo, hi), or lo = null
/// when nothing was registered; `already` is set when the memory was pinned
/// by someone else. Opt-in (FLASHKMEANS_STREAM_REGISTER=1): see streaming.hpp.
char* register_range(const char* p, size_t bytes, bool& already, char*& hi) {
    already = false;
    hi = nullptr;
    const char* env = std::getenv("FLASHKMEANS_STREAM_REGISTER");
    for (const void* q : {static_cast<const void*>(p), static_cast<const void*>(p + bytes - 1)}) {
        cudaPointerAttributes a{};
        if (cudaPointerGetAttributes(&a, q) != cudaSuccess) {
            (void)cudaGetLastError();
            return nullptr;
        }
        if (a.type == cudaMemoryTypeHost) {  // pinned by someone else already
            already = true;
            return nullptr;
        }
    }
    if (!env || std::strcmp(env, "1") != 0) return nullptr;
    const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
    const uintptr_t b = (uintptr_t(p) + page - 1) / page * page;
    const uintptr_t e = (uintptr_t(p) + bytes) / page * page;
    if (e <= b) return nullptr;
    char* base = reinterpret_cast<char*>(b);
    const cudaError_t err = cudaHostRegister(base, size_t(e - b), cudaHostRegisterDefault);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        return nullptr;
    }
    hi = reinterpret_cast<char*>(e);
    return base;
}

}  // namespace

void RowStreamer::setup(const HostRows& src, bool src_pinned, int64_t batch, int64_t first,
                        int64_t n, int64_t chunk_rows) {
    reset();
    src_ = src;
    batch_ = batch;
    first_ = first;
    n_ = n;
    chunk_ = std::max<int64_t>(1, chunk_rows);
    const int64_t streamed = n - first;
    if (streamed <= 0) return;
    direct_ = src_pinned && src.plain();
    if (!direct_ && src.plain()) {
        // One page-locking of the streamed range per fit instead of a host
        // copy of every streamed row every iteration.
        const char* lo = src.src_row(0, first);
        const char* hi = src.src_row(batch - 1, n - 1) + src.row_bytes();
        bool already = false;
        registered_ = register_range(lo, size_t(hi - lo), already, registered_end_);
        direct_ = registered_ != nullptr || already;
    }
    const int64_t rows_max = std::min(chunk_, streamed);
    const size_t bytes = size_t(batch * rows_max * src.row_bytes());
    try {
        if (testing::take_injected_allocation_failure())
            throw OutOfMemoryError("flashkmeans: injected allocation failure (test)");
        for (int s = 0; s < 2; ++s) {
            slot_[s].reset(bytes);
            norms_[s].reset(size_t(batch * rows_max) * 4);
            if (!direct_) FK_CUDA_CHECK(cudaMallocHost(&stage_[s], bytes));
            FK_CUDA_CHECK(cudaEventCreateWithFlags(&copied_[s], cudaEventDisableTiming));
            FK_CUDA_CHECK(cudaEventCreateWithFlags(&free_[s], cudaEventDisableTiming));
            FK_CUDA_CHECK(cudaEventCreateWithFlags(&staged_[s], cudaEventDisableTiming));
        }
        FK_CUDA_CHECK(cudaEventCreate(&t0_));
        FK_CUDA_CHECK(cudaEventCreate(&t1_));
        FK_CUDA_CHECK(cudaStreamCreateWithFlags(&copy_, cudaStreamNonBlocking));
    } catch (...) {
        reset();
        throw;
    }
    chunks_ = (streamed + chunk_ - 1) / chunk_;
}

RowStreamer::Slot RowStreamer::acquire(int64_t j, cudaStream_t compute) {
    const int s = int(j & 1);
    const int64_t r0 = chunk_begin(j), rows = chunk_size(j);
    const int64_t rb = src_.row_bytes();
    const size_t bytes = size_t(batch_ * rows * rb);
    char* dst = slot_[s].get<char>();
    if (!direct_) {
        // The copy of chunk j - 2 out of this staging buffer must be done
        // before the host overwrites it (a never-recorded event is complete).
        FK_CUDA_CHECK(cudaEventSynchronize(staged_[s]));
        pack_host_rows(src_, 0, batch_, r0, rows, stage_[s]);
    }
    // The slot still holds chunk j - 2 until the compute on it is done.
    FK_CUDA_CHECK(cudaStreamWaitEvent(copy_, free_[s], 0));
    if (j == 0) {
        FK_CUDA_CHECK(cudaEventRecord(t0_, copy_));
        pass_bytes_ = 0;
    }
    if (!direct_) {
        FK_CUDA_CHECK(cudaMemcpyAsync(dst, stage_[s], bytes, cudaMemcpyHostToDevice, copy_));
        FK_CUDA_CHECK(cudaEventRecord(staged_[s], copy_));
    } else if (registered_) {
        // Per problem: the part inside the registered pages by DMA, the few
        // bytes in the partial pages at the array's ends from pageable memory.
        const char* lo = static_cast<const char*>(registered_);
        const char* hi = registered_end_;
        const size_t len = size_t(rows * rb);
        for (int64_t b = 0; b < batch_; ++b) {
            const char* a = src_.src_row(b, r0);
            char* o = dst + size_t(b) * len;
            const char* cut[4] = {a, std::clamp(lo, a, a + len), std::clamp(hi, a, a + len),
                                  a + len};
            for (int q = 0; q < 3; ++q)
                if (cut[q + 1] > cut[q])
                    FK_CUDA_CHECK(cudaMemcpyAsync(o + (cut[q] - a), cut[q],
                                                  size_t(cut[q + 1] - cut[q]),
                                                  cudaMemcpyHostToDevice, copy_));
        }
    } else if (batch_ == 1) {
        FK_CUDA_CHECK(cudaMemcpyAsync(dst, src_.src_row(0, r0), bytes, cudaMemcpyHostToDevice,
                                      copy_));
    } else {
        const size_t es = size_t(dtype_size(src_.dtype));
        FK_CUDA_CHECK(cudaMemcpy2DAsync(dst, size_t(rows * rb), src_.src_row(0, r0),
                                        size_t(src_.src_batch) * es, size_t(rows * rb),
                                        size_t(batch_), cudaMemcpyHostToDevice, copy_));
    }
    FK_CUDA_CHECK(cudaEventRecord(copied_[s], copy_));
    if (j == chunks_ - 1) {
        FK_CUDA_CHECK(cudaEventRecord(t1_, copy_));
        pass_done_ = true;
    }
    pass_bytes_ += double(bytes);
    FK_CUDA_CHECK(cudaStreamWaitEvent(compute, copied_[s], 0));
    Slot out;
    out.x = {dst, src_.store, src_.ld, rows * src_.ld};
    out.norms = norms_[s].get<float>();
    return out;
}

void RowStreamer::release(int64_t j, cudaStream_t compute) {
    FK_CUDA_CHECK(cudaEventRecord(free_[int(j & 1)], compute));
}

void RowStreamer::last_pass(double& bytes, double& ms) const {
    bytes = 0;
    ms = 0;
    if (chunks_ == 0 || !pass_done_) return;
    float f = 0;
    FK_CUDA_CHECK(cudaEventElapsedTime(&f, t0_, t1_));
    bytes = pass_bytes_;
    ms = f;
}

}  // namespace flashkmeans::detail
