#pragma once
// The Pareto frontier of metrics.md §10: points (R = ratio vs bf16, higher is better; Q = one
// quality-loss metric, lower is better). Exact f64 comparisons, equal (R, Q) points form one
// frontier point represented by the lowest configuration id, n/a or failed points excluded and
// listed, the frontier returned as a staircase in ascending R.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace kvwb::sessions {

/// One evaluated configuration. `valid` = false for n/a or failed metrics (`reason` says which).
struct ParetoPoint {
  int64_t id = 0;         // configuration id (the sweep cell index); the lowest represents duplicates
  std::string label;      // e.g. the cell's options, for display
  double r = 0;           // ratio vs bf16
  double q = 0;           // quality loss
  std::optional<std::pair<double, double>> q_ci;  // confidence interval of q when recorded (end-to-end metrics)
  bool valid = true;
  std::string reason;     // why excluded ("failed: FP16_RANGE ...", "n/a: attn_kl")
};

struct FrontierPoint {
  ParetoPoint rep;                     // representative (lowest id among equal (R, Q))
  std::vector<ParetoPoint> duplicates; // the others with exactly the same (R, Q), ascending id
};

struct ParetoResult {
  std::vector<FrontierPoint> frontier;  // ascending R (then ascending Q)
  std::vector<ParetoPoint> dominated;   // ascending id
  std::vector<ParetoPoint> excluded;    // n/a or failed, ascending id
};

/// `a` dominates `b` (both valid): R_a >= R_b, Q_a <= Q_b, at least one strict.
bool dominates(const ParetoPoint& a, const ParetoPoint& b);

/// The frontier of `points` (any order).
ParetoResult pareto_frontier(std::vector<ParetoPoint> points);

/// Whether any valid point carries an interval (q_ci).
bool has_intervals(const ParetoResult& p);

/// Ids (ascending) of dominated points that no other point beats beyond the intervals: no point f
/// has R_f >= R_p and upper bound of Q_f < lower bound of Q_p (a point without an interval counts
/// as [Q, Q]). These could be on the frontier given the measurement noise. Empty without intervals.
std::vector<int64_t> possibly_on_frontier(const ParetoResult& p);

/// Quality metric names accepted by metric_value besides dotted paths under `totals`.
const std::vector<std::string>& pareto_metric_names();

/// Reads metric `name` from a run result JSON (decisions.md #8): k_rel_mse, v_rel_mse,
/// k_whitened_mse, attn_kl, attn_out_rel_err, one_minus_top1 (1 − attn_top1), or a dotted path
/// under "totals" (e.g. "k.snr_db", "attention.attn_out_rel_err_pooled"; a leading "totals." is
/// accepted). Returns nullopt when the value is absent, null or not a number (n/a).
std::optional<double> metric_value(const nlohmann::json& result, const std::string& name);

/// The confidence interval recorded next to metric `name` (a dotted path under "totals" whose
/// sibling "<leaf>_ci" is [lo, hi], e.g. e2e.kl → totals.e2e.kl_ci), or nullopt when there is none
/// (proxy metrics are deterministic and carry no interval).
std::optional<std::pair<double, double>> metric_interval(const nlohmann::json& result, const std::string& name);

/// Points from result-store records (sessions/result_store.h): id = record "cell", R =
/// result.ratio_vs_bf16, Q = metric_value(result, metric), q_ci = metric_interval(result, metric). Failed cells and results with a failed
/// layer-stream are excluded as failed; absent metrics as n/a. Throws InvalidArgument for a
/// metric name that is neither known nor a dotted path.
std::vector<ParetoPoint> pareto_points_from_records(const std::vector<nlohmann::json>& records,
                                                    const std::string& metric);

/// JSON and CSV renderings of a frontier (metric named in both).
nlohmann::json pareto_to_json(const ParetoResult& p, const std::string& metric);
std::string pareto_to_csv(const ParetoResult& p, const std::string& metric);

}  // namespace kvwb::sessions
