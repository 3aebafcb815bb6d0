#include "src/cuda/device_data.hpp"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

namespace flashkmeans::detail {

ComputePlan plan_compute(DType in, Precision p) {
    using kernels::MathKind;
    switch (p) {
        case Precision::exact: return {DType::f32, MathKind::ffma};
        case Precision::fp16: return {DType::f16, MathKind::f16};
        case Precision::bf16: return {DType::bf16, MathKind::bf16};
        case Precision::tf32:
        case Precision::automatic:
        default:
            if (in == DType::f16) return {DType::f16, MathKind::f16};
            if (in == DType::bf16) return {DType::bf16, MathKind::bf16};
            return {DType::f32, p == Precision::tf32 ? MathKind::tf32 : MathKind::ffma};
    }
}

std::string describe_view(const ArrayView& v) {
    static const char* names[] = {"f32", "f16", "bf16"};
    static const char* mem[] = {"host", "pinned", "cuda"};
    std::string s = "(";
    for (int i = 0; i < v.ndim; ++i) s += (i ? ", " : "") + std::to_string(v.shape[i]);
    s += ") ";
    s += names[int(v.dtype) % 3];
    s += " ";
    s += mem[int(v.memory) % 3];
    return s;
}

kernels::Operand make_operand(const kernels::RowsRef& x, int64_t rows, int64_t d) {
    const int64_t es = dtype_size(x.dtype);
    return {static_cast<const uint32_t*>(x.data), x.ld * es / 4, x.batch * es / 4, rows,
            int((d * es + 15) / 16)};
}

int64_t check_points_view(const ArrayView& x, int64_t batch, int64_t d, int gpu_id,
                          const char* what) {
    const std::string w = what;
    if (x.data == nullptr) throw Error("flashkmeans: " + w + " is empty");
    if (!(x.ndim == 3 || (x.ndim == 2 && batch == 1)))
        throw Error("flashkmeans: " + w + " must be (n, d) or (batch, n, d), got " +
                    describe_view(x));
    const int r = x.ndim - 2;
    if (x.ndim == 3 && x.shape[0] != batch)
        throw Error("flashkmeans: " + w + " has " + std::to_string(x.shape[0]) +
                    " problems, expected " + std::to_string(batch));
    if (x.shape[r + 1] != d)
        throw Error("flashkmeans: " + w + " has dimension " + std::to_string(x.shape[r + 1]) +
                    ", expected " + std::to_string(d));
    if (x.shape[r + 1] > 1 && x.strides[r + 1] != 1)
        throw Error("flashkmeans: " + w + " must have unit stride along d (row-major rows), got " +
                    std::to_string(x.strides[r + 1]));
    if (x.shape[r] > 1 && x.strides[r] < d)
        throw Error("flashkmeans: " + w + " rows overlap (row stride " +
                    std::to_string(x.strides[r]) + " < d = " + std::to_string(d) + ")");
    if (x.on_device() && x.device_id != gpu_id)
        throw Error("flashkmeans: " + w + " lives on GPU " + std::to_string(x.device_id) +
                    " but the fit runs on GPU " + std::to_string(gpu_id));
    return x.shape[r];
}

namespace {

bool usable_in_place(const ArrayView& x, int64_t d, bool gathered, DType store, int gpu_id) {
    if (!x.on_device() || x.device_id != gpu_id || gathered || x.dtype != store) return false;
    const int64_t es = dtype_size(store);
    const int r = x.ndim - 2;
    const int64_t ld = x.shape[r] > 1 ? x.strides[r] : round_up(d, elems_per_16b(store));
    const int64_t bs = x.ndim == 3 ? x.strides[0] : 0;
    return (d * es) % 16 == 0 && (ld * es) % 16 == 0 && (bs * es) % 16 == 0 &&
           reinterpret_cast<uintptr_t>(x.data) % 16 == 0;
}

float load_host(const void* p, DType t) {
    switch (t) {
        case DType::f16: return __half2float(*static_cast<const __half*>(p));
        case DType::bf16: return __bfloat162float(*static_cast<const __nv_bfloat16*>(p));
        default: return *static_cast<const float*>(p);
    }
}
void store_host(void* p, DType t, float v) {
    switch (t) {
        case DType::f16: *static_cast<__half*>(p) = __float2half_rn(v); break;
        case DType::bf16: *static_cast<__nv_bfloat16*>(p) = __float2bfloat16_rn(v); break;
        default: *static_cast<float*>(p) = v;
    }
}

// Row conversions in bulk: the per-element host intrinsics of cuda_fp16.h
// are far too slow to keep up with a PCIe copy. Both round to nearest even,
// as __float2half_rn / __float2bfloat16_rn do.
__attribute__((target("avx,f16c"))) void f32_to_f16_f16c(const float* s, uint16_t* d,
                                                          int64_t n) {
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(d + j),
                         _mm256_cvtps_ph(_mm256_loadu_ps(s + j), _MM_FROUND_TO_NEAREST_INT));
    for (; j < n; ++j) store_host(d + j, DType::f16, s[j]);
}
__attribute__((target("avx,f16c"))) void f16_to_f32_f16c(const uint16_t* s, float* d,
                                                          int64_t n) {
    int64_t j = 0;
    for (; j + 8 <= n; j += 8)
        _mm256_storeu_ps(d + j, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + j))));
    for (; j < n; ++j) d[j] = load_host(s + j, DType::f16);
}
bool have_f16c() {
    static const bool yes = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
    return yes;
}
void f32_to_bf16(const float* s, uint16_t* d, int64_t n) {
    for (int64_t j = 0; j < n; ++j) {
        uint32_t u;
        std::memcpy(&u, &s[j], 4);
        d[j] = (u & 0x7fffffffu) > 0x7f800000u ? uint16_t((u >> 16) | 0x40u)  // quiet NaN
                                               : uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
}
void bf16_to_f32(const uint16_t* s, float* d, int64_t n) {
    for (int64_t j = 0; j < n; ++j) {
        const uint32_t u = uint32_t(s[j]) << 16;
        std::memcpy(&d[j], &u, 4);
    }
}

void pack_one(const HostRows& h, const char* srow, char* drow) {
    const int64_t es = dtype_size(h.store), ses = dtype_size(h.dtype);
    const int64_t d = h.d;
    auto f32s = reinterpret_cast<const float*>(srow);
    auto u16s = reinterpret_cast<const uint16_t*>(srow);
    if (h.dtype == h.store) {
        std::memcpy(drow, srow, size_t(d * es));
    } else if (h.dtype == DType::f32 && h.store == DType::f16 && have_f16c()) {
        f32_to_f16_f16c(f32s, reinterpret_cast<uint16_t*>(drow), d);
    } else if (h.dtype == DType::f16 && h.store == DType::f32 && have_f16c()) {
        f16_to_f32_f16c(u16s, reinterpret_cast<float*>(drow), d);
    } else if (h.dtype == DType::f32 && h.store == DType::bf16) {
        f32_to_bf16(f32s, reinterpret_cast<uint16_t*>(drow), d);
    } else if (h.dtype == DType::bf16 && h.store == DType::f32) {
        bf16_to_f32(u16s, reinterpret_cast<float*>(drow), d);
    } else {
        for (int64_t j = 0; j < d; ++j)
            store_host(drow + j * es, h.store, load_host(srow + j * ses, h.dtype));
    }
    std::memset(drow + d * es, 0, size_t((h.ld - d) * es));
}

// Plain runs (no conversion) with streaming stores: 32-byte aligned
// destination stores that bypass the cache, so the destination lines are not
// read first and the source stays in cache.
__attribute__((target("avx"))) void copy_nt_avx(char* dst, const char* src, size_t n) {
    size_t head = (32 - (reinterpret_cast<uintptr_t>(dst) & 31)) & 31;
    head = std::min(head, n);
    std::memcpy(dst, src, head);
    dst += head;
    src += head;
    n -= head;
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
        const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 32));
        const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 64));
        const __m256i e = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 96));
        _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i), a);
        _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i + 32), b);
        _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i + 64), c);
        _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i + 96), e);
    }
    for (; i + 32 <= n; i += 32)
        _mm256_stream_si256(reinterpret_cast<__m256i*>(dst + i),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i)));
    std::memcpy(dst + i, src + i, n - i);
    _mm_sfence();
}
void copy_run(char* dst, const char* src, size_t n) {
    static const bool avx = __builtin_cpu_supports("avx");
    if (avx && n >= (size_t(64) << 10)) return copy_nt_avx(dst, src, n);
    std::memcpy(dst, src, n);
}

