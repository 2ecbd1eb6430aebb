// Analysis and calibration export: metrics.md §4–§6 examples, K§8.4–8.5 examples, the Lloyd-Max
// procedure of bundle-format.md §4.2, the Qwen2.5-0.5B Σ_q figures of the real-data README and a
// calibration of a real tiny1m capture whose files are read back.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/test_support.h"
#include "codec/math/calibration.h"
#include "base/errors.h"
#include "codec/math/quantizer.h"
#include "codec/math/rng.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "sessions/analysis/analysis.h"
#include "sessions/bundle/calibration_export.h"
#include "sessions/run/calibration_io.h"
#include "io/synthetic_capture.h"
#include "tests/sessions/demo_fixture.h"
#include "sessions/run/runner.h"

using namespace kvwb;
using namespace kvwb::sessions;

namespace {

const std::string& demo_path() {
  return kvwb::test::small_demo_capture("demo_analysis.kvc.h5", 32, 160);
}

double rel(double a, double b) { return std::fabs(a - b) / std::fabs(b); }

}  // namespace

// ---- metrics.md §4 -----------------------------------------------------------------------------

TEST(Analysis, SpectrumExampleOfMetrics4) {
  const Spectrum s = make_spectrum({6.0, 3.0, 0.5, 0.5}, 0.5);
  ASSERT_EQ(s.cumulative.size(), 4u);
  EXPECT_DOUBLE_EQ(s.cumulative[0], 0.6);
  EXPECT_DOUBLE_EQ(s.cumulative[1], 0.9);
  EXPECT_DOUBLE_EQ(s.cumulative[2], 0.95);
  EXPECT_DOUBLE_EQ(s.cumulative[3], 1.0);
  EXPECT_EQ(s.d_eff[0], 2u);  // 0.90
  EXPECT_EQ(s.d_eff[1], 3u);  // 0.95
  EXPECT_EQ(s.d_eff[2], 4u);  // 0.99
  ASSERT_TRUE(s.d_eff_user.has_value());
  EXPECT_EQ(*s.d_eff_user, 1u);
}

TEST(Analysis, SpectrumClampsNegativesAndSorts) {
  const Spectrum s = make_spectrum({0.5, -1e-12, 3.0, 6.0, 0.5});
  EXPECT_DOUBLE_EQ(s.eigenvalues.front(), 6.0);
  EXPECT_DOUBLE_EQ(s.eigenvalues.back(), -1e-12);
  EXPECT_DOUBLE_EQ(s.cumulative.back(), 1.0);
  EXPECT_EQ(s.d_eff[1], 3u);
}

// ---- metrics.md §6.1 ---------------------------------------------------------------------------

TEST(Analysis, KurtosisExamplesOfMetrics61) {
  const float a[] = {-1, -1, 1, 1};
  const Kurtosis ka = kurtosis_of_rows(a, 4, 1);
  EXPECT_DOUBLE_EQ(ka.pooled, -2.0);
  EXPECT_DOUBLE_EQ(ka.per_channel_mean, -2.0);
  const float b[] = {0, 0, 0, 0, 0, 0, 2, -2};
  EXPECT_DOUBLE_EQ(kurtosis_of_rows(b, 8, 1).pooled, 1.0);
  // Two channels: (−1,−1,1,1) and the 4 first values of b scaled: per-channel mean of κ.
  const float two[] = {-1, 0, -1, 0, 1, 2, 1, -2};  // col0 = (−1,−1,1,1), col1 = (0,0,2,−2)
  const Kurtosis k2 = kurtosis_of_rows(two, 4, 2);
  // col1: mean 0, m2 = 2, m4 = 8 -> κ = 8/4 − 3 = −1.
  EXPECT_DOUBLE_EQ(k2.per_channel_max, -1.0);
  EXPECT_DOUBLE_EQ(k2.per_channel_mean, -1.5);
  const float zero[] = {3, 3, 3};
  EXPECT_TRUE(std::isnan(kurtosis_of_rows(zero, 3, 1).pooled));
}

