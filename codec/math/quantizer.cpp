#include "codec/math/quantizer.h"

#include <cmath>
#include <string>

#include "base/errors.h"

namespace kvwb::codec {

namespace {
constexpr kernels::LloydMaxTable kB1 = kernels::gaussian_lloyd_max(1);
constexpr kernels::LloydMaxTable kB2 = kernels::gaussian_lloyd_max(2);
constexpr kernels::LloydMaxTable kB3 = kernels::gaussian_lloyd_max(3);
constexpr kernels::LloydMaxTable kB4 = kernels::gaussian_lloyd_max(4);
}  // namespace

std::span<const float> gaussian_table(unsigned bits) {
  switch (bits) {
    case 1: return {kB1.value, kB1.size};
    case 2: return {kB2.value, kB2.size};
    case 3: return {kB3.value, kB3.size};
    case 4: return {kB4.value, kB4.size};
    default: throw InvalidArgument("Lloyd-Max table: bit width " + std::to_string(bits) + " not in 1..4");
  }
}

void validate_table(std::span<const float> table, unsigned bits, const char* what) {
  const size_t want = size_t{1} << bits;
  if (table.size() != want)
    throw InvalidArgument(std::string(what) + ": calibrated table has " + std::to_string(table.size()) +
                          " values, expected 2^" + std::to_string(bits) + " = " + std::to_string(want));
  for (size_t i = 0; i < table.size(); ++i) {
    if (!std::isfinite(table[i]))
      throw InvalidArgument(std::string(what) + ": calibrated table value " + std::to_string(i) + " is not finite");
    if (i > 0 && !(table[i] > table[i - 1]))
      throw InvalidArgument(std::string(what) + ": calibrated table is not strictly ascending at index " +
                            std::to_string(i));
  }
}

}  // namespace kvwb::codec
