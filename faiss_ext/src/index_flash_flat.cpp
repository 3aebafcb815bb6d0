#include <flashkmeans/faiss/index_flash_flat.hpp>

#include "engine_errors.hpp"
#include "faiss_params.hpp"

#include <flashkmeans/kmeans.hpp>

#include <faiss/impl/FaissAssert.h>

#include <cinttypes>

namespace flashkmeans {

namespace {

faiss::MetricType checked_metric(faiss::MetricType metric) {
    FAISS_THROW_IF_NOT_FMT(metric == faiss::METRIC_L2 || metric == faiss::METRIC_INNER_PRODUCT,
                           "IndexFlashFlat: metric type %d is not supported, expected "
                           "METRIC_L2 (%d) or METRIC_INNER_PRODUCT (%d)",
                           int(metric), int(faiss::METRIC_L2),
                           int(faiss::METRIC_INNER_PRODUCT));
    return metric;
}

}  // namespace

IndexFlashFlat::IndexFlashFlat(idx_t d, faiss::MetricType metric)
        : faiss::IndexFlat(d, checked_metric(metric)) {}

IndexFlashFlat::IndexFlashFlat(const faiss::IndexFlat& flat)
        : faiss::IndexFlat(flat.d, checked_metric(flat.metric_type)) {
    codes = flat.codes;
    ntotal = flat.ntotal;
    verbose = flat.verbose;
}

IndexFlashFlat::IndexFlashFlat() = default;

void IndexFlashFlat::search(idx_t n, const float* x, idx_t k, float* distances,
                            idx_t* labels, const faiss::SearchParameters* params) const {
    FAISS_THROW_IF_NOT_FMT(k > 0, "IndexFlashFlat::search: k = %" PRId64 " must be positive",
                           int64_t(k));
    FAISS_THROW_IF_NOT_MSG(ntotal > 0,
                           "IndexFlashFlat::search: the index is empty (if it is the "
                           "quantizer of an IVF index, train the IVF index before "
                           "search or add)");
    // The engine has no notion of an id filter; Faiss's own scan honours it.
    if (params && params->sel) {
        faiss::IndexFlat::search(n, x, k, distances, labels, params);
        return;
    }
    if (n == 0) return;
    const AssignParams ap = assign_params(engine, metric_type);
    static_assert(sizeof(idx_t) == sizeof(int64_t), "Faiss labels are 64-bit");
    with_faiss_errors("IndexFlashFlat::search", [&] {
        flashkmeans::assign(matrix_view(x, n, d), matrix_view(get_xb(), ntotal, d), k,
               reinterpret_cast<int64_t*>(labels), distances, ap);
    });
}

}  // namespace flashkmeans
