// Kakeya-PCA codec (codec-kakeya.md §5–§10, §13.5, §13.7, §13.8; decisions.md #1, #12, #13).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>

#include "codec/codec.h"
#include "base/errors.h"
#include "codec/format/half.h"
#include "codec/codecs/kakeya_pca.h"
#include "codec/math/kmeans.h"
#include "codec/math/pca.h"
#include "codec/math/quantizer.h"
#include "codec/math/rng.h"
#include "codec/math/wht.h"
#include "tests/error_of.h"

using namespace kvwb;
using kvwb::test::error_of;
using namespace kvwb::codec;
using namespace kvwb::codec::kakeya;

namespace {

std::vector<float> synth(size_t n, size_t d, size_t rank, double noise, uint64_t seed) {
  std::vector<float> x(n * d);
  rng::synthetic(x.data(), n, d, rank, noise, seed);
  return x;
}

struct RoundTrip {
  EncodedUnit enc;
  DecodedUnit dec;
};

RoundTrip round_trip(const std::vector<float>& x, size_t d, const ParamMap& pm, size_t block,
                     const CodecResources& res = {}, const float* weights = nullptr) {
  auto codec = make_codec("kakeya_pca", pm, d, res);
  UnitInput in;
  in.rows = x.data();
  in.n = x.size() / d;
  in.dim = d;
  in.weights = weights;
  in.info.block_size = static_cast<uint32_t>(block);
  RoundTrip rt;
  rt.enc = codec->encode(in);
  rt.dec = codec->decode(rt.enc.bytes, "test");
  return rt;
}

double mse(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
  return s / static_cast<double>(a.size());
}

double rel_mse(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(a[i]) * a[i];
  }
  return num / den;
}

/// Relative MSE of a round trip at bit_width 1..4 (entries 0..3); the other parameters are `pm`.
std::vector<double> rel_mse_by_bits(const std::vector<float>& x, size_t d, ParamMap pm,
                                    size_t block) {
  std::vector<double> r;
  for (int b = 1; b <= 4; ++b) {
    pm["bit_width"] = std::to_string(b);
    r.push_back(rel_mse(x, round_trip(x, d, pm, block).dec.rows));
  }
  return r;
}

}  // namespace

// ---------------------------------------------------------------- §13.5 K-means helpers

TEST(Kmeans, AssignAndResidualGoldens) {
  const std::vector<float> cen = {1, 0, 0, 1};
  const std::vector<float> rows = {3, 0, 0, -2, 0, 0};
  uint32_t seg[3];
  float t[3];
  assign_segments(rows.data(), 3, 2, cen.data(), 2, seg, t);
  EXPECT_EQ(seg[0], 0u);
  EXPECT_FLOAT_EQ(t[0], 3.0f);
  EXPECT_EQ(seg[1], 1u);
  EXPECT_FLOAT_EQ(t[1], -2.0f);
  EXPECT_EQ(seg[2], 0u);
  EXPECT_EQ(t[2], 0.0f);
  const float c[2] = {3, 4};
  float r[2];
  segment_residual(c, 2, cen.data(), 3.0f, r);
  EXPECT_EQ(r[0], 0.0f);
  EXPECT_EQ(r[1], 4.0f);
}

TEST(Kmeans, FirstIndexGoldens) {
  EXPECT_EQ(kmeans_first_index(0xCAFEBABEull, 0, 512), 423u);
  EXPECT_EQ(kmeans_first_index(0xCAFEBABEull, 0, 500), 475u);
  EXPECT_EQ(kmeans_first_index(0xCAFEBABEull, 1, 512), 488u);
}

TEST(Kmeans, UnitCentresDeterministicAndZeroWeightRowsIgnored) {
  const size_t n = 200, d = 6;
  auto x = synth(n, d, 6, 0.1, 5);
  KmeansFit a = fit_axial_kmeans(x.data(), n, d, {}, 5, 32, 7, 0);
  KmeansFit b = fit_axial_kmeans(x.data(), n, d, {}, 5, 32, 7, 0);
  ASSERT_EQ(a.k_eff, 5u);
  EXPECT_EQ(a.centres, b.centres);
  std::vector<float> rounded = a.centres;
  round_to_dtype(rounded.data(), rounded.size(), SkeletonDtype::kFp16, "centres");
  for (size_t k = 0; k < a.k_eff; ++k)
    EXPECT_NEAR(norm_f32(rounded.data() + k * d, d), 1.0f, 1e-2f);
  // Append rows with weight 0 pointing elsewhere: the valid list is unchanged, so are the centres.
  std::vector<float> x2 = x;
  std::vector<float> w(n + 50, 1.0f);
  for (size_t i = 0; i < 50; ++i) {
    for (size_t j = 0; j < d; ++j) x2.push_back(j == 0 ? 100.0f + i : -50.0f);
    w[n + i] = 0.0f;
  }
  KmeansFit c = fit_axial_kmeans(x2.data(), n + 50, d, w, 5, 32, 7, 0);
  EXPECT_EQ(c.centres, a.centres);
  // Weight invariance: scaling all weights leaves the centres (hence the segments) unchanged.
  std::vector<float> w4(n, 4.0f);
  KmeansFit e = fit_axial_kmeans(x.data(), n, d, w4, 5, 32, 7, 0);
  EXPECT_EQ(e.centres, a.centres);
  // A different block index starts elsewhere.
  EXPECT_EQ(kmeans_first_index(7, 0, n) == kmeans_first_index(7, 1, n), false);
}

