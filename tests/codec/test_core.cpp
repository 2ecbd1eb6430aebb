// Golden vectors and properties of the shared codec stages (codec-kakeya.md §4, §5.9, §5.12,
// §5.13, §13.1–13.4; capture-format.md RoPE).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <random>

#include "base/errors.h"
#include "codec/format/bitpack.h"
#include "codec/format/container.h"
#include "codec/format/half.h"
#include "codec/math/metrics.h"
#include "codec/math/quantizer.h"
#include "codec/math/rng.h"
#include "codec/math/rope.h"
#include "codec/math/wht.h"

using namespace kvwb;
using namespace kvwb::codec;

TEST(Rng, SplitMixCheckValues) {
  EXPECT_EQ(rng::splitmix(0, 0), 0xE220A8397B1DCDAFull);
  EXPECT_EQ(rng::splitmix(0, 1), 0x6E789E6AA1B965F4ull);
  EXPECT_EQ(rng::splitmix(0, 2), 0x06C45D188009454Full);
}

TEST(Rng, SignKeyAndSigns) {
  const uint64_t key = 0xCAFEBABEull ^ rng::kTagSigns;
  EXPECT_EQ(key, 0x5748545F99B7FDF0ull);
  EXPECT_EQ(rng::splitmix(key, 0), 0xF879F31D8800C644ull);
  EXPECT_EQ(rng::splitmix(key, 1), 0xEDCA51F54429E0F5ull);
  const std::string expect = "+--++--+---+---+---+---++++---++-++-+---++-+--++-++-+--+--+--++-";
  uint64_t mask = 0;
  int neg = 0;
  for (int j = 0; j < 64; ++j) {
    const float s = rng::wht_sign(0xCAFEBABEull, j);
    EXPECT_EQ(s < 0 ? '-' : '+', expect[j]) << "sign " << j;
    if (s < 0) {
      mask |= 1ull << j;
      ++neg;
    }
  }
  EXPECT_EQ(mask, 0x9B6934E938777766ull);
  EXPECT_EQ(neg, 36);
}

TEST(Rng, KmeansAndOmegaKeys) {
  const uint64_t km = 0xCAFEBABEull ^ rng::kTagKmeans;
  EXPECT_EQ(km, 0x4B4D454184ADE58Eull);
  EXPECT_EQ(rng::splitmix(km, 0), 0x442278148D059BA7ull);
  EXPECT_EQ(rng::splitmix(km, 0) % 512, 423u);
  EXPECT_EQ(rng::splitmix(km, 0) % 500, 475u);
  EXPECT_EQ(rng::splitmix(km, 1), 0xA03201B6DF3591E8ull);
  EXPECT_EQ(rng::splitmix(km, 1) % 512, 488u);
  const uint64_t om = 0xCAFEBABEull ^ rng::kTagOmega;
  EXPECT_EQ(om, 0x5253564495B1F7F9ull);
  EXPECT_EQ(rng::splitmix(om, 0), 0x883F19DCF66428B5ull);
  EXPECT_EQ(rng::splitmix(om, 1), 0x5A2B7B1D4F353EA4ull);
  EXPECT_DOUBLE_EQ(rng::u01(rng::splitmix(om, 0)), 0.5322128452738901);
  EXPECT_DOUBLE_EQ(rng::u01(rng::splitmix(om, 1)), 0.3522259661251228);
  const int r = 72;
  EXPECT_FLOAT_EQ(rng::normal(om, 0 * r + 0), -0.6728032f);
  EXPECT_FLOAT_EQ(rng::normal(om, 0 * r + 1), -0.5048806f);
  EXPECT_FLOAT_EQ(rng::normal(om, 1 * r + 0), -0.5380169f);
  EXPECT_FLOAT_EQ(rng::normal(om, 511 * r + 71), 0.49908566f);
}

TEST(Rng, UniformEnds) {
  EXPECT_DOUBLE_EQ(rng::u01(0), 1.1102230246251565e-16);
  EXPECT_DOUBLE_EQ(rng::u01(~0ull), 1.0);
  EXPECT_DOUBLE_EQ(rng::u01c(0), 0.0);
}

