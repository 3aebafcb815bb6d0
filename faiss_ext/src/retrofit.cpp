#include <flashkmeans/faiss/retrofit.hpp>

#include <flashkmeans/faiss/assign_index_factory.hpp>
#include <flashkmeans/faiss/index_flash_flat.hpp>

#include <faiss/IndexAdditiveQuantizer.h>
#include <faiss/IndexIVFAdditiveQuantizer.h>
#include <faiss/impl/ProductAdditiveQuantizer.h>

#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>

#include <functional>
#include <typeinfo>

namespace flashkmeans {

namespace {

/// Calls f on every IVF index reachable through the wrappers
/// faiss::index_factory produces.
void for_each_ivf(faiss::Index& index, const std::function<void(faiss::IndexIVF&)>& f) {
    if (auto* ipt = dynamic_cast<faiss::IndexPreTransform*>(&index))
        for_each_ivf(*ipt->index, f);
    else if (auto* idmap = dynamic_cast<faiss::IndexIDMap*>(&index))
        for_each_ivf(*idmap->index, f);
    else if (auto* refine = dynamic_cast<faiss::IndexRefine*>(&index))
        for_each_ivf(*refine->base_index, f);
    else if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(&index))
        f(*ivf);
}

/// Calls f on every ResidualQuantizer reachable from `index`: residual and
/// product-residual indexes, their IVF forms, and residual coarse quantizers.
void for_each_rq(faiss::Index& index, const std::function<void(faiss::ResidualQuantizer&)>& f) {
    auto product = [&](faiss::ProductResidualQuantizer& prq) {
        for (faiss::AdditiveQuantizer* q : prq.quantizers)
            if (auto* rq = dynamic_cast<faiss::ResidualQuantizer*>(q)) f(*rq);
    };
    if (auto* ipt = dynamic_cast<faiss::IndexPreTransform*>(&index)) return for_each_rq(*ipt->index, f);
    if (auto* idmap = dynamic_cast<faiss::IndexIDMap*>(&index)) return for_each_rq(*idmap->index, f);
    if (auto* refine = dynamic_cast<faiss::IndexRefine*>(&index)) return for_each_rq(*refine->base_index, f);
    if (auto* r = dynamic_cast<faiss::IndexResidualQuantizer*>(&index)) return f(r->rq);
    if (auto* r = dynamic_cast<faiss::ResidualCoarseQuantizer*>(&index)) return f(r->rq);
    if (auto* p = dynamic_cast<faiss::IndexProductResidualQuantizer*>(&index)) return product(p->prq);
    if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(&index)) {
        if (auto* r = dynamic_cast<faiss::IndexIVFResidualQuantizer*>(ivf)) f(r->rq);
        if (auto* p = dynamic_cast<faiss::IndexIVFProductResidualQuantizer*>(ivf)) product(p->prq);
        if (ivf->quantizer) for_each_rq(*ivf->quantizer, f);
    }
}

/// Installs `q` as ivf's quantizer, owned by ivf; frees the old one if ivf
/// owned it.
void replace_quantizer(faiss::IndexIVF& ivf, faiss::Index* q) {
    if (ivf.own_fields) delete ivf.quantizer;
    ivf.quantizer = q;
    ivf.own_fields = true;
}

/// Exactly Faiss's flat classes: subclasses (IndexFlat1D, ...) may search
/// differently and are left alone.
bool is_stock_flat(const faiss::Index& q) {
    const std::type_info& t = typeid(q);
    return t == typeid(faiss::IndexFlat) || t == typeid(faiss::IndexFlatL2) ||
           t == typeid(faiss::IndexFlatIP);
}

}  // namespace

int retrofit(faiss::Index& index, const EngineOptions& engine) {
    int count = 0;
    for_each_ivf(index, [&](faiss::IndexIVF& ivf) {
        if (!ivf.quantizer) return;
        auto* flash = dynamic_cast<IndexFlashFlat*>(ivf.quantizer);
        if (!flash && is_stock_flat(*ivf.quantizer)) {
            flash = new IndexFlashFlat(static_cast<const faiss::IndexFlat&>(*ivf.quantizer));
            replace_quantizer(ivf, flash);
        }
        if (!flash) return;
        flash->engine = engine;
        count++;
    });
    // Residual quantizers: their k-means and beam-search assignments.
    for_each_rq(index, [&](faiss::ResidualQuantizer& rq) {
        rq.assign_index_factory = shared_assign_index_factory(engine);
        count++;
    });
    return count;
}

int to_stock(faiss::Index& index) {
    int count = 0;
    for_each_ivf(index, [&](faiss::IndexIVF& ivf) {
        auto* flash = dynamic_cast<IndexFlashFlat*>(ivf.quantizer);
        if (!flash) return;
        auto* flat = new faiss::IndexFlat(flash->d, flash->metric_type);
        flat->codes = flash->codes;
        flat->ntotal = flash->ntotal;
        flat->verbose = flash->verbose;
        replace_quantizer(ivf, flat);
        count++;
    });
    for_each_rq(index, [&](faiss::ResidualQuantizer& rq) {
        if (!dynamic_cast<FlashAssignIndexFactory*>(rq.assign_index_factory)) return;
        rq.assign_index_factory = nullptr;
        count++;
    });
    return count;
}

}  // namespace flashkmeans
