#pragma once
// Pure model of the layer map (no widgets): a grid of cells [capture layer rows × kv-head
// columns] holding one metric picked out of a Snapshot (values the core computed: the analysis,
// the run, the outlier rates), with the colour-scale range, per-layer flags (boundary, whitened,
// Σ_q skip, covered by the run) and the totals line of the current run. Built in
// LayerMapView::set_snapshot, drawn by the ImGui canvas, checked by tests against the core.
#include <string>
#include <vector>

#include "views/models/snapshot.h"

namespace kvwb::views {

/// The metric a layer map shows (issue #5).
enum class LayerMapMetric {
  kSigmaQCond,   // analysis heads[h].sigma_q->cond_reg (K§8; per head; log scale)
  kDEff,         // d_eff at variance ratio 0.95 of the chosen tensor's spectrum (per head)
  kKurtosis,     // pooled excess kurtosis of the chosen tensor (metrics.md §6.1; per head)
  kOutlierRate,  // Kakeya scaled-residual outlier rate at T = 2.5 (metrics.md §6.2; per layer)
  kRelMse,       // run relative MSE of the stream, per kv head
  kAttnKl,       // run attention KL (both streams compressed), per kv head
  kBytes,        // run container bytes of the stream(s), per layer
};

/// The tensor / stream a metric is read from. Which ones apply: layer_map_streams(metric).
enum class LayerMapStream {
  kNone,       // the metric has no stream choice (Σ_q cond, attention KL)
  kK,          // K (pre-RoPE K for analysis metrics; the K stream for run metrics)
  kKWhitened,  // whitened K = K_pre · L (analysis metrics, layers with Σ_q)
  kV,          // V
  kBoth,       // K + V (bytes)
};

/// Every metric, in menu order.
const std::vector<LayerMapMetric>& layer_map_metrics();
/// Menu text of a metric ("Σ_q condition", "d_eff @ 0.95", …).
std::string layer_map_metric_name(LayerMapMetric m);
/// Streams a metric offers (first = default); {kNone} when it has no choice.
std::vector<LayerMapStream> layer_map_streams(LayerMapMetric m);
/// Menu text of a stream ("K pre-RoPE", "whitened K", "V", "K+V"; "" for kNone).
std::string layer_map_stream_name(LayerMapMetric m, LayerMapStream s);

/// Threshold T of the outlier-rate metric (one of sessions::kOutlierThresholds) and its index.
inline constexpr double kLayerMapOutlierT = 2.5;
inline constexpr size_t kLayerMapOutlierIndex = 2;

struct LayerMapCell {
  double value = 0;    // the metric (f64 as the core has it); NaN = n/a
  std::string text;    // short text drawn in the cell ("1.23e-02", "37", "n/a")
  std::string why_na;  // reason when value is NaN ("no Σ_q (no q_pre)", "layer not in the run")
  std::string detail;  // an extra tooltip line (Δ maps: "current … · baseline …")
};

struct LayerMapRow {
  int layer = 0;
  std::string attention = "full";  // "full" | "sliding"
  bool has_q = false;
  bool boundary = false;      // in config->boundary (both streams bf16)
  bool run_boundary = false;  // the run's values of this layer are bf16 (= boundary once rerun)
  bool in_run = false;        // the run covered this layer
  bool whitened = false;      // run: Q-preconditioning applied to K
  bool q_skip = false;        // run or analysis: Σ_q skip rule excluded it
  std::string status;         // one line: "boundary (bf16) · whitened K · …" ("" when nothing)
  std::vector<LayerMapCell> cells;  // one per kv head
};

struct LayerMapModel {
  LayerMapMetric metric = LayerMapMetric::kSigmaQCond;
  LayerMapStream stream = LayerMapStream::kNone;
  std::string metric_label;  // "d_eff @ 0.95 — V"
  std::string unit_note;   // what one value means and its scope ("per layer: every head shows…")
  bool per_layer = false;  // the value is per layer (every cell of a row shows it)
  std::string hint;        // non-empty: nothing to draw, show this instead of the grid
  std::string capture_label;  // file name and model name
  bool synthetic = false;     // the demo capture (SYNTHETIC)
  int num_kv_heads = 0;
  std::vector<LayerMapRow> rows;  // capture layers, ascending
  // Colour scale over the finite cells (log10 when log_scale; then min > 0). For run metrics the
  // boundary rows are left out of [min, max] (their bf16 values would squash the scale).
  bool has_values = false;
  double min = 0, max = 0;
  bool log_scale = false;
  std::string scale_note;  // how the range was chosen, when not over every cell
  /// Δ map (diff_layer_map): values are current − baseline, the scale is symmetric around 0 and
  /// drawn with a diverging palette.
  bool delta = false;
  // Totals of the current run (CLI formats): "ratio 2.8614", bytes, quality.
  bool has_run = false;
  bool run_is_current = false;
  bool run_partial = false;    // the run was cancelled: its totals cover only finished layers
  bool run_in_flight = false;  // a rerun of the edited configuration is running
  std::string baseline_line;   // "Baseline run #3: ratio 2.6126 · Δratio +0.0140" ("" = none)
  double ratio = 0;         // run->ratio_vs_bf16()
  std::string totals_line;  // "ratio 1.5443 · 5432000 bytes (bf16 8388608) · …"
  /// "K rel_mse (pooled over layers) 9.5e-02 · V rel_mse (pooled …) … · attn KL (mean over
  /// layers) …": each value says how it aggregates the layers.
  std::string quality_line;
  Selection selection;       // from the snapshot
  uint64_t generation = 0;
};

/// Builds the grid of `metric` (stream `stream`; kNone or one not offered = the metric's default)
/// from values already in `snapshot`. Never computes a metric.
LayerMapModel build_layer_map(const Snapshot& snapshot, LayerMapMetric metric,
                              LayerMapStream stream = LayerMapStream::kNone);

/// Full-precision text of a value ("%.17g"; "n/a" for NaN).
std::string layer_map_exact(double v);

/// The grid as CSV: header "layer,attention,boundary,in_run,whitened,q_skip,<metric> kv_head 0,…",
/// one row per layer, values "%.17g", empty for n/a.
std::string layer_map_csv(const LayerMapModel& m);

}  // namespace kvwb::views
