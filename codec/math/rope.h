#pragma once
// RoPE exactly as capture-format.md "RoPE, exactly": angle a = p·θ^(-2j/R) in f64, cos/sin in
// f64 rounded to f32, rotation in f32. half_split pairs (j, j+R/2); interleaved pairs (2j, 2j+1);
// dims R..D-1 pass through. The inverse is the transpose (negated sin).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace kvwb::codec {

enum class RopeStyle { kNone, kHalfSplit, kInterleaved };

/// "half_split" / "interleaved" / "none"; throws InvalidArgument for anything else.
RopeStyle parse_rope_style(std::string_view s);
std::string_view rope_style_name(RopeStyle s) noexcept;

struct RopeParams {
  RopeStyle style = RopeStyle::kHalfSplit;
  double theta = 10000.0;
  uint32_t rotary_dim = 0;  // R: even, 2..head_dim (0 = head_dim)
  uint32_t head_dim = 0;    // D
};

/// Rotates rows [n, D] (row-major f32) in place; row i sits at position positions[i].
/// inverse=false applies RoPE (k_pre -> k), inverse=true removes it (k -> k_pre).
/// Throws InvalidArgument when rotary_dim is odd, < 2 or > head_dim.
void apply_rope(float* rows, size_t n, const int32_t* positions, const RopeParams& p, bool inverse);

}  // namespace kvwb::codec
