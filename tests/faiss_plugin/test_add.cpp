// flashkmeans::add against Faiss's own add on the same trained index: the
// same inverted lists (sizes, ids, order), the same codes up to exact
// distance ties, the same search results, the same errors. Fresh data every
// run (the seed is printed on failure; FLASHKMEANS_TEST_SEED replays one).
#include <flashkmeans/faiss/add.hpp>
#include <flashkmeans/faiss/index_factory.hpp>
#include <flashkmeans/faiss/index_flash_flat.hpp>
#include <flashkmeans/faiss/retrofit.hpp>

#include "find_ivf.hpp"
#include "test_data.hpp"

#include <faiss/IndexFlat.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexPQ.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>
#include <faiss/invlists/InvertedLists.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace {

using idx_t = faiss::Index::idx_t;
using flashkmeans::testing::find_ivf;

uint64_t fresh_seed() {
    if (const char* s = std::getenv("FLASHKMEANS_TEST_SEED")) return std::strtoull(s, nullptr, 10);
    std::random_device rd;
    return (uint64_t(rd()) << 32) ^ rd();
}

struct Case {
    const char* name;
    const char* desc;     ///< faiss::index_factory description
    int d;                ///< dimension (PQ: multiple of M, not a power of 2)
    faiss::MetricType metric = faiss::METRIC_L2;
    bool by_residual = true;  ///< IndexIVFPQ only
    bool flash = false;       ///< flashkmeans::index_factory (IndexFlashFlat quantizer)
    bool ids = false;         ///< add_with_ids (random unique ids)
    idx_t batch = 777;        ///< AddOptions::batch_size (0: automatic)
};

std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.name; }

constexpr idx_t kTrain = 3000, kAdd = 2500, kQueries = 50, kTopK = 10;

struct Fixture {
    uint64_t seed;
    std::vector<float> train, base, queries;
    std::vector<idx_t> ids;
};

Fixture make_data(const Case& c) {
    Fixture f;
    f.seed = fresh_seed();
    const std::vector<float> all =
            flashkmeans::testing::blobs(kTrain + kAdd + kQueries, c.d, 40, f.seed, 0.5f);
    f.train.assign(all.begin(), all.begin() + kTrain * c.d);
    f.base.assign(all.begin() + kTrain * c.d, all.begin() + (kTrain + kAdd) * c.d);
    f.queries.assign(all.begin() + (kTrain + kAdd) * c.d, all.end());
    // Unique ids, shuffled, far from 0..n-1.
    std::set<idx_t> used;
    std::mt19937_64 g(f.seed ^ 0x1d5);
    while (idx_t(f.ids.size()) < kAdd) {
        const idx_t id = idx_t(g() >> 20);
        if (used.insert(id).second) f.ids.push_back(id);
    }
    return f;
}

/// Faiss's training, cut short (how good the codebooks are does not matter here).
void shorten_training(faiss::Index* index) {
    if (auto* ipt = dynamic_cast<faiss::IndexPreTransform*>(index)) {
        for (faiss::VectorTransform* vt : ipt->chain)
            if (auto* opq = dynamic_cast<faiss::OPQMatrix*>(vt)) {
                opq->niter = 2;
                opq->niter_pq = 2;
                opq->niter_pq_0 = 4;
            }
        shorten_training(ipt->index);
    } else if (auto* idmap = dynamic_cast<faiss::IndexIDMap*>(index)) {
        shorten_training(idmap->index);
    } else if (auto* refine = dynamic_cast<faiss::IndexRefine*>(index)) {
        shorten_training(refine->base_index);
    } else if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(index)) {
        ivf->cp.niter = 4;
        if (auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(ivf)) ivfpq->pq.cp.niter = 4;
    } else if (auto* ipq = dynamic_cast<faiss::IndexPQ*>(index)) {
        ipq->pq.cp.niter = 4;
    }
}

/// A trained index and an exact copy of it (same quantizer, codebooks, ...):
/// {the one flashkmeans::add fills, the one Faiss's add fills}.
std::pair<std::unique_ptr<faiss::Index>, std::unique_ptr<faiss::Index>> trained_pair(
        const Case& c, const Fixture& f) {
    std::unique_ptr<faiss::Index> index(faiss::index_factory(c.d, c.desc, c.metric));
    if (auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(find_ivf(index.get())))
        ivfpq->by_residual = c.by_residual;
    shorten_training(index.get());
    index->train(kTrain, f.train.data());
    faiss::VectorIOWriter w;
    faiss::write_index(index.get(), &w);
    faiss::VectorIOReader r;
    r.data = w.data;
    std::unique_ptr<faiss::Index> copy(faiss::read_index(&r));
    if (c.flash) {
        // The same trained index with the plugin's quantizer.
        EXPECT_EQ(flashkmeans::retrofit(*copy), 1);
        EXPECT_NE(dynamic_cast<flashkmeans::IndexFlashFlat*>(find_ivf(copy.get())->quantizer),
                  nullptr);
    }
    return {std::move(copy), std::move(index)};
}

