// Golden vectors, exact sizes and properties of the peer codecs (codec-peers.md §1–§5) and their
// KVCB containers (decisions.md #6, docs/container-peers.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "codec/format/container.h"
#include "base/errors.h"
#include "codec/codecs/fp8.h"
#include "codec/codecs/ggml_quants.h"
#include "codec/format/half.h"
#include "codec/codecs/kivi.h"
#include "codec/codecs/passthrough.h"
#include "codec/math/rng.h"
#include "codec/codecs/turboquant.h"
#include "tests/error_of.h"

using namespace kvwb;
using kvwb::test::error_of;
using namespace kvwb::codec;

namespace {

std::string hex(const uint8_t* p, size_t n) {
  std::string s;
  char b[3];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(b, sizeof b, "%02x", p[i]);
    s += b;
  }
  return s;
}

std::vector<float> gaussian(size_t n, size_t d, uint64_t key) {
  std::vector<float> x(n * d);
  for (size_t i = 0; i < x.size(); ++i) x[i] = rng::normal(key, i);
  return x;
}

UnitInput unit(const std::vector<float>& rows, size_t d, Stream s = Stream::kK) {
  UnitInput in;
  in.rows = rows.data();
  in.n = rows.size() / d;
  in.dim = d;
  in.info.stream = s;
  in.info.layer = 3;
  in.info.kv_head = 1;
  in.info.n_kv_heads = 2;
  return in;
}

// Payload of an encoded unit (the native bytes).
const uint8_t* payload(const EncodedUnit& e) { return e.bytes.data() + e.header_bytes; }

double sq_err(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return s;
}
double energy(const std::vector<float>& a) {
  double s = 0;
  for (float v : a) s += double(v) * v;
  return s;
}

// Round trip through a codec built by name; returns the decoded rows.
std::vector<float> round_trip(const std::string& name, const ParamMap& p,
                              const std::vector<float>& x, size_t d, Stream s = Stream::kK,
                              EncodedUnit* enc = nullptr) {
  auto c = make_codec(name, p, d);
  UnitInput in = unit(x, d, s);
  EncodedUnit e = c->encode(in);
  DecodedUnit u = c->decode(e.bytes, "unit.kvcb");
  EXPECT_EQ(u.rows.size(), x.size()) << name;
  EXPECT_EQ(u.n_block_rows, in.n) << name;
  if (enc) *enc = std::move(e);
  return u.rows;
}

const std::vector<std::string> kPeers = {"turbo2", "turbo3", "turbo4", "q8_0", "q4_0",     "q4_1",
                                         "q5_0",   "q5_1",   "iq4_nl", "kivi", "fp8_e4m3", "bf16"};

}  // namespace

// ---------------------------------------------------------------- TurboQuant (§1)

TEST(TurboSigns, MatchSpecListingAndCheckWords) {
  const char* s1 =
      "-++--+-+--+++++++-+-+--+++-++----++-++-+-++--+-++++-----+-++++-+"
      "--+---+---+---+++--+++--++-++-+--++-+-+-++++-+-++-++-----++-++-+";
  const char* s2 =
      "++++-++-+---+---++--+-+-+--+-+++++---+------+++-+-+++--+------++"
      "+-+----+-+-+--++-+-++-+----+--+-+-+++--+-+-++--+-+-++-+-+-----+-";
  const uint32_t w1[4] = {0xE46A0359u, 0x42F85949u, 0xA4C63BBBu, 0x49F250A9u};
  const uint32_t w2[4] = {0x16ACEE90u, 0x3F628FDCu, 0xB7A5357Au, 0xBEA56562u};
  for (int which = 1; which <= 2; ++which) {
    const auto t = turbo_signs(which);
    const char* listing = which == 1 ? s1 : s2;
    const uint32_t* words = which == 1 ? w1 : w2;
    uint32_t got[4] = {0, 0, 0, 0};
    int neg = 0;
    for (size_t j = 0; j < 128; ++j) {
      ASSERT_TRUE(t[j] == 1.0f || t[j] == -1.0f);
      EXPECT_EQ(t[j] < 0 ? '-' : '+', listing[j]) << "s" << which << "[" << j << "]";
      if (t[j] < 0) {
        got[j / 32] |= 1u << (j % 32);
        ++neg;
      }
    }
    for (int w = 0; w < 4; ++w) EXPECT_EQ(got[w], words[w]) << "s" << which << " word " << w;
    EXPECT_EQ(neg, which == 1 ? 60 : 70);
  }
  EXPECT_THROW(turbo_signs(3), InvalidArgument);
}

TEST(TurboTables, SymmetricAscendingAndSizes) {
  for (CodecId id : {CodecId::kTurbo2, CodecId::kTurbo3, CodecId::kTurbo4}) {
    const auto c = turbo_centroids(id);
    const auto m = turbo_midpoints(id);
    ASSERT_EQ(c.size(), size_t{1} << turbo_bits(id));
    ASSERT_EQ(m.size(), c.size() - 1);
    for (size_t i = 0; i < c.size(); ++i) EXPECT_EQ(c[i], -c[c.size() - 1 - i]);
    for (size_t i = 1; i < c.size(); ++i) EXPECT_LT(c[i - 1], c[i]);
    for (size_t i = 0; i < m.size(); ++i) {
      EXPECT_LT(c[i], m[i]);
      EXPECT_LT(m[i], c[i + 1]);
    }
  }
  EXPECT_EQ(turbo_block_bytes(CodecId::kTurbo2), 34u);
  EXPECT_EQ(turbo_block_bytes(CodecId::kTurbo3), 50u);
  EXPECT_EQ(turbo_block_bytes(CodecId::kTurbo4), 68u);
  EXPECT_FLOAT_EQ(turbo_midpoints(CodecId::kTurbo4)[0], -0.145560f);  // CPU value, not CUDA's
  EXPECT_THROW(turbo_bits(CodecId::kQ8_0), InvalidArgument);
}

