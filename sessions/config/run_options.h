#pragma once
// The option vocabulary of `kvwb run` in the core, so the CLI flags, sweep grids and the GUI map
// options onto a RunConfig the same way. Option names are the CLI flag names with underscores:
//   k_codec v_codec bits_k bits_v block_size block_rows pca rsvd_rank variance_ratio kmeans_k
//   outliers_k outliers_v skeleton_dtype share_basis_v centroids_k centroids_v q_precond
//   q_precond_skip target_cond boundary layers k_domain turbo_policy threads seed backend
//   no_attention k_param v_param (the last two: "name=value" or a list of them)
// An option that applies to neither stream's codec is an InvalidArgument naming it.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sessions/config/run_config.h"

namespace kvwb::sessions {

/// Known option names (for validation and help).
const std::vector<std::string>& run_option_names();

/// The `source` apply_run_options is given for command-line flags: its messages then name the
/// flag (--bits-k) instead of the option key (bits_k).
inline constexpr const char* kCommandLineSource = "command line";

/// Applies options in a fixed order (codec choices first, then the rest) on top of `base`.
/// Values are JSON scalars (or lists for boundary/layers/k_param/v_param).
RunConfig apply_run_options(RunConfig base, const nlohmann::json& options, const std::string& source);

/// A sweep grid (docs/sweeps.md): an object whose keys are option names and whose values are
/// lists; the cells are their cartesian product (in key order, last key fastest), each applied on
/// top of the optional "fixed" object and the optional "base" run configuration (JSON schema of
/// docs/run-config.md). Returns, per cell, its options object and configuration.
struct GridCell {
  nlohmann::json options;  // the cell's own choices
  RunConfig config;
};
std::vector<GridCell> expand_grid(const nlohmann::json& grid, const std::string& source);
/// Cells of one grid object, computed (not enumerated) before any expansion; throws
/// InvalidArgument naming `source` for a malformed grid or more than io::kMaxGridCells cells.
uint64_t grid_cell_count(const nlohmann::json& grid, const std::string& source);

}  // namespace kvwb::sessions
