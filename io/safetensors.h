#pragma once
// Strict safetensors reader and atomic writer (bundle-format.md §2.1).
//
// Layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON header, then the data
// section. The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
// (offsets relative to the start of the data section) and may hold "__metadata__", an object of
// string -> string. The reader validates everything before it allocates anything sized by the
// file, and reports each violation as kvwb::FormatError naming the file, the tensor or field,
// and what was expected:
//   - file shorter than 8 bytes; N larger than the rest of the file or than kMaxHeaderBytes;
//   - header not well-formed JSON, not an object, nested deeper than the format allows, or with a
//     duplicate key at any level (plain JSON parsers silently keep the last one);
//   - an entry that is not an object with exactly a known string "dtype", a "shape" array of
//     non-negative integers and a "data_offsets" pair [begin, end] with begin <= end;
//   - shape product x dtype size (overflow-checked) different from end - begin;
//   - a span past the end of the data section, overlapping another span, or data bytes that no
//     tensor references (a gap before, between or after tensors). The reference safetensors
//     implementation also requires the tensors to cover the data section exactly.
//   - "__metadata__" that is not an object of string -> string.
// The reader accepts a header without "__metadata__" and does not require 8 + N to be a
// multiple of 8 (only the writer pads).
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace kvwb::io {

/// Largest JSON header accepted by the reader, in bytes (the reference implementation's limit).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

/// One tensor: raw little-endian bytes of a row-major (C order) array.
struct SafeTensor {
  std::string name;
  /// safetensors dtype name: "BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16", "U16",
  /// "F16", "BF16", "I32", "U32", "F32", "I64", "U64", "F64", "C64".
  std::string dtype;
  /// Dimensions, outermost first; empty for a scalar (one element).
  std::vector<uint64_t> shape;
  /// Raw little-endian bytes, element_count() * dtype size of them.
  std::vector<uint8_t> data;

  /// Product of `shape` (1 for a scalar). Throws InvalidArgument on overflow.
  uint64_t element_count() const;
};

/// A whole safetensors file.
struct SafeTensorsFile {
  /// "__metadata__" entries (empty when the header has none).
  std::map<std::string, std::string> metadata;
  /// Tensors. The reader returns them in the order of their data in the file; the writer stores
  /// them in byte-wise lexicographic order of names whatever their order here.
  std::vector<SafeTensor> tensors;

  /// The tensor called `name`, or nullptr.
  const SafeTensor* find(const std::string& name) const;
};

/// Bytes per element of a safetensors dtype name; 0 when the name is unknown or unsupported
/// (sub-byte types such as "F4" are unsupported).
uint64_t safetensors_dtype_size(const std::string& dtype) noexcept;

/// Values of `t` as f32: F32 exactly, F16 and BF16 converted exactly (codec/half.h).
/// Throws Unsupported for any other dtype and FormatError when the byte count does not match.
std::vector<float> tensor_to_f32(const SafeTensor& t);

/// An F32 tensor with the given shape; throws InvalidArgument when values.size() is not the
/// product of `shape`.
SafeTensor make_f32_tensor(std::string name, std::vector<uint64_t> shape,
                           std::span<const float> values);

/// Reads and validates a safetensors file. Throws IoError (cannot read) or FormatError.
SafeTensorsFile read_safetensors(const std::string& path);

/// Parses and validates safetensors bytes; `source` names them in error messages.
SafeTensorsFile parse_safetensors(std::span<const uint8_t> bytes, const std::string& source);

/// The file bytes for `file` (layout of bundle-format.md §2.1): header padded with ASCII spaces
/// so that 8 + N is a multiple of 8, "__metadata__" = `file.metadata`, or {"format": "pt"} when
/// that is empty, tensors back to back without gaps in byte-wise lexicographic order of names.
/// Throws InvalidArgument for a duplicate or reserved ("__metadata__") name, an unknown
/// dtype, data whose size does not match shape x dtype, or names/metadata that are not UTF-8.
std::vector<uint8_t> serialize_safetensors(const SafeTensorsFile& file);

/// Writes serialize_safetensors(file) to `path` atomically (io/atomic_file.h).
void write_safetensors(const std::string& path, const SafeTensorsFile& file);

}  // namespace kvwb::io
