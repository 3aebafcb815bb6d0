// The sort-inverse update's summation order (kernels/update.cuh): sums,
// weights and counts against a float64 reference, and bit for bit the same
// whether the rows come in one call or in chunks of any size (1 row, a
// piece +- 1, chunks where clusters are absent), and from one run to the
// next. Skewed labels: one cluster with a third of the points (many pieces),
// empty clusters, piece sizes 64, 256 and 5. Row layouts: element loads (odd
// d), 8- and 16-byte loads, one and several passes over a row, and small
// codebooks (d = 4, 8) when deterministic (else they take shared-memory
// atomics). Outputs are poisoned before each call.
#include "gpu_test_util.hpp"

#include <string>

#include "kernels/update.cuh"
#include "src/cuda/cuda_check.hpp"

using namespace fktest;
namespace fkd = flashkmeans::detail;
namespace fkk = flashkmeans::kernels;

namespace {

struct Sums {
    std::vector<float> sums, wsum;
    std::vector<int32_t> cnt;
};

/// Host rows [r0, r0 + m) of every problem of a (B, n, d) array, as (B, m, d).
template <class E>
std::vector<E> slice(const std::vector<E>& v, int64_t B, int64_t n, int64_t d, int64_t r0, int64_t m) {
    std::vector<E> out(size_t(B * m * d));
    for (int64_t b = 0; b < B; ++b)
        std::copy_n(&v[size_t((b * n + r0) * d)], m * d, &out[size_t(b * m * d)]);
    return out;
}

template <class E>
fkd::DeviceBuffer upload(const std::vector<E>& v) {
    fkd::DeviceBuffer buf(std::max<size_t>(v.size() * sizeof(E), 16));
    if (!v.empty()) FK_CUDA_CHECK(cudaMemcpy(buf.get(), v.data(), v.size() * sizeof(E), cudaMemcpyHostToDevice));
    return buf;
}

/// cluster_sums over rows [0, n) in the calls given by `chunks` (row counts).
Sums run(const std::vector<int32_t>& labels, const std::vector<float>& x32,
         const std::vector<uint16_t>& x16, fk::DType t, const std::vector<float>& w, int64_t B,
         int64_t n, int64_t k, int64_t d, int piece, const std::vector<int64_t>& chunks) {
    const int64_t cap = *std::max_element(chunks.begin(), chunks.end());
    const fkk::UpdateShape us{int(B), cap, k, d, piece, /*deterministic=*/true};
    fkd::DeviceBuffer scratch(fkk::update_bytes(us));
    // Poison the scratch too: nothing carried may be read before it is written.
    FK_CUDA_CHECK(cudaMemset(scratch.get(), 0xff, fkk::update_bytes(us)));
    fkd::DeviceBuffer sums(size_t(B * k * d) * 4), wsum(size_t(B * k) * 4), cnt(size_t(B * k) * 4);
    FK_CUDA_CHECK(cudaMemset(sums.get(), 0xff, sums.size()));
    FK_CUDA_CHECK(cudaMemset(wsum.get(), 0xff, wsum.size()));
    FK_CUDA_CHECK(cudaMemset(cnt.get(), 0xff, cnt.size()));
    int64_t r0 = 0;
    for (size_t c = 0; c < chunks.size(); ++c) {
        const int64_t m = chunks[c];
        const auto lab = upload(slice(labels, B, n, 1, r0, m));
        const auto wt = upload(slice(w, B, n, 1, r0, m));
        const auto xs = t == fk::DType::f32 ? upload(slice(x32, B, n, d, r0, m))
                                            : upload(slice(x16, B, n, d, r0, m));
        const fkk::RowsRef xr{xs.get(), t, d, m * d};
        fkk::cluster_sums(lab.get<int32_t>(), xr, wt.get<float>(), int(B), m, k, d,
                          {scratch.get(), us}, {c == 0, c + 1 == chunks.size()},
                          sums.get<float>(), wsum.get<float>(), cnt.get<int32_t>(), 0);
        FK_CUDA_CHECK(cudaDeviceSynchronize());  // the chunk's buffers go next
        r0 += m;
    }
    Sums s{std::vector<float>(size_t(B * k * d)), std::vector<float>(size_t(B * k)),
           std::vector<int32_t>(size_t(B * k))};
    FK_CUDA_CHECK(cudaMemcpy(s.sums.data(), sums.get(), sums.size(), cudaMemcpyDeviceToHost));
    FK_CUDA_CHECK(cudaMemcpy(s.wsum.data(), wsum.get(), wsum.size(), cudaMemcpyDeviceToHost));
    FK_CUDA_CHECK(cudaMemcpy(s.cnt.data(), cnt.get(), cnt.size(), cudaMemcpyDeviceToHost));
    return s;
}

void expect_identical(const Sums& a, const Sums& b, const std::string& what) {
    EXPECT_EQ(a.cnt, b.cnt) << what;
    EXPECT_EQ(0, std::memcmp(a.wsum.data(), b.wsum.data(), a.wsum.size() * 4)) << what << ": weights";
    for (size_t e = 0; e < a.sums.size(); ++e)
        if (std::memcmp(&a.sums[e], &b.sums[e], 4) != 0) {
            ADD_FAILURE() << what << ": sums differ at " << e << ": " << a.sums[e] << " vs " << b.sums[e];
            return;
        }
}

}  // namespace

