// The CUDA backend of the Lloyd driver: the problems' points, norms, labels
// and centroids live on one GPU; assign runs FlashAssign, update the
// sort-inverse reduction. Only O(B k d) centroid data, O(B k) statistics and
// the labels on request cross back to the host.
//
// Device memory of a fit (B problems, n points, k centroids, d dims, s bytes
// an element of the storage type, ld = d rounded up to 16 bytes):
//   points      B n ld s   (0 when a device array is used in place)
//   norms, labels, weights   B n (4 + 4 + 4 if weighted)
//   sort keys/values         B n 16 + CUB temporary storage (about B n 8)
//   centroids   B k (d 4 [master] + ld s [compute copy] + d 4 [sums] + 12)
// Nothing of size n x k.
//
// Host input that does not fit the budget (KMeansParams::device_memory_budget,
// or the free memory) is not an error: the fit then keeps the first rows of
// every problem resident and streams the rest from host memory each
// iteration (streaming.hpp has the plan and its memory formula). An
// allocation that fails while the plan is set up leads to a smaller plan.
#include "backend.hpp"

#include <flashkmeans/distributed.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <string>

#include "kernels/assign.cuh"
#include "kernels/norms.cuh"
#include "kernels/scratch.cuh"
#include "kernels/update.cuh"
#include "src/cuda/cuda_check.hpp"
#include "src/cuda/device_data.hpp"
#include "src/cuda/streaming.hpp"

namespace flashkmeans::detail {

namespace {

/// Page-locked host memory: copies into it are asynchronous, copies into
/// pageable memory are staged and make the host wait.
struct PinnedFree {
    void operator()(void* p) const { (void)cudaFreeHost(p); }
};

class CudaBackend final : public Backend, public StreamingInfo {
   public:
    CudaBackend(int gpu_id, size_t budget, bool deterministic)
        : dev_(gpu_id), budget_(budget), deterministic_(deterministic) {
        DeviceGuard g(dev_);
        if (const char* e = std::getenv("FK_CUDA_GRAPHS")) {
            graphs_ = std::strcmp(e, "0") != 0;
            graphs_required_ = std::strcmp(e, "require") == 0;
        }
        try {
            FK_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
            FK_CUDA_CHECK(cudaStreamCreateWithFlags(&obj_stream_, cudaStreamNonBlocking));
            FK_CUDA_CHECK(cudaEventCreateWithFlags(&assigned_, cudaEventDisableTiming));
            FK_CUDA_CHECK(cudaEventCreateWithFlags(&summed_, cudaEventDisableTiming));
            FK_CUDA_CHECK(cudaEventCreate(&assign_begin_));
            FK_CUDA_CHECK(cudaEventCreate(&assign_end_));
            FK_CUDA_CHECK(cudaEventCreateWithFlags(&graph_fork_, cudaEventDisableTiming));
            FK_CUDA_CHECK(cudaEventCreateWithFlags(&graph_join_, cudaEventDisableTiming));
        } catch (...) {
            destroy_handles();  // the destructor does not run after a throwing constructor
            throw;
        }
    }
    ~CudaBackend() override {
        if (stream_) {
            int prev = 0;
            (void)cudaGetDevice(&prev);
            (void)cudaSetDevice(dev_);
            (void)cudaStreamSynchronize(stream_);
            if (obj_stream_) (void)cudaStreamSynchronize(obj_stream_);
            streamer_.reset();
            destroy_handles();
            kernels::scratch_trim();  // this fit's pooled scratch back to the driver
            (void)cudaDeviceGraphMemTrim(dev_);  // and what its graphs' scratch nodes kept
            (void)cudaSetDevice(prev);
        }
    }

    StreamingPlanInfo streaming_info() const override {
        DeviceGuard g(dev_);
        StreamingPlanInfo p = info_;
        if (p.streaming) streamer_.last_pass(p);
        return p;
    }
    const char* name() const override { return "cuda"; }