/// Faiss's add, in one call.
void faiss_add(faiss::Index& index, idx_t n, const float* x, const idx_t* ids) {
    if (ids) index.add_with_ids(n, x, ids);
    else index.add(n, x);
}

struct ListComparison {
    bool same_lists = true;   ///< every list: same size, same ids in the same order
    idx_t differing_codes = 0;
    std::string first_difference;
};

ListComparison compare_lists(const faiss::IndexIVF& ours, const faiss::IndexIVF& ref) {
    ListComparison r;
    EXPECT_EQ(ours.nlist, ref.nlist);
    EXPECT_EQ(ours.code_size, ref.code_size);
    const size_t cs = ref.code_size;
    const bool float_codes = dynamic_cast<const faiss::IndexIVFFlat*>(&ref) != nullptr;
    for (size_t l = 0; l < ref.nlist; l++) {
        const size_t n0 = ours.invlists->list_size(l), n1 = ref.invlists->list_size(l);
        faiss::InvertedLists::ScopedIds i0(ours.invlists, l), i1(ref.invlists, l);
        faiss::InvertedLists::ScopedCodes c0(ours.invlists, l), c1(ref.invlists, l);
        if (n0 != n1 || !std::equal(i0.get(), i0.get() + n0, i1.get())) {
            if (r.same_lists)
                r.first_difference = "list " + std::to_string(l) + ": " + std::to_string(n0) +
                                     " vs " + std::to_string(n1) + " entries";
            r.same_lists = false;
            continue;
        }
        for (size_t j = 0; j < n0; j++) {
            const uint8_t *a = c0.get() + j * cs, *b = c1.get() + j * cs;
            if (float_codes) {
                // IVFFlat stores the vectors: after a transform (PCA), BLAS
                // rounds them depending on how many rows one apply gets.
                const float *fa = reinterpret_cast<const float*>(a),
                            *fb = reinterpret_cast<const float*>(b);
                for (size_t k = 0; k < cs / sizeof(float); k++)
                    if (std::abs(fa[k] - fb[k]) > 1e-5f * (1 + std::abs(fb[k]))) {
                        r.differing_codes++;
                        break;
                    }
            } else {
                r.differing_codes += std::memcmp(a, b, cs) != 0;
            }
        }
    }
    return r;
}

/// Fraction of the reference's top-k ids that ours also returns, per query.
double overlap(const std::vector<idx_t>& ours, const std::vector<idx_t>& ref) {
    idx_t hit = 0;
    for (idx_t q = 0; q < kQueries; q++) {
        const idx_t* a = ours.data() + q * kTopK;
        const idx_t* b = ref.data() + q * kTopK;
        for (idx_t j = 0; j < kTopK; j++) hit += std::find(a, a + kTopK, b[j]) != a + kTopK;
    }
    return double(hit) / double(kQueries * kTopK);
}

class AddMatchesFaiss : public ::testing::TestWithParam<Case> {};

