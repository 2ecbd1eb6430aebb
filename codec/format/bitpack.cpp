#include "codec/format/bitpack.h"

#include <cassert>

namespace kvwb::codec {

void pack_bits(std::span<const uint16_t> values, unsigned bits, std::vector<uint8_t>& out) {
  assert(bits >= 1 && bits <= 16);
  const size_t start = out.size();
  out.resize(start + packed_bytes(values.size(), bits), 0);
  uint8_t* dst = out.data() + start;
  uint64_t bitpos = 0;
  for (uint16_t v : values) {
    assert(bits == 16 || v < (1u << bits));
    uint32_t word = static_cast<uint32_t>(v) << (bitpos & 7);  // at most 16 + 7 bits
    size_t byte = bitpos >> 3;
    while (word) {
      dst[byte++] |= static_cast<uint8_t>(word & 0xFFu);
      word >>= 8;
    }
    bitpos += bits;
  }
}

void unpack_bits(const uint8_t* in, size_t count, unsigned bits, uint16_t* out) noexcept {
  const uint32_t mask = (bits >= 16) ? 0xFFFFu : ((1u << bits) - 1u);
  const size_t nbytes = packed_bytes(count, bits);
  uint64_t bitpos = 0;
  for (size_t i = 0; i < count; ++i) {
    const size_t byte = bitpos >> 3;
    uint32_t word = 0;
    for (size_t k = 0; k < 3 && byte + k < nbytes; ++k) word |= static_cast<uint32_t>(in[byte + k]) << (8 * k);
    out[i] = static_cast<uint16_t>((word >> (bitpos & 7)) & mask);
    bitpos += bits;
  }
}

}  // namespace kvwb::codec
