// flashkmeans::add: Faiss's add with the coarse assignment and the PQ
// sub-quantizer assignments on the engine. The inverted lists are filled
// through Faiss's own entry points (IndexIVF::add_sa_codes for IVFPQ,
// add_core for other IVF types), so everything Faiss does around an add
// (ids, direct map, ntotal) stays Faiss's.
#include <flashkmeans/faiss/add.hpp>

#include "engine_errors.hpp"
#include "faiss_params.hpp"

#include <flashkmeans/kmeans.hpp>

#include <faiss/IndexFlat.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFAdditiveQuantizer.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexIVFPQR.h>
#include <faiss/IndexIVFSpectralHash.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/impl/FaissAssert.h>
#include <faiss/impl/ProductQuantizer.h>

#include <omp.h>

#include <algorithm>
#include <cinttypes>
#include <exception>
#include <memory>
#include <mutex>
#include <typeinfo>
#include <vector>

namespace flashkmeans {

namespace {

using idx_t = faiss::Index::idx_t;
static_assert(sizeof(idx_t) == sizeof(int64_t), "Faiss labels are 64-bit");

/// Default batch: this many bytes of residuals (1M vectors at d = 128).
constexpr size_t kBatchBytes = size_t(512) << 20;
/// Concurrent sub-quantizer assignments on the GPU (one stream each): the
/// upload of one overlaps the kernels and download of the others.
constexpr int kGpuConcurrentCalls = 4;

idx_t batch_rows(const AddOptions& o, idx_t d, idx_t n) {
    const idx_t b = o.batch_size > 0
                            ? o.batch_size
                            : idx_t(kBatchBytes / (sizeof(float) * size_t(std::max<idx_t>(d, 1))));
    return std::max<idx_t>(1, std::min(b, n));
}

bool runs_on_gpu(const EngineOptions& e) {
    return e.device == DeviceChoice::cuda ||
           (e.device == DeviceChoice::automatic && cuda_available());
}

/// Runs f(i) for i in [0, n) over OpenMP threads; the first exception any
/// call throws is rethrown here (an exception must not leave a parallel region).
template <class F>
void parallel_for(idx_t n, F&& f, int nthreads = 0) {
    std::exception_ptr error;
    std::mutex error_mutex;
    if (nthreads <= 0) nthreads = omp_get_max_threads();
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1) if (nthreads > 1 && n > 1)
    for (idx_t i = 0; i < n; i++) {
        try {
            f(i);
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
        }
    }
    if (error) std::rethrow_exception(error);
}

/// Rows [0, n) in chunks of about equal size, one chunk per parallel_for
/// step: f(i0, i1).
template <class F>
void parallel_rows(idx_t n, F&& f) {
    const idx_t chunk = 4096;
    parallel_for((n + chunk - 1) / chunk, [&](idx_t c) {
        f(c * chunk, std::min(n, (c + 1) * chunk));
    });
}

/// The quantizer when its search is an exhaustive L2 / inner-product scan of
/// stored float vectors (IndexFlat and subclasses, IndexFlashFlat): the
/// engine's assignment is then the same search. Null for anything else.
const faiss::IndexFlat* engine_quantizer(const faiss::Index* quantizer) {
    const auto* flat = dynamic_cast<const faiss::IndexFlat*>(quantizer);
    if (!flat || flat->ntotal == 0) return nullptr;
    if (flat->metric_type != faiss::METRIC_L2 && flat->metric_type != faiss::METRIC_INNER_PRODUCT)
        return nullptr;
    return flat;
}

/// IVF list numbers of x (n rows): the quantizer's nearest centroid, on the
/// engine for flat quantizers (following their metric), else the
/// quantizer's own assign, as IndexIVF::add_with_ids does.
void coarse_assign(const faiss::IndexIVF& ivf, idx_t n, const float* x, idx_t* lists,
                   const AddOptions& o) {
    if (const faiss::IndexFlat* flat = engine_quantizer(ivf.quantizer)) {
        with_faiss_errors("flashkmeans::add", [&] {
            assign(matrix_view(x, n, flat->d), matrix_view(flat->get_xb(), flat->ntotal, flat->d),
                   1, reinterpret_cast<int64_t*>(lists), nullptr,
                   assign_params(o.engine, flat->metric_type));
        });
    } else {
        ivf.quantizer->assign(n, x, lists);
    }
}

void check_trained(const faiss::Index& index) {
    const bool is_trained = index.is_trained;
    // Faiss's own add fails with "Error: 'is_trained' failed".
    FAISS_THROW_IF_NOT_MSG(is_trained,
                           "flashkmeans::add: the index is not trained; train it "
                           "(flashkmeans::train or index->train) before adding vectors");
}

/// IVF types whose add is IndexIVF::add_with_ids (quantizer->assign, then
/// add_core): for them add_core with engine list numbers is that same add.
/// Exact types only, so that a subclass with its own add keeps it.
bool has_ivf_add(const faiss::IndexIVF& ivf) {
    const std::type_info& t = typeid(ivf);
    return t == typeid(faiss::IndexIVFFlat) || t == typeid(faiss::IndexIVFScalarQuantizer) ||
           t == typeid(faiss::IndexIVFPQR) || t == typeid(faiss::IndexIVFResidualQuantizer) ||
           t == typeid(faiss::IndexIVFLocalSearchQuantizer) ||
           t == typeid(faiss::IndexIVFProductResidualQuantizer) ||
           t == typeid(faiss::IndexIVFProductLocalSearchQuantizer) ||
           t == typeid(faiss::IndexIVFSpectralHash);
}

void add_ivf_core(faiss::IndexIVF& ivf, idx_t n, const float* x, const idx_t* xids,
                  const AddOptions& o) {
    const idx_t d = ivf.d, bs = batch_rows(o, d, n);
    std::vector<idx_t> lists(bs);
    for (idx_t i0 = 0; i0 < n; i0 += bs) {
        const idx_t nb = std::min(bs, n - i0);
        coarse_assign(ivf, nb, x + i0 * d, lists.data(), o);
        ivf.add_core(nb, x + i0 * d, xids ? xids + i0 : nullptr, lists.data());
    }
}

/// IndexIVFPQ::add_core_o's encoding with the searches on the engine:
///  - list numbers: one engine assignment per batch;
///  - residuals x - centroid(list) (or x itself when !by_residual), written
///    subspace-major, (M, nb, dsub), so that each sub-quantizer's input is a
///    contiguous (nb, dsub) matrix (one plain host-to-GPU copy per call);
///  - code m of each vector: one engine assignment (L2, as
///    ProductQuantizer::compute_code) against pq.get_centroids(m, 0);
///  - the standalone codes IndexIVF::add_sa_codes reads: per vector
///    coarse_code_size() bytes of list number (encode_listno, little endian)
///    then the pq.code_size bytes of ProductQuantizer's code (M indices of
///    nbits bits, packed from the lowest bit as PQEncoderGeneric does).
void add_ivfpq(faiss::IndexIVFPQ& ivf, idx_t n, const float* x, const idx_t* xids,
               const AddOptions& o) {
    const faiss::ProductQuantizer& pq = ivf.pq;
    const idx_t d = ivf.d, M = idx_t(pq.M), dsub = idx_t(pq.dsub), ksub = idx_t(pq.ksub);
    const int nbits = int(pq.nbits);
    const size_t coarse_size = ivf.coarse_code_size(), code_size = ivf.code_size;
    const size_t sa_size = coarse_size + code_size;
    const faiss::IndexFlat* flat = engine_quantizer(ivf.quantizer);
    if (ivf.by_residual && !flat) {
        // Residuals from quantizer->reconstruct, as Index::compute_residual
        // does: fail here, not inside a parallel loop, when it cannot.
        std::vector<float> probe(d);
        ivf.quantizer->reconstruct(0, probe.data());
    }

    const idx_t bs = batch_rows(o, d, n);
    const bool gpu = runs_on_gpu(o.engine);
    const int ncalls = gpu ? int(std::min<idx_t>(M, kGpuConcurrentCalls)) : 1;
    std::vector<idx_t> lists(bs);
    std::vector<float> sub(size_t(bs) * d);
    std::vector<int64_t> labels(size_t(ncalls) * bs);
    // Centroid indices, subspace-major (M, nb): contiguous writes per call.
    std::vector<uint8_t> small_indices(nbits <= 8 ? size_t(bs) * M : 0);
    std::vector<uint32_t> large_indices(nbits > 8 ? size_t(bs) * M : 0);
    std::vector<uint8_t> codes(size_t(bs) * sa_size);
    const AssignParams ap = assign_params(o.engine, faiss::METRIC_L2);

    for (idx_t i0 = 0; i0 < n; i0 += bs) {
        const idx_t nb = std::min(bs, n - i0);
        const float* xb = x + i0 * d;
        const idx_t* ids = xids ? xids + i0 : nullptr;
        coarse_assign(ivf, nb, xb, lists.data(), o);
        if (std::any_of(lists.begin(), lists.begin() + nb, [](idx_t l) { return l < 0; })) {
            // Vectors without a list are skipped by Faiss's add_core_o (their
            // ids still count): no standalone code says that, so this batch
            // is Faiss's own.
            ivf.add_core(nb, xb, ids, lists.data());
            continue;
        }

        // Residuals, subspace-major.
        parallel_rows(nb, [&](idx_t r0, idx_t r1) {
            std::vector<float> centroid(ivf.by_residual && !flat ? d : 0);
            for (idx_t i = r0; i < r1; i++) {
                const float* xi = xb + i * d;
                const float* c = nullptr;
                if (ivf.by_residual) {
                    if (flat) {
                        c = flat->get_xb() + lists[i] * d;
                    } else {
                        ivf.quantizer->reconstruct(lists[i], centroid.data());
                        c = centroid.data();
                    }
                }
                for (idx_t m = 0; m < M; m++) {
                    float* out = sub.data() + (m * nb + i) * dsub;
                    const float* xs = xi + m * dsub;
                    if (c) {
                        const float* cs = c + m * dsub;
                        for (idx_t j = 0; j < dsub; j++) out[j] = xs[j] - cs[j];
                    } else {
                        std::copy(xs, xs + dsub, out);
                    }
                }
            }
        });

        // PQ codes: one engine assignment per sub-quantizer, up to ncalls at
        // a time on the GPU.
        parallel_for(
                M,
                [&](idx_t m) {
                    int64_t* lab = labels.data() + size_t(omp_get_thread_num()) * bs;
                    with_faiss_errors("flashkmeans::add", [&] {
                        assign(matrix_view(sub.data() + m * nb * dsub, nb, dsub),
                               matrix_view(pq.get_centroids(m, 0), ksub, dsub), 1, lab, nullptr,
                               ap);
                    });
                    // A NaN row has no nearest centroid; Faiss's scan keeps index 0.
                    if (nbits <= 8) {
                        uint8_t* out = small_indices.data() + m * nb;
                        for (idx_t i = 0; i < nb; i++) out[i] = uint8_t(std::max<int64_t>(lab[i], 0));
                    } else {
                        uint32_t* out = large_indices.data() + m * nb;
                        for (idx_t i = 0; i < nb; i++) out[i] = uint32_t(std::max<int64_t>(lab[i], 0));
                    }
                },
                ncalls);

        parallel_rows(nb, [&](idx_t r0, idx_t r1) {
            for (idx_t i = r0; i < r1; i++) {
                uint8_t* code = codes.data() + i * sa_size;
                ivf.encode_listno(lists[i], code);
                if (nbits == 8) {  // PQEncoder8: one byte per subspace
                    for (idx_t m = 0; m < M; m++) code[coarse_size + m] = small_indices[m * nb + i];
                } else {
                    faiss::PQEncoderGeneric encoder(code + coarse_size, nbits);
                    for (idx_t m = 0; m < M; m++)
                        encoder.encode(nbits < 8 ? small_indices[m * nb + i] : large_indices[m * nb + i]);
                }  // the encoder writes its last partial byte when destroyed
            }
        });
        ivf.add_sa_codes(nb, codes.data(), ids);
    }
}

void add_impl(faiss::Index* index, idx_t n, const float* x, const idx_t* xids,
              const AddOptions& o);

void add_pretransform(faiss::IndexPreTransform& ipt, idx_t n, const float* x,
                      const idx_t* xids, const AddOptions& o) {
    check_trained(ipt);
    // The chain's output a batch at a time (Faiss transforms all n at once).
    const idx_t d = ipt.d, bs = batch_rows(o, std::max<idx_t>(d, ipt.index->d), n);
    for (idx_t i0 = 0; i0 < n; i0 += bs) {
        const idx_t nb = std::min(bs, n - i0);
        const float* xb = x + i0 * d;
        const float* xt = ipt.apply_chain(nb, xb);
        std::unique_ptr<const float[]> owned(xt == xb ? nullptr : xt);
        add_impl(ipt.index, nb, xt, xids ? xids + i0 : nullptr, o);
        ipt.ntotal = ipt.index->ntotal;
    }
}

/// IndexIDMap(2)::add_with_ids with the wrapped index's add through add_impl.
void add_idmap(faiss::IndexIDMap& idmap, idx_t n, const float* x, const idx_t* xids,
               const AddOptions& o) {
    if (!xids) FAISS_THROW_MSG("add does not make sense with IndexIDMap, use add_with_ids");
    const idx_t n0 = idmap.ntotal;
    add_impl(idmap.index, n, x, nullptr, o);
    idmap.id_map.insert(idmap.id_map.end(), xids, xids + n);
    idmap.ntotal = idmap.index->ntotal;
    if (auto* idmap2 = dynamic_cast<faiss::IndexIDMap2*>(&idmap))
        for (idx_t i = n0; i < idmap2->ntotal; i++) idmap2->rev_map[idmap2->id_map[i]] = i;
}

void add_impl(faiss::Index* index, idx_t n, const float* x, const idx_t* xids,
              const AddOptions& o) {
    if (auto* ipt = dynamic_cast<faiss::IndexPreTransform*>(index)) {
        add_pretransform(*ipt, n, x, xids, o);
    } else if (auto* idmap = dynamic_cast<faiss::IndexIDMap*>(index)) {  // and IDMap2
        add_idmap(*idmap, n, x, xids, o);
    } else if (auto* refine = dynamic_cast<faiss::IndexRefine*>(index); refine && !xids) {
        // IndexRefine::add (it has no add_with_ids: that case is Faiss's error).
        check_trained(*refine);
        add_impl(refine->base_index, n, x, nullptr, o);
        add_impl(refine->refine_index, n, x, nullptr, o);
        refine->ntotal = refine->refine_index->ntotal;
    } else if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(index);
               ivf && (typeid(*ivf) == typeid(faiss::IndexIVFPQ) || has_ivf_add(*ivf))) {
        check_trained(*ivf);
        ivf->direct_map.check_can_add(xids);
        if (n == 0) return;
        auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(ivf);
        if (typeid(*ivf) == typeid(faiss::IndexIVFPQ) && ivfpq->code_size == ivfpq->pq.code_size &&
            ivfpq->pq.M > 0 && ivfpq->pq.dsub * ivfpq->pq.M == size_t(ivf->d)) {
            add_ivfpq(*ivfpq, n, x, xids, o);
        } else {
            add_ivf_core(*ivf, n, x, xids, o);
        }
    } else if (xids) {
        index->add_with_ids(n, x, xids);
    } else {
        index->add(n, x);
    }
}

}  // namespace

void add(faiss::Index* index, idx_t n, const float* x, const idx_t* xids,
         const AddOptions& options) {
    FAISS_THROW_IF_NOT_MSG(index != nullptr, "flashkmeans::add: index is null");
    FAISS_THROW_IF_NOT_FMT(n >= 0, "flashkmeans::add: n = %" PRId64 " vectors, expected >= 0",
                           int64_t(n));
    FAISS_THROW_IF_NOT_FMT(x != nullptr || n == 0,
                           "flashkmeans::add: x is null with n = %" PRId64 " vectors",
                           int64_t(n));
    FAISS_THROW_IF_NOT_FMT(options.batch_size >= 0,
                           "flashkmeans::add: batch_size = %" PRId64 ", expected >= 0 (0: automatic)",
                           int64_t(options.batch_size));
    add_impl(index, n, x, xids, options);
}

}  // namespace flashkmeans
