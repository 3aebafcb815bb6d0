// Fits whose host data do not fit the device memory budget: the first rows
// stay resident, the rest stream through the device each iteration. With the
// same centroids a streamed step must give the resident step's labels,
// counts, weights and centroids bit for bit (the update sums in an order that
// does not depend on the chunks) and its objective up to the order of float64
// partials; whole fits must give the same centroids bit for bit and the same
// objectives (rel 1e-12) for f32/f16 input, one and two problems, weights and
// subsampling. A budget below the fixed buffers is an
// OutOfMemoryError naming the bytes needed and available; injected
// allocation failures lead to a smaller plan. Built only inside the full
// project (fit() needs the Lloyd driver).
#include "gpu_test_util.hpp"

#include <flashkmeans/error.hpp>
#include <flashkmeans/kmeans.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <string>
#include <thread>

#include <unistd.h>

#include "src/cuda/streaming.hpp"

using namespace fktest;
namespace fkd = flashkmeans::detail;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

fkd::StreamingPlanInfo info_of(const fkd::Backend& be) {
    auto* s = dynamic_cast<const fkd::StreamingInfo*>(&be);
    if (!s) ADD_FAILURE() << "the CUDA backend does not expose StreamingInfo";
    return s ? s->streaming_info() : fkd::StreamingPlanInfo{};
}

/// A budget that keeps roughly `resident_share` of the stored rows resident:
/// the fixed buffers plus that share of the rows.
size_t budget_for(int64_t B, int64_t n, int64_t d, int64_t k, fk::DType store, bool weighted,
                  double resident_share) {
    const int64_t es = fk::dtype_size(store), ld = (d * es + 15) / 16 * 16 / es;
    fkd::StreamShape s;
    s.batch = B;
    s.n = n;
    s.d = d;
    s.k = k;
    s.row_bytes = ld * es;
    s.weighted = weighted;
    s.centroid_bytes = size_t(B * k) * size_t(d * 8 + ld * es + 12);
    const size_t fixed = fkd::streaming_bytes(s, 0, std::min<int64_t>(n, 256));
    return fixed + size_t(resident_share * double(B * n * (s.row_bytes + 4)));
}

fk::ArrayView weights_view(const std::vector<float>& w, int64_t B, int64_t N) {
    if (B > 1) return view2(w.data(), B, N, fk::DType::f32);
    fk::ArrayView v = view2(w.data(), 1, N, fk::DType::f32);
    v.ndim = 1;
    v.shape[0] = N;
    v.strides[0] = 1;
    return v;
}

struct Input {
    int64_t B, N, d;
    fk::DType dtype;
    std::vector<float> x32;       // values as f32 (already rounded for f16)
    std::vector<uint16_t> x16;    // the f16 input
    std::vector<float> w;
    fk::ArrayView view() const {
        const void* p = dtype == fk::DType::f32 ? static_cast<const void*>(x32.data())
                                                : static_cast<const void*>(x16.data());
        return B > 1 ? view3(p, B, N, d, dtype) : view2(p, N, d, dtype);
    }
};

Input make_input(int64_t B, int64_t N, int64_t d, fk::DType t, uint64_t seed) {
    Input in{B, N, d, t, {}, {}, {}};
    // Tight blobs around 256 centres, far apart: k-means (k < 256) groups
    // whole blobs, a well-separated problem.
    std::mt19937_64 g(seed);
    std::normal_distribution<float> nd(0.f, 1.f);
    const int64_t nc = 256;
    std::vector<float> centres(size_t(nc * d));
    for (auto& c : centres) c = 6.f * nd(g);
    in.x32.resize(size_t(B * N * d));
    for (int64_t r = 0; r < B * N; ++r) {
        const int64_t c = int64_t(g() % uint64_t(nc));
        for (int64_t j = 0; j < d; ++j)
            in.x32[size_t(r * d + j)] = centres[size_t(c * d + j)] + 0.15f * nd(g);
    }
    if (t != fk::DType::f32) {
        in.x32 = round_to(in.x32, t);
        in.x16 = to_16bit(in.x32, t);
    }
    in.w.resize(size_t(B * N));
    for (auto& v : in.w) v = 0.25f + std::abs(nd(g));
    return in;
}

