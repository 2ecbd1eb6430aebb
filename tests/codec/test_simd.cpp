// SIMD dispatch (codec/simd/): every path this CPU runs gives the scalar kernels' bytes and bits,
// on random blocks and on the edge cases a vector rewrite gets wrong (ties at .5, all-zero and
// signed-zero blocks, repeated maxima of both signs, tiny and huge scales, bf16 overflow).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/errors.h"
#include "codec/kernels/ggml.h"
#include "codec/kernels/half.h"
#include "codec/simd/besi.h"
#include "codec/simd/dispatch.h"
#include "codec/simd/rows.h"

namespace {

using kvwb::codec::kernels::GgmlType;
using kvwb::codec::simd::Path;

std::vector<Path> vector_paths() {
  std::vector<Path> out;
  for (Path p : {Path::kAvx2, Path::kAvx512})
    if (kvwb::codec::simd::cpu_supports(p)) out.push_back(p);
  return out;
}

/// Blocks of 32: random scales, then hand-made edge cases.
std::vector<float> test_blocks() {
  std::mt19937 gen(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v;
  for (int b = 0; b < 2000; ++b) {
    const float scale = std::ldexp(1.0f, static_cast<int>(gen() % 60) - 40);
    for (int j = 0; j < 32; ++j) v.push_back(nd(gen) * scale);
  }
  auto block = [&](auto f) {
    for (int j = 0; j < 32; ++j) v.push_back(f(j));
  };
  block([](int) { return 0.0f; });
  block([](int) { return -0.0f; });
  block([](int j) { return j % 2 ? -0.0f : 0.0f; });
  block([](int j) { return j == 5 ? -3.0f : j == 9 ? 3.0f : 1.0f; });     // ± maximum, first wins
  block([](int j) { return j == 20 ? 3.0f : j == 2 ? -3.0f : 0.25f; });
  block([](int j) { return static_cast<float>(j) - 15.5f; });             // halves
  block([](int j) { return (static_cast<float>(j) + 0.5f) * 127.0f / 31.5f; });
  block([](int j) { return static_cast<float>(j % 17) * 0.5f - 4.0f; });  // q4 ties
  block([](int j) { return j == 31 ? 1e-30f : 1e-38f; });
  block([](int j) { return j == 0 ? 3e38f : -1.0f; });
  block([](int j) { return std::ldexp(1.0f, j - 16); });
  // q8_0 with d = 1 (max 127): codes of exact halves and of the floats just below them
  block([](int j) {
    const float h = static_cast<float>(j * 4 - 62) + 0.5f;
    if (j == 1 || j == 2) return std::nextafter(j == 1 ? 0.5f : -0.5f, 0.0f);
    return j == 0 ? 127.0f : j % 2 ? h : std::nextafter(h, 0.0f);
  });
  return v;
}

TEST(Simd, DispatchNamesAndBestPath) {
  EXPECT_STREQ(kvwb::codec::simd::path_name(Path::kScalar), "scalar");
  EXPECT_TRUE(kvwb::codec::simd::cpu_supports(Path::kScalar));
  EXPECT_TRUE(kvwb::codec::simd::cpu_supports(kvwb::codec::simd::best_path()));
  const char* env = std::getenv("KVWB_SIMD");
  if (env == nullptr || *env == '\0') {
    EXPECT_EQ(kvwb::codec::simd::active_path(), kvwb::codec::simd::best_path());
  }
}

TEST(Simd, GgmlBlocksMatchScalarOnEveryPath) {
  const std::vector<float> x = test_blocks();
  const size_t blocks = x.size() / 32;
  if (vector_paths().empty()) GTEST_SKIP() << "this CPU has no AVX2: only the scalar path runs";
  for (GgmlType t : {GgmlType::kQ8_0, GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kIq4Nl}) {
    const size_t bb = kvwb::codec::kernels::ggml_block_bytes(t);
    for (Path p : vector_paths()) {
      for (size_t b = 0; b < blocks; ++b) {
        uint8_t want[34] = {}, got[34] = {};
        const auto fw = kvwb::codec::kernels::ggml_quantize_codes(t, &x[32 * b], want);
        const auto fg = kvwb::codec::simd::ggml_quantize(p, t, &x[32 * b], got);
        ASSERT_EQ(0, std::memcmp(want, got, bb))
            << "type " << int(t) << " path " << path_name(p) << " block " << b;
        ASSERT_EQ(kvwb::codec::kernels::f32_bits(fw.d), kvwb::codec::kernels::f32_bits(fg.d))
            << "block " << b;
        ASSERT_EQ(fw.clipped, fg.clipped) << "block " << b;
        const float d = kvwb::codec::kernels::f16_bits_to_f32(
            kvwb::codec::kernels::f32_to_f16_bits(fw.d));
        float yw[32], yg[32];
        kvwb::codec::kernels::ggml_dequantize_codes(t, want, d, 0.5f, yw);
        kvwb::codec::simd::ggml_dequantize(p, t, want, d, 0.5f, yg);
        ASSERT_EQ(0, std::memcmp(yw, yg, sizeof yw)) << "decode block " << b;
      }
    }
  }
}

// The batched kernels (ggml_quantize_blocks / ggml_dequantize_blocks: 16-block groups with a fast
// path for normal scales and a careful one for subnormal ones) against the per-block scalar
// reference plus the scalar fp16 conversion. Each test block is put at several places of a run of
// ordinary blocks (first, inside, last of a 16-block group, in the per-block remainder); a run
// holding a non-finite value or a |d| > 65504 must be refused (false), any other run must give the
// reference bytes and decode to the reference values.
TEST(Simd, GgmlBatchedBlocksMatchScalarOnEveryPath) {
  namespace k = kvwb::codec::kernels;
  std::vector<float> x = test_blocks();
  for (int j = 0; j < 32; ++j) x.push_back(j == 7 ? NAN : 1.0f);
  for (int j = 0; j < 32; ++j) x.push_back(j == 30 ? -INFINITY : 1.0f);
  for (int j = 0; j < 32; ++j) x.push_back(j == 3 ? 1e-39f : 0.0f);  // subnormal d
  const size_t blocks = x.size() / 32;
  if (vector_paths().empty()) GTEST_SKIP() << "this CPU has no AVX2: only the scalar path runs";
  constexpr size_t kRun = 37;  // two 16-block groups and 5 single blocks
  for (GgmlType t : {GgmlType::kQ8_0, GgmlType::kQ4_0}) {
    const size_t bb = k::ggml_block_bytes(t);
    for (Path p : vector_paths())
      for (size_t b = 0; b < blocks; ++b)
        for (size_t pos : {size_t{0}, size_t{7}, size_t{15}, size_t{16}, size_t{35}}) {
          std::vector<float> run(x.begin(), x.begin() + 32 * kRun);  // random blocks 0 … 36
          std::copy(&x[32 * b], &x[32 * b] + 32, &run[32 * pos]);
          std::vector<uint8_t> want(kRun * bb), got(kRun * bb);
          bool expect = true;
          uint64_t expect_clip = 0;
          for (size_t r = 0; r < kRun; ++r) {
            const k::GgmlFields f = k::ggml_quantize_codes(t, &run[32 * r], &want[r * bb]);
            k::store_u16(&want[r * bb], k::f32_to_f16_bits(f.d));
            for (int j = 0; j < 32; ++j) expect = expect && std::isfinite(run[32 * r + j]);
            expect = expect && std::fabs(f.d) <= k::kFp16Max;
            expect_clip += f.clipped;
          }
          uint64_t clipped = 0;
          const bool done =
              kvwb::codec::simd::ggml_quantize_blocks(p, t, run.data(), kRun, got.data(), clipped);
          ASSERT_EQ(expect, done) << "type " << int(t) << " path " << path_name(p) << " block " << b;
          if (!done) continue;
          ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size()))
              << "type " << int(t) << " path " << path_name(p) << " block " << b << " at " << pos;
          ASSERT_EQ(expect_clip, clipped);
          std::vector<float> yw(32 * kRun), yg(32 * kRun);
          for (size_t r = 0; r < kRun; ++r)
            k::ggml_dequantize_codes(t, &got[r * bb], k::f16_bits_to_f32(k::load_u16(&got[r * bb])),
                                     0.0f, &yw[32 * r]);
          ASSERT_EQ(kRun, kvwb::codec::simd::ggml_dequantize_blocks(p, t, got.data(), kRun, yg.data()));
          ASSERT_EQ(0, std::memcmp(yw.data(), yg.data(), yw.size() * sizeof(float)))
              << "decode, type " << int(t) << " path " << path_name(p) << " block " << b;
          // a non-finite d stops the decode at that block, the blocks before it written
          k::store_u16(&got[pos * bb], 0x7C00);
          std::fill(yg.begin(), yg.end(), 0.0f);
          ASSERT_EQ(pos, kvwb::codec::simd::ggml_dequantize_blocks(p, t, got.data(), kRun, yg.data()));
          ASSERT_EQ(0, std::memcmp(yw.data(), yg.data(), 32 * pos * sizeof(float)));
        }
  }
}