TEST(TurboGolden, UnitVectorBlocksByteExact) {
  struct Case {
    const char* name;
    const char* hex;
    float x0;
  };
  const Case cases[] = {
      {"turbo2", "4c3900c3fcfcf0cc3c03f0f3ffc00c3cff0fcc3f330f33cc3fcf0c3c333c33ccfccf", 0.99975f},
      {"turbo3",
       "613daa6956565a6696a95a59556aa69655a5669599a599669565a69699969966566590eeac16dc8f623f7a35a5"
       "b76265a5be",
       0.99981f},
      {"turbo4",
       "e63b000022222dd2d2ddd2dd22ddd2d2d22d2d2222dd2ddddddd22d2d222d22ddddddd22d2d2dd2d2d2ddd222d"
       "2dd2d2dd2dddd2d222d22d2d2dd22d2d2dd2d2d2ddddd2",
       1.0000236f},
  };
  for (const Case& c : cases) {
    std::vector<float> x(128, 0.0f);
    x[0] = 1.0f;
    EncodedUnit e;
    const auto y = round_trip(c.name, {}, x, 128, Stream::kK, &e);
    EXPECT_EQ(hex(payload(e), e.reported_bytes), c.hex) << c.name;
    EXPECT_NEAR(y[0], c.x0, 1e-5) << c.name;
    for (size_t j = 1; j < 128; ++j) EXPECT_EQ(y[j], 0.0f) << c.name << " j=" << j;
    // The public group functions produce the same block.
    std::vector<uint8_t> blk(turbo_block_bytes(codec_id_from_name(c.name)));
    turbo_encode_group(codec_id_from_name(c.name), x.data(), blk.data());
    EXPECT_EQ(hex(blk.data(), blk.size()), c.hex) << c.name;
  }
}

TEST(TurboGolden, RampNormsAndRelativeMse) {
  std::vector<float> x(128);
  for (size_t j = 0; j < 128; ++j) x[j] = (static_cast<float>(j) - 63.5f) / 32.0f;
  EXPECT_NEAR(std::sqrt(energy(x)), 13.063546, 1e-5);
  const char* names[] = {"turbo2", "turbo3", "turbo4"};
  const float norms[] = {13.7578125f, 13.375f, 13.7734375f};
  const double rel[] = {0.1182, 0.0303, 0.0154};
  for (int i = 0; i < 3; ++i) {
    EncodedUnit e;
    const auto y = round_trip(names[i], {}, x, 128, Stream::kV, &e);
    const uint8_t* p = payload(e);
    EXPECT_EQ(f16_bits_to_f32(static_cast<uint16_t>(p[0] | (p[1] << 8))), norms[i]) << names[i];
    const double r = sq_err(x, y) / energy(x);
    EXPECT_NEAR(r, rel[i], 0.01 * rel[i]) << names[i];
  }
}

TEST(TurboGolden, TiesGoUp) {
  // A value exactly on the midpoint 0 (an all-zero group) lands in the upper cell.
  std::vector<float> x(128, 0.0f);
  uint8_t blk[68];
  turbo_encode_group(CodecId::kTurbo4, x.data(), blk);
  EXPECT_EQ(blk[2], 0);  // rnorm reserved
  EXPECT_EQ(blk[3], 0);
  for (int i = 4; i < 68; ++i) EXPECT_EQ(blk[i], 0x88) << i;  // idx 8 = first cell above 0
  turbo_encode_group(CodecId::kTurbo2, x.data(), blk);
  for (int i = 2; i < 34; ++i) EXPECT_EQ(blk[i], 0xAA) << i;  // idx 2
  EXPECT_EQ(blk[0], 0);                                       // norm 0
  EXPECT_EQ(blk[1], 0);
}

TEST(TurboSizes, ReportedBytesFollowPaddedFormula) {
  const struct {
    const char* name;
    uint64_t block;
  } types[] = {{"turbo2", 34}, {"turbo3", 50}, {"turbo4", 68}};
  for (const auto& t : types) {
    for (size_t d : {64, 96, 128, 192, 256}) {
      for (size_t n : {1, 3, 17}) {
        const auto x = gaussian(n, d, 0x100 + d + n);
        EncodedUnit e;
        const auto y = round_trip(t.name, {}, x, d, Stream::kK, &e);
        const uint64_t expect = n * ((d + 127) / 128) * t.block;
        EXPECT_EQ(e.reported_bytes, expect) << t.name << " D=" << d << " n=" << n;
        EXPECT_EQ(e.reference_bytes, expect);
        EXPECT_EQ(e.header_bytes, kCommonHeaderBytes);
        EXPECT_EQ(e.bytes.size(), e.header_bytes + expect);
        EXPECT_EQ(e.tail_bytes, 0u);
        EXPECT_EQ(e.codec_rows, n);
        EXPECT_EQ(turbo_bytes_per_vector(codec_id_from_name(t.name), d) * n, expect);
        // Decoded rows keep their norm up to fp16 rounding when D is a full group.
        if (d % 128 == 0) {
          for (size_t r = 0; r < n; ++r) {
            double ex = 0, ey = 0;
            for (size_t j = 0; j < 128; ++j) {
              ex += double(x[r * d + j]) * x[r * d + j];
              ey += double(y[r * d + j]) * y[r * d + j];
            }
            EXPECT_NEAR(std::sqrt(ey), std::sqrt(ex), 2e-3 * std::sqrt(ex));
          }
        }
      }
    }
  }
  // Per-vector bytes at D = 128 (the table): 34 / 50 / 68 per 128 values.
  EXPECT_EQ(turbo_bytes_per_vector(CodecId::kTurbo3, 128), 50u);
  EXPECT_EQ(turbo_bytes_per_vector(CodecId::kTurbo2, 128), 34u);
  EXPECT_EQ(turbo_bytes_per_vector(CodecId::kTurbo4, 128), 68u);
  EXPECT_EQ(turbo_bytes_per_vector(CodecId::kTurbo3, 64), 50u);
}

