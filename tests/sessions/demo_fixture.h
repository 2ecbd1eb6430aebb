#pragma once
// Synthetic captures for the sessions tests, each written once per binary and name into a
// temporary folder that lives as long as the binary.
#include <map>
#include <string>

#include "tests/test_support.h"
#include "io/synthetic_capture.h"

namespace kvwb::test {

/// A temporary folder that lives for the whole test binary (shared by its tests).
inline TempDir& binary_temp_dir() {
  static TempDir* dir = new TempDir();
  return *dir;
}

/// The demo capture `opt` written as `name` into binary_temp_dir() on the first call for that
/// name; later calls with the same name return the same file (keep one name per shape).
inline const std::string& demo_capture(const std::string& name, const io::DemoCaptureOptions& opt) {
  static std::map<std::string, std::string> written;
  auto it = written.find(name);
  if (it == written.end()) {
    const std::string p = binary_temp_dir().file(name);
    io::write_demo_capture(p, opt);
    it = written.emplace(name, p).first;
  }
  return it->second;
}

/// 3 layers, 2 kv heads, 4 query heads, 2 sequences; head_dim and tokens per caller.
inline const std::string& small_demo_capture(const std::string& name, int head_dim, int tokens) {
  return demo_capture(name, {.layers = 3,
                             .kv_heads = 2,
                             .q_heads = 4,
                             .head_dim = head_dim,
                             .seqs = 2,
                             .tokens = tokens});
}

}  // namespace kvwb::test
