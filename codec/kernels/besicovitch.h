#pragma once
// Besicovitch per-group math (codec-besicovitch.md §4, §5): the direction of a group of g
// coordinates in a codebook of M lines ([M, g] row-major f32, built on the host and handed over as
// a plain array), its signed magnitude, and the reconstruction of a group.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "codec/kernels/hd.h"

namespace kvwb::codec::kernels {

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

/// out[j] = mean[j] + alpha · direction[j] for j < g (mean may be null: zeros).
KVWB_HD inline void besi_decode_group(const float* direction, unsigned g, float alpha,
                                      const float* mean, float* out) noexcept {
  for (unsigned j = 0; j < g; ++j) {
    const float m = mean ? mean[j] : 0.0f;
    out[j] = m + alpha * direction[j];
  }
}

}  // namespace kvwb::codec::kernels
