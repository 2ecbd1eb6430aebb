#pragma once
// IEEE binary16 (fp16) and bfloat16 conversions with the rounding rules of codec-kakeya.md §0:
// round-to-nearest-even, fp16 subnormals kept. The conversions are the shared kernels of
// codec/kernels/half.h; the *_checked variants here refuse values that the storage type cannot hold (|v| > 65504 for fp16; a bf16 result that would be infinite) with
// Fp16Range, and non-finite values with NonFiniteInput; nothing ever saturates silently.
#include <cstdint>

#include "codec/kernels/half.h"

namespace kvwb::codec {

inline constexpr float kFp16Max = kernels::kFp16Max;

/// f32 -> fp16 bits, RNE, subnormals kept. |v| >= 65520 gives infinity; NaN stays NaN.
using kernels::f32_to_f16_bits;
/// fp16 bits -> f32 (exact).
using kernels::f16_bits_to_f32;
/// f32 -> bf16 bits, RNE on the low 16 bits; NaN stays NaN.
using kernels::f32_to_bf16_bits;
/// bf16 bits -> f32 (exact).
using kernels::bf16_bits_to_f32;

/// fp16 bits of `v`; throws Fp16Range when |v| > 65504 and NonFiniteInput for NaN/Inf.
/// `field` names what is being stored (e.g. "t", "residual norm") for the message.
uint16_t f16_checked(float v, const char* field);
/// bf16 bits of `v`; throws Fp16Range when the result would be infinite, NonFiniteInput for NaN/Inf.
uint16_t bf16_checked(float v, const char* field);

/// v rounded to fp16 and back (unchecked).
inline float round_f16(float v) noexcept { return f16_bits_to_f32(f32_to_f16_bits(v)); }
/// v rounded to bf16 and back (unchecked).
inline float round_bf16(float v) noexcept { return bf16_bits_to_f32(f32_to_bf16_bits(v)); }

}  // namespace kvwb::codec
