// The comparison, history and per-layer-table models without Qt (issue #13): a baseline RunEntry
// against the current run (totals and Δ from the core's run_result_to_json, per-layer values, the
// settings that differ, per-layer overrides included), the Δ layer map cell by cell, the per-layer
// error Δ %, the history rows, and the per-layer table of a plan-like configuration with its edits
// (overrides written like `kvwb plan`, dropped when equal to the global stream), override notices
// and undo labels. On the small demo capture (3 layers, 2 kv heads).
#include <gtest/gtest.h>

#include <cmath>

#include "base/errors.h"
#include "sessions/analysis/pareto.h"
#include "tests/views/models/view_model_fixture.h"
#include "views/models/comparison_model.h"
#include "views/models/layer_table_model.h"
#include "views/models/pareto_model.h"

namespace kvwb::views {
namespace {

using test::contains;

/// The demo configuration with K at 2 bits (the "current" run; the demo snapshot is the baseline).
sessions::RunConfig k2_config() {
  sessions::RunConfig c = test::demo_config();
  c.k.params["bit_width"] = "2";
  return c;
}

RunEntryPtr entry_of(const Snapshot& s, uint64_t id, const std::string& label) {
  auto e = std::make_shared<RunEntry>();
  e->id = id;
  e->label = label;
  e->config = s.config;
  e->config_key = sessions::run_config_to_json(*s.config).dump();
  e->run = s.run;
  e->outliers = s.outliers;
  e->selection = s.selection;
  e->finished_ms = 1700000000000;
  return e;
}

/// The k2 snapshot with the demo snapshot pinned as baseline and both in the history.
std::shared_ptr<Snapshot> compared() {
  static const std::shared_ptr<const Snapshot> k2 = test::make_snapshot(
      test::view_demo_capture(), k2_config(), Selection{1, 1}, test::demo_snapshot()->analysis);
  auto s = std::make_shared<Snapshot>(*k2);
  const RunEntryPtr base = entry_of(*test::demo_snapshot(), 1, "open");
  const RunEntryPtr cur = entry_of(*k2, 2, "K 2 bits");
  s->history = {base, cur};
  s->baseline = base;
  s->run_id = 2;
  return s;
}

const CompareTotal& total(const ComparisonModel& m, const std::string& name) {
  for (const auto& t : m.totals)
    if (t.name == name) return t;
  throw std::runtime_error("no total " + name);
}

TEST(ComparisonModel, TotalsAndLayersEqualTheCore) {
  const auto s = compared();
  const ComparisonModel m = build_comparison(*s);
  ASSERT_TRUE(m.has_baseline && m.has_current);
  EXPECT_FALSE(m.same_config);
  const auto jb = sessions::run_result_to_json(*s->baseline->run);
  const auto jc = sessions::run_result_to_json(*s->run);
  const CompareTotal& ratio = total(m, "ratio vs bf16");
  EXPECT_EQ(*ratio.baseline, s->baseline->run->ratio_vs_bf16());
  EXPECT_EQ(*ratio.current, s->run->ratio_vs_bf16());
  EXPECT_EQ(*ratio.delta(), s->run->ratio_vs_bf16() - s->baseline->run->ratio_vs_bf16());
  EXPECT_GT(*ratio.delta(), 0.0);  // fewer K bits: smaller
  EXPECT_EQ(ratio.verdict(), 1);
  // Labels say how the layers are aggregated (pooled sums vs the mean over layers).
  const CompareTotal& k = total(m, "K rel_mse (pooled over layers)");
  EXPECT_EQ(*k.baseline, *sessions::metric_value(jb, "k_rel_mse"));
  EXPECT_EQ(*k.current, *sessions::metric_value(jc, "k_rel_mse"));
  EXPECT_EQ(k.verdict(), -1);  // 2 bits: worse
  const CompareTotal& kl = total(m, "attention KL (mean over layers)");
  EXPECT_EQ(*kl.current, *sessions::metric_value(jc, "attn_kl"));
  EXPECT_TRUE(contains(ratio.delta_text(), "+")) << ratio.delta_text();
  EXPECT_TRUE(contains(ratio.delta_text(), "%")) << ratio.delta_text();
  // Per layer: both runs' numbers, as the RunResult holds them.
  ASSERT_EQ(m.layers.size(), s->run->layers.size());
  for (const CompareLayer& l : m.layers) {
    const auto& b = test::run_layer(*test::demo_snapshot(), l.layer);
    const auto& c = test::run_layer(*s, l.layer);
    EXPECT_EQ(*l.baseline_bytes, double(b.k.bytes + b.v.bytes));
    EXPECT_EQ(*l.current_bytes, double(c.k.bytes + c.v.bytes));
    EXPECT_EQ(*l.current_k, c.k.err.rel_mse());
    EXPECT_EQ(*l.baseline_k, b.k.err.rel_mse());
    EXPECT_EQ(l.current_boundary, c.boundary);
  }
  // The only setting that differs: K bit_width.
  ASSERT_EQ(m.config.size(), 1u);
  EXPECT_EQ(m.config[0].setting, "K · bit_width");
  EXPECT_EQ(m.config[0].baseline, "3");
  EXPECT_EQ(m.config[0].current, "2");
  // CSV: every total and layer row, values round-trip.
  const std::string csv = comparison_csv(m);
  EXPECT_EQ(csv.rfind("section,name,baseline,current,delta\n", 0), 0u);
  EXPECT_TRUE(contains(csv, "\"ratio vs bf16\"")) << csv;
  EXPECT_TRUE(contains(csv, "config,\"K · bit_width\",\"3\",\"2\"")) << csv;
}

TEST(ComparisonModel, MissingSidesPartialAndSameConfiguration) {
  auto none = std::make_shared<Snapshot>(*test::demo_snapshot());
  const ComparisonModel n = build_comparison(*none);
  EXPECT_FALSE(n.has_baseline);
  EXPECT_TRUE(contains(n.note, "No baseline pinned")) << n.note;

  auto pending = std::make_shared<Snapshot>(*none);
  pending->baseline_pending = "sweep s cell #3";
  EXPECT_TRUE(
      contains(build_comparison(*pending).note, "Computing the baseline (sweep s cell #3)"));

  auto partial = compared();
  partial->run_partial = true;
  partial->run_is_current = false;
  const ComparisonModel p = build_comparison(*partial);
  EXPECT_TRUE(contains(p.note, "PARTIAL")) << p.note;
  EXPECT_TRUE(contains(p.current_label, "partial")) << p.current_label;

  auto same = std::make_shared<Snapshot>(*test::demo_snapshot());
  same->baseline = entry_of(*same, 4, "open");
  const ComparisonModel sm = build_comparison(*same);
  EXPECT_TRUE(sm.same_config);
  EXPECT_TRUE(sm.config.empty());
  EXPECT_EQ(*total(sm, "ratio vs bf16").delta(), 0.0);
  EXPECT_EQ(total(sm, "ratio vs bf16").verdict(), 0);
}

TEST(ComparisonModel, ConfigDiffNamesPerLayerOverrides) {
  sessions::RunConfig a = test::demo_config();
  sessions::RunConfig b = a;
  sessions::LayerOverride o;
  o.layer = 1;
  o.k = a.k;
  o.k->params["bit_width"] = "4";
  b.overrides = {o};
  b.boundary = {0, 1};
  const auto rows = config_diff(a, b);
  bool boundary = false, layer = false;
  for (const auto& r : rows) {
    if (r.setting == "boundary") {
      boundary = true;
      EXPECT_EQ(r.baseline, "0");
      EXPECT_EQ(r.current, "0,1");
    }
    if (r.setting == "layer 1 · K · bit_width") {
      layer = true;
      EXPECT_EQ(r.baseline, "3 (global)");
      EXPECT_EQ(r.current, "4");
    }
  }
  EXPECT_TRUE(boundary && layer) << rows.size();
  EXPECT_EQ(rows.size(), 2u);
  EXPECT_TRUE(config_diff(a, a).empty());
}

TEST(ComparisonModel, DeltaLayerMapIsCurrentMinusBaseline) {
  const auto s = compared();
  const auto base_snapshot = snapshot_of_entry(*s, *s->baseline);
  EXPECT_EQ(base_snapshot->run, s->baseline->run);
  EXPECT_EQ(base_snapshot->analysis, s->analysis);
  const LayerMapModel cur = build_layer_map(*s, LayerMapMetric::kRelMse, LayerMapStream::kK);
  const LayerMapModel base =
      build_layer_map(*base_snapshot, LayerMapMetric::kRelMse, LayerMapStream::kK);
  const LayerMapModel d = diff_layer_map(cur, base, "run #1");
  EXPECT_TRUE(d.delta);
  EXPECT_TRUE(contains(d.metric_label, "Δ relative MSE")) << d.metric_label;
  ASSERT_TRUE(d.has_values);
  EXPECT_EQ(d.min, -d.max);  // symmetric around 0
  double amax = 0;
  for (size_t r = 0; r < d.rows.size(); ++r)
    for (size_t h = 0; h < d.rows[r].cells.size(); ++h) {
      const double c = cur.rows[r].cells[h].value, b = base.rows[r].cells[h].value;
      if (!std::isfinite(c) || !std::isfinite(b)) {
        EXPECT_TRUE(std::isnan(d.rows[r].cells[h].value));
        continue;
      }
      EXPECT_EQ(d.rows[r].cells[h].value, c - b);
      EXPECT_TRUE(contains(d.rows[r].cells[h].detail, layer_map_exact(c)));
      amax = std::max(amax, std::fabs(c - b));
    }
  EXPECT_EQ(d.max, amax);
  // Analysis metrics do not depend on the configuration: Δ 0 and a hint that says so.
  const LayerMapModel a =
      diff_layer_map(build_layer_map(*s, LayerMapMetric::kSigmaQCond),
                     build_layer_map(*base_snapshot, LayerMapMetric::kSigmaQCond), "run #1");
  EXPECT_TRUE(contains(a.hint, "does not depend on the configuration")) << a.hint;
  for (const auto& r : a.rows) {
    for (const auto& c : r.cells) {
      if (std::isfinite(c.value)) {
        EXPECT_EQ(c.value, 0.0);
      }
    }
  }
  EXPECT_EQ(delta_cell_text(LayerMapMetric::kBytes, -2048.0), "-2.0 KiB");
  EXPECT_EQ(delta_cell_text(LayerMapMetric::kOutlierRate, 0.0125), "+1.25 pp");
}

TEST(ComparisonModel, LayerErrorDeltaPercent) {
  const auto s = compared();
  const LayerErrorModel cur = build_layer_error_model(*s, LayerErrorMetric::kRelMse);
  const LayerErrorModel base =
      build_layer_error_model(*snapshot_of_entry(*s, *s->baseline), LayerErrorMetric::kRelMse);
  const auto d = layer_error_delta_series(cur, base);
  const PlotSeries* k = test::find_series(d, "K Δ %");
  ASSERT_TRUE(k);
  for (size_t i = 0; i < k->x.size(); ++i) {
    const int layer = static_cast<int>(k->x[i]);
    double c = 0, b = 0;
    for (const auto& r : cur.rows)
      if (r.layer == layer) c = *r.k.value;
    for (const auto& r : base.rows)
      if (r.layer == layer) b = *r.k.value;
    EXPECT_DOUBLE_EQ(k->y[i], 100.0 * (c / b - 1.0));
  }
}

TEST(ComparisonModel, HistoryRowsNewestFirst) {
  const auto s = compared();
  const auto rows = history_rows(*s);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].id, 2u);
  EXPECT_TRUE(rows[0].is_current);
  EXPECT_FALSE(rows[0].is_baseline);
  EXPECT_EQ(rows[1].id, 1u);
  EXPECT_TRUE(rows[1].is_baseline);
  EXPECT_EQ(rows[0].ratio, s->run->ratio_vs_bf16());
  EXPECT_EQ(*rows[0].k_rel_mse,
            *sessions::metric_value(sessions::run_result_to_json(*s->run), "k_rel_mse"));
  EXPECT_TRUE(contains(rows[0].summary, "K kakeya_pca 2 b")) << rows[0].summary;
  EXPECT_TRUE(contains(rows[1].summary, "K kakeya_pca 3 b")) << rows[1].summary;
  EXPECT_TRUE(contains(rows[1].summary, "bf16 layers 0")) << rows[1].summary;
}

