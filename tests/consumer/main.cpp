#include <flashkmeans/faiss/clustering.hpp>
#include <flashkmeans/kmeans.hpp>

#include <faiss/IndexFlat.h>

#include <cstdio>
#include <vector>

int main() {
    const int d = 4, k = 3, n = 300;
    std::vector<float> x(n * d);
    for (int i = 0; i < n * d; i++) x[i] = float((i * 7919) % 101) / 101.f + float(i / d % k);
    flashkmeans::Clustering clus(d, k);
    faiss::IndexFlatL2 index(d);
    clus.train(n, x.data(), index);
    std::printf("consumer: %zu iterations, objective %g\n", clus.iteration_stats.size(),
                clus.iteration_stats.back().obj);
    return index.ntotal == k ? 0 : 1;
}
