#include "codec/math/wht.h"

#include <string>

#include "base/errors.h"

namespace kvwb::codec {

namespace {
void check_length(size_t n) {
  if (!kernels::is_pow2(n))
    throw InvalidArgument("WHT length " + std::to_string(n) + " is not a power of two");
}
}  // namespace

void wht_inplace(float* v, size_t n) {
  check_length(n);
  kernels::wht_pow2(v, n);
}

void wht_rotate(float* v, size_t n, uint64_t seed) {
  check_length(n);
  kernels::wht_rotate_seed(v, n, seed);
}

void wht_unrotate(float* v, size_t n, uint64_t seed) {
  check_length(n);
  kernels::wht_unrotate_seed(v, n, seed);
}

}  // namespace kvwb::codec
