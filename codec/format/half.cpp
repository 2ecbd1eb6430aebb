#include "codec/format/half.h"

#include <cmath>
#include <sstream>

#include "base/errors.h"

namespace kvwb::codec {

namespace {
[[noreturn]] void throw_non_finite(float v, const char* field) {
  std::ostringstream os;
  os << "non-finite value " << v << " in field '" << field << "'";
  throw NonFiniteInput(os.str());
}
}  // namespace

uint16_t f16_checked(float v, const char* field) {
  if (!std::isfinite(v)) throw_non_finite(v, field);
  if (std::fabs(v) > kFp16Max) {
    std::ostringstream os;
    os.precision(9);
    os << "value " << v << " of field '" << field << "' exceeds the fp16 range (|v| <= 65504)";
    throw Fp16Range(os.str());
  }
  return f32_to_f16_bits(v);
}

uint16_t bf16_checked(float v, const char* field) {
  if (!std::isfinite(v)) throw_non_finite(v, field);
  const uint16_t b = f32_to_bf16_bits(v);
  if ((b & 0x7FFFu) == 0x7F80u) {
    std::ostringstream os;
    os.precision(9);
    os << "value " << v << " of field '" << field << "' rounds to infinity in bf16";
    throw Fp16Range(os.str());
  }
  return b;
}

}  // namespace kvwb::codec
