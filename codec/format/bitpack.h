#pragma once
// Bit packing contract (codec-kakeya.md §5.13), shared by every codec:
//   value i occupies stream bits i*b .. i*b+b-1, least significant bit first;
//   stream bit β is bit (β mod 8) of byte floor(β/8); unused high bits of the last byte are 0.
//   Length is ceil(count*b/8) bytes. Widths 1..16.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace kvwb::codec {

/// Bytes needed for `count` values of `bits` bits.
constexpr size_t packed_bytes(size_t count, unsigned bits) noexcept { return (count * bits + 7) / 8; }

/// Appends ceil(values.size()*bits/8) bytes to `out`. Values must be < 2^bits.
void pack_bits(std::span<const uint16_t> values, unsigned bits, std::vector<uint8_t>& out);
/// Reads `count` values of `bits` bits from `in` (which must hold packed_bytes(count, bits)).
void unpack_bits(const uint8_t* in, size_t count, unsigned bits, uint16_t* out) noexcept;

}  // namespace kvwb::codec
