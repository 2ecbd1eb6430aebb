#pragma once
// Kakeya-PCA per-row math (codec-kakeya.md §5.8–§5.12, §6) that is not the per-block fit: norms
// summed in index order, the segment residual, and the row's residual code.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "codec/kernels/hd.h"

namespace kvwb::codec::kernels {

/// Euclidean norm of v[0..d) accumulated in f32 in index order.
KVWB_HD inline float norm_f32(const float* v, size_t d) noexcept {
  float s = 0.0f;
  for (size_t j = 0; j < d; ++j) s += v[j] * v[j];
  return std::sqrt(s);
}

/// r = c − t_q · centre over d entries (f32).
KVWB_HD inline void segment_residual(const float* c, size_t d, const float* centre, float t_q,
                                     float* r) noexcept {
  for (size_t j = 0; j < d; ++j) r[j] = c[j] - t_q * centre[j];
}

/// Decoded PCA coefficients of one row (§6): c_k = t_q · centre_k + q_k for k < d_eff.
KVWB_HD inline void kakeya_row_coefficients(const float* centre, const float* q, float t_q,
                                            size_t d_eff, float* c) noexcept {
  for (size_t k = 0; k < d_eff; ++k) c[k] = t_q * centre[k] + q[k];
}

}  // namespace kvwb::codec::kernels
