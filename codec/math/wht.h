#pragma once
// Unnormalised Sylvester–Walsh–Hadamard transform in natural order (codec-kakeya.md §5.9).
// The butterfly runs stage by stage (h = 1, 2, 4, ...), one f32 add or subtract per output, so it
// is bit-reproducible on every backend (the shared kernel of codec/kernels/wht.h). H·H = n·I.
#include <cstddef>
#include <cstdint>

#include "codec/kernels/wht.h"

namespace kvwb::codec {

/// In-place H·v for v of length n (a power of two); throws InvalidArgument otherwise.
void wht_inplace(float* v, size_t n);

/// next_pow2(n): smallest power of two >= n, and 1 for n <= 1.
using kernels::next_pow2;
/// ceil(log2(k)) for k >= 2, 0 for k <= 1.
using kernels::clog2;

/// y = H·(S·r) in place, S the project-RNG sign diagonal of `seed` (Kakeya §5.9).
void wht_rotate(float* v, size_t n, uint64_t seed);
/// Inverse of wht_rotate: v = S·(H·y)·(1/n) in place.
void wht_unrotate(float* v, size_t n, uint64_t seed);

}  // namespace kvwb::codec
