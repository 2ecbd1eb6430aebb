// Residual histogram, centroid table and threshold of a Kakeya stream (sessions/distribution.h):
// exact binning of a hand-made sample, the K§5.12 tables, a calibrated table file, the stream
// configuration of a layer with an override, and a real run on a small demo capture whose
// histogram agrees with the runner's residuals and the outlier counts of metrics.md §6.2.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "base/errors.h"
#include "codec/math/quantizer.h"
#include "io/synthetic_capture.h"
#include "sessions/analysis/analysis.h"
#include "sessions/analysis/distribution.h"
#include "sessions/run/runner.h"
#include "tests/sessions/demo_fixture.h"
#include "tests/test_support.h"

using namespace kvwb;
using namespace kvwb::sessions;
using nlohmann::json;

namespace {

StreamResult kakeya_stream(std::vector<float> s) {
  StreamResult r;
  r.codec = "kakeya_pca";
  r.scaled_residuals = std::move(s);
  return r;
}

json kakeya_config(const std::string& bits, const std::string& threshold = "") {
  json j = {{"codec", "kakeya_pca"}, {"params", {{"bit_width", bits}}}};
  if (!threshold.empty()) j["params"]["outlier_threshold"] = threshold;
  return j;
}

}  // namespace

TEST(Distribution, BinsAHandMadeSampleExactly) {
  // range 2, 4 bins of width 1: edges -2,-1,0,1,2.
  const auto h = residual_histogram(
      kakeya_stream({-3.0f, -2.0f, -1.5f, -1.0f, -0.0f, 0.0f, 0.5f, 0.999f, 1.0f, 2.0f, 2.5f}),
      kakeya_config("3"), 4, 2.0);
  ASSERT_EQ(h.edges.size(), 5u);
  EXPECT_DOUBLE_EQ(h.edges.front(), -2.0);
  EXPECT_DOUBLE_EQ(h.edges[2], 0.0);
  EXPECT_DOUBLE_EQ(h.edges.back(), 2.0);
  ASSERT_EQ(h.counts.size(), 4u);
  EXPECT_EQ(h.counts[0], 2u);  // -2, -1.5
  EXPECT_EQ(h.counts[1], 1u);  // -1
  EXPECT_EQ(h.counts[2], 4u);  // -0, 0, 0.5, 0.999
  EXPECT_EQ(h.counts[3], 2u);  // 1, 2 (last bin closed)
  EXPECT_EQ(h.below, 1u);
  EXPECT_EQ(h.above, 1u);
  EXPECT_EQ(h.values, 11u);
  EXPECT_DOUBLE_EQ(h.density[2], 4.0 / 11.0);
  EXPECT_EQ(h.bit_width, 3u);
  EXPECT_EQ(h.centroid_source, "gaussian");
  ASSERT_EQ(h.centroids.size(), 8u);
  EXPECT_DOUBLE_EQ(h.centroids[0], static_cast<double>(-2.151945f));
  EXPECT_DOUBLE_EQ(h.centroids[4], static_cast<double>(0.244943f));
  EXPECT_FALSE(h.outlier_threshold.has_value());
}

TEST(Distribution, ReadsBitWidthThresholdAndNumericParams) {
  const auto h = residual_histogram(kakeya_stream({0.1f}), kakeya_config("2", "2.5"), 10, 4.0);
  EXPECT_EQ(h.bit_width, 2u);
  ASSERT_EQ(h.centroids.size(), 4u);
  EXPECT_DOUBLE_EQ(h.centroids[3], static_cast<double>(codec::gaussian_table(2)[3]));
  ASSERT_TRUE(h.outlier_threshold.has_value());
  EXPECT_DOUBLE_EQ(*h.outlier_threshold, 2.5);
  json numeric = {{"codec", "kakeya_pca"},
                  {"params", {{"bit_width", 4}, {"outlier_threshold", 1.5}}}};
  const auto g = residual_histogram(kakeya_stream({}), numeric, 8, 3.0);
  EXPECT_EQ(g.bit_width, 4u);
  EXPECT_EQ(g.centroids.size(), 16u);
  EXPECT_DOUBLE_EQ(*g.outlier_threshold, 1.5);
  EXPECT_EQ(g.values, 0u);
  for (double d : g.density) EXPECT_EQ(d, 0.0);
}

TEST(Distribution, RefusesWhatIsNotAKakeyaResidual) {
  StreamResult q8;
  q8.codec = "q8_0";
  EXPECT_THROW(residual_histogram(q8, kakeya_config("3"), 10, 4.0), InvalidArgument);
  EXPECT_THROW(residual_histogram(kakeya_stream({}), kakeya_config("3"), 0, 4.0), InvalidArgument);
  EXPECT_THROW(residual_histogram(kakeya_stream({}), kakeya_config("3"), 10, 0.0), InvalidArgument);
  EXPECT_THROW(residual_histogram(kakeya_stream({}), kakeya_config("3"), 10, NAN), InvalidArgument);
  EXPECT_THROW(residual_histogram(kakeya_stream({}), kakeya_config("9"), 10, 4.0), InvalidArgument);
}

