#include "src/cuda/streaming.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
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

int64_t cached_chunk_count(int64_t n, int64_t resident, int64_t chunk) {
    const int64_t r = std::clamp<int64_t>(resident, 0, std::max<int64_t>(n, 0));
    const int64_t C = std::max<int64_t>(1, chunk);
    return std::min(ceil_div(n - r, C), 15 * r / C);
}

int64_t cached_rows(int64_t n, int64_t resident, int64_t chunk) {
    const int64_t r = std::clamp<int64_t>(resident, 0, std::max<int64_t>(n, 0));
    const int64_t C = std::max<int64_t>(1, chunk);
    return cached_rows_of(n - r, C, cached_chunk_count(n, r, C));
}

int64_t cached_rows_of(int64_t range, int64_t chunk, int64_t cached) {
    // Unless every chunk is cached, the last (partial) chunk is streamed.
    return cached == ceil_div(range, chunk) ? range : cached * chunk;
}

size_t streaming_bytes(const StreamShape& s, int64_t resident, int64_t chunk) {
    const int64_t B = s.batch, n = s.n, r = std::clamp<int64_t>(resident, 0, n);
    const int64_t range = n - r;
    const int64_t C = std::max<int64_t>(1, std::min(chunk, std::max<int64_t>(n, 1)));
    const int64_t cached = cached_rows(n, r, C);
    const int64_t slot_rows = std::min(C, range);
    size_t b = size_t(B * n) * (4 + (s.weighted ? 4 : 0));
    b += size_t(B * r) * size_t(s.row_bytes + 4);
    b += size_t(B * cached) * size_t(s.row_bytes);
    if (range - cached > 0) b += 2 * size_t(B * slot_rows) * size_t(s.row_bytes);
    if (range > 0) b += 2 * size_t(B * slot_rows) * 4;
    // As the backend sizes it (the size does not depend on `deterministic`).
    b += kernels::update_bytes(kernels::update_shape(int(B), C, n, s.k, s.d, false));
    const int64_t segs = ceil_div(r, C) + ceil_div(range, C);
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
    // rows, so that most of the budget keeps rows on the device.
    const int64_t chunk_row_cost = B * (2 * (s.row_bytes + 4) + 24);
    const int64_t left = int64_t(avail - least) + c_min * chunk_row_cost;
    int64_t C = left / 8 / std::max<int64_t>(1, chunk_row_cost);
    C = std::min(C, std::max<int64_t>(1, kMaxChunkBytes / std::max<int64_t>(1, B * s.row_bytes)));
    C = std::max(c_min, std::min(C, n));
    while (C > c_min && streaming_bytes(s, 0, C) > avail) C = std::max(c_min, C / 2);

    // The most resident rows (and with them cached chunks) that fit. The
    // bytes grow with r except where the last streamed chunk becomes cached
    // (its slots go), so the search may stop short there, never past a fit.
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo + 1) / 2;
        if (streaming_bytes(s, mid, C) <= avail)
            lo = mid;
        else
            hi = mid - 1;
    }
    const int64_t r = lo;

    StreamingPlanInfo p;
    p.streaming = true;
    p.resident_rows = r;
    p.chunk_rows = C;
    p.chunks = ceil_div(n - r, C);
    p.cached_chunks = cached_chunk_count(n, r, C);
    p.device_bytes = streaming_bytes(s, r, C);
    p.available_bytes = avail;
    return p;
}

// ---------------------------------------------------------------------------

