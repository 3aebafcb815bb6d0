// Shared pieces of the GPU tests: skipping without a GPU, random inputs,
// float64 references, comparison of two fits.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <flashkmeans/array_view.hpp>
#include <flashkmeans/params.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backend.hpp"

namespace fk = flashkmeans;

#define FK_REQUIRE_GPU()                                                  \
    do {                                                                  \
        int fk_n_ = 0;                                                    \
        if (cudaGetDeviceCount(&fk_n_) != cudaSuccess || fk_n_ == 0) {    \
            (void)cudaGetLastError();                                     \
            GTEST_SKIP() << "no CUDA GPU visible";                        \
        }                                                                 \
    } while (0)

#define FK_CU(call) ASSERT_EQ((call), cudaSuccess) << #call

namespace fktest {

/// Sets an environment variable for a scope.
struct ScopedEnv {
    std::string name, old;
    bool had;
    ScopedEnv(const char* n, const char* v) : name(n) {
        const char* o = std::getenv(n);
        had = o != nullptr;
        if (had) old = o;
        setenv(n, v, 1);
    }
    ~ScopedEnv() {
        if (had)
            setenv(name.c_str(), old.c_str(), 1);
        else
            unsetenv(name.c_str());
    }
};

inline fk::ArrayView view2(const void* p, int64_t n, int64_t d, fk::DType t,
                           fk::MemoryKind m = fk::MemoryKind::host, int64_t ld = -1) {
    fk::ArrayView v;
    v.data = p;
    v.ndim = 2;
    v.shape[0] = n;
    v.shape[1] = d;
    v.strides[0] = ld < 0 ? d : ld;
    v.strides[1] = 1;
    v.dtype = t;
    v.memory = m;
    return v;
}
inline fk::ArrayView view3(const void* p, int64_t b, int64_t n, int64_t d, fk::DType t,
                           fk::MemoryKind m = fk::MemoryKind::host) {
    fk::ArrayView v = view2(p, n, d, t, m);
    v.ndim = 3;
    v.shape[0] = b;
    v.shape[1] = n;
    v.shape[2] = d;
    v.strides[0] = n * d;
    v.strides[1] = d;
    v.strides[2] = 1;
    return v;
}

/// A new seed every run (fresh inputs); tests print it so a failure can be replayed.
inline uint64_t fresh_seed() {
    std::random_device rd;
    return (uint64_t(rd()) << 32) ^ rd();
}

inline std::vector<float> randn(size_t count, uint64_t seed, float scale = 1.f) {
    std::mt19937_64 g(seed);
    std::normal_distribution<float> nd(0.f, scale);
    std::vector<float> v(count);
    for (auto& e : v) e = nd(g);
    return v;
}

/// count = rows * d values: rows drawn around `centers` random centres with
/// noise `spread`. Trainer-parity tests use it: on structureless data two
/// exact implementations summing in different orders meet near-ties often
/// enough for their trajectories to part, which says nothing about either.
inline std::vector<float> clustered(int64_t rows, int64_t d, int64_t centers, uint64_t seed,
                                    float spread = 0.15f) {
    std::mt19937_64 g(seed);
    std::normal_distribution<float> nd(0.f, 1.f);
    std::uniform_int_distribution<int64_t> pick(0, centers - 1);
    std::vector<float> c(size_t(centers * d)), v(size_t(rows * d));
    for (auto& e : c) e = nd(g);
    for (int64_t i = 0; i < rows; ++i) {
        const int64_t j = pick(g);
        for (int64_t t = 0; t < d; ++t) v[size_t(i * d + t)] = c[size_t(j * d + t)] + spread * nd(g);
    }
    return v;
}

/// Values rounded to the storage type (so the reference sees what the GPU sees).
inline std::vector<float> round_to(const std::vector<float>& v, fk::DType t) {
    std::vector<float> r(v);
    for (auto& e : r) {
        if (t == fk::DType::f16) e = __half2float(__float2half_rn(e));
        if (t == fk::DType::bf16) e = __bfloat162float(__float2bfloat16_rn(e));
    }
    return r;
}
inline std::vector<uint16_t> to_16bit(const std::vector<float>& v, fk::DType t) {
    std::vector<uint16_t> r(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
        if (t == fk::DType::f16) {
            __half h = __float2half_rn(v[i]);
            std::memcpy(&r[i], &h, 2);
        } else {
            __nv_bfloat16 h = __float2bfloat16_rn(v[i]);
            std::memcpy(&r[i], &h, 2);
        }
    }
    return r;
}

/// float64 score of point x against centroid c: L2 distance or inner product.
inline double score(const float* x, const float* c, int64_t d, fk::Metric m) {
    double s = 0;
    if (m == fk::Metric::L2) {
        for (int64_t j = 0; j < d; ++j) {
            const double t = double(x[j]) - double(c[j]);
            s += t * t;
        }
    } else {
        for (int64_t j = 0; j < d; ++j) s += double(x[j]) * double(c[j]);
    }
    return s;
}
inline double norm2(const float* x, int64_t d) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += double(x[j]) * x[j];
    return s;
}

