#pragma once
// Scalar Lloyd-Max quantiser of codec-kakeya.md §5.12: nearest centroid by |s - c_m| in f32,
// scanning m ascending and replacing only on strictly smaller distance (ties -> lower index).
#include <cstdint>
#include <span>
#include <vector>

namespace kvwb::codec {

/// The Gaussian (N(0,1)) Lloyd-Max table for b = 1..4 bits, 2^b values ascending, as shipped.
std::span<const float> gaussian_table(unsigned bits);

/// Index of the nearest centroid (ties to the lower index).
inline uint16_t quantize_nearest(float s, std::span<const float> table) noexcept {
  uint16_t best = 0;
  float best_d = s - table[0];
  best_d = best_d < 0 ? -best_d : best_d;
  for (size_t m = 1; m < table.size(); ++m) {
    float d = s - table[m];
    d = d < 0 ? -d : d;
    if (d < best_d) {
      best_d = d;
      best = static_cast<uint16_t>(m);
    }
  }
  return best;
}

/// Validates a calibrated table: exactly 2^bits finite values, strictly ascending. Throws
/// InvalidArgument naming `what`.
void validate_table(std::span<const float> table, unsigned bits, const char* what);

}  // namespace kvwb::codec
