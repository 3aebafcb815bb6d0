// IndexFlashFlat: Faiss's flat search contract on the engine, and files
// that stock Faiss reads as a plain IndexFlat.
#include <flashkmeans/faiss/index_flash_flat.hpp>

#include "test_data.hpp"

#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>

#include <gtest/gtest.h>

#include <memory>
#include <typeinfo>

namespace {

using idx_t = faiss::Index::idx_t;
using flashkmeans::IndexFlashFlat;

constexpr int kDim = 24, kBase = 2000, kQueries = 300, kTopK = 5;

class FlashFlatSearch : public ::testing::TestWithParam<faiss::MetricType> {};

TEST_P(FlashFlatSearch, MatchesIndexFlat) {
    const auto base = flashkmeans::testing::blobs(kBase, kDim, 40, 1);
    const auto queries = flashkmeans::testing::blobs(kQueries, kDim, 40, 2);
    faiss::IndexFlat stock(kDim, GetParam());
    IndexFlashFlat ours(kDim, GetParam());
    stock.add(kBase, base.data());
    ours.add(kBase, base.data());

    std::vector<float> ds(kQueries * kTopK), dl(kQueries * kTopK);
    std::vector<idx_t> ls(kQueries * kTopK), ll(kQueries * kTopK);
    stock.search(kQueries, queries.data(), kTopK, ds.data(), ls.data());
    ours.search(kQueries, queries.data(), kTopK, dl.data(), ll.data());
    int64_t same = 0;
    for (size_t i = 0; i < ls.size(); i++) {
        same += ls[i] == ll[i];
        EXPECT_NEAR(dl[i], ds[i], 1e-3 * (1 + std::abs(ds[i])));
    }
    // Labels differ only where two distances tie to rounding.
    EXPECT_GE(same, int64_t(ls.size()) - 3);

    // Index::assign goes through search.
    std::vector<idx_t> a(kQueries);
    ours.assign(kQueries, queries.data(), a.data());
    for (int q = 0; q < kQueries; q++) EXPECT_EQ(a[q], ll[q * kTopK]);
}

INSTANTIATE_TEST_SUITE_P(Metrics, FlashFlatSearch,
                         ::testing::Values(faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT));

TEST(IndexFlashFlat, MoreNeighboursThanVectorsGivesMinusOne) {
    const auto base = flashkmeans::testing::blobs(3, 8, 2, 3);
    IndexFlashFlat index(8);
    index.add(3, base.data());
    std::vector<float> dist(5);
    std::vector<idx_t> ids(5);
    index.search(1, base.data(), 5, dist.data(), ids.data());
    EXPECT_EQ(ids[0], 0);
    EXPECT_EQ(ids[3], -1);
    EXPECT_EQ(ids[4], -1);
}

TEST(IndexFlashFlat, EmptySearchAndBadMetricThrow) {
    IndexFlashFlat index(8);
    std::vector<float> q(8, 1.0f), dist(1);
    idx_t id;
    try {
        index.search(1, q.data(), 1, dist.data(), &id);
        FAIL() << "search on an empty index must throw";
    } catch (const faiss::FaissException& e) {
        EXPECT_NE(std::string(e.what()).find("empty"), std::string::npos) << e.what();
    }
    EXPECT_THROW(IndexFlashFlat(8, faiss::METRIC_L1), faiss::FaissException);
}

TEST(IndexFlashFlat, WritesAPlainFlatIndexThatStockFaissReads) {
    for (faiss::MetricType metric : {faiss::METRIC_L2, faiss::METRIC_INNER_PRODUCT}) {
        const auto base = flashkmeans::testing::blobs(500, 16, 10, 4);
        IndexFlashFlat ours(16, metric);
        ours.add(500, base.data());
        faiss::VectorIOWriter w;
        faiss::write_index(&ours, &w);
        faiss::VectorIOReader r;
        r.data = w.data;
        std::unique_ptr<faiss::Index> back(faiss::read_index(&r));
        auto* flat = dynamic_cast<faiss::IndexFlat*>(back.get());
        ASSERT_NE(flat, nullptr);
        EXPECT_EQ(dynamic_cast<IndexFlashFlat*>(back.get()), nullptr);
        EXPECT_EQ(flat->metric_type, metric);
        EXPECT_EQ(flat->ntotal, 500);
        EXPECT_EQ(flat->codes, ours.codes);
    }
}

TEST(IndexFlashFlat, ServesAsIvfQuantizer) {
    const int d = 16, nlist = 20, n = 4000;
    const auto x = flashkmeans::testing::blobs(n, d, nlist, 5);
    IndexFlashFlat quantizer(d);
    faiss::IndexIVFFlat ivf(&quantizer, d, nlist);
    ivf.train(n, x.data());  // Faiss's k-means, assigning through our search
    ivf.add(n, x.data());
    ivf.nprobe = nlist;  // exhaustive: every point finds itself
    std::vector<float> dist(10);
    std::vector<idx_t> ids(10);
    ivf.search(10, x.data(), 1, dist.data(), ids.data());
    for (int i = 0; i < 10; i++) EXPECT_EQ(ids[i], i);
}

}  // namespace