TEST(UpdateOrder, ChunkedEqualsOneCallBitForBit) {
    FK_REQUIRE_GPU();
    const uint64_t seed = fresh_seed();
    SCOPED_TRACE("seed " + std::to_string(seed));
    struct Shape { int64_t d; fk::DType t; };
    const int64_t B = 2, n = 3001, k = 77;
    for (const Shape sh : {Shape{37, fk::DType::f32}, Shape{36, fk::DType::f16}, Shape{130, fk::DType::f32},
                           Shape{64, fk::DType::f32}, Shape{200, fk::DType::bf16}, Shape{1032, fk::DType::f16},
                           Shape{4, fk::DType::f32}, Shape{8, fk::DType::f16}}) {
        const int64_t d = sh.d;
        SCOPED_TRACE("d " + std::to_string(d) + " dtype " + std::to_string(int(sh.t)));
        std::mt19937_64 g(seed + uint64_t(d));
        // A third of the points in cluster 0, none in the last three.
        std::vector<int32_t> labels(size_t(B * n));
        for (auto& l : labels) l = g() % 3 == 0 ? 0 : int32_t(g() % uint64_t(k - 3));
        auto x = randn(size_t(B * n * d), seed + 7 * uint64_t(d));
        std::vector<uint16_t> x16;
        if (sh.t != fk::DType::f32) {
            x = round_to(x, sh.t);
            x16 = to_16bit(x, sh.t);
        }
        std::vector<float> w = randn(size_t(B * n), seed + 1);
        for (auto& v : w) v = 0.25f + std::abs(v);

        // float64 reference.
        std::vector<double> rs(size_t(B * k * d), 0.0), rw(size_t(B * k), 0.0);
        std::vector<int32_t> rc(size_t(B * k), 0);
        for (int64_t b = 0; b < B; ++b)
            for (int64_t i = 0; i < n; ++i) {
                const int64_t cl = b * k + labels[size_t(b * n + i)];
                const double wi = w[size_t(b * n + i)];
                rw[size_t(cl)] += wi;
                ++rc[size_t(cl)];
                for (int64_t t = 0; t < d; ++t) rs[size_t(cl * d + t)] += wi * x[size_t((b * n + i) * d + t)];
            }

        for (int piece : {64, 256, 5}) {
            SCOPED_TRACE("piece " + std::to_string(piece));
            const Sums one = run(labels, x, x16, sh.t, w, B, n, k, d, piece, {n});
            ASSERT_EQ(one.cnt, rc);
            for (size_t j = 0; j < rw.size(); ++j)
                ASSERT_NEAR(one.wsum[j], rw[j], 1e-5 * (1 + rw[j])) << "weight of " << j;
            for (size_t e = 0; e < rs.size(); ++e) {
                const double scale = std::sqrt(double(rc[e / size_t(d)]) + 1.0) * 4.0;
                ASSERT_NEAR(one.sums[e], rs[e], 2e-6 * scale + 1e-5 * std::abs(rs[e])) << "element " << e;
            }
            expect_identical(run(labels, x, x16, sh.t, w, B, n, k, d, piece, {n}), one, "second run");
            // Chunks: one row, a piece -+ 1, a piece, small ones in which
            // most clusters are absent, then the rest.
            const std::vector<int64_t> cuts{1, piece - 1 > 0 ? piece - 1 : 1, piece, piece + 1, 2, 3, 700};
            std::vector<int64_t> chunks;
            int64_t left = n;
            for (int64_t c : cuts) {
                chunks.push_back(std::min(c, left));
                left -= chunks.back();
            }
            while (left > 0) {
                chunks.push_back(std::min<int64_t>(left, 1 + int64_t(g() % 900)));
                left -= chunks.back();
            }
            expect_identical(run(labels, x, x16, sh.t, w, B, n, k, d, piece, chunks), one, "chunked");
        }
    }
}