TEST(TurboMonotone, ErrorFallsWithBits) {
  const size_t d = 128;
  const auto x = gaussian(256, d, 0xAB);
  const double e2 = sq_err(x, round_trip("turbo2", {}, x, d)) / energy(x);
  const double e3 = sq_err(x, round_trip("turbo3", {}, x, d)) / energy(x);
  const double e4 = sq_err(x, round_trip("turbo4", {}, x, d)) / energy(x);
  EXPECT_GT(e2, e3);
  EXPECT_GT(e3, e4);
  EXPECT_LT(e2, 0.15);
  EXPECT_LT(e3, 0.05);
  EXPECT_LT(e4, 0.03);
}

TEST(TurboRange, NormBeyondFp16IsRangeError) {
  std::vector<float> x(128, 0.0f);
  x[5] = 1.0e5f;
  auto c = make_codec("turbo3", {}, 128);
  const std::string msg = error_of<Fp16Range>([&] { c->encode(unit(x, 128)); });
  EXPECT_NE(msg.find("norm"), std::string::npos) << msg;
}

// ---------------------------------------------------------------- ggml block quantisers (§2)

namespace {
std::vector<float> ggml_golden_block() {
  std::vector<float> x(32);
  for (size_t j = 0; j < 32; ++j) x[j] = (static_cast<float>(j) - 15.5f) / 4.0f;
  return x;
}
}  // namespace

TEST(GgmlGolden, Q8_0ByteExact) {
  const auto x = ggml_golden_block();
  EncodedUnit e;
  const auto y = round_trip("q8_0", {}, x, 32, Stream::kK, &e);
  EXPECT_EQ(hex(payload(e), e.reported_bytes),
            "d0278189919aa2aab2bac3cbd3dbe3ecf4fc040c141d252d353d464e565e666f777f");
  double mx = 0;
  for (size_t j = 0; j < 32; ++j) mx = std::max(mx, std::fabs(double(x[j]) - y[j]));
  EXPECT_NEAR(mx, 0.0146, 5e-5);
  EXPECT_NEAR(sq_err(x, y) / 32, 7.51e-5, 0.01 * 7.51e-5);
  EXPECT_EQ(e.stats.clipped, 0u);
}

TEST(GgmlGolden, Q4_0ByteExactAndClip) {
  const auto x = ggml_golden_block();
  EncodedUnit e;
  const auto y = round_trip("q4_0", {}, x, 32, Stream::kK, &e);
  EXPECT_EQ(hex(payload(e), e.reported_bytes), "c037809191a2a2b3b3c4c4d5d5e6e6f7f7f8");
  EXPECT_EQ(y[31], 3.390625f);
  EXPECT_EQ(y[0], -3.875f);
  EXPECT_NEAR(sq_err(x, y) / 32, 0.02625, 0.01 * 0.02625);
  // Only the last element (3.875: trunc(8 + 8.5) = 16) hits the MIN(15, ·) clamp.
  EXPECT_EQ(e.stats.clipped, 1u);
  EXPECT_EQ(e.stats.coded_values, 32u);
}

TEST(GgmlSizes, BlockBytesAndFormula) {
  const struct {
    const char* name;
    uint64_t block;
  } types[] = {{"q8_0", 34}, {"q4_0", 18}, {"q4_1", 20},
               {"q5_0", 22}, {"q5_1", 24}, {"iq4_nl", 18}};
  for (const auto& t : types) {
    EXPECT_EQ(ggml_block_bytes(codec_id_from_name(t.name)), t.block);
    for (size_t d : {32, 64, 96, 128, 256}) {
      for (size_t n : {1, 5}) {
        const auto x = gaussian(n, d, 0x200 + d + n);
        EncodedUnit e;
        round_trip(t.name, {}, x, d, Stream::kV, &e);
        EXPECT_EQ(e.reported_bytes, n * (d / 32) * t.block) << t.name << " D=" << d;
        EXPECT_EQ(e.reference_bytes, e.reported_bytes);
        EXPECT_EQ(e.bytes.size(), e.header_bytes + e.reported_bytes);
        EXPECT_EQ(e.header_bytes, kCommonHeaderBytes + 4);
      }
    }
  }
}

TEST(GgmlRoundTrip, ErrorBoundsAndMonotone) {
  const size_t d = 128;
  const auto x = gaussian(64, d, 0xC0FFEE);
  auto rel = [&](const char* n) { return sq_err(x, round_trip(n, {}, x, d)) / energy(x); };
  const double q8 = rel("q8_0"), q40 = rel("q4_0"), q41 = rel("q4_1"), q50 = rel("q5_0"),
               q51 = rel("q5_1"), iq4 = rel("iq4_nl");
  EXPECT_LT(q8, 1e-4);
  EXPECT_LT(q40, 0.02);
  EXPECT_LT(q41, 0.02);
  EXPECT_LT(q50, 0.005);
  EXPECT_LT(q51, 0.005);
  EXPECT_LT(iq4, 0.015);
  EXPECT_GT(q40, q50);
  EXPECT_GT(q50, q8);
  EXPECT_GT(q41, q51);
}