    void load(const ArrayView& x, const ArrayView& weights, const std::vector<int>& rows,
              const ProblemShape& shape, Metric metric, Precision precision) override {
        DeviceGuard g(dev_);
        // Nothing of an earlier fit stays readable if this load fails.
        have_labels_ = false;
        shape_ = shape;
        metric_ = metric;
        const int64_t B = shape.batch, n = shape.n, d = shape.d, k = shape.k;
        if (B < 1 || n < 0 || d < 1 || k < 1)
            throw Error("flashkmeans: invalid problem shape (batch " + std::to_string(B) +
                        ", n " + std::to_string(n) + ", d " + std::to_string(d) + ", k " +
                        std::to_string(k) + ")");
        if (B * n >= (int64_t(1) << 31))
            throw Error("flashkmeans: the CUDA backend handles fewer than 2^31 points in all "
                        "problems together, got " + std::to_string(B * n));
        if (B > 65535) throw Error("flashkmeans: at most 65535 problems per fit");
        if (k >= (int64_t(1) << 31)) throw Error("flashkmeans: k too large");
        const int64_t N = check_points_view(x, B, d, dev_, "x");
        if (rows.empty() ? N != n : int64_t(rows.size()) != n)
            throw Error("flashkmeans: x has " + std::to_string(N) + " rows per problem but " +
                        std::to_string(n) + " were asked for");
        for (int r : rows)
            if (r < 0 || r >= N)
                throw Error("flashkmeans: row index " + std::to_string(r) + " out of [0, " +
                            std::to_string(N) + ")");
        const ComputePlan plan = plan_compute(x.dtype, precision);
        math_ = plan.math;
        store_ = plan.store;
        const int64_t lds = round_up(d, elems_per_16b(plan.store));
        ldc_ = lds;
        release_storage();
        rows_host_ = rows;
        src_ = host_rows(x, rows_host_, d, plan.store);

        // Plan the memory first so that a fit that cannot fit fails (device
        // input) or streams (host input) before anything large is copied.
        const size_t gx = size_t(kernels::stream_grid_x(n));
        size_t need = upload_bytes(x, B, n, d, !rows.empty(), plan.store, dev_);
        need += size_t(B * n) * (4 + 4 + (weights.empty() ? 0 : 4));
        need += kernels::update_bytes(update_shape(n)) + rows.size() * 4 + gx * B * 8;
        const size_t cent_bytes =
            size_t(B * k) * (size_t(d) * 8 + size_t(lds) * dtype_size(plan.store) + 12);
        need += cent_bytes;
        size_t free_b = 0, total_b = 0;
        FK_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
        size_t avail = budget_ ? std::min(budget_, free_b) : free_b;
        if (need <= avail || x.on_device()) {
            if (need > avail)
                throw OutOfMemoryError("flashkmeans: the fit needs " + std::to_string(need) +
                                       " bytes of device memory, " + std::to_string(avail) +
                                       " available (free " + std::to_string(free_b) +
                                       ", budget " + std::to_string(budget_) + ")");
            try {
                load_resident(x, weights, rows, N, need, avail);
                return;
            } catch (const OutOfMemoryError&) {
                if (x.on_device()) throw;
                release_storage();  // the free memory was not all usable: stream
                FK_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
                avail = std::min(need, free_b) / 8 * 7;
            }
        } else if (!budget_) {
            // "Most of the free memory": leave some for the runtime and others.
            avail -= std::min(avail / 4, size_t(256) << 20);
        }
        StreamShape ss;
        ss.batch = B;
        ss.n = n;
        ss.d = d;
        ss.k = k;
        ss.row_bytes = lds * dtype_size(plan.store);
        ss.weighted = !weights.empty();
        ss.centroid_bytes = cent_bytes;
        for (int attempt = 0;; ++attempt) {
            const StreamingPlanInfo p = plan_streaming(ss, avail);  // throws when hopeless
            try {
                load_streamed(x, weights, rows, N, p);
                break;
            } catch (const OutOfMemoryError&) {
                release_storage();
                if (attempt >= 16) throw;
                FK_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
                avail = std::min(avail, free_b) / 8 * 7;
            }
        }
        FK_CUDA_CHECK(cudaStreamSynchronize(stream_));
        centroids_dirty_ = true;
        have_labels_ = false;
    }

    void gather_rows(int64_t b, const int* ids, int64_t k_ids, float* out) const override {
        DeviceGuard g(dev_);
        if (k_ids == 0) return;
        for (int64_t i = 0; i < k_ids; ++i)
            if (ids[i] < 0 || ids[i] >= shape_.n)
                throw Error("flashkmeans: gather_rows id " + std::to_string(ids[i]) +
                            " out of [0, " + std::to_string(shape_.n) + ")");
        if (info_.streaming) {
            // Every row is in host memory; convert it as the upload does.
            for (int64_t i = 0; i < k_ids; ++i)
                host_row_as_f32(src_, b, ids[i], out + i * shape_.d);
            return;
        }
        DeviceBuffer ids_dev(size_t(k_ids) * 4), tmp(size_t(k_ids * shape_.d) * 4);
        FK_CUDA_CHECK(cudaMemcpyAsync(ids_dev.get(), ids, size_t(k_ids) * 4,
                                      cudaMemcpyHostToDevice, stream_));
        kernels::RowsRef src = x_.ref();
        src.data = static_cast<const char*>(src.data) + b * x_.batch * dtype_size(x_.dtype);
        kernels::copy_rows(src, ids_dev.get<int32_t>(), 1, k_ids, shape_.d, tmp.get(),
                           DType::f32, shape_.d, 0, stream_);
        FK_CUDA_CHECK(cudaMemcpyAsync(out, tmp.get(), size_t(k_ids * shape_.d) * 4,
                                      cudaMemcpyDeviceToHost, stream_));
        FK_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }

