// The layer-map model without Qt: every cell of every metric equals the core's number it is
// picked from (analysis, run, outlier rates), n/a cells say why, the hover text (exact value,
// status line) and the cell text, the colour-scale range (boundary layers clamped, log scale),
// boundary and run flags, the totals of the run, a stale run while a rerun is in flight, and the
// CSV. On the demo capture and on tiny1m when present.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>

#include "tests/views/models/view_model_fixture.h"
#include "views/models/layer_map_model.h"

namespace kvwb::views {
namespace {

using test::contains;
using test::demo_snapshot;

const LayerMapRow& row_of(const LayerMapModel& m, int layer) {
  for (const auto& r : m.rows)
    if (r.layer == layer) return r;
  throw std::runtime_error("layer " + std::to_string(layer) + " not in the model");
}

double cell(const Snapshot& s, LayerMapMetric m, LayerMapStream st, int layer, int h) {
  return row_of(build_layer_map(s, m, st), layer).cells.at(static_cast<size_t>(h)).value;
}

/// Every metric of every (layer, kv head) of `layers` equals the core's structures.
void expect_cells_equal_core(const Snapshot& s, const std::vector<int>& layers) {
  for (int l : layers) {
    const auto& lr = test::run_layer(s, l);
    const auto* ol = test::outlier_layer(s, l);
    for (int h = 0; h < s.capture.num_kv_heads; ++h) {
      SCOPED_TRACE("layer " + std::to_string(l) + " kv head " + std::to_string(h));
      const auto& ha = test::analysis_layer(s, l).heads.at(static_cast<size_t>(h));
      ASSERT_TRUE(ha.sigma_q && ha.k_whitened);
      EXPECT_EQ(cell(s, LayerMapMetric::kSigmaQCond, LayerMapStream::kNone, l, h),
                ha.sigma_q->cond_reg);
      EXPECT_EQ(cell(s, LayerMapMetric::kDEff, LayerMapStream::kK, l, h),
                double(ha.k_pre.spectrum.d_eff[1]));
      EXPECT_EQ(cell(s, LayerMapMetric::kDEff, LayerMapStream::kKWhitened, l, h),
                double(ha.k_whitened->spectrum.d_eff[1]));
      EXPECT_EQ(cell(s, LayerMapMetric::kDEff, LayerMapStream::kV, l, h),
                double(ha.v.spectrum.d_eff[1]));
      EXPECT_EQ(cell(s, LayerMapMetric::kKurtosis, LayerMapStream::kK, l, h),
                ha.k_pre.kurtosis.pooled);
      EXPECT_EQ(cell(s, LayerMapMetric::kKurtosis, LayerMapStream::kKWhitened, l, h),
                ha.k_whitened->kurtosis.pooled);
      EXPECT_EQ(cell(s, LayerMapMetric::kKurtosis, LayerMapStream::kV, l, h), ha.v.kurtosis.pooled);
      EXPECT_EQ(cell(s, LayerMapMetric::kRelMse, LayerMapStream::kK, l, h),
                lr.k.heads.at(h).rel_mse());
      EXPECT_EQ(cell(s, LayerMapMetric::kRelMse, LayerMapStream::kV, l, h),
                lr.v.heads.at(h).rel_mse());
      ASSERT_TRUE(lr.has_attn);
      EXPECT_EQ(cell(s, LayerMapMetric::kAttnKl, LayerMapStream::kNone, l, h),
                lr.attn_heads.at(h).kl());
      EXPECT_EQ(cell(s, LayerMapMetric::kBytes, LayerMapStream::kBoth, l, h),
                double(lr.k.bytes + lr.v.bytes));
      EXPECT_EQ(cell(s, LayerMapMetric::kBytes, LayerMapStream::kK, l, h), double(lr.k.bytes));
      EXPECT_EQ(cell(s, LayerMapMetric::kBytes, LayerMapStream::kV, l, h), double(lr.v.bytes));
      // Outlier rates: per layer, only for streams coded by kakeya_pca.
      for (LayerMapStream st : {LayerMapStream::kK, LayerMapStream::kV}) {
        const double rate = cell(s, LayerMapMetric::kOutlierRate, st, l, h);
        std::optional<sessions::OutlierCounts> counts;
        if (ol) counts = st == LayerMapStream::kK ? ol->k : ol->v;
        if (counts)
          EXPECT_EQ(rate, counts->rate(kLayerMapOutlierIndex));
        else
          EXPECT_TRUE(std::isnan(rate));
      }
    }
  }
}

TEST(LayerMapModel, MenusOfMetricsAndStreams) {
  const auto& all = layer_map_metrics();
  ASSERT_EQ(all.size(), 7u);
  EXPECT_EQ(all.front(), LayerMapMetric::kSigmaQCond);
  EXPECT_EQ(layer_map_metric_name(LayerMapMetric::kDEff), "d_eff @ 0.95");
  EXPECT_EQ(layer_map_metric_name(LayerMapMetric::kOutlierRate), "outlier rate (T = 2.5)");
  EXPECT_EQ(sessions::kOutlierThresholds[kLayerMapOutlierIndex], kLayerMapOutlierT);
  EXPECT_EQ(layer_map_streams(LayerMapMetric::kSigmaQCond),
            std::vector<LayerMapStream>{LayerMapStream::kNone});
  EXPECT_EQ(layer_map_streams(LayerMapMetric::kDEff),
            (std::vector<LayerMapStream>{LayerMapStream::kK, LayerMapStream::kKWhitened,
                                         LayerMapStream::kV}));
  EXPECT_EQ(layer_map_streams(LayerMapMetric::kBytes).front(), LayerMapStream::kBoth);
  EXPECT_EQ(layer_map_stream_name(LayerMapMetric::kKurtosis, LayerMapStream::kK), "K pre-RoPE");
  EXPECT_EQ(layer_map_stream_name(LayerMapMetric::kRelMse, LayerMapStream::kK), "K");
  for (LayerMapMetric m : all) {
    const auto streams = layer_map_streams(m);
    ASSERT_FALSE(streams.empty());
    // A stream the metric does not offer falls back to its default (the first).
    const auto built = build_layer_map(*demo_snapshot(), m, LayerMapStream::kKWhitened);
    const bool offered =
        std::find(streams.begin(), streams.end(), LayerMapStream::kKWhitened) != streams.end();
    EXPECT_EQ(built.stream, offered ? LayerMapStream::kKWhitened : streams.front());
    const std::string sname = layer_map_stream_name(m, built.stream);
    EXPECT_EQ(built.metric_label, layer_map_metric_name(m) + (sname.empty() ? "" : " — " + sname));
    EXPECT_FALSE(built.unit_note.empty());
    EXPECT_EQ(built.per_layer, m == LayerMapMetric::kOutlierRate || m == LayerMapMetric::kBytes);
  }
}

TEST(LayerMapModel, EveryCellEqualsTheCore) {
  const auto snap = demo_snapshot();
  expect_cells_equal_core(*snap, {0, 1});
  const auto m = build_layer_map(*snap, LayerMapMetric::kRelMse, LayerMapStream::kK);
  EXPECT_TRUE(m.synthetic);
  EXPECT_EQ(m.hint, "");
  EXPECT_EQ(m.num_kv_heads, 2);
  EXPECT_EQ(m.generation, snap->generation);
  EXPECT_EQ(m.selection.layer, 1);
  EXPECT_EQ(m.selection.kv_head, 1);
  EXPECT_EQ(m.capture_label,
            "view_models_demo.kvc.h5 · " + snap->capture.model_name + " · 3 layers × 2 kv heads");
  ASSERT_EQ(m.rows.size(), 3u);
  // Per-layer metrics show the layer's value in every head.
  const auto bytes = build_layer_map(*snap, LayerMapMetric::kBytes);
  EXPECT_EQ(row_of(bytes, 1).cells[0].value, row_of(bytes, 1).cells[1].value);
}

TEST(LayerMapModel, NotAvailableCellsSayWhy) {
  const auto snap = demo_snapshot();
  // Layer 2 is outside the run: run metrics are n/a there, analysis metrics are not.
  const auto m = build_layer_map(*snap, LayerMapMetric::kRelMse, LayerMapStream::kK);
  const auto& r2 = row_of(m, 2);
  EXPECT_FALSE(r2.in_run);
  EXPECT_TRUE(std::isnan(r2.cells[0].value));
  EXPECT_EQ(r2.cells[0].why_na, "layer not in the run");
  EXPECT_EQ(r2.cells[0].text, "n/a");
  EXPECT_EQ(r2.status, "not covered by the run");
  EXPECT_FALSE(std::isnan(cell(*snap, LayerMapMetric::kDEff, LayerMapStream::kV, 2, 1)));
  // The boundary layer is bf16: no Kakeya outlier rates there.
  const auto out = build_layer_map(*snap, LayerMapMetric::kOutlierRate, LayerMapStream::kV);
  EXPECT_EQ(row_of(out, 0).cells[1].why_na, "stream not coded by kakeya_pca in this layer");
  EXPECT_FALSE(std::isnan(row_of(out, 1).cells[1].value));
  // Σ_q n/a without q_pre; a failed stream names its error.
  auto edited = std::make_shared<Snapshot>(*snap);
  auto an = std::make_shared<sessions::AnalysisResult>(*snap->analysis);
  for (auto& h : an->layers[2].heads) {
    h.sigma_q.reset();
    h.k_whitened.reset();
  }
  auto run = std::make_shared<sessions::RunResult>(*snap->run);
  run->layers[1].k.failed = true;
  run->layers[1].k.error_code = "FP16_RANGE";
  run->failed = true;
  edited->analysis = an;
  edited->run = run;
  EXPECT_EQ(row_of(build_layer_map(*edited, LayerMapMetric::kSigmaQCond), 2).cells[0].why_na,
            "no Σ_q (layer has no q_pre)");
  EXPECT_EQ(row_of(build_layer_map(*edited, LayerMapMetric::kDEff, LayerMapStream::kKWhitened), 2)
                .cells[1]
                .why_na,
            "no whitened K (layer has no q_pre)");
  const auto failed = build_layer_map(*edited, LayerMapMetric::kRelMse, LayerMapStream::kK);
  EXPECT_EQ(row_of(failed, 1).cells[0].why_na, "stream failed: FP16_RANGE");
  EXPECT_TRUE(contains(failed.quality_line, "some layer-streams FAILED")) << failed.quality_line;
}

TEST(LayerMapModel, HoverAndCellText) {
  const auto snap = demo_snapshot();
  EXPECT_EQ(layer_map_exact(std::nan("")), "n/a");
  EXPECT_EQ(layer_map_exact(0.1), "0.10000000000000001");
  for (LayerMapMetric metric : layer_map_metrics()) {
    const auto m = build_layer_map(*snap, metric);
    for (const auto& r : m.rows)
      for (const auto& c : r.cells) {
        if (!std::isfinite(c.value)) {
          EXPECT_EQ(c.text, "n/a");
          EXPECT_FALSE(c.why_na.empty());
          continue;
        }
        EXPECT_EQ(c.why_na, "");
        // The tooltip's exact text reads back as the very value.
        EXPECT_EQ(std::stod(layer_map_exact(c.value)), c.value);
        // The short text in the cell is the value rounded to the metric's format.
        char want[64];
        switch (metric) {
          case LayerMapMetric::kSigmaQCond:
            std::snprintf(want, sizeof want, "%.3g", c.value);
            break;
          case LayerMapMetric::kDEff:
            std::snprintf(want, sizeof want, "%.0f", c.value);
            break;
          case LayerMapMetric::kKurtosis:
            std::snprintf(want, sizeof want, "%.2f", c.value);
            break;
          case LayerMapMetric::kOutlierRate:
            std::snprintf(want, sizeof want, "%.2f %%", 100 * c.value);
            break;
          case LayerMapMetric::kRelMse:
          case LayerMapMetric::kAttnKl:
            std::snprintf(want, sizeof want, "%.2e", c.value);
            break;
          case LayerMapMetric::kBytes:
            std::snprintf(want, sizeof want, "%.1f KiB", c.value / 1024);
            if (c.value < 1024) std::snprintf(want, sizeof want, "%.0f B", c.value);
            if (c.value >= 1024.0 * 1024)
              std::snprintf(want, sizeof want, "%.2f MiB", c.value / 1048576);
            break;
        }
        EXPECT_EQ(c.text, want) << layer_map_metric_name(metric);
      }
  }
  // Status lines of the hover: boundary, whitened, outside the run.
  const auto m = build_layer_map(*snap, LayerMapMetric::kBytes);
  EXPECT_EQ(row_of(m, 0).status, "boundary (both streams bf16)");
  EXPECT_TRUE(contains(row_of(m, 1).status, "K whitened (Q-preconditioned)"))
      << row_of(m, 1).status;
  EXPECT_EQ(row_of(m, 1).whitened, test::run_layer(*snap, 1).whitened);
}

TEST(LayerMapModel, ColourScaleRange) {
  const auto snap = demo_snapshot();
  // Run metrics: [min, max] over the compressed layers; the bf16 boundary layer (errors ~1e-6)
  // would squash the scale and is drawn clamped.
  const auto m = build_layer_map(*snap, LayerMapMetric::kRelMse, LayerMapStream::kK);
  ASSERT_TRUE(m.has_values);
  const auto& r1 = row_of(m, 1);
  EXPECT_EQ(m.min, std::min(r1.cells[0].value, r1.cells[1].value));
  EXPECT_EQ(m.max, std::max(r1.cells[0].value, r1.cells[1].value));
  EXPECT_LT(row_of(m, 0).cells[0].value, m.min);
  EXPECT_EQ(m.scale_note, "range: compressed layers (bf16 layers clamped)");
  EXPECT_FALSE(m.log_scale);
  // Analysis metrics: over every analysed cell; Σ_q condition always on a log scale.
  const auto sq = build_layer_map(*snap, LayerMapMetric::kSigmaQCond);
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& la : snap->analysis->layers)
    for (const auto& h : la.heads) {
      lo = std::min(lo, h.sigma_q->cond_reg);
      hi = std::max(hi, h.sigma_q->cond_reg);
    }
  EXPECT_EQ(sq.min, lo);
  EXPECT_EQ(sq.max, hi);
  EXPECT_TRUE(sq.log_scale);
  EXPECT_EQ(sq.scale_note, "");
  const auto d = build_layer_map(*snap, LayerMapMetric::kDEff, LayerMapStream::kV);
  EXPECT_FALSE(d.log_scale);
  EXPECT_GE(d.min, 1.0);
  EXPECT_LE(d.max, 64.0);
}

TEST(LayerMapModel, BoundaryFlagsAndTotals) {
  const auto snap = demo_snapshot();
  const auto m = build_layer_map(*snap, LayerMapMetric::kBytes);
  EXPECT_EQ(m.stream, LayerMapStream::kBoth);
  for (const auto& r : m.rows) {
    EXPECT_EQ(r.boundary, r.layer == 0);
    EXPECT_EQ(r.run_boundary, r.layer == 0);
    EXPECT_EQ(r.in_run, r.layer != 2);
    EXPECT_EQ(r.attention, "full");
    EXPECT_TRUE(r.has_q);
  }
  EXPECT_TRUE(m.has_run);
  EXPECT_TRUE(m.run_is_current);
  EXPECT_EQ(m.ratio, snap->run->ratio_vs_bf16());
  char want[160];
  std::snprintf(want, sizeof want, "ratio %.4f · %llu bytes (bf16 %llu bytes)",
                snap->run->ratio_vs_bf16(), static_cast<unsigned long long>(snap->run->total_bytes),
                static_cast<unsigned long long>(snap->run->bf16_bytes));
  EXPECT_EQ(m.totals_line, want);
  EXPECT_EQ(m.quality_line.rfind("K rel_mse ", 0), 0u) << m.quality_line;
  EXPECT_TRUE(contains(m.quality_line, " · V rel_mse ")) << m.quality_line;
  EXPECT_TRUE(contains(m.quality_line, " · attn KL ")) << m.quality_line;
  EXPECT_TRUE(contains(m.quality_line, "(mean over layers)")) << m.quality_line;

  // While a rerun with layer 1 made a boundary is in flight, the old totals stay, flagged as not
  // current; layer 1 is drawn as boundary but still coloured from the old (coded) run.
  auto stale = std::make_shared<Snapshot>(*snap);
  stale->run_is_current = false;
  auto cfg = std::make_shared<sessions::RunConfig>(*snap->config);
  cfg->boundary = {0, 1};
  stale->config = cfg;
  const auto ms = build_layer_map(*stale, LayerMapMetric::kBytes);
  EXPECT_FALSE(ms.run_is_current);
  EXPECT_EQ(ms.totals_line, m.totals_line);
  EXPECT_TRUE(row_of(ms, 1).boundary);
  EXPECT_FALSE(row_of(ms, 1).run_boundary);
  EXPECT_TRUE(contains(row_of(ms, 1).status, "boundary change waits for the rerun"));
  const auto mk = build_layer_map(*stale, LayerMapMetric::kRelMse, LayerMapStream::kK);
  EXPECT_EQ(mk.max, std::max(row_of(mk, 1).cells[0].value, row_of(mk, 1).cells[1].value));
}

TEST(LayerMapModel, EmptyStatesAndLayersOutsideTheRun) {
  const auto none = build_layer_map(Snapshot{}, LayerMapMetric::kRelMse);
  EXPECT_TRUE(none.rows.empty());
  EXPECT_TRUE(contains(none.hint, "No capture open.")) << none.hint;
  EXPECT_FALSE(none.has_run);

  // A capture with nothing computed: rows with flags, every cell n/a, a hint what to do.
  Snapshot s;
  s.capture = demo_snapshot()->capture;
  const auto a = build_layer_map(s, LayerMapMetric::kSigmaQCond);
  ASSERT_EQ(a.rows.size(), 3u);
  EXPECT_FALSE(a.has_values);
  EXPECT_EQ(a.hint,
            "The capture analysis has not finished yet (Analyze). Σ_q condition comes from it.");
  EXPECT_EQ(a.rows[0].cells[0].why_na, "no analysis yet");
  const auto r = build_layer_map(s, LayerMapMetric::kAttnKl);
  EXPECT_EQ(r.hint, "No run yet: run the current configuration to see attention KL.");
  EXPECT_EQ(r.rows[1].cells[1].why_na, "no run yet");
  EXPECT_EQ(build_layer_map(s, LayerMapMetric::kOutlierRate).rows[0].cells[0].why_na,
            "no outlier rates (run has no Kakeya stream)");

  // Before a run, "in the run" follows the configuration: sliding layers only when included.
  s.capture.attention[2] = "sliding";
  auto cfg = std::make_shared<sessions::RunConfig>();
  s.config = cfg;
  auto rows = build_layer_map(s, LayerMapMetric::kBytes).rows;
  EXPECT_TRUE(rows[1].in_run);
  EXPECT_FALSE(rows[2].in_run);
  EXPECT_EQ(rows[2].status, "sliding-window attention · not selected for the run");
  cfg->include_sliding = true;
  EXPECT_TRUE(build_layer_map(s, LayerMapMetric::kBytes).rows[2].in_run);
  cfg->layers = {1};
  rows = build_layer_map(s, LayerMapMetric::kBytes).rows;
  EXPECT_FALSE(rows[0].in_run);
  EXPECT_TRUE(rows[1].in_run);
}

TEST(LayerMapModel, CsvIsTheGrid) {
  const auto snap = demo_snapshot();
  const auto m = build_layer_map(*snap, LayerMapMetric::kAttnKl);
  const auto lines = test::csv_lines(layer_map_csv(m));
  ASSERT_EQ(lines.size(), 4u);  // header + 3 layers
  EXPECT_EQ(lines[0],
            "layer,attention,boundary,in_run,whitened,q_skip,\"attention KL kv_head 0\","
            "\"attention KL kv_head 1\"");
  for (size_t i = 0; i < m.rows.size(); ++i) {
    const auto cells = test::csv_cells(lines[i + 1]);
    const auto& r = m.rows[i];
    ASSERT_EQ(cells.size(), 8u) << lines[i + 1];
    EXPECT_EQ(std::stoi(cells[0]), r.layer);
    EXPECT_EQ(cells[1], r.attention);
    EXPECT_EQ(cells[2], r.boundary ? "1" : "0");
    EXPECT_EQ(cells[3], r.in_run ? "1" : "0");
    EXPECT_EQ(cells[4], r.whitened ? "1" : "0");
    EXPECT_EQ(cells[5], r.q_skip ? "1" : "0");
    for (int h = 0; h < 2; ++h)
      EXPECT_TRUE(test::same_double(test::csv_cell(cells[6 + h]), r.cells[h].value));
  }
  EXPECT_EQ(test::csv_cell(test::csv_cells(lines[2])[6]),
            test::run_layer(*snap, 1).attn_heads[0].kl());
  EXPECT_EQ(test::csv_cells(lines[3])[6], "");  // layer 2: n/a
}

TEST(LayerMapModelTiny1m, EveryCellEqualsTheCoreAndTheCliTotals) {
  KVWB_REQUIRE_REAL(path, "tiny1m_wikitext2.kvc.h5");
  const auto snap = test::make_snapshot(
      path, test::config_of({{"boundary", "0"}, {"block_size", 64}, {"q_precond", "capture"}}),
      Selection{3, 1});
  ASSERT_FALSE(snap->capture.synthetic);
  expect_cells_equal_core(*snap, {0, 1, 2, 3});
  const auto m = build_layer_map(*snap, LayerMapMetric::kRelMse, LayerMapStream::kK);
  EXPECT_FALSE(m.synthetic);
  EXPECT_TRUE(row_of(m, 0).boundary);
  EXPECT_FALSE(row_of(m, 1).boundary);
  EXPECT_TRUE(row_of(m, 1).whitened);
  // = `kvwb run --boundary 0 --block-size 64 --q-precond capture` on this capture.
  EXPECT_EQ(m.totals_line.rfind("ratio 1.5443 · ", 0), 0u) << m.totals_line;
}

}  // namespace
}  // namespace kvwb::views