TEST(Kmeans, AllZeroGivesE0AndKEffClamped) {
  std::vector<float> z(10 * 3, 0.0f);
  KmeansFit f = fit_axial_kmeans(z.data(), 10, 3, {}, 4, 32, 1, 0);
  EXPECT_EQ(f.k_eff, 1u);
  EXPECT_EQ(f.centres, (std::vector<float>{1, 0, 0}));
  std::vector<float> two = {1, 0, 0, 0, 2, 0};
  KmeansFit g = fit_axial_kmeans(two.data(), 2, 3, {}, 16, 32, 1, 0);
  EXPECT_EQ(g.k_eff, 2u);
  KmeansFit one = fit_axial_kmeans(two.data(), 2, 3, {}, 1, 32, 1, 0);
  EXPECT_EQ(one.iterations, 1u);  // all-zero previous assignment: stops at once with K_eff = 1
}

TEST(Kakeya, FastQuantizerEqualsLinearScan) {
  std::vector<std::vector<float>> tables;
  for (unsigned b = 1; b <= 4; ++b) {
    const auto g = gaussian_table(b);
    tables.emplace_back(g.begin(), g.end());
  }
  tables.push_back({-3.0f, -0.5f, 0.5f, 3.0f});
  tables.push_back({-1e-3f, 0.0f, 1e-7f, 2e-7f, 5.0f, 5.0000005f, 7.0f, 9.0f});
  std::mt19937 gen(5);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (const auto& tb : tables) {
    std::vector<float> probes = {0.0f, -0.0f, 100.0f, -100.0f, 64.0f, -64.0f};
    for (size_t m = 0; m < tb.size(); ++m) {
      probes.push_back(tb[m]);
      probes.push_back(std::nextafter(tb[m], 1e9f));
      probes.push_back(std::nextafter(tb[m], -1e9f));
      if (m + 1 < tb.size()) {
        const float mid = (tb[m] + tb[m + 1]) / 2;
        for (float p : {mid, std::nextafter(mid, 1e9f), std::nextafter(mid, -1e9f)})
          probes.push_back(p);
      }
    }
    for (int i = 0; i < 20000; ++i) probes.push_back(nd(gen));
    for (float s : probes)
      ASSERT_EQ(quantize_fast(s, tb.data(), tb.size()), quantize_nearest(s, tb)) << s;
  }
}

// ---------------------------------------------------------------- PCA (§5.2–5.5, §13.8)

TEST(Pca, CumsumRule) {
  const std::vector<double> l = {4, 3, 2, 1};
  EXPECT_EQ(cumsum_rank(l, 0.0), 1u);
  EXPECT_EQ(cumsum_rank(l, 0.4), 1u);
  EXPECT_EQ(cumsum_rank(l, 0.41), 2u);
  EXPECT_EQ(cumsum_rank(l, 0.7), 2u);
  EXPECT_EQ(cumsum_rank(l, 0.95), 4u);
  EXPECT_EQ(cumsum_rank(l, 1.0), 4u);  // decisions.md #12
  const std::vector<double> z = {0, 0, -1e-12};
  EXPECT_EQ(cumsum_rank(z, 0.9), 1u);
}

TEST(Pca, WeightedMeanAndZeroWeightError) {
  const std::vector<float> x = {1, 2, 3, 4};
  float m[2];
  const std::vector<float> w = {1, 3};
  weighted_mean(x.data(), 2, 2, w, m);
  EXPECT_FLOAT_EQ(m[0], 2.5f);
  EXPECT_FLOAT_EQ(m[1], 3.5f);
  const std::vector<float> w0 = {0, 0};
  EXPECT_THROW(weighted_mean(x.data(), 2, 2, w0, m), InvalidArgument);
}

TEST(Pca, EllipseMajorAxisAndThinEllipse) {
  const size_t n = 400;
  std::vector<float> x(n * 2);
  const double ang = 0.5;
  for (size_t i = 0; i < n; ++i) {
    const double a = 3.0 * rng::normal(77, 2 * i), b = 0.3 * rng::normal(77, 2 * i + 1);
    x[2 * i] = static_cast<float>(a * std::cos(ang) - b * std::sin(ang));
    x[2 * i + 1] = static_cast<float>(a * std::sin(ang) + b * std::cos(ang));
  }
  float m[2];
  weighted_mean(x.data(), n, 2, {}, m);
  PcaParams p;
  p.variance_ratio = 0.5f;
  PcaFit f = pca_exact(x.data(), n, 2, {}, m, p);
  EXPECT_EQ(f.d_eff, 1u);
  EXPECT_GT(std::fabs(f.basis[0] * std::cos(ang) + f.basis[1] * std::sin(ang)), 0.98);
  canonicalize_signs(f.basis.data(), 1, 2);
  EXPECT_GT(f.basis[0], 0.0f);  // cos(0.5) > sin(0.5): the first entry is the largest
  EXPECT_GE(f.eigenvalues[0], f.eigenvalues[1]);
}

TEST(Pca, SignConventionTiesLowestIndex) {
  std::vector<float> b = {-0.5f, 0.5f, 0.1f, 0.2f, -0.7f, 0.7f};
  canonicalize_signs(b.data(), 2, 3);
  EXPECT_EQ(b, (std::vector<float>{0.5f, -0.5f, -0.1f, -0.2f, 0.7f, -0.7f}));
}

TEST(Pca, FullRankProjectUnprojectFp16) {
  const size_t n = 256, d = 16;
  auto x = synth(n, d, 16, 0.0, 3);
  std::vector<float> m(d);
  weighted_mean(x.data(), n, d, {}, m.data());
  PcaParams p;
  p.variance_ratio = 1.0f;
  PcaFit f = pca_exact(x.data(), n, d, {}, m.data(), p);
  ASSERT_EQ(f.d_eff, d);
  canonicalize_signs(f.basis.data(), d, d);
  round_to_dtype(m.data(), d, SkeletonDtype::kFp16, "mean");
  round_to_dtype(f.basis.data(), f.basis.size(), SkeletonDtype::kFp16, "basis");
  for (size_t i = 0; i < n; ++i) {
    std::vector<float> c(d, 0.0f);
    for (size_t k = 0; k < d; ++k)
      for (size_t j = 0; j < d; ++j) c[k] += f.basis[k * d + j] * (x[i * d + j] - m[j]);
    for (size_t j = 0; j < d; ++j) {
      float xr = m[j];
      for (size_t k = 0; k < d; ++k) xr += c[k] * f.basis[k * d + j];
      EXPECT_NEAR(xr, x[i * d + j], 2e-2 * std::max(1.0f, std::fabs(x[i * d + j])));
    }
  }
}