TEST(GgmlBlocks, Q5AndQ41LayoutsDecodeToTheirCodes) {
  // A block whose values sit exactly on the q4_1 / q5_1 grids decodes exactly.
  std::vector<float> x(32);
  for (size_t j = 0; j < 32; ++j) x[j] = static_cast<float>(j % 16) * 0.5f - 1.0f;  // min −1, d 0.5
  uint8_t blk[24];
  ggml_quantize_block(CodecId::kQ4_1, x.data(), blk);
  std::vector<float> y(32);
  ggml_dequantize_block(CodecId::kQ4_1, blk, y.data());
  for (size_t j = 0; j < 32; ++j) EXPECT_EQ(y[j], x[j]) << j;
  for (size_t j = 0; j < 32; ++j) x[j] = static_cast<float>(j) * 0.25f - 2.0f;  // 32 levels
  ggml_quantize_block(CodecId::kQ5_1, x.data(), blk);
  ggml_dequantize_block(CodecId::kQ5_1, blk, y.data());
  for (size_t j = 0; j < 32; ++j) EXPECT_EQ(y[j], x[j]) << j;
  uint32_t qh = 0;
  std::memcpy(&qh, blk + 4, 4);
  EXPECT_EQ(qh, 0xFFFF0000u);  // elements 16…31 have codes >= 16
  // q5_0: x = (j − 16)·0.125 with max −2.0 at j = 0 → d = 0.125, codes q = j (the top one clipped
  // from 32 is impossible here: the maximum positive is 1.875 = 15·d → code 31).
  for (size_t j = 0; j < 32; ++j) x[j] = (static_cast<float>(j) - 16.0f) * 0.125f;
  uint8_t b5[22];
  EXPECT_EQ(ggml_quantize_block(CodecId::kQ5_0, x.data(), b5), 0u);
  ggml_dequantize_block(CodecId::kQ5_0, b5, y.data());
  for (size_t j = 0; j < 32; ++j) EXPECT_EQ(y[j], x[j]) << j;
}

