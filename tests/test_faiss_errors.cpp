// Bad input to the plugin raises faiss::FaissException, as stock Faiss does,
// with a message that names what was wrong.
#include <flashkmeans/faiss/clustering.hpp>

#include <faiss/IndexFlat.h>
#include <faiss/impl/FaissException.h>
#include <gtest/gtest.h>

#include "test_data.hpp"

#include <cmath>
#include <limits>

namespace {

/// Runs f and checks it throws faiss::FaissException mentioning `needle`.
template <class F>
void expect_faiss_error(F&& f, const std::string& needle) {
    try {
        f();
        FAIL() << "expected a FaissException mentioning '" << needle << "'";
    } catch (const faiss::FaissException& e) {
        EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
}

struct PluginErrors : ::testing::Test {
    int d = 8, k = 10;
    int64_t n = 200;
    std::vector<float> x = flashkmeans::testing::blobs(n, d, 5, 1);
    faiss::IndexFlatL2 index{8};
};

TEST_F(PluginErrors, FewerPointsThanClusters) {
    flashkmeans::Clustering clus(d, k);
    expect_faiss_error([&] { clus.train(k - 1, x.data(), index); }, "Number of training points");
}

TEST_F(PluginErrors, NonPositiveK) {
    flashkmeans::Clustering clus(d, 0);
    expect_faiss_error([&] { clus.train(n, x.data(), index); }, "Number of clusters k");
}

TEST_F(PluginErrors, DimensionMismatchWithIndex) {
    flashkmeans::Clustering clus(d, k);
    faiss::IndexFlatL2 wrong(d + 1);
    expect_faiss_error([&] { clus.train(n, x.data(), wrong); }, "Index dimension");
}

TEST_F(PluginErrors, NullPointer) {
    flashkmeans::Clustering clus(d, k);
    expect_faiss_error([&] { clus.train(n, nullptr, index); }, "x: training vectors pointer is null");
}

TEST_F(PluginErrors, NaNInInput) {
    flashkmeans::Clustering clus(d, k);
    x[5 * d + 3] = std::numeric_limits<float>::quiet_NaN();
    expect_faiss_error([&] { clus.train(n, x.data(), index); }, "NaN");
}

TEST_F(PluginErrors, InfInInput) {
    flashkmeans::Clustering clus(d, k);
    x[n * d - 1] = -std::numeric_limits<float>::infinity();
    expect_faiss_error([&] { clus.train(n, x.data(), index); }, "Inf");
}

TEST_F(PluginErrors, ProvidedCentroidsNotMultipleOfD) {
    flashkmeans::Clustering clus(d, k);
    clus.centroids.resize(d + 1, 0.f);
    expect_faiss_error([&] { clus.train(n, x.data(), index); }, "multiple of dimension");
}

TEST_F(PluginErrors, UnsupportedMetric) {
    flashkmeans::Clustering clus(d, k);
    faiss::IndexFlat l1(d, faiss::METRIC_L1);
    expect_faiss_error([&] { clus.train(n, x.data(), l1); }, "metric type");
}

}  // namespace