TEST(Pca, OmegaGoldens) {
  const auto om = rsvd_omega(512, 72, 0xCAFEBABEull);
  EXPECT_NEAR(om[0], -0.6728032f, 1e-6f);
  EXPECT_NEAR(om[1], -0.5048806f, 1e-6f);
  EXPECT_NEAR(om[72], -0.5380169f, 1e-6f);
  EXPECT_NEAR(om[511 * 72 + 71], 0.49908566f, 1e-6f);
  PcaParams p;
  p.rsvd_target_rank = 64;
  p.rsvd_oversample = 8;
  EXPECT_EQ(rsvd_sketch_width(512, 128, p), 72u);
  EXPECT_EQ(rsvd_sketch_width(20, 128, p), 20u);  // clamped to n
  EXPECT_EQ(rsvd_sketch_width(512, 32, p), 32u);  // clamped to D
}

namespace {
// Root-mean-square cosine of the principal angles between the row spaces of a and b ([k, d]
// each, orthonormal rows): sqrt(‖a·bᵀ‖²_F / k).
double subspace_cos(const std::vector<float>& a, const std::vector<float>& b, size_t k, size_t d) {
  double f = 0;
  for (size_t i = 0; i < k; ++i)
    for (size_t l = 0; l < k; ++l) {
      double dot = 0;
      for (size_t j = 0; j < d; ++j) dot += double(a[i * d + j]) * b[l * d + j];
      f += dot * dot;
    }
  return std::sqrt(f / static_cast<double>(k));
}

double projection_mse(const std::vector<float>& x, size_t n, size_t d, const float* m,
                      const PcaFit& f) {
  double s = 0;
  for (size_t i = 0; i < n; ++i) {
    std::vector<double> c(f.d_eff, 0.0);
    for (size_t k = 0; k < f.d_eff; ++k)
      for (size_t j = 0; j < d; ++j) c[k] += f.basis[k * d + j] * (x[i * d + j] - m[j]);
    for (size_t j = 0; j < d; ++j) {
      double xr = m[j];
      for (size_t k = 0; k < f.d_eff; ++k) xr += c[k] * f.basis[k * d + j];
      s += (xr - x[i * d + j]) * (xr - x[i * d + j]);
    }
  }
  return s / static_cast<double>(n * d);
}
}  // namespace

namespace {
/// Exact and randomized PCA of the same unweighted rows x [n, d] about their mean.
struct PcaPair {
  std::vector<float> mean;
  PcaFit exact, randomized;
};

/// The exact fit takes `p`; the randomized one `p` with method randomized, then `randomized`.
PcaPair fit_exact_and_randomized(const std::vector<float>& x, size_t n, size_t d, PcaParams p,
                                 const std::function<void(PcaParams&)>& randomized = {}) {
  PcaPair f;
  f.mean.resize(d);
  weighted_mean(x.data(), n, d, {}, f.mean.data());
  f.exact = pca_exact(x.data(), n, d, {}, f.mean.data(), p);
  p.method = PcaMethod::kRandomized;
  if (randomized) randomized(p);
  f.randomized = pca_randomized(x.data(), n, d, {}, f.mean.data(), p);
  return f;
}
}  // namespace

TEST(Pca, RsvdMatchesExactRank1) {
  const size_t n = 300, d = 32;
  auto x = synth(n, d, 1, 0.0, 9);
  PcaParams p;
  p.variance_ratio = 0.9f;
  p.rsvd_target_rank = 16;
  const PcaPair f = fit_exact_and_randomized(x, n, d, p);
  const PcaFit &e = f.exact, &r = f.randomized;
  ASSERT_EQ(e.d_eff, 1u);
  ASSERT_EQ(r.d_eff, 1u);
  double cs = 0;
  for (size_t j = 0; j < d; ++j) cs += double(e.basis[j]) * r.basis[j];
  EXPECT_LT(1.0 - std::fabs(cs), 1e-3);
}

TEST(Pca, RsvdMatchesExactRank4PlusNoise) {
  const size_t n = 512, d = 64;
  auto x = synth(n, d, 4, 0.01, 10);
  PcaParams p;
  p.variance_ratio = 0.95f;
  p.rsvd_target_rank = 32;
  const PcaPair f = fit_exact_and_randomized(x, n, d, p);
  const PcaFit &e = f.exact, &r = f.randomized;
  EXPECT_TRUE(r.d_eff == 4 || r.d_eff == 5) << r.d_eff;
  EXPECT_TRUE(e.d_eff == 4 || e.d_eff == 5) << e.d_eff;
  EXPECT_LT(1.0 - subspace_cos(e.basis, r.basis, 4, d), 5e-2);
}

TEST(Pca, RsvdMseWithinFactorOfExactOnDecayingSpectrum) {
  const size_t n = 512, d = 64;
  std::vector<float> x(n * d);
  // Coordinates scaled by exp(-j/6), mixed by the orthogonal H/sqrt(d).
  for (size_t i = 0; i < n; ++i) {
    float* row = x.data() + i * d;
    for (size_t j = 0; j < d; ++j)
      row[j] = rng::normal(32, i * d + j) * static_cast<float>(std::exp(-double(j) / 6.0));
    wht_inplace(row, d);
    for (size_t j = 0; j < d; ++j) row[j] /= 8.0f;
  }
  PcaParams p;
  p.variance_ratio = 1.0f;
  p.exact_rank_cap = 12;
  const PcaPair f = fit_exact_and_randomized(x, n, d, p, [](PcaParams& rp) {
    rp.rsvd_target_rank = 12;
    rp.rsvd_oversample = 10;
    rp.rsvd_power_iters = 3;
  });
  const PcaFit &e = f.exact, &r = f.randomized;
  ASSERT_EQ(e.d_eff, 12u);
  ASSERT_EQ(r.d_eff, 12u);  // vr = 1 keeps the target rank (decisions.md #12)
  const double me = projection_mse(x, n, d, f.mean.data(), e);
  const double mr = projection_mse(x, n, d, f.mean.data(), r);
  EXPECT_LE(mr, 1.5 * me) << "exact " << me << " rsvd " << mr;
  EXPECT_GE(mr, me * 0.999);
}

