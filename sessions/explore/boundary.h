#pragma once
// Boundary-layer recommendation and the budgeted plan (docs/sweeps.md). Both measure with the real
// runner (exact container bytes, metrics.md §3 attention metrics) and confirm what they propose by
// running it.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sessions/config/run_config.h"
#include "sessions/run/runner.h"

namespace kvwb::sessions {

/// One layer's attention-aware sensitivity under a configuration (no boundary layers).
struct LayerSensitivity {
  int layer = 0;
  bool has_attn = false;
  double attn_kl = 0, attn_out_rel_err = 0, attn_top1 = 0;  // both streams compressed (§3.4 per layer)
  double k_rel_mse = 0, v_rel_mse = 0;
  double score = 0;        // ranking score: attn_out_rel_err, or k_rel_mse + v_rel_mse without q_pre
  bool skip_rule = false;  // the Σ_q skip rule (K§8.4, decisions #4) skips this layer
  double skip_ratio = 0;   // m_l / median (0 when the capture has no Σ_q for the layer)
  bool failed = false;     // a stream failed under the configuration (ranked first)
};

/// A measured boundary set.
struct BoundaryProposal {
  std::vector<int> boundary;  // ascending
  double ratio = 0;           // measured model-level ratio vs bf16
  uint64_t total_bytes = 0;
  double attn_kl = NAN, attn_out_rel_err = NAN, attn_top1 = NAN, k_rel_mse = NAN, v_rel_mse = NAN;
  bool failed = false;
};

struct BoundaryRecommendation {
  std::string score_metric;               // "attn_out_rel_err" or "k_rel_mse+v_rel_mse"
  std::vector<LayerSensitivity> ranking;  // most sensitive first
  BoundaryProposal baseline;              // no boundary layers
  std::vector<BoundaryProposal> proposals;  // sizes 1..N, each the previous set plus the next layer
  std::vector<std::string> notes;
};

/// Measures each run layer's sensitivity under `cfg` with its boundary cleared (one run), marks
/// the layers the Σ_q skip rule skips (Σ_q from the capture's q_pre, or cfg.q_precond's file),
/// ranks layers (failed streams first, then skip-rule layers, then descending score; ties by
/// layer), and runs the greedy boundary sets of sizes 1..min(max_layers, layers in the run).
/// Throws InvalidArgument for max_layers < 1; Cancelled via `job`.
BoundaryRecommendation recommend_boundary(const std::string& capture_path, const RunConfig& cfg, int max_layers,
                                          JobControl* job = nullptr);
nlohmann::json boundary_recommendation_to_json(const BoundaryRecommendation& r);

struct PlanOptions {
  double target_ratio = 3.0;                     // model-level ratio vs bf16 to reach (> 1)
  std::string metric = "attn_out_rel_err";       // attn_out_rel_err | attn_kl | rel_mse
  bool allow_boundary = true;                    // may keep a layer at bf16
  /// One bit width per stream for every non-boundary layer (bundle-ready: the plan's
  /// configuration carries the widths in its run-level streams, without per-layer overrides, and
  /// exports as a version 1 bundle, bundle-format.md §10). Only the boundary set varies per layer.
  bool uniform_bits = false;
};

/// One layer's choice in a plan.
struct PlanLayer {
  int layer = 0;
  bool boundary = false;
  std::string k_bits, v_bits;  // chosen bit widths ("" when the codec has no bit-width parameter)
  uint64_t bytes = 0;          // measured bytes of both streams for this choice
  double k_err = 0, v_err = 0; // measured stream-only error (the plan's objective terms)
};

struct PlanResult {
  double target_ratio = 0;
  std::string metric;
  std::string k_param, v_param;      // the bit-width parameter varied per stream ("" = fixed)
  std::vector<std::string> k_options, v_options;
  std::vector<PlanLayer> layers;
  RunConfig config;                  // the plan as a run configuration (per-layer overrides,
                                     // or none with uniform_bits)
  bool uniform_bits = false;         // planned with PlanOptions::uniform_bits
  uint64_t bf16_bytes = 0;
  uint64_t promised_bytes = 0;
  double promised_ratio = 0;
  double promised_error = 0;         // Σ over layers and streams of the stream-only error
  uint64_t measured_bytes = 0;
  double measured_ratio = 0;
  double measured_error = 0;         // the same sum from the confirming run
  nlohmann::json measured_totals;    // totals of the confirming run (joint attention metrics)
  size_t measurement_runs = 0;
  std::vector<std::string> notes;
};

/// Chooses per-layer bit widths of the K and V codecs of `base` (their "bit_width" or "bits"
/// parameter over its valid range) and boundary layers so that the summed stream-only error
/// (per layer and stream, the metric with only that stream compressed) is minimal subject to
/// ratio vs bf16 >= target. Measures every (layer, stream, width) once (one run per width, all
/// layers, plus one all-boundary run), solves the multiple-choice knapsack exactly by a
/// non-dominated (bytes, error) frontier over layers, then runs the plan and reports promised vs
/// measured. With opt.uniform_bits the knapsack runs once per (K width, V width) pair with only
/// that pair or bf16 per layer, and the best pair wins. base.boundary layers stay boundary. Throws InvalidArgument when base has per-layer
/// overrides or the target is unreachable (naming the highest reachable ratio); Cancelled via job.
PlanResult plan_budget(const std::string& capture_path, const RunConfig& base, const PlanOptions& opt,
                       JobControl* job = nullptr);
nlohmann::json plan_result_to_json(const PlanResult& p);

}  // namespace kvwb::sessions
