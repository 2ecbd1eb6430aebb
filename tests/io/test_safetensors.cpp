// Strict safetensors reader/writer (bundle-format.md §2.1): round trips, layout, the reference
// Qwen2.5-0.5B Σ_q artefact, every malformed case, and randomised corruption.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "base/errors.h"
#include "codec/math/rng.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "tests/io/malformed_file.h"
#include "tests/test_support.h"

namespace {

using kvwb::io::SafeTensor;
using kvwb::io::SafeTensorsFile;

/// A file from a raw header text and data bytes (no padding unless the text has it).
std::vector<uint8_t> raw_file(const std::string& header, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> out(8 + header.size() + data.size());
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  if (!header.empty()) std::memcpy(out.data() + 8, header.data(), header.size());
  if (!data.empty()) std::memcpy(out.data() + 8 + header.size(), data.data(), data.size());
  return out;
}

SafeTensor raw_tensor(std::string name, std::string dtype, std::vector<uint64_t> shape,
                      std::vector<uint8_t> data) {
  SafeTensor t;
  t.name = std::move(name);
  t.dtype = std::move(dtype);
  t.shape = std::move(shape);
  t.data = std::move(data);
  return t;
}

/// A small file with several dtypes, a scalar, an empty tensor and names whose byte-wise order
/// differs from their natural order.
SafeTensorsFile small_file() {
  SafeTensorsFile f;
  const std::vector<float> v = {1.0f, -2.5f, 3.25f, 0.0f, -0.0f, 1e-7f};
  f.tensors.push_back(kvwb::io::make_f32_tensor("layer_1_chol", {2, 3}, v));
  f.tensors.push_back(kvwb::io::make_f32_tensor("layer_10_chol", {3, 2}, v));
  f.tensors.push_back(raw_tensor("layer_0_sigma", "F16", {2}, {0x00, 0x3C, 0x00, 0xC0}));
  f.tensors.push_back(raw_tensor("b16", "BF16", {1, 1}, {0x80, 0x3F}));
  f.tensors.push_back(raw_tensor("ids", "I64", {1}, {7, 0, 0, 0, 0, 0, 0, 0}));
  f.tensors.push_back(raw_tensor("scalar", "U8", {}, {42}));
  f.tensors.push_back(raw_tensor("empty", "F32", {0, 4}, {}));
  return f;
}

void expect_same_tensor(const SafeTensor& a, const SafeTensor& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.dtype, b.dtype) << a.name;
  EXPECT_EQ(a.shape, b.shape) << a.name;
  EXPECT_EQ(a.data, b.data) << a.name;
}

uint64_t header_len(const std::vector<uint8_t>& bytes) {
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  return n;
}