/// Flat rows [t0, t1) of a pack (row t = source row (b0 + t / count, i0 + t % count)).
void pack_range(const HostRows& h, int64_t b0, int64_t i0, int64_t count, int64_t t0, int64_t t1,
                char* out) {
    const int64_t rb = h.row_bytes();
    const bool plain = h.plain();
    for (int64_t t = t0; t < t1;) {
        const int64_t b = t / count, i = t - b * count, m = std::min(t1 - t, count - i);
        if (plain) {
            copy_run(out + t * rb, h.src_row(b0 + b, i0 + i), size_t(m * rb));
        } else {
            for (int64_t q = 0; q < m; ++q)
                pack_one(h, h.src_row(b0 + b, i0 + i + q), out + (t + q) * rb);
        }
        t += m;
    }
}

/// Host threads for packing: enough to outrun a PCIe copy (a thread moves a
/// few GB/s), few enough to leave the machine to the caller.
int pack_threads() {
    static const int n = int(std::min<int64_t>(
        16, std::max<int64_t>(1, std::thread::hardware_concurrency())));
    return n;
}

}  // namespace

/// Parts of one pack; claimed one at a time by pool workers and waiters.
struct PackJob {
    HostRows h;
    int64_t b0 = 0, i0 = 0, count = 0, total = 0, per = 0;
    char* out = nullptr;
    int64_t parts = 0;
    std::atomic<int64_t> next{0}, done{0};
    std::mutex m;
    std::condition_variable cv;

