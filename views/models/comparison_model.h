#pragma once
// Pure model of the comparison with the pinned baseline and of the run history (no widgets). The
// baseline and every history entry are RunEntry snapshots the controller already holds
// (views/models/snapshot.h): the comparison picks and subtracts numbers the core computed
// (sessions::run_result_to_json totals, RunResult per layer), it never runs anything. Every other
// view shows the baseline by building its own model from snapshot_of_entry(snapshot, baseline).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "views/models/chart_series.h"
#include "views/models/layer_error_model.h"
#include "views/models/layer_map_model.h"
#include "views/models/snapshot.h"

namespace kvwb::views {

/// A snapshot that shows `entry` as its run: the capture, analysis and selection of `s`, the
/// entry's configuration, run and outlier rates (no sweeps, no history). Models built from it draw
/// the baseline exactly as they draw the current run. The entry's selection is used when
/// `use_entry_selection` (the spectrum overlay of the pinned (layer, head)).
std::shared_ptr<const Snapshot> snapshot_of_entry(const Snapshot& s, const RunEntry& entry,
                                                  bool use_entry_selection = false);

/// Name of the bit-width parameter of `codec` ("bit_width" or "bits", from codec::codec_params),
/// "" when the codec has none (q8_0, fp8, bf16).
std::string bits_param(const std::string& codec);

/// One line describing a configuration: "K kakeya_pca 3 b · V kakeya_pca 3 b · block 256 ·
/// bf16 layers 0,3 · 4 per-layer overrides · Σ_q capture".
std::string config_summary(const sessions::RunConfig& c);

/// One setting that differs between two configurations. Per-layer rows ("layer 3 · K · bit_width")
/// appear for layers where either side overrides the stream; a side without an override shows the
/// global value followed by " (global)".
struct ConfigDiffRow {
  std::string setting;
  std::string baseline, current;
};
std::vector<ConfigDiffRow> config_diff(const sessions::RunConfig& baseline,
                                       const sessions::RunConfig& current);

/// One total of the summary table: baseline, current and Δ = current − baseline.
struct CompareTotal {
  std::string name;    // "ratio vs bf16", "K rel_mse (pooled over layers)", …
  std::string format;  // printf format of the values ("%.4f", "%.4g", "%.0f")
  std::optional<double> baseline, current;
  bool higher_is_better = false;
  std::optional<double> delta() const;
  /// "+0.1234 (+4.7 %)", "n/a"; the relative part only when the baseline is non-zero.
  std::string delta_text() const;
  /// +1 when the current run is better, −1 worse, 0 equal or not comparable.
  int verdict() const;
};

/// Per layer: both runs side by side (values absent when the run did not cover the layer or the
/// stream failed).
struct CompareLayer {
  int layer = 0;
  bool baseline_boundary = false, current_boundary = false;
  std::optional<double> baseline_bytes, current_bytes;  // K + V container bytes of the layer
  std::optional<double> baseline_k, current_k;          // K relative MSE
  std::optional<double> baseline_v, current_v;          // V relative MSE
  std::optional<double> baseline_kl, current_kl;        // attention KL, both streams compressed
};

struct ComparisonModel {
  bool has_baseline = false;
  bool has_current = false;
  std::string baseline_label;  // "run #3 · Keep layer 1 bf16 (boundary) · 14:02:11"
  std::string current_label;
  std::string note;  // why a side is missing, partial, stale, same configuration
  bool same_config = false;
  std::vector<CompareTotal> totals;
  std::vector<ConfigDiffRow> config;
  std::vector<CompareLayer> layers;  // union of both runs' layers, ascending
};

/// The comparison of `s.run` with `s.baseline` (either may be missing: the model says so).
ComparisonModel build_comparison(const Snapshot& s);

/// CSV of the comparison: the totals ("total,name,baseline,current,delta"), then the per-layer
/// rows ("layer,L,…") and the configuration differences; f64 as %.17g.
std::string comparison_csv(const ComparisonModel& m);

/// One row of the run history (newest first).
struct HistoryRow {
  uint64_t id = 0;
  std::string time;     // "14:02:11" (local time)
  std::string label;    // what produced the run
  std::string summary;  // config_summary
  double ratio = 0;
  std::optional<double> k_rel_mse, v_rel_mse, attn_kl;
  bool is_current = false;   // the snapshot's run
  bool is_baseline = false;  // the pinned baseline
  bool has_residuals = true;
};
std::vector<HistoryRow> history_rows(const Snapshot& s);

/// The layer map of Δ = current − baseline, cell by cell, for the run metrics (relative MSE,
/// attention KL, bytes, outlier rate). `current` and `baseline` are build_layer_map of the current
/// snapshot and of snapshot_of_entry(…, baseline) with the same metric and stream. The colour
/// scale is symmetric around 0 (diverging). Analysis metrics do not depend on the configuration:
/// their Δ is 0 and the hint says so.
LayerMapModel diff_layer_map(const LayerMapModel& current, const LayerMapModel& baseline,
                             const std::string& baseline_label);

/// Per-layer relative change of a layer-error chart against the baseline's (same metric):
/// "K Δ %", "V Δ %", "K+V Δ %" with x = layer, y = 100 · (current / baseline − 1) for the layers
/// where both have a positive value.
std::vector<PlotSeries> layer_error_delta_series(const LayerErrorModel& current,
                                                 const LayerErrorModel& baseline);

/// Text of a Δ value in a layer-map cell ("+1.2e-03", "−37", "0").
std::string delta_cell_text(LayerMapMetric metric, double delta);

}  // namespace kvwb::views