TEST(SafetensorsFormat, RoundTripIsByteIdenticalAndOrdered) {
  kvwb::test::TempDir dir;
  const std::string path = dir.file("small.safetensors");
  const SafeTensorsFile in = small_file();
  kvwb::io::write_safetensors(path, in);

  const std::vector<uint8_t> bytes = kvwb::io::read_file(path);
  const uint64_t n = header_len(bytes);
  EXPECT_EQ((8 + n) % 8, 0u) << "header must be padded so the data section is 8-aligned";
  ASSERT_GE(bytes.size(), 8 + n);
  const std::string header(bytes.begin() + 8, bytes.begin() + 8 + static_cast<long>(n));
  EXPECT_NE(header.find("\"__metadata__\":{\"format\":\"pt\"}"), std::string::npos) << header;
  EXPECT_EQ(header.find_last_not_of(' ') + 1, header.find_last_of('}') + 1);

  const SafeTensorsFile out = kvwb::io::read_safetensors(path);
  EXPECT_EQ(out.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
  ASSERT_EQ(out.tensors.size(), in.tensors.size());
  // Stored in byte-wise lexicographic order: layer_10 before layer_1_.
  const std::vector<std::string> expected_order = {
      "b16", "empty", "ids", "layer_0_sigma", "layer_10_chol", "layer_1_chol", "scalar"};
  for (size_t i = 0; i < out.tensors.size(); ++i) EXPECT_EQ(out.tensors[i].name, expected_order[i]);
  for (const SafeTensor& t : in.tensors) {
    const SafeTensor* r = out.find(t.name);
    ASSERT_NE(r, nullptr) << t.name;
    expect_same_tensor(t, *r);
  }
  EXPECT_EQ(out.find("missing"), nullptr);
  // Data offsets increase in name order, back to back from 0.
  EXPECT_LT(header.find("\"layer_10_chol\""), header.find("\"layer_1_chol\""));

  // Writing what was read gives the same bytes.
  EXPECT_EQ(kvwb::io::serialize_safetensors(out), bytes);
  EXPECT_EQ(bytes.size(), 8 + n + 4 * 6 * 2 + 2 * 2 + 2 + 8 + 1);
}

TEST(SafetensorsFormat, HeaderPaddingForEveryLength) {
  // Names of growing length move the header length through all residues mod 8.
  for (int len = 1; len <= 16; ++len) {
    SafeTensorsFile f;
    f.tensors.push_back(raw_tensor(std::string(static_cast<size_t>(len), 'x'), "U8", {1}, {9}));
    const std::vector<uint8_t> bytes = kvwb::io::serialize_safetensors(f);
    EXPECT_EQ((8 + header_len(bytes)) % 8, 0u) << len;
    const SafeTensorsFile back = kvwb::io::parse_safetensors(bytes, "pad");
    ASSERT_EQ(back.tensors.size(), 1u);
    EXPECT_EQ(back.tensors[0].data, std::vector<uint8_t>{9});
  }
}

TEST(SafetensorsFormat, MetadataRoundTripAndAbsentMetadata) {
  SafeTensorsFile f = small_file();
  f.metadata = {{"format", "pt"}, {"producer", "kv-workbench \xC3\xA9"}};
  const SafeTensorsFile back =
      kvwb::io::parse_safetensors(kvwb::io::serialize_safetensors(f), "meta");
  EXPECT_EQ(back.metadata, f.metadata);

  // A header without __metadata__ (as in the reference's own files) is accepted.
  const std::vector<uint8_t> raw =
      raw_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", {1, 2});
  const SafeTensorsFile nm = kvwb::io::parse_safetensors(raw, "nometa");
  EXPECT_TRUE(nm.metadata.empty());
  ASSERT_EQ(nm.tensors.size(), 1u);
  EXPECT_EQ(nm.tensors[0].data, (std::vector<uint8_t>{1, 2}));

  // An empty header object is a valid file with no tensors.
  EXPECT_TRUE(kvwb::io::parse_safetensors(raw_file("{}", {}), "empty").tensors.empty());
}

TEST(SafetensorsFormat, TensorToF32) {
  const SafeTensorsFile f = small_file();
  EXPECT_EQ(kvwb::io::tensor_to_f32(*f.find("layer_0_sigma")), (std::vector<float>{1.0f, -2.0f}));
  EXPECT_EQ(kvwb::io::tensor_to_f32(*f.find("b16")), (std::vector<float>{1.0f}));
  const std::vector<float> v = kvwb::io::tensor_to_f32(*f.find("layer_1_chol"));
  ASSERT_EQ(v.size(), 6u);
  EXPECT_EQ(v[2], 3.25f);
  EXPECT_TRUE(std::signbit(v[4]));
  EXPECT_TRUE(kvwb::io::tensor_to_f32(*f.find("empty")).empty());
  EXPECT_THROW(kvwb::io::tensor_to_f32(*f.find("ids")), kvwb::Unsupported);
  SafeTensor bad = *f.find("layer_1_chol");
  bad.data.pop_back();
  EXPECT_THROW(kvwb::io::tensor_to_f32(bad), kvwb::FormatError);
  EXPECT_EQ(kvwb::io::safetensors_dtype_size("BF16"), 2u);
  EXPECT_EQ(kvwb::io::safetensors_dtype_size("F4"), 0u);
}

TEST(SafetensorsFormat, WriterRejectsInconsistentTensors) {
  auto expect_invalid = [](SafeTensorsFile f, const std::string& what) {
    try {
      kvwb::io::serialize_safetensors(f);
      ADD_FAILURE() << "accepted: " << what;
    } catch (const kvwb::InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  SafeTensorsFile dup = small_file();
  dup.tensors.push_back(dup.tensors[0]);
  expect_invalid(dup, "duplicate tensor name 'layer_1_chol'");
  SafeTensorsFile reserved;
  reserved.tensors.push_back(raw_tensor("__metadata__", "U8", {1}, {0}));
  expect_invalid(reserved, "reserved");
  SafeTensorsFile dtype;
  dtype.tensors.push_back(raw_tensor("x", "F17", {1}, {0}));
  expect_invalid(dtype, "unknown dtype 'F17'");
  SafeTensorsFile size;
  size.tensors.push_back(raw_tensor("x", "F32", {2}, {0, 0, 0, 0}));
  expect_invalid(size, "do not match shape [2]");
  SafeTensorsFile utf8;
  utf8.tensors.push_back(raw_tensor("bad\xFF", "U8", {1}, {0}));
  expect_invalid(utf8, "not UTF-8");
  const std::vector<float> three = {1, 2, 3};
  EXPECT_THROW(kvwb::io::make_f32_tensor("x", {2, 2}, three), kvwb::InvalidArgument);
}

TEST(SafetensorsFormat, MissingFileIsIoError) {
  kvwb::test::TempDir dir;
  EXPECT_THROW(kvwb::io::read_safetensors(dir.file("absent.safetensors")), kvwb::IoError);
}

// ---- malformed files ------------------------------------------------------------------------

class SafetensorsMalformed : public kvwb::test::MalformedFileTest {
 protected:
  SafetensorsMalformed()
      : MalformedFileTest(".safetensors",
                          [](const std::string& p) { kvwb::io::read_safetensors(p); }) {}
  void expect_header_error(const std::string& header, const std::vector<uint8_t>& data,
                           const std::string& what) {
    expect_error(raw_file(header, data), what);
  }
};

const std::vector<uint8_t> kFour = {1, 2, 3, 4};

TEST_F(SafetensorsMalformed, TruncatedAndHeaderLength) {
  expect_error({}, "shorter than the 8-byte header length field");
  expect_error({1, 0, 0, 0, 0}, "shorter than the 8-byte header length field");
  const std::vector<uint8_t> good = kvwb::io::serialize_safetensors(small_file());
  expect_error(std::vector<uint8_t>(good.begin(), good.begin() + 8), "exceeds the 0 bytes");
  expect_error(std::vector<uint8_t>(good.begin(), good.begin() + 40), "exceeds the 32 bytes");
  // Truncated inside the data section: the last tensor's span runs past the end.
  expect_error(std::vector<uint8_t>(good.begin(), good.end() - 1), "past the end of the data");
  std::vector<uint8_t> huge = good;
  const uint64_t big = ~0ull;
  std::memcpy(huge.data(), &big, 8);
  expect_error(huge, "header length 18446744073709551615 exceeds");
}

TEST_F(SafetensorsMalformed, HeaderLengthOverLimit) {
  // A header length above 100 MB is refused even when the file is that long.
  // Only the length field is written: the reader must refuse before it looks at the rest.
  const size_t size = 8 + kvwb::io::kMaxSafetensorsHeaderBytes + 8;
  const auto big = std::make_unique_for_overwrite<uint8_t[]>(size);
  const uint64_t n = kvwb::io::kMaxSafetensorsHeaderBytes + 1;
  std::memcpy(big.get(), &n, 8);
  try {
    kvwb::io::parse_safetensors(std::span<const uint8_t>(big.get(), size), "big.safetensors");
    ADD_FAILURE() << "accepted a 100 MB + 1 header";
  } catch (const kvwb::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("big.safetensors"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("exceeds the limit of 100000000"), std::string::npos)
        << e.what();
  }
}

TEST_F(SafetensorsMalformed, BadJson) {
  expect_header_error(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]})", kFour,
                      "header is not valid JSON");
  expect_header_error(R"({"a":{"dtype":"U8",})", kFour, "header is not valid JSON");
  expect_header_error("", kFour, "header is not valid JSON");
  expect_header_error(std::string("{\"a\xFF\":{}}"), kFour, "header is not valid JSON");
  expect_header_error(R"({"a":1} {"b":2})", kFour, "header is not valid JSON");
  expect_header_error(R"([1,2])", kFour, "header is not a JSON object");
  expect_header_error(R"("text")", kFour, "header is not a JSON object");
  expect_header_error(R"({"a":{"dtype":"U8","shape":[[[4]]],"data_offsets":[0,4]}})", kFour,
                      "levels deep inside entry 'a'");
}

