// Communicator over NCCL. libnccl is loaded at run time (dlopen), so the
// library and the Python module load on machines without NCCL; only the
// header is needed to build. Collectives run on the caller's stream and the
// host waits by polling, so that an error on another rank
// (ncclCommGetAsyncError) or abort() ends the wait instead of hanging it.
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nccl.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "distributed/nccl.hpp"
#include "src/cuda/cuda_check.hpp"

namespace flashkmeans {
namespace {

/// The NCCL entry points the engine uses.
struct NcclApi {
    decltype(&ncclGetUniqueId) get_unique_id = nullptr;
    decltype(&ncclCommInitRank) init_rank = nullptr;
    decltype(&ncclCommInitAll) init_all = nullptr;
    decltype(&ncclCommDestroy) destroy = nullptr;
    decltype(&ncclCommAbort) abort = nullptr;
    decltype(&ncclCommGetAsyncError) async_error = nullptr;
    decltype(&ncclAllReduce) all_reduce = nullptr;
    decltype(&ncclBroadcast) broadcast = nullptr;
    decltype(&ncclGetErrorString) error_string = nullptr;
    decltype(&ncclCommUserRank) user_rank = nullptr;
    decltype(&ncclCommCount) count = nullptr;
    std::string load_error;
};

const NcclApi& nccl() {
    static const NcclApi api = [] {
        NcclApi a;
        std::vector<std::string> names;
        if (const char* env = std::getenv("FLASHKMEANS_NCCL_LIBRARY")) names.push_back(env);
        names.push_back("libnccl.so.2");
        names.push_back("libnccl.so");
#ifdef FLASHKMEANS_NCCL_LIBRARY_HINT
        names.push_back(FLASHKMEANS_NCCL_LIBRARY_HINT);
#endif
        void* h = nullptr;
        for (const std::string& n : names)
            if ((h = dlopen(n.c_str(), RTLD_NOW | RTLD_GLOBAL))) break;
        if (!h) {
            a.load_error = "could not load libnccl.so.2 (tried FLASHKMEANS_NCCL_LIBRARY, the "
                           "library path" +
                           std::string(names.size() > 3 ? ", " + names.back() : "") + ")";
            return a;
        }
        auto sym = [&](auto& f, const char* name) {
            f = reinterpret_cast<std::remove_reference_t<decltype(f)>>(dlsym(h, name));
            if (!f && a.load_error.empty()) a.load_error = std::string("libnccl lacks ") + name;
        };
        sym(a.get_unique_id, "ncclGetUniqueId");
        sym(a.init_rank, "ncclCommInitRank");
        sym(a.init_all, "ncclCommInitAll");
        sym(a.destroy, "ncclCommDestroy");
        sym(a.abort, "ncclCommAbort");
        sym(a.async_error, "ncclCommGetAsyncError");
        sym(a.all_reduce, "ncclAllReduce");
        sym(a.broadcast, "ncclBroadcast");
        sym(a.error_string, "ncclGetErrorString");
        sym(a.user_rank, "ncclCommUserRank");
        sym(a.count, "ncclCommCount");
        return a;
    }();
    return api;
}

const NcclApi& nccl_or_throw() {
    const NcclApi& a = nccl();
    if (!a.load_error.empty()) throw Error("flashkmeans: NCCL unavailable: " + a.load_error);
    return a;
}

void check(ncclResult_t r, const char* what) {
    if (r != ncclSuccess && r != ncclInProgress)
        throw Error(std::string("flashkmeans: ") + what + " failed: " +
                    nccl().error_string(r));
}

ncclDataType_t nccl_type(ReduceType t) {
    switch (t) {
        case ReduceType::f32: return ncclFloat32;
        case ReduceType::f64: return ncclFloat64;
        case ReduceType::i32: return ncclInt32;
        case ReduceType::i64: return ncclInt64;
    }
    return ncclFloat32;
}

size_t type_size(ReduceType t) { return t == ReduceType::f32 || t == ReduceType::i32 ? 4 : 8; }

class NcclCommunicator final : public Communicator {
   public:
    NcclCommunicator(ncclComm_t comm, int gpu, bool owned, int rank, int size)
        : comm_(comm), gpu_(gpu), owned_(owned), rank_(rank), size_(size) {}
    ~NcclCommunicator() override {
        int prev = 0;
        (void)cudaGetDevice(&prev);
        (void)cudaSetDevice(gpu_);
        if (scratch_) (void)cudaFree(scratch_);
        if (stream_) (void)cudaStreamDestroy(stream_);
        if (owned_ && comm_) (void)(aborted_ ? nccl().abort(comm_) : nccl().destroy(comm_));
        (void)cudaSetDevice(prev);
    }
    int rank() const override { return rank_; }
    int size() const override { return size_; }
    bool accepts_device_memory() const override { return true; }
    int gpu_id() const override { return gpu_; }

    void all_reduce_sum(void* data, size_t count, ReduceType type, bool on_device,
                        void* stream) override {
        run(data, count * type_size(type), on_device, stream, true, [&](void* buf, cudaStream_t s) {
            check(nccl().all_reduce(buf, buf, count, nccl_type(type), ncclSum, comm_, s),
                  "ncclAllReduce");
        });
    }

    void broadcast(void* data, size_t bytes, int root, bool on_device, void* stream) override {
        if (root < 0 || root >= size_)
            throw Error("flashkmeans: broadcast root " + std::to_string(root) + " out of [0, " +
                        std::to_string(size_) + ")");
        run(data, bytes, on_device, stream, rank_ == root, [&](void* buf, cudaStream_t s) {
            check(nccl().broadcast(buf, buf, bytes, ncclUint8, root, comm_, s), "ncclBroadcast");
        });
    }

