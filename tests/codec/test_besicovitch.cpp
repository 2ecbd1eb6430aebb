// Besicovitch product codec (codec-besicovitch.md): codebook goldens (§3), encode/decode rules
// (§4, §5), byte layout and worked examples (§6), container (§6.1) and the checks of §7.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "codec/codecs/besicovitch.h"
#include "codec/format/bitpack.h"
#include "codec/codec.h"
#include "base/errors.h"
#include "codec/format/half.h"
#include "codec/math/quantizer.h"
#include "codec/math/rng.h"

using namespace kvwb;
using namespace kvwb::codec;

namespace {

BesiConfig cfg(unsigned g, unsigned db, bool quantized = false, unsigned mb = 4,
               bool mean = false) {
  BesiConfig c;
  c.group_size = g;
  c.direction_bits = db;
  c.magnitude = quantized ? BesiMagnitude::kQuantized : BesiMagnitude::kF16;
  c.magnitude_bits = mb;
  c.subtract_mean = mean;
  return c;
}

/// Uniform [lo, hi) data from the project RNG (TAG_TEST ^ seed), row-major [n, d].
std::vector<float> uniform(size_t n, size_t d, float lo, float hi, uint64_t seed) {
  std::vector<float> x(n * d);
  const uint64_t key = seed ^ rng::kTagTest;
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = static_cast<float>(lo + (hi - lo) * rng::u01c(rng::splitmix(key, i)));
  return x;
}

UnitInput unit(const std::vector<float>& x, size_t d, uint32_t block_size = 512) {
  UnitInput in;
  in.rows = x.data();
  in.n = x.size() / d;
  in.dim = d;
  in.info.block_size = block_size;
  return in;
}

double mse(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return s / static_cast<double>(a.size());
}

/// Encode + decode through the codec's container.
std::vector<float> round_trip(const BesiConfig& c, const std::vector<float>& x, size_t d,
                              uint32_t block_size = 512) {
  BesicovitchCodec codec(c, d);
  const EncodedUnit e = codec.encode(unit(x, d, block_size));
  return codec.decode(e.bytes, "mem").rows;
}

uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }

}  // namespace

// ---- §3 codebooks ----------------------------------------------------------------------------

TEST(BesiCodebook, UnitNormsAndLeadingSign) {
  for (unsigned g = 2; g <= 8; ++g) {
    for (unsigned db = 1; db <= 10; ++db) {
      const auto cb = besicovitch_codebook(g, db);
      ASSERT_EQ(cb.size(), (size_t{1} << db) * g);
      const double tol = g == 2 ? 1e-5 : 1e-4;
      for (size_t i = 0; i < cb.size() / g; ++i) {
        double n2 = 0.0;
        for (unsigned k = 0; k < g; ++k) n2 += double(cb[i * g + k]) * cb[i * g + k];
        ASSERT_NEAR(std::sqrt(n2), 1.0, tol) << "g " << g << " db " << db << " entry " << i;
        if (g >= 3) {
          unsigned k = 0;
          while (k < g && cb[i * g + k] == 0.0f) ++k;
          ASSERT_LT(k, g);
          ASSERT_GT(cb[i * g + k], 0.0f) << "g " << g << " db " << db << " entry " << i;
        }
      }
    }
  }
}

TEST(BesiCodebook, G2HalfCircleGolden) {
  const auto cb = besicovitch_codebook(2, 3);
  const float want[8][2] = {{1.0f, 0.0f},
                            {0.9238795f, 0.38268343f},
                            {0.70710677f, 0.70710677f},
                            {0.38268343f, 0.9238795f},
                            {6.123234e-17f, 1.0f},
                            {-0.38268343f, 0.9238795f},
                            {-0.70710677f, 0.70710677f},
                            {-0.9238795f, 0.38268343f}};
  for (int i = 0; i < 8; ++i) {
    EXPECT_FLOAT_EQ(cb[2 * i], want[i][0]) << i;
    EXPECT_FLOAT_EQ(cb[2 * i + 1], want[i][1]) << i;
  }
}