// ---- One step through the backend: streamed equals resident exactly ----

struct Step {
    std::vector<double> obj;
    std::vector<int64_t> labels, cnt;
    std::vector<float> w, cent, seeds;
};

Step step(fkd::Backend& be, int64_t B, int64_t n, int64_t k, int64_t d,
          const std::vector<int>& ids) {
    Step s;
    s.seeds.assign(size_t(B * k * d), kNaN);
    for (int64_t b = 0; b < B; ++b)
        be.gather_rows(b, ids.data(), k, &s.seeds[size_t(b * k * d)]);
    be.set_centroids(s.seeds.data());
    s.obj.assign(size_t(B), double(kNaN));
    be.assign();
    s.labels.assign(size_t(B * n), -7);
    be.get_labels(s.labels.data());
    s.w.assign(size_t(B * k), kNaN);
    s.cnt.assign(size_t(B * k), -7);
    be.update(0, s.w.data(), s.cnt.data());
    be.objective(s.obj.data());  // the driver's order: after the update
    s.cent.assign(size_t(B * k * d), kNaN);
    be.get_centroids(s.cent.data());
    return s;
}

struct StepCase {
    int64_t B;
    fk::DType dtype;
    fk::Precision precision;
    bool weighted, subsample;
    fk::Metric metric;
};

void check_step(const StepCase& c) {
    const int64_t N = 6000, d = 36, k = 70;
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed) + " B " + std::to_string(c.B) + " dtype " +
                 std::to_string(int(c.dtype)) + " weighted " + std::to_string(c.weighted) +
                 " subsample " + std::to_string(c.subsample));
    const Input in = make_input(c.B, N, d, c.dtype, seed);
    std::vector<int> rows;
    if (c.subsample) {
        rows.resize(4000);
        std::mt19937_64 g(seed + 5);
        for (auto& r : rows) r = int(g() % uint64_t(N));
    }
    const int64_t n = rows.empty() ? N : int64_t(rows.size());
    std::vector<int> ids(static_cast<size_t>(k));
    for (int64_t j = 0; j < k; ++j) ids[size_t(j)] = int((j * 7919) % n);
    const fk::ArrayView wv = c.weighted ? weights_view(in.w, c.B, N) : fk::ArrayView{};

    auto ref = fkd::make_cuda_backend(0, 0);
    ref->load(in.view(), wv, rows, {c.B, n, d, k}, c.metric, c.precision);
    ASSERT_FALSE(info_of(*ref).streaming);
    const Step r = step(*ref, c.B, n, k, d, ids);

    const fkd::ComputePlan plan = fkd::plan_compute(c.dtype, c.precision);
    const size_t budget = budget_for(c.B, n, d, k, plan.store, c.weighted, 0.3);
    auto be = fkd::make_cuda_backend(0, budget);
    be->load(in.view(), wv, rows, {c.B, n, d, k}, c.metric, c.precision);
    const fkd::StreamingPlanInfo info = info_of(*be);
    ASSERT_TRUE(info.streaming);
    EXPECT_GT(info.resident_rows, 0);
    EXPECT_LT(info.resident_rows, n / 2) << "most rows should stream";
    EXPECT_GE(info.chunks, 3);
    EXPECT_LE(info.device_bytes, budget);
    const Step s = step(*be, c.B, n, k, d, ids);

    ASSERT_EQ(0, std::memcmp(s.seeds.data(), r.seeds.data(), s.seeds.size() * 4))
        << "seeding rows differ";
    for (int64_t b = 0; b < c.B; ++b)
        EXPECT_NEAR(s.obj[size_t(b)], r.obj[size_t(b)], 1e-10 * std::abs(r.obj[size_t(b)]) + 1e-6);
    ASSERT_EQ(s.labels, r.labels);
    ASSERT_EQ(s.cnt, r.cnt);
    ASSERT_EQ(0, std::memcmp(s.w.data(), r.w.data(), r.w.size() * 4)) << "weights differ";
    for (size_t e = 0; e < r.cent.size(); ++e)
        ASSERT_EQ(0, std::memcmp(&s.cent[e], &r.cent[e], 4))
            << "centroid element " << e << ": " << s.cent[e] << " vs " << r.cent[e];
    // Copies: the first pass brought every non-resident row (the cached
    // chunks for good), a second pass only the streamed chunks, with the
    // same labels.
    EXPECT_GT(info.cached_chunks, 0) << "budget shares this size keep chunks cached";
    const int64_t rb = fkd::round_up(d, fkd::elems_per_16b(plan.store)) * fk::dtype_size(plan.store);
    const int64_t r_rows = info.resident_rows;
    const int64_t streamed = n - r_rows - fkd::cached_rows(n, r_rows, info.chunk_rows);
    EXPECT_EQ(info_of(*be).last_pass_bytes, double(c.B * (n - r_rows) * rb));
    EXPECT_GT(info_of(*be).last_pass_copy_ms, 0);
    be->set_centroids(s.seeds.data());
    ref->set_centroids(r.seeds.data());
    std::vector<double> o1(size_t(c.B)), o2(size_t(c.B));
    be->assign();
    ref->assign();
    be->objective(o1.data());  // no update() in between: objective() waits itself
    ref->objective(o2.data());
    std::vector<int64_t> l1(size_t(c.B * n)), l2(size_t(c.B * n));
    be->get_labels(l1.data());
    ref->get_labels(l2.data());
    ASSERT_EQ(l1, r.labels) << "second pass (cached chunks from the device)";
    ASSERT_EQ(l2, r.labels);
    for (int64_t b = 0; b < c.B; ++b)
        EXPECT_NEAR(o1[size_t(b)], o2[size_t(b)], 1e-10 * std::abs(o2[size_t(b)]) + 1e-6);
    const auto again = info_of(*be);
    EXPECT_EQ(again.last_pass_bytes, double(c.B * streamed * rb));
    if (streamed > 0) EXPECT_GT(again.last_pass_copy_ms, 0);
}

