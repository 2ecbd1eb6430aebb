#pragma once
// Model of the residual-distribution chart (no widgets). Main panel: histogram (density) of the
// scaled post-WHT residuals s of one layer-stream of the run (codec-kakeya.md §5.10: unit second
// moment), the Lloyd-Max centroids of the stream's bit width (§5.12), the outlier threshold ±T of
// its configuration (§5.11) and the N(0,1) density for reference. Side panel, per layer: pooled
// excess kurtosis of K pre-RoPE and V (analysis, mean over heads) and the outlier rate |s| > T at
// one of sessions::kOutlierThresholds (snapshot.outliers). Numbers come from kvwb::sessions.
#include <optional>
#include <string>
#include <vector>

#include "sessions/analysis/distribution.h"
#include "views/models/chart_series.h"
#include "views/models/snapshot.h"

namespace kvwb::views {

/// Histogram binning of the view: kDistributionBins bins over ±kDistributionRange (units of s).
inline constexpr int kDistributionBins = 96;
inline constexpr double kDistributionRange = 4.0;

struct DistributionOutlierRow {
  int layer = 0;
  std::optional<double> k_rate, v_rate;  // fraction of coordinates with |s| > T
};

struct DistributionModel {
  std::string title;        // "Residual distribution — <file> · layer L · K[ · SYNTHETIC]"
  std::string note;         // empty state / why there is no histogram
  std::vector<int> layers;  // layers of the run (selector)
  int layer = -1;
  bool k_stream = true;
  std::string codec;  // codec that coded the stream ("" = no run)
  std::optional<sessions::ResidualHistogram> histogram;  // kakeya_pca streams with residuals
  std::vector<double> normal_x, normal_pdf;              // N(0,1) reference curve
  int threshold_index = 1;                               // into sessions::kOutlierThresholds
  std::vector<sessions::LayerKurtosis> kurtosis;         // from the analysis (may be empty)
  std::vector<DistributionOutlierRow> outliers;          // from snapshot.outliers (may be empty)
  double gaussian_rate = 0;                              // 2·(1 − Φ(T)) at the chosen T

  /// Main-panel series: "residual density" (x = bin centre, y = density), "N(0,1) density",
  /// "Lloyd-Max centroids (b=B)" (x = centroid, y empty: vertical lines), "outlier threshold ±T"
  /// (x = ±T, y empty) when the configuration stores outliers.
  std::vector<PlotSeries> main_series() const;
  /// Side-panel series (x = layer): "K pre-RoPE kurtosis", "V kurtosis" (excess, mean over
  /// heads), "K outlier rate |s|>T", "V outlier rate |s|>T", "Gaussian rate |s|>T".
  std::vector<PlotSeries> side_series() const;
  bool has_histogram() const { return histogram && histogram->values > 0; }
  bool has_side() const { return !kurtosis.empty() || !outliers.empty(); }
  /// Nothing to draw: neither the histogram nor the per-layer panel.
  bool empty() const { return !has_histogram() && !has_side(); }
};

/// Builds the model for `layer` (-1 or not in the run = the first layer of the run) and the K or V
/// stream; `threshold_index` picks T for the outlier rates. The histogram is sessions::
/// residual_histogram of the stream with the stream's configuration from the run's canonical
/// configuration; a non-Kakeya stream, a failed stream or one without coded rows gets a note.
DistributionModel build_distribution_model(const Snapshot& snapshot, int layer, bool k_stream,
                                           int threshold_index);

/// CSV of both panels' plotted series (header "series,x,y").
std::string distribution_csv(const DistributionModel& m);

}  // namespace kvwb::views
