#pragma once
// KIVI-style asymmetric integer quantisation of one group (codec-peers.md §3.3): n values at a
// stride (K: a token group of one channel; V: a channel group of one token), b = 2 or 4 bits.
// The encoder takes three steps so that the caller can range-check the fp16 fields in between:
//   kivi_group_range → (lo, hi);  Δ = kivi_delta(lo, hi, b);  caller stores fp16(Δ) and fp16(lo)
//   kivi_quantize_codes(…, Δ_q, z_q) with the fp16-rounded Δ_q, z_q → codes and clip count.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "codec/kernels/hd.h"

namespace kvwb::codec::kernels {

/// Largest KIVI group (G = 128).
inline constexpr size_t kKiviMaxGroup = 128;

/// Minimum and maximum of x[0], x[stride], …, x[(n−1)·stride] (n >= 1).
KVWB_HD inline void kivi_group_range(const float* x, size_t n, size_t stride, float& lo,
                                     float& hi) noexcept {
  lo = x[0];
  hi = x[0];
  for (size_t i = 1; i < n; ++i) {
    const float v = x[i * stride];
    lo = v < lo ? v : lo;
    hi = v > hi ? v : hi;
  }
}

/// The unrounded scale Δ = (hi − lo) / (2^b − 1).
KVWB_HD inline float kivi_delta(float lo, float hi, unsigned bits) noexcept {
  const int top = (1 << bits) - 1;
  return (hi - lo) / static_cast<float>(top);
}

/// Codes q_i = clamp(RNE((x_i − z_q) / Δ_q), 0, 2^b − 1) of the group; all 0 when Δ_q = 0.
/// Returns how many codes were clamped.
KVWB_HD inline uint32_t kivi_quantize_codes(const float* x, size_t n, size_t stride, unsigned bits,
                                            float dq, float zq, uint16_t* codes) noexcept {
  const int top = (1 << bits) - 1;
  uint32_t clipped = 0;
  if (dq == 0.0f) {
    for (size_t i = 0; i < n; ++i) codes[i] = 0;
    return 0;
  }
  for (size_t i = 0; i < n; ++i) {
    const float r = std::nearbyint((x[i * stride] - zq) / dq);  // half to even (default mode)
    int q = 0;
    if (r < 0.0f) {
      ++clipped;
    } else if (r > static_cast<float>(top)) {
      q = top;
      ++clipped;
    } else {
      q = static_cast<int>(r);
    }
    codes[i] = static_cast<uint16_t>(q);
  }
  return clipped;
}

/// x_i = z_q + q_i · Δ_q at the stride.
KVWB_HD inline void kivi_dequantize_codes(const uint16_t* codes, size_t n, size_t stride, float dq,
                                          float zq, float* x) noexcept {
  for (size_t i = 0; i < n; ++i) x[i * stride] = zq + static_cast<float>(codes[i]) * dq;
}

}  // namespace kvwb::codec::kernels