    void set_centroids(const float* host) override {
        DeviceGuard g(dev_);
        FK_CUDA_CHECK(cudaMemcpyAsync(cent_.get(), host, cent_.size(), cudaMemcpyHostToDevice,
                                      stream_));
        FK_CUDA_CHECK(cudaStreamSynchronize(stream_));
        centroids_dirty_ = true;
    }

    void get_centroids(float* host) const override {
        DeviceGuard g(dev_);
        FK_CUDA_CHECK(cudaMemcpyAsync(host, cent_.get(), cent_.size(), cudaMemcpyDeviceToHost,
                                      stream_));
        FK_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }

    /// Enqueues the assignment. The objective of a resident fit is summed
    /// by update() (or objective(), whichever comes first), on obj_stream_
    /// beside the update's kernels (the sequential sum of n / 128 partials
    /// takes 0.24 ms at n = 8M); a streamed fit sums it segment by segment.
    void assign() override {
        DeviceGuard g(dev_);
        const int64_t B = shape_.batch, n = shape_.n, k = shape_.k, d = shape_.d;
        // The last objective's sum may still be reading the partials.
        FK_CUDA_CHECK(cudaStreamWaitEvent(stream_, summed_, 0));
        FK_CUDA_CHECK(cudaEventRecord(assign_begin_, stream_));
        obj_pending_ = false;
        // New centroids since the last assignment: their compute-type copy
        // and norms are made first (in the graph, on the resident path).
        const bool fresh = centroids_dirty_;
        if (n == 0 || info_.streaming) {
            if (fresh) copy_centroids();
            // n == 0: a rank of a data-parallel fit that holds no point.
            if (n == 0) FK_CUDA_CHECK(cudaMemsetAsync(obj_.get(), 0, size_t(B) * 8, obj_stream_));
            else streamed_assign();
            copy_objective();
        } else {
            auto body = [&] {
                if (fresh) copy_centroids();
                kernels::StreamGeom geo;
                geo.x = x_.operand(n, d);
                geo.c = compute_rows().operand(k, d);
                kernels::AssignArgs a{xnorm_.get<float>(), cnorm_.get<float>(), n, k,
                                      metric_ == Metric::inner_product, labels_.get<int32_t>(),
                                      nullptr, partial_.get<double>()};
                kernels::launch_assign(geo, int(B), math_, a, stream_);
            };
            // The usual iteration has new centroids; one graph for that.
            if (fresh) run_graph(assign_graph_, 0, body);
            else body();
            obj_pending_ = true;
        }
        centroids_dirty_ = false;
        FK_CUDA_CHECK(cudaEventRecord(assign_end_, stream_));
        have_labels_ = true;
    }

    void objective(double* obj) override {
        DeviceGuard g(dev_);
        if (!have_labels_) throw Error("flashkmeans: objective() before assign()");
        if (obj_pending_) {  // no update() since assign()
            sum_resident_objective();
            obj_pending_ = false;
        }
        // Both are complete once update() has waited (the usual order);
        // without an update() since assign(), these are the waits.
        FK_CUDA_CHECK(cudaStreamSynchronize(obj_stream_));
        std::copy_n(obj_host_, shape_.batch, obj);
        FK_CUDA_CHECK(cudaEventSynchronize(assign_end_));
        float ms = 0;
        FK_CUDA_CHECK(cudaEventElapsedTime(&ms, assign_begin_, assign_end_));
        assign_seconds_ = ms * 1e-3;
    }

    double assign_seconds() const override { return assign_seconds_; }

    void update(int64_t k_frozen, float* w, int64_t* cnt, Communicator* comm) override {
        DeviceGuard g(dev_);
        if (!have_labels_) throw Error("flashkmeans: update() before assign()");
        const int64_t B = shape_.batch, n = shape_.n, k = shape_.k, d = shape_.d;
        k_frozen = std::max<int64_t>(0, k_frozen);
        const bool with_objective = obj_pending_;
        auto body = [&] {
            if (with_objective) sum_resident_objective();
            // Streamed fits summed every segment while it was on the device
            // (streamed_assign); the sums stay valid until the next assign.
            if (!info_.streaming)
                kernels::cluster_sums(labels_.get<int32_t>(), x_.ref(), weights_.get<float>(),
                                      int(B), n, k, d, update_buffers(), {}, sums_.get<float>(),
                                      wsum_.get<float>(), cnt_.get<int32_t>(), stream_);
            if (comm) reduce_over_ranks(*comm);
            kernels::finalize_centroids(sums_.get<float>(), wsum_.get<float>(), int(B), k, d,
                                        k_frozen, cent_.get<float>(), stream_);
            FK_CUDA_CHECK(cudaMemcpyAsync(w_host_, wsum_.get(), size_t(B * k) * 4,
                                          cudaMemcpyDeviceToHost, stream_));
            FK_CUDA_CHECK(cudaMemcpyAsync(cnt_host_, cnt_.get(), size_t(B * k) * 4,
                                          cudaMemcpyDeviceToHost, stream_));
            // One wait for the update and the assignment's objective (in a
            // graph, the join of obj_stream_'s branch).
            FK_CUDA_CHECK(cudaStreamWaitEvent(stream_, summed_event(), 0));
        };
        // The usual iteration of a resident fit (no ranks to sum over, whose
        // communicator may copy through the host): one graph.
        if (with_objective && !comm) run_graph(update_graph_, k_frozen, body);
        else body();
        obj_pending_ = false;
        FK_CUDA_CHECK(cudaStreamSynchronize(stream_));
        std::copy_n(w_host_, B * k, w);
        std::copy_n(cnt_host_, B * k, cnt);
        centroids_dirty_ = true;
    }