namespace {

double now_ms() {
    return std::chrono::duration<double, std::milli>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

/// Page-locks the whole pages inside [p, p + bytes) (only pages holding
/// nothing but the user's array: a host buffer that straddles the edge of a
/// registered range is rejected by cudaMemcpy, so pages shared with other
/// objects must stay pageable). Returns the registered [lo, hi), or lo = null
/// when nothing was registered; `already` is set when the memory was pinned
/// by someone else (not by a fit of this process). Policy: see RowStreamer.
char* register_range(const char* p, size_t bytes, bool& already, char*& hi) {
    already = false;
    hi = nullptr;
    const uintptr_t a = uintptr_t(p), e_all = a + bytes;
    // Held across the checks and the registration: two fits registering at
    // once must not take each other's pages for the user's pinned memory, and
    // no fit copies directly from memory only another fit keeps pinned (that
    // registration may end first): such ranges are packed.
    HostRegistrations& reg = host_registrations();
    std::lock_guard<std::mutex> lock(reg.m);
    if (reg.overlaps(p, bytes)) return nullptr;
    for (const void* q : {static_cast<const void*>(p), static_cast<const void*>(p + bytes - 1)}) {
        cudaPointerAttributes at{};
        if (cudaPointerGetAttributes(&at, q) != cudaSuccess) {
            (void)cudaGetLastError();
            return nullptr;
        }
        if (at.type == cudaMemoryTypeHost) {  // pinned by the user already
            already = true;
            return nullptr;
        }
    }
    const char* env = std::getenv("FLASHKMEANS_STREAM_REGISTER");
    const std::string mode = env ? env : "";
    if (mode == "0") return nullptr;
    if (mode != "1") {
        const double phys = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGESIZE));
        if (bytes < (size_t(64) << 20) || (phys > 0 && double(bytes) > phys / 2)) return nullptr;
    }
    const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
    const uintptr_t b = (a + page - 1) / page * page;
    const uintptr_t e = e_all / page * page;
    if (e <= b) return nullptr;
    char* base = reinterpret_cast<char*>(b);
    cudaError_t err = cudaHostRegister(base, size_t(e - b), cudaHostRegisterDefault);
    if (err != cudaSuccess) {
        (void)cudaGetLastError();
        // Read-only memory (a read-only mapping) can still be registered as such.
        err = cudaHostRegister(base, size_t(e - b), cudaHostRegisterReadOnly);
        if (err != cudaSuccess) {
            (void)cudaGetLastError();
            return nullptr;
        }
    }
    reg.ranges.emplace_back(b, e);
    hi = reinterpret_cast<char*>(e);
    return base;
}

void unregister_range(void* base) {
    HostRegistrations& reg = host_registrations();
    std::lock_guard<std::mutex> lock(reg.m);
    (void)cudaHostUnregister(base);
    (void)cudaGetLastError();
    for (size_t i = 0; i < reg.ranges.size(); ++i)
        if (reg.ranges[i].first == uintptr_t(base)) {
            reg.ranges.erase(reg.ranges.begin() + std::ptrdiff_t(i));
            break;
        }
}

}  // namespace

RowStreamer::~RowStreamer() { reset(); }

void RowStreamer::reset() {
    // Packing into the staging buffers reads the user's memory: done before
    // anything goes (and before the fit returns to a caller that may free it).
    for (PackTicket& t : pack_) t.wait();
    if (copy_) (void)cudaStreamSynchronize(copy_);
    for (int s = 0; s < 2; ++s) {
        for (cudaEvent_t* e : {&free_[s], &staged_[s]})
            if (*e) (void)cudaEventDestroy(std::exchange(*e, nullptr));
        if (stage_[s]) (void)cudaFreeHost(std::exchange(stage_[s], nullptr));
        stage_chunk_[s] = -1;
        slot_[s].release();
        norms_[s].release();
    }
    cache_.release();
    for (cudaEvent_t* e : {&t0_, &t1_})
        if (*e) (void)cudaEventDestroy(std::exchange(*e, nullptr));
    for (CopyTimes& c : ring_) {
        for (cudaEvent_t* e : {&c.start, &c.end})
            if (*e) (void)cudaEventDestroy(std::exchange(*e, nullptr));
        c.pass = -1;
    }
    if (copy_) (void)cudaStreamDestroy(std::exchange(copy_, nullptr));
    if (registered_) unregister_range(std::exchange(registered_, nullptr));
    registered_end_ = nullptr;
    chunks_ = cached_ = 0;
    cache_index_.clear();
    stream_index_.clear();
    next_streamed_.clear();
    loaded_.clear();
    copies_ = 0;
    pass_ = -1;
    pass_copies_ = 0;
    pass_bytes_ = pass_ms_done_ = pass_pack_wait_ms_ = 0;
    pass_done_ = false;
    direct_ = false;
}

