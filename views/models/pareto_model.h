#pragma once
// Pure model of the Pareto view (no widgets): the points of the active sweep's result-store
// records as (R = ratio vs bf16, Q = a quality metric), the frontier from the core
// (sessions::pareto_points_from_records + sessions::pareto_frontier, metrics.md §10), the
// excluded cells, the codec family of each point and the point of the current configuration.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sessions/analysis/pareto.h"
#include "views/models/snapshot.h"

namespace kvwb::views {

/// One plotted (valid) cell of the sweep.
struct ParetoPlotPoint {
  int64_t id = 0;      // configuration id (record "cell")
  std::string label;   // the cell's own options, "key=value key=value …" (sorted keys)
  std::string codec;   // "kakeya_pca" when K and V share a codec, else "K codec / V codec"
  std::string family;  // legend group, e.g. "Kakeya-PCA", "ggml quants", "Kakeya-PCA / ggml quants"
  double r = 0;        // ratio vs bf16 (dimensionless, higher is better)
  double q = 0;        // the chosen metric (lower is better)
  bool has_ci = false;         // q_lo/q_hi hold the metric's recorded 95 % interval (end-to-end metrics)
  double q_lo = 0, q_hi = 0;
  std::string verdict;         // end-to-end interval verdict (totals.e2e.verdict), "" without e2e
  int passages = 0;            // end-to-end passages behind the interval, 0 without e2e
  bool on_frontier = false;   // representative of a frontier point
  int64_t duplicate_of = -1;  // id of the frontier representative with identical (R, Q), else -1
  uint64_t total_bytes = 0;   // result.total_bytes (compressed bytes of the run)
  std::string config_hash;    // record config_hash (sessions::run_config_hash of its configuration)
  nlohmann::json config;      // result.config (canonical run configuration JSON)
};

struct ParetoModel {
  std::string sweep_name;               // "" when there is no sweep
  std::string metric;                   // metric the points were built with ("" = none)
  std::vector<std::string> metrics;     // metrics present in at least one ok record
  std::vector<ParetoPlotPoint> points;  // valid points, ascending id
  sessions::ParetoResult result;        // the core's frontier of the same points
  std::vector<std::string> families;    // legend order (first appearance by id)
  std::vector<std::string> excluded;    // "#id reason" for failed / n/a cells
  int current = -1;                     // index into `points` of the current configuration, or -1
  bool log_y = false;                   // all Q > 0 and max/min >= 100
  bool has_ci = false;                  // some point has an interval (error bars)
  std::vector<int64_t> possibly_on_frontier;  // dominated ids within the intervals of their dominators
  size_t records = 0;                   // records in the sweep
};

/// Display name of a codec's family ("turbo3" -> "TurboQuant", "q4_0" -> "ggml quants", …).
std::string codec_family(const std::string& codec);

/// Metrics offered for `records`: sessions::pareto_metric_names() plus useful dotted paths under
/// `totals` (attention.attn_out_rel_err_pooled, k./v. attention errors, the end-to-end losses
/// e2e.delta_ppl, e2e.abs_delta_ppl, e2e.kl, e2e.one_minus_top1), each only when some ok record
/// has a value for it (sessions::metric_value).
std::vector<std::string> available_metrics(const std::vector<nlohmann::json>& records);

/// Builds the model of the snapshot's active sweep for `metric`. An empty or unavailable metric
/// picks e2e.kl when the sweep has end-to-end results, else attn_out_rel_err when present, else
/// the first of available_metrics. Never throws for
/// damaged records: they end up in `excluded`.
ParetoModel build_pareto_model(const Snapshot& snapshot, const std::string& metric);

/// Every plotted point as CSV: id,label,codec,family,ratio_vs_bf16,<metric>,on_frontier,
/// duplicate_of,total_bytes, then <metric>_lo,<metric>_hi when the metric has intervals (f64
/// printed with 17 significant digits).
std::string pareto_model_csv(const ParetoModel& m);

}  // namespace kvwb::views