    /// No wait: whatever reads the centroids next is ordered after the
    /// kernel on the stream (get_centroids() waits for it).
    void post_process(bool spherical, bool int_centroids) override {
        if (!spherical && !int_centroids) return;
        DeviceGuard g(dev_);
        kernels::post_process_rows(cent_.get<float>(), shape_.batch * shape_.k, shape_.d,
                                   spherical, int_centroids, stream_);
        centroids_dirty_ = true;
    }

    void get_labels(int64_t* host) const override {
        DeviceGuard g(dev_);
        const size_t total = size_t(shape_.batch * shape_.n);
        std::vector<int32_t> l32(total);
        if (total)
            FK_CUDA_CHECK(cudaMemcpyAsync(l32.data(), labels_.get(), total * 4,
                                          cudaMemcpyDeviceToHost, stream_));
        FK_CUDA_CHECK(cudaStreamSynchronize(stream_));
        if (!info_.streaming) {
            for (size_t i = 0; i < total; ++i) host[i] = l32[i];
            return;
        }
        const int64_t B = shape_.batch, n = shape_.n;
        for (const Segment& sg : segs_)
            for (int64_t b = 0; b < B; ++b)
                for (int64_t i = 0; i < sg.rows; ++i)
                    host[b * n + sg.r0 + i] = l32[size_t(B * sg.r0 + b * sg.rows + i)];
    }

   private:
    /// Data-parallel fits: the sums, weights and counts of every rank's
    /// points, in place on the device (NCCL), or through host memory.
    void reduce_over_ranks(Communicator& comm) {
        const bool dev = comm.accepts_device_memory();
        auto reduce = [&](DeviceBuffer& buf, ReduceType t) {
            const size_t count = buf.size() / 4;
            if (dev) {
                comm.all_reduce_sum(buf.get(), count, t, true, stream_);
                return;
            }
            std::vector<char> h(buf.size());
            cuda_copy(h.data(), buf.get(), h.size(), false, stream_);
            comm.all_reduce_sum(h.data(), count, t, false, nullptr);
            cuda_copy(buf.get(), h.data(), h.size(), true, stream_);
        };
        reduce(sums_, ReduceType::f32);
        reduce(wsum_, ReduceType::f32);
        reduce(cnt_, ReduceType::i32);
    }

    /// A piece of at most chunk_rows rows [r0, r0 + rows) of every problem,
    /// resident or streamed. Per-row device arrays (labels, weights, norms)
    /// of a streamed fit are laid out segment by segment: the segment's B x
    /// rows block starts at B * r0, so each launch sees plain (B, rows) arrays.
    struct Segment {
        int64_t r0 = 0, rows = 0;
        int64_t chunk = -1;  // streamed chunk index, -1 when resident
        size_t poff = 0;     // its objective partials in partial_
    };

    /// The update's scratch for calls of up to `rows` rows a problem.
    kernels::UpdateShape update_shape(int64_t rows) const {
        return kernels::update_shape(int(shape_.batch), rows, shape_.n, shape_.k, shape_.d, deterministic_);
    }
    kernels::UpdateBuffers update_buffers() { return {update_.get(), update_cap_}; }
    void alloc_update(int64_t rows) {
        update_cap_ = update_shape(rows);
        update_.reset(kernels::update_bytes(update_cap_));
    }

    /// The streams and events that exist (null ones were never created).
    void destroy_handles() {
        drop_graphs();
        for (cudaEvent_t e : {assigned_, summed_, assign_begin_, assign_end_, graph_fork_, graph_join_})
            if (e) (void)cudaEventDestroy(e);
        if (obj_stream_) (void)cudaStreamDestroy(obj_stream_);
        if (stream_) (void)cudaStreamDestroy(stream_);
    }

    void release_storage() {
        // Nothing in flight may still use what is freed here (the objective's
        // sum and copy when the last objective was not read).
        (void)cudaStreamSynchronize(stream_);
        (void)cudaStreamSynchronize(obj_stream_);
        drop_graphs();  // they hold the buffers' addresses
        streamer_.reset();
        for (DeviceBuffer* b : {&rows_dev_, &xnorm_, &weights_, &labels_, &partial_, &update_,
                                &cent_, &ccomp_, &cnorm_, &sums_, &wsum_, &cnt_, &obj_})
            b->release();
        host_.reset();
        obj_host_ = nullptr;
        w_host_ = nullptr;
        cnt_host_ = nullptr;
        x_.own.release();
        x_.data = nullptr;
        segs_.clear();
        info_ = StreamingPlanInfo{};
    }