void RowStreamer::setup(const HostRows& src, bool src_pinned, int64_t batch, int64_t n,
                        const StreamingPlanInfo& plan) {
    reset();
    const int64_t first = plan.resident_rows;
    src_ = src;
    batch_ = batch;
    first_ = first;
    n_ = n;
    chunk_ = std::max<int64_t>(1, plan.chunk_rows);
    const int64_t range = n - first;
    if (range <= 0) return;
    const int64_t S = plan.chunks, Q = plan.cached_chunks;
    if (S != ceil_div(range, chunk_) || Q < 0 || Q > S)
        throw Error("flashkmeans: streaming plan of " + std::to_string(S) + " chunks (" +
                    std::to_string(Q) + " cached) does not match " + std::to_string(range) +
                    " rows in chunks of " + std::to_string(chunk_));
    cache_index_.assign(size_t(S), -1);
    stream_index_.assign(size_t(S), -1);
    next_streamed_.assign(size_t(S) + 1, -1);
    for (int64_t j = 0, q = 0, t = 0; j < S; ++j) {
        if (chunk_streamed(j, S, Q))
            stream_index_[size_t(j)] = t++;
        else
            cache_index_[size_t(j)] = q++;
    }
    for (int64_t j = S - 1; j >= 0; --j)
        next_streamed_[size_t(j)] = cache_index_[size_t(j)] < 0 ? j : next_streamed_[size_t(j) + 1];
    loaded_.assign(size_t(Q), 0);
    const bool any_streamed = Q < S;

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
    const int64_t rows_max = std::min(chunk_, range);
    const size_t bytes = size_t(batch * rows_max * src.row_bytes());
    try {
        if (testing::take_injected_allocation_failure())
            throw OutOfMemoryError("flashkmeans: injected allocation failure (test)");
        if (Q > 0) cache_.reset(size_t(batch * cached_rows_of(range, chunk_, Q) * src.row_bytes()));
        for (int s = 0; s < 2; ++s) {
            if (any_streamed) slot_[s].reset(bytes);
            norms_[s].reset(size_t(batch * rows_max) * 4);
            if (!direct_) FK_CUDA_CHECK(cudaMallocHost(&stage_[s], bytes));
            FK_CUDA_CHECK(cudaEventCreateWithFlags(&free_[s], cudaEventDisableTiming));
            FK_CUDA_CHECK(cudaEventCreateWithFlags(&staged_[s], cudaEventDisableTiming));
        }
        FK_CUDA_CHECK(cudaEventCreate(&t0_));
        FK_CUDA_CHECK(cudaEventCreate(&t1_));
        for (int i = 0; i < kRing; ++i) {
            FK_CUDA_CHECK(cudaEventCreate(&ring_[i].start));
            FK_CUDA_CHECK(cudaEventCreate(&ring_[i].end));
        }
        FK_CUDA_CHECK(cudaStreamCreateWithFlags(&copy_, cudaStreamNonBlocking));
    } catch (...) {
        reset();
        throw;
    }
    chunks_ = S;
    cached_ = Q;
}

double RowStreamer::elapsed_ms(const CopyTimes& c) const {
    FK_CUDA_CHECK(cudaEventSynchronize(c.end));
    float f = 0;
    FK_CUDA_CHECK(cudaEventElapsedTime(&f, c.start, c.end));
    return f;
}

void RowStreamer::stage_chunk(int stage, int64_t j) {
    const double t = now_ms();
    if (stage_chunk_[stage] != j) {  // not packed ahead (a pass's first chunk, a restart)
        pack_[stage].wait();
        // The copy out of this buffer two copies ago must be done before the
        // host overwrites it (a never-recorded event is complete).
        FK_CUDA_CHECK(cudaEventSynchronize(staged_[stage]));
        pack_[stage] = pack_host_rows_async(src_, 0, batch_, chunk_begin(j), chunk_size(j),
                                            stage_[stage]);
        stage_chunk_[stage] = j;
    }
    pack_[stage].wait();  // the calling thread packs too
    pass_pack_wait_ms_ += now_ms() - t;
}

int64_t RowStreamer::next_copy_after(int64_t j) const {
    auto needs_copy = [&](int64_t k) {
        const int64_t ci = cache_index_[size_t(k)];
        return ci < 0 || !loaded_[size_t(ci)];
    };
    if (j + 1 < chunks_) {
        if (needs_copy(j + 1)) return j + 1;  // all of them, in the first pass
        const int64_t k = next_streamed_[size_t(j) + 1];
        if (k >= 0) return k;
    }
    // The next pass: its first chunk that is copied.
    if (chunks_ == 0) return -1;
    return needs_copy(0) ? 0 : next_streamed_[0];
}

void RowStreamer::prefetch_after(int64_t j) {
    const int64_t next = next_copy_after(j);
    if (next < 0) return;
    const int s = int(copies_ & 1);  // the staging buffer of the next copy
    if (stage_chunk_[s] == next) return;
    pack_[s].wait();
    // Its last copy (the one before the copy just enqueued) must be done:
    // usually it is, else this waits for it, which the compute on the chunk
    // just acquired has to do anyway.
    FK_CUDA_CHECK(cudaEventSynchronize(staged_[s]));
    pack_[s] = pack_host_rows_async(src_, 0, batch_, chunk_begin(next), chunk_size(next),
                                    stage_[s]);
    stage_chunk_[s] = next;
}

