#include "views/models/config_model.h"

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <sstream>

#include "base/errors.h"
#include "codec/codec.h"
#include "codec/params.h"
#include "codec/traits.h"

namespace kvwb::views {

using nlohmann::json;

namespace {

std::string number_text(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::string spec_tooltip(const codec::ParamSpec& s) {
  std::string t = s.help;
  std::string kind;
  switch (s.type) {
    case codec::ParamType::kInt:
      kind = "integer";
      break;
    case codec::ParamType::kFloat:
      kind = "number";
      break;
    case codec::ParamType::kBool:
      kind = "true/false";
      break;
    case codec::ParamType::kChoice:
      kind = "choice";
      break;
    case codec::ParamType::kTable:
      kind = "table";
      break;
  }
  t += "\n[" + s.name + ": " + kind;
  if ((s.type == codec::ParamType::kInt || s.type == codec::ParamType::kFloat) &&
      !(s.min == 0 && s.max == 0))
    t += ", " + number_text(s.min) + " … " + number_text(s.max);
  t += ", default " + (s.default_value.empty() ? std::string("none") : s.default_value) + "]";
  return t;
}

json stream_json(const StreamForm& s, bool is_k) {
  json j;
  j["codec"] = s.codec;
  json params = json::object();
  for (const auto& [k, v] : s.params)
    if (!v.empty()) params[k] = v;
  j["params"] = params;
  if (is_k && !s.k_domain.empty()) j["k_domain"] = s.k_domain;
  if (!s.centroids_file.empty()) j["centroids_file"] = s.centroids_file;
  return j;
}

StreamForm stream_form(const sessions::StreamConfig& s) {
  StreamForm f;
  f.codec = s.codec;
  for (const auto& spec : codec::codec_params(s.codec)) f.params[spec.name] = spec.default_value;
  for (const auto& [k, v] : s.params) f.params[k] = v;
  f.k_domain = s.k_domain ? std::string(codec::k_domain_name(*s.k_domain)) : "";
  f.centroids_file = s.centroids_file;
  return f;
}

}  // namespace

std::vector<ParamWidgetSpec> param_widget_specs(const std::string& codec) {
  std::vector<ParamWidgetSpec> out;
  for (const auto& s : codec::codec_params(codec)) {
    ParamWidgetSpec w;
    w.name = s.name;
    w.default_value = s.default_value;
    w.optional = s.default_value.empty();
    w.tooltip = spec_tooltip(s);
    w.min = s.min;
    w.max = s.max;
    const bool ranged = !(s.min == 0 && s.max == 0);
    switch (s.type) {
      case codec::ParamType::kBool:
        w.kind = ParamWidgetKind::kCheck;
        break;
      case codec::ParamType::kChoice:
        w.kind = ParamWidgetKind::kCombo;
        w.choices = s.choices;
        break;
      case codec::ParamType::kInt:
        if (ranged && s.min - 1 >= INT_MIN && s.max <= INT_MAX) {
          w.kind = ParamWidgetKind::kSpin;
          if (w.optional) w.min = s.min - 1;  // the "(none)" value
        } else {
          w.kind = ParamWidgetKind::kLine;
        }
        break;
      case codec::ParamType::kFloat:
        if (ranged && !w.optional) {
          w.kind = ParamWidgetKind::kDoubleSpin;
          w.decimals = 4;
        } else {
          w.kind = ParamWidgetKind::kLine;
        }
        break;
      case codec::ParamType::kTable:
        w.kind = ParamWidgetKind::kLine;
        break;
    }
    out.push_back(std::move(w));
  }
  return out;
}

std::string layer_list_text(const std::vector<int>& layers) {
  std::string out;
  size_t i = 0;
  while (i < layers.size()) {
    size_t j = i;
    while (j + 1 < layers.size() && layers[j + 1] == layers[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(layers[i]);
    if (j > i + 1)
      out += "-" + std::to_string(layers[j]);
    else if (j == i + 1)
      out += "," + std::to_string(layers[j]);
    i = j + 1;
  }
  return out;
}

ConfigForm form_from_config(const sessions::RunConfig& c) {
  ConfigForm f;
  f.block_size = std::to_string(c.block_size);
  f.block_rows = codec::block_rows_name(c.block_rows);
  f.layers = layer_list_text(c.layers);
  f.include_sliding = c.include_sliding;
  f.boundary = layer_list_text(c.boundary);
  f.k = stream_form(c.k);
  f.v = stream_form(c.v);
  if (c.q_precond.empty()) {
    f.q_precond_mode = "off";
  } else if (c.q_precond == "capture") {
    f.q_precond_mode = "capture";
  } else {
    f.q_precond_mode = "file";
    f.q_precond_file = c.q_precond;
  }
  f.q_precond_auto_skip = c.q_precond_auto_skip;
  f.target_cond = c.target_cond ? json(*c.target_cond).dump() : "";
  f.turbo_policy = sessions::turbo_policy_name(c.turbo_policy);
  f.attention_metrics = c.attention_metrics;
  f.attn_sample = c.attn_sample ? std::to_string(c.attn_sample) : "all";
  f.backend = sessions::backend_name(c.backend);
  const json canon = sessions::run_config_to_json(c);
  f.carried = json::object();
  f.carried["overrides"] = canon["overrides"];
  f.carried["q_precond_skip_layers"] = canon["q_precond_skip_layers"];
  f.carried["attn_scale"] = canon["attn_scale"];
  f.carried["threads"] = c.threads;
  return f;
}

json form_to_json(const ConfigForm& f) {
  json j = f.carried.is_object() ? f.carried : json::object();
  long long bs = 0;
  const auto [p, ec] =
      std::from_chars(f.block_size.data(), f.block_size.data() + f.block_size.size(), bs);
  if (ec == std::errc() && p == f.block_size.data() + f.block_size.size())
    j["block_size"] = bs;
  else
    j["block_size"] = f.block_size;
  j["block_rows"] = f.block_rows;
  j["layers"] = f.layers;
  j["include_sliding"] = f.include_sliding;
  j["boundary"] = f.boundary;
  j["k"] = stream_json(f.k, true);
  j["v"] = stream_json(f.v, false);
  if (f.q_precond_mode == "capture")
    j["q_precond"] = "capture";
  else if (f.q_precond_mode == "file")
    j["q_precond"] = f.q_precond_file;
  else
    j["q_precond"] = nullptr;
  j["q_precond_auto_skip"] = f.q_precond_auto_skip;
  if (f.target_cond.empty()) {
    j["target_cond"] = nullptr;
  } else {
    double v = 0;
    const auto [q, e2] =
        std::from_chars(f.target_cond.data(), f.target_cond.data() + f.target_cond.size(), v);
    if (e2 == std::errc() && q == f.target_cond.data() + f.target_cond.size())
      j["target_cond"] = v;
    else
      j["target_cond"] = f.target_cond;
  }
  j["turbo_policy"] = f.turbo_policy;
  j["attention_metrics"] = f.attention_metrics;
  j["attn_sample"] = f.attn_sample;  // "all" or digits; the core parses and range-checks it
  j["backend"] = f.backend;
  return j;
}

void validate_stream_params(const std::string& codec,
                            const std::map<std::string, std::string>& params,
                            const std::string& where) {
  try {
    codec::ParamMap map;
    for (const auto& [k, v] : params)
      if (!v.empty()) map[k] = v;
    const auto& specs = codec::codec_params(codec);
    const codec::ParamReader reader(codec, specs, map);
    for (const auto& s : specs) {
      if (!reader.has(s.name)) continue;
      switch (s.type) {
        case codec::ParamType::kInt:
          reader.get_int(s.name);
          break;
        case codec::ParamType::kFloat:
          reader.get_float(s.name);
          break;
        case codec::ParamType::kBool:
          reader.get_bool(s.name);
          break;
        case codec::ParamType::kChoice:
        case codec::ParamType::kTable:
          reader.get_string(s.name);
          break;
      }
    }
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(where + ": " + e.what());
  }
}

sessions::RunConfig config_from_form(const ConfigForm& f) {
  if (f.block_size.empty()) throw InvalidArgument("block size: enter a number of rows (8..65536)");
  if (f.q_precond_mode == "file" && f.q_precond_file.empty())
    throw InvalidArgument(
        "Q-preconditioning: choose a Σ_q safetensors file (or pick off / capture)");
  const json j = form_to_json(f);
  if (j["block_size"].is_string())
    throw InvalidArgument("block size: '" + f.block_size + "' is not an integer (8..65536)");
  if (j["target_cond"].is_string())
    throw InvalidArgument("target_cond: '" + f.target_cond +
                          "' is not a number (> 1, or empty for none)");
  // The stream parameters first, so that their errors name the stream as the form shows it.
  const auto names = codec::codec_names();
  for (const auto* s : {&f.k, &f.v})
    if (std::find(names.begin(), names.end(), s->codec) != names.end())
      validate_stream_params(s->codec, s->params, s == &f.k ? "K stream" : "V stream");
  return sessions::run_config_from_json(j, "configuration");
}

}  // namespace kvwb::views
