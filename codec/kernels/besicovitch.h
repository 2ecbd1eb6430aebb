#pragma once
// Besicovitch per-group math (codec-besicovitch.md §4, §5): the direction of a group of g
// coordinates in a codebook of M lines ([M, g] row-major f32, built on the host and handed over as
// a plain array), its signed magnitude, the block mean, the per-vector scale and magnitude index of
// the quantized mode, and the reconstruction of a group. The CPU codec (codecs/besicovitch.cpp, its
// scalar SIMD tails) and the CUDA kernels (cuda/besi_kernels.cuh) call these, so both sides do the
// same f32/f64 operations in the same order.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "codec/kernels/hd.h"
#include "codec/kernels/lloyd_max.h"

namespace kvwb::codec::kernels {

/// Largest group size g (codec-besicovitch.md §1).
inline constexpr unsigned kBesiMaxGroup = 8;

/// Direction and signed magnitude of one group (§4 steps 1-2).
struct BesiAssignment {
  uint16_t id = 0;    // argmax_i |<x, d_i>|, ascending scan, strict >, from best = 0 value 0
  float alpha = 0.f;  // <x, d_id>, f32 summed in index order
};

/// Assigns one group of `g` f32 coordinates against the `m` codebook lines.
KVWB_HD inline BesiAssignment besi_assign(const float* group, unsigned g, const float* codebook,
                                          size_t m) noexcept {
  BesiAssignment best;
  float best_abs = 0.0f;
  for (size_t i = 0; i < m; ++i) {
    const float* d = codebook + i * g;
    float dot = 0.0f;
    for (unsigned j = 0; j < g; ++j) dot += group[j] * d[j];
    const float a = std::fabs(dot);
    if (a > best_abs) {
      best_abs = a;
      best.id = static_cast<uint16_t>(i);
      best.alpha = dot;
    }
  }
  return best;
}

/// besi_assign of the group x − mean (f32 x[j] − mean[j] per coordinate; mean may be null: x).
KVWB_HD inline BesiAssignment besi_assign_centred(const float* x, const float* mean, unsigned g,
                                                  const float* codebook, size_t m) noexcept {
  float v[kBesiMaxGroup];
  for (unsigned j = 0; j < g; ++j) v[j] = mean ? x[j] - mean[j] : x[j];
  return besi_assign(v, g, codebook, m);
}

/// The block mean of one column from its f64 sum over `rows` rows, rounded to f32 (§2; the caller
/// sums the column in row order and rounds the result to fp16).
KVWB_HD inline float besi_mean_value(double sum, size_t rows) noexcept {
  return static_cast<float>(sum / static_cast<double>(rows));
}

/// The per-vector scale of the quantized mode from max_k |alpha_k| (§4): max(amax, 1e-12).
KVWB_HD inline float besi_scale(float amax) noexcept { return amax < 1e-12f ? 1e-12f : amax; }

/// The Lloyd-Max index of magnitude `alpha` at scale `s` (unrounded): nearest of the `count`
/// centroids to the f32 alpha / s, ties to the lower index (§4).
KVWB_HD inline uint16_t besi_magnitude_index(float alpha, float s, const float* table,
                                             size_t count) noexcept {
  return quantize_nearest(alpha / s, table, count);
}

/// The decoded magnitude of the quantized mode: centroid · fp16-decoded scale (§5).
KVWB_HD inline float besi_dequantize(float centroid, float s) noexcept { return centroid * s; }

/// out[j] = mean[j] + alpha · direction[j] for j < g (mean may be null: zeros).
KVWB_HD inline void besi_decode_group(const float* direction, unsigned g, float alpha,
                                      const float* mean, float* out) noexcept {
  for (unsigned j = 0; j < g; ++j) {
    const float m = mean ? mean[j] : 0.0f;
    out[j] = m + alpha * direction[j];
  }
}

}  // namespace kvwb::codec::kernels