TEST(Streaming, StepEqualsResidentF32) {
    FK_REQUIRE_GPU();
    check_step({1, fk::DType::f32, fk::Precision::exact, false, false, fk::Metric::L2});
    check_step({2, fk::DType::f32, fk::Precision::exact, true, true, fk::Metric::L2});
    check_step({1, fk::DType::f32, fk::Precision::tf32, true, false, fk::Metric::inner_product});
}

TEST(Streaming, StepEqualsResidentF16) {
    FK_REQUIRE_GPU();
    check_step({1, fk::DType::f16, fk::Precision::exact, true, true, fk::Metric::L2});
    check_step({2, fk::DType::f16, fk::Precision::automatic, false, false, fk::Metric::L2});
    check_step({2, fk::DType::f16, fk::Precision::exact, false, true, fk::Metric::L2});
}

TEST(Streaming, PinnedSourceIsCopiedDirectly) {
    FK_REQUIRE_GPU();
    const int64_t B = 2, N = 5000, d = 32, k = 50;
    const Input in = make_input(B, N, d, fk::DType::f32, fresh_seed());
    float* pinned = nullptr;
    FK_CU(cudaMallocHost(&pinned, in.x32.size() * 4));
    std::memcpy(pinned, in.x32.data(), in.x32.size() * 4);
    std::vector<int> ids(static_cast<size_t>(k));
    for (int64_t j = 0; j < k; ++j) ids[size_t(j)] = int(j * 97);
    auto ref = fkd::make_cuda_backend(0, 0);
    ref->load(in.view(), {}, {}, {B, N, d, k}, fk::Metric::L2, fk::Precision::exact);
    const Step r = step(*ref, B, N, k, d, ids);
    auto be = fkd::make_cuda_backend(0, budget_for(B, N, d, k, fk::DType::f32, false, 0.25));
    be->load(view3(pinned, B, N, d, fk::DType::f32, fk::MemoryKind::pinned), {}, {},
             {B, N, d, k}, fk::Metric::L2, fk::Precision::exact);
    const auto info = info_of(*be);
    EXPECT_TRUE(info.streaming);
    EXPECT_TRUE(info.pinned_source);
    const Step s = step(*be, B, N, k, d, ids);
    EXPECT_EQ(s.labels, r.labels);
    EXPECT_EQ(s.cnt, r.cnt);
    for (int64_t b = 0; b < B; ++b)
        EXPECT_NEAR(s.obj[size_t(b)], r.obj[size_t(b)], 1e-12 * r.obj[size_t(b)]);
    be.reset();
    FK_CU(cudaFreeHost(pinned));
}