TEST(Pca, RoundToDtypeRangeErrorNamesField) {
  std::vector<float> v = {1.0f, 70000.0f};
  const std::string msg = error_of<Fp16Range>(
      [&] { round_to_dtype(v.data(), 2, SkeletonDtype::kFp16, "block 3 mean"); });
  EXPECT_NE(msg.find("block 3 mean"), std::string::npos) << msg;
  std::vector<float> ok = {70000.0f};
  round_to_dtype(ok.data(), 1, SkeletonDtype::kBf16, "x");
  EXPECT_EQ(ok[0], round_bf16(70000.0f));
}

// ---------------------------------------------------------------- §13.7 round trips

TEST(Kakeya, LowRankRoundTrip) {
  auto x = synth(64, 16, 4, 0.01, 1);
  auto rt = round_trip(
      x, 16, {{"variance_ratio", "0.99"}, {"k", "4"}, {"bit_width", "4"}, {"seed", "0xABCD"}}, 64);
  const double e = mse(x, rt.dec.rows);
  EXPECT_LT(e, 0.05);
  RecordProperty("mse", std::to_string(e));
  std::printf("[ info ] low-rank round trip MSE %.3g (spec typical 2.7e-4)\n", e);
}

TEST(Kakeya, Integration) {
  auto x = synth(64, 32, 8, 0.01, 0xFEED);
  auto rt = round_trip(x, 32,
                       {{"variance_ratio", "0.95"},
                        {"k", "8"},
                        {"bit_width", "4"},
                        {"seed", "0xFEED"},
                        {"kmeans_max_iter", "64"}},
                       64);
  const double e = mse(x, rt.dec.rows);
  EXPECT_LT(e, 0.05);
  std::printf("[ info ] integration MSE %.3g (spec typical 2.8e-4)\n", e);
}

TEST(Kakeya, Bits) {
  auto x = synth(128, 32, 8, 0.02, 4);
  const auto r = rel_mse_by_bits(x, 32, {{"variance_ratio", "0.95"}, {"k", "8"}}, 128);
  EXPECT_LT(r[3], r[0]);
  std::printf(
      "[ info ] bits rel. MSE b=1..4: %.4f %.4f %.4f %.4f (spec typical 0.153 0.047 0.015 "
      "0.0050)\n",
      r[0], r[1], r[2], r[3]);
}

TEST(Kakeya, AllOutliers) {
  std::vector<float> x(64);
  const uint64_t key = 21 ^ rng::kTagTest;
  for (size_t i = 0; i < 64; ++i)
    x[i] = static_cast<float>(-1.0 + 2.0 * rng::u01c(rng::splitmix(key, i)));
  auto rt = round_trip(
      x, 8,
      {{"bit_width", "2"}, {"k", "4"}, {"variance_ratio", "0.99"}, {"outlier_threshold", "0"}}, 8);
  const double e = mse(x, rt.dec.rows);
  EXPECT_LT(e, 3e-3);
  EXPECT_GT(rt.enc.stats.outliers, 0u);
  std::printf("[ info ] all-outliers MSE %.3g (spec typical 1.0e-3)\n", e);
}

TEST(Kakeya, OutlierCostIsExact) {
  for (size_t d : {16u, 256u}) {  // wht_len <= 128 (u8 counts) and > 128 (u16 counts)
    auto x = synth(3 * 64 + 5, d, d / 2, 0.3, 8);
    ParamMap base = {{"variance_ratio", "1.0"}, {"k", "4"}};
    ParamMap with = base;
    with["outlier_threshold"] = "1.5";
    auto off = round_trip(x, d, base, 64);
    auto on = round_trip(x, d, with, 64);
    UnitCode c = read_container(on.enc.bytes, "on");
    uint64_t expect = 0;
    for (const auto& bc : c.blocks)
      expect += 64 * (bc.wht_len() <= 128 ? 1 : 2) + 4 * bc.out_idx.size();
    EXPECT_GT(on.enc.stats.outliers, 0u);
    EXPECT_EQ(on.enc.reported_bytes - off.enc.reported_bytes, expect) << "D " << d;
    EXPECT_EQ(on.enc.reference_bytes - off.enc.reference_bytes, 4 * on.enc.stats.outliers);
    EXPECT_EQ(on.enc.stats.d_eff, off.enc.stats.d_eff);
    // Outliers only improve the reconstruction.
    EXPECT_LT(mse(x, on.dec.rows), mse(x, off.dec.rows));
  }
}

TEST(Kakeya, AllZeroBlock) {
  std::vector<float> x(16 * 8, 0.0f);
  auto rt = round_trip(x, 8, {{"bit_width", "3"}, {"k", "4"}}, 16);
  for (float v : rt.dec.rows) EXPECT_EQ(v, 0.0f);
  ASSERT_EQ(rt.enc.stats.d_eff.size(), 1u);
  EXPECT_EQ(rt.enc.stats.d_eff[0], 1);
  EXPECT_EQ(rt.enc.stats.k_eff[0], 1);
}

