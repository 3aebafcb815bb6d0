#include <flashkmeans/faiss/train.hpp>

#include "lapack.hpp"

#include <faiss/impl/FaissAssert.h>
#include <faiss/utils/distances.h>
#include <faiss/utils/random.h>
#include <faiss/utils/utils.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

namespace flashkmeans {

namespace {

using idx_t = faiss::Index::idx_t;

/// x minus its column means, each row padded with zeros from d_in to d.
std::vector<float> centered_padded(const float* x, size_t n, int d_in, size_t d) {
    std::vector<double> mean(d_in, 0.0);
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < d_in; j++) mean[j] += x[i * d_in + j];
    for (double& m : mean) m /= double(n);
    std::vector<float> y(n * d, 0.0f);
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < d_in; j++) y[i * d + j] = x[i * d_in + j] - float(mean[j]);
    return y;
}

/// The orthogonal Procrustes step: the rotation (d2 rows of d) that best maps
/// xtrain (n, d) onto its PQ reconstruction (n, d2), from the SVD of
/// recons^T * xtrain.
void procrustes_rotation(const std::vector<float>& xtrain, const std::vector<float>& recons,
                         int n, int d, int d2, float* rotation) {
    const float one = 1, zero = 0;
    std::vector<float> cross(size_t(d) * d2);  // column-major (d2, d)
    sgemm_("N", "T", &d2, &d, &n, &one, recons.data(), &d2, xtrain.data(), &d, &zero,
           cross.data(), &d2);
    std::vector<float> u(size_t(d) * d), vt(size_t(d) * d), sv(d);
    int lwork = -1, info = 0;
    float work_size = 0;
    // Column-major (d2, d) is row-major (d, d2): the roles of U and V^T swap.
    sgesvd_("A", "A", &d2, &d, cross.data(), &d2, sv.data(), vt.data(), &d2, u.data(), &d,
            &work_size, &lwork, &info);
    lwork = int(work_size);
    std::vector<float> work(lwork);
    sgesvd_("A", "A", &d2, &d, cross.data(), &d2, sv.data(), vt.data(), &d2, u.data(), &d,
            work.data(), &lwork, &info);
    FAISS_THROW_IF_NOT_FMT(info == 0, "train_opq: sgesvd failed with info = %d", info);
    sgemm_("T", "T", &d, &d2, &d2, &one, u.data(), &d, vt.data(), &d2, &zero, rotation, &d);
}

}  // namespace

void train_opq(faiss::OPQMatrix& opq, idx_t n_in, const float* x_in,
               const EngineOptions& engine) {
    FAISS_THROW_IF_NOT_MSG(x_in != nullptr, "train_opq: x is null");
    size_t n = size_t(n_in);
    const float* x = faiss::fvecs_maybe_subsample(opq.d_in, &n, opq.max_train_points, x_in,
                                                  opq.verbose);
    std::unique_ptr<const float[]> owned_x(x != x_in ? x : nullptr);

    // Rotations to more dimensions than the input pad the input with zeros.
    const int d_in = opq.d_in, d2 = opq.d_out;
    const int d = d2 <= d_in ? d_in : d2;
    if (opq.verbose)
        std::printf("OPQMatrix::train: training an OPQ rotation matrix for M=%d from %zd "
                    "vectors in %dD -> %dD (batched PQ)\n",
                    opq.M, n, d_in, d2);
    const std::vector<float> xtrain = centered_padded(x, n, d_in, d);

    if (opq.A.empty()) {  // Faiss's random start: same seed, same rotation
        opq.A.resize(size_t(d) * d);
        faiss::float_randn(opq.A.data(), opq.A.size(), 1234);
        faiss::matrix_qr(d, d, opq.A.data());
        opq.A.resize(size_t(d) * d2);
    } else {
        FAISS_THROW_IF_NOT_FMT(opq.A.size() == size_t(d) * d2,
                               "train_opq: A has %zd entries, expected %d x %d", opq.A.size(),
                               d, d2);
    }
    float* rotation = opq.A.data();

    faiss::ProductQuantizer pq_default(d2, opq.M, 8);
    faiss::ProductQuantizer& pq = opq.pq ? *opq.pq : pq_default;
    std::vector<float> xproj(size_t(n) * d2), recons(size_t(n) * d2);
    std::vector<uint8_t> codes(pq.code_size * n);
    const int ni = int(n);
    const float one = 1, zero = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int iter = 0; iter < opq.niter; iter++) {
        // xproj = xtrain * rotation^T
        sgemm_("T", "N", &d2, &ni, &d, &one, rotation, &d, xtrain.data(), &d, &zero,
               xproj.data(), &d2);
        pq.cp.max_points_per_centroid = 1000;
        pq.cp.niter = iter == 0 ? opq.niter_pq_0 : opq.niter_pq;
        pq.verbose = opq.verbose;
        train_product_quantizer(pq, n, xproj.data(), engine);

        if (pq.assign_index)
            pq.compute_codes_with_assign_index(xproj.data(), codes.data(), n);
        else
            pq.compute_codes(xproj.data(), codes.data(), n);
        pq.decode(codes.data(), recons.data(), n);
        if (opq.verbose)
            std::printf("    Iteration %d (%d PQ iterations): %.3f s, obj=%g\n", iter,
                        pq.cp.niter,
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
                                .count(),
                        faiss::fvec_L2sqr(recons.data(), xproj.data(), n * d2) / n);
        procrustes_rotation(xtrain, recons, ni, d, d2, rotation);
        pq.train_type = faiss::ProductQuantizer::Train_hot_start;
    }

    if (d > d_in) {  // drop the padding columns
        for (int i = 0; i < d2; i++)
            std::memmove(&opq.A[size_t(i) * d_in], &opq.A[size_t(i) * d], sizeof(float) * d_in);
        opq.A.resize(size_t(d_in) * d2);
    }
    opq.is_trained = true;
    opq.is_orthonormal = true;
}

}  // namespace flashkmeans