TEST(BesiCodebook, G3FibonacciGolden) {
  const auto cb = besicovitch_codebook(3, 3);
  const struct {
    int i;
    float v[3];
  } want[] = {{0, {0.9375f, 0.34798527f, 0.0f}},
              {1, {0.8125f, -0.42985743f, 0.3937846f}},
              {2, {0.6875f, 0.06348719f, -0.7234039f}},
              {7, {0.0625f, -0.46000594f, -0.88571346f}}};
  for (const auto& w : want)
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(cb[3 * w.i + k], w.v[k], 1e-6) << w.i << "," << k;
}

TEST(BesiCodebook, G4SeededGolden) {
  EXPECT_EQ(rng::kTagBesi ^ (256u * 4 + 4), 0x424553495F444D56ull);
  const auto cb = besicovitch_codebook(4, 4);
  const float d0[4] = {0.33376235f, -0.11780787f, 0.92495966f, 0.13846904f};
  const float d1[4] = {0.27876002f, 0.27460685f, 0.90538204f, -0.16482492f};
  for (int k = 0; k < 4; ++k) {
    EXPECT_NEAR(cb[k], d0[k], 1e-6) << k;
    EXPECT_NEAR(cb[4 + k], d1[k], 1e-6) << k;
  }
}

TEST(BesiCodebook, CachedAndThreadSafe) {
  std::vector<const float*> ptrs(4, nullptr);
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&ptrs, t] { ptrs[t] = besicovitch_codebook(7, 9).data(); });
  for (auto& t : ts) t.join();
  for (int t = 1; t < 4; ++t) EXPECT_EQ(ptrs[t], ptrs[0]);
  EXPECT_EQ(besicovitch_codebook(7, 9).data(), ptrs[0]);
  EXPECT_THROW(besicovitch_codebook(9, 3), InvalidArgument);
  EXPECT_THROW(besicovitch_codebook(2, 11), InvalidArgument);
}

// ---- §4 assignment and quantisation ------------------------------------------------------------

TEST(BesiEncode, AxisVectorsAndZeroGroup) {
  const auto cb = besicovitch_codebook(2, 6);
  const float a[2] = {3.0f, 0.0f}, b[2] = {-2.5f, 0.0f}, z[2] = {0.0f, 0.0f};
  auto ra = besicovitch_assign(a, 2, cb);
  EXPECT_EQ(ra.id, 0);
  EXPECT_EQ(ra.alpha, 3.0f);
  auto rb = besicovitch_assign(b, 2, cb);
  EXPECT_EQ(rb.id, 0);
  EXPECT_EQ(rb.alpha, -2.5f);
  auto rz = besicovitch_assign(z, 2, cb);
  EXPECT_EQ(rz.id, 0);
  EXPECT_EQ(rz.alpha, 0.0f);
}

TEST(BesiEncode, ReachableLevels) {
  EXPECT_EQ(besicovitch_reachable_levels(1), 2u);
  EXPECT_EQ(besicovitch_reachable_levels(2), 4u);
  EXPECT_EQ(besicovitch_reachable_levels(3), 4u);
  EXPECT_EQ(besicovitch_reachable_levels(4), 8u);
  EXPECT_THROW(besicovitch_reachable_levels(5), InvalidArgument);
}

TEST(BesiEncode, MultiplesOfCodebookEntriesAreNearLossless) {
  for (unsigned g : {2u, 3u, 4u}) {
    const unsigned db = 4, m = 16;
    const size_t d = 12 * g, groups = d / g;
    const auto cb = besicovitch_codebook(g, db);
    std::vector<float> x(8 * d);
    for (size_t r = 0; r < 8; ++r)
      for (size_t k = 0; k < groups; ++k) {
        const size_t id = (3 * k + r) % m;
        for (unsigned j = 0; j < g; ++j) x[r * d + k * g + j] = 2.5f * cb[id * g + j];
      }
    const auto y = round_trip(cfg(g, db), x, d);
    EXPECT_LT(mse(x, y), 1e-5) << "g " << g;
  }
}

TEST(BesiEncode, UniformDataF16Db8) {
  const auto x = uniform(64, 128, -1.0f, 1.0f, 101);
  const auto y = round_trip(cfg(2, 8), x, 128);
  EXPECT_LT(mse(x, y), 1e-3);
}