    void abort() override { aborted_ = true; }

   private:
    /// Enqueues `op` on the caller's stream (device data) or on an internal
    /// stream over a device copy of the host data, then waits.
    template <class Op>
    void run(void* data, size_t bytes, bool on_device, void* stream, bool send, Op op) {
        if (aborted_) throw PeerFailure("flashkmeans: the NCCL communicator was aborted (a rank failed)");
        int prev = 0;
        FK_CUDA_CHECK(cudaGetDevice(&prev));
        FK_CUDA_CHECK(cudaSetDevice(gpu_));
        struct Restore {
            int d;
            ~Restore() { (void)cudaSetDevice(d); }
        } restore{prev};
        if (on_device) {
            const auto s = static_cast<cudaStream_t>(stream);
            op(data, s);
            wait(s);
            return;
        }
        if (!stream_) FK_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
        if (bytes > scratch_bytes_) {
            if (scratch_) FK_CUDA_CHECK(cudaFree(std::exchange(scratch_, nullptr)));
            scratch_bytes_ = 0;
            FK_CUDA_CHECK(cudaMalloc(&scratch_, bytes));
            scratch_bytes_ = bytes;
        }
        if (send)
            FK_CUDA_CHECK(cudaMemcpyAsync(scratch_, data, bytes, cudaMemcpyHostToDevice, stream_));
        op(scratch_, stream_);
        FK_CUDA_CHECK(cudaMemcpyAsync(data, scratch_, bytes, cudaMemcpyDeviceToHost, stream_));
        wait(stream_);
    }

    void wait(cudaStream_t s) {
        for (;;) {
            const cudaError_t q = cudaStreamQuery(s);
            if (q == cudaSuccess) return;
            if (q != cudaErrorNotReady) FK_CUDA_CHECK(q);
            ncclResult_t async = ncclSuccess;
            check(nccl().async_error(comm_, &async), "ncclCommGetAsyncError");
            if (async != ncclSuccess && async != ncclInProgress) {
                abort_comm();
                throw Error(std::string("flashkmeans: NCCL error on another rank or link: ") +
                            nccl().error_string(async));
            }
            if (aborted_) {
                abort_comm();
                throw PeerFailure("flashkmeans: another rank failed; the NCCL collective was aborted");
            }
            std::this_thread::sleep_for(std::chrono::microseconds(20));
        }
    }

    void abort_comm() {
        aborted_ = true;
        if (owned_ && comm_) (void)nccl().abort(std::exchange(comm_, nullptr));
    }

    ncclComm_t comm_;
    int gpu_;
    bool owned_;
    int rank_, size_;
    std::atomic<bool> aborted_{false};
    cudaStream_t stream_ = nullptr;
    void* scratch_ = nullptr;
    size_t scratch_bytes_ = 0;
};

}  // namespace

bool nccl_available() { return nccl().load_error.empty(); }

NcclUniqueId nccl_unique_id() {
    ncclUniqueId id;
    check(nccl_or_throw().get_unique_id(&id), "ncclGetUniqueId");
    static_assert(sizeof(id) == sizeof(NcclUniqueId), "ncclUniqueId is 128 bytes");
    NcclUniqueId out;
    std::memcpy(out.data(), &id, sizeof(id));
    return out;
}

std::unique_ptr<Communicator> make_nccl_communicator(const NcclUniqueId& uid, int nranks, int rank,
                                                     int gpu_id) {
    const NcclApi& api = nccl_or_throw();
    if (nranks < 1 || rank < 0 || rank >= nranks)
        throw Error("flashkmeans: make_nccl_communicator: rank " + std::to_string(rank) +
                    " of " + std::to_string(nranks) + " is not a valid rank");
    int prev = 0;
    FK_CUDA_CHECK(cudaGetDevice(&prev));
    FK_CUDA_CHECK(cudaSetDevice(gpu_id));
    ncclUniqueId id;
    std::memcpy(&id, uid.data(), sizeof(id));
    ncclComm_t comm = nullptr;
    const ncclResult_t r = api.init_rank(&comm, nranks, id, rank);
    (void)cudaSetDevice(prev);
    check(r, "ncclCommInitRank");
    return std::make_unique<NcclCommunicator>(comm, gpu_id, true, rank, nranks);
}

std::unique_ptr<Communicator> wrap_nccl_communicator(void* comm, int gpu_id) {
    if (!comm) throw Error("flashkmeans: wrap_nccl_communicator: null ncclComm_t");
    const NcclApi& api = nccl_or_throw();
    int rank = 0, size = 0;
    check(api.user_rank(static_cast<ncclComm_t>(comm), &rank), "ncclCommUserRank");
    check(api.count(static_cast<ncclComm_t>(comm), &size), "ncclCommCount");
    return std::make_unique<NcclCommunicator>(static_cast<ncclComm_t>(comm), gpu_id, false, rank,
                                              size);
}

namespace detail {
std::vector<std::unique_ptr<Communicator>> make_nccl_communicators_all(const std::vector<int>& gpus) {
    const NcclApi& api = nccl_or_throw();
    std::vector<ncclComm_t> comms(gpus.size(), nullptr);
    check(api.init_all(comms.data(), int(gpus.size()), gpus.data()), "ncclCommInitAll");
    std::vector<std::unique_ptr<Communicator>> out;
    for (size_t r = 0; r < gpus.size(); ++r)
        out.push_back(std::make_unique<NcclCommunicator>(comms[r], gpus[r], true, int(r),
                                                         int(gpus.size())));
    return out;
}
}  // namespace detail

}  // namespace flashkmeans
