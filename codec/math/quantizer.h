#pragma once
// Scalar Lloyd-Max quantiser of codec-kakeya.md §5.12: nearest centroid by |s - c_m| in f32,
// scanning m ascending and replacing only on strictly smaller distance (ties -> lower index).
// Tables and search are the shared kernels of codec/kernels/lloyd_max.h.
#include <cstdint>
#include <span>
#include <vector>

#include "codec/kernels/lloyd_max.h"

namespace kvwb::codec {

/// The Gaussian (N(0,1)) Lloyd-Max table for b = 1..4 bits, 2^b values ascending, as shipped.
/// Throws InvalidArgument for other widths.
std::span<const float> gaussian_table(unsigned bits);

/// Index of the nearest centroid (ties to the lower index).
inline uint16_t quantize_nearest(float s, std::span<const float> table) noexcept {
  return kernels::quantize_nearest(s, table.data(), table.size());
}

/// Validates a calibrated table: exactly 2^bits finite values, strictly ascending. Throws
/// InvalidArgument naming `what`.
void validate_table(std::span<const float> table, unsigned bits, const char* what);

}  // namespace kvwb::codec
