#pragma once
// Model of the per-layer error chart (no widgets): for every layer of the run, the K and V error
// of the selected metric (relative MSE Σ‖e‖²/Σ‖x‖², or attention output relative error / KL with
// only that stream compressed, plus both compressed), the boundary (bf16) layers, failed streams
// and the Σ_q state (whitened / skip rule) — values of sessions::RunResult, only picked here.
#include <optional>
#include <string>
#include <vector>

#include "views/models/chart_series.h"
#include "views/models/snapshot.h"

namespace kvwb::views {

enum class LayerErrorMetric { kRelMse, kAttnOutRelErr, kAttnKl };

/// Axis / combo text: "relative MSE", "attention output rel. error", "attention KL (nats)".
std::string layer_error_metric_name(LayerErrorMetric m);

struct LayerErrorStream {
  std::string codec;
  bool failed = false;
  std::string error_code;       // when failed
  std::optional<double> value;  // the metric (absent when failed or not measured)
};

struct LayerErrorRow {
  int layer = 0;
  bool boundary = false;  // both streams bf16
  bool whitened = false;  // Q-preconditioning applied to K
  bool q_skip = false;    // Σ_q skip rule kept it unwhitened
  LayerErrorStream k, v;
  std::optional<double> both;  // attention metrics with both streams compressed
};

struct LayerErrorModel {
  std::string title;  // "Per-layer error — <file> · all layers[ · SYNTHETIC]"
  std::string note;   // empty state / hints
  LayerErrorMetric metric = LayerErrorMetric::kRelMse;
  std::vector<LayerErrorRow> rows;  // ascending layer

  /// Plotted series (x = layer): "K <metric>", "V <metric>" (streams with a value), for attention
  /// metrics "K+V <metric>"; "boundary (bf16)" (x = boundary layer, y empty), "K failed" / "V
  /// failed" (x = layer, y empty), "K whitened (Σ_q)" / "Σ_q skip rule" (x = layer, y empty).
  std::vector<PlotSeries> series() const;
  bool empty() const;
};

LayerErrorModel build_layer_error_model(const Snapshot& snapshot, LayerErrorMetric metric);

/// CSV of the plotted series (header "series,layer,value").
std::string layer_error_csv(const LayerErrorModel& m);

}  // namespace kvwb::views