TEST(Streaming, BudgetBelowFixedBuffersIsOutOfMemory) {
    FK_REQUIRE_GPU();
    const int64_t N = 20000, d = 64, k = 1000;
    const auto x = randn(size_t(N * d), fresh_seed());
    auto be = fkd::make_cuda_backend(0, 1 << 18);  // 256 KiB: below k d 16 alone
    try {
        be->load(view2(x.data(), N, d, fk::DType::f32), {}, {}, {1, N, d, k}, fk::Metric::L2,
                 fk::Precision::exact);
        FAIL() << "expected OutOfMemoryError";
    } catch (const fk::OutOfMemoryError& e) {
        const std::string m = e.what();
        EXPECT_NE(m.find("needs at least"), std::string::npos) << m;
        EXPECT_NE(m.find("262144 available"), std::string::npos) << m;
    }
    // Through fit(): the same error, not a crash.
    fk::KMeansParams p;
    p.device = fk::DeviceChoice::cuda;
    p.device_memory_budget = 1 << 18;
    p.niter = 2;
    EXPECT_THROW(fk::fit(view2(x.data(), N, d, fk::DType::f32), k, p), fk::OutOfMemoryError);
}

TEST(Streaming, AllocationFailureGivesSmallerPlan) {
    FK_REQUIRE_GPU();
    const int64_t N = 8000, d = 48, k = 60;
    const Input in = make_input(1, N, d, fk::DType::f32, fresh_seed());
    const size_t budget = budget_for(1, N, d, k, fk::DType::f32, false, 0.5);
    auto first = fkd::make_cuda_backend(0, budget);
    first->load(in.view(), {}, {}, {1, N, d, k}, fk::Metric::L2, fk::Precision::exact);
    const auto p1 = info_of(*first);
    ASSERT_TRUE(p1.streaming);

    fkd::testing::fail_next_streaming_allocations(2);
    auto be = fkd::make_cuda_backend(0, budget);
    be->load(in.view(), {}, {}, {1, N, d, k}, fk::Metric::L2, fk::Precision::exact);
    fkd::testing::fail_next_streaming_allocations(0);
    const auto p2 = info_of(*be);
    ASSERT_TRUE(p2.streaming);
    EXPECT_LT(p2.available_bytes, p1.available_bytes);
    EXPECT_LT(p2.resident_rows, p1.resident_rows);
    std::vector<int> ids(static_cast<size_t>(k));
    for (int64_t j = 0; j < k; ++j) ids[size_t(j)] = int(j * 131);
    const Step a = step(*first, 1, N, k, d, ids), b = step(*be, 1, N, k, d, ids);
    EXPECT_EQ(a.labels, b.labels);
    EXPECT_EQ(a.cnt, b.cnt);
}

bool page_locked(const void* p) {
    cudaPointerAttributes a{};
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        (void)cudaGetLastError();
        return false;
    }
    return a.type == cudaMemoryTypeHost;
}

