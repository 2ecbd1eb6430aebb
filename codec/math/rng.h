#pragma once
// The project RNG (codec-kakeya.md §4): counter-based SplitMix64, so every backend and every
// evaluation order draws identical integers. All randomness in the codecs comes from here; the
// generator itself is the shared kernel of codec/kernels/rng.h.
#include <cstdint>

#include "codec/kernels/rng.h"

namespace kvwb::codec::rng {

/// synthetic(n, D, rank, noise, seed) of codec-kakeya.md §13.6, row-major [n, D] into `out`.
void synthetic(float* out, uint64_t n, uint64_t d, uint64_t rank, double noise, uint64_t seed);

}  // namespace kvwb::codec::rng
