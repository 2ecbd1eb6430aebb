#pragma once
// Configuration grids (proxy-truth; the same format a sweep uses): a JSON object whose keys are
// `kvwb run` option names with underscores (bits_k, variance_ratio, k_codec, ...) and whose values
// are lists of values; the cells are the cartesian product (keys in sorted order, the last key
// varying fastest). An optional "fixed" object holds options applied to every cell. A boolean
// value switches a flag option (share_basis_v, no_attention); k_param / v_param take a list of
// "name=value" strings per cell. Expansion and the option mapping are the core's
// (sessions::expand_grid / apply_run_options), the same the CLI flags of `kvwb run` go through.
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "sessions/config/run_config.h"

namespace kvwb::app {

/// The cells of a grid with their labels ("bits_k=4 variance_ratio=0.95"). Throws InvalidArgument
/// naming `source`, the cell and the option for a bad key or value, or an empty grid.
std::vector<std::pair<std::string, sessions::RunConfig>> expand_grid_cells(const nlohmann::json& grid,
                                                                           const std::string& source);

}  // namespace kvwb::app
