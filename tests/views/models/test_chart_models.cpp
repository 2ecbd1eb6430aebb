// The analysis-chart models (spectrum, Σ_q, distribution, per-layer error) and their shared
// pieces (series CSV, titles, waiting notes), without Qt: every plotted value equals the core's
// result it is picked from (sessions::analyze_capture, run_config with collect_residuals,
// outlier_rates_from_run, residual_histogram), the CSV is the plotted data, and empty, running,
// failed and hot-tail states get their notes. On the demo capture and on tiny1m when present.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>

#include "codec/math/calibration.h"
#include "codec/math/quantizer.h"
#include "sessions/analysis/distribution.h"
#include "tests/views/models/snapshot_edits.h"
#include "tests/views/models/view_model_fixture.h"
#include "views/models/distribution_model.h"
#include "views/models/layer_error_model.h"
#include "views/models/sigma_q_model.h"
#include "views/models/spectrum_model.h"

namespace kvwb::views {
namespace {

using test::contains;
using test::demo_snapshot;
using test::find_series;

const double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string demo_file() { return "view_models_demo.kvc.h5"; }

/// A snapshot with the demo capture open and nothing computed (`jobs` in flight).
Snapshot capture_only(const std::vector<std::string>& jobs) {
  Snapshot s;
  s.capture = demo_snapshot()->capture;
  s.running_jobs = jobs;
  return s;
}

// ---- chart_series -----------------------------------------------------------------------------

TEST(ChartSeries, CsvQuotesNamesAndRoundTripsEveryDouble) {
  const double third = 1.0 / 3.0, tenth = 0.1;
  const std::vector<PlotSeries> series = {
      {"plain", {1, 2}, {third, -2.5}}, {"a, \"b\"", {tenth, 3}, {kNaN, 1e17}}, {"unused", {}, {}}};
  const std::string csv = series_csv("layer, index", "value", series);
  const auto lines = test::csv_lines(csv);
  ASSERT_EQ(lines.size(), 5u) << csv;
  EXPECT_EQ(lines[0], "series,\"layer, index\",value");
  EXPECT_EQ(lines[3], "\"a, \"\"b\"\"\",0.10000000000000001,");  // NaN: empty cell
  test::expect_csv_equals_series(csv, "series,\"layer, index\",value", series);
  EXPECT_EQ(std::stod(test::csv_cells(lines[1])[2]), third);  // %.17g: exact round trip
  // Nothing plotted: no CSV at all; a series with fewer y than x writes the complete points only.
  EXPECT_EQ(series_csv("x", "y", {}), "");
  EXPECT_EQ(series_csv("x", "y", {{"empty", {}, {}}}), "");
  EXPECT_EQ(series_csv("x", "y", {{"s", {1, 2, 3}, {4}}}), "series,x,y\ns,1,4\n");
}

TEST(ChartSeries, TitleLeavesOutEmptyPartsAndMarksSynthetic) {
  CaptureSummary none;
  EXPECT_EQ(chart_title("Spectrum", none, ""), "Spectrum");
  none.synthetic = true;  // SYNTHETIC belongs to an open capture only
  EXPECT_EQ(chart_title("Spectrum", none, "layer 1"), "Spectrum — layer 1");
  CaptureSummary real;
  real.path = "/data/run/tiny1m.kvc.h5";
  EXPECT_EQ(chart_title("Σ_q", real, ""), "Σ_q — tiny1m.kvc.h5");
  real.synthetic = true;
  EXPECT_EQ(chart_title("Σ_q", real, "all layers"), "Σ_q — tiny1m.kvc.h5 · all layers · SYNTHETIC");
}

TEST(ChartSeries, WaitingNotes) {
  EXPECT_EQ(waiting_note(Snapshot{}, "analysis"), "No capture open.");
  EXPECT_EQ(waiting_note(capture_only({"Analyse capture"}), "analysis"), "Analysis running…");
  EXPECT_EQ(waiting_note(capture_only({"Run configuration"}), "run"), "Run running…");
  EXPECT_EQ(waiting_note(capture_only({}), "analysis"), "No analysis yet.");
  EXPECT_EQ(waiting_note(capture_only({}), "run"),
            "No run yet (press Run to evaluate the configuration).");
}

// ---- spectrum ---------------------------------------------------------------------------------

void expect_curve_equals(const SpectrumCurve& c, SpectrumTensor t, const sessions::TensorStats& s) {
  EXPECT_EQ(c.tensor, t);
  EXPECT_EQ(c.eigenvalues, s.spectrum.eigenvalues);
  EXPECT_EQ(c.cumulative, s.spectrum.cumulative);
  EXPECT_EQ(c.d_eff, s.spectrum.d_eff);
}

TEST(SpectrumModel, EqualsTheAnalysisOfTheSelectedHead) {
  const auto snap = demo_snapshot();
  const auto m = build_spectrum_model(
      *snap, 1, 1, {SpectrumTensor::kPreRope, SpectrumTensor::kWhitened, SpectrumTensor::kV});
  EXPECT_EQ(m.title, "Spectrum — " + demo_file() + " · layer 1 · kv head 1 · SYNTHETIC");
  EXPECT_EQ(m.note, "");
  EXPECT_EQ(m.layers, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(m.kv_heads, 2);
  EXPECT_EQ(m.layer, 1);
  EXPECT_EQ(m.kv_head, 1);
  EXPECT_TRUE(m.has_whitened);
  const auto& head = test::analysis_layer(*snap, 1).heads.at(1);
  ASSERT_EQ(m.curves.size(), 3u);
  expect_curve_equals(m.curves[0], SpectrumTensor::kPreRope, head.k_pre);
  ASSERT_TRUE(head.k_whitened);
  expect_curve_equals(m.curves[1], SpectrumTensor::kWhitened, *head.k_whitened);
  expect_curve_equals(m.curves[2], SpectrumTensor::kV, head.v);
  EXPECT_EQ(m.curves[0].eigenvalues.size(), 64u);
  // Curves come in request order.
  const auto v_first = build_spectrum_model(*snap, 1, 1, {SpectrumTensor::kV});
  ASSERT_EQ(v_first.curves.size(), 1u);
  expect_curve_equals(v_first.curves[0], SpectrumTensor::kV, head.v);
}

TEST(SpectrumModel, SeriesAndCsvArePlottedData) {
  const auto snap = demo_snapshot();
  const auto m = build_spectrum_model(*snap, 0, 0, {SpectrumTensor::kPreRope, SpectrumTensor::kV});
  const auto& head = test::analysis_layer(*snap, 0).heads.at(0);
  const auto series = m.series();
  ASSERT_EQ(series.size(), 2u * (2 + sessions::kSpectrumRatios.size()));
  const PlotSeries* eig = find_series(series, "K pre-RoPE eigenvalue");
  const PlotSeries* cum = find_series(series, "V cumulative");
  const PlotSeries* d95 = find_series(series, "V d_eff(0.95)");
  ASSERT_TRUE(eig && cum && d95);
  ASSERT_EQ(eig->x.size(), 64u);
  EXPECT_EQ(eig->x.front(), 1.0);  // components are 1-based
  EXPECT_EQ(eig->x.back(), 64.0);
  EXPECT_EQ(eig->y, head.k_pre.spectrum.eigenvalues);
  EXPECT_EQ(cum->y, head.v.spectrum.cumulative);
  EXPECT_EQ(d95->x, std::vector<double>{static_cast<double>(head.v.spectrum.d_eff[1])});
  EXPECT_EQ(d95->y, std::vector<double>{0.95});
  test::expect_csv_equals_series(spectrum_csv(m), "series,component,value", series);
}

TEST(SpectrumModel, FallsBackToTheFirstLayerAndHead) {
  const auto snap = demo_snapshot();
  for (int layer : {-1, 42}) {
    const auto m = build_spectrum_model(*snap, layer, 9, {SpectrumTensor::kPreRope});
    EXPECT_EQ(m.layer, 0);
    EXPECT_EQ(m.kv_head, 0);
    ASSERT_EQ(m.curves.size(), 1u);
    EXPECT_EQ(m.curves[0].eigenvalues,
              test::analysis_layer(*snap, 0).heads[0].k_pre.spectrum.eigenvalues);
  }
}

TEST(SpectrumModel, NotesWhenThereIsNothingToDraw) {
  const auto empty = build_spectrum_model(Snapshot{}, -1, 0, {SpectrumTensor::kPreRope});
  EXPECT_TRUE(empty.empty());
  EXPECT_EQ(empty.note, "No capture open.");
  EXPECT_EQ(empty.title, "Spectrum");
  const auto running =
      build_spectrum_model(capture_only({"Analyse capture"}), -1, 0, {SpectrumTensor::kPreRope});
  EXPECT_TRUE(running.empty());
  EXPECT_EQ(running.note, "Analysis running…");
  EXPECT_EQ(running.kv_heads, 2);
  Snapshot no_layers = capture_only({});
  no_layers.analysis = std::make_shared<const sessions::AnalysisResult>();
  EXPECT_EQ(build_spectrum_model(no_layers, -1, 0, {SpectrumTensor::kV}).note,
            "The analysis holds no layers.");

  // A layer without Σ_q: whitened K is left out with a note, the other curves stay.
  auto edited = std::make_shared<Snapshot>(*demo_snapshot());
  auto an = std::make_shared<sessions::AnalysisResult>(*edited->analysis);
  for (auto& l : an->layers)
    if (l.layer == 1)
      for (auto& h : l.heads) h.k_whitened.reset();
  edited->analysis = an;
  const auto m =
      build_spectrum_model(*edited, 1, 0, {SpectrumTensor::kWhitened, SpectrumTensor::kV});
  EXPECT_FALSE(m.has_whitened);
  ASSERT_EQ(m.curves.size(), 1u);
  EXPECT_EQ(m.curves[0].tensor, SpectrumTensor::kV);
  EXPECT_EQ(m.note, "Layer 1 has no Σ_q (no q_pre in the capture): whitened K is not available.");
}

// ---- Σ_q --------------------------------------------------------------------------------------

TEST(SigmaQModel, EqualsTheAnalysisAndItsSkipRule) {
  const auto snap = demo_snapshot();
  const auto& an = *snap->analysis;
  const auto m = build_sigma_q_model(*snap);
  EXPECT_EQ(m.title,
            "Σ_q conditioning — " + demo_file() + " · all layers, every kv head · SYNTHETIC");
  EXPECT_EQ(m.note, "");
  EXPECT_FALSE(m.empty());
  EXPECT_EQ(m.kv_heads, 2);
  EXPECT_EQ(m.factor, codec::kSkipRuleFactor);
  EXPECT_EQ(m.median, an.skip_median);
  EXPECT_GT(m.median, 0.0);
  EXPECT_EQ(m.threshold, codec::kSkipRuleFactor * an.skip_median);
  EXPECT_EQ(m.skip_layers, an.skip_layers);
  ASSERT_EQ(m.layers.size(), an.layers.size());
  for (const auto& l : m.layers) {
    const auto& la = test::analysis_layer(*snap, l.layer);
    EXPECT_EQ(l.attention, la.attention);
    EXPECT_TRUE(l.has_q);
    EXPECT_EQ(l.m_l, la.max_abs_L);
    EXPECT_EQ(l.skip_ratio, la.skip_ratio);
    EXPECT_EQ(l.skip, la.skip);
    EXPECT_EQ(l.skip, l.m_l > m.threshold);  // the drawn threshold agrees with the core's verdict
    EXPECT_FALSE(l.user_skip);
    ASSERT_EQ(l.heads.size(), la.heads.size());
    for (size_t h = 0; h < l.heads.size(); ++h) {
      EXPECT_EQ(l.heads[h].kv_head, la.heads[h].kv_head);
      EXPECT_EQ(l.heads[h].cond_reg, la.heads[h].sigma_q->cond_reg);
      EXPECT_EQ(l.heads[h].max_abs_L, la.heads[h].sigma_q->max_abs_L);
    }
  }
}

TEST(SigmaQModel, SeriesAndCsvArePlottedData) {
  const auto snap = demo_snapshot();
  const auto m = build_sigma_q_model(*snap);
  const auto cond = m.cond_series();
  ASSERT_EQ(cond.size(), 2u);
  for (int h = 0; h < 2; ++h) {
    EXPECT_EQ(cond[h].name, "cond(Σ_reg) kv head " + std::to_string(h));
    EXPECT_EQ(cond[h].x, (std::vector<double>{0, 1, 2}));
    for (size_t i = 0; i < 3; ++i)
      EXPECT_EQ(cond[h].y[i], test::analysis_layer(*snap, int(i)).heads[h].sigma_q->cond_reg);
  }
  const auto ml = m.max_l_series();
  const PlotSeries* head1 = find_series(ml, "max|L| kv head 1");
  const PlotSeries* m_l = find_series(ml, "m_l (max over heads)");
  const PlotSeries* thr = find_series(ml, "skip threshold (2 × median)");
  const PlotSeries* med = find_series(ml, "median m_l");
  ASSERT_TRUE(head1 && m_l && thr && med);
  EXPECT_EQ(head1->y[2], test::analysis_layer(*snap, 2).heads[1].sigma_q->max_abs_L);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_EQ(m_l->y[i], test::analysis_layer(*snap, int(i)).max_abs_L);
  EXPECT_EQ(thr->x, (std::vector<double>{-0.5, 2.5}));  // spans the layers
  EXPECT_EQ(thr->y, (std::vector<double>{m.threshold, m.threshold}));
  EXPECT_EQ(med->y, (std::vector<double>{m.median, m.median}));
  const PlotSeries* skipped = find_series(ml, "auto-skipped");
  EXPECT_EQ(skipped != nullptr, !m.skip_layers.empty());
  std::vector<PlotSeries> all = cond;
  all.insert(all.end(), ml.begin(), ml.end());
  test::expect_csv_equals_series(sigma_q_csv(m), "series,layer,value", all);
}

TEST(SigmaQModel, MarksAutoAndUserSkippedLayers) {
  auto skipped = std::make_shared<Snapshot>(*demo_snapshot());
  sessions::AnalysisResult& an = test::edit_analysis(*skipped);
  test::mark_auto_skipped(an, 1);
  an.user_skip_layers = {2};
  const auto m = build_sigma_q_model(*skipped);
  EXPECT_TRUE(m.layers[1].skip);
  EXPECT_FALSE(m.layers[2].skip);
  EXPECT_TRUE(m.layers[2].user_skip);
  EXPECT_FALSE(m.layers[1].user_skip);
  const auto ml = m.max_l_series();
  const PlotSeries* sk = find_series(ml, "auto-skipped");
  ASSERT_TRUE(sk);
  EXPECT_EQ(sk->x, std::vector<double>{1});
  EXPECT_EQ(sk->y, std::vector<double>{3 * an.skip_median});
}

TEST(SigmaQModel, NotesWithoutQPre) {
  EXPECT_EQ(build_sigma_q_model(Snapshot{}).note, "No capture open.");
  EXPECT_EQ(build_sigma_q_model(capture_only({"Analyse capture"})).note, "Analysis running…");
  auto noq = std::make_shared<Snapshot>(*demo_snapshot());
  auto an = std::make_shared<sessions::AnalysisResult>(*noq->analysis);
  for (auto& l : an->layers) {
    l.has_q = false;
    for (auto& h : l.heads) h.sigma_q.reset();
  }
  noq->analysis = an;
  const auto m = build_sigma_q_model(*noq);
  EXPECT_TRUE(m.empty());
  EXPECT_TRUE(contains(m.note, "no q_pre")) << m.note;
  EXPECT_TRUE(m.cond_series().empty());
  EXPECT_EQ(sigma_q_csv(m), "");
  // Only layer 2 without q_pre: it is left out of every series and the note says so.
  auto part = std::make_shared<Snapshot>(*demo_snapshot());
  auto an2 = std::make_shared<sessions::AnalysisResult>(*part->analysis);
  for (auto& l : an2->layers)
    if (l.layer == 2) {
      l.has_q = false;
      for (auto& h : l.heads) h.sigma_q.reset();
    }
  part->analysis = an2;
  const auto mp = build_sigma_q_model(*part);
  EXPECT_EQ(mp.note, "Layers without q_pre are left out (no Σ_q).");
  EXPECT_FALSE(mp.layers[2].has_q);
  EXPECT_EQ(mp.cond_series()[0].x, (std::vector<double>{0, 1}));
  const auto mp_ml = mp.max_l_series();
  ASSERT_TRUE(find_series(mp_ml, "m_l (max over heads)"));
  EXPECT_EQ(find_series(mp_ml, "m_l (max over heads)")->x, (std::vector<double>{0, 1}));
}

// ---- residual distribution --------------------------------------------------------------------

TEST(DistributionModel, HistogramEqualsTheCore) {
  const auto snap = demo_snapshot();
  const auto m = build_distribution_model(*snap, 1, true, 1);
  EXPECT_EQ(m.title,
            "Residual distribution — " + demo_file() + " · layer 1 · K (kakeya_pca) · SYNTHETIC");
  EXPECT_EQ(m.layers, (std::vector<int>{0, 1}));
  EXPECT_EQ(m.layer, 1);
  EXPECT_TRUE(m.k_stream);
  EXPECT_EQ(m.codec, "kakeya_pca");
  ASSERT_TRUE(m.has_histogram()) << m.note;
  const auto& lr = test::run_layer(*snap, 1);
  const auto direct = sessions::residual_histogram(
      lr.k, sessions::stream_config_for_layer(snap->run->config, 1, true), kDistributionBins,
      kDistributionRange);
  EXPECT_EQ(m.histogram->edges, direct.edges);
  EXPECT_EQ(m.histogram->counts, direct.counts);
  EXPECT_EQ(m.histogram->density, direct.density);
  EXPECT_EQ(m.histogram->counts.size(), size_t(kDistributionBins));
  EXPECT_EQ(m.histogram->values, uint64_t(lr.k.scaled_residuals.size()));
  EXPECT_GT(m.histogram->values, 0u);
  EXPECT_EQ(m.histogram->bit_width, 3u);
  ASSERT_TRUE(m.histogram->outlier_threshold);
  EXPECT_EQ(*m.histogram->outlier_threshold, 2.5);
  const auto g3 = codec::gaussian_table(3);
  ASSERT_EQ(m.histogram->centroids.size(), g3.size());
  for (size_t i = 0; i < g3.size(); ++i) EXPECT_EQ(m.histogram->centroids[i], double(g3[i]));
  // N(0,1) reference over the plotted range.
  ASSERT_EQ(m.normal_x.size(), 321u);
  EXPECT_EQ(m.normal_x.front(), -kDistributionRange);
  EXPECT_EQ(m.normal_x.back(), kDistributionRange);
  for (size_t i = 0; i < m.normal_x.size(); i += 40)
    EXPECT_EQ(m.normal_pdf[i], sessions::standard_normal_pdf(m.normal_x[i]));
  // The note counts the values beyond ±4 (not drawn), or is empty.
  const uint64_t beyond = m.histogram->below + m.histogram->above;
  EXPECT_EQ(m.note.empty(), beyond == 0) << m.note;
  if (beyond) {
    EXPECT_TRUE(contains(m.note, std::to_string(beyond) + " of ")) << m.note;
  }
}

TEST(DistributionModel, MainSeriesAndCsv) {
  const auto snap = demo_snapshot();
  const auto m = build_distribution_model(*snap, 1, true, 1);
  const auto main = m.main_series();
  ASSERT_EQ(main.size(), 4u);
  EXPECT_EQ(main[0].name, "residual density");
  ASSERT_EQ(main[0].x.size(), size_t(kDistributionBins));
  EXPECT_EQ(main[0].x[0], 0.5 * (m.histogram->edges[0] + m.histogram->edges[1]));
  EXPECT_EQ(main[0].y, m.histogram->density);
  EXPECT_EQ(main[1].name, "N(0,1) density");
  EXPECT_EQ(main[1].y, m.normal_pdf);
  EXPECT_EQ(main[2].name, "Lloyd-Max centroids (b=3, Gaussian)");
  EXPECT_EQ(main[2].x, m.histogram->centroids);
  EXPECT_TRUE(std::isnan(main[2].y[0]));  // vertical lines
  EXPECT_EQ(main[3].name, "outlier threshold ±2.5");
  EXPECT_EQ(main[3].x, (std::vector<double>{-2.5, 2.5}));
  std::vector<PlotSeries> all = main;
  for (auto& s : m.side_series()) all.push_back(s);
  test::expect_csv_equals_series(distribution_csv(m), "series,x,y", all);
}

TEST(DistributionModel, SidePanelIsKurtosisAndOutlierRates) {
  const auto snap = demo_snapshot();
  const auto m = build_distribution_model(*snap, 1, true, 1);
  const auto kurt = sessions::layer_kurtosis(*snap->analysis);
  ASSERT_EQ(m.kurtosis.size(), kurt.size());
  ASSERT_EQ(kurt.size(), 3u);
  for (size_t i = 0; i < kurt.size(); ++i) {
    EXPECT_EQ(m.kurtosis[i].layer, kurt[i].layer);
    EXPECT_TRUE(test::same_double(m.kurtosis[i].k_pre, kurt[i].k_pre));
    EXPECT_TRUE(test::same_double(m.kurtosis[i].v, kurt[i].v));
  }
  // Layer 0 is a bf16 boundary layer: only layer 1 has Kakeya residuals.
  ASSERT_EQ(m.outliers.size(), 1u);
  EXPECT_EQ(m.outliers[0].layer, 1);
  const auto* ol = test::outlier_layer(*snap, 1);
  ASSERT_TRUE(ol && ol->k && ol->v);
  EXPECT_EQ(*m.outliers[0].k_rate, ol->k->rate(1));
  EXPECT_EQ(*m.outliers[0].v_rate, ol->v->rate(1));
  EXPECT_EQ(m.gaussian_rate, sessions::gaussian_outlier_rates()[1]);
  EXPECT_TRUE(m.has_side());
  const auto side = m.side_series();
  const PlotSeries* kk = find_series(side, "K pre-RoPE kurtosis");
  const PlotSeries* vk = find_series(side, "V kurtosis");
  const PlotSeries* kr = find_series(side, "K outlier rate |s|>2");
  const PlotSeries* vr = find_series(side, "V outlier rate |s|>2");
  const PlotSeries* g = find_series(side, "Gaussian rate |s|>2");
  ASSERT_TRUE(kk && vk && kr && vr && g);
  EXPECT_EQ(kk->x, (std::vector<double>{0, 1, 2}));
  EXPECT_EQ(kk->y[2], kurt[2].k_pre);
  EXPECT_EQ(vk->y[0], kurt[0].v);
  EXPECT_EQ(kr->x, std::vector<double>{1});
  EXPECT_EQ(kr->y, std::vector<double>{ol->k->rate(1)});
  EXPECT_EQ(vr->y, std::vector<double>{ol->v->rate(1)});
  EXPECT_EQ(g->x, (std::vector<double>{0.5, 1.5}));
  EXPECT_EQ(g->y, (std::vector<double>{m.gaussian_rate, m.gaussian_rate}));
}

TEST(DistributionModel, VStreamAndThresholdChoice) {
  const auto snap = demo_snapshot();
  const auto& lr = test::run_layer(*snap, 1);
  const auto* ol = test::outlier_layer(*snap, 1);
  ASSERT_TRUE(ol && ol->k);
  const auto v = build_distribution_model(*snap, 1, false, 3);
  ASSERT_TRUE(v.has_histogram());
  EXPECT_FALSE(v.k_stream);
  EXPECT_EQ(v.histogram->bit_width, 2u);
  EXPECT_FALSE(v.histogram->outlier_threshold);  // V stores no outliers
  EXPECT_EQ(v.histogram->values, uint64_t(lr.v.scaled_residuals.size()));
  EXPECT_EQ(v.main_series().size(), 3u);
  EXPECT_EQ(v.main_series()[2].name, "Lloyd-Max centroids (b=2, Gaussian)");
  EXPECT_TRUE(contains(v.title, "layer 1 · V (kakeya_pca)"));
  EXPECT_EQ(v.threshold_index, 3);
  EXPECT_EQ(*v.outliers[0].k_rate, ol->k->rate(3));
  EXPECT_EQ(v.gaussian_rate, sessions::gaussian_outlier_rates()[3]);
  const auto v_side = v.side_series();
  EXPECT_TRUE(find_series(v_side, "K outlier rate |s|>3"));
  // Out-of-range threshold indices clamp to the first / last threshold.
  EXPECT_EQ(build_distribution_model(*snap, 1, true, -5).threshold_index, 0);
  EXPECT_EQ(build_distribution_model(*snap, 1, true, 99).threshold_index,
            int(sessions::kOutlierThresholds.size()) - 1);
  // A layer not in the run shows the first layer of the run.
  EXPECT_EQ(build_distribution_model(*snap, 2, true, 1).layer, 0);
}

TEST(DistributionModel, NotesForStreamsWithoutResiduals) {
  const auto snap = demo_snapshot();
  EXPECT_EQ(build_distribution_model(Snapshot{}, -1, true, 1).note, "No capture open.");
  const auto running = build_distribution_model(capture_only({"Run configuration"}), -1, true, 1);
  EXPECT_EQ(running.note, "Run running…");
  EXPECT_FALSE(running.has_histogram());
  EXPECT_FALSE(running.has_side());

  // The boundary layer is bf16; the side panel stays.
  const auto b = build_distribution_model(*snap, 0, true, 1);
  EXPECT_FALSE(b.has_histogram());
  EXPECT_TRUE(b.has_side());
  EXPECT_EQ(b.codec, "bf16");
  EXPECT_EQ(b.note,
            "The residual view applies to kakeya_pca streams; layer 0 K was coded by bf16 "
            "(boundary layer).");

  // A failed stream, a peer codec, no residuals collected, a rerun in flight.
  auto edited = std::make_shared<Snapshot>(*snap);
  sessions::LayerResult& l1 = test::layer_of(test::edit_run(*edited).layers, 1);
  l1.v.failed = true;
  l1.v.error_code = "FP16_RANGE";
  l1.v.error_message = "value 1e6 out of fp16 range";
  l1.k.scaled_residuals.clear();
  EXPECT_EQ(build_distribution_model(*edited, 1, false, 1).note,
            "Layer 1 V failed (FP16_RANGE): value 1e6 out of fp16 range");
  const auto no_res = build_distribution_model(*edited, 1, true, 1);
  EXPECT_FALSE(no_res.has_histogram());
  EXPECT_TRUE(contains(no_res.note, "Layer 1 K: no coded residuals in this run")) << no_res.note;
  l1.k.codec = "q8_0";
  EXPECT_EQ(build_distribution_model(*edited, 1, true, 1).note,
            "The residual view applies to kakeya_pca streams; layer 1 K was coded by q8_0.");
  auto stale = std::make_shared<Snapshot>(*snap);
  stale->run_is_current = false;
  stale->run_in_flight = true;
  const auto st = build_distribution_model(*stale, 1, true, 1);
  EXPECT_TRUE(st.has_histogram());
  const std::string rerun = "A rerun is in progress: this is the previous run.";
  ASSERT_GE(st.note.size(), rerun.size());
  EXPECT_EQ(st.note.substr(st.note.size() - rerun.size()), rerun);
}

// ---- per-layer error --------------------------------------------------------------------------

TEST(LayerErrorModel, RelativeMseEqualsTheRun) {
  const auto snap = demo_snapshot();
  const auto m = build_layer_error_model(*snap, LayerErrorMetric::kRelMse);
  EXPECT_EQ(m.title,
            "Per-layer error — " + demo_file() + " · all layers · relative MSE · SYNTHETIC");
  EXPECT_EQ(m.note, "");
  EXPECT_FALSE(m.empty());
  ASSERT_EQ(m.rows.size(), 2u);
  for (const auto& r : m.rows) {
    const auto& lr = test::run_layer(*snap, r.layer);
    ASSERT_TRUE(r.k.value && r.v.value);
    EXPECT_EQ(*r.k.value, lr.k.err.rel_mse());
    EXPECT_EQ(*r.v.value, lr.v.err.rel_mse());
    EXPECT_EQ(r.boundary, lr.boundary);
    EXPECT_EQ(r.whitened, lr.whitened);
    EXPECT_EQ(r.q_skip, lr.q_skip);
    EXPECT_EQ(r.k.codec, lr.k.codec);
    EXPECT_EQ(r.v.codec, lr.v.codec);
    EXPECT_FALSE(r.both);  // K+V only for attention metrics
  }
  EXPECT_TRUE(m.rows[0].boundary);
  EXPECT_EQ(m.rows[0].k.codec, "bf16");
  EXPECT_FALSE(m.rows[1].boundary);
  EXPECT_EQ(m.rows[1].k.codec, "kakeya_pca");
  EXPECT_TRUE(m.rows[1].whitened);
  // bf16 rounding is far below the 3-bit Kakeya error.
  EXPECT_LT(*m.rows[0].k.value, *m.rows[1].k.value);

  const auto series = m.series();
  const PlotSeries* k = find_series(series, "K relative MSE");
  const PlotSeries* b = find_series(series, "boundary (bf16)");
  const PlotSeries* w = find_series(series, "K whitened (Σ_q)");
  ASSERT_TRUE(k && b && w);
  EXPECT_EQ(k->x, (std::vector<double>{0, 1}));
  EXPECT_EQ(k->y[1], test::run_layer(*snap, 1).k.err.rel_mse());
  EXPECT_EQ(b->x, std::vector<double>{0});
  EXPECT_EQ(w->x, std::vector<double>{1});
  EXPECT_FALSE(find_series(series, "K+V relative MSE"));
  EXPECT_FALSE(find_series(series, "V failed"));
  test::expect_csv_equals_series(layer_error_csv(m), "series,layer,value", series);
}

TEST(LayerErrorModel, AttentionMetricsEqualTheRun) {
  const auto snap = demo_snapshot();
  const auto& lr = test::run_layer(*snap, 1);
  ASSERT_TRUE(lr.has_attn && lr.k.has_attn && lr.v.has_attn);
  const auto kl = build_layer_error_model(*snap, LayerErrorMetric::kAttnKl);
  EXPECT_TRUE(contains(kl.title, "all layers · attention KL (nats)"));
  EXPECT_EQ(*kl.rows[1].k.value, lr.k.attn.kl());
  EXPECT_EQ(*kl.rows[1].v.value, lr.v.attn.kl());
  EXPECT_EQ(*kl.rows[1].both, lr.attn.kl());
  const auto kl_series = kl.series();
  const PlotSeries* both = find_series(kl_series, "K+V attention KL (nats)");
  ASSERT_TRUE(both);
  EXPECT_EQ(both->y.back(), lr.attn.kl());
  const auto out = build_layer_error_model(*snap, LayerErrorMetric::kAttnOutRelErr);
  EXPECT_EQ(*out.rows[1].both, lr.attn.out_rel_err());
  EXPECT_EQ(*out.rows[1].v.value, lr.v.attn.out_rel_err());
  test::expect_csv_equals_series(layer_error_csv(out), "series,layer,value", out.series());
  EXPECT_EQ(layer_error_metric_name(LayerErrorMetric::kRelMse), "relative MSE");
  EXPECT_EQ(layer_error_metric_name(LayerErrorMetric::kAttnOutRelErr),
            "attention output rel. error");
  EXPECT_EQ(layer_error_metric_name(LayerErrorMetric::kAttnKl), "attention KL (nats)");
}

TEST(LayerErrorModel, FailedStreamsAndNotes) {
  const auto snap = demo_snapshot();
  EXPECT_EQ(build_layer_error_model(Snapshot{}, LayerErrorMetric::kRelMse).note,
            "No capture open.");
  const auto waiting = build_layer_error_model(capture_only({}), LayerErrorMetric::kRelMse);
  EXPECT_TRUE(waiting.empty());
  EXPECT_EQ(waiting.note, "No run yet (press Run to evaluate the configuration).");

  auto failed = std::make_shared<Snapshot>(*snap);
  sessions::LayerResult& l1 = test::layer_of(test::edit_run(*failed).layers, 1);
  l1.v.failed = true;
  l1.v.error_code = "FP16_RANGE";
  failed->run_is_current = false;
  failed->run_in_flight = true;
  const auto m = build_layer_error_model(*failed, LayerErrorMetric::kRelMse);
  EXPECT_TRUE(m.rows[1].v.failed);
  EXPECT_FALSE(m.rows[1].v.value);
  EXPECT_EQ(m.rows[1].v.error_code, "FP16_RANGE");
  const auto failed_series = m.series();
  const PlotSeries* vf = find_series(failed_series, "V failed");
  ASSERT_TRUE(vf);
  EXPECT_EQ(vf->x, std::vector<double>{1});
  EXPECT_TRUE(std::isnan(vf->y[0]));
  EXPECT_EQ(m.note,
            "Some streams failed (marked ×; hover for the error code). A rerun is in progress: "
            "this is the previous run.");

  // A real run without attention metrics whose blocks are longer than the capture: every row
  // stays in the bf16 hot tail.
  const auto tail = test::make_snapshot(
      test::view_demo_capture(),
      test::config_of({{"block_size", 512}, {"layers", "1"}, {"attention_metrics", false}}),
      Selection{1, 0}, demo_snapshot()->analysis);
  const auto t = build_layer_error_model(*tail, LayerErrorMetric::kAttnKl);
  ASSERT_EQ(t.rows.size(), 1u);
  EXPECT_FALSE(t.rows[0].k.value);
  EXPECT_FALSE(t.rows[0].both);
  EXPECT_TRUE(t.empty());
  EXPECT_TRUE(contains(t.note, "No attention metrics in this run")) << t.note;
  EXPECT_TRUE(contains(t.note, "kept every row in the bf16 hot tail")) << t.note;
}

// ---- tiny1m (real capture) --------------------------------------------------------------------

TEST(ChartModelsTiny1m, EveryChartEqualsTheCore) {
  KVWB_REQUIRE_REAL(path, "tiny1m_wikitext2.kvc.h5");
  // The default configuration (block_size 512) keeps every row of the 256-token sequences in the
  // bf16 hot tail; the workbench's default for this capture (workbench_default_config) codes them.
  const auto hot = test::make_snapshot(path, sessions::RunConfig{}, Selection{1, 0});
  ASSERT_FALSE(hot->capture.synthetic);
  const auto sp =
      build_spectrum_model(*hot, 1, 0, {SpectrumTensor::kPreRope, SpectrumTensor::kWhitened});
  EXPECT_EQ(sp.title, "Spectrum — tiny1m_wikitext2.kvc.h5 · layer 1 · kv head 0");
  EXPECT_TRUE(sp.has_whitened);
  ASSERT_EQ(sp.curves.size(), 2u);
  expect_curve_equals(sp.curves[1], SpectrumTensor::kWhitened,
                      *test::analysis_layer(*hot, 1).heads[0].k_whitened);
  const auto sq = build_sigma_q_model(*hot);
  ASSERT_EQ(sq.layers.size(), 4u);
  EXPECT_EQ(sq.median, hot->analysis->skip_median);
  for (const auto& l : sq.layers) {
    EXPECT_EQ(l.m_l, test::analysis_layer(*hot, l.layer).max_abs_L);
    EXPECT_EQ(l.skip, l.m_l > sq.threshold);
  }
  const auto di = build_distribution_model(*hot, 1, true, 1);
  EXPECT_FALSE(di.has_histogram());
  EXPECT_TRUE(contains(di.note, "hot tail")) << di.note;
  const auto le = build_layer_error_model(*hot, LayerErrorMetric::kRelMse);
  EXPECT_TRUE(contains(le.note, "hot tail")) << le.note;

  const sessions::RunConfig wb = sessions::workbench_default_config(hot->capture.tokens);
  const auto coded = test::make_snapshot(path, wb, Selection{1, 0}, hot->analysis);
  const auto dc = build_distribution_model(*coded, 1, true, 1);
  ASSERT_TRUE(dc.has_histogram()) << dc.note;
  const auto& lr = test::run_layer(*coded, 1);
  EXPECT_EQ(dc.histogram->counts,
            sessions::residual_histogram(
                lr.k, sessions::stream_config_for_layer(coded->run->config, 1, true),
                kDistributionBins, kDistributionRange)
                .counts);
  EXPECT_EQ(dc.outliers.size(), 4u);
  const auto lc = build_layer_error_model(*coded, LayerErrorMetric::kAttnOutRelErr);
  ASSERT_EQ(lc.rows.size(), 4u);
  for (const auto& r : lc.rows) {
    const auto& l = test::run_layer(*coded, r.layer);
    EXPECT_EQ(*r.k.value, l.k.attn.out_rel_err());
    EXPECT_EQ(*r.both, l.attn.out_rel_err());
  }
  EXPECT_FALSE(contains(lc.note, "hot tail")) << lc.note;
}

}  // namespace
}  // namespace kvwb::views