    /// The centroids, and the per-iteration results the host reads (the
    /// objective, weights and counts: on the device, and pinned on the host).
    void alloc_centroid_buffers() {
        const int64_t B = shape_.batch, k = shape_.k, d = shape_.d;
        cent_.reset(size_t(B * k * d) * 4);
        ccomp_.reset(size_t(B * k * ldc_) * dtype_size(store_));
        cnorm_.reset(size_t(B * k) * 4);
        sums_.reset(size_t(B * k * d) * 4);
        wsum_.reset(size_t(B * k) * 4);
        cnt_.reset(size_t(B * k) * 4);
        obj_.reset(size_t(B) * 8);
        // Page-locked host memory is not device memory: its failure must not
        // send a host-input fit into streaming plans (OutOfMemoryError does).
        void* h = nullptr;
        const size_t host_bytes = size_t(B) * 8 + size_t(B * k) * 8;
        if (cudaMallocHost(&h, host_bytes) != cudaSuccess) {
            (void)cudaGetLastError();
            throw Error("flashkmeans: could not allocate " + std::to_string(host_bytes) +
                        " bytes of page-locked host memory (per-iteration objective, weights and counts)");
        }
        host_.reset(h);
        obj_host_ = static_cast<double*>(h);
        w_host_ = reinterpret_cast<float*>(obj_host_ + B);
        cnt_host_ = reinterpret_cast<int32_t*>(w_host_ + B * k);
    }

    /// All rows on the device, one segment (the in-memory fit).
    void load_resident(const ArrayView& x, const ArrayView& weights, const std::vector<int>& rows,
                       int64_t N, size_t need, size_t avail) {
        const int64_t B = shape_.batch, n = shape_.n, d = shape_.d;
        const size_t gx = size_t(kernels::stream_grid_x(n));
        // Small buffers first: a failure here costs no copy of the data.
        labels_.reset(size_t(B * n) * 4);
        partial_.reset(gx * B * 8);
        alloc_update(n);
        alloc_centroid_buffers();
        xnorm_.reset(size_t(B * n) * 4);
        rows_dev_.reset(rows.size() * 4);
        if (!rows.empty())
            FK_CUDA_CHECK(cudaMemcpyAsync(rows_dev_.get(), rows.data(), rows.size() * 4,
                                          cudaMemcpyHostToDevice, stream_));
        upload_rows(x, B, n, d, rows, rows_dev_.get<int32_t>(), store_, dev_, stream_, x_);
        kernels::row_norms(x_.ref(), int(B), n, d, xnorm_.get<float>(), stream_);
        if (!weights.empty()) load_weights(weights, rows, N);
        FK_CUDA_CHECK(cudaStreamSynchronize(stream_));
        info_ = StreamingPlanInfo{};
        info_.resident_rows = n;
        info_.chunk_rows = n;
        info_.device_bytes = need;
        info_.available_bytes = avail;
        centroids_dirty_ = true;
        have_labels_ = false;
    }

    /// The first p.resident_rows rows of every problem on the device, the
    /// rest streamed from the host array (which must outlive the fit).
    void load_streamed(const ArrayView& x, const ArrayView& weights, const std::vector<int>& rows,
                       int64_t N, const StreamingPlanInfo& p) {
        const int64_t B = shape_.batch, n = shape_.n, d = shape_.d;
        const int64_t r = p.resident_rows, C = p.chunk_rows;
        segs_.clear();
        size_t poff = 0;
        auto add = [&](int64_t r0, int64_t rows_, int64_t chunk) {
            Segment sg;
            sg.r0 = r0;
            sg.rows = rows_;
            sg.chunk = chunk;
            sg.poff = poff;
            poff += size_t(B * kernels::stream_grid_x(rows_));
            segs_.push_back(sg);
        };
        for (int64_t r0 = 0; r0 < r; r0 += C) add(r0, std::min(C, r - r0), -1);
        for (int64_t j = 0, r0 = r; r0 < n; r0 += C, ++j) add(r0, std::min(C, n - r0), j);

        // Chunk slots and staging first (the plan's largest variable part),
        // then the per-row arrays, then the resident rows.
        streamer_.setup(src_, x.memory == MemoryKind::pinned, B, n, p);
        labels_.reset(size_t(B * n) * 4);
        partial_.reset(poff * 8);
        alloc_update(C);
        alloc_centroid_buffers();
        xnorm_.reset(size_t(B * r) * 4);
        if (!weights.empty()) load_weights(weights, rows, N);
        const std::vector<int> res_rows(rows.begin(), rows.begin() + (rows.empty() ? 0 : r));
        upload_rows(x, B, r, d, res_rows, nullptr, store_, dev_, stream_, x_);
        for (const Segment& sg : segs_)
            if (sg.chunk < 0)
                kernels::row_norms(resident_segment(sg), int(B), sg.rows, d,
                                   xnorm_.get<float>() + B * sg.r0, stream_);
        FK_CUDA_CHECK(cudaStreamSynchronize(stream_));
        info_ = p;
        info_.pinned_source = streamer_.pinned_source();
        info_.registered_source = streamer_.registered_source();
    }

