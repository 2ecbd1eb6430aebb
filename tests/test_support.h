#pragma once
// Helpers shared by the test binaries: where the real data lives, temp folders.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <filesystem>
#include <string>

namespace kvwb::test {

/// ../shared/data/real beside the repository, or $KVWB_REAL_DATA when set; "" when absent.
inline std::string real_data_dir() {
  if (const char* env = std::getenv("KVWB_REAL_DATA")) return env;
  std::filesystem::path p(KVWB_REAL_DATA_DIR);
  return std::filesystem::is_directory(p) ? p.string() : std::string();
}

/// Path of a real-data file, or "" when the folder or file is absent.
inline std::string real_file(const std::string& name) {
  const std::string dir = real_data_dir();
  if (dir.empty()) return {};
  std::filesystem::path p = std::filesystem::path(dir) / name;
  return std::filesystem::exists(p) ? p.string() : std::string();
}

/// A fresh temporary folder removed at the end of the test.
class TempDir {
 public:
  // Unique per process (pid) and per instance (counter); create_directory refuses an existing
  // folder, so two ctest processes can never share one (they once did under ASan: same heap
  // address, same millisecond seed, same unseeded rand()).
  TempDir() {
    static std::atomic<unsigned> counter{0};
    for (int attempt = 0;; ++attempt) {
      path_ = std::filesystem::temp_directory_path() /
              ("kvwb-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
               std::to_string(attempt));
      std::error_code ec;
      if (std::filesystem::create_directory(path_, ec)) break;
      if (attempt > 1000) throw std::runtime_error("cannot create a temporary test folder");
    }
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace kvwb::test

/// Skips the current test with a clear message when a real-data file is missing.
#define KVWB_REQUIRE_REAL(var, name)                                                          \
  const std::string var = ::kvwb::test::real_file(name);                                      \
  if (var.empty())                                                                            \
  GTEST_SKIP() << "real data '" << name << "' not found (expected in " << KVWB_REAL_DATA_DIR \
               << " or $KVWB_REAL_DATA); skipping"