TEST(Simd, Bf16RowsMatchScalarAndStopAtOverflow) {
  std::vector<float> x = test_blocks();
  x.resize(x.size() - 64 + 5);  // an odd length exercises the scalar tail
  for (Path p : vector_paths()) {
    std::vector<uint8_t> want(2 * x.size()), got(2 * x.size());
    ASSERT_EQ(kvwb::codec::simd::f32_to_bf16_row(Path::kScalar, x.data(), x.size(), want.data()),
              x.size());
    ASSERT_EQ(kvwb::codec::simd::f32_to_bf16_row(p, x.data(), x.size(), got.data()), x.size());
    ASSERT_EQ(want, got) << path_name(p);
    std::vector<float> yw(x.size()), yg(x.size());
    ASSERT_EQ(kvwb::codec::simd::bf16_to_f32_row(Path::kScalar, want.data(), x.size(), yw.data()),
              x.size());
    ASSERT_EQ(kvwb::codec::simd::bf16_to_f32_row(p, want.data(), x.size(), yg.data()), x.size());
    ASSERT_EQ(0, std::memcmp(yw.data(), yg.data(), 4 * x.size()));
    // 3.4e38 rounds to bf16 infinity: the index of the first such value comes back.
    std::vector<float> big(40, 1.0f);
    big[37] = 3.4e38f;
    std::vector<uint8_t> out(80);
    EXPECT_EQ(kvwb::codec::simd::f32_to_bf16_row(p, big.data(), big.size(), out.data()), 37u);
    out[2 * 21 + 1] = 0x7F;
    out[2 * 21] = 0x80;  // +inf
    std::vector<float> back(40);
    EXPECT_EQ(kvwb::codec::simd::bf16_to_f32_row(p, out.data(), 37, back.data()), 21u);
  }
}

