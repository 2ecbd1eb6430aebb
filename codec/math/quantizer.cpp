#include "codec/math/quantizer.h"

#include <array>
#include <cmath>
#include <string>

#include "base/errors.h"

namespace kvwb::codec {

namespace {
constexpr std::array<float, 2> kB1 = {-0.798156f, 0.798156f};
constexpr std::array<float, 4> kB2 = {-1.5100f, -0.4528f, 0.4528f, 1.5100f};
constexpr std::array<float, 8> kB3 = {-2.151945f, -1.343757f, -0.756268f, -0.244943f,
                                      0.244943f,  0.756268f,  1.343757f,  2.151945f};
constexpr std::array<float, 16> kB4 = {-2.7322f, -2.0690f, -1.6177f, -1.2563f, -0.9422f, -0.6566f,
                                       -0.3885f, -0.1281f, 0.1281f,  0.3885f,  0.6566f,  0.9422f,
                                       1.2563f,  1.6177f,  2.0690f,  2.7322f};
}  // namespace

std::span<const float> gaussian_table(unsigned bits) {
  switch (bits) {
    case 1: return kB1;
    case 2: return kB2;
    case 3: return kB3;
    case 4: return kB4;
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