TEST_F(SafetensorsMalformed, EntryFields) {
  expect_header_error(R"({"a":[1]})", kFour, "tensor 'a': entry is not a JSON object");
  expect_header_error(R"({"a":{"dtype":"U8","shape":[4]}})", kFour,
                      "tensor 'a': missing field 'data_offsets'");
  expect_header_error(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4],"x":1}})", kFour,
                      "tensor 'a': unexpected field 'x'");
  expect_header_error(R"({"a":{"dtype":"F17","shape":[1],"data_offsets":[0,4]}})", kFour,
                      "tensor 'a': unknown or unsupported dtype 'F17'");
  expect_header_error(R"({"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", kFour,
                      "tensor 'a': field 'dtype' is not a string");
  expect_header_error(R"({"a":{"dtype":"U8","shape":4,"data_offsets":[0,4]}})", kFour,
                      "tensor 'a': field 'shape' is not an array");
  expect_header_error(R"({"a":{"dtype":"U8","shape":[-4],"data_offsets":[0,4]}})", kFour,
                      "field 'shape' element 0 is -4, expected a non-negative integer");
  expect_header_error(R"({"a":{"dtype":"U8","shape":[2,2.0],"data_offsets":[0,4]}})", kFour,
                      "field 'shape' element 1 is 2.0, expected a non-negative integer");
  expect_header_error(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4,4]}})", kFour,
                      "field 'data_offsets' has 3 elements");
  expect_header_error(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", kFour,
                      "has begin > end");
}

