#include "views/models/layer_table_model.h"

#include <algorithm>
#include <map>

#include "base/errors.h"
#include "codec/codec.h"
#include "views/models/comparison_model.h"
#include "views/models/config_model.h"

namespace kvwb::views {

namespace {

bool contains(const std::vector<int>& v, int x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

/// Canonical JSON of one stream (every default filled in): equal texts = equal streams.
nlohmann::json stream_canon(const sessions::StreamConfig& s, bool is_k) {
  sessions::RunConfig c;
  (is_k ? c.k : c.v) = s;
  return sessions::run_config_to_json(c)[is_k ? "k" : "v"];
}

std::string bits_of(const sessions::StreamConfig& s) {
  const std::string bp = bits_param(s.codec);
  if (bp.empty()) return "";
  if (auto it = s.params.find(bp); it != s.params.end() && !it->second.empty()) return it->second;
  for (const auto& p : codec::codec_params(s.codec))
    if (p.name == bp) return p.default_value;
  return "";
}

const sessions::LayerOverride* find_override(const sessions::RunConfig& c, int layer) {
  for (const auto& o : c.overrides)
    if (o.layer == layer) return &o;
  return nullptr;
}

/// The stream a layer uses (its override or the global one).
const sessions::StreamConfig& effective(const sessions::RunConfig& c, int layer, bool k) {
  if (const auto* o = find_override(c, layer)) {
    if (k && o->k) return *o->k;
    if (!k && o->v) return *o->v;
  }
  return k ? c.k : c.v;
}

std::vector<int> toggled(std::vector<int> v, int layer, bool on) {
  v.erase(std::remove(v.begin(), v.end(), layer), v.end());
  if (on) v.push_back(layer);
  std::sort(v.begin(), v.end());
  return v;
}

bool parse_flag(const std::string& value, const std::string& what) {
  if (value == "true" || value == "1" || value == "on") return true;
  if (value == "false" || value == "0" || value == "off") return false;
  throw InvalidArgument(what + ": expected true or false, got '" + value + "'");
}

}  // namespace

LayerTable build_layer_table(const sessions::RunConfig& cfg, const CaptureSummary& capture,
                             const sessions::RunResult* run) {
  LayerTable t;
  t.q_precond = !cfg.q_precond.empty();
  for (size_t i = 0; i < capture.layers.size(); ++i) {
    LayerTableRow r;
    r.layer = capture.layers[i];
    if (i < capture.attention.size()) r.attention = capture.attention[i];
    r.in_run = cfg.layers.empty() ? (r.attention != "sliding" || cfg.include_sliding)
                                  : contains(cfg.layers, r.layer);
    if (r.in_run) t.run_layers.push_back(r.layer);
    const sessions::StreamConfig& k = effective(cfg, r.layer, true);
    const sessions::StreamConfig& v = effective(cfg, r.layer, false);
    r.k_codec = k.codec;
    r.v_codec = v.codec;
    r.k_bits = bits_of(k);
    r.v_bits = bits_of(v);
    if (const auto* o = find_override(cfg, r.layer)) {
      r.k_override = o->k.has_value();
      r.v_override = o->v.has_value();
    }
    if (r.k_override) t.k_override_layers.push_back(r.layer);
    if (r.v_override) t.v_override_layers.push_back(r.layer);
    r.boundary = contains(cfg.boundary, r.layer);
    r.q_skip_user = contains(cfg.q_precond_skip_layers, r.layer);
    if (run) {
      for (const auto& l : run->layers) {
        if (l.layer != r.layer) continue;
        if (l.has_q) r.q_skip_auto = l.q_skip;
        const uint64_t bytes = l.k.bytes + l.v.bytes, bf16 = l.k.bf16_bytes + l.v.bf16_bytes;
        if (bytes > 0) r.ratio = static_cast<double>(bf16) / static_cast<double>(bytes);
      }
    }
    t.rows.push_back(std::move(r));
  }
  return t;
}

std::vector<std::string> layer_column_choices(LayerColumn column, const std::string& codec) {
  switch (column) {
    case LayerColumn::kKCodec:
    case LayerColumn::kVCodec:
      return codec::codec_names();
    case LayerColumn::kKBits:
    case LayerColumn::kVBits: {
      std::vector<std::string> out;
      const std::string bp = bits_param(codec);
      for (const auto& p : codec::codec_params(codec))
        if (p.name == bp)
          for (int b = static_cast<int>(p.min); b <= static_cast<int>(p.max); ++b)
            out.push_back(std::to_string(b));
      return out;
    }
    case LayerColumn::kBoundary:
    case LayerColumn::kQSkip:
      return {"false", "true"};
  }
  return {};
}

sessions::RunConfig edit_layer_cell(const sessions::RunConfig& cfg, int layer, LayerColumn column,
                                    const std::string& value) {
  sessions::RunConfig out = cfg;
  const std::string where = "layer " + std::to_string(layer);
  if (column == LayerColumn::kBoundary) {
    out.boundary = toggled(out.boundary, layer, parse_flag(value, where + " bf16"));
    return out;
  }
  if (column == LayerColumn::kQSkip) {
    out.q_precond_skip_layers =
        toggled(out.q_precond_skip_layers, layer, parse_flag(value, where + " Σ_q skip"));
    return out;
  }
  const bool k = column == LayerColumn::kKCodec || column == LayerColumn::kKBits;
  const std::string sname = k ? "K" : "V";
  sessions::StreamConfig s = effective(cfg, layer, k);
  if (column == LayerColumn::kKCodec || column == LayerColumn::kVCodec) {
    const auto names = codec::codec_names();
    if (std::find(names.begin(), names.end(), value) == names.end())
      throw InvalidArgument(where + " " + sname + " codec: unknown codec '" + value + "'");
    if (value != s.codec) s = sessions::StreamConfig{value, {}, std::nullopt, ""};
  } else {
    const std::string bp = bits_param(s.codec);
    if (bp.empty())
      throw InvalidArgument(where + " " + sname + ": codec " + s.codec +
                            " has no bit-width parameter");
    const auto choices = layer_column_choices(column, s.codec);
    if (std::find(choices.begin(), choices.end(), value) == choices.end())
      throw InvalidArgument(where + " " + sname + " bits: " + value + " is not a bit width of " +
                            s.codec);
    s.params[bp] = value;
  }
  const bool same_as_global = stream_canon(s, k) == stream_canon(k ? cfg.k : cfg.v, k);
  auto it = std::find_if(out.overrides.begin(), out.overrides.end(),
                         [&](const sessions::LayerOverride& o) { return o.layer == layer; });
  if (it == out.overrides.end()) {
    if (same_as_global) return out;
    sessions::LayerOverride o;
    o.layer = layer;
    out.overrides.push_back(o);
    it = out.overrides.end() - 1;
  }
  (k ? it->k : it->v) = same_as_global ? std::nullopt : std::optional<sessions::StreamConfig>(s);
  if (!it->k && !it->v) out.overrides.erase(it);
  std::sort(out.overrides.begin(), out.overrides.end(),
            [](const sessions::LayerOverride& a, const sessions::LayerOverride& b) {
              return a.layer < b.layer;
            });
  return out;
}

sessions::RunConfig clear_stream_overrides(const sessions::RunConfig& cfg, bool k_stream) {
  sessions::RunConfig out = cfg;
  for (auto& o : out.overrides) (k_stream ? o.k : o.v) = std::nullopt;
  out.overrides.erase(std::remove_if(out.overrides.begin(), out.overrides.end(),
                                     [](const sessions::LayerOverride& o) { return !o.k && !o.v; }),
                      out.overrides.end());
  return out;
}

bool stream_fully_overridden(const LayerTable& t, bool k_stream) {
  const auto& ov = k_stream ? t.k_override_layers : t.v_override_layers;
  if (t.run_layers.empty()) return false;
  return std::all_of(t.run_layers.begin(), t.run_layers.end(),
                     [&](int l) { return contains(ov, l); });
}

std::string override_notice(const LayerTable& t, bool k_stream) {
  const auto& ov = k_stream ? t.k_override_layers : t.v_override_layers;
  if (ov.empty()) return "";
  const std::string s = k_stream ? "K" : "V";
  std::vector<int> rest;
  for (int l : t.run_layers)
    if (!contains(ov, l)) rest.push_back(l);
  std::string text = (ov.size() == 1 ? "Layer " : "Layers ") + layer_list_text(ov) +
                     (ov.size() == 1 ? " overrides" : " override") + " the " + s +
                     " stream (per-layer table): the settings here apply to ";
  text += rest.empty()
              ? "no layer."
              : (rest.size() == 1 ? "layer " : "layers ") + layer_list_text(rest) + " only.";
  return text;
}

std::string layer_changes_text(const sessions::RunConfig& before, const sessions::RunConfig& after,
                               const CaptureSummary& capture, size_t max_items) {
  const LayerTable a = build_layer_table(before, capture, nullptr);
  const LayerTable b = build_layer_table(after, capture, nullptr);
  std::vector<std::string> items;
  for (size_t i = 0; i < a.rows.size() && i < b.rows.size(); ++i) {
    const LayerTableRow &x = a.rows[i], &y = b.rows[i];
    const std::string l = "layer " + std::to_string(y.layer) + " ";
    if (x.k_codec != y.k_codec) items.push_back(l + "K " + y.k_codec);
    if (x.k_bits != y.k_bits && x.k_codec == y.k_codec) items.push_back(l + "K bits " + y.k_bits);
    if (x.v_codec != y.v_codec) items.push_back(l + "V " + y.v_codec);
    if (x.v_bits != y.v_bits && x.v_codec == y.v_codec) items.push_back(l + "V bits " + y.v_bits);
    if (x.boundary != y.boundary) items.push_back(l + (y.boundary ? "bf16" : "compressed"));
    if (x.q_skip_user != y.q_skip_user)
      items.push_back(l + (y.q_skip_user ? "Σ_q skip" : "no Σ_q skip"));
  }
  std::string out;
  for (size_t i = 0; i < items.size() && i < max_items; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > max_items) out += ", …";
  return out;
}

}  // namespace kvwb::views
