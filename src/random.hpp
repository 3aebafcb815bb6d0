// A random generator whose sequences equal faiss::RandomGenerator's for the
// same seed (both are std::mt19937 seeded with the low 32 bits), so that the
// engine seeds and splits clusters exactly as Faiss does without linking it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>

namespace flashkmeans::detail {

class FaissCompatibleRng {
   public:
    explicit FaissCompatibleRng(int64_t seed) : mt_(static_cast<unsigned int>(seed)) {}
    /// Uniform in [0, max) by modulo, as Faiss.
    int rand_int(int max) { return static_cast<int>(mt_() % static_cast<unsigned>(max)); }
    /// Uniform in [0, 1], as Faiss (mt() / max()).
    float rand_float() { return mt_() / float(std::mt19937::max()); }

   private:
    std::mt19937 mt_;
};

/// The permutation faiss::rand_perm(perm, n, seed) produces.
void faiss_compatible_rand_perm(int* perm, size_t n, int64_t seed);

}  // namespace flashkmeans::detail
