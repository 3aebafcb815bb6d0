// Ranks of one process (one thread each) that sum through host memory. The
// sum of element i is taken in rank order 0, 1, ..., R-1 by one thread, so
// every rank receives the same bits whatever the threads' timing. GPU
// buffers are staged through host memory, so several ranks may share a GPU.
#include <flashkmeans/distributed.hpp>

#include "backend.hpp"

#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>

namespace flashkmeans {
namespace {

size_t element_size(ReduceType t) {
    return t == ReduceType::f32 || t == ReduceType::i32 ? 4 : 8;
}

template <class T>
void sum_slice(const std::vector<void*>& in, T* out, size_t lo, size_t hi) {
    for (size_t i = lo; i < hi; ++i) {
        T s = static_cast<const T*>(in[0])[i];
        for (size_t r = 1; r < in.size(); ++r) s += static_cast<const T*>(in[r])[i];
        out[i] = s;
    }
}

/// State shared by the ranks of one group.
struct Group {
    explicit Group(int r) : ranks(r), ptrs(size_t(r), nullptr), sizes(size_t(r), 0) {}
    const int ranks;
    std::mutex m;
    std::condition_variable cv;
    int arrived = 0;
    uint64_t generation = 0;
    bool aborted = false;
    std::vector<void*> ptrs;   // each rank's host buffer for the current collective
    std::vector<size_t> sizes; // and its size in bytes (must agree)
    bool mismatch = false;
    std::vector<char> result;  // the summed elements

    void throw_if_aborted() const {
        if (mismatch)
            throw Error("flashkmeans: the ranks of a local communicator called a collective "
                        "with different sizes");
        if (aborted)
            throw PeerFailure("flashkmeans: another rank of the local communicator failed; "
                        "this collective was abandoned");
    }
    /// Every rank arrives before any leaves; the last to arrive runs
    /// `when_all_arrived` first.
    template <class F>
    void barrier(std::unique_lock<std::mutex>& lk, F when_all_arrived) {
        throw_if_aborted();
        const uint64_t gen = generation;
        if (++arrived == ranks) {
            when_all_arrived();
            arrived = 0;
            ++generation;
            cv.notify_all();
        } else {
            cv.wait(lk, [&] { return generation != gen || aborted; });
        }
        throw_if_aborted();
    }
    void barrier(std::unique_lock<std::mutex>& lk) {
        barrier(lk, [] {});
    }
};

class LocalCommunicator final : public Communicator {
   public:
    LocalCommunicator(std::shared_ptr<Group> g, int rank) : g_(std::move(g)), rank_(rank) {}
    int rank() const override { return rank_; }
    int size() const override { return g_->ranks; }
    bool accepts_device_memory() const override { return true; }
    int gpu_id() const override { return -1; }

    void all_reduce_sum(void* data, size_t count, ReduceType type, bool on_device,
                        void* stream) override {
        const size_t bytes = count * element_size(type);
        void* host = stage_in(data, bytes, on_device, true, stream);
        {
            std::unique_lock<std::mutex> lk(g_->m);
            g_->ptrs[size_t(rank_)] = host;
            g_->sizes[size_t(rank_)] = bytes;
            // Every rank has copied the previous result out once all arrived.
            g_->barrier(lk, [&] { check_sizes(); g_->result.resize(bytes); });
        }
        // Each rank sums its slice of the elements (no lock: disjoint writes,
        // the inputs are not touched until every rank passed the next barrier).
        const int R = g_->ranks;
        const size_t lo = count * size_t(rank_) / size_t(R);
        const size_t hi = count * size_t(rank_ + 1) / size_t(R);
        switch (type) {
            case ReduceType::f32: sum_slice(g_->ptrs, reinterpret_cast<float*>(g_->result.data()), lo, hi); break;
            case ReduceType::f64: sum_slice(g_->ptrs, reinterpret_cast<double*>(g_->result.data()), lo, hi); break;
            case ReduceType::i32: sum_slice(g_->ptrs, reinterpret_cast<int32_t*>(g_->result.data()), lo, hi); break;
            case ReduceType::i64: sum_slice(g_->ptrs, reinterpret_cast<int64_t*>(g_->result.data()), lo, hi); break;
        }
        {
            std::unique_lock<std::mutex> lk(g_->m);
            g_->barrier(lk);
        }
        // The result stays untouched until every rank reached the next
        // collective's first barrier, i.e. after every rank copied it out.
        std::memcpy(host, g_->result.data(), bytes);
        stage_out(data, host, bytes, on_device, stream);
    }

    void broadcast(void* data, size_t bytes, int root, bool on_device, void* stream) override {
        if (root < 0 || root >= g_->ranks)
            throw Error("flashkmeans: broadcast root " + std::to_string(root) + " out of [0, " +
                        std::to_string(g_->ranks) + ")");
        // Every rank with device data stages through host memory; only the
        // root's bytes need to come in.
        void* host = stage_in(data, bytes, on_device, rank_ == root, stream);
        {
            std::unique_lock<std::mutex> lk(g_->m);
            g_->ptrs[size_t(rank_)] = host;
            g_->sizes[size_t(rank_)] = bytes;
            g_->barrier(lk, [&] { check_sizes(); });
        }
        if (rank_ != root) std::memcpy(host, g_->ptrs[size_t(root)], bytes);
        {
            std::unique_lock<std::mutex> lk(g_->m);
            g_->barrier(lk);  // the root's buffer is read by all before it may change
        }
        if (rank_ != root) stage_out(data, host, bytes, on_device, stream);
    }

    void abort() override {
        std::lock_guard<std::mutex> lk(g_->m);
        g_->aborted = true;
        g_->cv.notify_all();
    }

   private:
    void check_sizes() {
        for (size_t s : g_->sizes)
            if (s != g_->sizes[0]) g_->mismatch = true;
    }
    /// The host buffer a collective works on: `data` itself, or (device data)
    /// this rank's staging buffer, filled from `data` when `copy_in`.
    void* stage_in(void* data, size_t bytes, bool on_device, bool copy_in, void* stream) {
        if (!on_device) return data;
        staging_.resize(bytes);
        if (copy_in) detail::cuda_copy(staging_.data(), data, bytes, false, stream);
        return staging_.data();
    }
    void stage_out(void* data, const void* host, size_t bytes, bool on_device, void* stream) {
        if (on_device) detail::cuda_copy(data, host, bytes, true, stream);
    }

    std::shared_ptr<Group> g_;
    int rank_;
    std::vector<char> staging_;
};

}  // namespace

std::vector<std::unique_ptr<Communicator>> make_local_communicators(int ranks) {
    if (ranks < 1)
        throw Error("flashkmeans: make_local_communicators: ranks must be >= 1, got " +
                    std::to_string(ranks));
    auto g = std::make_shared<Group>(ranks);
    std::vector<std::unique_ptr<Communicator>> out;
    for (int r = 0; r < ranks; ++r) out.push_back(std::make_unique<LocalCommunicator>(g, r));
    return out;
}

}  // namespace flashkmeans