TEST(Analysis, HadamardRotationIsOrthonormalAndPads) {
  // D = 3 -> D' = 4; ‖y‖ = ‖x‖ for an orthonormal rotation.
  const float x[] = {1, 2, 3, -4, 0.5f, 2};
  const auto y = rotate_rows_hadamard(x, 2, 3);
  ASSERT_EQ(y.size(), 8u);
  EXPECT_NEAR(y[0], (1 + 2 + 3) / 2.0, 1e-6);  // first row of H is all ones, /√4
  for (int r = 0; r < 2; ++r) {
    double nx = 0, ny = 0;
    for (int j = 0; j < 3; ++j) nx += x[r * 3 + j] * x[r * 3 + j];
    for (int j = 0; j < 4; ++j)
      ny += y[static_cast<size_t>(r * 4 + j)] * y[static_cast<size_t>(r * 4 + j)];
    EXPECT_NEAR(nx, ny, 1e-5);
  }
}

TEST(Analysis, GaussianOutlierExpectations) {
  const auto g = gaussian_outlier_rates();
  EXPECT_NEAR(100 * g[0], 13.36, 0.005);
  EXPECT_NEAR(100 * g[1], 4.55, 0.005);
  EXPECT_NEAR(100 * g[2], 1.24, 0.005);
  EXPECT_NEAR(100 * g[3], 0.27, 0.005);
  const float s[] = {0.0f, 1.6f, -2.1f, 2.6f, -3.5f, 3.0f};
  const OutlierCounts c = count_outliers(s, 6);
  EXPECT_EQ(c.values, 6u);
  EXPECT_EQ(c.above[0], 5u);  // > 1.5
  EXPECT_EQ(c.above[1], 4u);  // > 2.0
  EXPECT_EQ(c.above[2], 3u);  // > 2.5
  EXPECT_EQ(c.above[3], 1u);  // > 3.0 (3.0 itself is not above)
}

// ---- codec-kakeya.md §8.4 / §8.5 ---------------------------------------------------------------

TEST(Analysis, SkipRuleExamples) {
  // bundle-format §3: tiny1m max|L| 1.81, 3.88, 3.14, 3.26 -> median 3.20, nothing skipped.
  const auto a = codec::skip_rule({{0, 1.81}, {1, 3.88}, {2, 3.14}, {3, 3.26}});
  EXPECT_NEAR(a.median, 3.20, 1e-12);
  for (const auto& [l, s] : a.skip) EXPECT_FALSE(s) << l;
  // Qwen-like: layer 0 at 21.35 against a median of 7.5 is skipped; exactly 2x is not.
  const auto b = codec::skip_rule({{0, 21.35}, {1, 7.0}, {2, 7.5}, {3, 7.5}, {4, 15.0}});
  EXPECT_DOUBLE_EQ(b.median, 7.5);
  EXPECT_TRUE(b.skip.at(0));
  EXPECT_FALSE(b.skip.at(4));  // 15.0 = 2 x median: not strictly above
  EXPECT_FALSE(b.skip.at(1));
}

TEST(Analysis, TikhonovExampleOfK85) {
  // Σ_reg with eigenvalues 4.0 and 0.0004 (ridge 0 so that Σ_reg = Σ), C = 50.
  const std::vector<double> sigma = {4.0, 0.0, 0.0, 0.0004};
  const auto f = codec::factor_sigma_q(sigma, 2, 0.0, 50.0, "example");
  EXPECT_NEAR(f.tikhonov_lambda, 3.0 / 2499.0, 1e-15);
  EXPECT_NEAR(f.tikhonov_lambda, 0.0012005, 1e-7);
  const SigmaQStats s = sigma_q_stats(f);
  EXPECT_NEAR(s.cond_L_final, 50.0, 1e-9);
  EXPECT_NEAR(s.cond_L, std::sqrt(10000.0), 1e-6);
  // L Lᵀ = Σ + λI (f32 L).
  EXPECT_NEAR(static_cast<double>(f.L[0]) * f.L[0], 4.0 + f.tikhonov_lambda, 1e-6);
  EXPECT_NEAR(static_cast<double>(f.L[3]) * f.L[3], 0.0004 + f.tikhonov_lambda, 1e-8);
  // A target already met leaves λ = 0.
  const auto g = codec::factor_sigma_q(sigma, 2, 0.0, 200.0, "example");
  EXPECT_EQ(g.tikhonov_lambda, 0.0);
}

