#pragma once
// Unnormalised Sylvester–Walsh–Hadamard transform in natural order (codec-kakeya.md §5.9) and the
// project's sign-randomised rotation. The butterfly runs stage by stage (h = 1, 2, 4, ...), one f32
// add or subtract per output, so it is bit-reproducible on every backend. H·H = n·I.
#include <cstddef>
#include <cstdint>

#include "codec/kernels/hd.h"
#include "codec/kernels/rng.h"

namespace kvwb::codec::kernels {

/// next_pow2(n): smallest power of two >= n, and 1 for n <= 1.
KVWB_HD constexpr size_t next_pow2(size_t n) noexcept {
  size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}
/// ceil(log2(k)) for k >= 2, 0 for k <= 1.
KVWB_HD constexpr unsigned clog2(size_t k) noexcept {
  unsigned b = 0;
  while ((size_t{1} << b) < k) ++b;
  return b;
}
/// Whether n is a power of two (n >= 1).
KVWB_HD constexpr bool is_pow2(size_t n) noexcept { return n != 0 && (n & (n - 1)) == 0; }

/// In-place H·v for v of length n; n must be a power of two (callers check).
KVWB_HD inline void wht_pow2(float* v, size_t n) noexcept {
  for (size_t h = 1; h < n; h <<= 1) {
    for (size_t i0 = 0; i0 < n; i0 += 2 * h) {
      for (size_t j = i0; j < i0 + h; ++j) {
        const float a = v[j];
        const float b = v[j + h];
        v[j] = a + b;
        v[j + h] = a - b;
      }
    }
  }
}

/// y = H·(S·v) in place, S = diag(signs[0..n)) (±1.0f, e.g. from rng::wht_sign).
KVWB_HD inline void wht_rotate_signs(float* v, size_t n, const float* signs) noexcept {
  for (size_t j = 0; j < n; ++j) v[j] *= signs[j];
  wht_pow2(v, n);
}

/// Inverse of wht_rotate_signs: v = S·(H·y)·(1/n) in place (1/n is exact for a power of two).
KVWB_HD inline void wht_unrotate_signs(float* v, size_t n, const float* signs) noexcept {
  wht_pow2(v, n);
  const float inv = 1.0f / static_cast<float>(n);
  for (size_t j = 0; j < n; ++j) v[j] = v[j] * inv * signs[j];
}

/// y = H·(S·v) in place with the signs of `seed` drawn on the fly (Kakeya §5.9).
KVWB_HD inline void wht_rotate_seed(float* v, size_t n, uint64_t seed) noexcept {
  for (size_t j = 0; j < n; ++j) v[j] *= rng::wht_sign(seed, j);
  wht_pow2(v, n);
}

/// Inverse of wht_rotate_seed.
KVWB_HD inline void wht_unrotate_seed(float* v, size_t n, uint64_t seed) noexcept {
  wht_pow2(v, n);
  const float inv = 1.0f / static_cast<float>(n);
  for (size_t j = 0; j < n; ++j) v[j] = v[j] * inv * rng::wht_sign(seed, j);
}

}  // namespace kvwb::codec::kernels