TEST(GgmlBlocks, Iq4nlFollowsTheReferenceSteps) {
  // Values that are exactly kv·s for s = −max/127 map to those codes; d is the weighted LS fit.
  const int kv[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
  std::vector<float> x(32);
  for (size_t j = 0; j < 32; ++j) x[j] = static_cast<float>(kv[j % 16]) * 0.01f;
  uint8_t blk[18];
  ggml_quantize_block(CodecId::kIq4Nl, x.data(), blk);
  std::vector<float> y(32);
  ggml_dequantize_block(CodecId::kIq4Nl, blk, y.data());
  EXPECT_EQ(blk[0] | (blk[1] << 8), f32_to_f16_bits(0.01f));
  for (size_t j = 0; j < 16; ++j) EXPECT_EQ(blk[2 + j], (j & 15) | ((j & 15) << 4)) << j;
  const float d = round_f16(0.01f);
  for (size_t j = 0; j < 32; ++j) EXPECT_EQ(y[j], d * static_cast<float>(kv[j % 16])) << j;
  // Ties go up: with max = −127/128 the scale is 1/128 and id·x is exact; −4.5 lies halfway
  // between kv[7] = −10 and kv[8] = 1 and takes code 8; −115.5 (between −127 and −104) code 1.
  std::fill(x.begin(), x.end(), 0.0f);
  x[0] = -127.0f / 128.0f;
  x[1] = -4.5f / 128.0f;
  x[2] = -115.5f / 128.0f;
  x[3] = -4.6f / 128.0f;
  ggml_quantize_block(CodecId::kIq4Nl, x.data(), blk);
  EXPECT_EQ(blk[2 + 0] & 15, 0);
  EXPECT_EQ(blk[2 + 1] & 15, 8);
  EXPECT_EQ(blk[2 + 2] & 15, 1);
  EXPECT_EQ(blk[2 + 3] & 15, 7);
  // All-zero block: d = 0, codes 0, decodes to zeros.
  std::vector<float> z(32, 0.0f);
  ggml_quantize_block(CodecId::kIq4Nl, z.data(), blk);
  for (int i = 0; i < 18; ++i) EXPECT_EQ(blk[i], 0) << i;
}

TEST(GgmlRotate, HadamardIsOrthonormalSelfInverse) {
  auto v = gaussian(1, 256, 0x51);
  const auto orig = v;
  hadamard_chunks(v.data(), 256, 128);
  EXPECT_NEAR(energy(v), energy(orig), 1e-4 * energy(orig));
  hadamard_chunks(v.data(), 256, 128);
  for (size_t j = 0; j < 256; ++j) EXPECT_NEAR(v[j], orig[j], 1e-5);
  EXPECT_EQ(ggml_rotation_size(GgmlRotate::kHadamardMax, 128), 128u);
  EXPECT_EQ(ggml_rotation_size(GgmlRotate::kHadamardMax, 96), 32u);
  EXPECT_EQ(ggml_rotation_size(GgmlRotate::kHadamard64, 128), 64u);
  EXPECT_EQ(ggml_rotation_size(GgmlRotate::kNone, 128), 0u);
  EXPECT_THROW(ggml_rotation_size(GgmlRotate::kHadamard64, 96), Unsupported);
}

TEST(GgmlRotate, RotationHelpsOutlierChannels) {
  const size_t d = 128;
  auto x = gaussian(64, d, 0x77);
  for (size_t r = 0; r < 64; ++r) x[r * d + 7] *= 40.0f;  // one outlier channel
  const double plain = sq_err(x, round_trip("q4_0", {}, x, d));
  const double rot = sq_err(x, round_trip("q4_0", {{"rotate", "hadamard_max"}}, x, d));
  const double rot64 = sq_err(x, round_trip("q4_0", {{"rotate", "hadamard64"}}, x, d));
  EXPECT_LT(rot, plain);
  EXPECT_LT(rot64, plain);
  // Rotated container records the mode; decode_container applies the inverse rotation.
  auto c = make_codec("q8_0", {{"rotate", "hadamard64"}}, d);
  const EncodedUnit e = c->encode(unit(x, d));
  EXPECT_EQ(e.bytes[48], 1);
  EXPECT_EQ(e.bytes[50] | (e.bytes[51] << 8), 64);
  const DecodedUnit u = decode_container(e.bytes, "rot.kvcb");
  EXPECT_LT(sq_err(x, u.rows) / energy(x), 1e-4);
}

TEST(GgmlErrors, UnsupportedDimAndRange) {
  EXPECT_THROW(make_codec("q8_0", {}, 100), Unsupported);
  EXPECT_THROW(make_codec("iq4_nl", {}, 48), Unsupported);
  EXPECT_THROW(make_codec("q4_0", {{"rotate", "hadamard64"}}, 96), Unsupported);
  EXPECT_NO_THROW(make_codec("q4_0", {{"rotate", "hadamard_max"}}, 96));
  std::string msg = error_of<InvalidArgument>([&] {
    make_codec("q5_1", {{"rotate", "fwht"}}, 128);
  });
  EXPECT_NE(msg.find("rotate"), std::string::npos) << msg;
  std::vector<float> x(32, 1.0f);
  x[3] = 1.0e7f;  // d = 1e7/127 > 65504
  msg = error_of<Fp16Range>([&] { make_codec("q8_0", {}, 32)->encode(unit(x, 32)); });
  EXPECT_NE(msg.find("scale d"), std::string::npos) << msg;
  std::fill(x.begin(), x.end(), 0.0f);
  x[0] = -70000.0f;  // q4_1 minimum beyond fp16 (d = 70000/15 fits)
  msg = error_of<Fp16Range>([&] { make_codec("q4_1", {}, 32)->encode(unit(x, 32)); });
  EXPECT_NE(msg.find("minimum m"), std::string::npos) << msg;
}

// ---------------------------------------------------------------- KIVI (§3)

TEST(KiviBytes, WorkedExample) {
  const size_t t = 2000, d = 128;
  const auto x = gaussian(t, d, 0x4B);
  auto c = make_codec("kivi", {{"bits", "2"}, {"group", "32"}, {"residual", "128"}}, d);
  UnitInput k = unit(x, d, Stream::kK);
  const EncodedUnit ek = c->encode(k);
  EXPECT_EQ(ek.reported_bytes, 125952u);
  EXPECT_EQ(ek.reference_bytes, 125952u);
  EXPECT_EQ(ek.tail_bytes, 144u * 128 * 2);
  EXPECT_EQ(ek.codec_rows, 1856u);
  EXPECT_EQ(ek.header_bytes, kCommonHeaderBytes + 8);
  UnitInput v = unit(x, d, Stream::kV);
  const EncodedUnit ev = c->encode(v);
  EXPECT_EQ(ev.reported_bytes, 122624u);
  EXPECT_EQ(ev.tail_bytes, 128u * 128 * 2);
  EXPECT_EQ(ev.codec_rows, 1872u);
  EXPECT_EQ(kivi_layout(Stream::kK, t, d, 2, 32, 128).total_bytes(), 125952u);
  EXPECT_EQ(kivi_layout(Stream::kV, t, d, 2, 32, 128).total_bytes(), 122624u);
  // b = 4, G = 128: 4.25 bits per quantised value (68-byte groups).
  const KiviLayout l4 = kivi_layout(Stream::kK, 4096, 128, 4, 128, 0);
  EXPECT_EQ(l4.group_bytes, 68u);
  EXPECT_EQ(l4.quant_bytes * 8, 4096u * 128 * 17 / 4);
  // Residual rows come back as fp16-rounded input; decode_container dispatches to kivi.
  const DecodedUnit uk = decode_container(ek.bytes, "k.kvcb");
  const DecodedUnit uv = decode_container(ev.bytes, "v.kvcb");
  for (size_t i = 1856 * d; i < t * d; ++i) EXPECT_EQ(uk.rows[i], round_f16(x[i]));
  for (size_t i = 1872 * d; i < t * d; ++i) EXPECT_EQ(uv.rows[i], round_f16(x[i]));
  EXPECT_EQ(uk.header.n_blocks, 1856u);
  EXPECT_EQ(uk.header.n_tail_rows, 144u);
  EXPECT_LT(sq_err(x, uk.rows) / energy(x), 0.2);
  EXPECT_LT(sq_err(x, uv.rows) / energy(x), 0.2);
}

TEST(KiviGroup, WorkedExample) {
  const float x[4] = {0.1f, 0.45f, -0.3f, 0.9f};
  uint8_t blk[5];
  EXPECT_EQ(kivi_quantize_group(x, 4, 1, 2, blk), 0u);
  EXPECT_EQ(blk[0], 1 | (2 << 2) | (0 << 4) | (3 << 6));
  EXPECT_EQ(f16_bits_to_f32(static_cast<uint16_t>(blk[1] | (blk[2] << 8))), 0.39990234f);
  EXPECT_EQ(f16_bits_to_f32(static_cast<uint16_t>(blk[3] | (blk[4] << 8))), -0.30004883f);
  float y[4];
  kivi_dequantize_group(blk, 4, 1, 2, y);
  EXPECT_NEAR(y[0], 0.0998535f, 1e-6);
  EXPECT_NEAR(y[1], 0.4997559f, 1e-6);
  EXPECT_NEAR(y[2], -0.3000488f, 1e-6);
  EXPECT_NEAR(y[3], 0.8996582f, 1e-6);
  // Same group through the codec: V stream, D = 4 (G_V = min(32, 4) = 4), no residual.
  std::vector<float> row(x, x + 4);
  EncodedUnit e;
  const auto dec = round_trip("kivi", {{"residual", "0"}}, row, 4, Stream::kV, &e);
  EXPECT_EQ(hex(payload(e), e.reported_bytes), hex(blk, 5));
  for (int j = 0; j < 4; ++j) EXPECT_EQ(dec[j], y[j]);
}

TEST(KiviLayout, KeysPerChannelValuesPerToken) {
  // K: each channel constant over a token group is coded exactly (Δ_q = 0 → codes 0, z = value).
  const size_t d = 8, t = 64;
  std::vector<float> x(t * d);
  for (size_t r = 0; r < t; ++r)
    for (size_t j = 0; j < d; ++j) x[r * d + j] = static_cast<float>(j) * 0.5f + (r < 32 ? 0 : 1);
  const auto yk = round_trip("kivi", {{"residual", "0"}}, x, d, Stream::kK);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(yk[i], x[i]) << i;
  // V: each token constant over its channels is coded exactly.
  std::vector<float> v(t * d);
  for (size_t r = 0; r < t; ++r)
    for (size_t j = 0; j < d; ++j) v[r * d + j] = static_cast<float>(r) * 0.25f;
  const auto yv = round_trip("kivi", {{"residual", "0"}}, v, d, Stream::kV);
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(yv[i], v[i]) << i;
  // K with T < G + R keeps everything in fp16.
  EncodedUnit e;
  const auto small = gaussian(100, 128, 0x9);
  round_trip("kivi", {}, small, 128, Stream::kK, &e);
  EXPECT_EQ(e.codec_rows, 0u);
  EXPECT_EQ(e.reported_bytes, 100u * 128 * 2);
  EXPECT_EQ(e.tail_bytes, e.reported_bytes);
}

TEST(KiviMonotone, FourBitsBeatTwo) {
  const size_t d = 128;
  const auto x = gaussian(512, d, 0x44);
  for (Stream s : {Stream::kK, Stream::kV}) {
    const double e2 = sq_err(x, round_trip("kivi", {{"residual", "0"}}, x, d, s));
    const double e4 = sq_err(x, round_trip("kivi", {{"residual", "0"}, {"bits", "4"}}, x, d, s));
    EXPECT_GT(e2, 4 * e4);
  }
}

TEST(KiviErrors, ParamsDimsAndPooled) {
  auto expect_param = [](const ParamMap& p, const std::string& name) {
    const std::string msg = error_of<InvalidArgument>([&] { make_codec("kivi", p, 128); });
    EXPECT_NE(msg.find("'" + name + "'"), std::string::npos) << name << ": " << msg;
  };
  expect_param({{"bits", "3"}}, "bits");
  expect_param({{"bits", "8"}}, "bits");
  expect_param({{"group", "64"}}, "group");
  expect_param({{"residual", "100"}}, "residual");
  expect_param({{"residual", "-32"}}, "residual");
  expect_param({{"resid", "128"}}, "resid");
  EXPECT_NO_THROW(make_codec("kivi", {{"group", "128"}, {"residual", "256"}}, 128));
  EXPECT_THROW(make_codec("kivi", {}, 100), Unsupported);
  EXPECT_NO_THROW(make_codec("kivi", {}, 16));  // G_V = min(32, 16) = 16
  auto c = make_codec("kivi", {}, 128);
  const auto x = gaussian(300, 128, 1);
  UnitInput in = unit(x, 128);
  in.info.block_rows = BlockRows::kPooledHeads;
  in.info.kv_head = kPooledHead;
  EXPECT_THROW(c->encode(in), Unsupported);
  std::vector<float> big(200 * 128, 0.5f);
  big[199 * 128 + 3] = 70000.0f;  // a residual value beyond fp16
  const std::string msg = error_of<Fp16Range>([&] { c->encode(unit(big, 128)); });
  EXPECT_NE(msg.find("residual"), std::string::npos) << msg;
}

// ---------------------------------------------------------------- FP8 E4M3 (§4)

TEST(Fp8, SpecExamples) {
  bool sat = false;
  EXPECT_EQ(f32_to_e4m3(0.3f, &sat), 0x2A);
  EXPECT_FALSE(sat);
  EXPECT_EQ(e4m3_to_f32(0x2A), 0.3125f);
  EXPECT_EQ(f32_to_e4m3(500.0f, &sat), 0x7E);
  EXPECT_TRUE(sat);
  EXPECT_EQ(e4m3_to_f32(0x7E), 448.0f);
  sat = false;
  EXPECT_EQ(f32_to_e4m3(0.001f, &sat), 0x01);
  EXPECT_FALSE(sat);
  EXPECT_EQ(e4m3_to_f32(0x01), 0.001953125f);
  EXPECT_EQ(f32_to_e4m3(-500.0f), 0xFE);
  EXPECT_EQ(f32_to_e4m3(448.0f, &sat), 0x7E);
  EXPECT_TRUE(std::isnan(e4m3_to_f32(0x7F)));
}

TEST(Fp8, RoundTripAllCodesAndTiesToEven) {
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F) continue;
    const float v = e4m3_to_f32(static_cast<uint8_t>(c));
    EXPECT_EQ(f32_to_e4m3(v), c) << c;
  }
  EXPECT_EQ(f32_to_e4m3(1.0625f), 0x38);                // between 1.0 (m 0) and 1.125 (m 1): even
  EXPECT_EQ(f32_to_e4m3(1.1875f), 0x3A);                // between 1.125 and 1.25: m 2
  EXPECT_EQ(f32_to_e4m3(std::ldexp(1.0f, -10)), 0x00);  // half the smallest subnormal → 0
  EXPECT_EQ(f32_to_e4m3(3 * std::ldexp(1.0f, -10)), 0x02);  // 1.5 units → 2 (even)
  EXPECT_EQ(f32_to_e4m3(464.0f), 0x7E);  // tie between 448 and (NaN slot) 480 → 448
  EXPECT_EQ(f32_to_e4m3(std::ldexp(1.0f, -6) * 0.999f), 0x08);  // rounds up into the normals
}