/// Reference assignment of one problem: best label, best score, second score.
struct RefAssign {
    std::vector<int64_t> label;
    std::vector<double> best, second;
    double obj = 0;
};
inline RefAssign ref_assign(const float* x, const float* c, int64_t n, int64_t k, int64_t d,
                            fk::Metric m) {
    RefAssign r;
    r.label.resize(size_t(n));
    r.best.resize(size_t(n));
    r.second.resize(size_t(n));
    const double sign = m == fk::Metric::L2 ? 1.0 : -1.0;  // minimise sign * score
    for (int64_t i = 0; i < n; ++i) {
        double b1 = std::numeric_limits<double>::infinity(), b2 = b1;
        int64_t l = -1;
        for (int64_t j = 0; j < k; ++j) {
            const double s = sign * score(x + i * d, c + j * d, d, m);
            if (s < b1) {
                b2 = b1;
                b1 = s;
                l = j;
            } else if (s < b2) {
                b2 = s;
            }
        }
        r.label[size_t(i)] = l;
        r.best[size_t(i)] = sign * b1;
        r.second[size_t(i)] = sign * b2;
        r.obj += sign * b1;
    }
    return r;
}

/// Rounding tolerance of a float32 L2 distance / inner product computed as
/// ||x||^2 + ||c||^2 - 2 x.c: a few ulps of the magnitudes involved, growing
/// like sqrt(d) for the dot product's accumulation.
inline double fp32_tol(const float* x, const float* c, int64_t d) {
    const double xn = norm2(x, d), cn = norm2(c, d);
    return 8.0 * 6e-8 * std::sqrt(double(d) + 1.0) * (xn + cn + 2 * std::sqrt(xn * cn)) + 1e-30;
}

/// Two fits took the same path: as many iterations, the objective of each
/// and the final one within `tol` of ref's (relative), the first iteration's
/// within `tol_first`.
inline void expect_same_run(const fk::KMeansResult& a, const fk::KMeansResult& ref, double tol,
                            double tol_first) {
    ASSERT_EQ(a.iteration_stats.size(), ref.iteration_stats.size());
    for (size_t b = 0; b < a.iteration_stats.size(); ++b) {
        ASSERT_EQ(a.iteration_stats[b].size(), ref.iteration_stats[b].size());
        for (size_t it = 0; it < a.iteration_stats[b].size(); ++it) {
            const double oa = a.iteration_stats[b][it].obj, orf = ref.iteration_stats[b][it].obj;
            EXPECT_LE(std::abs(oa - orf), (it == 0 ? tol_first : tol) * std::abs(orf))
                << "problem " << b << " iteration " << it << ": got " << oa << " reference " << orf;
        }
    }
    ASSERT_EQ(a.obj.size(), ref.obj.size());
    for (size_t b = 0; b < a.obj.size(); ++b)
        EXPECT_LE(std::abs(a.obj[b] - ref.obj[b]), tol * std::abs(ref.obj[b])) << "problem " << b;
}
inline void expect_same_run(const fk::KMeansResult& a, const fk::KMeansResult& ref, double tol) {
    expect_same_run(a, ref, tol, tol);
}

}  // namespace fktest
