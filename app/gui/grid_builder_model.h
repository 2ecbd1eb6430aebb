#pragma once
// The pure model behind the sweep dialog's grid builder (no Qt): which codec families a sweep
// covers, which values of each family's parameters (from codec::codec_params ParamSpec lists)
// it tries, and which run-level settings of the current configuration every cell keeps. It
// writes a sweep grid in the format of docs/sweeps.md that sessions::expand_sweep_grid accepts.
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "sessions/config/run_config.h"

namespace kvwb::app {

/// One candidate value of a codec parameter. `value` is the text written into "name=value";
/// "" stands for "unset" (an optional parameter without a default).
struct GridParamValue {
  std::string value;
  std::string label;  // shown in the builder, e.g. "3 (default)"
  bool checked = false;
};

/// One codec parameter and its candidate values. The parameter is varied when the set of
/// checked values differs from {default}; otherwise cells keep the codec's default.
struct GridParam {
  std::string name;
  std::string help;
  std::string default_value;  // ParamSpec::default_value ("" = none)
  std::vector<GridParamValue> values;
  /// The checked values when the parameter is varied, empty otherwise.
  std::vector<std::string> varied_values() const;
};

/// A codec family of the sweep: both streams use `codec`. With `cross_kv` the K and V parameter
/// choices are independent (their cartesian product); otherwise both streams take the same
/// choice in each cell.
struct GridFamily {
  std::string codec;
  bool enabled = false;
  bool cross_kv = false;
  std::vector<GridParam> params;
};

/// A run-level option ("fixed" object of the grid) taken from the current configuration.
struct GridFixedOption {
  std::string key;  // run option name (sessions/run_options.h)
  nlohmann::json value;
  bool enabled = true;
  std::string label() const;  // "key = value"
};

struct GridBuilderModel {
  std::vector<GridFamily> families;
  std::vector<GridFixedOption> fixed;
};

/// Candidate values offered for one parameter: every value of a small integer range, the choices
/// of a choice or bool parameter, a few spread values around the default of a wide range. Table
/// parameters and parameters without a usable range (seed) get none (they are not offered).
std::vector<std::string> candidate_values(const codec::ParamSpec& spec);

/// The builder for every codec of codec::codec_names() except bf16, all families disabled, each
/// parameter's default checked; `fixed` holds the run-level settings of `current` that differ
/// from a plain configuration (block_size always, boundary, layers, q_precond, ...).
GridBuilderModel make_grid_builder(const sessions::RunConfig& current);

/// Per family, the parameter combinations it sweeps: the cartesian product over the varied
/// parameters of their checked values, each combination as "name=value" strings (unset values
/// left out). One empty combination when nothing is varied.
std::vector<std::vector<std::string>> param_combos(const GridFamily& family);

/// The number of cells `build_grid` produces before duplicates are dropped.
size_t grid_cell_estimate(const GridBuilderModel& model);

/// The sweep grid: {"fixed": {...enabled fixed options}, "grids": [one sub-grid per family (or per
/// parameter combination when K and V share it)]}. Throws InvalidArgument when no family is
/// enabled.
nlohmann::json build_grid(const GridBuilderModel& model);

/// `grid` with the enabled fixed options written into its "fixed" object (they replace the
/// grid's own values of the same keys; disabled options leave the grid's values alone). The sweep
/// dialog runs exactly this grid and shows it, so the fixed-settings list applies what it shows.
nlohmann::json apply_fixed_options(const nlohmann::json& grid,
                                   const std::vector<GridFixedOption>& fixed);

/// JSON text of a grid for reading: objects and arrays that fit in `width` columns on one line,
/// the rest one member per line (two-space indent). Valid JSON, equal to `grid` when parsed.
std::string grid_to_text(const nlohmann::json& grid, size_t width = 96);

}  // namespace kvwb::app