TEST(Streaming, RegistrationLastsAsLongAsTheFit) {
    FK_REQUIRE_GPU();
    ScopedEnv reg("FLASHKMEANS_STREAM_REGISTER", "1");  // small array: force it
    const int64_t B = 2, N = 5000, d = 32, k = 50;
    const Input in = make_input(B, N, d, fk::DType::f32, fresh_seed());
    std::vector<int> ids(static_cast<size_t>(k));
    for (int64_t j = 0; j < k; ++j) ids[size_t(j)] = int(j * 97);
    auto ref = fkd::make_cuda_backend(0, 0);
    ref->load(in.view(), {}, {}, {B, N, d, k}, fk::Metric::L2, fk::Precision::exact);
    const Step r = step(*ref, B, N, k, d, ids);
    const size_t budget = budget_for(B, N, d, k, fk::DType::f32, false, 0.25);
    const char* mid = reinterpret_cast<const char*>(in.x32.data() + in.x32.size() * 3 / 4);

    auto be = fkd::make_cuda_backend(0, budget);
    be->load(in.view(), {}, {}, {B, N, d, k}, fk::Metric::L2, fk::Precision::exact);
    const auto info = info_of(*be);
    ASSERT_TRUE(info.streaming);
    EXPECT_TRUE(info.registered_source);
    EXPECT_TRUE(info.pinned_source);
    EXPECT_TRUE(page_locked(mid));
    const Step s = step(*be, B, N, k, d, ids);
    EXPECT_EQ(s.labels, r.labels);
    EXPECT_EQ(s.cnt, r.cnt);
    for (int64_t b = 0; b < B; ++b)
        EXPECT_NEAR(s.obj[size_t(b)], r.obj[size_t(b)], 1e-12 * r.obj[size_t(b)]);

    {   // A second fit of the same array meanwhile must not copy on the strength
        // of the first one's registration (which ends first): it packs.
        auto be2 = fkd::make_cuda_backend(0, budget);
        be2->load(in.view(), {}, {}, {B, N, d, k}, fk::Metric::L2, fk::Precision::exact);
        const auto info2 = info_of(*be2);
        EXPECT_FALSE(info2.registered_source);
        EXPECT_FALSE(info2.pinned_source);
        be.reset();  // the first fit ends before the second
        EXPECT_FALSE(page_locked(mid));
        const Step s2 = step(*be2, B, N, k, d, ids);
        EXPECT_EQ(s2.labels, r.labels);
        EXPECT_EQ(s2.cnt, r.cnt);
    }
    // After a fit (also through fit()), nothing of the array stays page-locked:
    // the user may register (or free) it.
    fk::KMeansParams p;
    p.device = fk::DeviceChoice::cuda;
    p.device_memory_budget = budget_for(B, N, d, 40, fk::DType::f32, false, 0.25);
    p.niter = 3;
    p.precision = fk::Precision::exact;
    (void)fk::fit_batched(in.view(), 40, p);
    EXPECT_FALSE(page_locked(mid));
    const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
    void* base = reinterpret_cast<void*>((uintptr_t(in.x32.data()) + page - 1) / page * page);
    ASSERT_EQ(cudaHostRegister(base, page * 4, cudaHostRegisterDefault), cudaSuccess);
    EXPECT_TRUE(page_locked(base));
    ASSERT_EQ(cudaHostUnregister(base), cudaSuccess);
}

TEST(Streaming, ConcurrentPackedFits) {
    FK_REQUIRE_GPU();
    ScopedEnv reg("FLASHKMEANS_STREAM_REGISTER", "0");  // every chunk packed by the pool
    const int64_t N = 6000, d = 36, k = 70;
    std::vector<Input> ins;
    std::vector<Step> refs;
    std::vector<int> ids(static_cast<size_t>(k));
    for (int64_t j = 0; j < k; ++j) ids[size_t(j)] = int((j * 7919) % N);
    for (int t = 0; t < 3; ++t) {
        ins.push_back(make_input(1, N, d, fk::DType::f32, fresh_seed() + uint64_t(t)));
        auto ref = fkd::make_cuda_backend(0, 0);
        ref->load(ins.back().view(), {}, {}, {1, N, d, k}, fk::Metric::L2, fk::Precision::exact);
        refs.push_back(step(*ref, 1, N, k, d, ids));
    }
    const size_t budget = budget_for(1, N, d, k, fk::DType::f32, false, 0.3);
    std::vector<Step> got(3);
    std::vector<std::thread> th;
    for (int t = 0; t < 3; ++t)
        th.emplace_back([&, t] {
            auto be = fkd::make_cuda_backend(0, budget);
            be->load(ins[size_t(t)].view(), {}, {}, {1, N, d, k}, fk::Metric::L2,
                     fk::Precision::exact);
            for (int rep = 0; rep < 3; ++rep) got[size_t(t)] = step(*be, 1, N, k, d, ids);
        });
    for (auto& x : th) x.join();
    for (int t = 0; t < 3; ++t) {
        EXPECT_EQ(got[size_t(t)].labels, refs[size_t(t)].labels) << "fit " << t;
        EXPECT_EQ(got[size_t(t)].cnt, refs[size_t(t)].cnt) << "fit " << t;
    }
}

