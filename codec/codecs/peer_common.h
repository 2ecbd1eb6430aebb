#pragma once
// Internal helpers shared by the peer codecs of codec-peers.md (turbo*, ggml block quantisers,
// kivi, fp8_e4m3, bf16): input validation, fp16 fields with the range rule of §0, the KVCB
// container header every peer writes (decisions.md #6) and the matching decode-side checks.
//
// Container convention common to all peers (docs/container-peers.md):
//   block_size = 1 and n_blocks = rows stored by the codec proper (one "row record" per coded
//   head vector, or KIVI's quantised prefix rows); n_tail_rows = rows stored as an fp16 window
//   (KIVI only, 0 otherwise). So rows = n_blocks · block_size + n_tail_rows, as for Kakeya-PCA.
//   The payload is exactly the codec's native bytes; reported bytes = payload size.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "base/errors.h"
#include "codec/format/half.h"
#include "codec/simd/rows.h"

namespace kvwb::codec::peer {

/// "layer 3, stream K, sequence 0, kv head 1" for error messages.
inline std::string describe_unit(const UnitInfo& u) {
  std::string s = "layer " + std::to_string(u.layer) + ", stream " +
                  (u.stream == Stream::kK ? "K" : "V") + ", sequence " + std::to_string(u.sequence);
  if (u.block_rows == BlockRows::kPooledHeads)
    s += ", pooled heads";
  else
    s += ", kv head " + std::to_string(u.kv_head);
  return s;
}

/// The shape half of check_input: dim equals the codec's head_dim, rows non-null when n > 0,
/// n < 2^32. Codecs whose vector kernels detect non-finite input on their own call this, then
/// check_input (which also scans every value) only when a kernel reports trouble, so the error
/// raised is the same as with the scan first.
inline void check_shape(const UnitInput& in, size_t head_dim, std::string_view codec) {
  if (in.dim != head_dim)
    throw InvalidArgument("codec " + std::string(codec) + ": unit has dimension " +
                          std::to_string(in.dim) +
                          " but the codec was built for D = " + std::to_string(head_dim));
  if (in.n > 0 && in.rows == nullptr)
    throw InvalidArgument("codec " + std::string(codec) + ": unit has " + std::to_string(in.n) +
                          " rows but no data");
  if (in.n > 0xFFFFFFFFull)
    throw InvalidArgument("codec " + std::string(codec) + ": unit has more than 2^32-1 rows");
}

/// Checks the common encode preconditions: check_shape, and every value finite (NonFiniteInput
/// naming row and column otherwise).
inline void check_input(const UnitInput& in, size_t head_dim, std::string_view codec) {
  check_shape(in, head_dim, codec);
  const size_t total = in.n * in.dim;
  const size_t i = total == 0 ? 0 : simd::first_non_finite(simd::active_path(), in.rows, total);
  if (i < total)
    throw NonFiniteInput("codec " + std::string(codec) + ": non-finite input value " +
                         std::to_string(in.rows[i]) + " at row " + std::to_string(i / in.dim) +
                         ", column " + std::to_string(i % in.dim) + " (" +
                         describe_unit(in.info) + ")");
}

/// fp16 bits of a stored field; |v| > 65504 is an Fp16Range error naming the codec, the field,
/// the row and the unit (codec-peers.md §0), raised through f16_checked.
inline uint16_t f16_field(float v, std::string_view codec, const char* field, size_t row,
                          const UnitInfo& unit) {
  if (std::fabs(v) <= kFp16Max) return f32_to_f16_bits(v);  // NaN fails the test
  const std::string what = std::string(codec) + " " + field + " (row " + std::to_string(row) +
                           ", " + describe_unit(unit) + ")";
  // An infinite field comes from finite input whose f32 arithmetic overflowed: a range error.
  if (std::isinf(v))
    throw Fp16Range("value " + std::to_string(v) + " of field '" + what +
                    "' exceeds the fp16 range (|v| <= 65504)");
  return f16_checked(v, what.c_str());
}

/// Header of a peer container: unit placement from `u`, block_size 1, n_blocks coded rows.
inline ContainerHeader make_header(CodecId id, size_t head_dim, const UnitInfo& u,
                                   uint64_t coded_rows, uint64_t tail_rows) {
  return unit_header(id, head_dim, u, 1, coded_rows, tail_rows);
}

/// Starts an EncodedUnit: writes the header + params and reserves `payload` bytes.
inline EncodedUnit start_unit(const ContainerHeader& h, std::span<const uint8_t> params,
                              uint64_t payload) {
  EncodedUnit e;
  e.bytes.reserve(kCommonHeaderBytes + params.size() + payload);
  write_container_header(h, params, e.bytes);
  e.header_bytes = e.bytes.size();
  return e;
}

/// Fills the byte accounting once the payload is written (reported = reference = payload).
inline void finish_unit(EncodedUnit& e, uint64_t expected_payload, uint64_t tail_bytes,
                        uint64_t codec_rows) {
  if (e.bytes.size() != e.header_bytes + expected_payload)
    throw std::logic_error("peer codec wrote " + std::to_string(e.bytes.size() - e.header_bytes) +
                           " payload bytes, formula says " + std::to_string(expected_payload));
  e.reported_bytes = expected_payload;
  e.reference_bytes = expected_payload;
  e.tail_bytes = tail_bytes;
  e.codec_rows = codec_rows;
}

/// A parsed peer container: header, parameter block and payload.
struct PeerContainer {
  ContainerHeader header;
  std::span<const uint8_t> params;
  std::span<const uint8_t> payload;
};

/// Reads the common header and checks the codec id (FormatError naming `source` otherwise).
inline PeerContainer open_container(std::span<const uint8_t> bytes, const std::string& source,
                                    CodecId expect) {
  PeerContainer c;
  c.header = read_container_header(bytes, source, &c.params);
  if (c.header.codec_id != expect)
    throw FormatError(source + ": container holds codec '" +
                      std::string(codec_name(c.header.codec_id)) + "' (id " +
                      std::to_string(static_cast<int>(c.header.codec_id)) + "), expected '" +
                      std::string(codec_name(expect)) + "' (id " +
                      std::to_string(static_cast<int>(expect)) + ")");
  if (c.header.block_size != 1)
    throw FormatError(source + ": " + std::string(codec_name(expect)) +
                      " container must have block_size 1 (one record per row), got " +
                      std::to_string(c.header.block_size));
  c.payload = bytes.subspan(c.header.header_bytes);
  return c;
}

/// Requires params_bytes == `size`.
inline void expect_params_size(const PeerContainer& c, size_t size, const std::string& source) {
  if (c.params.size() != size)
    throw FormatError(source + ": " + std::string(codec_name(c.header.codec_id)) +
                      " parameter block is " + std::to_string(c.params.size()) +
                      " bytes, expected " + std::to_string(size));
}

/// Requires a container without tail rows (FormatError naming `source` and the codec otherwise).
inline void expect_no_tail(const PeerContainer& c, const std::string& source) {
  if (c.header.n_tail_rows != 0)
    throw FormatError(source + ": " + std::string(codec_name(c.header.codec_id)) +
                      " container has " + std::to_string(c.header.n_tail_rows) +
                      " tail rows, expected 0");
}

/// Opens a container of codec `expect` with a `params_size`-byte parameter block and no tail rows
/// (open_container, expect_params_size, expect_no_tail).
inline PeerContainer open_tailless_container(std::span<const uint8_t> bytes,
                                             const std::string& source, CodecId expect,
                                             size_t params_size) {
  PeerContainer c = open_container(bytes, source, expect);
  expect_params_size(c, params_size, source);
  expect_no_tail(c, source);
  return c;
}

/// Requires the payload to be exactly `expected` bytes (truncated or trailing bytes otherwise).
inline void expect_payload_size(const PeerContainer& c, uint64_t expected,
                                const std::string& source) {
  const uint64_t have = c.payload.size();
  if (have == expected) return;
  throw FormatError(source + ": " + std::string(codec_name(c.header.codec_id)) + " payload is " +
                    std::to_string(have) + " bytes, expected " + std::to_string(expected) +
                    " for " + std::to_string(c.header.n_blocks) + " coded rows + " +
                    std::to_string(c.header.n_tail_rows) +
                    " fp16 rows of D = " + std::to_string(c.header.head_dim) +
                    (have < expected ? " (truncated)" : " (trailing bytes)"));
}

/// Reads an fp16 field from the payload; a non-finite value is a FormatError.
inline float f16_read(const uint8_t* p, const std::string& source, const char* field, size_t row) {
  const uint16_t h = static_cast<uint16_t>(p[0] | (p[1] << 8));
  if ((h & 0x7C00u) == 0x7C00u)
    throw FormatError(source + ": non-finite fp16 " + field + " in row " + std::to_string(row));
  return f16_bits_to_f32(h);
}

/// Appends `count` elements to `v` in chunks of at most `chunk`, calling fill(first, done, k) on
/// each chunk of k elements (elements done … done+k−1 of the appended range) right after it is
/// added. The vector's zeroing of a chunk then touches cache lines the fill overwrites while they
/// are still in L1, instead of one zeroing pass over a buffer of megabytes and a second pass
/// through memory.
template <class T, class Fill>
void append_in_chunks(std::vector<T>& v, size_t count, size_t chunk, Fill&& fill) {
  v.reserve(v.size() + count);
  for (size_t done = 0; done < count; done += chunk) {
    const size_t k = std::min(chunk, count - done);
    const size_t at = v.size();
    v.resize(at + k);
    fill(v.data() + at, done, k);
  }
}

/// Writes a u16 little-endian at p.
inline void put_u16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v & 0xFF);
  p[1] = static_cast<uint8_t>(v >> 8);
}

}  // namespace kvwb::codec::peer
