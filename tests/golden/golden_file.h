#pragma once
// The golden file (tests/golden/golden.txt) as both of its readers see it: test_golden and the
// device self-test (tests/cuda/gpu_selftest.cpp), which builds without io/, GoogleTest or HDF5,
// so this header needs the standard library, codec/ and tests/cuda/sha256.h only.
// A line: case name, container bytes, sha256 of the concatenated containers (unit order), sha256
// of the decoded f32 rows [S, H, T, D]; empty lines and lines starting with '#' are comments.
#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/cuda/sha256.h"
#include "tests/golden/golden_cases.h"

namespace kvwb::golden {

/// One line of the golden file.
struct GoldenLine {
  uint64_t bytes = 0;               // container bytes
  std::string containers, decoded;  // sha256 hex (64 lowercase digits) of each
  bool operator==(const GoldenLine& o) const {
    return bytes == o.bytes && containers == o.containers && decoded == o.decoded;
  }
};

/// The lines of the golden file `path` by case name (none when it cannot be read). `order`, when
/// given, receives the names in file order; `malformed`, when given, the lines that do not parse
/// (they are left out of the map either way).
inline std::map<std::string, GoldenLine> read_golden(const std::string& path,
                                                     std::vector<std::string>* order = nullptr,
                                                     std::vector<std::string>* malformed = nullptr) {
  std::map<std::string, GoldenLine> m;
  std::ifstream in(path);
  std::string text;
  while (std::getline(in, text)) {
    if (text.empty() || text[0] == '#') continue;
    std::istringstream is(text);
    std::string name;
    GoldenLine l;
    if (!(is >> name >> l.bytes >> l.containers >> l.decoded)) {
      if (malformed) malformed->push_back(text);
      continue;
    }
    if (order) order->push_back(name);
    m[name] = l;
  }
  return m;
}

/// The golden line of what a batch produced.
inline GoldenLine hash_outcome(const Outcome& o) {
  GoldenLine l;
  l.bytes = o.containers.size();
  l.containers = selftest::sha256_hex(o.containers.data(), o.containers.size());
  l.decoded = selftest::sha256_hex(reinterpret_cast<const uint8_t*>(o.decoded.data.data()),
                                   o.decoded.data.size() * sizeof(float));
  return l;
}

}  // namespace kvwb::golden
