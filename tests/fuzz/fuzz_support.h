#pragma once
// Helpers shared by the libFuzzer harnesses (tests/fuzz/README.md). A harness feeds one input to
// one reader and accepts exactly two outcomes: success, or a typed kvwb::Error. Anything else —
// a crash, a sanitizer report, an untyped exception, a hang — is a finding.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "base/errors.h"

namespace kvwb::fuzz {

/// A per-process scratch folder in /dev/shm (or the temp folder), removed at exit.
inline const std::filesystem::path& scratch() {
  static const std::filesystem::path dir = [] {
    std::filesystem::path base =
        std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
    std::filesystem::path d = base / ("kvwb-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch(), ec);
    });
    return d;
  }();
  return dir;
}

/// Writes `size` bytes to `path` (replacing it).
inline void write_bytes(const std::filesystem::path& path, const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}

/// Runs `f`; a kvwb::Error is an accepted outcome, anything else escapes (and is reported).
template <class F>
void expect_typed(F&& f) {
  try {
    f();
  } catch (const kvwb::Error&) {
  }
}

}  // namespace kvwb::fuzz