TEST(Simd, F16RowsMatchTheScalarKernelOnEveryBitPattern) {
  // All 65536 fp16 words (zeros, subnormals, normals, ±inf, NaNs with payloads), plus a tail of 5
  // that is not a multiple of 8: every path gives kernels::f16_bits_to_f32's bits.
  std::vector<uint16_t> in(65536 + 5);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<uint16_t>(i * 40503u);
  std::vector<float> want(in.size());
  for (size_t i = 0; i < in.size(); ++i) want[i] = kvwb::codec::kernels::f16_bits_to_f32(in[i]);
  std::vector<Path> paths = vector_paths();
  paths.push_back(Path::kScalar);
  for (Path p : paths) {
    std::vector<float> got(in.size(), 7.0f);
    kvwb::codec::simd::f16_to_f32_row(p, in.data(), in.size(), got.data());
    ASSERT_EQ(0, std::memcmp(want.data(), got.data(), 4 * want.size())) << path_name(p);
  }
}

TEST(Simd, WhtAndTurboGroupsMatchScalarOnEveryPath) {
  const std::vector<float> x = test_blocks();  // 128-value groups of the same blocks
  constexpr auto s1 = kvwb::codec::kernels::turbo_signs_table(1);
  constexpr auto s2 = kvwb::codec::kernels::turbo_signs_table(2);
  for (Path p : vector_paths()) {
    for (size_t n : {8u, 16u, 64u, 128u, 256u}) {
      std::vector<float> a(x.begin(), x.begin() + n), b = a;
      kvwb::codec::kernels::wht_pow2(a.data(), n);
      kvwb::codec::simd::wht(p, b.data(), n);
      ASSERT_EQ(0, std::memcmp(a.data(), b.data(), 4 * n)) << "n " << n;
    }
    for (unsigned bits : {2u, 3u, 4u}) {
      const auto t = kvwb::codec::kernels::turbo_tables(bits);
      for (size_t g = 0; g + 128 <= x.size(); g += 128) {
        uint8_t want[68] = {}, got[68] = {};
        float yw[128], yg[128];
        const float nw =
            kvwb::codec::kernels::turbo_encode_group(t, s1.value, s2.value, &x[g], want, yw);
        const float ng =
            kvwb::codec::simd::turbo_encode_group(p, t, s1.value, s2.value, &x[g], got, yg);
        ASSERT_EQ(kvwb::codec::kernels::f32_bits(nw), kvwb::codec::kernels::f32_bits(ng))
            << "bits " << bits << " group " << g / 128;
        ASSERT_EQ(0, std::memcmp(want + 2, got + 2, t.block_bytes - 2)) << "group " << g / 128;
        float dw[128], dg[128];
        kvwb::codec::kernels::turbo_decode_group(t, s1.value, s2.value, want, 0.75f, dw);
        kvwb::codec::simd::turbo_decode_group(p, t, s1.value, s2.value, want, 0.75f, dg);
        ASSERT_EQ(0, std::memcmp(dw, dg, sizeof dw)) << "decode group " << g / 128;
      }
    }
  }
}

