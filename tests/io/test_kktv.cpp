// KKTV tensor dump (capture-format.md appendix): layout, round trip, every malformed case and
// randomised corruption.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <limits>
#include <string>
#include <vector>

#include "base/errors.h"
#include "codec/math/rng.h"
#include "io/atomic_file.h"
#include "io/kktv.h"
#include "tests/io/malformed_file.h"
#include "tests/test_support.h"

namespace {

using kvwb::io::KktvTensor;

KktvTensor sample() {
  KktvTensor t;
  t.rows = 3;
  t.dim = 5;
  for (int i = 0; i < 15; ++i) t.data.push_back(0.25f * static_cast<float>(i) - 1.0f);
  t.data[4] = -0.0f;
  t.data[7] = std::numeric_limits<float>::quiet_NaN();
  t.data[11] = -std::numeric_limits<float>::infinity();
  return t;
}

/// A header with the given fields followed by `data_bytes` zero bytes.
std::vector<uint8_t> header(uint32_t magic, uint32_t version, uint64_t rows, uint32_t dim,
                            uint32_t pad, size_t data_bytes) {
  std::vector<uint8_t> b(24 + data_bytes, 0);
  std::memcpy(b.data(), &magic, 4);
  std::memcpy(b.data() + 4, &version, 4);
  std::memcpy(b.data() + 8, &rows, 8);
  std::memcpy(b.data() + 16, &dim, 4);
  std::memcpy(b.data() + 20, &pad, 4);
  return b;
}

TEST(KktvFormat, RoundTripAndLayout) {
  kvwb::test::TempDir dir;
  const std::string path = dir.file("t.kktv");
  const KktvTensor in = sample();
  kvwb::io::write_kktv(path, in);
  const std::vector<uint8_t> bytes = kvwb::io::read_file(path);
  ASSERT_EQ(bytes.size(), 24u + 4 * 15);
  const std::vector<uint8_t> head(bytes.begin(), bytes.begin() + 24);
  EXPECT_EQ(head, (std::vector<uint8_t>{0x56, 0x54, 0x4B, 0x4B, 1, 0, 0, 0, 3, 0, 0, 0,
                                        0,    0,    0,    0,    5, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(std::memcmp(bytes.data() + 24, in.data.data(), 60), 0);

  const KktvTensor out = kvwb::io::read_kktv(path);
  EXPECT_EQ(out.rows, 3u);
  EXPECT_EQ(out.dim, 5u);
  ASSERT_EQ(out.data.size(), 15u);
  EXPECT_EQ(std::memcmp(out.data.data(), in.data.data(), 60), 0) << "bit-identical incl. NaN, -0";
  EXPECT_EQ(kvwb::io::count_non_finite(out), 2u);
  EXPECT_EQ(kvwb::io::serialize_kktv(out), bytes);
}

TEST(KktvFormat, EmptyTensorsAndNonFiniteCount) {
  KktvTensor empty;
  empty.rows = 0;
  empty.dim = 128;
  const std::vector<uint8_t> b = kvwb::io::serialize_kktv(empty);
  EXPECT_EQ(b.size(), 24u);
  const KktvTensor back = kvwb::io::parse_kktv(b, "empty.kktv");
  EXPECT_EQ(back.rows, 0u);
  EXPECT_EQ(back.dim, 128u);
  EXPECT_TRUE(back.data.empty());
  EXPECT_EQ(kvwb::io::count_non_finite(back), 0u);

  KktvTensor finite;
  finite.rows = 1;
  finite.dim = 2;
  finite.data = {std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min()};
  EXPECT_EQ(kvwb::io::count_non_finite(finite), 0u);
}

TEST(KktvFormat, WriterRejectsWrongDataSize) {
  KktvTensor t = sample();
  t.data.pop_back();
  EXPECT_THROW(kvwb::io::serialize_kktv(t), kvwb::InvalidArgument);
  kvwb::test::TempDir dir;
  EXPECT_THROW(kvwb::io::write_kktv(dir.file("x.kktv"), t), kvwb::InvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(dir.file("x.kktv")));
  t.rows = std::numeric_limits<uint64_t>::max();
  EXPECT_THROW(kvwb::io::serialize_kktv(t), kvwb::InvalidArgument);
}

TEST(KktvFormat, MissingFileIsIoError) {
  kvwb::test::TempDir dir;
  EXPECT_THROW(kvwb::io::read_kktv(dir.file("absent.kktv")), kvwb::IoError);
}

class KktvMalformed : public kvwb::test::MalformedFileTest {
 protected:
  KktvMalformed()
      : MalformedFileTest(".kktv", [](const std::string& p) { kvwb::io::read_kktv(p); }) {}
};

TEST_F(KktvMalformed, EveryCase) {
  constexpr uint32_t M = kvwb::io::kKktvMagic;
  expect_error({}, "file is 0 bytes, shorter than the 24-byte header");
  std::vector<uint8_t> short_header = header(M, 1, 0, 0, 0, 0);
  short_header.pop_back();
  expect_error(short_header, "file is 23 bytes, shorter than the 24-byte header");
  expect_error(header(0x564B4B54u, 1, 1, 1, 0, 4), "bad magic 0x564B4B54 (expected 0x4B4B5456");
  expect_error(header(M, 2, 1, 1, 0, 4), "unsupported version 2");
  expect_error(header(M, 0, 1, 1, 0, 4), "unsupported version 0");
  expect_error(header(M, 1, 1, 1, 7, 4), "padding field at byte 20 is 7");
  expect_error(header(M, 1, 2, 3, 0, 23), "file is 47 bytes, expected exactly 48");
  expect_error(header(M, 1, 2, 3, 0, 25), "file is 49 bytes, expected exactly 48");
  expect_error(header(M, 1, 0, 3, 0, 4), "expected exactly 24");
  // N*D overflows u64; 4*N*D overflows; a huge but representable N*D with a short file.
  expect_error(header(M, 1, 1ull << 62, 8, 0, 0), "N*D overflows (N=4611686018427387904, D=8)");
  expect_error(header(M, 1, 1ull << 62, 1, 0, 0), "24 + 4*N*D overflows");
  expect_error(header(M, 1, 1ull << 40, 1u << 20, 0, 16), "expected exactly 4611686018427387928");
}

using kvwb::test::Draw;

TEST(KktvFuzz, RandomMutationsOnlyThrowKvwbErrors) {
  const std::vector<uint8_t> good = kvwb::io::serialize_kktv(sample());
  const std::string source = "fuzz.kktv";
  Draw d{kvwb::codec::rng::kTagTest ^ 0x4B4Bu};
  constexpr int kIterations = 8000;
  const kvwb::test::FuzzTally tally = kvwb::test::fuzz_reader(
      "kktv", good, kIterations, source,
      [&](std::vector<uint8_t>& b) {
        const uint64_t kind = d.below(6);
        switch (kind) {
          case 0: {  // bit flips (header-biased half the time)
            const uint64_t flips = 1 + d.below(3);
            const uint64_t span = d.below(2) ? 24 : b.size();
            for (uint64_t k = 0; k < flips; ++k) b[d.below(span)] ^= uint8_t(1u << d.below(8));
            break;
          }
          case 1: {  // byte overwrites
            const uint64_t count = 1 + d.below(4);
            for (uint64_t k = 0; k < count; ++k) b[d.below(b.size())] = uint8_t(d.next());
            break;
          }
          case 2:  // truncation
            b.resize(d.below(b.size()));
            break;
          case 3: {  // random N and D: anything, or consistent with another length
            uint64_t rows = d.next();
            uint32_t dim = static_cast<uint32_t>(d.next());
            if (d.below(2)) {
              rows = d.below(32);
              dim = static_cast<uint32_t>(d.below(32));
            }
            std::memcpy(b.data() + 8, &rows, 8);
            std::memcpy(b.data() + 16, &dim, 4);
            break;
          }
          case 4: {  // appended junk
            const uint64_t extra = 1 + d.below(40);
            for (uint64_t k = 0; k < extra; ++k) b.push_back(uint8_t(d.next()));
            break;
          }
          default: {  // data bytes only (must always parse)
            b[24 + d.below(b.size() - 24)] = uint8_t(d.next());
            break;
          }
        }
        return kind;
      },
      [&](const std::vector<uint8_t>& b) {
        const KktvTensor t = kvwb::io::parse_kktv(b, source);
        ASSERT_EQ(t.data.size(), t.rows * t.dim);
        ASSERT_EQ(b.size(), 24 + 4 * t.data.size());
      });
  EXPECT_GT(tally.accepted, kIterations / 10);
  EXPECT_GT(tally.rejected, kIterations / 2);
}

}  // namespace
