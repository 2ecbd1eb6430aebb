#pragma once
// Reading a calibration bundle back (bundle-format.md §9) to apply its Σ_q factors and centroid
// tables to another capture (kvwb run/eval/sweep --bundle, kvwb transfer), and the configuration
// its codec_config.json describes.
#include <string>

#include "sessions/config/calibration_bundle.h"
#include "sessions/config/run_config.h"

namespace kvwb::sessions {

/// Verifies `dir` with check_bundle (file set, manifest version, sizes and sha256, sidecar against
/// the tensors, round trips, centroid files, codec_config.json) and returns its artefacts and
/// origin. Throws FormatError listing the problems when the bundle does not pass, IoError when the
/// folder cannot be read.
CalibrationBundle read_calibration_bundle(const std::string& dir);

/// The run configuration of the bundle's codec_config.json: layers in scope, block size and rows,
/// boundary layers, Q-preconditioning ("capture" when enabled, user skip layers, target_cond),
/// both streams' codecs, parameters and K domain, per-layer overrides; centroid tables are left
/// to apply_calibration_bundle. Throws FormatError naming the field when a value is missing or
/// has the wrong type.
RunConfig bundle_run_config(const std::string& dir);

}  // namespace kvwb::sessions
