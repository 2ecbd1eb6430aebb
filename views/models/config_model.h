#pragma once
// Pure model of the configuration editor (no widgets): the form's state as plain text/bool
// fields, conversions between it and a sessions::RunConfig (through the core's JSON schema,
// docs/run-config.md, so validation errors are the core's typed errors), and the widget to build
// for each codec parameter (from codec::ParamSpec).
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "sessions/config/run_config.h"

namespace kvwb::views {

/// Kind of widget generated for one codec parameter.
enum class ParamWidgetKind {
  kSpin,        // QSpinBox over [min, max] (optional parameters: min − 1 shows "(none)")
  kDoubleSpin,  // QDoubleSpinBox over [min, max]
  kCombo,       // QComboBox of the choices
  kCheck,       // QCheckBox (kBool)
  kLine,        // QLineEdit: tables, unbounded ints (seeds), unbounded or optional floats
};

struct ParamWidgetSpec {
  std::string name;  // ParamSpec::name
  ParamWidgetKind kind = ParamWidgetKind::kLine;
  double min = 0, max = 0;  // spin ranges (kSpin: includes the "(none)" value when optional)
  int decimals = 0;         // kDoubleSpin
  bool optional = false;    // the spec's default is "" (unset)
  std::vector<std::string> choices;  // kCombo
  std::string default_value;         // ParamSpec::default_value
  std::string tooltip;               // help text with type, range and default
};

/// The widget specs of `codec`'s parameters, in ParamSpec order. Throws InvalidArgument for an
/// unknown codec.
std::vector<ParamWidgetSpec> param_widget_specs(const std::string& codec);

/// One stream (K or V) section of the form.
struct StreamForm {
  std::string codec = "kakeya_pca";
  std::map<std::string, std::string> params;  // every parameter's text; "" = unset (spec default)
  std::string k_domain;                       // K only: "" (codec default) | pre_rope | post_rope
  std::string centroids_file;                 // "" = none
};

/// The whole form. Text fields hold what the user typed; conversion validates them.
struct ConfigForm {
  std::string block_size = "512";
  std::string block_rows = "per_head";
  std::string layers;  // "" = every full-attention layer; "0,2-3"
  bool include_sliding = false;
  std::string boundary;  // "0,3"
  StreamForm k, v;
  std::string q_precond_mode = "off";  // off | capture | file
  std::string q_precond_file;          // safetensors path (mode "file")
  bool q_precond_auto_skip = true;
  std::string target_cond;  // "" = none, else > 1
  std::string turbo_policy = "none";
  bool attention_metrics = true;
  /// Query positions per (sequence, q head) of the attention metrics: a number (1..1048576) or
  /// "all" (exact); docs/attention-sampling.md.
  std::string attn_sample = std::to_string(sessions::kDefaultAttnSample);
  std::string backend = "cpu";  // cpu | cuda | auto
  /// Keys of the configuration the form does not edit (overrides, q_precond_skip_layers,
  /// attn_scale, threads), carried through unchanged.
  nlohmann::json carried = nlohmann::json::object();
};

/// Text of a layer list: [0, 1, 2, 5] -> "0-2,5".
std::string layer_list_text(const std::vector<int>& layers);

/// The form showing `c` (every parameter of both streams filled from the canonical JSON).
ConfigForm form_from_config(const sessions::RunConfig& c);

/// The run-configuration JSON of the form (docs/run-config.md). Unset parameters are left out;
/// numeric fields that do not parse are passed as text so the core reports them.
nlohmann::json form_to_json(const ConfigForm& f);

/// Validates the form into a RunConfig: sessions::run_config_from_json(form_to_json(f), "form")
/// plus each stream's parameters checked against the codec's ParamSpec (codec::ParamReader).
/// Throws the core's typed errors (InvalidArgument …) with a message naming the field.
sessions::RunConfig config_from_form(const ConfigForm& f);

/// Checks `params` against `codec`'s specs (unknown names, types, ranges, choices); throws
/// InvalidArgument naming `where`, the codec and the parameter.
void validate_stream_params(const std::string& codec,
                            const std::map<std::string, std::string>& params,
                            const std::string& where);

}  // namespace kvwb::views