// ---- bundle-format.md §4.2 ---------------------------------------------------------------------

TEST(Calibration, LloydWorkedExampleOfBundle42) {
  const LloydResult r = lloyd_max_fit({-2.0f, -1.0f, -0.2f, 0.1f, 0.3f, 1.2f, 2.5f}, 1);
  ASSERT_EQ(r.table.size(), 2u);
  EXPECT_FLOAT_EQ(r.table[0], static_cast<float>(-3.2 / 3.0));
  EXPECT_FLOAT_EQ(r.table[1], 1.025f);
  EXPECT_EQ(r.iterations, 2);
  EXPECT_TRUE(r.converged);
  EXPECT_EQ(r.final_max_change, 0.0);
  EXPECT_LT(r.mse_calibrated, r.mse_gaussian);
}

TEST(Calibration, LloydOnLaplaceBeatsGaussianTable) {
  // Unit-variance Laplace samples (scale 1/√2) by the inverse CDF of project-RNG uniforms.
  const size_t n = 200000;
  std::vector<float> s(n);
  const double b = 1.0 / std::sqrt(2.0);
  for (size_t i = 0; i < n; ++i) {
    const double u = codec::rng::u01(codec::rng::splitmix(codec::rng::kTagTest, i)) - 0.5;
    s[i] =
        static_cast<float>(-b * (u < 0 ? -1.0 : 1.0) * std::log(1.0 - 2.0 * std::fabs(u) + 1e-300));
  }
  for (unsigned bits : {2u, 3u}) {
    const LloydResult r = lloyd_max_fit(s, bits);
    EXPECT_TRUE(r.converged) << bits;
    EXPECT_LT(r.mse_calibrated, 0.97 * r.mse_gaussian) << bits;
    // Heavier tails than the Gaussian: the outermost centroids move out, and the table stays
    // nearly symmetric.
    const auto g = codec::gaussian_table(bits);
    EXPECT_GT(r.table.back(), g.back()) << bits;
    EXPECT_NEAR(r.table.front(), -r.table.back(), 0.25) << bits;
    codec::validate_table(r.table, bits, "calibrated");
  }
}

TEST(Calibration, SubsampleKeepsSmallestKeysInIndexOrder) {
  std::vector<float> v(50);
  std::vector<uint64_t> idx(50);
  for (size_t i = 0; i < 50; ++i) {
    v[i] = static_cast<float>(i);
    idx[i] = 3 * i + 1;  // canonical indices with gaps (dropped outliers)
  }
  EXPECT_EQ(subsample_for_calibration(v, idx, 7, 50).size(), 50u);
  const auto got = subsample_for_calibration(v, idx, 7, 10);
  ASSERT_EQ(got.size(), 10u);
  std::vector<std::pair<uint64_t, size_t>> keys;
  for (size_t i = 0; i < 50; ++i)
    keys.push_back({codec::rng::splitmix(7 ^ codec::rng::kTagCalib, idx[i]), i});
  std::sort(keys.begin(), keys.end());
  std::vector<float> want;
  for (size_t k = 0; k < 10; ++k) want.push_back(v[keys[k].second]);
  std::sort(want.begin(), want.end());  // values equal positions: ascending i order
  EXPECT_EQ(got, want);
}

