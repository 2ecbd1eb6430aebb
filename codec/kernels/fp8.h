#pragma once
// FP8 E4M3 (OCP "e4m3fn": bias 7, no infinities, max ±448, codes 0x7F/0xFF are NaN) of
// codec-peers.md §4: round to nearest even, saturating at ±448.
#include <cmath>
#include <cstdint>

#include "codec/kernels/hd.h"

namespace kvwb::codec::kernels {

/// Largest finite E4M3 magnitude.
inline constexpr float kE4m3Max = 448.0f;

/// f32 -> E4M3 code, RNE, saturating at ±448 (*saturated set when it does; may be null).
KVWB_HD inline uint8_t f32_to_e4m3(float v, bool* saturated) noexcept {
  const uint8_t sign = (f32_bits(v) >> 31) ? 0x80 : 0x00;
  const float a = std::fabs(v);
  if (!(a <= kE4m3Max)) {  // beyond ±448 (or NaN, which callers never pass): saturate
    if (saturated) *saturated = true;
    return static_cast<uint8_t>(sign | 0x7E);
  }
  if (a < 0.015625f) {  // below 2^-6: subnormal grid m·2^-9; m = 8 is the smallest normal 0x08
    const auto m = static_cast<uint32_t>(std::nearbyint(a * 512.0f));  // exact scaling, RNE
    return static_cast<uint8_t>(sign | m);
  }
  uint32_t x = f32_bits(a);
  x += 0x7FFFFu + ((x >> 20) & 1u);     // RNE on the 20 dropped mantissa bits
  const uint32_t e = (x >> 23) - 120u;  // rebias 127 -> 7
  const uint32_t m = (x >> 20) & 7u;
  return static_cast<uint8_t>(sign | (e << 3) | m);
}

/// E4M3 code -> f32 (exact); NaN for 0x7F / 0xFF.
KVWB_HD inline float e4m3_to_f32(uint8_t code) noexcept {
  const float sign = (code & 0x80) ? -1.0f : 1.0f;
  const unsigned e = (code >> 3) & 15u;
  const unsigned m = code & 7u;
  if (e == 15 && m == 7) return bits_f32(0x7FC00000u);  // quiet NaN
  if (e == 0) return sign * std::ldexp(static_cast<float>(m), -9);
  return sign * std::ldexp(1.0f + static_cast<float>(m) / 8.0f, static_cast<int>(e) - 7);
}

/// The absmax scale of a (layer, stream): max|x| / 448, or 1 when every value is 0.
KVWB_HD inline float fp8_absmax_scale(float absmax) noexcept {
  return absmax > 0.0f ? absmax / kE4m3Max : 1.0f;
}

}  // namespace kvwb::codec::kernels