TEST(Fp8, CodecScaleSaturationAndBytes) {
  auto c = make_codec("fp8_e4m3", {{"scale_mode", "absmax"}}, 32);
  EXPECT_EQ(c->per_layer_stream_bytes(), 4u);
  std::vector<float> x(64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.3f * (static_cast<float>(i) - 31.0f);
  x[5] = 500.0f;
  x[9] = -1000.0f;
  UnitInput in = unit(x, 32);
  in.layer_scale = 1.0f;
  EncodedUnit e = c->encode(in);
  EXPECT_EQ(e.reported_bytes, 64u);
  EXPECT_EQ(e.header_bytes, kCommonHeaderBytes + 4);
  EXPECT_EQ(e.stats.clipped, 2u);
  EXPECT_EQ(e.stats.coded_values, 64u);
  EXPECT_EQ(payload(e)[5], 0x7E);
  EXPECT_EQ(payload(e)[9], 0xFE);
  // Scale 2: stored in the parameter block, decode multiplies it back.
  in.layer_scale = 2.0f;
  e = c->encode(in);
  float stored = 0;
  std::memcpy(&stored, e.bytes.data() + 48, 4);
  EXPECT_EQ(stored, 2.0f);
  EXPECT_EQ(e.stats.clipped, 1u);  // only −1000/2 = −500 saturates now
  const DecodedUnit u = decode_container(e.bytes, "fp8.kvcb");
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_EQ(u.rows[i], e4m3_to_f32(f32_to_e4m3(x[i] / 2.0f)) * 2.0f) << i;
  EXPECT_EQ(fp8_absmax_scale(896.0f), 2.0f);
  EXPECT_EQ(fp8_absmax_scale(0.0f), 1.0f);
  in.layer_scale = 0.0f;
  EXPECT_THROW(c->encode(in), InvalidArgument);
  const std::string msg = error_of<InvalidArgument>([&] {
    make_codec("fp8_e4m3", {{"scale_mode", "calibrated"}}, 32);
  });
  EXPECT_NE(msg.find("scale_mode"), std::string::npos) << msg;
}

// ---------------------------------------------------------------- bf16 (§5)

TEST(Bf16, ExactAndRounded) {
  std::vector<float> x = gaussian(4, 64, 0xBF);
  x[0] = 1.0f;
  x[1] = -0.15625f;  // exactly representable
  EncodedUnit e;
  const auto y = round_trip("bf16", {}, x, 64, Stream::kV, &e);
  EXPECT_EQ(e.reported_bytes, 4u * 64 * 2);
  EXPECT_EQ(e.header_bytes, kCommonHeaderBytes);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], round_bf16(x[i])) << i;
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -0.15625f);
  // Round trip of bf16 values is the identity.
  const auto z = round_trip("bf16", {}, y, 64);
  EXPECT_EQ(z, y);
  std::vector<float> big(64, 0.0f);
  big[10] = 3.4028235e38f;  // rounds to infinity in bf16
  const std::string msg =
      error_of<Fp16Range>([&] { make_codec("bf16", {}, 64)->encode(unit(big, 64)); });
  EXPECT_NE(msg.find("column 10"), std::string::npos) << msg;
}

