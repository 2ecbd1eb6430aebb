#pragma once
// Residual distribution of a Kakeya stream (codec-kakeya.md §5.10–§5.12, metrics.md §6): the
// histogram of the scaled post-WHT residuals s a run collected (RunOptions::collect_residuals),
// the Lloyd-Max centroid table of the stream's bit width in the same scaled domain and the outlier
// threshold T of the stream's configuration; and per-layer summaries of the analysis that the
// distribution view plots next to it. No Qt here: the GUI only draws these numbers.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sessions/analysis/analysis.h"
#include "sessions/run/runner.h"

namespace kvwb::sessions {

/// Settings of one stream of one layer in a canonical run configuration (RunResult::config,
/// docs/run-config.md): the layer's override of that stream when there is one, else the run-level
/// "k" / "v" object ({codec, params, k_domain?, centroids_file?}). Boundary layers and turbo
/// policies are not applied (the StreamResult's `codec` says what actually ran). Throws
/// InvalidArgument when the configuration has no such stream object.
nlohmann::json stream_config_for_layer(const nlohmann::json& run_config, int layer, bool k_stream);

/// Histogram of the scaled residuals s of one layer-stream over [−range, range].
struct ResidualHistogram {
  std::vector<double> edges;      // bins + 1 ascending bin edges, in units of s (unit variance)
  std::vector<uint64_t> counts;   // per bin: values with edges[i] <= s < edges[i+1] (last closed)
  std::vector<double> density;    // counts[i] / (values · bin width): comparable to the N(0,1) pdf
  uint64_t values = 0;            // all collected coordinates (in range or not)
  uint64_t below = 0, above = 0;  // coordinates with s < −range / s > range
  unsigned bit_width = 0;         // b of the stream (kakeya_pca bit_width)
  std::vector<double> centroids;  // the 2^b Lloyd-Max centroids (scaled domain), ascending
  std::string centroid_source;    // "gaussian" or the calibrated table's file (centroids_file)
  std::optional<double> outlier_threshold;  // T (|s| > T stored exactly); none = outliers off
};

/// Bins `stream.scaled_residuals` into `bins` equal bins over [−range, range] and reads b, the
/// centroid table (Gaussian, or the f32 file named by centroids_file, validated) and T from
/// `stream_config` (see stream_config_for_layer). Throws InvalidArgument when the stream was not
/// coded by kakeya_pca, bins < 1 or range is not finite and > 0; IoError / FormatError for a bad
/// centroid file. An empty residual sample (all rows in the hot tail) gives zero counts.
ResidualHistogram residual_histogram(const StreamResult& stream,
                                     const nlohmann::json& stream_config, int bins, double range);

/// Density of N(0, 1) at x: exp(−x²/2)/√(2π).
double standard_normal_pdf(double x);

/// Pooled excess kurtosis (metrics.md §6.1) of one layer's tensors as captured, mean over kv heads.
struct LayerKurtosis {
  int layer = 0;
  double k_pre = 0;  // mean over heads of HeadAnalysis::k_pre.kurtosis.pooled (NaN heads ignored)
  double v = 0;      // same for V; NaN when every head is n/a
};

/// One entry per analysed layer, in the analysis order.
std::vector<LayerKurtosis> layer_kurtosis(const AnalysisResult& analysis);

}  // namespace kvwb::sessions