TEST_F(SafetensorsMalformed, ShapeDtypeMismatchAndOverflow) {
  expect_header_error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", kFour,
                      "tensor 'a': shape [2] x F32 needs 8 bytes but data_offsets [0, 4] span 4");
  expect_header_error(
      R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", kFour,
      "shape [4294967296,4294967296] x F32 overflows 64 bits");
  expect_header_error(R"({"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,4]}})",
                      kFour, "x F64 overflows 64 bits");
}

TEST_F(SafetensorsMalformed, SpansOutsideOverlappingAndGaps) {
  expect_header_error(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})", kFour,
                      "tensor 'a': data_offsets [0, 8] run past the end of the data section (4");
  expect_header_error(R"({"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},)"
                      R"("b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
                      kFour, "tensor 'b': data_offsets [2, 4] overlap tensor 'a' [0, 3]");
  expect_header_error(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                      R"("b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})",
                      kFour, "overlap tensor 'a'");
  expect_header_error(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                      R"("b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}})",
                      kFour,
                      "tensor 'b': data bytes [1, 2) before this tensor belong to no tensor");
  expect_header_error(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}})", kFour,
                      "data section is 4 bytes but the tensors cover only 2");
}

TEST_F(SafetensorsMalformed, DuplicateKeys) {
  expect_header_error(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                      R"("a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})",
                      kFour, "duplicate key 'a' in the header");
  expect_header_error(R"({"a":{"dtype":"U8","dtype":"I8","shape":[4],"data_offsets":[0,4]}})",
                      kFour, "duplicate key 'dtype' in entry 'a'");
  expect_header_error(
      R"({"__metadata__":{"k":"1","k":"2"},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})",
      kFour, "duplicate key 'k' in entry '__metadata__'");
  expect_header_error(
      R"({"__metadata__":{},"__metadata__":{},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})",
      kFour, "duplicate key '__metadata__' in the header");
}