// ---------------------------------------------------------------- all peers: containers

TEST(PeerContainer, RoundTripMatchesDirectReconstruction) {
  const size_t d = 128;
  const auto x = gaussian(300, d, 0xD1);
  for (const auto& name : kPeers) {
    const CodecId id = codec_id_from_name(name);
    auto c = make_codec(name, {}, d);
    EXPECT_EQ(c->id(), id);
    EXPECT_EQ(c->name(), name);
    UnitInput in = unit(x, d, Stream::kV);
    in.info.sequence = 2;
    in.info.layer = 7;
    in.info.domain_flags = 0;
    const EncodedUnit e = c->encode(in);
    const DecodedUnit a = c->decode(e.bytes, "a.kvcb");
    const DecodedUnit b = decode_container(e.bytes, "b.kvcb");
    EXPECT_EQ(a.rows, b.rows) << name;
    EXPECT_EQ(a.header.codec_id, id);
    EXPECT_EQ(a.header.layer, 7u);
    EXPECT_EQ(a.header.sequence, 2u);
    EXPECT_EQ(a.header.kv_head, 1u);
    EXPECT_EQ(a.header.stream, Stream::kV);
    EXPECT_EQ(a.header.head_dim, d);
    EXPECT_EQ(e.reported_bytes, e.bytes.size() - e.header_bytes) << name;
    // Direct reconstruction with the public per-block functions.
    std::vector<float> direct(x.size());
    if (name.rfind("turbo", 0) == 0) {
      std::vector<uint8_t> blk(turbo_block_bytes(id));
      for (size_t r = 0; r < 300; ++r) {
        turbo_encode_group(id, x.data() + r * d, blk.data());
        turbo_decode_group(id, blk.data(), direct.data() + r * d);
      }
    } else if (name == "kivi") {
      const size_t tv = 300 - 128;
      uint8_t blk[12];
      for (size_t r = 0; r < 300; ++r)
        for (size_t g = 0; g < d / 32; ++g) {
          if (r < tv) {
            kivi_quantize_group(x.data() + r * d + g * 32, 32, 1, 2, blk);
            kivi_dequantize_group(blk, 32, 1, 2, direct.data() + r * d + g * 32);
          } else {
            for (size_t j = 0; j < 32; ++j)
              direct[r * d + g * 32 + j] = round_f16(x[r * d + g * 32 + j]);
          }
        }
    } else if (name == "fp8_e4m3") {
      for (size_t i = 0; i < x.size(); ++i) direct[i] = e4m3_to_f32(f32_to_e4m3(x[i]));
    } else if (name == "bf16") {
      for (size_t i = 0; i < x.size(); ++i) direct[i] = round_bf16(x[i]);
    } else {
      std::vector<uint8_t> blk(ggml_block_bytes(id));
      for (size_t b = 0; b < x.size() / 32; ++b) {
        ggml_quantize_block(id, x.data() + b * 32, blk.data());
        ggml_dequantize_block(id, blk.data(), direct.data() + b * 32);
      }
    }
    EXPECT_EQ(a.rows, direct) << name;
  }
}

