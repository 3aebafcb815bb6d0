#include <flashkmeans/faiss/index_factory.hpp>

#include <flashkmeans/faiss/retrofit.hpp>

#include <faiss/impl/FaissAssert.h>
#include <faiss/index_factory.h>

#include <memory>
#include <regex>
#include <sstream>
#include <string>

namespace flashkmeans {

namespace {

/// The tokens whose Faiss classes this plugin has been checked against; a
/// token outside the list is refused up front rather than silently trained
/// by Faiss alone.
bool supported_token(const std::string& token) {
    static const std::regex ok(
            "IDMap2?|(PCA|PCAW|PCAR|PCAWR)[0-9]+|OPQ[0-9]+(_[0-9]+)?|RR[0-9]+|L2norm|"
            "IVF[0-9]+(_HNSW[0-9]+)?|Flat|PQ[0-9]+(x[0-9]+)?(np)?|SQ(4|6|8|fp16)|RFlat|"
            "RQ[0-9]+x[0-9]+(_[0-9]+x[0-9]+)*(_N(none|float|qint8|qint4|cqint8|cqint4|lsq2x4|rq2x4))?");
    return std::regex_match(token, ok);
}

}  // namespace

faiss::Index* index_factory(int d, const char* description, faiss::MetricType metric,
                            const EngineOptions& engine) {
    FAISS_THROW_IF_NOT_MSG(description != nullptr, "index_factory: description is null");
    FAISS_THROW_IF_NOT_FMT(d > 0, "index_factory: dimension d = %d, expected > 0", d);
    FAISS_THROW_IF_NOT_FMT(metric == faiss::METRIC_L2 || metric == faiss::METRIC_INNER_PRODUCT,
                           "index_factory: metric type %d is not supported by flashkmeans, "
                           "expected METRIC_L2 (%d) or METRIC_INNER_PRODUCT (%d)",
                           int(metric), int(faiss::METRIC_L2), int(faiss::METRIC_INNER_PRODUCT));
    std::istringstream tokens(description);
    std::string token;
    while (std::getline(tokens, token, ','))
        FAISS_THROW_IF_NOT_FMT(supported_token(token),
                               "index_factory: token \"%s\" of \"%s\" is not supported by "
                               "flashkmeans::index_factory",
                               token.c_str(), description);

    std::unique_ptr<faiss::Index> index(faiss::index_factory(d, description, metric));
    retrofit(*index, engine);
    return index.release();
}

}  // namespace flashkmeans