// ---- Whole fits: streamed vs resident, same seed ----

struct FitCase {
    int64_t B;
    fk::DType dtype;
    bool weighted, subsample;
};

void check_fit(const FitCase& c, int niter) {
    const int64_t N = 24000, d = 40, k = 64;
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed) + " B " + std::to_string(c.B) + " dtype " +
                 std::to_string(int(c.dtype)) + " weighted " + std::to_string(c.weighted) +
                 " subsample " + std::to_string(c.subsample));
    const Input in = make_input(c.B, N, d, c.dtype, seed);
    fk::KMeansParams p;
    p.niter = niter;
    p.seed = int64_t(seed % 100000);
    p.precision = fk::Precision::exact;
    p.device = fk::DeviceChoice::cuda;
    p.max_points_per_centroid = c.subsample ? 256 : 0;  // 16384 of 24000
    const int64_t n = c.subsample ? k * 256 : N;
    const fk::ArrayView wv = c.weighted ? weights_view(in.w, c.B, N) : fk::ArrayView{};
    auto run = [&](size_t budget) {
        fk::KMeansParams q = p;
        q.device_memory_budget = budget;
        return c.B > 1 ? fk::fit_batched(in.view(), k, q, wv) : fk::fit(in.view(), k, q, wv);
    };
    const size_t budget = budget_for(c.B, n, d, k, fk::DType::f32, c.weighted, 0.3);
    {   // The same shapes through the backend: this budget streams most rows.
        auto be = fkd::make_cuda_backend(0, budget);
        std::vector<int> rows;
        if (c.subsample) {
            rows.resize(size_t(n));
            std::iota(rows.begin(), rows.end(), 0);
        }
        be->load(in.view(), wv, rows, {c.B, n, d, k}, fk::Metric::L2, p.precision);
        const auto info = info_of(*be);
        ASSERT_TRUE(info.streaming);
        ASSERT_GT(info.resident_rows, 0);
        ASSERT_GE(info.chunks, 3);
        ASSERT_LT(info.resident_rows, n / 2);
    }
    const fk::KMeansResult r = run(0), s = run(budget);
    ASSERT_EQ(s.iteration_stats.size(), r.iteration_stats.size());
    for (size_t b = 0; b < r.iteration_stats.size(); ++b) {
        ASSERT_EQ(s.iteration_stats[b].size(), r.iteration_stats[b].size());
        for (size_t it = 0; it < r.iteration_stats[b].size(); ++it) {
            const double os = s.iteration_stats[b][it].obj, orf = r.iteration_stats[b][it].obj;
            // The same labels every iteration: only the order in which the
            // float64 partials of the objective are added differs.
            EXPECT_LE(std::abs(os - orf), 1e-12 * std::abs(orf))
                << "problem " << b << " iteration " << it << ": streamed " << os << " resident "
                << orf;
        }
    }
    ASSERT_EQ(s.centroids.size(), r.centroids.size());
    for (size_t e = 0; e < r.centroids.size(); ++e)
        ASSERT_EQ(0, std::memcmp(&s.centroids[e], &r.centroids[e], 4))
            << "centroid element " << e << ": streamed " << s.centroids[e] << " resident "
            << r.centroids[e];
}