    /// Runs one unclaimed part; false when none is left.
    bool run_one() {
        const int64_t p = next.fetch_add(1);
        if (p >= parts) return false;
        pack_range(h, b0, i0, count, p * per, std::min(total, (p + 1) * per), out);
        if (done.fetch_add(1) + 1 == parts) {
            std::lock_guard<std::mutex> l(m);
            cv.notify_all();
        }
        return true;
    }
};

namespace {

/// The process-wide packing threads. Never destroyed (workers are detached
/// and idle on a condition variable), so that no static destruction order
/// can pull it away from a fit still running at exit.
class PackPool {
   public:
    static PackPool& get() {
        static PackPool* pool = new PackPool(pack_threads() - 1);
        return *pool;
    }
    void submit(const std::shared_ptr<PackJob>& j) {
        if (workers_ == 0) return;
        {
            std::lock_guard<std::mutex> l(m_);
            q_.push_back(j);
        }
        cv_.notify_all();
    }

   private:
    explicit PackPool(int workers) : workers_(std::max(0, workers)) {
        for (int w = 0; w < workers_; ++w) std::thread([this] { loop(); }).detach();
    }
    void loop() {
        for (;;) {
            std::shared_ptr<PackJob> j;
            {
                std::unique_lock<std::mutex> l(m_);
                cv_.wait(l, [&] { return !q_.empty(); });
                j = q_.front();
            }
            while (j->run_one()) {
            }
            std::lock_guard<std::mutex> l(m_);
            if (!q_.empty() && q_.front() == j) q_.pop_front();
        }
    }
    int workers_;
    std::mutex m_;
    std::condition_variable cv_;
    std::deque<std::shared_ptr<PackJob>> q_;
};

}  // namespace

