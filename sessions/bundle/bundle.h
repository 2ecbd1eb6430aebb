#pragma once
// Calibration bundles (bundle-format.md): export of a chosen configuration as a deployable
// folder (Σ_q factors, centroid tables, codec_config.json, deploy.env, MANIFEST.json) and the
// validator behind `kvwb bundle-check`, which re-checks any bundle, including the reference
// implementation's artefacts.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sessions/config/run_config.h"
#include "sessions/run/runner.h"

namespace kvwb::sessions {

/// Highest bundle_format_version this tool writes and reads; readers refuse a higher value. An
/// export writes 1 when every table stream has one bit width (byte-for-byte the version 1 layout)
/// and 2 when a kakeya_pca stream has per-layer bit widths (bundle-format.md §10).
inline constexpr int kBundleFormatVersion = 2;
/// Round-trip bar of bundle-format.md §7.1 (fwd_err, rev_err, factor_err_rel).
inline constexpr double kBundleRoundTripBar = 2e-5;
/// Tool name and version written to MANIFEST.json and deploy.env.
inline constexpr const char* kBundleToolName = "kv-workbench";
inline constexpr const char* kBundleToolVersion = "0.1.0";

struct BundleExportOptions {
  /// Replace an existing non-empty destination (old folder renamed away, new renamed in, old
  /// deleted). Without it an existing non-empty destination is "bundle folder exists".
  bool force = false;
  /// Calibrate the Lloyd-Max table of each kakeya_pca stream that has no centroids_file on the
  /// capture (§4.2); when false such streams get the Gaussian table.
  bool calibrate_centroids = true;
  /// Absolute folder written into deploy.env paths instead of the bundle's final location.
  std::string deploy_root;
  /// selection.run_id / selection.criterion of codec_config.json.
  std::string run_id;
  std::string criterion = "user choice";
  JobControl* job = nullptr;
};

/// One numerical round-trip check of a (layer, kv head) pair (§7.1).
struct RoundTripPair {
  int layer = 0, kv_head = 0;
  double fwd_err = 0, rev_err = 0, factor_err_rel = 0;
};

struct BundleExportResult {
  std::string out_dir;                 // final folder
  int format_version = 1;              // bundle_format_version written (1 or 2)
  std::vector<std::string> files;      // file names written (MANIFEST.json included), sorted
  std::vector<RoundTripPair> roundtrip;
  bool roundtrip_pass = true;
  std::vector<std::string> deploy_left_out;  // settings deploy.env could not express (decisions #10)
  std::vector<std::string> deploy_issues;    // deploy_compatibility issues (§5.2)
  std::vector<std::string> warnings;
  nlohmann::ordered_json manifest;
  RunResult run;                       // the measurement run of the configuration
};

/// Exports the bundle of `cfg` evaluated on `capture_path` into `out_dir`, atomically (§8): the
/// files are built in `<parent>/.<name>.tmp-<hex>`, checked, checksummed, then renamed into place.
/// Per-layer bit widths of a kakeya_pca stream give a version 2 bundle (§10): one table per
/// (stream, bit width) in use, each calibrated on exactly the layers of that width, and a
/// deploy_compatibility issue naming the layers (the reference plugin reads one table per stream).
/// Throws (and leaves no partial folder) when any step fails: InvalidArgument for configurations
/// that cannot be bundled or an existing destination without `force`, FormatError when a round-trip or file check fails, plus the
/// errors of the runner and the calibrators.
BundleExportResult export_bundle(const std::string& capture_path, const RunConfig& cfg, const std::string& out_dir,
                                 const BundleExportOptions& options = {});

struct BundleCheckOptions {
  /// Treat the folder as a partial (reference) artefact: missing files of §1 are warnings
  /// instead of errors; what is present is validated as strictly as in a full bundle.
  bool partial = false;
};

struct BundleCheckReport {
  bool ok = true;
  std::vector<std::string> errors;
  std::vector<std::string> warnings;
  std::vector<std::string> checks;           // one line per check that ran and passed
  std::vector<std::string> deploy_left_out;  // codec_config settings deploy.env does not express
  std::vector<RoundTripPair> roundtrip;
  nlohmann::ordered_json to_json() const;
};

/// Validates a bundle folder (§1–§7, §9): the file set, MANIFEST.json (version, sizes, SHA-256),
/// sigma_q.safetensors (strict container, names, [H_kv, D, D] F32, L lower triangular with a
/// positive diagonal and an exactly-zero strict upper triangle, round trips within the bar),
/// sigma_q.json against the tensors, centroid files (4·2^b bytes, finite, strictly ascending),
/// codec_config.json's schema, and deploy.env against codec_config.json. Never throws for a bad
/// bundle: every problem is an entry of `errors` naming the file and the field.
BundleCheckReport check_bundle(const std::string& dir, const BundleCheckOptions& options = {});

/// The deploy.env settings a codec_config.json (§5) implies and what it cannot express.
struct DeployEnvPlan {
  std::vector<std::pair<std::string, std::string>> vars;  // KEY, VALUE (paths as bundle file names)
  std::vector<std::string> left_out;
  /// Comment lines of deploy.env beyond §6's (per-layer bit widths: which width the *_PATH
  /// variables name and which layers differ, §10); empty for a version 1 bundle.
  std::vector<std::string> notes;
};
/// `present` lists the bundle's file names; path variables hold the bare file name. With
/// per-layer bit widths (§10) each centroid path names the stream's most common width (ties: the
/// run-level width, then the smaller).
DeployEnvPlan plan_deploy_env(const nlohmann::json& codec_config, const std::vector<std::string>& present);

}  // namespace kvwb::sessions