// ---- the per-layer table ----------------------------------------------------------------------

sessions::RunConfig plan_like() {
  sessions::RunConfig c = test::demo_config();
  c.layers.clear();  // every layer
  for (int layer : {1, 2}) {
    sessions::LayerOverride o;
    o.layer = layer;
    o.k = c.k;
    o.k->params["bit_width"] = layer == 1 ? "4" : "2";
    if (layer == 2) o.v = sessions::StreamConfig{"q8_0", {}, std::nullopt, ""};
    c.overrides.push_back(o);
  }
  return c;
}

TEST(LayerTableModel, ShowsThePlanPerLayer) {
  const auto s = test::demo_snapshot();
  const LayerTable t = build_layer_table(plan_like(), s->capture, nullptr);
  ASSERT_EQ(t.rows.size(), 3u);
  EXPECT_TRUE(t.q_precond);
  EXPECT_EQ(t.rows[0].k_bits, "3");  // global (spec default)
  EXPECT_FALSE(t.rows[0].k_override);
  EXPECT_TRUE(t.rows[0].boundary);
  EXPECT_EQ(t.rows[1].k_bits, "4");
  EXPECT_TRUE(t.rows[1].k_override);
  EXPECT_FALSE(t.rows[1].v_override);
  EXPECT_EQ(t.rows[1].v_bits, "2");
  EXPECT_EQ(t.rows[2].k_bits, "2");
  EXPECT_EQ(t.rows[2].v_codec, "q8_0");
  EXPECT_EQ(t.rows[2].v_bits, "");  // q8_0 has no bit-width parameter
  EXPECT_EQ(t.k_override_layers, (std::vector<int>{1, 2}));
  EXPECT_EQ(t.v_override_layers, (std::vector<int>{2}));
  EXPECT_EQ(override_notice(t, true),
            "Layers 1,2 override the K stream (per-layer table): the settings here apply to layer "
            "0 only.");
  EXPECT_FALSE(stream_fully_overridden(t, true));
  // Measured columns from a run of the configuration.
  const LayerTable m = build_layer_table(*s->config, s->capture, s->run.get());
  for (const auto& r : m.rows) {
    if (!r.in_run) {
      EXPECT_FALSE(r.ratio);
      continue;
    }
    const auto& l = test::run_layer(*s, r.layer);
    EXPECT_EQ(*r.ratio, double(l.k.bf16_bytes + l.v.bf16_bytes) / double(l.k.bytes + l.v.bytes));
    EXPECT_EQ(*r.q_skip_auto, l.q_skip);
  }
}

