// Residual quantizers through Faiss's assign_index_factory hook: the plugin
// installs IndexFlashFlat there, so RQ's k-means and beam-search assignments
// run on the engine; the trained index is stock Faiss and quantizes as well
// as one trained by stock Faiss.
#include <flashkmeans/faiss/assign_index_factory.hpp>
#include <flashkmeans/faiss/index_factory.hpp>
#include <flashkmeans/faiss/index_flash_flat.hpp>
#include <flashkmeans/faiss/retrofit.hpp>
#include <flashkmeans/faiss/train.hpp>

#include "plugin_data.hpp"

#include <faiss/IndexAdditiveQuantizer.h>
#include <faiss/IndexIVFAdditiveQuantizer.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <gtest/gtest.h>

#include <memory>

namespace {

using flashkmeans::testing::Dataset;
constexpr int kDim = 32;

const Dataset& data() {
    static const Dataset ds = flashkmeans::testing::clustered_dataset(8000, 500, kDim, 200, 41);
    return ds;
}

/// Mean squared reconstruction error of the queries through sa_encode/decode.
double reconstruction_mse(const faiss::Index& index, const Dataset& ds) {
    std::vector<uint8_t> codes(index.sa_code_size() * ds.nq);
    std::vector<float> back(ds.nq * kDim);
    index.sa_encode(ds.nq, ds.queries.data(), codes.data());
    index.sa_decode(ds.nq, codes.data(), back.data());
    double err = 0;
    for (size_t i = 0; i < back.size(); i++) err += double(back[i] - ds.queries[i]) * (back[i] - ds.queries[i]);
    return err / ds.nq;
}

TEST(ResidualQuantizer, FactoryInstallsTheEngineHook) {
    std::unique_ptr<faiss::Index> index(flashkmeans::index_factory(kDim, "RQ4x6"));
    auto& rq = dynamic_cast<faiss::IndexResidualQuantizer&>(*index).rq;
    auto* hook = dynamic_cast<flashkmeans::FlashAssignIndexFactory*>(rq.assign_index_factory);
    ASSERT_NE(hook, nullptr);
    std::unique_ptr<faiss::Index> made((*hook)(kDim));
    EXPECT_NE(dynamic_cast<flashkmeans::IndexFlashFlat*>(made.get()), nullptr);
    EXPECT_EQ(made->d, kDim);
    // The inverse removes it again.
    EXPECT_EQ(flashkmeans::to_stock(*index), 1);
    EXPECT_EQ(rq.assign_index_factory, nullptr);
}

/// Counts the indexes Faiss asks the hook for.
struct CountingFactory : flashkmeans::FlashAssignIndexFactory {
    int made = 0;
    faiss::Index* operator()(int dim) override {
        made++;
        return FlashAssignIndexFactory::operator()(dim);
    }
};

TEST(ResidualQuantizer, FaissTrainingAndEncodingGoThroughTheHook) {
    const Dataset& ds = data();
    std::unique_ptr<faiss::Index> index(flashkmeans::index_factory(kDim, "RQ3x5"));
    auto& rq = dynamic_cast<faiss::IndexResidualQuantizer&>(*index).rq;
    CountingFactory counting;
    rq.assign_index_factory = &counting;
    index->train(2000, ds.base.data());
    EXPECT_GE(counting.made, 3);  // one assignment index per codebook at least
    const int before = counting.made;
    std::vector<uint8_t> codes(index->sa_code_size() * 10);
    index->sa_encode(10, ds.queries.data(), codes.data());
    EXPECT_GT(counting.made, before);  // the beam search of encoding too
    rq.assign_index_factory = nullptr;
}

TEST(ResidualQuantizer, TrainsAsWellAsStockFaiss) {
    const Dataset& ds = data();
    std::unique_ptr<faiss::Index> stock(faiss::index_factory(kDim, "RQ4x6"));
    std::unique_ptr<faiss::Index> ours(flashkmeans::index_factory(kDim, "RQ4x6"));
    stock->train(ds.nb, ds.base.data());
    flashkmeans::train(*ours, ds.nb, ds.base.data());
    ASSERT_TRUE(ours->is_trained);
    const double e_stock = reconstruction_mse(*stock, ds), e_ours = reconstruction_mse(*ours, ds);
    std::printf("RQ4x6 reconstruction MSE: flashkmeans %.5f, Faiss %.5f\n", e_ours, e_stock);
    EXPECT_LE(e_ours, e_stock * 1.03);
    EXPECT_GE(e_ours, e_stock * 0.97);
}

TEST(ResidualQuantizer, IvfResidualRoundTripsThroughStockFaiss) {
    const Dataset& ds = data();
    std::unique_ptr<faiss::Index> ours(flashkmeans::index_factory(kDim, "IVF16,RQ2x6"));
    // The IVF quantizer and the residual quantizer both run on the engine.
    EXPECT_EQ(flashkmeans::retrofit(*ours), 2);
    flashkmeans::train(*ours, ds.nb, ds.base.data());
    ours->add(ds.nb, ds.base.data());
    faiss::VectorIOWriter w;
    faiss::write_index(ours.get(), &w);
    faiss::VectorIOReader r;
    r.data = w.data;
    std::unique_ptr<faiss::Index> back(faiss::read_index(&r));
    ASSERT_NE(dynamic_cast<faiss::IndexIVFResidualQuantizer*>(back.get()), nullptr);
    dynamic_cast<faiss::IndexIVF&>(*ours).nprobe = 4;
    dynamic_cast<faiss::IndexIVF&>(*back).nprobe = 4;
    const int64_t nq = 50, k = 5;
    std::vector<float> d1(nq * k), d2(nq * k);
    std::vector<faiss::Index::idx_t> i1(nq * k), i2(nq * k);
    ours->search(nq, ds.queries.data(), k, d1.data(), i1.data());
    back->search(nq, ds.queries.data(), k, d2.data(), i2.data());
    EXPECT_EQ(i1, i2);
    for (size_t i = 0; i < d1.size(); i++) EXPECT_NEAR(d1[i], d2[i], 1e-3 * (1 + d2[i]));
}

}  // namespace