TEST(PeerContainer, TruncatedLongAndForeignContainersAreFormatErrors) {
  const size_t d = 64;
  const auto x = gaussian(40, d, 0xE1);
  for (const auto& name : kPeers) {
    auto c = make_codec(name, {}, d);
    const EncodedUnit e = c->encode(unit(x, d));
    std::vector<uint8_t> cut(e.bytes.begin(), e.bytes.end() - 1);
    std::string msg = error_of<FormatError>([&] { c->decode(cut, "cut.kvcb"); });
    EXPECT_NE(msg.find("cut.kvcb"), std::string::npos) << name << ": " << msg;
    EXPECT_NE(msg.find("truncated"), std::string::npos) << name << ": " << msg;
    EXPECT_THROW(decode_container(cut, "cut.kvcb"), FormatError) << name;
    std::vector<uint8_t> header_only(e.bytes.begin(), e.bytes.begin() + 20);
    EXPECT_THROW(c->decode(header_only, "short.kvcb"), FormatError) << name;
    std::vector<uint8_t> longer = e.bytes;
    longer.push_back(0);
    msg = error_of<FormatError>([&] { c->decode(longer, "long.kvcb"); });
    EXPECT_NE(msg.find("trailing"), std::string::npos) << name << ": " << msg;
    // A container of another codec is refused by name.
    auto other = make_codec(name == "bf16" ? "q8_0" : "bf16", {}, d);
    msg = error_of<FormatError>([&] { other->decode(e.bytes, "foreign.kvcb"); });
    EXPECT_NE(msg.find(name), std::string::npos) << name << ": " << msg;
  }
}

TEST(PeerContainer, ZeroAndConstantBlocksDecodeFinite) {
  for (const auto& name : kPeers) {
    for (float value : {0.0f, 0.75f, -3.0f}) {
      const size_t d = 128;
      const std::vector<float> x(200 * d, value);
      auto c = make_codec(name, {}, d);
      UnitInput in = unit(x, d);
      const EncodedUnit e = c->encode(in);
      const DecodedUnit u = c->decode(e.bytes, "const.kvcb");
      for (size_t i = 0; i < u.rows.size(); ++i) ASSERT_TRUE(std::isfinite(u.rows[i])) << name;
      if (value == 0.0f)
        for (size_t i = 0; i < u.rows.size(); ++i) ASSERT_EQ(u.rows[i], 0.0f) << name << " " << i;
      else
        EXPECT_LT(sq_err(x, u.rows) / energy(x), name.rfind("turbo", 0) == 0 ? 0.15 : 0.01)
            << name << " value " << value;
    }
  }
}

TEST(PeerContainer, NonFiniteInputAndDimMismatch) {
  for (const auto& name : kPeers) {
    std::vector<float> x(4 * 64, 0.5f);
    x[70] = std::nanf("");
    auto c = make_codec(name, {}, 64);
    const std::string msg = error_of<NonFiniteInput>([&] { c->encode(unit(x, 64)); });
    EXPECT_NE(msg.find("row 1"), std::string::npos) << name << ": " << msg;
    x[70] = 0.5f;
    UnitInput in = unit(x, 64);
    in.dim = 32;
    in.n = 8;
    EXPECT_THROW(c->encode(in), InvalidArgument) << name;
  }
}

TEST(PeerParams, UnknownKeysAndChoices) {
  for (const char* n : {"turbo2", "turbo3", "turbo4", "bf16"}) {
    EXPECT_TRUE(codec_params(n).empty()) << n;
    const std::string msg = error_of<InvalidArgument>([&] { make_codec(n, {{"bits", "3"}}, 128); });
    EXPECT_NE(msg.find("'bits'"), std::string::npos) << n << ": " << msg;
  }
  EXPECT_EQ(codec_params("q4_0").size(), 1u);
  EXPECT_EQ(codec_params("q4_0")[0].name, "rotate");
  EXPECT_EQ(codec_params("q4_0")[0].default_value, "none");
  EXPECT_EQ(codec_params("fp8_e4m3")[0].default_value, "unit");
  EXPECT_EQ(codec_params("kivi").size(), 3u);
}