TEST(LayerTableModel, EditsWriteOverridesLikeThePlan) {
  const auto s = test::demo_snapshot();
  const sessions::RunConfig base = plan_like();
  // Layer 0 K bits 4: a new override; the run configuration validates.
  sessions::RunConfig e = edit_layer_cell(base, 0, LayerColumn::kKBits, "4");
  LayerTable t = build_layer_table(e, s->capture, nullptr);
  EXPECT_EQ(t.rows[0].k_bits, "4");
  EXPECT_TRUE(t.rows[0].k_override);
  EXPECT_NO_THROW(sessions::run_config_from_json(sessions::run_config_to_json(e), "edited"));
  EXPECT_EQ(layer_changes_text(base, e, s->capture), "layer 0 K bits 4");
  // Back to the global width: the override is dropped ("follows the global stream" again).
  e = edit_layer_cell(e, 0, LayerColumn::kKBits, "3");
  EXPECT_EQ(sessions::run_config_to_json(e), sessions::run_config_to_json(base));
  // Layer 2 V back to kakeya_pca with the global width: its V override is dropped, K stays.
  e = edit_layer_cell(base, 2, LayerColumn::kVCodec, "kakeya_pca");
  e = edit_layer_cell(e, 2, LayerColumn::kVBits, "2");
  t = build_layer_table(e, s->capture, nullptr);
  EXPECT_FALSE(t.rows[2].v_override);
  EXPECT_TRUE(t.rows[2].k_override);
  // Flags.
  e = edit_layer_cell(base, 2, LayerColumn::kBoundary, "true");
  EXPECT_EQ(e.boundary, (std::vector<int>{0, 2}));
  e = edit_layer_cell(e, 0, LayerColumn::kBoundary, "false");
  EXPECT_EQ(e.boundary, (std::vector<int>{2}));
  e = edit_layer_cell(e, 1, LayerColumn::kQSkip, "true");
  EXPECT_EQ(e.q_precond_skip_layers, (std::vector<int>{1}));
  EXPECT_EQ(layer_changes_text(base, e, s->capture),
            "layer 0 compressed, layer 1 Σ_q skip, layer 2 bf16");
  // Refused values name the layer.
  EXPECT_THROW(edit_layer_cell(base, 1, LayerColumn::kKBits, "9"), InvalidArgument);
  EXPECT_THROW(edit_layer_cell(base, 2, LayerColumn::kVBits, "4"), InvalidArgument);  // q8_0
  EXPECT_THROW(edit_layer_cell(base, 1, LayerColumn::kKCodec, "nope"), InvalidArgument);
  EXPECT_EQ(layer_column_choices(LayerColumn::kKBits, "kakeya_pca"),
            (std::vector<std::string>{"1", "2", "3", "4"}));
}

