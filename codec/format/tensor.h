#pragma once
// Dense f32 tensors of captured attention data. Layout is always row-major [S, H, T, D]:
// sequence, head, token, head dimension; one row = one token of one head.
#include <cstddef>
#include <vector>

namespace kvwb::codec {

struct Tensor4 {
  size_t s = 0, h = 0, t = 0, d = 0;
  std::vector<float> data;  // s*h*t*d values

  Tensor4() = default;
  Tensor4(size_t s_, size_t h_, size_t t_, size_t d_) : s(s_), h(h_), t(t_), d(d_), data(s_ * h_ * t_ * d_) {}
  size_t size() const noexcept { return data.size(); }
  size_t rows() const noexcept { return s * h * t; }
  /// Pointer to row (si, hi, ti): D contiguous floats.
  float* row(size_t si, size_t hi, size_t ti) noexcept { return data.data() + ((si * h + hi) * t + ti) * d; }
  const float* row(size_t si, size_t hi, size_t ti) const noexcept {
    return data.data() + ((si * h + hi) * t + ti) * d;
  }
};

}  // namespace kvwb::codec
