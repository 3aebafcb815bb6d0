// Shared pieces of the CPU tests that need the library's types (header-only:
// flashkmeans_testdata, behind test_data.hpp, does not link the library).
#pragma once

#include <flashkmeans/params.hpp>

namespace flashkmeans::testing {

/// Parameters of a CPU fit of `niter` iterations, the rest default.
inline KMeansParams cpu_params(int niter = 8) {
    KMeansParams p;
    p.niter = niter;
    p.device = DeviceChoice::cpu;
    return p;
}

}  // namespace flashkmeans::testing