TEST(Calibration, CentroidFileBytesAreValidated) {
  const std::vector<float> t = {-1.0f, 1.0f};
  const auto bytes = centroid_file_bytes(t);
  ASSERT_EQ(bytes.size(), 8u);
  EXPECT_EQ(bytes[3], 0xBF);  // -1.0f = 0xBF800000 little-endian
  EXPECT_EQ(bytes[7], 0x3F);
  EXPECT_THROW(centroid_file_bytes(std::vector<float>{1.0f, 1.0f}), InvalidArgument);
  EXPECT_THROW(centroid_file_bytes(std::vector<float>{1.0f, 2.0f, 3.0f}), InvalidArgument);
  EXPECT_EQ(centroid_file_name("K", 3), "K_b3_centroids.f32");
}

// ---- analysis of a synthetic capture
// -------------------------------------------------------------

TEST(Analysis, DemoCaptureStructureAndConsistencyWithRunner) {
  AnalysisOptions opt;
  opt.threads = 2;
  const AnalysisResult r = analyze_capture(demo_path(), opt);
  ASSERT_EQ(r.layers.size(), 3u);
  RunConfig cfg;
  cfg.q_precond = "capture";
  io::CaptureReader cap(demo_path());
  const Whitening wh = build_whitening(cap, cfg);
  for (const auto& la : r.layers) {
    ASSERT_EQ(la.heads.size(), 2u);
    EXPECT_TRUE(la.has_q);
    EXPECT_DOUBLE_EQ(la.max_abs_L, wh.rule.m.at(la.layer));
    EXPECT_EQ(la.skip, wh.rule.skip.at(la.layer));
    for (const auto& h : la.heads) {
      ASSERT_TRUE(h.sigma_q && h.k_whitened && h.k_pre.rotated_kurtosis);
      EXPECT_DOUBLE_EQ(h.sigma_q->cond_reg,
                       wh.factors.at(la.layer)[static_cast<size_t>(h.kv_head)].cond_reg);
      EXPECT_EQ(h.k_pre.spectrum.eigenvalues.size(), 32u);
      EXPECT_LE(h.k_pre.spectrum.d_eff[0], h.k_pre.spectrum.d_eff[1]);
      EXPECT_LE(h.k_pre.spectrum.d_eff[1], h.k_pre.spectrum.d_eff[2]);
      EXPECT_NEAR(h.v.spectrum.cumulative.back(), 1.0, 1e-12);
      EXPECT_GT(h.sigma_q->cond_raw, 0.0);
      EXPECT_GE(h.sigma_q->cond_raw, h.sigma_q->cond_reg * 0.999);  // the ridge only lowers cond
      EXPECT_NEAR(h.sigma_q->cond_L * h.sigma_q->cond_L, h.sigma_q->cond_reg,
                  1e-9 * h.sigma_q->cond_reg);
    }
  }
  EXPECT_DOUBLE_EQ(r.skip_median, wh.rule.median);
  const auto j = analysis_to_json(r);
  const auto& h0 = j["layers"][0]["heads"][0];
  for (const char* key :
       {"kv_head", "sigma_q_cond", "sigma_q_cond_raw", "max_abs_L", "skip", "k_pre_d_eff_95",
        "v_d_eff_95", "k_pre_kurtosis", "v_kurtosis", "k_pre_d_eff_90", "k_pre_d_eff_99",
        "k_white_d_eff_95", "k_white_kurtosis", "max_abs_whitened"})
    EXPECT_TRUE(h0.contains(key)) << key;
  EXPECT_EQ(h0["detail"]["k_pre"]["spectrum"]["eigenvalues"].size(), 32u);
  EXPECT_TRUE(j["skip_rule"].contains("median_max_abs_L"));
  const std::string csv = analysis_to_csv(r);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 3 * 2);
}

TEST(Analysis, LayerSelectionKeepsSkipRuleOverAllLayers) {
  AnalysisOptions all, one;
  all.threads = one.threads = 1;
  one.layers = {1};
  const AnalysisResult a = analyze_capture(demo_path(), all);
  const AnalysisResult b = analyze_capture(demo_path(), one);
  ASSERT_EQ(b.layers.size(), 1u);
  EXPECT_EQ(b.layers[0].layer, 1);
  EXPECT_DOUBLE_EQ(a.skip_median, b.skip_median);  // decisions.md #4
  EXPECT_EQ(a.layers[1].heads[0].k_pre.spectrum.eigenvalues,
            b.layers[0].heads[0].k_pre.spectrum.eigenvalues);
  EXPECT_THROW(
      {
        AnalysisOptions bad;
        bad.layers = {7};
        analyze_capture(demo_path(), bad);
      },
      InvalidArgument);
}