TEST(Half, KnownValues) {
  EXPECT_EQ(f32_to_f16_bits(1.0f), 0x3C00);
  EXPECT_EQ(f32_to_f16_bits(-2.0f), 0xC000);
  EXPECT_EQ(f32_to_f16_bits(65504.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16_bits(65519.0f), 0x7BFF);
  EXPECT_EQ(f32_to_f16_bits(65520.0f), 0x7C00);
  EXPECT_EQ(f32_to_f16_bits(5.9604644775390625e-8f), 0x0001);  // smallest subnormal
  EXPECT_EQ(f32_to_f16_bits(2.98023223876953125e-8f), 0x0000);  // half of it: ties to even
  EXPECT_EQ(f32_to_f16_bits(0.4f), 0x3666);
  EXPECT_FLOAT_EQ(round_f16(0.4f), 0.39990234375f);
  EXPECT_FLOAT_EQ(round_f16(-0.3f), -0.300048828125f);
  EXPECT_FLOAT_EQ(f16_bits_to_f32(0x0001), 5.9604644775390625e-8f);
  EXPECT_TRUE(std::isnan(f16_bits_to_f32(f32_to_f16_bits(NAN))));
  EXPECT_EQ(f32_to_bf16_bits(1.0f), 0x3F80);
  EXPECT_EQ(f32_to_bf16_bits(1.00390625f), 0x3F80);  // tie -> even
  EXPECT_EQ(f32_to_bf16_bits(1.01171875f), 0x3F82);  // tie -> even (up)
}

TEST(Half, MatchesCompilerFloat16OnRandomAndEdgeValues) {
#if defined(__FLT16_MAX__)
  std::mt19937 gen(7);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 2000000; ++i) {
    uint32_t x = bits(gen);
    if (i % 4 == 0) x = (x & 0x807FFFFFu) | ((100u + (x % 50u)) << 23);  // concentrate near fp16 range
    float f;
    std::memcpy(&f, &x, 4);
    if (std::isnan(f)) continue;
    const _Float16 h = static_cast<_Float16>(f);
    uint16_t hb;
    std::memcpy(&hb, &h, 2);
    ASSERT_EQ(f32_to_f16_bits(f), hb) << "input bits 0x" << std::hex << x;
  }
  for (uint32_t hb = 0; hb < 0x10000; ++hb) {
    if ((hb & 0x7C00) == 0x7C00 && (hb & 0x3FF)) continue;  // NaN payloads
    _Float16 h;
    const uint16_t h16 = static_cast<uint16_t>(hb);
    std::memcpy(&h, &h16, 2);
    ASSERT_EQ(f16_bits_to_f32(h16), static_cast<float>(h)) << hb;
  }
#else
  GTEST_SKIP() << "compiler has no _Float16 to compare against";
#endif
}

TEST(Half, CheckedRefusesOutOfRange) {
  EXPECT_NO_THROW(f16_checked(65504.0f, "t"));
  EXPECT_THROW(f16_checked(65504.01f, "t"), Fp16Range);
  EXPECT_THROW(f16_checked(-79111.0f, "t"), Fp16Range);
  EXPECT_THROW(f16_checked(INFINITY, "t"), NonFiniteInput);
  EXPECT_THROW(f16_checked(NAN, "t"), NonFiniteInput);
  try {
    f16_checked(70000.0f, "residual norm");
    FAIL();
  } catch (const Fp16Range& e) {
    EXPECT_EQ(e.code(), "FP16_RANGE");
    EXPECT_NE(std::string(e.what()).find("residual norm"), std::string::npos);
  }
  EXPECT_THROW(bf16_checked(3.4e38f, "x"), Fp16Range);
  EXPECT_NO_THROW(bf16_checked(1e38f, "x"));
}

TEST(BitPack, GoldenVectors) {
  std::vector<uint8_t> out;
  const std::vector<uint16_t> a = {1, 2, 3, 0};
  pack_bits(a, 2, out);
  ASSERT_EQ(out, std::vector<uint8_t>{0x39});
  out.clear();
  const std::vector<uint16_t> b = {5, 10, 15, 3, 0, 12};
  pack_bits(b, 4, out);
  ASSERT_EQ(out, (std::vector<uint8_t>{0xA5, 0x3F, 0xC0}));
  out.clear();
  const std::vector<uint16_t> c = {0, 7, 3, 4, 1, 6, 2, 5};
  pack_bits(c, 3, out);
  ASSERT_EQ(out.size(), 3u);
  std::vector<uint16_t> back(8);
  unpack_bits(out.data(), 8, 3, back.data());
  EXPECT_EQ(back, c);
}