    kernels::RowsRef resident_segment(const Segment& sg) const {
        kernels::RowsRef ref = x_.ref();
        ref.data = static_cast<const char*>(ref.data) + sg.r0 * x_.ld * dtype_size(x_.dtype);
        return ref;
    }

    /// Segment by segment (resident ones first, so that the copies of the
    /// first chunks overlap their compute): FlashAssign, then the update's
    /// sums of the segment added to the running totals while its rows are
    /// on the device, so each streamed row crosses the bus once an iteration.
    void streamed_assign() {
        const int64_t B = shape_.batch, k = shape_.k, d = shape_.d;
        const bool ip = metric_ == Metric::inner_product;
        const kernels::UpdateBuffers buf = update_buffers();
        const kernels::Operand c = compute_rows().operand(k, d);
        for (size_t si = 0; si < segs_.size(); ++si) {
            const Segment& sg = segs_[si];
            kernels::RowsRef xr;
            const float* xn;
            if (sg.chunk >= 0) {
                const RowStreamer::Slot slot = streamer_.acquire(sg.chunk, stream_);
                xr = slot.x;
                if (!ip) kernels::row_norms(xr, int(B), sg.rows, d, slot.norms, stream_);
                xn = slot.norms;
            } else {
                xr = resident_segment(sg);
                xn = xnorm_.get<float>() + B * sg.r0;
            }
            int32_t* lab = labels_.get<int32_t>() + B * sg.r0;
            const float* w = weights_.get<float>() ? weights_.get<float>() + B * sg.r0 : nullptr;
            kernels::StreamGeom geo;
            geo.x = make_operand(xr, sg.rows, d);
            geo.c = c;
            kernels::AssignArgs a{xn, cnorm_.get<float>(), sg.rows, k, ip, lab, nullptr,
                                  partial_.get<double>() + sg.poff};
            kernels::launch_assign(geo, int(B), math_, a, stream_);
            sum_objective(sg.poff, sg.rows, si == 0);  // one running sum, in row order
            // Segments in row order: the sums are the resident fit's, bit for bit.
            const kernels::SumsCall call{si == 0, si + 1 == segs_.size()};
            kernels::cluster_sums(lab, xr, w, int(B), sg.rows, k, d, buf, call,
                                  sums_.get<float>(), wsum_.get<float>(), cnt_.get<int32_t>(),
                                  stream_);
            if (sg.chunk >= 0) streamer_.release(sg.chunk, stream_);
        }
    }

    /// On obj_stream_, once the assignment enqueued so far has written them:
    /// obj_[b] = (first ? 0 : obj_[b]) + the partials of `rows` rows a problem
    /// at partial_ + poff (kernels::sum_partials). The wait captures the
    /// event's latest record, so one event serves every segment.
    void sum_objective(size_t poff, int64_t rows, bool first) {
        const cudaEvent_t assigned = capturing() ? graph_fork_ : assigned_;
        FK_CUDA_CHECK(cudaEventRecord(assigned, stream_));
        FK_CUDA_CHECK(cudaStreamWaitEvent(obj_stream_, assigned, 0));
        kernels::sum_partials(partial_.get<double>() + poff, int(shape_.batch),
                              kernels::stream_grid_x(rows), first, obj_.get<double>(), obj_stream_);
    }

    /// The resident fit's objective onto obj_stream_, then its copy to the
    /// host (objective() reads it after a wait for obj_stream_).
    void sum_resident_objective() {
        sum_objective(0, shape_.n, true);
        copy_objective();
    }
    void copy_objective() {
        FK_CUDA_CHECK(cudaMemcpyAsync(obj_host_, obj_.get(), size_t(shape_.batch) * 8,
                                      cudaMemcpyDeviceToHost, obj_stream_));
        FK_CUDA_CHECK(cudaEventRecord(summed_event(), obj_stream_));
    }
    /// An event recorded during a capture only orders the captured work: it
    /// cannot be waited for afterwards. So the graphs fork and join through
    /// events of their own, and summed_ keeps its last eager record.
    bool capturing() const {
        cudaStreamCaptureStatus st = cudaStreamCaptureStatusNone;
        FK_CUDA_CHECK(cudaStreamIsCapturing(stream_, &st));
        return st != cudaStreamCaptureStatusNone;
    }
    cudaEvent_t summed_event() const { return capturing() ? graph_join_ : summed_; }