TEST_F(SafetensorsMalformed, Metadata) {
  const std::string a = R"("a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]})";
  expect_header_error(R"({"__metadata__":["pt"],)" + a + "}", kFour,
                      "'__metadata__' is not a JSON object");
  expect_header_error(R"({"__metadata__":"pt",)" + a + "}", kFour,
                      "'__metadata__' is not a JSON object");
  expect_header_error(R"({"__metadata__":{"format":1},)" + a + "}", kFour,
                      "'__metadata__' entry 'format' is 1, expected a string");
  expect_header_error(R"({"__metadata__":{"format":{"x":"y"}},)" + a + "}", kFour,
                      "'__metadata__' entry 'format'");
}

// ---- the reference artefact -----------------------------------------------------------------

TEST(SafetensorsReal, QwenSigmaQ) {
  KVWB_REQUIRE_REAL(path, "qwen2_5_0_5b_sigma_q.safetensors");
  const std::vector<uint8_t> bytes = kvwb::io::read_file(path);
  ASSERT_EQ(bytes.size(), 2365304u);
  ASSERT_EQ(header_len(bytes), 6000u);
  const SafeTensorsFile f = kvwb::io::read_safetensors(path);
  EXPECT_TRUE(f.metadata.empty());
  ASSERT_EQ(f.tensors.size(), 72u);
  for (int l = 0; l < 24; ++l) {
    for (const char* kind : {"sigma", "chol", "inv_chol"}) {
      const std::string name = "layer_" + std::to_string(l) + "_" + kind;
      const SafeTensor* t = f.find(name);
      ASSERT_NE(t, nullptr) << name;
      EXPECT_EQ(t->dtype, "F32");
      EXPECT_EQ(t->shape, (std::vector<uint64_t>{2, 64, 64}));
      EXPECT_EQ(t->data.size(), 2u * 64 * 64 * 4);
    }
  }
  EXPECT_EQ(f.tensors.front().name, "layer_0_chol");
  EXPECT_EQ(f.tensors[3].name, "layer_10_chol");

  constexpr int kD = 64;
  const std::vector<float> chol = kvwb::io::tensor_to_f32(*f.find("layer_0_chol"));
  const std::vector<float> inv = kvwb::io::tensor_to_f32(*f.find("layer_0_inv_chol"));
  for (int h = 0; h < 2; ++h) {
    for (int r = 0; r < kD; ++r) {
      EXPECT_GT(chol[(h * kD + r) * kD + r], 0.0f) << "diagonal " << h << "," << r;
      for (int c = r + 1; c < kD; ++c) {
        ASSERT_EQ(chol[(h * kD + r) * kD + c], 0.0f) << "chol upper " << h << "," << r << "," << c;
        // The reference computed L^-1 by a general inverse: its strict upper triangle holds
        // round-off (|x| ~ 1e-15), not exact zeros as the workbench's own files do.
        ASSERT_LT(std::abs(inv[(h * kD + r) * kD + c]), 1e-12f)
            << "inv upper " << h << "," << r << "," << c;
      }
    }
  }
  double max_err = 0.0;
  for (int r = 0; r < kD; ++r) {
    for (int c = 0; c < kD; ++c) {
      double s = 0.0;
      for (int k = 0; k < kD; ++k)
        s += static_cast<double>(chol[r * kD + k]) * static_cast<double>(inv[k * kD + c]);
      max_err = std::max(max_err, std::abs(s - (r == c ? 1.0 : 0.0)));
    }
  }
  EXPECT_LT(max_err, 1e-5) << "layer 0 head 0: chol * inv_chol - I";

  // Our writer stores the same data section (same byte-wise name order, no gaps).
  const std::vector<uint8_t> again = kvwb::io::serialize_safetensors(f);
  const uint64_t n2 = header_len(again);
  ASSERT_EQ(again.size() - 8 - n2, bytes.size() - 8 - 6000);
  EXPECT_TRUE(
      std::equal(again.begin() + 8 + static_cast<long>(n2), again.end(), bytes.begin() + 8 + 6000));
  const SafeTensorsFile back = kvwb::io::parse_safetensors(again, "rewritten");
  ASSERT_EQ(back.tensors.size(), 72u);
  for (size_t i = 0; i < 72; ++i) expect_same_tensor(back.tensors[i], f.tensors[i]);
  EXPECT_EQ(back.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
}

// ---- randomised corruption ------------------------------------------------------------------

using kvwb::test::Draw;

TEST(SafetensorsFuzz, RandomMutationsOnlyThrowKvwbErrors) {
  SafeTensorsFile base = small_file();
  base.metadata = {{"format", "pt"}, {"k", "v"}};
  const std::vector<uint8_t> good = kvwb::io::serialize_safetensors(base);
  const uint64_t n = header_len(good);
  const std::string source = "fuzz.safetensors";
  Draw d{kvwb::codec::rng::kTagTest ^ 0x5354u};
  constexpr int kIterations = 4000;
  const kvwb::test::FuzzTally tally = kvwb::test::fuzz_reader(
      "safetensors", good, kIterations, source,
      [&](std::vector<uint8_t>& b) {
        const uint64_t kind = d.below(8);
        switch (kind) {
          case 0: {  // bit flips anywhere
            const uint64_t flips = 1 + d.below(4);
            for (uint64_t k = 0; k < flips; ++k) b[d.below(b.size())] ^= uint8_t(1u << d.below(8));
            break;
          }
          case 1: {  // byte overwrites anywhere
            const uint64_t count = 1 + d.below(4);
            for (uint64_t k = 0; k < count; ++k) b[d.below(b.size())] = uint8_t(d.next());
            break;
          }
          case 2:  // truncation at a random length
            b.resize(d.below(b.size()));
            break;
          case 3: {  // random header length: anything, near the true one, or around the file size
            uint64_t v = d.next();
            const uint64_t mode = d.below(3);
            if (mode == 1) v = n + d.below(17) - 8;
            if (mode == 2) v = b.size() + d.below(17) - 8;
            std::memcpy(b.data(), &v, 8);
            break;
          }
          case 4: {  // appended junk
            const uint64_t extra = 1 + d.below(64);
            for (uint64_t k = 0; k < extra; ++k) b.push_back(uint8_t(d.next()));
            break;
          }
          case 5: {  // header digits changed (valid JSON, inconsistent values)
            const uint64_t count = 1 + d.below(3);
            for (uint64_t k = 0; k < count; ++k) {
              const size_t p = 8 + d.below(n);
              if (b[p] >= '0' && b[p] <= '9') b[p] = uint8_t('0' + d.below(10));
            }
            break;
          }
          case 6: {  // a header byte deleted or inserted (shifts the data section)
            const size_t p = 8 + d.below(n);
            if (d.below(2))
              b.erase(b.begin() + static_cast<long>(p));
            else
              b.insert(b.begin() + static_cast<long>(p), uint8_t(d.next()));
            break;
          }
          default: {  // data-section bytes only (must always parse)
            const size_t data = b.size() - 8 - n;
            if (data > 0) b[8 + n + d.below(data)] = uint8_t(d.next());
            break;
          }
        }
        return kind;
      },
      [&](const std::vector<uint8_t>& b) {
        const SafeTensorsFile f = kvwb::io::parse_safetensors(b, source);
        uint64_t total = 0;
        for (const SafeTensor& t : f.tensors) {
          ASSERT_EQ(t.data.size(), t.element_count() * kvwb::io::safetensors_dtype_size(t.dtype));
          total += t.data.size();
        }
        ASSERT_LE(total, b.size());
      });
  EXPECT_GT(tally.accepted, kIterations / 20);
  EXPECT_GT(tally.rejected, kIterations / 2);
}

}  // namespace
