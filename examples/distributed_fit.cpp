// One process per GPU (on one host or several): each process holds a shard
// of the data and calls fit_distributed; NCCL sums the partial centroid sums.
// The NCCL unique id is made by rank 0 and handed to the others through a
// file on a shared path (an MPI_Bcast or a socket does the same job).
//
//   distributed_fit <rank> <nranks> <gpu> <id-file> [n_per_rank d k]
// e.g. on a host with 2 GPUs:
//   distributed_fit 0 2 0 /tmp/fk.id & distributed_fit 1 2 1 /tmp/fk.id
// Each rank generates its own shard of a common synthetic data set.
#include <flashkmeans/distributed.hpp>
#include <flashkmeans/kmeans.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "synthetic_data.hpp"

using namespace flashkmeans;

namespace {

NcclUniqueId share_id(int rank, const std::string& path) {
    NcclUniqueId id{};
    if (rank == 0) {
        id = nccl_unique_id();
        const std::string tmp = path + ".tmp";
        std::ofstream(tmp, std::ios::binary).write(id.data(), std::streamsize(id.size()));
        std::rename(tmp.c_str(), path.c_str());  // the others never see half a file
        return id;
    }
    for (int waited = 0;; ++waited) {
        std::ifstream in(path, std::ios::binary);
        if (in.read(id.data(), std::streamsize(id.size()))) return id;
        if (waited > 600) throw Error("no NCCL id in " + path + " after 60 s");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 5) {
        std::fprintf(stderr, "usage: %s rank nranks gpu id-file [n_per_rank d k]\n", argv[0]);
        return 2;
    }
    const int rank = std::atoi(argv[1]), nranks = std::atoi(argv[2]), gpu = std::atoi(argv[3]);
    const int64_t n = argc > 5 ? std::atoll(argv[5]) : 200000;
    const int64_t d = argc > 6 ? std::atoll(argv[6]) : 64;
    const int64_t k = argc > 7 ? std::atoll(argv[7]) : 256;
    try {
        if (!nccl_available() || !cuda_available()) {
            std::printf("NCCL or a GPU is not available here: nothing to do\n");
            return 0;
        }
        auto comm = make_nccl_communicator(share_id(rank, argv[4]), nranks, rank, gpu);
        const auto x = examples::clustered_vectors(n, d, 2 * k, 1000 + uint64_t(rank));
        KMeansParams p;
        p.niter = 20;
        p.verbose = rank == 0;
        const KMeansResult r = fit_distributed(matrix_view(x.data(), n, d), k, *comm, p);
        std::printf("rank %d/%d on cuda:%d: %lld points, objective %.6g, centroid[0][0] %.6f\n",
                    rank, nranks, gpu, static_cast<long long>(n), r.obj[0],
                    static_cast<double>(r.centroids[0]));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
        return 1;
    }
    return 0;
}