HostRows host_rows(const ArrayView& x, const std::vector<int>& rows, int64_t d, DType store) {
    HostRows h;
    const int r = x.ndim - 2;
    h.data = static_cast<const char*>(x.data);
    h.dtype = x.dtype;
    h.src_ld = x.shape[r] > 1 ? x.strides[r] : d;
    h.src_batch = x.ndim == 3 ? x.strides[0] : 0;
    h.rows = &rows;
    h.d = d;
    h.store = store;
    h.ld = round_up(d, elems_per_16b(store));
    return h;
}

void PackTicket::wait() {
    if (!job_) return;
    while (job_->run_one()) {
    }
    {
        std::unique_lock<std::mutex> l(job_->m);
        job_->cv.wait(l, [&] { return job_->done.load() == job_->parts; });
    }
    job_.reset();
}

PackTicket pack_host_rows_async(const HostRows& h, int64_t b0, int64_t batch, int64_t i0,
                                int64_t count, void* dst) {
    PackTicket t;
    const int64_t total = batch * count, rb = h.row_bytes();
    if (total <= 0) return t;
    auto j = std::make_shared<PackJob>();
    j->h = h;
    j->b0 = b0;
    j->i0 = i0;
    j->count = count;
    j->total = total;
    j->out = static_cast<char*>(dst);
    // Parts of about 4 MiB (at most 4 a thread, so that the threads finish
    // together), none for small packs.
    const int64_t nt = pack_threads();
    const int64_t parts = std::min<int64_t>(
        {4 * nt, std::max<int64_t>(1, total * rb / (int64_t(4) << 20)), total});
    j->per = (total + parts - 1) / parts;
    j->parts = (total + j->per - 1) / j->per;
    t.job_ = j;
    if (j->parts > 1) PackPool::get().submit(j);
    return t;
}

void pack_host_rows(const HostRows& h, int64_t b0, int64_t batch, int64_t i0, int64_t count,
                    void* dst) {
    pack_host_rows_async(h, b0, batch, i0, count, dst).wait();
}

HostRegistrations& host_registrations() {
    static HostRegistrations* r = new HostRegistrations();  // never destroyed (see PackPool)
    return *r;
}

bool HostRegistrations::overlaps(const void* p, size_t bytes) const {
    const uintptr_t a = reinterpret_cast<uintptr_t>(p), e = a + bytes;
    for (const auto& r : ranges)
        if (r.first < e && a < r.second) return true;
    return false;
}

void host_row_as_f32(const HostRows& h, int64_t b, int64_t i, float* out) {
    const char* srow = h.src_row(b, i);
    const int64_t ses = dtype_size(h.dtype);
    for (int64_t j = 0; j < h.d; ++j) {
        float v = load_host(srow + j * ses, h.dtype);
        if (h.store != DType::f32) {  // round to the stored type as the device sees it
            alignas(4) char tmp[4];
            store_host(tmp, h.store, v);
            v = load_host(tmp, h.store);
        }
        out[j] = v;
    }
}

size_t upload_bytes(const ArrayView& x, int64_t batch, int64_t n, int64_t d, bool gathered,
                    DType store, int gpu_id) {
    if (usable_in_place(x, d, gathered, store, gpu_id)) return 0;
    return size_t(batch * n * round_up(d, elems_per_16b(store)) * dtype_size(store));
}