TEST(Kakeya, RowEqualToMean) {
  const std::vector<float> x = {1, 0, 0, 0, -1, 0, 0, 0, 0, 1, 0, 0, 0, -1, 0, 0, 0, 0, 0, 0};
  auto rt = round_trip(x, 4, {{"variance_ratio", "0.95"}, {"k", "2"}, {"bit_width", "3"}}, 5);
  for (size_t j = 0; j < 4; ++j) EXPECT_LT(std::fabs(rt.dec.rows[16 + j]), 0.5f);
}

// ---------------------------------------------------------------- §13.8 properties

TEST(Kakeya, NearLosslessB4Vr1) {
  auto x = synth(64, 16, 4, 0.0, 7);
  auto rt = round_trip(x, 16, {{"variance_ratio", "1.0"}, {"k", "4"}, {"bit_width", "4"}}, 64);
  const double r = rel_mse(x, rt.dec.rows);
  EXPECT_LT(r, 0.01);
  std::printf("[ info ] near-lossless rel. MSE %.4f (spec typical 0.0024)\n", r);
}

TEST(Kakeya, MonotoneInBits) {
  auto x = synth(512, 64, 8, 0.05, 11);
  const auto r = rel_mse_by_bits(x, 64, {{"variance_ratio", "1.0"}, {"k", "16"}}, 512);
  for (int b = 1; b < 4; ++b) EXPECT_LT(r[b], r[b - 1]);
  std::printf(
      "[ info ] monotone rel. MSE b=1..4: %.4f %.4f %.4f %.4f (spec typical 0.135 0.041 0.012 "
      "0.0036)\n",
      r[0], r[1], r[2], r[3]);
}

TEST(Kakeya, DeterministicAndSeedsDiffer) {
  auto x = synth(2 * 128 + 7, 32, 8, 0.1, 12);
  auto a = round_trip(x, 32, {}, 128);
  auto b = round_trip(x, 32, {}, 128);
  EXPECT_EQ(a.enc.bytes, b.enc.bytes);
  auto c = round_trip(x, 32, {{"seed", "12345"}}, 128);
  UnitCode ca = read_container(a.enc.bytes, "a");
  UnitCode cc = read_container(c.enc.bytes, "c");
  EXPECT_NE(ca.blocks[0].idx, cc.blocks[0].idx);
  EXPECT_NE(ca.seed, cc.seed);
}

TEST(Kakeya, FiniteOnDegenerateBlocks) {
  const size_t n = 32, d = 8;
  std::vector<float> zero(n * d, 0.0f), constant(n * d), rank1(n * d);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < d; ++j) {
      constant[i * d + j] = 0.1f * static_cast<float>(j) - 0.3f + 1.2345f;
      rank1[i * d + j] = (static_cast<float>(i) - 15.5f) * (static_cast<float>(j) + 1.0f) * 0.01f;
    }
  for (const auto* x : {&zero, &constant, &rank1}) {
    for (const char* pm : {"exact", "randomized"}) {
      auto rt = round_trip(*x, d, {{"pca_method", pm}}, n);
      for (float v : rt.dec.rows) EXPECT_TRUE(std::isfinite(v));
    }
  }
  auto rt = round_trip(constant, d, {}, n);
  for (size_t i = 0; i < n * d; ++i)  // within the fp16 rounding of the mean
    EXPECT_NEAR(rt.dec.rows[i], constant[i],
                std::fabs(round_f16(constant[i]) - constant[i]) + 1e-6f);
  auto r1 = round_trip(rank1, d, {}, n);
  EXPECT_LT(rel_mse(rank1, r1.dec.rows), 1e-3);
}

TEST(Kakeya, AttentionWeightInvarianceAndMissingWeights) {
  const size_t n = 256, d = 16;
  auto x = synth(n, d, 6, 0.05, 13);
  std::vector<float> a(n), a3(n);
  for (size_t i = 0; i < n; ++i) {
    a[i] = 0.01f + static_cast<float>(rng::u01c(rng::splitmix(99, i)));
    a3[i] = 3.0f * a[i];
  }
  auto r1 = round_trip(x, d, {{"weights", "attention"}}, 128, {}, a.data());
  auto r3 = round_trip(x, d, {{"weights", "attention"}}, 128, {}, a3.data());
  UnitCode c1 = read_container(r1.enc.bytes, "1"), c3 = read_container(r3.enc.bytes, "3");
  ASSERT_EQ(c1.blocks.size(), 2u);
  EXPECT_TRUE(c1.attention_weights);
  for (size_t b = 0; b < 2; ++b) EXPECT_EQ(c1.blocks[b].seg, c3.blocks[b].seg);
  // Weights change the fit relative to uniform.
  auto ru = round_trip(x, d, {}, 128);
  EXPECT_NE(ru.enc.bytes, r1.enc.bytes);
  const std::string msg = error_of<InvalidArgument>([&] {
    round_trip(x, d, {{"weights", "attention"}}, 128);
  });
  EXPECT_NE(msg.find("weights"), std::string::npos) << msg;
}

// ---------------------------------------------------------------- bytes (§9.8, §10.1)

TEST(Kakeya, SkeletonBytesD4) {
  // D = 4, d_eff = 2, K_eff = 3: mean 4 + basis 8 + centres 6 values (n = 0 isolates the skeleton).
  EXPECT_EQ(reference_block_bytes(4, 0, 2, 3, 3, SkeletonDtype::kFp16, 0, false), 36u);
  EXPECT_EQ(reference_block_bytes(4, 0, 2, 3, 3, SkeletonDtype::kFp32, 0, false), 72u);
  EXPECT_EQ(block_bytes(4, 0, 2, 3, 3, SkeletonDtype::kFp16, false, 0, false), 8u + 36u);
  EXPECT_EQ(block_bytes(4, 0, 2, 3, 3, SkeletonDtype::kFp32, false, 0, false), 8u + 72u);
}