TEST(Distribution, LoadsACalibratedTableFile) {
  kvwb::test::TempDir dir;
  const std::vector<float> table = {-1.9f, -0.6f, 0.5f, 1.7f};
  const std::string path = dir.file("k.f32");
  {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(table.data()), 16);
  }
  json cfg = kakeya_config("2");
  cfg["centroids_file"] = path;
  const auto h = residual_histogram(kakeya_stream({0.0f}), cfg, 4, 2.0);
  EXPECT_EQ(h.centroid_source, path);
  ASSERT_EQ(h.centroids.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_DOUBLE_EQ(h.centroids[i], static_cast<double>(table[i]));
  cfg["params"]["bit_width"] = "3";  // 4 values are not a 3-bit table
  EXPECT_THROW(residual_histogram(kakeya_stream({}), cfg, 4, 2.0), InvalidArgument);
  cfg["centroids_file"] = dir.file("missing.f32");
  EXPECT_THROW(residual_histogram(kakeya_stream({}), cfg, 4, 2.0), IoError);
}

TEST(Distribution, StreamConfigOfALayerHonoursOverrides) {
  RunConfig c;
  c.k.params["bit_width"] = "3";
  LayerOverride o;
  o.layer = 2;
  o.v = StreamConfig{"kakeya_pca", {{"bit_width", "2"}, {"outlier_threshold", "2.0"}}, {}, ""};
  c.overrides.push_back(o);
  const json j = run_config_to_json(c);
  EXPECT_EQ(stream_config_for_layer(j, 2, false)["params"]["bit_width"], "2");
  EXPECT_EQ(stream_config_for_layer(j, 1, false)["params"]["bit_width"], "3");
  EXPECT_EQ(stream_config_for_layer(j, 2, true)["params"]["bit_width"], "3");
  EXPECT_THROW(stream_config_for_layer(json::object(), 0, true), InvalidArgument);
}

TEST(Distribution, AgreesWithTheRunnerAndTheOutlierCountsOnADemoCapture) {
  const std::string& path = kvwb::test::demo_capture(
      "distribution.kvc.h5",
      {.layers = 2, .kv_heads = 2, .q_heads = 4, .head_dim = 32, .seqs = 2, .tokens = 128});
  RunConfig c;
  c.block_size = 64;
  c.attention_metrics = false;
  c.v.params["bit_width"] = "2";
  c.k.params["outlier_threshold"] = "2.0";
  RunOptions opt;
  opt.collect_residuals = true;
  const RunResult run = run_config(path, c, opt);
  const OutlierRates rates = outlier_rates_from_run(run, false);
  ASSERT_EQ(run.layers.size(), 2u);
  for (size_t li = 0; li < run.layers.size(); ++li) {
    const LayerResult& l = run.layers[li];
    for (bool k : {true, false}) {
      const StreamResult& s = k ? l.k : l.v;
      ASSERT_FALSE(s.scaled_residuals.empty());
      const json sc = stream_config_for_layer(run.config, l.layer, k);
      // range = T = 2.0: the out-of-range values are exactly the outliers |s| > 2 of §6.2.
      const auto h = residual_histogram(s, sc, 80, kOutlierThresholds[1]);
      EXPECT_EQ(h.values, s.scaled_residuals.size());
      uint64_t in = 0;
      double mass = 0;
      for (size_t i = 0; i < h.counts.size(); ++i) {
        in += h.counts[i];
        mass += h.density[i] * (h.edges[i + 1] - h.edges[i]);
      }
      EXPECT_EQ(in + h.below + h.above, h.values);
      EXPECT_NEAR(mass, static_cast<double>(in) / static_cast<double>(h.values), 1e-12);
      const OutlierCounts& cnt = k ? *rates.layers[li].k : *rates.layers[li].v;
      EXPECT_EQ(h.below + h.above, cnt.above[1]);
      EXPECT_EQ(h.bit_width, k ? 3u : 2u);
      EXPECT_EQ(h.outlier_threshold.has_value(), k);
      // Unit second moment (K§5.10): the bulk of the sample lies within ±2.
      EXPECT_GT(static_cast<double>(in) / static_cast<double>(h.values), 0.8);
    }
  }
  const AnalysisResult an = analyze_capture(path, AnalysisOptions{});
  const auto kurt = layer_kurtosis(an);
  ASSERT_EQ(kurt.size(), an.layers.size());
  for (size_t i = 0; i < kurt.size(); ++i) {
    const auto& heads = an.layers[i].heads;
    double k = 0, v = 0;
    for (const auto& h : heads) {
      k += h.k_pre.kurtosis.pooled;
      v += h.v.kurtosis.pooled;
    }
    EXPECT_EQ(kurt[i].layer, an.layers[i].layer);
    EXPECT_NEAR(kurt[i].k_pre, k / static_cast<double>(heads.size()), 1e-12);
    EXPECT_NEAR(kurt[i].v, v / static_cast<double>(heads.size()), 1e-12);
  }
  EXPECT_NEAR(standard_normal_pdf(0.0), 0.3989422804014327, 1e-15);
  EXPECT_NEAR(standard_normal_pdf(1.0), 0.24197072451914337, 1e-15);
}