void RowStreamer::enqueue_copy(char* dst, int stage, int64_t r0, int64_t rows) {
    const int64_t rb = src_.row_bytes();
    const size_t bytes = size_t(batch_ * rows * rb);
    if (stage >= 0) {
        FK_CUDA_CHECK(cudaMemcpyAsync(dst, stage_[stage], bytes, cudaMemcpyHostToDevice, copy_));
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
}

RowStreamer::Slot RowStreamer::acquire(int64_t j, cudaStream_t compute) {
    if (j == 0) {  // a new pass
        ++pass_;
        pass_copies_ = 0;
        pass_bytes_ = pass_ms_done_ = pass_pack_wait_ms_ = 0;
        pass_done_ = false;
    }
    const int64_t ci = cache_index_[size_t(j)];
    const int64_t r0 = chunk_begin(j), rows = chunk_size(j), rb = src_.row_bytes();
    int slot = -1;
    char* dst;
    if (ci >= 0) {  // cached chunks before it are full
        dst = cache_.get<char>() + size_t(ci) * size_t(batch_ * chunk_ * rb);
    } else {
        slot = int(stream_index_[size_t(j)] & 1);
        dst = slot_[slot].get<char>();
    }
    if (ci < 0 || !loaded_[size_t(ci)]) {
        int stage = -1;
        if (!direct_) {
            stage = int(copies_ & 1);
            stage_chunk(stage, j);
        }
        // A slot still holds the streamed chunk two before until the
        // compute on it is done.
        if (slot >= 0) FK_CUDA_CHECK(cudaStreamWaitEvent(copy_, free_[slot], 0));
        CopyTimes& c = ring_[copies_ % kRing];
        if (c.pass == pass_) pass_ms_done_ += elapsed_ms(c);  // a copy 128 ago, long done
        FK_CUDA_CHECK(cudaEventRecord(c.start, copy_));
        if (pass_copies_ == 0) FK_CUDA_CHECK(cudaEventRecord(t0_, copy_));
        enqueue_copy(dst, stage, r0, rows);
        FK_CUDA_CHECK(cudaEventRecord(c.end, copy_));
        c.pass = pass_;
        if (stage >= 0) {
            FK_CUDA_CHECK(cudaEventRecord(staged_[stage], copy_));
            stage_chunk_[stage] = -1;
        }
        FK_CUDA_CHECK(cudaStreamWaitEvent(compute, c.end, 0));
        ++copies_;
        ++pass_copies_;
        pass_bytes_ += double(batch_ * rows * rb);
        if (ci >= 0) loaded_[size_t(ci)] = 1;
        if (!direct_) prefetch_after(j);
    }
    // (A cached chunk already copied: `compute` waited for its copy in the
    // first pass.)
    if (j == chunks_ - 1) {
        if (pass_copies_ > 0) FK_CUDA_CHECK(cudaEventRecord(t1_, copy_));
        pass_done_ = true;
    }
    Slot out;
    out.x = {dst, src_.store, src_.ld, rows * src_.ld};
    out.norms = norms_[j & 1].get<float>();
    return out;
}

void RowStreamer::release(int64_t j, cudaStream_t compute) {
    const int64_t si = stream_index_[size_t(j)];
    if (si >= 0) FK_CUDA_CHECK(cudaEventRecord(free_[int(si & 1)], compute));
}

void RowStreamer::last_pass(double& bytes, double& ms) const {
    bytes = 0;
    ms = 0;
    if (chunks_ == 0 || !pass_done_ || pass_copies_ == 0) return;
    bytes = pass_bytes_;
    ms = pass_ms_done_;
    for (const CopyTimes& c : ring_)
        if (c.pass == pass_) ms += elapsed_ms(c);
}

void RowStreamer::last_pass(StreamingPlanInfo& p) const {
    last_pass(p.last_pass_bytes, p.last_pass_copy_ms);
    p.last_pass_span_ms = 0;
    p.last_pass_copies = 0;
    p.last_pass_pack_wait_ms = 0;
    if (chunks_ == 0 || !pass_done_ || pass_copies_ == 0) return;
    FK_CUDA_CHECK(cudaEventSynchronize(t1_));
    float f = 0;
    FK_CUDA_CHECK(cudaEventElapsedTime(&f, t0_, t1_));
    p.last_pass_span_ms = f;
    p.last_pass_copies = pass_copies_;
    p.last_pass_pack_wait_ms = pass_pack_wait_ms_;
}

}  // namespace flashkmeans::detail
