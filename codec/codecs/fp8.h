#pragma once
// FP8 E4M3 "fn" with one scale per (layer, stream), as vLLM stores its KV cache
// (codec-peers.md §4). 1 sign bit, 4 exponent bits (bias 7), 3 mantissa bits; no infinities;
// S.1111.111 is NaN; largest finite 448 (0x7E); subnormals (m/8)·2^−6. Built through
// make_codec("fp8_e4m3", {{"scale_mode", "unit"}}, D); the codec picks the scale of a batch
// (Codec::layer_scale: fp8_absmax_scale for scale_mode = absmax) and the executor hands it to every
// unit in UnitInput::layer_scale.
// The conversions are the shared kernels of codec/kernels/fp8.h.
#include <cstdint>

#include "codec/kernels/fp8.h"

namespace kvwb::codec {

/// Largest finite E4M3 value.
inline constexpr float kE4m3Max = kernels::kE4m3Max;

/// Nearest E4M3 code of a finite v, ties to even mantissa, saturating at ±448 (0x7E / 0xFE).
/// `saturated` is set when |v| > 448 (the value was clamped), else left unchanged.
inline uint8_t f32_to_e4m3(float v, bool* saturated = nullptr) noexcept {
  return kernels::f32_to_e4m3(v, saturated);
}
/// Value of an E4M3 code; NaN for the codes 0x7F and 0xFF.
inline float e4m3_to_f32(uint8_t code) noexcept { return kernels::e4m3_to_f32(code); }
/// The absmax scale of §4: max|x| / 448 over the layer-stream, 1.0 when that maximum is 0.
inline float fp8_absmax_scale(float absmax) noexcept { return kernels::fp8_absmax_scale(absmax); }

}  // namespace kvwb::codec
