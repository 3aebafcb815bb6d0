// Data-parallel fits: one rank's fit (fit_distributed), and one process
// driving every GPU of its host (fit_multi_gpu). Both end in the one Lloyd
// driver (lloyd.cpp), which sums the ranks' partial results through the
// Communicator; this file only checks that the ranks agree and splits data.
#include <flashkmeans/distributed.hpp>
#include <flashkmeans/kmeans.hpp>

#include "checks.hpp"
#include "distributed/nccl.hpp"
#include "fit_setup.hpp"
#include "lloyd.hpp"

#include <algorithm>
#include <atomic>
#include <exception>
#include <string>
#include <thread>

namespace flashkmeans {
namespace detail {
namespace {

/// Rows [off, off + count) along dimension `dim` of v (a view, no copy).
ArrayView slice(const ArrayView& v, int dim, int64_t off, int64_t count) {
    if (v.empty()) return v;
    ArrayView s = v;
    s.data = static_cast<const char*>(v.data) + off * v.strides[dim] * dtype_size(v.dtype);
    s.shape[dim] = count;
    return s;
}

struct ShardLayout {
    int64_t global_rows = 0, offset = 0;
};

/// The first collective of a data-parallel fit. Every rank contributes its
/// row count, whether its own checks passed, and the settings all ranks must
/// share; every rank sees every rank's values (one entry per rank and value),
/// so all ranks take the same decision: go on, or throw the same error.
ShardLayout agree(Communicator& comm, const ArrayView& x, int64_t k, const KMeansParams& p,
                  bool batched, const std::exception_ptr& local_error) {
    const int R = comm.size(), me = comm.rank();
    const int nd = batched ? 3 : 2;
    const bool shaped = x.ndim == nd;
    const int64_t mine[] = {
        shaped ? x.shape[nd - 2] : 0,      // rows of this rank
        local_error ? 1 : 0,               // its checks failed
        shaped && batched ? x.shape[0] : 1, shaped ? x.shape[nd - 1] : 0, k,
        p.niter, p.nredo, p.seed, p.max_points_per_centroid, int64_t(p.metric),
        int64_t(p.spherical) | int64_t(p.int_centroids) << 1 | int64_t(p.frozen_centroids) << 2,
    };
    const char* names[] = {"rows", "failed", "batch", "d", "k", "niter", "nredo", "seed",
                           "max_points_per_centroid", "metric",
                           "spherical/int_centroids/frozen_centroids"};
    constexpr int V = int(sizeof(mine) / sizeof(mine[0]));
    std::vector<int64_t> all(size_t(V * R), 0);
    for (int v = 0; v < V; ++v) all[size_t(v * R + me)] = mine[v];
    comm.all_reduce_sum(all.data(), all.size(), ReduceType::i64, false, nullptr);
    auto at = [&](int v, int r) { return all[size_t(v * R + r)]; };

    for (int r = 0; r < R; ++r)
        if (at(1, r)) {
            if (local_error) std::rethrow_exception(local_error);
            throw Error("flashkmeans: fit_distributed: the arguments of rank " +
                        std::to_string(r) + " were rejected (its error says why)");
        }
    for (int v = 2; v < V; ++v)
        for (int r = 1; r < R; ++r)
            if (at(v, r) != at(v, 0))
                throw Error(std::string("fit_distributed: every rank must pass the same ") +
                            names[v] + ": rank 0 has " + std::to_string(at(v, 0)) + ", rank " +
                            std::to_string(r) + " has " + std::to_string(at(v, r)));
    ShardLayout lay;
    for (int r = 0; r < R; ++r) {
        if (r == me) lay.offset = lay.global_rows;
        lay.global_rows += at(0, r);
    }
    FLASHKMEANS_CHECK(lay.global_rows >= k, "n: the number of training points of all ranks (",
                      lay.global_rows, ") must be at least the number of clusters k (", k, ")");
    FLASHKMEANS_CHECK(lay.global_rows <= INT32_MAX,
                      "n: at most 2^31-1 points per problem over all ranks, got ", lay.global_rows);
    return lay;
}

/// One rank's fit. `backend` may be null: then it is chosen from the
/// communicator's GPU (NCCL ranks) or as a one-rank fit would choose it.
KMeansResult fit_rank(const ArrayView& x, int64_t k, Communicator& comm, const KMeansParams& p,
                      const ArrayView& weights, const ArrayView& init,
                      std::unique_ptr<Backend> backend) {
    const bool batched = x.ndim == 3;
    std::exception_ptr err;
    try {
        validate_fit(x, k, p, weights, init, batched, true);
        if (!backend) {
            const bool gpu_comm = comm.gpu_id() >= 0 && p.device != DeviceChoice::cpu;
            if (gpu_comm && x.on_device())
                FLASHKMEANS_CHECK(x.device_id == comm.gpu_id(), "x: lives on cuda:", x.device_id,
                                  " but this rank's communicator is on cuda:", comm.gpu_id());
            backend = gpu_comm ? make_cuda_backend(comm.gpu_id(), p.device_memory_budget, p.deterministic)
                               : choose_backend(x, p);
            FLASHKMEANS_CHECK(backend != nullptr, "device: this build has no CUDA backend");
        }
    } catch (...) {
        err = std::current_exception();
    }
    // Errors up to here are the same on every rank: no rank is left waiting.
    const ShardLayout lay = agree(comm, x, k, p, batched, err);
    LloydInputs in{x, weights, init, k};
    in.comm = &comm;
    in.global_rows = lay.global_rows;
    in.row_offset = lay.offset;
    try {
        return run_lloyd(*backend, in, p);
    } catch (const PeerFailure&) {
        throw;
    } catch (...) {
        comm.abort();  // the other ranks wait on this one: wake them (PeerFailure)
        throw;
    }
}

}  // namespace

KMeansResult fit_multi_gpu(const ArrayView& x, int64_t k, const KMeansParams& p,
                           const ArrayView& weights, const ArrayView& init,
                           const std::vector<int>& gpus_in) {
    const bool batched = x.ndim == 3;
    const int64_t N = x.shape[batched ? 1 : 0];
    std::vector<int> gpus = gpus_in;
    if (int64_t(gpus.size()) > N) gpus.resize(size_t(N));  // at least one row per GPU
    const int R = int(gpus.size());
    // NCCL needs distinct GPUs; ranks sharing a GPU reduce through the host.
    std::vector<int> sorted = gpus;
    std::sort(sorted.begin(), sorted.end());
    const bool distinct = std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end();
    std::vector<std::unique_ptr<Communicator>> comms =
            nccl_available() && distinct ? make_nccl_communicators_all(gpus)
                                         : make_local_communicators(R);

    std::vector<KMeansResult> res(static_cast<size_t>(R));
    std::vector<std::exception_ptr> errs(static_cast<size_t>(R));
    std::atomic<int> failed_first{-1};  // a rank whose own error it is
    auto run = [&](int r) {
        try {
            const int64_t lo = N * r / R, hi = N * (r + 1) / R;
            KMeansParams pr = p;
            pr.device = DeviceChoice::cuda;
            pr.gpu_id = gpus[size_t(r)];
            pr.num_gpus = 1;
            pr.check_finite = false;  // checked once on the whole array
            if (r != 0) pr.on_iteration = nullptr;  // callbacks and output from rank 0
            res[size_t(r)] = fit_rank(slice(x, batched ? 1 : 0, lo, hi - lo), k, *comms[size_t(r)],
                                      pr, slice(weights, weights.ndim - 1, lo, hi - lo), init,
                                      make_cuda_backend(gpus[size_t(r)], p.device_memory_budget,
                                                        p.deterministic));
        } catch (const PeerFailure&) {
            errs[size_t(r)] = std::current_exception();
        } catch (...) {
            errs[size_t(r)] = std::current_exception();
            for (auto& c : comms) c->abort();  // NCCL: each rank's own communicator
            failed_first.store(r, std::memory_order_relaxed);
        }
    };
    std::vector<std::thread> threads;
    for (int r = 1; r < R; ++r) threads.emplace_back(run, r);
    run(0);
    for (auto& t : threads) t.join();
    if (failed_first >= 0) std::rethrow_exception(errs[size_t(failed_first.load())]);
    for (const auto& e : errs)  // the same error on every rank (arguments)
        if (e) std::rethrow_exception(e);
    return std::move(res[0]);
}

}  // namespace detail

KMeansResult fit_distributed(const ArrayView& x, int64_t k, Communicator& comm,
                             const KMeansParams& params, const ArrayView& weights,
                             const ArrayView& init_centroids) {
    return detail::fit_rank(x, k, comm, params, weights, init_centroids, nullptr);
}

}  // namespace flashkmeans
