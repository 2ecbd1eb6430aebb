#pragma once
// KVCB container, version 1.0 — the common 48-byte header of codec-kakeya.md §9.1.
//
// Contract (all fields little-endian, packed, no padding):
//   0 u8[4] magic "KVCB" | 4 u16 version_major=1 | 6 u16 version_minor=0 | 8 u16 codec_id
//   10 u16 header_bytes (48 + params_bytes) | 12 u16 D | 14 u8 stream (0 K, 1 V)
//   15 u8 block_rows (0 per_head, 1 pooled_heads) | 16 u32 sequence | 20 u32 layer
//   24 u16 kv_head (0xFFFF pooled) | 26 u16 n_kv_heads | 28 u32 block_size | 32 u32 n_blocks
//   36 u32 n_tail_rows | 40 u8 domain_flags | 41 u8[3] reserved=0 | 44 u32 params_bytes
// followed by the codec's parameter block (params_bytes) and the codec's payload.
//
// Codec ids (decisions.md #6: one id per codec name; peers store native blocks in token order):
//   1 kakeya_pca, 2 besicovitch, 3 turbo2, 4 turbo3, 5 turbo4, 6 q8_0, 7 q4_0, 8 q4_1, 9 q5_0,
//   10 q5_1, 11 iq4_nl, 12 kivi, 13 fp8_e4m3, 14 bf16.
// The container format version is independent of the program version.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvwb::codec {

inline constexpr uint16_t kContainerMajor = 1;
inline constexpr uint16_t kContainerMinor = 0;
inline constexpr size_t kCommonHeaderBytes = 48;
inline constexpr uint16_t kPooledHead = 0xFFFF;

enum class CodecId : uint16_t {
  kKakeyaPca = 1, kBesicovitch = 2, kTurbo2 = 3, kTurbo3 = 4, kTurbo4 = 5, kQ8_0 = 6, kQ4_0 = 7,
  kQ4_1 = 8, kQ5_0 = 9, kQ5_1 = 10, kIq4Nl = 11, kKivi = 12, kFp8E4m3 = 13, kBf16 = 14,
};

/// Registry name of a codec id ("kakeya_pca", ...); empty for an unknown id.
std::string_view codec_name(CodecId id) noexcept;
/// Codec id of a registry name; throws InvalidArgument for an unknown name.
CodecId codec_id_from_name(std::string_view name);

enum class Stream : uint8_t { kK = 0, kV = 1 };
enum class BlockRows : uint8_t { kPerHead = 0, kPooledHeads = 1 };

/// domain_flags bits (§9.1).
inline constexpr uint8_t kDomainWhitened = 1u << 0;     // block records hold K·L
inline constexpr uint8_t kDomainPreRope = 1u << 1;      // K is pre-RoPE (0 for V)
inline constexpr uint8_t kDomainDerivedPre = 1u << 2;   // pre-RoPE K derived by inverse RoPE

struct ContainerHeader {
  CodecId codec_id = CodecId::kKakeyaPca;
  uint16_t version_major = kContainerMajor;
  uint16_t version_minor = kContainerMinor;
  uint16_t header_bytes = 0;  // filled by write_header: 48 + params.size()
  uint16_t head_dim = 0;
  Stream stream = Stream::kK;
  BlockRows block_rows = BlockRows::kPerHead;
  uint32_t sequence = 0;
  uint32_t layer = 0;
  uint16_t kv_head = 0;
  uint16_t n_kv_heads = 1;
  uint32_t block_size = 0;
  uint32_t n_blocks = 0;
  uint32_t n_tail_rows = 0;
  uint8_t domain_flags = 0;
  uint32_t params_bytes = 0;  // filled by write_header
};

/// Appends the 48-byte header followed by `params` to `out`; sets header_bytes/params_bytes.
void write_container_header(const ContainerHeader& h, std::span<const uint8_t> params,
                            std::vector<uint8_t>& out);

/// Parses and validates the common header (magic, major version, known codec id,
/// header_bytes == 48 + params_bytes, header within the buffer). `source` names the buffer.
/// Returns the header; `params` receives the parameter block.
ContainerHeader read_container_header(std::span<const uint8_t> bytes, const std::string& source,
                                      std::span<const uint8_t>* params);

}  // namespace kvwb::codec
