#include "codec/math/rng.h"

namespace kvwb::codec::rng {

void synthetic(float* out, uint64_t n, uint64_t d, uint64_t rank, double noise, uint64_t seed) {
  const uint64_t key = seed ^ kTagTest;
  for (uint64_t i = 0; i < n; ++i) {
    const uint64_t base = i * (rank + d);
    for (uint64_t j = 0; j < d; ++j) {
      double v = 0.0;
      if (j < rank) v += -1.0 + 2.0 * u01c(splitmix(key, base + j));
      v += -noise + 2.0 * noise * u01c(splitmix(key, base + rank + j));
      out[i * d + j] = static_cast<float>(v);
    }
  }
}

}  // namespace kvwb::codec::rng