TEST(BesiEncode, UniformDataQuantizedMb4) {
  const auto x = uniform(32, 64, -2.0f, 2.0f, 202);
  const auto y = round_trip(cfg(2, 6, true, 4), x, 64);
  EXPECT_LT(mse(x, y), 0.1);
}

TEST(BesiEncode, MeanSubtractionHelpsOnOffsetData) {
  const size_t d = 16;
  auto x = uniform(64, d, -0.1f, 0.1f, 303);
  for (size_t i = 0; i < 64; ++i)
    for (size_t j = 0; j < d; ++j) x[i * d + j] += (j % 2 == 0) ? 10.0f : -5.0f;
  const double off = mse(x, round_trip(cfg(2, 6, false, 4, false), x, d));
  const double on = mse(x, round_trip(cfg(2, 6, false, 4, true), x, d));
  EXPECT_LT(on * 20.0, off) << "mean on " << on << ", off " << off;
}

// ---- §6 byte layout --------------------------------------------------------------------------

TEST(BesiLayout, FourDimensionalWorkedExample) {
  const float x[4] = {0.6f, 0.8f, -2.0f, 0.1f};
  const BesiConfig c = cfg(2, 3, true, 4);
  const auto cb = besicovitch_codebook(2, 3);
  const auto g0 = besicovitch_assign(x, 2, cb);
  EXPECT_EQ(g0.id, 2);
  EXPECT_NEAR(g0.alpha, 0.98995f, 1e-5);
  const auto g1 = besicovitch_assign(x + 2, 2, cb);
  EXPECT_EQ(g1.id, 0);
  EXPECT_EQ(g1.alpha, -2.0f);

  std::vector<uint8_t> code;
  besicovitch_encode_vector(x, 4, c, code);
  EXPECT_EQ(code, (std::vector<uint8_t>{0x02, 0x49, 0x00, 0x40}));
  EXPECT_EQ(besicovitch_bytes_per_vector(c, 4), 4u);

  float y[4];
  besicovitch_decode_vector(code.data(), 4, c, nullptr, y);
  EXPECT_NEAR(y[0], 0.5494f, 1e-4);
  EXPECT_NEAR(y[1], 0.5494f, 1e-4);
  EXPECT_NEAR(y[2], -1.8844f, 1e-6);
  EXPECT_EQ(y[3], 0.0f);
  EXPECT_EQ(y[0], 0.3885f * 2.0f * 0.70710677f);

  // The same code inside the container: one block record of one row.
  BesicovitchCodec codec(c, 4);
  const std::vector<float> xv(x, x + 4);
  const EncodedUnit e = codec.encode(unit(xv, 4, 8));
  ASSERT_EQ(e.bytes.size(), 56u + 4u + 4u);
  EXPECT_EQ(std::vector<uint8_t>(e.bytes.begin() + 56, e.bytes.end()),
            (std::vector<uint8_t>{0x01, 0x00, 0x00, 0x00, 0x02, 0x49, 0x00, 0x40}));
  const auto d = codec.decode(e.bytes, "mem");
  for (int j = 0; j < 4; ++j) EXPECT_EQ(d.rows[j], y[j]);
}

TEST(BesiLayout, SettingsTableBytesPerVector) {
  EXPECT_EQ(besicovitch_bytes_per_vector(cfg(2, 6), 128), 176u);
  EXPECT_EQ(besicovitch_bytes_per_vector(cfg(2, 5, true, 4), 128), 74u);
  EXPECT_EQ(besicovitch_bytes_per_vector(cfg(2, 3, true, 4), 128), 58u);
  EXPECT_EQ(besicovitch_bytes_per_vector(cfg(4, 8, true, 4), 128), 50u);
}