TEST(LayerTableModel, FullyOverriddenStreamAndClearing) {
  const auto s = test::demo_snapshot();
  sessions::RunConfig c = plan_like();
  c = edit_layer_cell(c, 0, LayerColumn::kKBits, "1");
  const LayerTable t = build_layer_table(c, s->capture, nullptr);
  EXPECT_TRUE(stream_fully_overridden(t, true));
  EXPECT_FALSE(stream_fully_overridden(t, false));
  EXPECT_TRUE(contains(override_notice(t, true), "apply to no layer")) << override_notice(t, true);
  const sessions::RunConfig cleared = clear_stream_overrides(c, true);
  const LayerTable u = build_layer_table(cleared, s->capture, nullptr);
  EXPECT_TRUE(u.k_override_layers.empty());
  EXPECT_EQ(u.v_override_layers, (std::vector<int>{2}));  // V untouched
  EXPECT_EQ(override_notice(u, true), "");
}

TEST(ParetoModelLabels, CodecBitsAndVerdict) {
  nlohmann::json cfg = sessions::run_config_to_json(test::demo_config());
  EXPECT_EQ(codec_bits_label(cfg), "K kakeya_pca 3b · V kakeya_pca 2b");
  cfg["v"] = cfg["k"];
  EXPECT_EQ(codec_bits_label(cfg), "kakeya_pca 3b");
  cfg["v"] = nlohmann::json{{"codec", "q8_0"}, {"params", nlohmann::json::object()}};
  EXPECT_EQ(codec_bits_label(cfg), "K kakeya_pca 3b · V q8_0");
}

}  // namespace
}  // namespace kvwb::views
