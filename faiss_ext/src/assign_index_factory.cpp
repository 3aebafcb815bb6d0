#include <flashkmeans/faiss/assign_index_factory.hpp>

#include <flashkmeans/faiss/index_flash_flat.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <tuple>

namespace flashkmeans {

faiss::Index* FlashAssignIndexFactory::operator()(int dim) {
    auto* index = new IndexFlashFlat(dim, faiss::METRIC_L2);
    index->engine = engine;
    return index;
}

FlashAssignIndexFactory* shared_assign_index_factory(const EngineOptions& engine) {
    static std::mutex mutex;
    static std::map<std::tuple<int, int, int>, std::unique_ptr<FlashAssignIndexFactory>> made;
    std::lock_guard<std::mutex> lock(mutex);
    auto& slot = made[{int(engine.device), int(engine.precision), engine.gpu_id}];
    if (!slot) slot = std::make_unique<FlashAssignIndexFactory>(engine);
    return slot.get();
}

}  // namespace flashkmeans
