#pragma once
// A small synthetic capture for the sessions tests: 3 layers, 2 kv heads, 4 query heads,
// 2 sequences; head_dim and tokens per caller. Written once per binary and name into a temporary
// folder that lives as long as the binary.
#include <map>
#include <string>

#include "tests/test_support.h"
#include "io/synthetic_capture.h"

namespace kvwb::test {

inline const std::string& small_demo_capture(const std::string& name, int head_dim, int tokens) {
  static TempDir* dir = new TempDir();  // lives for the whole binary
  static std::map<std::string, std::string> written;
  auto it = written.find(name);
  if (it == written.end()) {
    const std::string p = dir->file(name);
    io::DemoCaptureOptions o;
    o.layers = 3;
    o.kv_heads = 2;
    o.q_heads = 4;
    o.head_dim = head_dim;
    o.seqs = 2;
    o.tokens = tokens;
    io::write_demo_capture(p, o);
    it = written.emplace(name, p).first;
  }
  return it->second;
}

}  // namespace kvwb::test
