#pragma once
// Little-endian field writers/readers for the container formats. Readers are bounds-checked and
// throw FormatError naming `what` and the offset when a field runs past the end.
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "base/errors.h"

namespace kvwb::codec {

class ByteWriter {
 public:
  explicit ByteWriter(std::vector<uint8_t>& out) : out_(out) {}
  void u8(uint8_t v) { out_.push_back(v); }
  void u16(uint16_t v) { put(&v, 2); }
  void u32(uint32_t v) { put(&v, 4); }
  void u64(uint64_t v) { put(&v, 8); }
  void f32(float v) { put(&v, 4); }
  void bytes(const void* p, size_t n) { put(p, n); }
  size_t size() const { return out_.size(); }
  std::vector<uint8_t>& buffer() { return out_; }

 private:
  void put(const void* p, size_t n) {  // host is little-endian (x86-64, aarch64); asserted in CMake
    const auto* b = static_cast<const uint8_t*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  std::vector<uint8_t>& out_;
};

class ByteReader {
 public:
  /// `source` names the buffer in error messages (a file path or "container").
  ByteReader(std::span<const uint8_t> in, std::string source) : in_(in), source_(std::move(source)) {}
  uint8_t u8(const char* what) { uint8_t v; get(&v, 1, what); return v; }
  uint16_t u16(const char* what) { uint16_t v; get(&v, 2, what); return v; }
  uint32_t u32(const char* what) { uint32_t v; get(&v, 4, what); return v; }
  uint64_t u64(const char* what) { uint64_t v; get(&v, 8, what); return v; }
  float f32(const char* what) { float v; get(&v, 4, what); return v; }
  /// Pointer to the next n bytes, which are consumed.
  const uint8_t* take(size_t n, const char* what) {
    need(n, what);
    const uint8_t* p = in_.data() + pos_;
    pos_ += n;
    return p;
  }
  size_t pos() const { return pos_; }
  size_t remaining() const { return in_.size() - pos_; }
  const std::string& source() const { return source_; }
  [[noreturn]] void fail(const std::string& msg) const {
    throw FormatError(source_ + ": " + msg + " (at byte " + std::to_string(pos_) + ")");
  }

 private:
  void need(size_t n, const char* what) const {
    if (n > in_.size() - pos_)
      fail(std::string("truncated: field '") + what + "' needs " + std::to_string(n) +
           " bytes, " + std::to_string(in_.size() - pos_) + " left");
  }
  void get(void* dst, size_t n, const char* what) {
    need(n, what);
    std::memcpy(dst, in_.data() + pos_, n);
    pos_ += n;
  }
  std::span<const uint8_t> in_;
  std::string source_;
  size_t pos_ = 0;
};

}  // namespace kvwb::codec
