#pragma once
// IEEE binary16 (fp16) and bfloat16 conversions of codec-kakeya.md §0: round to nearest even,
// fp16 subnormals kept, NaN stays NaN. Range checks that raise errors live in codec/format/half.h.
#include <cmath>
#include <cstdint>

#include "codec/kernels/hd.h"

namespace kvwb::codec::kernels {

/// Largest finite fp16 value.
inline constexpr float kFp16Max = 65504.0f;

/// f32 -> fp16 bits, RNE, subnormals kept. |v| >= 65520 gives infinity; NaN stays NaN.
KVWB_HD inline uint16_t f32_to_f16_bits(float v) noexcept {
  const uint32_t x = f32_bits(v);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  uint32_t ax = x & 0x7FFFFFFFu;
  if (ax >= 0x7F800000u)  // Inf or NaN
    return static_cast<uint16_t>(sign | 0x7C00u | (ax > 0x7F800000u ? 0x0200u : 0u));
  if (ax >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // >= 65520: infinity
  if (ax < 0x38800000u) {  // below 2^-14: fp16 subnormal (or zero)
    // a * 2^24 is exact; nearbyint rounds half to even in the default rounding mode.
    const auto q = static_cast<uint32_t>(std::nearbyint(bits_f32(ax) * 16777216.0f));
    return static_cast<uint16_t>(sign | q);  // q == 1024 is the smallest normal, as it should be
  }
  const uint32_t odd = (ax >> 13) & 1u;
  ax += 0xC8000FFFu + odd;  // rebias exponent (-112 << 23) and add the RNE bias
  return static_cast<uint16_t>(sign | (ax >> 13));
}

/// fp16 bits -> f32 (exact).
KVWB_HD inline float f16_bits_to_f32(uint16_t h) noexcept {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t mant = h & 0x3FFu;
  if (exp == 0) {
    if (mant == 0) return bits_f32(sign);
    // subnormal: mant * 2^-24 (exact)
    return bits_f32(f32_bits(static_cast<float>(mant) * 5.9604644775390625e-8f) | sign);
  }
  if (exp == 31) return bits_f32(sign | 0x7F800000u | (mant << 13));
  return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

/// f32 -> bf16 bits, RNE on the low 16 bits; NaN stays NaN.
KVWB_HD inline uint16_t f32_to_bf16_bits(float v) noexcept {
  uint32_t x = f32_bits(v);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x0040u);  // NaN
  x += 0x7FFFu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

/// bf16 bits -> f32 (exact).
KVWB_HD inline float bf16_bits_to_f32(uint16_t h) noexcept {
  return bits_f32(static_cast<uint32_t>(h) << 16);
}

/// Whether fp16 bits encode a finite value.
KVWB_HD inline bool f16_bits_finite(uint16_t h) noexcept { return (h & 0x7C00u) != 0x7C00u; }
/// Whether bf16 bits encode a finite value.
KVWB_HD inline bool bf16_bits_finite(uint16_t h) noexcept { return (h & 0x7F80u) != 0x7F80u; }

}  // namespace kvwb::codec::kernels
