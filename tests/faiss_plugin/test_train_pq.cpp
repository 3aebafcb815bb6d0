// Batched PQ codebook training against Faiss's per-subspace loop: same
// seeds, so the same codebooks up to floating-point rounding.
#include <flashkmeans/faiss/train.hpp>

#include "test_data.hpp"

#include <faiss/impl/FaissException.h>
#include <faiss/impl/ProductQuantizer.h>
#include <faiss/utils/distances.h>

#include <gtest/gtest.h>

#include <cmath>

namespace {

constexpr int kDim = 32, kM = 8, kN = 10000;

/// Mean squared reconstruction error of x through pq.
double reconstruction_mse(const faiss::ProductQuantizer& pq, const std::vector<float>& x) {
    const size_t n = x.size() / pq.d;
    std::vector<uint8_t> codes(n * pq.code_size);
    std::vector<float> rec(x.size());
    pq.compute_codes(x.data(), codes.data(), n);
    pq.decode(codes.data(), rec.data(), n);
    return faiss::fvec_L2sqr(x.data(), rec.data(), x.size()) / double(n);
}

/// Fraction of codebook entries that agree with Faiss's to 1e-3 (relative).
double fraction_equal(const std::vector<float>& a, const std::vector<float>& b) {
    size_t same = 0;
    for (size_t i = 0; i < a.size(); i++) same += std::abs(a[i] - b[i]) <= 1e-3 * (1 + std::abs(b[i]));
    return double(same) / double(a.size());
}

class BatchedPQ : public ::testing::TestWithParam<int> {};

TEST_P(BatchedPQ, MatchesFaissPerSubspaceLoop) {
    const int nbits = GetParam();
    const auto x = flashkmeans::testing::blobs(kN, kDim, 64, 11);
    faiss::ProductQuantizer stock(kDim, kM, nbits), ours(kDim, kM, nbits);
    stock.train(kN, x.data());
    flashkmeans::train_product_quantizer(ours, kN, x.data());
    EXPECT_GE(fraction_equal(ours.centroids, stock.centroids), 0.98);
    const double es = reconstruction_mse(stock, x), eo = reconstruction_mse(ours, x);
    EXPECT_NEAR(eo, es, 0.005 * es);
}

INSTANTIATE_TEST_SUITE_P(Nbits, BatchedPQ, ::testing::Values(4, 8));

TEST(BatchedPQ, SubsamplesAndHotStartsAsFaiss) {
    const auto x = flashkmeans::testing::blobs(kN, kDim, 64, 12);
    faiss::ProductQuantizer stock(kDim, kM, 5), ours(kDim, kM, 5);
    stock.cp.max_points_per_centroid = 100;  // 3200 of the 10000 rows
    ours.cp.max_points_per_centroid = 100;
    stock.cp.niter = ours.cp.niter = 8;
    stock.train(kN, x.data());
    flashkmeans::train_product_quantizer(ours, kN, x.data());
    EXPECT_GE(fraction_equal(ours.centroids, stock.centroids), 0.98);

    // Continue both from where they are.
    stock.train_type = ours.train_type = faiss::ProductQuantizer::Train_hot_start;
    stock.train(kN, x.data());
    flashkmeans::train_product_quantizer(ours, kN, x.data());
    EXPECT_GE(fraction_equal(ours.centroids, stock.centroids), 0.98);
}

TEST(BatchedPQ, SharedCodebook) {
    const auto x = flashkmeans::testing::blobs(4000, kDim, 32, 13);
    faiss::ProductQuantizer stock(kDim, kM, 6), ours(kDim, kM, 6);
    stock.train_type = ours.train_type = faiss::ProductQuantizer::Train_shared;
    stock.cp.niter = ours.cp.niter = 10;
    stock.train(4000, x.data());
    flashkmeans::train_product_quantizer(ours, 4000, x.data());
    EXPECT_GE(fraction_equal(ours.centroids, stock.centroids), 0.98);
    for (int m = 1; m < kM; m++)  // one codebook, copied to every slot
        EXPECT_TRUE(std::equal(ours.get_centroids(m, 0), ours.get_centroids(m, 0) + ours.ksub * ours.dsub,
                               ours.get_centroids(0, 0)));
}

TEST(BatchedPQ, TooFewPointsIsAFaissError) {
    const auto x = flashkmeans::testing::blobs(100, kDim, 4, 14);
    faiss::ProductQuantizer ours(kDim, kM, 8);
    EXPECT_THROW(flashkmeans::train_product_quantizer(ours, 100, x.data()), faiss::FaissException);
}

}  // namespace