TEST(Simd, TurboBatchesOfGroupsMatchScalar) {
  const std::vector<float> x = test_blocks();
  constexpr auto s1 = kvwb::codec::kernels::turbo_signs_table(1);
  constexpr auto s2 = kvwb::codec::kernels::turbo_signs_table(2);
  const size_t count = x.size() / 128;  // not a multiple of 8: the batch and the tail both run
  for (Path p : vector_paths()) {
    for (unsigned bits : {2u, 3u, 4u}) {
      const auto t = kvwb::codec::kernels::turbo_tables(bits);
      std::vector<uint8_t> want(count * t.block_bytes), got(count * t.block_bytes);
      std::vector<float> nw(count), ng(count);
      float y[128];
      for (size_t g = 0; g < count; ++g)
        nw[g] = kvwb::codec::kernels::turbo_encode_group(t, s1.value, s2.value, &x[128 * g],
                                                         &want[g * t.block_bytes], y);
      kvwb::codec::simd::turbo_encode_groups(p, t, s1.value, s2.value, x.data(), count, got.data(),
                                             ng.data());
      ASSERT_EQ(0, std::memcmp(nw.data(), ng.data(), 4 * count)) << "bits " << bits;
      ASSERT_EQ(want, got) << "bits " << bits;
    }
  }
}

TEST(Simd, FirstNonFiniteFindsTheFirstNanOrInfinity) {
  std::vector<float> x(300, 1.5f);
  for (Path p : {Path::kScalar, Path::kAvx2, Path::kAvx512}) {
    if (!kvwb::codec::simd::cpu_supports(p)) continue;
    EXPECT_EQ(kvwb::codec::simd::first_non_finite(p, x.data(), x.size()), x.size());
    for (size_t at : {0u, 7u, 63u, 64u, 130u, 299u}) {
      std::vector<float> y = x;
      y[at] = at % 2 ? std::nanf("") : -INFINITY;
      if (at + 5 < y.size()) y[at + 5] = INFINITY;
      EXPECT_EQ(kvwb::codec::simd::first_non_finite(p, y.data(), y.size()), at) << path_name(p);
    }
    x[0] = 3.4e38f;  // large but finite
    EXPECT_EQ(kvwb::codec::simd::first_non_finite(p, x.data(), x.size()), x.size());
    x[0] = 1.5f;
  }
}

}  // namespace