TEST(Kakeya, WorkedExampleBytes) {
  EXPECT_EQ(block_bytes(128, 512, 64, 16, 3, SkeletonDtype::kFp16, true, 1475, false), 39700u);
  EXPECT_EQ(block_bytes(128, 512, 64, 16, 2, SkeletonDtype::kFp16, false, 0, false), 29192u);
  EXPECT_EQ(reference_block_bytes(128, 512, 64, 16, 3, SkeletonDtype::kFp16, 1475, false), 41996u);
  EXPECT_EQ(reference_block_bytes(128, 512, 64, 16, 2, SkeletonDtype::kFp16, 0, false), 32000u);
  // Reference report: D = 64, 16 blocks of 512, b = 2, rank 32, Σ d_eff = 492 → 228,224 B.
  uint64_t total = 0;
  for (int b = 0; b < 16; ++b) {
    const size_t de = b < 12 ? 31 : 30;  // 12·31 + 4·30 = 492
    total += reference_block_bytes(64, 512, de, 16, 2, SkeletonDtype::kFp16, 0, false);
  }
  EXPECT_EQ(total, 228224u);
}

TEST(Kakeya, ByteFormulaRandomParams) {
  std::mt19937 gen(2024);
  for (int trial = 0; trial < 24; ++trial) {
    const size_t d = size_t{1} << (2 + gen() % 6);  // 4..128
    const size_t bs = 8 + gen() % 60;
    const size_t n = gen() % (4 * bs + 1);
    const bool share = gen() % 3 == 0;
    const bool outl = gen() % 2 == 0;
    const char* dt[] = {"fp16", "bf16", "fp32"};
    ParamMap pm = {{"k", std::to_string(1 + gen() % 20)},
                   {"bit_width", std::to_string(1 + gen() % 4)},
                   {"variance_ratio", std::to_string(0.5 + 0.5 * (gen() % 100) / 100.0)},
                   {"skeleton_dtype", dt[gen() % 3]},
                   {"pca_method", gen() % 2 ? "exact" : "randomized"},
                   {"share_basis", share ? "true" : "false"}};
    if (outl) pm["outlier_threshold"] = std::to_string(1.0 + (gen() % 20) / 10.0);
    auto x = synth(n, d, 1 + gen() % d, 0.05, trial);
    auto rt = round_trip(x, d, pm, bs);
    UnitCode c = read_container(rt.enc.bytes, "formula");
    const unsigned b = c.bit_width;
    uint64_t expect = rt.enc.header_bytes + 2 * (n - (n / bs) * bs) * d;
    uint64_t ref = 2 * (n - (n / bs) * bs) * d;
    if (c.shared) {
      expect += shared_record_bytes(d, c.shared->d_eff, c.shared->dtype);
      ref += reference_shared_bytes(d, c.shared->d_eff, c.shared->dtype);
    }
    EXPECT_EQ(c.shared.has_value(), share && n >= bs);
    for (size_t i = 0; i < c.blocks.size(); ++i) {
      const auto& bc = c.blocks[i];
      expect += block_bytes(d, bs, bc.d_eff, bc.k_eff, b, bc.dtype, bc.outliers, bc.out_idx.size(),
                            bc.shared);
      ref += reference_block_bytes(d, bs, bc.d_eff, bc.k_eff, b, bc.dtype, bc.out_idx.size(),
                                   bc.shared);
      EXPECT_EQ(bc.d_eff, rt.enc.stats.d_eff[i]);
      EXPECT_EQ(bc.k_eff, rt.enc.stats.k_eff[i]);
    }
    EXPECT_EQ(rt.enc.bytes.size(), expect) << "trial " << trial;
    EXPECT_EQ(rt.enc.reported_bytes, rt.enc.bytes.size() - rt.enc.header_bytes);
    EXPECT_EQ(rt.enc.reference_bytes, ref);
    EXPECT_EQ(rt.enc.codec_rows, (n / bs) * bs);
    EXPECT_EQ(rt.enc.tail_bytes, 2 * (n - (n / bs) * bs) * d);
    EXPECT_EQ(rt.dec.rows.size(), n * d);
  }
}

// ---------------------------------------------------------------- container (§9)

TEST(Kakeya, ContainerRoundTripBitExactAndTail) {
  const size_t d = 32, bs = 64, n = 3 * bs + 11;
  auto x = synth(n, d, 6, 0.05, 14);
  std::vector<float> orig(x.size());
  for (size_t i = 0; i < x.size(); ++i) orig[i] = x[i] * 1.5f + 0.25f;
  Config cfg = parse_config({{"outlier_threshold", "2"}}, d, {});
  UnitInput in;
  in.rows = x.data();
  in.original_rows = orig.data();
  in.n = n;
  in.dim = d;
  in.info.block_size = bs;
  in.info.layer = 7;
  in.info.kv_head = 1;
  in.info.n_kv_heads = 4;
  in.info.stream = Stream::kV;
  in.info.domain_flags = kDomainWhitened;
  UnitCode code = encode_unit(cfg, in, nullptr);
  const DecodedUnit mem = decode_unit(code);
  const auto bytes = write_container(code);
  const DecodedUnit disk = decode_container(bytes, "rt.kvcb");
  ASSERT_EQ(mem.rows.size(), disk.rows.size());
  EXPECT_EQ(std::memcmp(mem.rows.data(), disk.rows.data(), mem.rows.size() * 4), 0);
  EXPECT_EQ(disk.n_block_rows, 3 * bs);
  EXPECT_EQ(disk.header.layer, 7u);
  EXPECT_EQ(disk.header.kv_head, 1);
  EXPECT_EQ(disk.header.n_kv_heads, 4);
  EXPECT_EQ(disk.header.stream, Stream::kV);
  EXPECT_EQ(disk.header.domain_flags, kDomainWhitened);
  EXPECT_EQ(disk.header.n_tail_rows, 11u);
  for (size_t i = 3 * bs * d; i < n * d; ++i) EXPECT_EQ(disk.rows[i], round_bf16(orig[i]));
  // Truncation by one byte is a read error; so is a trailing byte.
  std::vector<uint8_t> cut(bytes.begin(), bytes.end() - 1);
  EXPECT_THROW(decode_container(cut, "cut.kvcb"), FormatError);
  std::vector<uint8_t> longer = bytes;
  longer.push_back(0);
  EXPECT_THROW(decode_container(longer, "long.kvcb"), FormatError);
}

