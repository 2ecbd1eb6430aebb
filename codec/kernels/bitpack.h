#pragma once
// Bit packing contract (codec-kakeya.md §5.13), shared by every codec:
//   value i occupies stream bits i*b .. i*b+b-1, least significant bit first;
//   stream bit β is bit (β mod 8) of byte floor(β/8); unused high bits of the last byte are 0.
//   Length is ceil(count*b/8) bytes. Widths 1..16.
#include <cstddef>
#include <cstdint>

#include "codec/kernels/hd.h"

namespace kvwb::codec::kernels {

/// Bytes needed for `count` values of `bits` bits.
KVWB_HD constexpr size_t packed_bytes(size_t count, unsigned bits) noexcept {
  return (count * bits + 7) / 8;
}

/// Writes packed_bytes(count, bits) bytes to dst (every byte of that range is written). Values
/// must be < 2^bits, bits in 1..16.
KVWB_HD inline void pack_bits(const uint16_t* values, size_t count, unsigned bits,
                              uint8_t* dst) noexcept {
  // A 64-bit accumulator flushed four complete bytes at a time (the bytes spelled out, so the
  // header needs no memcpy on the device; compilers merge them into one store).
  uint64_t acc = 0;
  unsigned held = 0;  // bits in acc, < 32 between values
  for (size_t i = 0; i < count; ++i) {
    acc |= static_cast<uint64_t>(values[i]) << held;
    held += bits;
    if (held >= 32) {
      const auto word = static_cast<uint32_t>(acc);
      dst[0] = static_cast<uint8_t>(word);
      dst[1] = static_cast<uint8_t>(word >> 8);
      dst[2] = static_cast<uint8_t>(word >> 16);
      dst[3] = static_cast<uint8_t>(word >> 24);
      dst += 4;
      acc >>= 32;
      held -= 32;
    }
  }
  for (; held > 0; held = held > 8 ? held - 8 : 0, acc >>= 8) *dst++ = static_cast<uint8_t>(acc);
}

/// Reads `count` values of `bits` bits from `in` (which must hold packed_bytes(count, bits));
/// reads no byte past that length.
KVWB_HD inline void unpack_bits(const uint8_t* in, size_t count, unsigned bits,
                                uint16_t* out) noexcept {
  const uint64_t mask = (uint64_t{1} << bits) - 1u;
  const uint8_t* const end = in + packed_bytes(count, bits);
  uint64_t acc = 0;
  unsigned held = 0;  // bits in acc
  for (size_t i = 0; i < count; ++i) {
    if (held < bits) {
      if (end - in >= 4) {
        const uint32_t word = static_cast<uint32_t>(in[0]) | static_cast<uint32_t>(in[1]) << 8 |
                              static_cast<uint32_t>(in[2]) << 16 |
                              static_cast<uint32_t>(in[3]) << 24;
        acc |= static_cast<uint64_t>(word) << held;
        held += 32;
        in += 4;
      } else {
        for (; held < bits; held += 8) acc |= static_cast<uint64_t>(*in++) << held;
      }
    }
    out[i] = static_cast<uint16_t>(acc & mask);
    acc >>= bits;
    held -= bits;
  }
}

}  // namespace kvwb::codec::kernels