// Besicovitch g = 2 (codec/simd/besi.h): every vector path gives the scalar path's ids, magnitudes,
// levels, maximum and decoded values, also for group counts the vector width does not divide
// (the golden cases only use D = 64 and 128) and for codebooks the AVX-512 permute path
// (≤ 8 lines) and the gather path (more lines) take.
TEST(Simd, BesicovitchGroupsMatchScalarOnEveryPath) {
  if (vector_paths().empty()) GTEST_SKIP() << "this CPU has no AVX2: only the scalar path runs";
  std::mt19937 gen(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (const size_t m : {size_t{2}, size_t{8}, size_t{64}, size_t{1024}}) {
    std::vector<float> codebook(2 * m);
    for (size_t i = 0; i < m; ++i) {  // unit directions on the half circle, as the codec builds them
      const double a = 3.14159265358979 * static_cast<double>(i) / static_cast<double>(m);
      codebook[2 * i] = static_cast<float>(std::cos(a));
      codebook[2 * i + 1] = static_cast<float>(std::sin(a));
    }
    for (const size_t groups : {size_t{1}, size_t{5}, size_t{16}, size_t{33}, size_t{127}}) {
      std::vector<float> x(2 * groups), mean(2 * groups);
      for (size_t i = 0; i < x.size(); ++i) {
        x[i] = nd(gen) * std::ldexp(1.0f, static_cast<int>(gen() % 20) - 10);
        mean[i] = 0.25f * nd(gen);
      }
      x[0] = 0.0f, x[1] = -0.0f;  // a zero group: every dot ties at 0
      if (groups > 2) x[2] = x[3] = 1.0f;
      for (const float* mp : {static_cast<const float*>(nullptr), static_cast<const float*>(mean.data())}) {
        std::vector<uint16_t> ids_w(groups), ids_g(groups), lv_w(groups), lv_g(groups);
        std::vector<float> al_w(groups), al_g(groups), y_w(2 * groups), y_g(2 * groups);
        const float max_w =
            kvwb::codec::simd::besi_assign_g2(Path::kScalar, x.data(), mp, groups, codebook.data(), m,
                                              ids_w.data(), al_w.data());
        const float table[16] = {-1.0f, -0.8f, -0.6f, -0.45f, -0.3f, -0.18f, -0.08f, -0.01f,
                                 0.01f, 0.08f,  0.18f, 0.3f,   0.45f, 0.6f,   0.8f,   1.0f};
        const float s = max_w > 0 ? max_w : 1.0f;
        kvwb::codec::simd::besi_quantize(Path::kScalar, al_w.data(), groups, s, table, 16, lv_w.data());
        kvwb::codec::simd::besi_decode_g2(Path::kScalar, ids_w.data(), al_w.data(), groups, codebook.data(), m,
                                          mp, y_w.data());
        for (Path p : vector_paths()) {
          SCOPED_TRACE(std::string(kvwb::codec::simd::path_name(p)) + " m " + std::to_string(m) + " groups " +
                       std::to_string(groups) + (mp ? " mean" : ""));
          const float max_g = kvwb::codec::simd::besi_assign_g2(p, x.data(), mp, groups, codebook.data(), m,
                                                                ids_g.data(), al_g.data());
          EXPECT_EQ(kvwb::codec::kernels::f32_bits(max_w), kvwb::codec::kernels::f32_bits(max_g));
          EXPECT_EQ(ids_w, ids_g);
          EXPECT_EQ(0, std::memcmp(al_w.data(), al_g.data(), groups * sizeof(float)));
          kvwb::codec::simd::besi_quantize(p, al_w.data(), groups, s, table, 16, lv_g.data());
          EXPECT_EQ(lv_w, lv_g);
          kvwb::codec::simd::besi_decode_g2(p, ids_w.data(), al_w.data(), groups, codebook.data(), m, mp,
                                            y_g.data());
          EXPECT_EQ(0, std::memcmp(y_w.data(), y_g.data(), y_w.size() * sizeof(float)));
        }
      }
    }
  }
}
