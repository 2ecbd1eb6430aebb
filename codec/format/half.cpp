#include "codec/format/half.h"

#include <cmath>
#include <sstream>

#include "base/errors.h"

namespace kvwb::codec {

uint16_t f32_to_f16_bits(float v) noexcept {
  uint32_t x;
  std::memcpy(&x, &v, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  uint32_t ax = x & 0x7FFFFFFFu;
  if (ax >= 0x7F800000u) {  // Inf or NaN
    return static_cast<uint16_t>(sign | 0x7C00u | (ax > 0x7F800000u ? 0x0200u : 0u));
  }
  if (ax >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // >= 65520: infinity
  if (ax < 0x38800000u) {  // below 2^-14: fp16 subnormal (or zero)
    float a;
    std::memcpy(&a, &ax, 4);
    // a * 2^24 is exact; nearbyint rounds half to even in the default rounding mode.
    const auto q = static_cast<uint32_t>(std::nearbyint(a * 16777216.0f));
    return static_cast<uint16_t>(sign | q);  // q == 1024 is the smallest normal, as it should be
  }
  const uint32_t odd = (ax >> 13) & 1u;
  ax += 0xC8000FFFu + odd;  // rebias exponent (-112 << 23) and add the RNE bias
  return static_cast<uint16_t>(sign | (ax >> 13));
}

float f16_bits_to_f32(uint16_t h) noexcept {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t mant = h & 0x3FFu;
  uint32_t x;
  if (exp == 0) {
    if (mant == 0) {
      x = sign;
    } else {  // subnormal: mant * 2^-24
      float f = static_cast<float>(mant) * 5.9604644775390625e-8f;
      std::memcpy(&x, &f, 4);
      x |= sign;
    }
  } else if (exp == 31) {
    x = sign | 0x7F800000u | (mant << 13);
  } else {
    x = sign | ((exp + 112u) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

uint16_t f32_to_bf16_bits(float v) noexcept {
  uint32_t x;
  std::memcpy(&x, &v, 4);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x0040u);  // NaN
  x += 0x7FFFu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

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