TEST(Analysis, OutlierRatesCountTheRunnersResiduals) {
  RunConfig cfg;
  cfg.block_size = 64;
  cfg.threads = 2;
  const OutlierRates o = residual_outlier_rates(demo_path(), cfg);
  ASSERT_TRUE(o.has_k && o.has_v);
  ASSERT_EQ(o.layers.size(), 3u);
  uint64_t k_values = 0;
  for (const auto& l : o.layers) {
    ASSERT_TRUE(l.k && l.v);
    k_values += l.k->values;
    for (size_t i = 1; i < 4; ++i) EXPECT_LE(l.k->above[i], l.k->above[i - 1]);
  }
  EXPECT_EQ(o.k_total.values, k_values);
  EXPECT_GT(o.k_total.values, 0u);
  // The runner with the same configuration stores exactly the would-be outliers above T.
  RunConfig with = cfg;
  with.k.params["outlier_threshold"] = "2.0";
  with.attention_metrics = false;
  RunOptions ro;
  ro.compute_sha256 = false;
  const RunResult rr = run_config(demo_path(), with, ro);
  uint64_t stored = 0;
  for (const auto& l : rr.layers) stored += l.k.outliers;
  EXPECT_EQ(stored, o.k_total.above[1]);
}

TEST(Calibration, CentroidsFromDemoCaptureRespectBoundaryAndOverrides) {
  RunConfig cfg;
  cfg.block_size = 64;
  cfg.threads = 2;
  cfg.boundary = {0};
  LayerOverride ov;
  ov.layer = 2;
  ov.v = StreamConfig{"kakeya_pca", {{"bit_width", "2"}}, {}, ""};
  cfg.overrides.push_back(ov);
  const auto cal = calibrate_centroids(demo_path(), cfg);
  ASSERT_EQ(cal.size(), 2u);
  EXPECT_EQ(cal[0].stream, "K");
  EXPECT_EQ(cal[0].layers, (std::vector<int>{1, 2}));
  EXPECT_EQ(cal[1].stream, "V");
  EXPECT_EQ(cal[1].layers, (std::vector<int>{1}));  // layer 2's V runs at 2 bits
  for (const auto& c : cal) {
    EXPECT_EQ(c.bits, 3u);
    EXPECT_EQ(c.samples_used, c.samples_pooled);
    EXPECT_LE(c.fit.mse_calibrated, c.fit.mse_gaussian * (1 + 1e-9));
  }
  RunConfig big = cfg;
  big.block_size = 4096;  // no full block in 160 tokens
  EXPECT_THROW(calibrate_centroids(demo_path(), big), InvalidArgument);
}

// ---- real data
// -----------------------------------------------------------------------------------

TEST(RealAnalysis, QwenSigmaQFiguresOfTheReadme) {
  KVWB_REQUIRE_REAL(path, "qwen2_5_0_5b_sigma_q.safetensors");
  const SigmaQFileInfo info = sigma_q_file_info(path);
  ASSERT_EQ(info.pairs.size(), 48u);
  EXPECT_EQ(info.n_kv_heads, 2);
  EXPECT_EQ(info.head_dim, 64);
  EXPECT_LT(rel(info.cond_min, 1247.03), 1e-5);
  EXPECT_LT(rel(info.cond_median, 4097.94), 1e-4);
  EXPECT_LT(rel(info.cond_max, 31452.06), 1e-5);
  EXPECT_NEAR(std::sqrt(info.cond_min), 35.3, 0.05);
  EXPECT_NEAR(std::sqrt(info.cond_median), 64.0, 0.05);
  EXPECT_NEAR(std::sqrt(info.cond_max), 177.3, 0.05);
  EXPECT_EQ(info.skip_layers, std::vector<int>{0});
  EXPECT_NEAR(info.rule.median, 7.506, 5e-4);
  EXPECT_NEAR(info.rule.m.at(0), 21.35, 5e-3);
  // Raw Σ_q: 1295 / 4494 / 1.446e7 (README, f64 check of the f32 file).
  EXPECT_LT(rel(info.cond_raw_min, 1295), 1e-3);
  EXPECT_LT(rel(info.cond_raw_median, 4494), 1e-3);
  EXPECT_LT(rel(info.cond_raw_max, 1.446e7), 1e-2);
  const auto j = sigma_q_file_info_to_json(info);
  EXPECT_EQ(j["pairs"].size(), 48u);
  EXPECT_EQ(j["skip_layers"], nlohmann::json::array({0}));
}

