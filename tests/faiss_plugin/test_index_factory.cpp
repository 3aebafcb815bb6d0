// flashkmeans::index_factory and retrofit: the same classes as
// faiss::index_factory, the engine in the IVF quantizer, clear errors.
#include <flashkmeans/faiss/index_factory.hpp>
#include <flashkmeans/faiss/index_flash_flat.hpp>
#include <flashkmeans/faiss/retrofit.hpp>

#include "find_ivf.hpp"

#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <typeinfo>

namespace {

using idx_t = faiss::Index::idx_t;

using flashkmeans::testing::find_ivf;

std::string what_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const faiss::FaissException& e) {
        return e.what();
    }
    return "(no exception)";
}

class FactoryStrings : public ::testing::TestWithParam<const char*> {};

TEST_P(FactoryStrings, SameClassesAsFaissWithFlashQuantizer) {
    const char* desc = GetParam();
    for (faiss::MetricType metric : {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
        std::unique_ptr<faiss::Index> stock(faiss::index_factory(64, desc, metric));
        std::unique_ptr<faiss::Index> ours(flashkmeans::index_factory(64, desc, metric));
        EXPECT_EQ(typeid(*ours), typeid(*stock)) << desc;
        EXPECT_EQ(ours->metric_type, metric);
        EXPECT_EQ(ours->d, 64);
        faiss::IndexIVF* ivf_s = find_ivf(stock.get());
        faiss::IndexIVF* ivf_o = find_ivf(ours.get());
        ASSERT_EQ(ivf_s == nullptr, ivf_o == nullptr) << desc;
        if (!ivf_o) continue;
        EXPECT_EQ(typeid(*ivf_o), typeid(*ivf_s)) << desc;
        EXPECT_EQ(ivf_o->nlist, ivf_s->nlist);
        EXPECT_EQ(ivf_o->code_size, ivf_s->code_size);
        if (typeid(*ivf_s->quantizer) == typeid(faiss::IndexFlat) ||
            dynamic_cast<faiss::IndexFlatL2*>(ivf_s->quantizer) ||
            dynamic_cast<faiss::IndexFlatIP*>(ivf_s->quantizer)) {
            ASSERT_NE(dynamic_cast<flashkmeans::IndexFlashFlat*>(ivf_o->quantizer), nullptr);
            EXPECT_EQ(ivf_o->quantizer->metric_type, ivf_s->quantizer->metric_type);
        } else {  // HNSW quantizer: kept as Faiss builds it
            EXPECT_EQ(typeid(*ivf_o->quantizer), typeid(*ivf_s->quantizer));
        }
    }
}

INSTANTIATE_TEST_SUITE_P(
        Descriptions, FactoryStrings,
        ::testing::Values("Flat", "IVF64,Flat", "IVF64,PQ8", "IVF64,PQ16x4", "IVF64,PQ8np",
                          "IVF64,SQ8", "IVF64,SQfp16", "IVF64_HNSW16,Flat", "OPQ8,IVF64,PQ8",
                          "OPQ8_32,IVF64,PQ8", "PCA32,IVF64,Flat", "PCAR32,IVF64,SQ8",
                          "IDMap,IVF64,Flat", "IDMap2,Flat", "IVF64,PQ8,RFlat", "PQ8", "SQ8",
                          "L2norm,IVF64,Flat"));

TEST(IndexFactory, UnsupportedTokenIsNamed) {
    const std::string msg =
            what_of([] { delete flashkmeans::index_factory(64, "IVF64,LSH"); });
    EXPECT_NE(msg.find("\"LSH\""), std::string::npos) << msg;
    const std::string msg2 =
            what_of([] { delete flashkmeans::index_factory(64, "IVF64,PQ8,Bogus7"); });
    EXPECT_NE(msg2.find("\"Bogus7\""), std::string::npos) << msg2;
}

TEST(IndexFactory, UnsupportedMetricIsNamed) {
    const std::string msg = what_of(
            [] { delete flashkmeans::index_factory(64, "IVF64,Flat", faiss::METRIC_L1); });
    EXPECT_NE(msg.find("metric type"), std::string::npos) << msg;
}

TEST(IndexFactory, SearchOrAddBeforeTrainingIsAClearError) {
    std::unique_ptr<faiss::Index> index(flashkmeans::index_factory(16, "IVF16,PQ4"));
    std::vector<float> x(16 * 4, 0.5f), dist(4);
    std::vector<idx_t> ids(4);
    const std::string s = what_of([&] { index->search(4, x.data(), 1, dist.data(), ids.data()); });
    EXPECT_NE(s.find("train"), std::string::npos) << s;
    const std::string a = what_of([&] { index->add(4, x.data()); });
    EXPECT_NE(a.find("train"), std::string::npos) << a;
}

TEST(Retrofit, SwapsFlatQuantizersBothWays) {
    std::unique_ptr<faiss::Index> index(faiss::index_factory(32, "OPQ4,IVF32,PQ4"));
    EXPECT_EQ(flashkmeans::retrofit(*index), 1);
    faiss::IndexIVF* ivf = find_ivf(index.get());
    EXPECT_NE(dynamic_cast<flashkmeans::IndexFlashFlat*>(ivf->quantizer), nullptr);
    EXPECT_TRUE(ivf->own_fields);
    EXPECT_EQ(flashkmeans::retrofit(*index), 1);  // idempotent
    EXPECT_EQ(flashkmeans::to_stock(*index), 1);
    EXPECT_EQ(typeid(*ivf->quantizer), typeid(faiss::IndexFlat));
    EXPECT_EQ(flashkmeans::to_stock(*index), 0);

    // A quantizer the caller owns stays the caller's.
    faiss::IndexFlatL2 mine(32);
    faiss::IndexIVFFlat manual(&mine, 32, 8);
    EXPECT_EQ(flashkmeans::retrofit(manual), 1);
    EXPECT_NE(manual.quantizer, &mine);
    EXPECT_TRUE(manual.own_fields);

    std::unique_ptr<faiss::Index> hnsw(faiss::index_factory(32, "IVF32_HNSW8,Flat"));
    EXPECT_EQ(flashkmeans::retrofit(*hnsw), 0);
}

}  // namespace
