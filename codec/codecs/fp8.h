#pragma once
// FP8 E4M3 "fn" with one scale per (layer, stream), as vLLM stores its KV cache
// (codec-peers.md §4). 1 sign bit, 4 exponent bits (bias 7), 3 mantissa bits; no infinities;
// S.1111.111 is NaN; largest finite 448 (0x7E); subnormals (m/8)·2^−6. Built through
// make_codec("fp8_e4m3", {{"scale_mode", "unit"}}, D); the runner picks the scale
// (fp8_absmax_scale for scale_mode = absmax) and hands it over in UnitInput::layer_scale.
#include <cstdint>

namespace kvwb::codec {

/// Largest finite E4M3 value.
inline constexpr float kE4m3Max = 448.0f;

/// Nearest E4M3 code of a finite v, ties to even mantissa, saturating at ±448 (0x7E / 0xFE).
/// `saturated` is set when |v| > 448 (the value was clamped), else left unchanged.
uint8_t f32_to_e4m3(float v, bool* saturated = nullptr) noexcept;
/// Value of an E4M3 code; NaN for the codes 0x7F and 0xFF.
float e4m3_to_f32(uint8_t code) noexcept;
/// The absmax scale of §4: max|x| / 448 over the layer-stream, 1.0 when that maximum is 0.
float fp8_absmax_scale(float absmax) noexcept;

}  // namespace kvwb::codec