    /// An iteration of a resident fit launches ~15 kernels, copies and event
    /// operations, several of a few microseconds at K ~ 100. So assign() and
    /// update() each replay a CUDA graph of their launches, captured on the
    /// second use with the same key (the first runs eagerly, which does the
    /// one-time work that capture does not allow: kernel attributes, the
    /// scratch pool's growth). Measured on the H200: 1-3% off seed-k100,
    /// pq-train and n1M, level elsewhere (bench/NOTES.md). Kernel arguments
    /// are fixed per load(), which drops the graphs. FK_CUDA_GRAPHS=0 launches
    /// eagerly (comparisons); =require makes a failed capture an error
    /// instead of a quiet fallback to eager launches.
    struct Graph {
        cudaGraphExec_t exec = nullptr;
        int64_t key = 0;
        bool warm = false;  // ran eagerly once
    };
    template <class F>
    void run_graph(Graph& g, int64_t key, F& body) {
        if (!graphs_) return body();
        if (g.exec && g.key != key) {
            (void)cudaGraphExecDestroy(g.exec);
            g.exec = nullptr;
            g.warm = false;
        }
        if (!g.exec) {
            if (!g.warm) {
                body();
                g.warm = true;
                g.key = key;
                return;
            }
            if (!capture(g, body)) return body();
            g.key = key;
        }
        FK_CUDA_CHECK(cudaGraphLaunch(g.exec, stream_));
    }
    /// False (and graphs off for this backend) when the launches cannot be
    /// captured; nothing ran then.
    template <class F>
    bool capture(Graph& g, F& body) {
        FK_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
        cudaGraph_t graph = nullptr;
        std::string why;
        try {
            body();
        } catch (const std::exception& e) {
            why = e.what();
        }
        cudaError_t err = cudaStreamEndCapture(stream_, &graph);
        if (why.empty() && err == cudaSuccess) err = cudaGraphInstantiate(&g.exec, graph, 0);
        if (graph) (void)cudaGraphDestroy(graph);
        if (why.empty() && err == cudaSuccess) {
            // The graph's scratch nodes get memory of their own: what the
            // eager run pooled would stay reserved beside it.
            kernels::scratch_trim();
            return true;
        }
        (void)cudaGetLastError();
        g.exec = nullptr;
        if (why.empty()) why = cudaGetErrorString(err);
        if (graphs_required_) throw Error("flashkmeans: FK_CUDA_GRAPHS=require, but capture failed: " + why);
        graphs_ = false;
        return false;
    }
    void drop_graphs() {
        for (Graph* g : {&assign_graph_, &update_graph_}) {
            if (g->exec) (void)cudaGraphExecDestroy(g->exec);
            *g = Graph{};
        }
    }

    DType compute_type() const {
        switch (math_) {
            case kernels::MathKind::f16: return DType::f16;
            case kernels::MathKind::bf16: return DType::bf16;
            default: return DType::f32;
        }
    }
    DeviceRows compute_rows() const {
        DeviceRows r;
        r.data = ccomp_.get();
        r.dtype = compute_type();
        r.ld = ldc_;
        r.batch = shape_.k * ldc_;
        return r;
    }

    /// The padded compute-type copy and its ||c||^2, once per change of
    /// centroids. The norms are those of the rounded (f16/bf16) centroids the
    /// tensor cores see, so that each distance is that of one actual point:
    /// the objective's error then scales with ||x - c||, not with ||x||.
    void copy_centroids() {
        const int64_t B = shape_.batch, k = shape_.k, d = shape_.d;
        const kernels::RowsRef master{cent_.get(), DType::f32, d, k * d};
        kernels::copy_rows_with_norms(master, int(B), k, d, ccomp_.get(), compute_type(), ldc_,
                                      k * ldc_, cnorm_.get<float>(), stream_);
    }