TEST(RealAnalysis, TinyStoriesSidecarMatchesTheSpecExample) {
  KVWB_REQUIRE_REAL(path, "tiny1m_tinystories.kvc.h5");
  RunConfig cfg;
  const SigmaQCalibration c = calibrate_sigma_q(path, cfg);
  const auto side = sigma_q_sidecar(c);
  const auto& d = side["diagnostics"][0];
  EXPECT_EQ(d["layer"], 0);
  EXPECT_EQ(d["kv_head"], 0);
  EXPECT_LT(rel(d["sigma_trace"].get<double>(), 65.4462), 1e-5);
  EXPECT_LT(rel(d["eig_min"].get<double>(), 0.00671199), 1e-5);
  EXPECT_LT(rel(d["eig_max"].get<double>(), 34.284), 1e-5);
  EXPECT_LT(rel(d["condition"].get<double>(), 5107.87), 1e-5);
  EXPECT_LT(rel(d["diag_mean"].get<double>(), 1.0226), 1e-4);
  EXPECT_LT(rel(d["off_diag_max_abs"].get<double>(), 6.10889), 1e-5);
  // The spec quotes max|L| as 1.81, 3.88, 3.14, 3.26 (median 3.20); an independent numpy f64
  // Cholesky of the same Σ_reg gives 1.80464, 3.87908, 3.13616, 3.25491 (median 3.1955), so the
  // spec's figures are within 0.3 %; the exact values are asserted here.
  EXPECT_NEAR(c.whitening.rule.m.at(0), 1.80464, 2e-4);
  EXPECT_NEAR(c.whitening.rule.m.at(1), 3.87908, 2e-4);
  EXPECT_NEAR(c.whitening.rule.m.at(2), 3.13616, 2e-4);
  EXPECT_NEAR(c.whitening.rule.m.at(3), 3.25491, 2e-4);
  EXPECT_NEAR(c.whitening.rule.median, 3.20, 0.01);
  EXPECT_EQ(side["calibration_source"], "capture:tiny1m_tinystories.kvc.h5");
  EXPECT_EQ(side["n_passages_used"], 16);
  EXPECT_EQ(side["layers_written"], nlohmann::json::array({0, 1, 2, 3}));
  EXPECT_EQ(side["skip_layers"], nlohmann::json::array());
}