TEST(BesiLayout, VBesiD3M4WorkedExample) {
  const size_t d = 128;
  const BesiConfig c = cfg(2, 3, true, 4, true);
  EXPECT_EQ(besicovitch_bytes_per_vector(c, d), 58u);
  const auto x = uniform(512, d, -1.0f, 1.0f, 404);
  BesicovitchCodec codec(c, d);
  const EncodedUnit e = codec.encode(unit(x, d, 512));
  EXPECT_EQ(e.header_bytes, 56u);
  EXPECT_EQ(e.reported_bytes, 29956u);
  EXPECT_EQ(e.bytes.size(), 56u + 29956u);
  EXPECT_EQ(e.reference_bytes, 512u * 58u + 256u);  // 58.5 B/vector
  EXPECT_EQ(e.tail_bytes, 0u);
  EXPECT_EQ(e.codec_rows, 512u);
  EXPECT_EQ(e.stats.coded_values, 512u * 64u);
  EXPECT_NEAR(512.0 * 256.0 / static_cast<double>(e.reported_bytes), 4.375, 1e-3);
}

TEST(BesiLayout, SerialisedCodesMatchTheEncoderExactly) {
  const size_t d = 64, groups = 32;
  const auto x = uniform(16, d, -3.0f, 3.0f, 505);
  struct Case {
    unsigned db, mb;
    bool quant;
  };
  for (const Case cs : {Case{3, 3, true}, Case{4, 4, true}, Case{6, 0, false}, Case{7, 0, false}}) {
    const BesiConfig c = cfg(2, cs.db, cs.quant, cs.quant ? cs.mb : 4);
    const size_t want_bytes =
        (groups * cs.db + 7) / 8 + (cs.quant ? (groups * cs.mb + 7) / 8 + 2 : 2 * groups);
    ASSERT_EQ(besicovitch_bytes_per_vector(c, d), want_bytes);
    const auto cb = besicovitch_codebook(2, cs.db);
    for (size_t r = 0; r < 16; ++r) {
      const float* xr = x.data() + r * d;
      std::vector<uint8_t> code;
      besicovitch_encode_vector(xr, d, c, code);
      ASSERT_EQ(code.size(), want_bytes);
      // Deserialise the fields and compare with an independent computation of the encoder.
      std::vector<uint16_t> ids(groups), mags(groups);
      unpack_bits(code.data(), groups, cs.db, ids.data());
      const uint8_t* p = code.data() + (groups * cs.db + 7) / 8;
      std::vector<float> alpha(groups);
      float s = 1e-12f;
      for (size_t k = 0; k < groups; ++k) {
        const auto a = besicovitch_assign(xr + 2 * k, 2, cb);
        ASSERT_EQ(ids[k], a.id) << "row " << r << " group " << k;
        alpha[k] = a.alpha;
        s = std::max(s, std::fabs(a.alpha));
      }
      if (!cs.quant) {
        for (size_t k = 0; k < groups; ++k) ASSERT_EQ(le16(p + 2 * k), f32_to_f16_bits(alpha[k]));
      } else {
        unpack_bits(p, groups, cs.mb, mags.data());
        const auto table = gaussian_table(cs.mb);
        for (size_t k = 0; k < groups; ++k)
          ASSERT_EQ(mags[k], quantize_nearest(alpha[k] / s, table)) << "group " << k;
        ASSERT_EQ(le16(p + (groups * cs.mb + 7) / 8), f32_to_f16_bits(s));
      }
      // Decoding the bytes gives exactly the reconstruction of the deserialised fields (§5).
      std::vector<float> y(d);
      besicovitch_decode_vector(code.data(), d, c, nullptr, y.data());
      for (size_t k = 0; k < groups; ++k) {
        const float ah =
            cs.quant ? gaussian_table(cs.mb)[mags[k]] * round_f16(s) : round_f16(alpha[k]);
        for (int j = 0; j < 2; ++j) ASSERT_EQ(y[2 * k + j], ah * cb[ids[k] * 2 + j]);
      }
    }
  }
}

// ---- §6.1 container --------------------------------------------------------------------------

