// The IVF index inside the wrappers faiss::index_factory produces.
#pragma once

#include <cstdint>

#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>

namespace flashkmeans::testing {

/// The IVF index under IndexPreTransform / IDMap / Refine, or null.
inline faiss::IndexIVF* find_ivf(faiss::Index* index) {
    if (auto* ipt = dynamic_cast<faiss::IndexPreTransform*>(index)) return find_ivf(ipt->index);
    if (auto* idmap = dynamic_cast<faiss::IndexIDMap*>(index)) return find_ivf(idmap->index);
    if (auto* refine = dynamic_cast<faiss::IndexRefine*>(index)) return find_ivf(refine->base_index);
    return dynamic_cast<faiss::IndexIVF*>(index);
}

}  // namespace flashkmeans::testing
