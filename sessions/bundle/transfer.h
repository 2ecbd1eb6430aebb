#pragma once
// Calibration transfer (docs/bundles.md, "Calibration transfer"): calibrate a configuration on
// capture A (a bundle: Σ_q factors and Lloyd-Max tables), apply it to capture B, and compare with
// the same configuration calibrated on B itself (in-sample) and with no calibration at all. The
// core of `kvwb transfer`; the CLI adds the optional end-to-end columns.
#include <nlohmann/json.hpp>
#include <string>

#include "base/job.h"
#include "sessions/config/calibration_bundle.h"
#include "sessions/config/run_config.h"
#include "sessions/run/runner.h"

namespace kvwb::sessions {

struct TransferOptions {
  /// Folder that keeps the two bundles (`<dir>/calibrated-on-A`, `<dir>/calibrated-on-B`); "" =
  /// a temporary folder removed afterwards. Must not exist or be empty.
  std::string keep_bundles;
  JobControl* job = nullptr;
};

/// One column of the comparison, all measured on capture B.
struct TransferColumn {
  std::string name;  // uncalibrated | in-sample | out-of-sample
  RunConfig config;  // what ran (bundle paths applied)
  RunResult run;
  nlohmann::json calibration;  // provenance (null for uncalibrated)
};

struct TransferResult {
  std::string capture_a, capture_b, sha256_a, sha256_b;
  RunConfig config;  // the configuration as given (q_precond "capture" or none, no table files)
  TransferColumn uncalibrated, in_sample, out_of_sample;
  std::string bundle_a, bundle_b;  // kept bundle folders, or "" when temporary
  CalibrationBundle calibration_a, calibration_b;
};

/// Runs the comparison. `cfg` must calibrate something (q_precond "capture" and/or a kakeya_pca
/// stream) and must not name calibration files itself (q_precond as a file, centroids_file):
/// InvalidArgument otherwise. Throws what export_bundle and run_config throw; a failed
/// layer-stream in any column is an error naming the column.
TransferResult calibration_transfer(const std::string& capture_a, const std::string& capture_b,
                                    const RunConfig& cfg, const TransferOptions& opt = {});

/// Metrics of a column: ratio_vs_bf16, total_bytes, k_rel_mse, v_rel_mse, attn_out_rel_err,
/// attn_kl, attn_top1 (null when absent).
nlohmann::json transfer_metrics_json(const RunResult& r);

/// {"format": "kvwb-transfer", "format_version": 1, "calibrated_on" {file, sha256},
/// "evaluated_on" {file, sha256}, "config", "bundles", "columns": {uncalibrated, in_sample,
/// out_of_sample: {metrics, calibration, config_hash}}, "out_vs_in": {metric: relative change}}.
nlohmann::json transfer_to_json(const TransferResult& t);

}  // namespace kvwb::sessions