TEST(BesiContainer, HeaderParamsAndPartialLastBlock) {
  const size_t d = 32, n = 1000;
  const uint32_t bs = 256;
  const BesiConfig c = cfg(4, 8, true, 3, true);
  auto x = uniform(n, d, -1.0f, 1.0f, 606);
  for (size_t i = 768; i < n; ++i)
    for (size_t j = 0; j < d; ++j) x[i * d + j] += 3.0f;  // the last block has its own mean
  BesicovitchCodec codec(c, d);
  UnitInput in = unit(x, d, bs);
  in.info.sequence = 3;
  in.info.layer = 7;
  in.info.kv_head = 1;
  in.info.n_kv_heads = 2;
  in.info.stream = Stream::kV;
  const EncodedUnit e = codec.encode(in);
  const size_t bpv = besicovitch_bytes_per_vector(c, d);
  EXPECT_EQ(bpv, 8u + 3u + 2u);  // G = 8: ids 8 at 8 bits, magnitudes 8 at 3 bits, scale
  const size_t want = 3 * (4 + 2 * d + bs * bpv) + (4 + 2 * d + 232 * bpv);
  EXPECT_EQ(e.reported_bytes, want);
  EXPECT_EQ(e.bytes.size(), 56 + want);
  EXPECT_EQ(e.reference_bytes, n * bpv + 4 * 2 * d);
  EXPECT_EQ(e.codec_rows, n);

  const uint8_t* b = e.bytes.data();
  EXPECT_EQ(le16(b + 8), 2);    // codec id
  EXPECT_EQ(le16(b + 10), 56);  // header_bytes
  uint32_t v32;
  std::memcpy(&v32, b + 32, 4);
  EXPECT_EQ(v32, 4u);  // n_blocks = ceil(1000 / 256)
  std::memcpy(&v32, b + 36, 4);
  EXPECT_EQ(v32, 0u);  // n_tail_rows
  std::memcpy(&v32, b + 44, 4);
  EXPECT_EQ(v32, 8u);  // params_bytes
  EXPECT_EQ(std::vector<uint8_t>(b + 48, b + 56), (std::vector<uint8_t>{4, 8, 1, 3, 1, 0, 0, 0}));

  // Last block record: n_rows 232, then its mean, the fp16 of the f32 column mean of rows 768..999.
  const size_t last = 56 + 3 * (4 + 2 * d + bs * bpv);
  std::memcpy(&v32, b + last, 4);
  EXPECT_EQ(v32, 232u);
  for (size_t j = 0; j < d; ++j) {
    double acc = 0.0;
    for (size_t i = 768; i < n; ++i) acc += x[i * d + j];
    EXPECT_EQ(le16(b + last + 4 + 2 * j), f32_to_f16_bits(static_cast<float>(acc / 232.0))) << j;
  }

  const DecodedUnit du = codec.decode(e.bytes, "mem");
  EXPECT_EQ(du.header.sequence, 3u);
  EXPECT_EQ(du.header.layer, 7u);
  EXPECT_EQ(du.header.kv_head, 1u);
  EXPECT_EQ(du.header.stream, Stream::kV);
  EXPECT_EQ(du.header.block_size, bs);
  ASSERT_EQ(du.rows.size(), n * d);
  EXPECT_EQ(du.n_block_rows, n);
  EXPECT_LT(mse(x, du.rows), 0.2);

  // Dispatch through decode_container gives the same rows bit for bit.
  const DecodedUnit dc = decode_container(e.bytes, "mem");
  ASSERT_EQ(dc.rows.size(), du.rows.size());
  EXPECT_EQ(std::memcmp(dc.rows.data(), du.rows.data(), du.rows.size() * 4), 0);
}

TEST(BesiContainer, RegistryFactoryAndOddHeadDim) {
  auto codec = make_codec("besicovitch",
                          {{"group_size", "3"},
                           {"direction_bits", "5"},
                           {"magnitude_mode", "quantized"},
                           {"magnitude_bits", "2"},
                           {"subtract_mean", "true"}},
                          9);
  EXPECT_EQ(codec->id(), CodecId::kBesicovitch);
  const auto x = uniform(20, 9, -1.0f, 1.0f, 707);
  UnitInput in = unit(x, 9, 8);
  const EncodedUnit e = codec->encode(in);
  const DecodedUnit a = codec->decode(e.bytes, "mem");
  const DecodedUnit b = decode_container(e.bytes, "mem");  // default g = 2 does not divide 9
  ASSERT_EQ(a.rows.size(), 20u * 9u);
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(codec_params("besicovitch").size(), 5u);
}