TEST(BitPack, LengthsAndRoundTripAllWidths) {
  std::mt19937 gen(3);
  for (unsigned b = 1; b <= 16; ++b) {
    for (size_t n = 0; n < 20; ++n) {
      std::vector<uint16_t> v(n);
      for (auto& x : v) x = static_cast<uint16_t>(gen() & ((b == 16) ? 0xFFFFu : ((1u << b) - 1)));
      std::vector<uint8_t> out;
      pack_bits(v, b, out);
      ASSERT_EQ(out.size(), (n * b + 7) / 8) << "b=" << b << " n=" << n;
      std::vector<uint16_t> back(n);
      unpack_bits(out.data(), n, b, back.data());
      ASSERT_EQ(back, v) << "b=" << b << " n=" << n;
    }
  }
}

// The packer against the contract spelled out bit by bit (value i's bit k is stream bit i·b + k,
// bit β of the stream is bit β mod 8 of byte β / 8), widths 1–16 and lengths across the 4-byte
// flushes; nothing is written past the packed length and unpacking reads exactly that length
// (an exact-size heap copy, so the sanitizer build catches an over-read).
TEST(BitPack, MatchesTheBitContractAndStaysInBounds) {
  std::mt19937 gen(17);
  for (unsigned b = 1; b <= 16; ++b) {
    const uint32_t top = (b == 16) ? 0xFFFFu : ((1u << b) - 1);
    for (size_t n :
         {0, 1, 2, 3, 5, 7, 8, 9, 10, 11, 16, 31, 32, 33, 63, 64, 65, 100, 128, 129, 200}) {
      std::vector<uint16_t> v(n);
      for (size_t i = 0; i < n; ++i)
        v[i] = static_cast<uint16_t>(i % 5 == 0 ? top : (i % 7 == 0 ? 0 : gen() & top));
      const size_t len = (n * b + 7) / 8;
      std::vector<uint8_t> want(len, 0);
      for (size_t i = 0; i < n; ++i)
        for (unsigned k = 0; k < b; ++k)
          if ((v[i] >> k) & 1u) {
            const size_t beta = i * b + k;
            want[beta / 8] = static_cast<uint8_t>(want[beta / 8] | (1u << (beta % 8)));
          }
      std::vector<uint8_t> got(len + 8, 0xA5);
      kvwb::codec::kernels::pack_bits(v.data(), n, b, got.data());
      ASSERT_TRUE(std::equal(want.begin(), want.end(), got.begin())) << "b=" << b << " n=" << n;
      for (size_t i = len; i < got.size(); ++i)
        ASSERT_EQ(got[i], 0xA5) << "written past the packed length: b=" << b << " n=" << n;
      const auto exact = std::make_unique<uint8_t[]>(len);
      std::copy(want.begin(), want.end(), exact.get());
      std::vector<uint16_t> back(n);
      kvwb::codec::kernels::unpack_bits(exact.get(), n, b, back.data());
      ASSERT_EQ(back, v) << "b=" << b << " n=" << n;
    }
  }
}

TEST(Wht, GoldenAndInvolution) {
  float a[1] = {3.5f};
  wht_inplace(a, 1);
  EXPECT_EQ(a[0], 3.5f);
  float b[2] = {1, 2};
  wht_inplace(b, 2);
  EXPECT_EQ(b[0], 3);
  EXPECT_EQ(b[1], -1);
  float c[4] = {1, 2, 3, 4};
  wht_inplace(c, 4);
  EXPECT_EQ(c[0], 10);
  EXPECT_EQ(c[1], -2);
  EXPECT_EQ(c[2], -4);
  EXPECT_EQ(c[3], 0);
  std::mt19937 gen(1);
  std::normal_distribution<float> nd;
  for (size_t n = 1; n <= 128; n <<= 1) {
    std::vector<float> x(n), y;
    for (auto& v : x) v = nd(gen);
    y = x;
    wht_inplace(y.data(), n);
    wht_inplace(y.data(), n);
    float mx = 0;
    for (float v : x) mx = std::max(mx, std::fabs(v));
    for (size_t i = 0; i < n; ++i) EXPECT_NEAR(y[i], n * x[i], 1e-4 * n * mx);
  }
  float bad[3] = {1, 2, 3};
  EXPECT_THROW(wht_inplace(bad, 3), InvalidArgument);
}