    void load_weights(const ArrayView& wv, const std::vector<int>& rows, int64_t N) {
        const int64_t B = shape_.batch, n = shape_.n;
        if (wv.dtype != DType::f32)
            throw Error("flashkmeans: weights must be f32, got " + describe_view(wv));
        if (!(wv.ndim == 2 || (wv.ndim == 1 && B == 1)))
            throw Error("flashkmeans: weights must be (batch, n) or (n,), got " +
                        describe_view(wv));
        const int r = wv.ndim - 1;
        if (wv.shape[r] != N || (wv.ndim == 2 && wv.shape[0] != B))
            throw Error("flashkmeans: weights " + describe_view(wv) + " do not match x");
        if (wv.on_device() && wv.device_id != dev_)
            throw Error("flashkmeans: weights live on another GPU than the fit");
        const int64_t s1 = wv.strides[r], s0 = wv.ndim == 2 ? wv.strides[0] : 0;
        weights_.reset(size_t(B * n) * 4);
        if (!segs_.empty()) {
            // Streamed fit: host copy of the whole (B, N) weights, then the
            // selected rows in segment order.
            std::vector<float> full(size_t(B * N));
            const float* src = static_cast<const float*>(wv.data);
            for (int64_t b = 0; b < B; ++b) {
                if (wv.on_device())
                    FK_CUDA_CHECK(cudaMemcpy2D(&full[size_t(b * N)], 4, src + b * s0,
                                               size_t(s1) * 4, 4, size_t(N),
                                               cudaMemcpyDeviceToHost));
                else
                    for (int64_t i = 0; i < N; ++i) full[size_t(b * N + i)] = src[b * s0 + i * s1];
            }
            std::vector<float> h(size_t(B * n));
            for (const Segment& sg : segs_)
                for (int64_t b = 0; b < B; ++b)
                    for (int64_t i = 0; i < sg.rows; ++i) {
                        const int64_t ri = sg.r0 + i;
                        h[size_t(B * sg.r0 + b * sg.rows + i)] =
                            full[size_t(b * N + (rows.empty() ? ri : rows[size_t(ri)]))];
                    }
            FK_CUDA_CHECK(cudaMemcpyAsync(weights_.get(), h.data(), h.size() * 4,
                                          cudaMemcpyHostToDevice, stream_));
            FK_CUDA_CHECK(cudaStreamSynchronize(stream_));
            return;
        }
        if (wv.on_device()) {
            kernels::copy_rows({wv.data, DType::f32, s1, s0}, rows.empty() ? nullptr : rows_dev_.get<int32_t>(),
                               int(B), n, 1, weights_.get(), DType::f32, 1, n, stream_);
        } else {
            std::vector<float> h(size_t(B * n));
            const float* src = static_cast<const float*>(wv.data);
            for (int64_t b = 0; b < B; ++b)
                for (int64_t i = 0; i < n; ++i)
                    h[size_t(b * n + i)] = src[b * s0 + (rows.empty() ? i : rows[size_t(i)]) * s1];
            FK_CUDA_CHECK(cudaMemcpyAsync(weights_.get(), h.data(), h.size() * 4,
                                          cudaMemcpyHostToDevice, stream_));
            FK_CUDA_CHECK(cudaStreamSynchronize(stream_));
        }
    }

    int dev_;
    size_t budget_;
    bool deterministic_;  // KMeansParams::deterministic
    cudaStream_t stream_ = nullptr;
    cudaStream_t obj_stream_ = nullptr;  // the objective's sum and copy (assign())
    cudaEvent_t assigned_ = nullptr;     // on stream_: partials written (sum_objective())
    cudaEvent_t summed_ = nullptr;       // on obj_stream_: read, and obj_host_ written
    cudaEvent_t assign_begin_ = nullptr, assign_end_ = nullptr;  // on stream_: around assign()'s work
    double assign_seconds_ = 0;                                  // between them, read by objective()
    cudaEvent_t graph_fork_ = nullptr, graph_join_ = nullptr;   // assigned_ and summed_ in a capture
    ProblemShape shape_;
    Metric metric_ = Metric::L2;
    kernels::MathKind math_ = kernels::MathKind::ffma;
    DType store_ = DType::f32;
    int64_t ldc_ = 0;
    DeviceRows x_;           // all rows, or the resident rows of a streamed fit
    std::vector<int> rows_host_;
    HostRows src_;           // the input as host rows (streamed fits read it)
    StreamingPlanInfo info_;
    std::vector<Segment> segs_;  // streamed fits only
    RowStreamer streamer_;
    DeviceBuffer rows_dev_, xnorm_, weights_, labels_, partial_, update_;
    kernels::UpdateShape update_cap_;
    DeviceBuffer cent_, ccomp_, cnorm_, sums_, wsum_, cnt_;
    DeviceBuffer obj_;  // (B) objective of the last assignment
    std::unique_ptr<void, PinnedFree> host_;  // pinned: the three below
    double* obj_host_ = nullptr;              // (B) copied from obj_ by assign()
    float* w_host_ = nullptr;                 // (B, k) weights, by update()
    int32_t* cnt_host_ = nullptr;             // (B, k) counts, by update()
    bool centroids_dirty_ = true;
    bool have_labels_ = false;
    bool obj_pending_ = false;  // resident: the last assignment's objective not summed yet
    bool graphs_ = true, graphs_required_ = false;  // FK_CUDA_GRAPHS
    Graph assign_graph_, update_graph_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(int gpu_id, size_t device_memory_budget,
                                           bool deterministic) {
    int count = cuda_device_count();
    if (gpu_id < 0 || gpu_id >= count)
        throw Error("flashkmeans: GPU " + std::to_string(gpu_id) + " requested but " +
                    std::to_string(count) + " CUDA device(s) are visible");
    return std::make_unique<CudaBackend>(gpu_id, device_memory_budget, deterministic);
}

void cuda_copy(void* dst, const void* src, size_t bytes, bool to_device, void* stream) {
    if (bytes == 0) return;
    const auto s = static_cast<cudaStream_t>(stream);
    FK_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes,
                                  to_device ? cudaMemcpyHostToDevice : cudaMemcpyDeviceToHost, s));
    FK_CUDA_CHECK(cudaStreamSynchronize(s));
}

int cuda_device_count() {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n;
}

}  // namespace flashkmeans::detail
