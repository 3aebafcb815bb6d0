// CPU benchmark (not a test): flashkmeans::Clustering vs stock
// faiss::Clustering + IndexFlatL2 on the same data in the same process,
// n = 200000, d = 128, k = 1024, 10 iterations. Prints a table and writes
// JSON (argv[1], default bench/results/cpu_clustering.json).
#include <flashkmeans/faiss/clustering.hpp>

#include <faiss/IndexFlat.h>
#include <omp.h>

#include "../examples/synthetic_data.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int64_t kN = 200000, kD = 128, kK = 1024;
constexpr int kIter = 10, kRepeats = 3;

struct Run {
    double seconds, obj;
};

Run train(faiss::Clustering& clus, const std::vector<float>& x) {
    faiss::IndexFlatL2 index(kD);
    const auto t0 = std::chrono::steady_clock::now();
    clus.train(kN, x.data(), index);
    return {std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
            clus.iteration_stats.back().obj};
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    const std::string out = argc > 1 ? argv[1] : "bench/results/cpu_clustering.json";
    const auto x = flashkmeans::examples::clustered_vectors(kN, kD, 4000, 7);
    faiss::ClusteringParameters cp;
    cp.niter = kIter;
    cp.max_points_per_centroid = 1 << 30;  // no subsampling: all 200000 points
    std::vector<double> t_faiss, t_ours;
    double obj_faiss = 0, obj_ours = 0;
    for (int r = 0; r < kRepeats; r++) {  // alternate, so drifts hit both
        faiss::Clustering f(kD, kK, cp);
        const Run rf = train(f, x);
        flashkmeans::Clustering o(kD, kK, cp);
        o.device = flashkmeans::DeviceChoice::cpu;
        const Run ro = train(o, x);
        t_faiss.push_back(rf.seconds);
        t_ours.push_back(ro.seconds);
        obj_faiss = rf.obj;
        obj_ours = ro.obj;
        std::printf("repeat %d: faiss %.3f s, flashkmeans %.3f s\n", r, rf.seconds, ro.seconds);
    }
    const double mf = median(t_faiss), mo = median(t_ours);
    std::printf("\nn=%lld d=%lld k=%lld niter=%d threads=%d\n", (long long)kN, (long long)kD,
                (long long)kK, kIter, omp_get_max_threads());
    std::printf("%-28s %10s %14s\n", "trainer", "median s", "final obj");
    std::printf("%-28s %10.3f %14.6g\n", "faiss::Clustering+FlatL2", mf, obj_faiss);
    std::printf("%-28s %10.3f %14.6g\n", "flashkmeans::Clustering", mo, obj_ours);
    std::printf("time ratio (ours / faiss) = %.3f\n", mo / mf);

    std::ofstream js(out);
    js << "{\n  \"benchmark\": \"cpu_clustering\",\n  \"n\": " << kN << ", \"d\": " << kD
       << ", \"k\": " << kK << ", \"niter\": " << kIter << ",\n  \"threads\": "
       << omp_get_max_threads() << ", \"hardware_concurrency\": "
       << std::thread::hardware_concurrency() << ",\n  \"faiss_seconds\": [";
    for (size_t i = 0; i < t_faiss.size(); i++) js << (i ? ", " : "") << t_faiss[i];
    js << "],\n  \"flashkmeans_seconds\": [";
    for (size_t i = 0; i < t_ours.size(); i++) js << (i ? ", " : "") << t_ours[i];
    js << "],\n  \"faiss_median_s\": " << mf << ", \"flashkmeans_median_s\": " << mo
       << ",\n  \"ratio_ours_over_faiss\": " << mo / mf << ",\n  \"faiss_final_obj\": " << obj_faiss
       << ", \"flashkmeans_final_obj\": " << obj_ours << "\n}\n";
    return 0;
}
