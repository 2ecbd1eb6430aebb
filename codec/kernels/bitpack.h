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
  const size_t nbytes = packed_bytes(count, bits);
  for (size_t i = 0; i < nbytes; ++i) dst[i] = 0;
  uint64_t bitpos = 0;
  for (size_t i = 0; i < count; ++i) {
    uint32_t word = static_cast<uint32_t>(values[i]) << (bitpos & 7);  // at most 16 + 7 bits
    size_t byte = bitpos >> 3;
    while (word) {
      dst[byte++] |= static_cast<uint8_t>(word & 0xFFu);
      word >>= 8;
    }
    bitpos += bits;
  }
}

/// Reads `count` values of `bits` bits from `in` (which must hold packed_bytes(count, bits)).
KVWB_HD inline void unpack_bits(const uint8_t* in, size_t count, unsigned bits,
                                uint16_t* out) noexcept {
  const uint32_t mask = (bits >= 16) ? 0xFFFFu : ((1u << bits) - 1u);
  const size_t nbytes = packed_bytes(count, bits);
  uint64_t bitpos = 0;
  for (size_t i = 0; i < count; ++i) {
    const size_t byte = bitpos >> 3;
    uint32_t word = 0;
    for (size_t k = 0; k < 3 && byte + k < nbytes; ++k)
      word |= static_cast<uint32_t>(in[byte + k]) << (8 * k);
    out[i] = static_cast<uint16_t>((word >> (bitpos & 7)) & mask);
    bitpos += bits;
  }
}

}  // namespace kvwb::codec::kernels