TEST(Streaming, FitMatchesResidentF32) {
    FK_REQUIRE_GPU();
    for (int niter : {2, 10}) {
        check_fit({1, fk::DType::f32, false, false}, niter);
        check_fit({1, fk::DType::f32, true, true}, niter);
        check_fit({2, fk::DType::f32, true, false}, niter);
        check_fit({2, fk::DType::f32, false, true}, niter);
    }
}

TEST(Streaming, FitMatchesResidentF16) {
    FK_REQUIRE_GPU();
    for (int niter : {2, 10}) {
        check_fit({1, fk::DType::f16, true, false}, niter);
        check_fit({1, fk::DType::f16, false, true}, niter);
        check_fit({2, fk::DType::f16, false, false}, niter);
        check_fit({2, fk::DType::f16, true, true}, niter);
    }
}
// ---- Timing (not run by default): --gtest_also_run_disabled_tests ----
// FK_STREAM_N (default 2^24) x 128 f32 host points, K = 4096: ms per
// iteration resident vs with half the rows streamed, and the host->device
// throughput of the streamed phase against a pinned cudaMemcpy.

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

struct Timed {
    double ms_iter;
    fkd::StreamingPlanInfo info;
    double obj, obj0;  // last and first iteration's objective
};

Timed time_fit(const fk::ArrayView& xv, int64_t N, int64_t d, int64_t k, size_t budget,
               fk::Precision prec, int iters) {
    const double t0 = now_s();
    auto be = fkd::make_cuda_backend(0, budget);
    be->load(xv, {}, {}, {1, N, d, k}, fk::Metric::L2, prec);
    const double t_load = now_s() - t0;
    std::vector<int> ids(static_cast<size_t>(k));
    for (int64_t j = 0; j < k; ++j) ids[size_t(j)] = int(j * (N / k));
    std::vector<float> c(static_cast<size_t>(k * d)), w(static_cast<size_t>(k));
    std::vector<int64_t> cnt(static_cast<size_t>(k));
    be->gather_rows(0, ids.data(), k, c.data());
    be->set_centroids(c.data());
    std::vector<double> times, objs;
    double obj = 0;
    for (int it = 0; it < iters; ++it) {
        const double t = now_s();
        be->assign();
        be->update(0, w.data(), cnt.data());
        be->objective(&obj);
        times.push_back((now_s() - t) * 1e3);
        objs.push_back(obj);
    }
    std::printf("    load %.2f s (plan: streaming %d, resident %lld rows, %lld chunks of %lld, "
                "registered %d), iterations ms:",
                t_load, int(info_of(*be).streaming), (long long)info_of(*be).resident_rows,
                (long long)info_of(*be).chunks, (long long)info_of(*be).chunk_rows,
                int(info_of(*be).registered_source));
    for (double t : times) std::printf(" %.1f", t);
    std::printf("; objectives:");
    for (double o : objs) std::printf(" %.9e", o);
    std::printf("\n");
    std::sort(times.begin() + 1, times.end());
    Timed r{times[size_t(1 + (iters - 1) / 2)], info_of(*be), obj, objs[0]};
    return r;
}