TEST_P(AddMatchesFaiss, SameListsCodesAndResults) {
    const Case& c = GetParam();
    const Fixture f = make_data(c);
    SCOPED_TRACE("seed " + std::to_string(f.seed) + " (FLASHKMEANS_TEST_SEED replays it)");
    auto [ours, ref] = trained_pair(c, f);
    const idx_t* ids = c.ids ? f.ids.data() : nullptr;

    // Ours in two calls (the second appends), Faiss's in one.
    flashkmeans::AddOptions opt;
    opt.batch_size = c.batch;
    const idx_t half = 1001;
    flashkmeans::add(ours.get(), half, f.base.data(), ids, opt);
    EXPECT_EQ(ours->ntotal, half);
    flashkmeans::add(ours.get(), kAdd - half, f.base.data() + half * c.d, ids ? ids + half : nullptr,
                     opt);
    faiss_add(*ref, kAdd, f.base.data(), ids);
    ASSERT_EQ(ours->ntotal, kAdd);
    ASSERT_EQ(ref->ntotal, kAdd);

    if (auto* idmap = dynamic_cast<faiss::IndexIDMap*>(ours.get()))
        EXPECT_EQ(idmap->id_map, dynamic_cast<faiss::IndexIDMap*>(ref.get())->id_map);
    const faiss::IndexIVF* ivf_ours = find_ivf(ours.get());
    const faiss::IndexIVF* ivf_ref = find_ivf(ref.get());
    if (ivf_ref) {
        ASSERT_NE(ivf_ours, nullptr);
        EXPECT_EQ(ivf_ours->ntotal, kAdd);
        const ListComparison lc = compare_lists(*ivf_ours, *ivf_ref);
        EXPECT_TRUE(lc.same_lists) << lc.first_difference;
        // Exact distance ties may round either way (BLAS vs fvec routines).
        EXPECT_LE(lc.differing_codes, kAdd / 1000) << "vectors whose code differs";
    }

    // Exhaustive search (nprobe = nlist): results agree.
    if (faiss::IndexIVF* ivf = find_ivf(ours.get())) ivf->nprobe = ivf->nlist;
    if (faiss::IndexIVF* ivf = find_ivf(ref.get())) ivf->nprobe = ivf->nlist;
    std::vector<float> d0(kQueries * kTopK), d1(kQueries * kTopK);
    std::vector<idx_t> l0(kQueries * kTopK), l1(kQueries * kTopK);
    ours->search(kQueries, f.queries.data(), kTopK, d0.data(), l0.data());
    ref->search(kQueries, f.queries.data(), kTopK, d1.data(), l1.data());
    EXPECT_GE(overlap(l0, l1), 0.99);
    if (c.ids)
        for (idx_t id : l0) EXPECT_TRUE(id == -1 || std::count(f.ids.begin(), f.ids.end(), id)) << id;
}

const Case kCases[] = {
        {"IVFPQ_residual", "IVF37,PQ8np", 24},
        {"IVFPQ_no_residual", "IVF37,PQ8np", 24, faiss::METRIC_L2, false},
        {"IVFPQ_ids", "IVF37,PQ5np", 20, faiss::METRIC_L2, true, false, true},
        {"IVFPQ_nbits6", "IVF37,PQ6x6np", 24},            // codes straddle bytes
        {"IVFPQ_nbits5_no_residual", "IVF37,PQ5x5np", 20, faiss::METRIC_L2, false},
        {"IVFPQ_IP", "IVF37,PQ8np", 24, faiss::METRIC_INNER_PRODUCT},
        {"IVFPQ_flash_quantizer", "IVF37,PQ8np", 24, faiss::METRIC_L2, true, true, true, 0},
        {"IVFPQ_HNSW_quantizer", "IVF37_HNSW8,PQ8np", 24},  // Faiss assigns, engine encodes
        {"IVFPQ_nlist1", "IVF1,PQ8np", 24},                  // coarse code of 0 bytes
        {"IVFPQ_nlist300", "IVF300,PQ4np", 20},              // 2-byte coarse code
        {"IVFFlat", "IVF37,Flat", 20},
        {"IVFFlat_ids_IP", "IVF37,Flat", 20, faiss::METRIC_INNER_PRODUCT, true, false, true},
        {"IVFSQ8", "IVF37,SQ8", 20},
        {"OPQ_IVFPQ", "OPQ8,IVF37,PQ8np", 24},
        {"OPQ_IVFPQ_ids", "OPQ5,IVF37,PQ5np", 20, faiss::METRIC_L2, true, false, true, 0},
        {"PCA_IVFFlat", "PCA12,IVF37,Flat", 20},
        {"IDMap_IVFPQ", "IDMap,IVF37,PQ8np", 24, faiss::METRIC_L2, true, false, true},
        {"IDMap2_IVFFlat", "IDMap2,IVF37,Flat", 20, faiss::METRIC_L2, true, false, true},
        {"IVFPQ_refine", "IVF37,PQ8np,RFlat", 24},
        {"PQ_fallback", "PQ4np", 20},
        {"Flat_fallback", "Flat", 20},
};