TEST(Wht, RotationWithSigns) {
  float v[4] = {1, 2, 3, 4};
  wht_rotate(v, 4, 0xCAFEBABEull);
  EXPECT_EQ(v[0], 0);
  EXPECT_EQ(v[1], -4);
  EXPECT_EQ(v[2], -2);
  EXPECT_EQ(v[3], 10);
  wht_unrotate(v, 4, 0xCAFEBABEull);
  EXPECT_EQ(v[0], 1);
  EXPECT_EQ(v[1], 2);
  EXPECT_EQ(v[2], 3);
  EXPECT_EQ(v[3], 4);
  std::vector<float> x(64);
  for (size_t i = 0; i < 64; ++i) x[i] = std::sin(0.3f * i);
  auto y = x;
  wht_rotate(y.data(), 64, 0xCAFEBABEull);
  double nx = 0, ny = 0;
  for (size_t i = 0; i < 64; ++i) nx += x[i] * x[i], ny += y[i] * y[i];
  EXPECT_NEAR(ny / (64 * nx), 1.0, 1e-2);
  wht_unrotate(y.data(), 64, 0xCAFEBABEull);
  for (size_t i = 0; i < 64; ++i) EXPECT_NEAR(y[i], x[i], 1e-3);
}

TEST(Helpers, NextPow2AndClog2) {
  EXPECT_EQ(next_pow2(0), 1u);
  EXPECT_EQ(next_pow2(1), 1u);
  EXPECT_EQ(next_pow2(3), 4u);
  EXPECT_EQ(next_pow2(5), 8u);
  EXPECT_EQ(next_pow2(16), 16u);
  EXPECT_EQ(next_pow2(17), 32u);
  EXPECT_EQ(clog2(1), 0u);
  EXPECT_EQ(clog2(2), 1u);
  EXPECT_EQ(clog2(3), 2u);
  EXPECT_EQ(clog2(16), 4u);
  EXPECT_EQ(clog2(17), 5u);
}

TEST(Quantizer, CustomTableTiesGoLow) {
  const std::vector<float> table = {-3, -0.5f, 0.5f, 3};
  const std::vector<float> in = {-4, -1, -0.3f, 0, 0.3f, 1, 4};
  const std::vector<uint16_t> want = {0, 1, 1, 1, 2, 2, 3};
  for (size_t i = 0; i < in.size(); ++i) EXPECT_EQ(quantize_nearest(in[i], table), want[i]) << in[i];
}

TEST(Quantizer, GaussianTables) {
  for (unsigned b = 1; b <= 4; ++b) {
    auto t = gaussian_table(b);
    ASSERT_EQ(t.size(), size_t{1} << b);
    for (size_t m = 0; m < t.size(); ++m) {
      EXPECT_EQ(quantize_nearest(t[m], t), m);
      EXPECT_NEAR(t[m], -t[t.size() - 1 - m], 1e-3);
      if (m) {
        EXPECT_GT(t[m], t[m - 1]);
      }
    }
    EXPECT_EQ(quantize_nearest(100.f, t), t.size() - 1);
    EXPECT_EQ(quantize_nearest(-100.f, t), 0u);
    EXPECT_EQ(quantize_nearest(0.f, t), (1u << (b - 1)) - 1);
  }
  // MSE strictly decreases with bits on sin(i/16)
  double prev = 1e30;
  for (unsigned b = 1; b <= 4; ++b) {
    auto t = gaussian_table(b);
    double mse = 0;
    for (int i = 0; i < 64; ++i) {
      const float s = std::sin(i / 16.0f);
      const float q = t[quantize_nearest(s, t)];
      mse += (s - q) * (s - q);
    }
    EXPECT_LT(mse, prev) << "b=" << b;
    prev = mse;
  }
  EXPECT_THROW(gaussian_table(5), InvalidArgument);
}