TEST(RealAnalysis, CalibrateTiny1mWritesFilesThatReadBack) {
  KVWB_REQUIRE_REAL(path, "tiny1m_wikitext2.kvc.h5");
  kvwb::test::TempDir dir;
  RunConfig cfg;
  cfg.block_size = 256;
  cfg.threads = 2;
  cfg.q_precond = "capture";
  const SigmaQCalibration sq = calibrate_sigma_q(path, cfg);
  write_sigma_q_files(dir.path().string(), sq);
  const auto cal = calibrate_centroids(path, cfg);
  for (const auto& c : cal)
    write_centroid_file(dir.file(centroid_file_name(c.stream, c.bits)), c.fit.table);

  // sigma_q.safetensors: parses, names/shapes of §2, L·L⁻¹ ≈ I, exact triangles.
  const auto bytes = io::read_file(dir.file("sigma_q.safetensors"));
  ASSERT_GT(bytes.size(), 8u);
  uint64_t header = 0;
  for (int i = 0; i < 8; ++i)
    header |= static_cast<uint64_t>(bytes[static_cast<size_t>(i)]) << (8 * i);
  EXPECT_EQ((8 + header) % 8, 0u);
  EXPECT_EQ(bytes.size(), 8 + header + 12u * 2 * 64 * 64 * 4);  // bundle-format.md §2.4
  const io::SafeTensorsFile f = io::parse_safetensors(bytes, "sigma_q.safetensors");
  ASSERT_EQ(f.tensors.size(), 12u);
  EXPECT_EQ(f.tensors[0].name, "layer_0_chol");
  EXPECT_EQ(f.metadata.at("format"), "pt");
  for (int l = 0; l < 4; ++l) {
    const std::string p = "layer_" + std::to_string(l) + "_";
    const auto* L = f.find(p + "chol");
    const auto* Li = f.find(p + "inv_chol");
    ASSERT_TRUE(L && Li && f.find(p + "sigma"));
    EXPECT_EQ(L->shape, (std::vector<uint64_t>{2, 64, 64}));
    const auto lv = io::tensor_to_f32(*L), iv = io::tensor_to_f32(*Li);
    for (size_t h = 0; h < 2; ++h) {
      const float* a = lv.data() + h * 4096;
      const float* b = iv.data() + h * 4096;
      double worst = 0, upper = 0, min_diag = 1e300;
      for (size_t i = 0; i < 64; ++i) {
        min_diag = std::min(min_diag, static_cast<double>(a[i * 64 + i]));
        for (size_t j = 0; j < 64; ++j) {
          double acc = 0;
          for (size_t k = 0; k < 64; ++k) acc += static_cast<double>(a[i * 64 + k]) * b[k * 64 + j];
          worst = std::max(worst, std::fabs(acc - (i == j ? 1.0 : 0.0)));
          if (j > i)
            upper = std::max({upper, std::fabs(static_cast<double>(a[i * 64 + j])),
                              std::fabs(static_cast<double>(b[i * 64 + j]))});
        }
      }
      EXPECT_LT(worst, 1e-4) << l << "/" << h;
      EXPECT_EQ(upper, 0.0);
      EXPECT_GT(min_diag, 0.0);
    }
  }
  // Read back through the runtime loader too.
  int H = 0, D = 0;
  const auto loaded = load_whitening_file_any(dir.file("sigma_q.safetensors"), &H, &D);
  EXPECT_EQ(loaded.size(), 4u);
  EXPECT_NEAR(loaded.at(2)[1].cond_reg, sq.whitening.factors.at(2)[1].cond_reg,
              1e-3 * sq.whitening.factors.at(2)[1].cond_reg);

  const auto side = nlohmann::json::parse(io::read_file(dir.file("sigma_q.json")));
  EXPECT_EQ(side["model_path"], "shibatch/tiny1m");
  EXPECT_EQ(side["head_dim"], 64);
  EXPECT_EQ(side["num_q_heads"], 2);
  EXPECT_EQ(side["num_layers"], 4);
  EXPECT_EQ(side["n_passages_used"], 16);
  EXPECT_EQ(side["ctx_len"], 256);
  EXPECT_EQ(side["ridge"], 0.001);
  EXPECT_EQ(side["diagnostics"].size(), 8u);
  EXPECT_EQ(side["layer_types"][3], "full_attention");

  ASSERT_EQ(cal.size(), 2u);
  for (const auto& c : cal) {
    const auto b = io::read_file(dir.file(centroid_file_name(c.stream, c.bits)));
    ASSERT_EQ(b.size(), 32u);
    std::vector<float> t(8);
    std::memcpy(t.data(), b.data(), 32);
    codec::validate_table(t, 3, "read back");
    EXPECT_EQ(t, c.fit.table);
    EXPECT_GT(c.samples_pooled, 100000u);
    EXPECT_LE(c.fit.mse_calibrated, c.fit.mse_gaussian * (1 + 1e-9));
  }
}
