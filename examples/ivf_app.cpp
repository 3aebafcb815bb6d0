// Build an IVF index from a vector file with the flashkmeans plugin, save it,
// load it back with stock Faiss and query it.
//
//   ivf_app VECTORS OUT.index [--index IVF256,Flat] [--nprobe 8] [--queries 100]
//   ivf_app --make-fvecs FILE N D      (writes built-in clustered data)
//
// VECTORS: .fvecs (per vector: int32 dimension, then that many float32) or
// .npy (a 2-D little-endian float32 C-order array). The first --queries
// vectors are also used as queries: each should find itself in its top 10.
#include <flashkmeans/faiss/add.hpp>
#include <flashkmeans/faiss/index_factory.hpp>
#include <flashkmeans/faiss/train.hpp>
#include <flashkmeans/kmeans.hpp>

#include <faiss/IndexIVF.h>
#include <faiss/index_io.h>

#include "synthetic_data.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using idx_t = faiss::Index::idx_t;

struct Matrix {
    int64_t n = 0, d = 0;
    std::vector<float> data;
};

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Matrix read_fvecs(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot open " + path);
    Matrix m;
    int32_t dim;
    while (f.read(reinterpret_cast<char*>(&dim), 4)) {
        if (dim <= 0 || (m.d && dim != m.d))
            throw std::runtime_error(path + ": bad dimension " + std::to_string(dim) + " in vector " +
                                     std::to_string(m.n));
        m.d = dim;
        m.data.resize((m.n + 1) * m.d);
        if (!f.read(reinterpret_cast<char*>(&m.data[m.n * m.d]), 4 * m.d))
            throw std::runtime_error(path + ": truncated vector " + std::to_string(m.n));
        m.n++;
    }
    return m;
}

Matrix read_npy(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot open " + path);
    char magic[8];
    if (!f.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0)
        throw std::runtime_error(path + ": not a .npy file");
    // Version 1 has a 2-byte header length, versions 2 and 3 a 4-byte one.
    uint32_t hlen = 0;
    unsigned char b[4] = {0, 0, 0, 0};
    f.read(reinterpret_cast<char*>(b), magic[6] == 1 ? 2 : 4);
    hlen = b[0] | (b[1] << 8) | (uint32_t(b[2]) << 16) | (uint32_t(b[3]) << 24);
    std::string header(hlen, '\0');
    f.read(&header[0], hlen);
    std::smatch sm;
    if (!std::regex_search(header, std::regex("'descr': *'<f4'")) ||
        std::regex_search(header, std::regex("'fortran_order': *True")) ||
        !std::regex_search(header, sm, std::regex("'shape': *\\( *([0-9]+) *, *([0-9]+) *,? *\\)")))
        throw std::runtime_error(path + ": expected a 2-D little-endian float32 C-order array, header " +
                                 header);
    Matrix m;
    m.n = std::stoll(sm[1]);
    m.d = std::stoll(sm[2]);
    m.data.resize(m.n * m.d);
    if (!f.read(reinterpret_cast<char*>(m.data.data()), 4 * m.n * m.d))
        throw std::runtime_error(path + ": truncated data");
    return m;
}

void write_fvecs(const std::string& path, int64_t n, int64_t d) {
    const auto x = flashkmeans::examples::clustered_vectors(n, d, std::max<int64_t>(n / 50, 1), 3);
    std::ofstream f(path, std::ios::binary);
    const int32_t dim = int32_t(d);
    for (int64_t i = 0; i < n; i++) {
        f.write(reinterpret_cast<const char*>(&dim), 4);
        f.write(reinterpret_cast<const char*>(&x[i * d]), 4 * d);
    }
    if (!f) throw std::runtime_error("cannot write " + path);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run(int argc, char** argv) {
    if (argc == 5 && std::string(argv[1]) == "--make-fvecs") {
        write_fvecs(argv[2], std::atoll(argv[3]), std::atoll(argv[4]));
        return 0;
    }
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s VECTORS OUT.index [--index DESC] [--nprobe P] [--queries Q]\n"
                             "       %s --make-fvecs FILE N D\n", argv[0], argv[0]);
        return 2;
    }
    const std::string in = argv[1], out = argv[2];
    std::string desc = "IVF256,Flat";
    int nprobe = 8;
    int64_t nq = 100;
    for (int i = 3; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--index") desc = argv[i + 1];
        else if (a == "--nprobe") nprobe = std::atoi(argv[i + 1]);
        else if (a == "--queries") nq = std::atoll(argv[i + 1]);
        else throw std::runtime_error("unknown option " + a);
    }
    const Matrix x = ends_with(in, ".npy") ? read_npy(in) : read_fvecs(in);
    nq = std::min(nq, x.n);
    std::printf("%lld vectors of %lld dimensions from %s; index %s; engine %s\n", (long long)x.n,
                (long long)x.d, in.c_str(), desc.c_str(),
                flashkmeans::cuda_available() ? "cuda" : "cpu");

    std::unique_ptr<faiss::Index> index(flashkmeans::index_factory(int(x.d), desc.c_str()));
    auto t0 = std::chrono::steady_clock::now();
    flashkmeans::train(*index, x.n, x.data.data());
    std::printf("train %.2f s\n", seconds_since(t0));
    t0 = std::chrono::steady_clock::now();
    // Coarse assignment and PQ encoding on the engine (GPU when present).
    flashkmeans::add(index.get(), x.n, x.data.data());
    std::printf("add   %.2f s\n", seconds_since(t0));
    faiss::write_index(index.get(), out.c_str());

    // Read back with stock Faiss: nothing of the plugin is needed to use it.
    std::unique_ptr<faiss::Index> loaded(faiss::read_index(out.c_str()));
    if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(loaded.get())) ivf->nprobe = nprobe;
    const int64_t k = 10;
    std::vector<float> dist(nq * k);
    std::vector<idx_t> ids(nq * k);
    loaded->search(nq, x.data.data(), k, dist.data(), ids.data());
    int64_t self = 0;
    for (int64_t q = 0; q < nq; q++)
        for (int64_t r = 0; r < k; r++) self += ids[q * k + r] == q;
    std::printf("saved to %s, reloaded; %lld / %lld queries find themselves in their top %lld "
                "(nprobe %d)\n",
                out.c_str(), (long long)self, (long long)nq, (long long)k, nprobe);
    // Compressed codes (PQ) may rank near neighbours first; most must hit.
    return self * 10 >= nq * 9 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "ivf_app: %s\n", e.what());
        return 1;
    }
}