TEST(Quantizer, TableValidation) {
  const std::vector<float> ok = {-1, 0, 1, 2};
  EXPECT_NO_THROW(validate_table(ok, 2, "K"));
  const std::vector<float> short_t = {-1, 0, 1};
  EXPECT_THROW(validate_table(short_t, 2, "K"), InvalidArgument);
  const std::vector<float> unsorted = {-1, 1, 0, 2};
  EXPECT_THROW(validate_table(unsorted, 2, "K"), InvalidArgument);
  const std::vector<float> nan_t = {-1, NAN, 1, 2};
  EXPECT_THROW(validate_table(nan_t, 2, "K"), InvalidArgument);
}

TEST(Container, HeaderRoundTripAndValidation) {
  ContainerHeader h;
  h.codec_id = CodecId::kTurbo3;
  h.head_dim = 128;
  h.stream = Stream::kV;
  h.block_rows = BlockRows::kPooledHeads;
  h.sequence = 3;
  h.layer = 7;
  h.kv_head = kPooledHead;
  h.n_kv_heads = 2;
  h.block_size = 512;
  h.n_blocks = 4;
  h.n_tail_rows = 17;
  h.domain_flags = kDomainPreRope;
  std::vector<uint8_t> params = {1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<uint8_t> out;
  write_container_header(h, params, out);
  ASSERT_EQ(out.size(), 56u);
  EXPECT_EQ(out[0], 'K');
  EXPECT_EQ(out[3], 'B');
  std::span<const uint8_t> p;
  auto back = read_container_header(out, "mem", &p);
  EXPECT_EQ(back.codec_id, CodecId::kTurbo3);
  EXPECT_EQ(back.header_bytes, 56);
  EXPECT_EQ(back.params_bytes, 8u);
  EXPECT_EQ(back.kv_head, kPooledHead);
  EXPECT_EQ(back.n_tail_rows, 17u);
  EXPECT_EQ(back.domain_flags, kDomainPreRope);
  EXPECT_EQ(std::vector<uint8_t>(p.begin(), p.end()), params);
  // truncated by one byte
  std::vector<uint8_t> cut(out.begin(), out.end() - 1);
  EXPECT_THROW(read_container_header(cut, "mem", &p), FormatError);
  // bad magic, future major version, unknown codec
  auto bad = out;
  bad[0] = 'X';
  EXPECT_THROW(read_container_header(bad, "mem", &p), FormatError);
  bad = out;
  bad[4] = 2;
  EXPECT_THROW(read_container_header(bad, "mem", &p), FormatError);
  bad = out;
  bad[8] = 99;
  EXPECT_THROW(read_container_header(bad, "mem", &p), FormatError);
  EXPECT_EQ(codec_id_from_name("kivi"), CodecId::kKivi);
  EXPECT_THROW(codec_id_from_name("zip"), InvalidArgument);
}

TEST(Rope, ForwardInverseRoundTripAllStyles) {
  std::mt19937 gen(5);
  std::normal_distribution<float> nd;
  for (auto style : {RopeStyle::kHalfSplit, RopeStyle::kInterleaved}) {
    for (uint32_t r : {64u, 32u, 2u}) {
      const size_t n = 300, d = 64;
      std::vector<float> x(n * d);
      for (auto& v : x) v = nd(gen);
      std::vector<int32_t> pos(n);
      for (size_t i = 0; i < n; ++i) pos[i] = static_cast<int32_t>(i * 7 % 4096);
      RopeParams p{style, 10000.0, r, static_cast<uint32_t>(d)};
      auto y = x;
      apply_rope(y.data(), n, pos.data(), p, false);
      if (r < d) {
        for (size_t i = 0; i < n; ++i)
          for (size_t j = r; j < d; ++j) ASSERT_EQ(y[i * d + j], x[i * d + j]);
      }
      apply_rope(y.data(), n, pos.data(), p, true);
      double num = 0, den = 0;
      for (size_t i = 0; i < x.size(); ++i) num += (y[i] - x[i]) * (y[i] - x[i]), den += x[i] * x[i];
      EXPECT_LT(std::sqrt(num / den), 1e-5) << "style " << rope_style_name(style) << " R=" << r;
    }
  }
}

TEST(Rope, HalfSplitMatchesFormula) {
  // position 1, D = 4: pairs (0,2) and (1,3); inv_freq = [1, 0.01]
  std::vector<float> x = {1, 2, 3, 4};
  int32_t pos = 1;
  apply_rope(x.data(), 1, &pos, RopeParams{RopeStyle::kHalfSplit, 10000.0, 4, 4}, false);
  const float c0 = static_cast<float>(std::cos(1.0)), s0 = static_cast<float>(std::sin(1.0));
  const float c1 = static_cast<float>(std::cos(0.01)), s1 = static_cast<float>(std::sin(0.01));
  EXPECT_FLOAT_EQ(x[0], 1 * c0 - 3 * s0);
  EXPECT_FLOAT_EQ(x[2], 1 * s0 + 3 * c0);
  EXPECT_FLOAT_EQ(x[1], 2 * c1 - 4 * s1);
  EXPECT_FLOAT_EQ(x[3], 2 * s1 + 4 * c1);
  std::vector<float> y = {1, 2, 3, 4};
  apply_rope(y.data(), 1, &pos, RopeParams{RopeStyle::kInterleaved, 10000.0, 4, 4}, false);
  EXPECT_FLOAT_EQ(y[0], 1 * c0 - 2 * s0);
  EXPECT_FLOAT_EQ(y[1], 1 * s0 + 2 * c0);
  EXPECT_THROW(apply_rope(y.data(), 1, &pos, RopeParams{RopeStyle::kHalfSplit, 1e4, 3, 4}, false),
               InvalidArgument);
  EXPECT_THROW(parse_rope_style("yarn"), InvalidArgument);
}

TEST(Synthetic, Deterministic) {
  std::vector<float> a(64 * 16), b(64 * 16);
  rng::synthetic(a.data(), 64, 16, 4, 0.01, 1);
  rng::synthetic(b.data(), 64, 16, 4, 0.01, 1);
  EXPECT_EQ(a, b);
  for (size_t i = 0; i < 64; ++i)
    for (size_t j = 4; j < 16; ++j) EXPECT_LE(std::fabs(a[i * 16 + j]), 0.01f);
}

// The attention metrics (metrics.md §3) against a plain per-query reference (f32 logits summed
// in another order, hence relative tolerances of 1e-5 / 1e-4; a masking error is far larger): causal and
// sliding masks, exact and sampled query sets (the GEMM path skips the keys after a chunk's last
// query, which must change nothing).
TEST(Attention, MetricsEqualAPlainReferenceForEveryMaskAndSample) {
  const size_t T = 300, D = 16;
  auto fill = [&](uint64_t key, float noise_of, const std::vector<float>* base) {
    std::vector<float> x(T * D);
    for (size_t i = 0; i < x.size(); ++i)
      x[i] = (base ? (*base)[i] : 0.0f) + noise_of * rng::normal(key, i);
    return x;
  };
  const auto q = fill(11, 1.0f, nullptr), k = fill(12, 1.0f, nullptr), v = fill(13, 1.0f, nullptr);
  const auto kh = fill(14, 0.1f, &k), vh = fill(15, 0.1f, &v);
  const float scale = 0.25f;
  for (const int window : {0, 37}) {
    for (const auto& sample : {attention_query_sample(T), attention_query_sample(T, 70, 0, 1)}) {
      AttentionVariants got;
      accumulate_attention(q.data(), k.data(), v.data(), kh.data(), vh.data(), T, D, sample, scale, window, got);
      double rel_both = 0, rel_k = 0, rel_v = 0, kl = 0;
      uint64_t top1 = 0;
      for (const uint32_t p : sample) {
        const size_t t0 = window > 0 && p + 1 > static_cast<size_t>(window) ? p + 1 - window : 0;
        auto probs = [&](const std::vector<float>& keys, std::vector<double>& z) {
          std::vector<double> pr(T, 0.0);
          z.assign(T, -INFINITY);
          double mz = -INFINITY, sum = 0;
          for (size_t t = t0; t <= p; ++t) {
            float dot = 0;
            for (size_t d = 0; d < D; ++d) dot += q[p * D + d] * keys[t * D + d];
            z[t] = static_cast<double>(dot * scale);
            mz = std::max(mz, z[t]);
          }
          for (size_t t = t0; t <= p; ++t) sum += (pr[t] = std::exp(z[t] - mz));
          for (size_t t = t0; t <= p; ++t) pr[t] /= sum;
          return pr;
        };
        std::vector<double> z, zh;
        const auto pi = probs(k, z), pih = probs(kh, zh);
        auto out = [&](const std::vector<double>& pr, const std::vector<float>& vals) {
          std::vector<double> o(D, 0.0);
          for (size_t t = t0; t <= p; ++t)
            for (size_t d = 0; d < D; ++d) o[d] += pr[t] * vals[t * D + d];
          return o;
        };
        const auto o = out(pi, v), ob = out(pih, vh), ok = out(pih, v), ov = out(pi, vh);
        auto rel = [&](const std::vector<double>& e) {
          double num = 0, den = 0;
          for (size_t d = 0; d < D; ++d) num += (o[d] - e[d]) * (o[d] - e[d]), den += o[d] * o[d];
          return std::sqrt(num / den);
        };
        rel_both += rel(ob), rel_k += rel(ok), rel_v += rel(ov);
        size_t am = t0, amh = t0;
        for (size_t t = t0; t <= p; ++t) {
          kl += pi[t] * std::log(pi[t] / pih[t]);
          if (z[t] > z[am]) am = t;
          if (zh[t] > zh[amh]) amh = t;
        }
        top1 += am == amh;
      }
      const double n = static_cast<double>(sample.size());
      SCOPED_TRACE("window " + std::to_string(window) + ", " + std::to_string(sample.size()) + " queries");
      EXPECT_EQ(got.both.queries, sample.size());
      EXPECT_NEAR(got.both.out_rel_err(), rel_both / n, 1e-5 * rel_both / n);
      EXPECT_NEAR(got.k_only.out_rel_err(), rel_k / n, 1e-5 * rel_k / n);
      EXPECT_NEAR(got.v_only.out_rel_err(), rel_v / n, 1e-5 * rel_v / n);
      EXPECT_NEAR(got.both.kl(), kl / n, 1e-4 * kl / n);
      EXPECT_EQ(got.both.top1_hits, top1);
      EXPECT_EQ(got.v_only.top1_hits, sample.size());
    }
  }
}

TEST(Metrics, ErrorSumsAddKeepsTheRowByRowBits) {
  // The fused two-row loop of ErrorSums::add must give the bits of the plain definition (each sum
  // in index order, rows in order), odd row counts and zero / one-sided zero rows included.
  std::mt19937 g(7);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (size_t n : {1u, 2u, 7u, 64u}) {
    const size_t d = 37;
    std::vector<float> x(n * d), y(n * d);
    for (auto& v : x) v = nd(g);
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] + 0.01f * nd(g);
    std::fill(x.begin(), x.begin() + d, 0.0f);  // row 0: x zero
    if (n > 2) {
      std::fill(x.begin() + 2 * d, x.begin() + 3 * d, 0.0f);
      std::fill(y.begin() + 2 * d, y.begin() + 3 * d, 0.0f);  // row 2: both zero
    }
    double sq_err = 0, sq_ref = 0, cos_sum = 0, max_abs = 0;
    for (size_t i = 0; i < n; ++i) {
      double e = 0, r = 0;
      for (size_t j = 0; j < d; ++j) {
        const double diff = static_cast<double>(x[i * d + j]) - static_cast<double>(y[i * d + j]);
        e += diff * diff;
        r += static_cast<double>(x[i * d + j]) * x[i * d + j];
        max_abs = std::max(max_abs, std::fabs(diff));
      }
      sq_err += e;
      sq_ref += r;
      cos_sum += row_cosine(&x[i * d], &y[i * d], d);
    }
    ErrorSums s;
    s.add(x.data(), y.data(), n, d);
    EXPECT_EQ(s.sq_err, sq_err) << n;
    EXPECT_EQ(s.sq_ref, sq_ref) << n;
    EXPECT_EQ(s.cos_sum, cos_sum) << n;
    EXPECT_EQ(s.max_abs, max_abs) << n;
    EXPECT_EQ(s.rows, n);
    EXPECT_EQ(s.values, n * d);
  }
}
