#include "codec/math/wht.h"

#include "base/errors.h"
#include "codec/math/rng.h"

namespace kvwb::codec {

void wht_inplace(float* v, size_t n) {
  if (n == 0 || (n & (n - 1)) != 0)
    throw InvalidArgument("WHT length " + std::to_string(n) + " is not a power of two");
  for (size_t h = 1; h < n; h <<= 1) {
    for (size_t i0 = 0; i0 < n; i0 += 2 * h) {
      for (size_t j = i0; j < i0 + h; ++j) {
        const float a = v[j];
        const float b = v[j + h];
        v[j] = a + b;
        v[j + h] = a - b;
      }
    }
  }
}

void wht_rotate(float* v, size_t n, uint64_t seed) {
  for (size_t j = 0; j < n; ++j) v[j] *= rng::wht_sign(seed, j);
  wht_inplace(v, n);
}

void wht_unrotate(float* v, size_t n, uint64_t seed) {
  wht_inplace(v, n);
  const float inv = 1.0f / static_cast<float>(n);  // exact: n is a power of two
  for (size_t j = 0; j < n; ++j) v[j] = v[j] * inv * rng::wht_sign(seed, j);
}

}  // namespace kvwb::codec
