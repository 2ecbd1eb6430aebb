#pragma once
// KKTV single-tensor dump (capture-format.md, appendix): the reference tools' exchange format
// for one 2-D float32 tensor. All fields little-endian:
//   offset 0  u32 magic 0x4B4B5456 (bytes 56 54 4B 4B on disk)
//   offset 4  u32 version, 1
//   offset 8  u64 rows N
//   offset 16 u32 row length D
//   offset 20 u32 padding, 0
//   offset 24 f32[N*D] row-major data
// The file size must be exactly 24 + 4*N*D bytes (overflow-checked). Non-finite values are
// carried as they are; count_non_finite() reports them for callers that refuse them.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace kvwb::io {

inline constexpr uint32_t kKktvMagic = 0x4B4B5456u;
inline constexpr uint32_t kKktvVersion = 1;
inline constexpr uint64_t kKktvHeaderBytes = 24;

/// A 2-D f32 tensor [rows, dim], row-major: data.size() == rows * dim.
struct KktvTensor {
  uint64_t rows = 0;
  uint32_t dim = 0;
  std::vector<float> data;
};

/// Reads and validates a KKTV file. Throws IoError (cannot read) or FormatError naming the file.
KktvTensor read_kktv(const std::string& path);

/// Parses and validates KKTV bytes; `source` names them in error messages. Wrong magic or
/// version, nonzero padding, N*D overflowing, or a size other than 24 + 4*N*D -> FormatError.
KktvTensor parse_kktv(std::span<const uint8_t> bytes, const std::string& source);

/// The file bytes for `t`; throws InvalidArgument when t.data.size() != t.rows * t.dim.
std::vector<uint8_t> serialize_kktv(const KktvTensor& t);

/// Writes serialize_kktv(t) to `path` atomically (io/atomic_file.h).
void write_kktv(const std::string& path, const KktvTensor& t);

/// Number of NaN or infinite values in `t.data`.
uint64_t count_non_finite(const KktvTensor& t) noexcept;

}  // namespace kvwb::io
