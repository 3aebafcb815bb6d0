// Where the plugin's training and assignment run, for the functions that
// take a Faiss index rather than a flashkmeans object.
#pragma once

#include <flashkmeans/params.hpp>

namespace flashkmeans {

struct EngineOptions {
    DeviceChoice device = DeviceChoice::automatic;  ///< GPU when present, else CPU
    Precision precision = Precision::automatic;     ///< exact for float32 input
    int gpu_id = 0;
};

}  // namespace flashkmeans
