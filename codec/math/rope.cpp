#include "codec/math/rope.h"

#include <cmath>
#include <vector>

#include "base/errors.h"

namespace kvwb::codec {

RopeStyle parse_rope_style(std::string_view s) {
  if (s == "half_split") return RopeStyle::kHalfSplit;
  if (s == "interleaved") return RopeStyle::kInterleaved;
  if (s == "none") return RopeStyle::kNone;
  throw InvalidArgument("unknown rope_style '" + std::string(s) +
                        "' (expected half_split, interleaved or none)");
}

std::string_view rope_style_name(RopeStyle s) noexcept {
  switch (s) {
    case RopeStyle::kHalfSplit: return "half_split";
    case RopeStyle::kInterleaved: return "interleaved";
    case RopeStyle::kNone: return "none";
  }
  return "none";
}

void apply_rope(float* rows, size_t n, const int32_t* positions, const RopeParams& p, bool inverse) {
  if (p.style == RopeStyle::kNone) return;
  const uint32_t d = p.head_dim;
  const uint32_t r = p.rotary_dim == 0 ? d : p.rotary_dim;
  if (r < 2 || r % 2 != 0 || r > d)
    throw InvalidArgument("rotary_dim " + std::to_string(r) + " must be even and in 2.." +
                          std::to_string(d));
  const uint32_t half = r / 2;
  std::vector<double> inv_freq(half);
  for (uint32_t j = 0; j < half; ++j)
    inv_freq[j] = std::pow(p.theta, -2.0 * static_cast<double>(j) / static_cast<double>(r));
  std::vector<float> cs(half), sn(half);
  int64_t last_pos = INT64_MIN;
  for (size_t i = 0; i < n; ++i) {
    const int64_t pos = positions[i];
    if (pos != last_pos) {
      for (uint32_t j = 0; j < half; ++j) {
        const double a = static_cast<double>(pos) * inv_freq[j];
        cs[j] = static_cast<float>(std::cos(a));
        sn[j] = static_cast<float>(inverse ? -std::sin(a) : std::sin(a));
      }
      last_pos = pos;
    }
    float* x = rows + i * d;
    for (uint32_t j = 0; j < half; ++j) {
      const uint32_t ia = p.style == RopeStyle::kHalfSplit ? j : 2 * j;
      const uint32_t ib = p.style == RopeStyle::kHalfSplit ? j + half : 2 * j + 1;
      const float a = x[ia];
      const float b = x[ib];
      x[ia] = a * cs[j] - b * sn[j];
      x[ib] = a * sn[j] + b * cs[j];
    }
  }
}

}  // namespace kvwb::codec
