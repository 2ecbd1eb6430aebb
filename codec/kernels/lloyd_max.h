#pragma once
// Scalar Lloyd-Max quantiser of codec-kakeya.md §5.12: the Gaussian tables as shipped and the
// nearest-centroid search (f32 distances |s - c_m|, ties to the lower index).
#include <cstddef>
#include <cstdint>

#include "codec/kernels/hd.h"

namespace kvwb::codec::kernels {

/// A Lloyd-Max table of `size` = 2^b ascending values (size 0 for an unsupported width).
struct LloydMaxTable {
  float value[16];
  unsigned size;
};

/// The Gaussian (N(0,1)) Lloyd-Max table for b = 1..4 bits, as shipped; size 0 otherwise.
KVWB_HD constexpr LloydMaxTable gaussian_lloyd_max(unsigned bits) noexcept {
  switch (bits) {
    case 1:
      return {{-0.798156f, 0.798156f}, 2};
    case 2:
      return {{-1.5100f, -0.4528f, 0.4528f, 1.5100f}, 4};
    case 3:
      return {{-2.151945f, -1.343757f, -0.756268f, -0.244943f, 0.244943f, 0.756268f, 1.343757f,
               2.151945f},
              8};
    case 4:
      return {{-2.7322f, -2.0690f, -1.6177f, -1.2563f, -0.9422f, -0.6566f, -0.3885f, -0.1281f,
               0.1281f, 0.3885f, 0.6566f, 0.9422f, 1.2563f, 1.6177f, 2.0690f, 2.7322f},
              16};
    default:
      return {{}, 0};
  }
}

/// Index of the nearest of `count` centroids by a linear scan, replacing only on a strictly
/// smaller distance (ties to the lower index). The reference definition.
KVWB_HD inline uint16_t quantize_nearest(float s, const float* table, size_t count) noexcept {
  uint16_t best = 0;
  float best_d = s - table[0];
  best_d = best_d < 0 ? -best_d : best_d;
  for (size_t m = 1; m < count; ++m) {
    float d = s - table[m];
    d = d < 0 ? -d : d;
    if (d < best_d) {
      best_d = d;
      best = static_cast<uint16_t>(m);
    }
  }
  return best;
}

/// Nearest-centroid index, bit-identical to quantize_nearest for a strictly ascending table:
/// branch-free counting plus two distance evaluations. Because f32 subtraction is monotone,
/// |s − c_m| is non-increasing for c_m < s and non-decreasing for c_m ≥ s, so the minimum is at
/// j−1 or j (j = number of centroids below s); equal distances further left are walked so that the
/// lowest index wins exactly as the linear scan does.
KVWB_HD inline uint16_t quantize_fast(float s, const float* table, size_t count) noexcept {
  size_t j = 0;
  for (size_t m = 0; m < count; ++m) j += table[m] < s ? 1u : 0u;
  if (j == 0) return 0;
  auto dist = [&](size_t m) {
    const float d = s - table[m];
    return d < 0 ? -d : d;
  };
  size_t best;
  if (j == count) {
    best = count - 1;
  } else {
    best = dist(j - 1) <= dist(j) ? j - 1 : j;
    if (best == j) return static_cast<uint16_t>(j);
  }
  while (best > 0 && dist(best - 1) == dist(best)) --best;
  return static_cast<uint16_t>(best);
}

}  // namespace kvwb::codec::kernels