void upload_rows(const ArrayView& x, int64_t batch, int64_t n, int64_t d,
                 const std::vector<int>& rows, const int32_t* rows_dev, DType store,
                 int gpu_id, cudaStream_t stream, DeviceRows& out) {
    const bool gathered = !rows.empty();
    const int r = x.ndim - 2;
    const int64_t src_ld = x.shape[r] > 1 ? x.strides[r] : d;
    const int64_t src_bs = x.ndim == 3 ? x.strides[0] : 0;
    out.dtype = store;
    out.own.release();
    if (usable_in_place(x, d, gathered, store, gpu_id)) {
        out.data = x.data;
        out.ld = x.shape[r] > 1 ? x.strides[r] : round_up(d, elems_per_16b(store));
        out.batch = src_bs;
        return;
    }
    const int64_t ld = round_up(d, elems_per_16b(store));
    const int64_t es = dtype_size(store);
    out.own.reset(size_t(batch * n * ld * es));
    out.data = out.own.get();
    out.ld = ld;
    out.batch = n * ld;
    if (batch * n == 0) return;

    if (x.on_device()) {
        kernels::copy_rows({x.data, x.dtype, src_ld, src_bs}, gathered ? rows_dev : nullptr,
                           int(batch), n, d, out.own.get(), store, ld, n * ld, stream);
        return;
    }
    // Host memory: one direct copy when nothing changes, else convert/gather
    // through two pinned staging buffers so conversion overlaps the transfer.
    if (!gathered && x.dtype == store && ld == d && src_ld == d && (batch == 1 || src_bs == n * d)) {
        const size_t bytes = size_t(batch * n * d * es);
        // A pageable buffer that straddles the edge of a range another fit
        // page-locked is refused by cudaMemcpy: such uploads are packed
        // instead, and no fit registers while a pageable copy runs.
        std::unique_lock<std::mutex> lock(host_registrations().m, std::defer_lock);
        if (x.memory != MemoryKind::pinned) lock.lock();
        if (!lock.owns_lock() || !host_registrations().overlaps(x.data, bytes)) {
            FK_CUDA_CHECK(cudaMemcpyAsync(out.own.get(), x.data, bytes, cudaMemcpyHostToDevice,
                                          stream));
            FK_CUDA_CHECK(cudaStreamSynchronize(stream));
            return;
        }
    }
    const HostRows h = host_rows(x, rows, d, store);
    const int64_t row_bytes = ld * es;
    const int64_t stage_rows = std::max<int64_t>(1, (int64_t(32) << 20) / row_bytes);
    void* stage[2] = {nullptr, nullptr};
    cudaEvent_t done[2] = {nullptr, nullptr};
    auto cleanup = [&] {
        for (int i = 0; i < 2; ++i) {
            if (done[i]) (void)cudaEventDestroy(done[i]);
            if (stage[i]) (void)cudaFreeHost(stage[i]);
        }
    };
    try {
        for (int i = 0; i < 2; ++i) {
            FK_CUDA_CHECK(cudaMallocHost(&stage[i], size_t(stage_rows * row_bytes)));
            FK_CUDA_CHECK(cudaEventCreateWithFlags(&done[i], cudaEventDisableTiming));
        }
        const int64_t total = batch * n;
        int chunk = 0;
        for (int64_t r0 = 0; r0 < total; r0 += stage_rows, ++chunk) {
            const int s = chunk & 1;
            const int64_t r1 = std::min(total, r0 + stage_rows);
            if (chunk >= 2) FK_CUDA_CHECK(cudaEventSynchronize(done[s]));
            char* dst = static_cast<char*>(stage[s]);
            // Flat rows r0..r1 of (batch, n), one problem's piece at a time.
            for (int64_t q = r0; q < r1;) {
                const int64_t b = q / n, i = q - b * n, m = std::min(r1 - q, n - i);
                pack_host_rows(h, b, 1, i, m, dst + (q - r0) * row_bytes);
                q += m;
            }
            FK_CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(out.own.get()) + r0 * row_bytes, dst,
                                          size_t((r1 - r0) * row_bytes), cudaMemcpyHostToDevice,
                                          stream));
            FK_CUDA_CHECK(cudaEventRecord(done[s], stream));
        }
        FK_CUDA_CHECK(cudaStreamSynchronize(stream));
    } catch (...) {
        (void)cudaStreamSynchronize(stream);
        cleanup();
        throw;
    }
    cleanup();
}

}  // namespace flashkmeans::detail
