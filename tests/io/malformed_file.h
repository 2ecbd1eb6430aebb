#pragma once
// Shared by the tests of the strict binary readers (KKTV, safetensors): malformed files that must
// fail with a FormatError naming the file, and the counter-based draws of the fuzz tests.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/errors.h"
#include "codec/math/rng.h"
#include "io/atomic_file.h"
#include "tests/test_support.h"

namespace kvwb::test {

/// Fixture base for one reader: `read` opens a file by path, `suffix` names its files.
class MalformedFileTest : public ::testing::Test {
 protected:
  MalformedFileTest(std::string suffix, std::function<void(const std::string&)> read)
      : suffix_(std::move(suffix)), read_(std::move(read)) {}

  /// Writes `bytes` to a fresh file, reads it back and expects a FormatError whose message names
  /// the file and contains `what`.
  void expect_error(const std::vector<uint8_t>& bytes, const std::string& what) {
    const std::string path = dir_.file("case" + std::to_string(counter_++) + suffix_);
    io::write_file_atomic(path, std::span<const uint8_t>(bytes));
    try {
      read_(path);
      ADD_FAILURE() << "accepted a file that should fail with: " << what;
    } catch (const FormatError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << "message does not name the file: " << msg;
      EXPECT_NE(msg.find(what), std::string::npos) << "expected '" << what << "' in: " << msg;
    }
  }

 private:
  std::string suffix_;
  std::function<void(const std::string&)> read_;
  TempDir dir_;
  int counter_ = 0;
};

/// Counter-based stream over the project RNG (the fuzz tests' mutations).
struct Draw {
  uint64_t key;
  uint64_t i = 0;
  uint64_t next() { return codec::rng::splitmix(key, i++); }
  uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }
};

/// What a reader fuzz run saw: mutated files the reader accepted and refused.
struct FuzzTally {
  int accepted = 0;
  int rejected = 0;
};

/// `iterations` mutated copies of `good`: `mutate(bytes)` changes the copy and returns the kind of
/// change, `parse(bytes)` reads it under the name `source` and checks what it accepted. A
/// refusal must be a kvwb error (a FormatError naming `source`); any other exception, or a fatal
/// failure inside `parse`, ends the run and fails the test. Prints the tally under `label`.
template <class Mutate, class Parse>
FuzzTally fuzz_reader(const char* label, const std::vector<uint8_t>& good, int iterations,
                      const std::string& source, Mutate mutate, Parse parse) {
  FuzzTally tally;
  const auto start = std::chrono::steady_clock::now();
  const std::clock_t cpu_start = std::clock();
  for (int it = 0; it < iterations; ++it) {
    std::vector<uint8_t> b = good;
    const uint64_t kind = mutate(b);
    try {
      parse(b);
      if (::testing::Test::HasFatalFailure()) return tally;
      ++tally.accepted;
    } catch (const FormatError& e) {
      ++tally.rejected;
      if (std::string(e.what()).find(source) == std::string::npos) {
        ADD_FAILURE() << "iteration " << it << ": " << e.what();
        return tally;
      }
    } catch (const Error&) {
      ++tally.rejected;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "iteration " << it << " (kind " << kind
                    << ") threw a non-kvwb exception: " << e.what();
      return tally;
    }
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double cpu = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  std::printf("[ %s fuzz ] %d mutations: %d accepted, %d rejected, %.2f s wall, %.2f s cpu\n",
              label, iterations, tally.accepted, tally.rejected, secs, cpu);
  return tally;
}

}  // namespace kvwb::test