TEST(Streaming, DISABLED_Timing) {
    FK_REQUIRE_GPU();
    const int64_t N = std::getenv("FK_STREAM_N") ? std::atoll(std::getenv("FK_STREAM_N"))
                                                  : int64_t(1) << 24;
    const int64_t d = 128, k = 4096;
    const int iters = 4;
    std::vector<float> x(size_t(N * d));
    {   // splitmix-based uniform noise around 64 random centres, in parallel
        const int nt = std::max(1u, std::thread::hardware_concurrency());
        std::vector<std::thread> pool;
        for (int t = 0; t < nt; ++t)
            pool.emplace_back([&, t] {
                uint64_t z = 0x9E3779B97F4A7C15ull * uint64_t(t + 1);
                auto next = [&z] {
                    uint64_t r = (z += 0x9E3779B97F4A7C15ull);
                    r = (r ^ (r >> 30)) * 0xBF58476D1CE4E5B9ull;
                    r = (r ^ (r >> 27)) * 0x94D049BB133111EBull;
                    return r ^ (r >> 31);
                };
                for (int64_t i = t; i < N; i += nt) {
                    const uint64_t c = next() % 64;
                    for (int64_t j = 0; j < d; ++j)
                        x[size_t(i * d + j)] = float((c * 131 + j * 17) % 97) * 0.05f +
                                               float(next() >> 40) * 0x1p-24f;
                }
            });
        for (auto& th : pool) th.join();
    }
    // Pinned bandwidth: the best of 3 copies of 1 GiB.
    const size_t gb = size_t(1) << 30;
    void *hp = nullptr, *dp = nullptr;
    FK_CU(cudaMallocHost(&hp, gb));
    FK_CU(cudaMalloc(&dp, gb));
    std::memset(hp, 1, gb);
    cudaEvent_t e0, e1;
    FK_CU(cudaEventCreate(&e0));
    FK_CU(cudaEventCreate(&e1));
    float best = 1e30f;
    for (int r = 0; r < 3; ++r) {
        FK_CU(cudaEventRecord(e0));
        FK_CU(cudaMemcpyAsync(dp, hp, gb, cudaMemcpyHostToDevice));
        FK_CU(cudaEventRecord(e1));
        FK_CU(cudaEventSynchronize(e1));
        float ms = 0;
        FK_CU(cudaEventElapsedTime(&ms, e0, e1));
        best = std::min(best, ms);
    }
    const double pinned_gbs = double(gb) / (best * 1e-3) / 1e9;
    FK_CU(cudaFreeHost(hp));
    FK_CU(cudaFree(dp));
    std::printf("pinned cudaMemcpy H2D: %.1f GB/s\n", pinned_gbs);

    const fk::ArrayView xv = view2(x.data(), N, d, fk::DType::f32);
    for (fk::Precision prec : {fk::Precision::tf32, fk::Precision::fp16}) {
        const fk::DType store = prec == fk::Precision::fp16 ? fk::DType::f16 : fk::DType::f32;
        const char* pname = prec == fk::Precision::fp16 ? "fp16" : "tf32";
        std::printf("N=%lld K=%lld D=%lld f32 host data, precision %s:\n", (long long)N,
                    (long long)k, (long long)d, pname);
        const Timed r = time_fit(xv, N, d, k, 0, prec, iters);
        std::printf("  resident:           %8.1f ms/iter (obj %.6e)\n", r.ms_iter, r.obj);
        const size_t budget = budget_for(1, N, d, k, store, false, 0.5);
        auto report = [&](const char* what, const Timed& t) {
            const double gbs = t.info.last_pass_bytes / (t.info.last_pass_copy_ms * 1e-3) / 1e9;
            std::printf("  %-24s %7.1f ms/iter (%.2fx resident), H2D %.2f GB in %.1f ms of "
                        "copies = %.1f GB/s (%.0f%% of pinned), %lld of %lld chunks cached\n",
                        what, t.ms_iter, t.ms_iter / r.ms_iter, t.info.last_pass_bytes / 1e9,
                        t.info.last_pass_copy_ms, gbs, 100 * gbs / pinned_gbs,
                        (long long)t.info.cached_chunks, (long long)t.info.chunks);
            EXPECT_NEAR(t.obj0, r.obj0, 1e-9 * r.obj0) << what << ": first iteration";
        };
        if (prec == fk::Precision::tf32) {
            report("streamed, staged:", time_fit(xv, N, d, k, budget, prec, iters));
            setenv("FLASHKMEANS_STREAM_REGISTER", "1", 1);
            report("streamed, registered:", time_fit(xv, N, d, k, budget, prec, iters));
            unsetenv("FLASHKMEANS_STREAM_REGISTER");
        } else {
            report("streamed, staged+f16:", time_fit(xv, N, d, k, budget, prec, iters));
        }
    }
}

}  // namespace
