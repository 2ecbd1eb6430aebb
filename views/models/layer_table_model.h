#pragma once
// Pure model of the per-layer table of the configuration editor (no widgets): one row per capture
// layer with the codec and bit width each stream really gets on that layer (the global stream or
// the layer's override, sessions::LayerOverride), the boundary (bf16) flag, the user's Σ_q skip,
// the skip rule's verdict and the measured layer ratio of the current run. Edits go through
// edit_layer_cell, which writes per-layer overrides exactly as `kvwb plan` does (a stream override
// that equals the global stream is dropped, so "follows the global settings" stays visible).
#include <optional>
#include <string>
#include <vector>

#include "sessions/config/run_config.h"
#include "sessions/run/runner.h"
#include "views/models/snapshot.h"

namespace kvwb::views {

/// The editable columns of the per-layer table.
enum class LayerColumn { kKCodec, kKBits, kVCodec, kVBits, kBoundary, kQSkip };

struct LayerTableRow {
  int layer = 0;
  std::string attention = "full";  // "full" | "sliding"
  bool in_run = true;              // selected by the configuration's layers / include_sliding
  std::string k_codec, v_codec;    // codec the stream uses on this layer
  std::string k_bits, v_bits;      // its bit width ("" when the codec has no bit-width parameter)
  bool k_override = false, v_override = false;  // the layer overrides the global stream
  bool boundary = false;                        // both streams bf16 (boundary_skip_layers)
  bool q_skip_user = false;                     // in q_precond_skip_layers
  std::optional<bool> q_skip_auto;  // the current run: Σ_q skip rule kept it unwhitened
  std::optional<double> ratio;      // the current run: layer bf16 bytes / container bytes
};

struct LayerTable {
  std::vector<LayerTableRow> rows;  // capture layers, ascending
  bool q_precond = false;           // Q-preconditioning is on (the Σ_q skip column applies)
  std::vector<int> k_override_layers, v_override_layers;  // capture layers overriding a stream
  std::vector<int> run_layers;                            // layers the configuration runs
};

/// The table of `cfg` on the capture `capture`; `run` (may be null) adds the measured columns
/// when it is a run of `cfg` (its layers' results).
LayerTable build_layer_table(const sessions::RunConfig& cfg, const CaptureSummary& capture,
                             const sessions::RunResult* run);

/// Values offered in a column for `codec` (codec names for the codec columns, the bit-width
/// parameter's integer range for the bits columns, {"false", "true"} for the flags).
std::vector<std::string> layer_column_choices(LayerColumn column, const std::string& codec);

/// `cfg` with one cell of layer `layer` set to `value` (a codec name, a bit width, "true" /
/// "false"). A codec change starts from that codec's defaults; a stream that ends up equal to the
/// global stream loses its override. Throws InvalidArgument for a value the column does not take.
sessions::RunConfig edit_layer_cell(const sessions::RunConfig& cfg, int layer, LayerColumn column,
                                    const std::string& value);

/// `cfg` without the per-layer overrides of one stream: every layer follows the global stream.
sessions::RunConfig clear_stream_overrides(const sessions::RunConfig& cfg, bool k_stream);

/// The notice shown under a global stream section when layers override it ("" when none):
/// "Layers 0-3 override the K stream (per-layer table): the settings here apply to layers 4-27."
/// or, when every run layer overrides it, "... apply to no layer".
std::string override_notice(const LayerTable& table, bool k_stream);

/// True when every layer the configuration runs overrides the stream (global edits of it would
/// change nothing).
bool stream_fully_overridden(const LayerTable& table, bool k_stream);

/// Short description of the per-layer differences between two configurations for an undo label
/// ("layer 3 K bits 4, layer 5 bf16"), at most `max_items` items then "…".
std::string layer_changes_text(const sessions::RunConfig& before, const sessions::RunConfig& after,
                               const CaptureSummary& capture, size_t max_items = 3);

}  // namespace kvwb::views
