#pragma once
// Calibration transfer (docs/bundles.md, "Applying a bundle"): what a calibration bundle supplies
// to a configuration evaluated on another capture — its Σ_q factors and its Lloyd-Max centroid
// tables — and the provenance every result then carries (in-sample or out-of-sample, with the
// sha256 of the capture the bundle was fitted on and of the data evaluated). Reading and
// verifying a bundle folder is sessions/bundle's read_calibration_bundle().
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "sessions/config/run_config.h"

namespace kvwb::sessions {

/// A verified bundle's calibration artefacts (paths inside the bundle folder) and its origin.
struct CalibrationBundle {
  std::string dir;                // the bundle folder as given
  std::string manifest_sha256;    // sha256 of MANIFEST.json: identifies the bundle's contents
  std::string capture_file_name;  // MANIFEST source_capture: the capture the bundle was fitted on
  std::string capture_sha256;
  std::string model_name;
  std::string sigma_q_file;                   // "" when the bundle has no sigma_q.safetensors
  std::map<std::string, std::string> tables;  // "K_b3" -> path of K_b3_centroids.f32, …
};

/// `cfg` with the bundle's artefacts: when cfg Q-preconditions (q_precond not empty) its Σ_q
/// factors become the bundle's sigma_q.safetensors, and every layer the bundle has factors for
/// is whitened (q_precond_auto_skip off: the skip decision was taken when the bundle was fitted,
/// as the serving plugin does); every kakeya_pca stream (overrides included) gets the bundle's
/// table for its stream and bit width. Throws InvalidArgument naming the bundle when cfg
/// Q-preconditions and the bundle has no Σ_q, when a kakeya_pca stream's bit width has no table
/// in the bundle, or when a stream already names another centroids_file.
RunConfig apply_calibration_bundle(const RunConfig& cfg, const CalibrationBundle& b);

/// The provenance object of results computed with a bundle:
/// {"source": "bundle", "bundle", "bundle_manifest_sha256", "calibrated_on": {file_name, sha256,
/// model_name}, "evaluated_on": {kind, file, sha256}, "sample": "in-sample" | "out-of-sample",
/// "sigma_q": path | null, "centroids": {"K": path | null, "V": …}}. `evaluated_kind` is
/// "capture" (in-sample exactly when the sha256 equals the bundle's capture's) or "text" (an
/// end-to-end evaluation: always out-of-sample, the bundle was not fitted on its prefill).
nlohmann::json calibration_provenance_json(const CalibrationBundle& b, const RunConfig& applied,
                                           const std::string& evaluated_kind,
                                           const std::string& evaluated_file,
                                           const std::string& evaluated_sha256);

}  // namespace kvwb::sessions