TEST(Kakeya, ContainerValidationNamesBlockRowField) {
  const size_t d = 16, bs = 32;
  auto x = synth(2 * bs, d, 4, 0.05, 15);
  Config cfg = parse_config({{"k", "3"}}, d, {});
  UnitInput in;
  in.rows = x.data();
  in.n = 2 * bs;
  in.dim = d;
  in.info.block_size = bs;
  UnitCode code = encode_unit(cfg, in, nullptr);
  ASSERT_EQ(code.blocks[1].k_eff, 3u);
  // Corrupt: a segment id of 3 (>= K_eff = 3) in block 1, row 0.
  UnitCode bad = code;
  bad.blocks[1].seg[0] = 3;
  auto bytes = write_container(bad);
  std::string msg = error_of<FormatError>([&] { read_container(bytes, "bad.kvcb"); });
  EXPECT_NE(msg.find("bad.kvcb"), std::string::npos) << msg;
  EXPECT_NE(msg.find("block 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("row 0"), std::string::npos) << msg;
  EXPECT_NE(msg.find("segment id"), std::string::npos) << msg;
  // A non-finite t.
  bad = code;
  bad.blocks[0].t_bits[5] = 0x7C00;
  bytes = write_container(bad);
  msg = error_of<FormatError>([&] { read_container(bytes, "inf.kvcb"); });
  EXPECT_NE(msg.find("block 0, row 5, field 't'"), std::string::npos) << msg;
  // d_eff out of range.
  bytes = write_container(code);
  const size_t off = code.header.header_bytes;
  bytes[off] = 0;
  bytes[off + 1] = 0;
  msg = error_of<FormatError>([&] { read_container(bytes, "deff.kvcb"); });
  EXPECT_NE(msg.find("d_eff"), std::string::npos) << msg;
  // Wrong codec id is refused.
  bytes = write_container(code);
  bytes[8] = 2;
  EXPECT_THROW(read_container(bytes, "id.kvcb"), FormatError);
}

TEST(Kakeya, HeaderParameterBlock) {
  const size_t d = 16;
  auto x = synth(40, d, 4, 0.05, 16);
  auto rt = round_trip(x, d,
                       {{"variance_ratio", "1.7"},
                        {"k", "9"},
                        {"bit_width", "2"},
                        {"seed", "0x1234"},
                        {"pca_method", "randomized"},
                        {"outlier_threshold", "1.25"},
                        {"skeleton_dtype", "bf16"},
                        {"share_basis", "true"},
                        {"kmeans_max_iter", "5"}},
                       16);
  const auto& b = rt.enc.bytes;
  EXPECT_EQ(rt.enc.header_bytes, 80u);
  uint64_t seed;
  std::memcpy(&seed, b.data() + 48, 8);
  EXPECT_EQ(seed, 0x1234u);
  EXPECT_EQ(b[56], 2);
  EXPECT_EQ(b[57], 1);
  EXPECT_EQ(b[58], 1);
  EXPECT_EQ(b[59], 0x3);
  uint16_t k, it, tr, os, pw, cap;
  float vr, t;
  std::memcpy(&k, b.data() + 60, 2);
  std::memcpy(&it, b.data() + 62, 2);
  std::memcpy(&vr, b.data() + 64, 4);
  std::memcpy(&t, b.data() + 68, 4);
  std::memcpy(&tr, b.data() + 72, 2);
  std::memcpy(&os, b.data() + 74, 2);
  std::memcpy(&pw, b.data() + 76, 2);
  std::memcpy(&cap, b.data() + 78, 2);
  EXPECT_EQ(k, 9);
  EXPECT_EQ(it, 5);
  EXPECT_EQ(vr, 1.0f);  // clamped
  EXPECT_EQ(t, 1.25f);
  EXPECT_EQ(tr, 8);  // max(D/2, 8)
  EXPECT_EQ(os, 8);
  EXPECT_EQ(pw, 2);
  EXPECT_EQ(cap, 0);
  // Shared record follows the header: d_eff = target rank 8 with vr clamped to 1.
  uint16_t sd;
  std::memcpy(&sd, b.data() + 80, 2);
  EXPECT_EQ(sd, 8);
  EXPECT_EQ(b[82], 1);
  for (uint16_t de : rt.enc.stats.d_eff) EXPECT_EQ(de, 8);
}

// ---------------------------------------------------------------- parameters and errors

TEST(Kakeya, BadParametersNameTheParameter) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"k", "0"},
      {"k", "5000"},
      {"bit_width", "0"},
      {"bit_width", "5"},
      {"variance_ratio", "nan"},
      {"variance_ratio", "abc"},
      {"kmeans_max_iter", "0"},
      {"pca_method", "svd"},
      {"rsvd_target_rank", "0"},
      {"rsvd_oversample", "-1"},
      {"rsvd_power_iters", "x"},
      {"exact_rank_cap", "33"},
      {"exact_rank_cap", "0"},
      {"skeleton_dtype", "fp8"},
      {"outlier_threshold", "-1"},
      {"outlier_threshold", "inf"},
      {"share_basis", "maybe"},
      {"weights", "entropy"},
      {"seed", "cafe"},
      {"centroids", "/tmp/table.json"},
      {"block_size", "512"},
      {"k_domain", "pre_rope"},
  };
  for (const auto& [name, value] : bad) {
    const std::string msg = error_of<InvalidArgument>([&, n = name, v = value] {
      make_codec("kakeya_pca", {{n, v}}, 32);
    });
    EXPECT_NE(msg.find("'" + name + "'"), std::string::npos) << name << "=" << value << ": " << msg;
  }
  EXPECT_NO_THROW(make_codec("kakeya_pca", {{"variance_ratio", "-3"}}, 32));  // clamped to 0
  EXPECT_NO_THROW(
      make_codec("kakeya_pca", {{"exact_rank_cap", "32"}, {"seed", "0xFFFFFFFFFFFFFFFF"}}, 32));
  EXPECT_FALSE(codec_params("kakeya_pca").empty());
  for (const auto& s : codec_params("kakeya_pca")) EXPECT_FALSE(s.help.empty()) << s.name;
}