TEST(BesiContainer, TruncatedOrExtendedIsFormatError) {
  const size_t d = 16;
  const auto x = uniform(40, d, -1.0f, 1.0f, 808);
  BesicovitchCodec codec(cfg(2, 6, false, 4, true), d);
  const EncodedUnit e = codec.encode(unit(x, d, 16));
  for (size_t cut : {size_t{1}, size_t{2}, size_t{7}, e.reported_bytes / 2, e.reported_bytes}) {
    std::vector<uint8_t> t(e.bytes.begin(), e.bytes.end() - static_cast<std::ptrdiff_t>(cut));
    EXPECT_THROW(codec.decode(t, "cut"), FormatError) << cut;
    EXPECT_THROW(decode_container(t, "cut"), FormatError) << cut;
  }
  std::vector<uint8_t> longer = e.bytes;
  longer.push_back(0);
  EXPECT_THROW(codec.decode(longer, "long"), FormatError);
  try {
    std::vector<uint8_t> t(e.bytes.begin(), e.bytes.end() - 1);
    codec.decode(t, "unit.kvcb");
    FAIL();
  } catch (const FormatError& err) {
    const std::string msg = err.what();
    EXPECT_NE(msg.find("unit.kvcb"), std::string::npos) << msg;
    EXPECT_NE(msg.find("block 2"), std::string::npos) << msg;
  }
}

TEST(BesiContainer, CorruptFieldsAreFormatErrors) {
  const size_t d = 8;
  const auto x = uniform(16, d, -1.0f, 1.0f, 909);
  BesicovitchCodec codec(cfg(2, 4, true, 4, false), d);
  const EncodedUnit e = codec.encode(unit(x, d, 8));
  auto corrupt = [&](size_t off, uint8_t v) {
    std::vector<uint8_t> b = e.bytes;
    b[off] = v;
    return b;
  };
  EXPECT_THROW(codec.decode(corrupt(48, 9), "m"), FormatError);  // g
  EXPECT_THROW(codec.decode(corrupt(48, 3), "m"), FormatError);  // 8 mod 3
  EXPECT_THROW(codec.decode(corrupt(49, 0), "m"), FormatError);  // db
  EXPECT_THROW(codec.decode(corrupt(50, 2), "m"), FormatError);  // mode
  EXPECT_THROW(codec.decode(corrupt(51, 5), "m"), FormatError);  // mb
  EXPECT_THROW(codec.decode(corrupt(52, 2), "m"), FormatError);  // flags
  EXPECT_THROW(codec.decode(corrupt(53, 1), "m"), FormatError);  // reserved
  EXPECT_THROW(codec.decode(corrupt(36, 1), "m"), FormatError);  // n_tail_rows
  EXPECT_THROW(codec.decode(corrupt(8, 1), "m"), FormatError);   // codec id 1
  EXPECT_THROW(codec.decode(corrupt(56, 7), "m"), FormatError);  // n_rows != block_size
  // A scale of fp16 infinity in row 1 of block 0.
  const size_t bpv = besicovitch_bytes_per_vector(cfg(2, 4, true, 4), d);
  std::vector<uint8_t> inf = e.bytes;
  const size_t scale_off = 56 + 4 + bpv + bpv - 2;
  inf[scale_off] = 0x00;
  inf[scale_off + 1] = 0x7C;
  try {
    codec.decode(inf, "m");
    FAIL();
  } catch (const FormatError& err) {
    EXPECT_NE(std::string(err.what()).find("row 1"), std::string::npos) << err.what();
  }
}

// ---- parameters and errors -------------------------------------------------------------------

