#pragma once
// Bit packing contract (codec-kakeya.md §5.13), shared by every codec:
//   value i occupies stream bits i*b .. i*b+b-1, least significant bit first;
//   stream bit β is bit (β mod 8) of byte floor(β/8); unused high bits of the last byte are 0.
//   Length is ceil(count*b/8) bytes. Widths 1..16.
// The packing itself is the shared kernel of codec/kernels/bitpack.h; this adds the vector form.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "codec/kernels/bitpack.h"

namespace kvwb::codec {

/// Bytes needed for `count` values of `bits` bits.
using kernels::packed_bytes;
/// Reads `count` values of `bits` bits from `in` (which must hold packed_bytes(count, bits)).
using kernels::unpack_bits;

/// Appends ceil(values.size()*bits/8) bytes to `out`. Values must be < 2^bits.
inline void pack_bits(std::span<const uint16_t> values, unsigned bits, std::vector<uint8_t>& out) {
  const size_t start = out.size();
  out.resize(start + packed_bytes(values.size(), bits));
  kernels::pack_bits(values.data(), values.size(), bits, out.data() + start);
}

}  // namespace kvwb::codec