TEST(Kakeya, CalibratedTable) {
  CodecResources wrong;
  wrong.centroid_table = {-1.0f, 0.0f, 1.0f};
  const std::string msg =
      error_of<InvalidArgument>([&] { make_codec("kakeya_pca", {}, 16, wrong); });
  EXPECT_NE(msg.find("centroids"), std::string::npos) << msg;
  CodecResources unsorted;
  unsorted.centroid_table = {-2, -1, 0, 1, 2, 3, 5, 4};
  EXPECT_THROW(make_codec("kakeya_pca", {}, 16, unsorted), InvalidArgument);
  CodecResources ok;
  ok.centroid_table = {-1.8f, -1.1f, -0.6f, -0.2f, 0.2f, 0.6f, 1.1f, 1.8f};
  auto x = synth(64, 16, 4, 0.05, 17);
  auto rt = round_trip(x, 16, {{"centroids", "laplace.json"}}, 64, ok);
  EXPECT_EQ(rt.enc.header_bytes, 48u + 32u + 32u);
  UnitCode c = read_container(rt.enc.bytes, "cal");
  EXPECT_TRUE(c.calibrated);
  EXPECT_EQ(c.table, ok.centroid_table);
  const DecodedUnit viaRegistry = decode_container(rt.enc.bytes, "cal");  // table from the bytes
  EXPECT_EQ(viaRegistry.rows, rt.dec.rows);
  auto g = round_trip(x, 16, {}, 64);
  EXPECT_NE(g.dec.rows, rt.dec.rows);
}

TEST(Kakeya, InputErrors) {
  const size_t d = 8;
  std::vector<float> x(32 * d, 0.5f);
  x[17 * d + 3] = std::nanf("");
  std::string msg = error_of<NonFiniteInput>([&] { round_trip(x, d, {}, 16); });
  EXPECT_NE(msg.find("row 17"), std::string::npos) << msg;
  std::vector<float> big = synth(32, d, 4, 0.1, 18);
  for (size_t i = 16 * d; i < 32 * d; ++i) big[i] += 1.0e5f;
  msg = error_of<Fp16Range>([&] { round_trip(big, d, {}, 16); });
  EXPECT_NE(msg.find("block 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("mean"), std::string::npos) << msg;
  // fp32 skeleton stores the mean, but t then overflows fp16.
  std::vector<float> spread = synth(32, d, 4, 0.1, 18);
  for (size_t i = 16 * d; i < 32 * d; ++i) spread[i] *= 1.0e6f;
  msg = error_of<Fp16Range>([&] { round_trip(spread, d, {{"skeleton_dtype", "fp32"}}, 16); });
  EXPECT_NE(msg.find("block 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'t (block 1, row"), std::string::npos) << msg;
  auto codec = make_codec("kakeya_pca", {}, d);
  UnitInput in;
  in.rows = x.data();
  in.n = 4;
  in.dim = d + 1;
  EXPECT_THROW(codec->encode(in), InvalidArgument);
}

TEST(Kakeya, RandomizedSmallBlockClampsSketch) {
  auto x = synth(3 * 8, 64, 8, 0.05, 19);  // blocks of 8 rows < k_t + oversample = 40
  auto rt = round_trip(x, 64, {{"pca_method", "randomized"}, {"variance_ratio", "1"}}, 8);
  for (uint16_t de : rt.enc.stats.d_eff) EXPECT_LE(de, 8);
  for (float v : rt.dec.rows) EXPECT_TRUE(std::isfinite(v));
}

TEST(Kakeya, ScaledResidualsHaveUnitSecondMoment) {
  const size_t d = 32, n = 128;
  auto x = synth(n, d, 8, 0.05, 20);
  auto codec = make_codec("kakeya_pca", {}, d);
  UnitInput in;
  in.rows = x.data();
  in.n = n;
  in.dim = d;
  in.info.block_size = 64;
  in.collect_residuals = true;
  auto e = codec->encode(in);
  size_t expect = 0;
  for (uint16_t de : e.stats.d_eff) expect += 64 * next_pow2(de);
  ASSERT_EQ(e.stats.scaled_residuals.size(), expect);
  EXPECT_EQ(e.stats.coded_values, expect);
  double s2 = 0;
  for (float s : e.stats.scaled_residuals) s2 += double(s) * s;
  EXPECT_NEAR(s2 / static_cast<double>(expect), 1.0, 0.02);
  in.collect_residuals = false;
  EXPECT_TRUE(codec->encode(in).stats.scaled_residuals.empty());
}

TEST(Kakeya, ShareBasisUsesOneRecord) {
  const size_t d = 32, bs = 64;
  auto x = synth(4 * bs, d, 6, 0.05, 21);
  auto sh = round_trip(x, d, {{"share_basis", "true"}, {"variance_ratio", "0.9"}}, bs);
  auto own = round_trip(x, d, {{"variance_ratio", "0.9"}}, bs);
  UnitCode c = read_container(sh.enc.bytes, "sh");
  ASSERT_TRUE(c.shared.has_value());
  for (const auto& bc : c.blocks) {
    EXPECT_TRUE(bc.shared);
    EXPECT_EQ(bc.d_eff, c.shared->d_eff);
  }
  EXPECT_LT(sh.enc.reported_bytes, own.enc.reported_bytes);
  EXPECT_LT(rel_mse(x, sh.dec.rows), 0.05);
}