INSTANTIATE_TEST_SUITE_P(Indexes, AddMatchesFaiss, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

TEST(Add, IDMap2ReverseMap) {
    const Case c{"IDMap2", "IDMap2,Flat", 20};
    const Fixture f = make_data(c);
    SCOPED_TRACE("seed " + std::to_string(f.seed));
    auto [ours, ref] = trained_pair(c, f);
    flashkmeans::add(ours.get(), kAdd, f.base.data(), f.ids.data());
    auto* m = dynamic_cast<faiss::IndexIDMap2*>(ours.get());
    ASSERT_NE(m, nullptr);
    EXPECT_NO_THROW(m->check_consistency());
    std::vector<float> v(c.d);
    m->reconstruct(f.ids[17], v.data());
    EXPECT_EQ(0, std::memcmp(v.data(), f.base.data() + 17 * c.d, c.d * sizeof(float)));
}

TEST(Add, DirectMapFollows) {
    const Case c{"direct_map", "IVF37,PQ8np", 24};
    const Fixture f = make_data(c);
    SCOPED_TRACE("seed " + std::to_string(f.seed));
    auto [ours, ref] = trained_pair(c, f);
    auto* a = dynamic_cast<faiss::IndexIVF*>(ours.get());
    auto* b = dynamic_cast<faiss::IndexIVF*>(ref.get());
    a->make_direct_map(true);
    b->make_direct_map(true);
    flashkmeans::add(ours.get(), kAdd, f.base.data());
    b->add(kAdd, f.base.data());
    std::vector<float> r0(c.d), r1(c.d);
    int same = 0;
    for (idx_t i = 0; i < kAdd; i += 97) {
        a->reconstruct(i, r0.data());
        b->reconstruct(i, r1.data());
        same += r0 == r1;
    }
    EXPECT_GE(same, int((kAdd + 96) / 97) - 1);
    // Faiss refuses ids with an array direct map; so does add, before adding.
    try {
        flashkmeans::add(ours.get(), 10, f.base.data(), f.ids.data());
        ADD_FAILURE() << "no exception";
    } catch (const faiss::FaissException& e) {
        EXPECT_NE(std::string(e.what()).find("cannot have array direct map and add with ids"),
                  std::string::npos)
                << e.what();
    }
    EXPECT_EQ(ours->ntotal, kAdd);
}

/// The message of the FaissException f throws ("" if none).
template <class F>
std::string faiss_error(F&& f) {
    try {
        f();
    } catch (const faiss::FaissException& e) {
        return e.what();
    }
    return "";
}

TEST(Add, Errors) {
    const int d = 24;
    std::vector<float> x(100 * d, 0.5f);
    for (const char* desc : {"IVF37,PQ8np", "IVF37,Flat", "OPQ8,IVF37,PQ8np"}) {
        SCOPED_TRACE(desc);
        std::unique_ptr<faiss::Index> untrained(flashkmeans::index_factory(d, desc));
        std::unique_ptr<faiss::Index> stock(faiss::index_factory(d, desc));
        // Not trained: Faiss's own message, and nothing added.
        const std::string ours = faiss_error([&] { flashkmeans::add(untrained.get(), 100, x.data()); });
        const std::string theirs = faiss_error([&] { stock->add(100, x.data()); });
        EXPECT_NE(ours.find("'is_trained' failed"), std::string::npos) << ours;
        EXPECT_NE(theirs.find("'is_trained' failed"), std::string::npos) << theirs;
        EXPECT_EQ(untrained->ntotal, 0);
    }
    std::unique_ptr<faiss::Index> index(faiss::index_factory(d, "IVF4,Flat"));
    std::vector<float> train(400 * d);
    for (size_t i = 0; i < train.size(); i++) train[i] = float((i * 7919) % 101) / 101.f;
    index->train(400, train.data());
    EXPECT_NE(faiss_error([&] { flashkmeans::add(index.get(), 5, nullptr); }).find("x is null"),
              std::string::npos);
    EXPECT_NE(faiss_error([&] { flashkmeans::add(index.get(), -1, x.data()); }).find("n = -1"),
              std::string::npos);
    EXPECT_NE(faiss_error([&] { flashkmeans::add(nullptr, 5, x.data()); }).find("index is null"),
              std::string::npos);
    EXPECT_NO_THROW(flashkmeans::add(index.get(), 0, nullptr));
    EXPECT_EQ(index->ntotal, 0);

    // IndexIDMap takes ids only, as Faiss's add says.
    std::unique_ptr<faiss::Index> idmap(faiss::index_factory(d, "IDMap,Flat"));
    EXPECT_NE(faiss_error([&] { flashkmeans::add(idmap.get(), 5, x.data()); })
                      .find("add does not make sense with IndexIDMap"),
              std::string::npos);
}

}  // namespace