TEST(BesiParams, BadParametersNameTheParameter) {
  auto expect_bad = [](const ParamMap& p, const std::string& name) {
    try {
      make_codec("besicovitch", p, 128);
      ADD_FAILURE() << "no error for " << name;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  };
  expect_bad({{"group_size", "1"}}, "group_size");
  expect_bad({{"group_size", "9"}}, "group_size");
  expect_bad({{"direction_bits", "0"}}, "direction_bits");
  expect_bad({{"direction_bits", "11"}}, "direction_bits");
  expect_bad({{"magnitude_mode", "int8"}}, "magnitude_mode");
  expect_bad({{"magnitude_mode", "quantized"}, {"magnitude_bits", "5"}}, "magnitude_bits");
  expect_bad({{"subtract_mean", "maybe"}}, "subtract_mean");
  expect_bad({{"bit_width", "3"}}, "bit_width");
  EXPECT_THROW(make_codec("besicovitch", {{"group_size", "3"}}, 128), Unsupported);
  EXPECT_NO_THROW(make_codec("besicovitch", {{"group_size", "8"}}, 128));

  BesicovitchCodec codec(cfg(2, 6), 16);
  const auto x = uniform(8, 16, -1.0f, 1.0f, 1);
  UnitInput in = unit(x, 16, 4);
  EXPECT_THROW(codec.encode(in), InvalidArgument);  // block_size below 8
  in.info.block_size = 8;
  in.dim = 8;
  EXPECT_THROW(codec.encode(in), InvalidArgument);  // dimension mismatch
}

TEST(BesiParams, Fp16RangeAndNonFiniteInput) {
  const size_t d = 8;
  std::vector<float> x(16 * d, 0.5f);
  x[3 * d + 2] = 1.0e5f;
  EXPECT_THROW(round_trip(cfg(2, 6), x, d, 8), Fp16Range);           // magnitude
  EXPECT_THROW(round_trip(cfg(2, 6, true, 4), x, d, 8), Fp16Range);  // scale
  EXPECT_THROW(round_trip(cfg(2, 6, true, 4, true), std::vector<float>(16 * d, 7.0e4f), d, 8),
               Fp16Range);  // mean
  try {
    round_trip(cfg(2, 6), x, d, 8);
  } catch (const Fp16Range& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("row 3"), std::string::npos) << msg;
    EXPECT_NE(msg.find("magnitude"), std::string::npos) << msg;
  }
  x[3 * d + 2] = std::nanf("");
  EXPECT_THROW(round_trip(cfg(2, 6), x, d, 8), NonFiniteInput);
}

// ---- properties ------------------------------------------------------------------------------

TEST(BesiProperties, ZeroAndConstantBlocksDecodeFinite) {
  const size_t d = 16;
  for (bool quant : {false, true}) {
    for (bool mean : {false, true}) {
      const BesiConfig c = cfg(2, 5, quant, 2, mean);
      const std::vector<float> zeros(24 * d, 0.0f);
      const auto yz = round_trip(c, zeros, d, 8);
      for (float v : yz) ASSERT_EQ(v, 0.0f);
      const std::vector<float> cst(24 * d, 1.37f);
      const auto yc = round_trip(c, cst, d, 8);
      for (float v : yc) {
        ASSERT_TRUE(std::isfinite(v));
        if (mean) {
          ASSERT_NEAR(v, 1.37f, 1e-3);  // within fp16 rounding of the mean
        }
      }
    }
  }
}

TEST(BesiProperties, Deterministic) {
  const size_t d = 48;
  const auto x = uniform(300, d, -2.0f, 2.0f, 1234);
  for (unsigned g : {2u, 3u, 4u, 8u}) {
    BesicovitchCodec codec(cfg(g, 6, true, 4, true), d);
    const auto a = codec.encode(unit(x, d, 128));
    const auto b = codec.encode(unit(x, d, 128));
    EXPECT_EQ(a.bytes, b.bytes) << "g " << g;
    EXPECT_EQ(codec.decode(a.bytes, "a").rows, codec.decode(b.bytes, "b").rows);
  }
}

TEST(BesiProperties, MoreDirectionBitsLowerError) {
  const size_t d = 48;
  const auto x = uniform(64, d, -1.0f, 1.0f, 42);
  for (unsigned g : {2u, 3u, 4u}) {
    double prev = 1e30;
    for (unsigned db : {2u, 5u, 8u}) {
      const double e = mse(x, round_trip(cfg(g, db), x, d));
      EXPECT_LT(e, prev) << "g " << g << " db " << db;
      prev = e;
    }
  }
}
