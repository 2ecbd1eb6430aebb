#pragma once
// Shared-kernel conventions (codec/kernels/): every function here is header-only, marked KVWB_HD
// (host + device under nvcc, nothing for the host compiler), C++17, standard library only, and
// never throws or allocates. Loops sum in index order, and the files that must match bytes are
// compiled without floating-point contraction (-ffp-contract=off on the host, --fmad=false under
// nvcc; the kvwb::kernels CMake target carries both), so a CUDA kernel that calls these functions
// reproduces the CPU's bits. Errors are reported through return values; callers raise them.
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define KVWB_HD __host__ __device__
#else
#define KVWB_HD
#endif

namespace kvwb::codec::kernels {

/// The IEEE-754 bits of an f32.
KVWB_HD inline uint32_t f32_bits(float v) noexcept {
  uint32_t x;
  std::memcpy(&x, &v, 4);
  return x;
}

/// The f32 with these IEEE-754 bits.
KVWB_HD inline float bits_f32(uint32_t x) noexcept {
  float v;
  std::memcpy(&v, &x, 4);
  return v;
}

/// Little-endian u16 store and load (the container byte order).
KVWB_HD inline void store_u16(uint8_t* p, uint16_t v) noexcept {
  p[0] = static_cast<uint8_t>(v & 0xFF);
  p[1] = static_cast<uint8_t>(v >> 8);
}
KVWB_HD inline uint16_t load_u16(const uint8_t* p) noexcept {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

}  // namespace kvwb::codec::kernels
