#include "io/kktv.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "codec/format/byte_io.h"
#include "base/errors.h"
#include "io/atomic_file.h"

namespace kvwb::io {

namespace {

std::string hex32(uint32_t v) {
  static const char* digits = "0123456789ABCDEF";
  std::string s = "0x";
  for (int shift = 28; shift >= 0; shift -= 4) s.push_back(digits[(v >> shift) & 0xFu]);
  return s;
}

}  // namespace

KktvTensor parse_kktv(std::span<const uint8_t> bytes, const std::string& source) {
  auto fail = [&](const std::string& msg) -> void { throw FormatError(source + ": KKTV: " + msg); };
  if (bytes.size() < kKktvHeaderBytes)
    fail("file is " + std::to_string(bytes.size()) + " bytes, shorter than the " +
         std::to_string(kKktvHeaderBytes) + "-byte header");
  codec::ByteReader r(bytes, source);
  const uint32_t magic = r.u32("magic");
  if (magic != kKktvMagic)
    fail("bad magic " + hex32(magic) + " (expected " + hex32(kKktvMagic) + ", bytes 56 54 4B 4B)");
  const uint32_t version = r.u32("version");
  if (version != kKktvVersion)
    fail("unsupported version " + std::to_string(version) + " (expected " +
         std::to_string(kKktvVersion) + ")");
  const uint64_t rows = r.u64("rows");
  const uint32_t dim = r.u32("dim");
  const uint32_t padding = r.u32("padding");
  if (padding != 0) fail("padding field at byte 20 is " + std::to_string(padding) + ", expected 0");

  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  const std::string dims = "N=" + std::to_string(rows) + ", D=" + std::to_string(dim);
  if (dim != 0 && rows > kMax / dim) fail("N*D overflows (" + dims + ")");
  const uint64_t count = rows * dim;
  if (count > (kMax - kKktvHeaderBytes) / 4) fail("24 + 4*N*D overflows (" + dims + ")");
  const uint64_t expected = kKktvHeaderBytes + 4 * count;
  if (bytes.size() != expected)
    fail("file is " + std::to_string(bytes.size()) + " bytes, expected exactly " +
         std::to_string(expected) + " = 24 + 4*N*D (" + dims + ")");

  KktvTensor t;
  t.rows = rows;
  t.dim = dim;
  t.data.resize(static_cast<size_t>(count));
  if (count > 0) std::memcpy(t.data.data(), bytes.data() + kKktvHeaderBytes, 4 * count);
  return t;
}

KktvTensor read_kktv(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file(path);
  return parse_kktv(bytes, path);
}

std::vector<uint8_t> serialize_kktv(const KktvTensor& t) {
  if (t.dim != 0 && t.rows > std::numeric_limits<uint64_t>::max() / t.dim)
    throw InvalidArgument("KKTV: rows * dim overflows");
  if (t.data.size() != t.rows * t.dim)
    throw InvalidArgument("KKTV: data has " + std::to_string(t.data.size()) +
                          " values, expected rows * dim = " + std::to_string(t.rows) + " * " +
                          std::to_string(t.dim));
  std::vector<uint8_t> out(static_cast<size_t>(kKktvHeaderBytes + 4 * t.data.size()));
  const uint32_t head32[2] = {kKktvMagic, kKktvVersion};
  const uint32_t tail32[2] = {t.dim, 0};
  std::memcpy(out.data(), head32, 8);  // little-endian host (asserted in CMake)
  std::memcpy(out.data() + 8, &t.rows, 8);
  std::memcpy(out.data() + 16, tail32, 8);
  if (!t.data.empty()) std::memcpy(out.data() + kKktvHeaderBytes, t.data.data(), 4 * t.data.size());
  return out;
}

void write_kktv(const std::string& path, const KktvTensor& t) {
  const std::vector<uint8_t> bytes = serialize_kktv(t);
  write_file_atomic(path, std::span<const uint8_t>(bytes));
}

uint64_t count_non_finite(const KktvTensor& t) noexcept {
  uint64_t n = 0;
  for (const float v : t.data) n += std::isfinite(v) ? 0 : 1;
  return n;
}

}  // namespace kvwb::io
