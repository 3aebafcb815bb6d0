// Quality: recall@1 and recall@10 at a fixed nprobe of IVF-Flat and IVF-PQ
// trained by the plugin equal those of stock Faiss training within 0.5
// points, on the built-in data and on Fashion-MNIST.
#include <flashkmeans/faiss/index_factory.hpp>
#include <flashkmeans/faiss/train.hpp>

#include "fashion_mnist.hpp"
#include "plugin_data.hpp"

#include <faiss/IndexIVF.h>
#include <faiss/index_factory.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>

namespace {

using flashkmeans::testing::Dataset;

constexpr int64_t kTopK = 10;

struct Recalls {
    double r1, r10;
};

Recalls measure(faiss::Index& index, const Dataset& ds, int nprobe) {
    dynamic_cast<faiss::IndexIVF&>(index).nprobe = nprobe;
    const auto ids = flashkmeans::testing::add_and_search(index, ds, kTopK);
    return {flashkmeans::testing::recall_at(ds, ids, kTopK, 1),
            flashkmeans::testing::recall_at(ds, ids, kTopK, 10)};
}

/// Trains `desc` on the first ntrain base vectors with stock Faiss and with
/// the plugin, and compares recalls.
void compare_recall(const Dataset& ds, const char* desc, int64_t ntrain, int nprobe) {
    std::unique_ptr<faiss::Index> stock(faiss::index_factory(int(ds.d), desc));
    stock->train(ntrain, ds.base.data());
    const Recalls s = measure(*stock, ds, nprobe);

    std::unique_ptr<faiss::Index> ours(flashkmeans::index_factory(int(ds.d), desc));
    flashkmeans::train(*ours, ntrain, ds.base.data());
    const Recalls o = measure(*ours, ds, nprobe);

    std::printf("%s nprobe=%d: recall@1 %.2f (Faiss %.2f), recall@10 %.2f (Faiss %.2f)\n", desc,
                nprobe, o.r1, s.r1, o.r10, s.r10);
    EXPECT_NEAR(o.r1, s.r1, 0.5) << desc;
    EXPECT_NEAR(o.r10, s.r10, 0.5) << desc;
}

/// 10000 queries: two equally good trainings (e.g. CPU and GPU breaking
/// near-ties differently) then differ by well under 0.5 points; with 1000
/// queries the noise alone reached 1 point.
const Dataset& builtin() {
    static const Dataset ds = flashkmeans::testing::clustered_dataset(30000, 10000, 48, 500, 31);
    return ds;
}

TEST(Recall, BuiltinIvfFlat) { compare_recall(builtin(), "IVF128,Flat", 30000, 4); }
TEST(Recall, BuiltinIvfPQ) { compare_recall(builtin(), "IVF128,PQ12np", 30000, 8); }

/// 20000 training images as base and training set, 2000 test images as
/// queries (enough that one query is 0.05 points of recall).
const Dataset* fashion(std::string& why) {
    static Dataset ds;
    static bool tried = false, ok = false;
    static std::string reason;
    if (!tried) {
        tried = true;
        using flashkmeans::testing::kFashionMnistDir;
        using flashkmeans::testing::load_fashion_mnist;
        ok = load_fashion_mnist(kFashionMnistDir, "train-images-idx3-ubyte.gz", 20000, ds.base,
                                ds.nb, reason) &&
             load_fashion_mnist(kFashionMnistDir, "t10k-images-idx3-ubyte.gz", 2000, ds.queries,
                                ds.nq, reason);
        if (ok) {
            ds.d = 784;
            flashkmeans::testing::compute_ground_truth(ds);
        }
    }
    why = reason;
    return ok ? &ds : nullptr;
}

TEST(Recall, FashionMnistIvfFlat) {
    std::string why;
    const Dataset* ds = fashion(why);
    if (!ds) GTEST_SKIP() << "Fashion-MNIST unavailable: " << why;
    compare_recall(*ds, "IVF64,Flat", ds->nb, 4);
}

TEST(Recall, FashionMnistIvfPQ) {
    std::string why;
    const Dataset* ds = fashion(why);
    if (!ds) GTEST_SKIP() << "Fashion-MNIST unavailable: " << why;
    compare_recall(*ds, "IVF64,PQ16np", ds->nb, 8);
}

}  // namespace
