#include "app/gui/grid_builder_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "base/errors.h"
#include "codec/traits.h"

namespace kvwb::app {

using nlohmann::json;

namespace {

// Integer ranges up to this many values are offered in full.
constexpr double kFullRangeValues = 10;

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

// Suggested values for the wide-range parameters of the codecs (kvwb codecs), in the units the
// codec reads. Values outside the parameter's range are dropped.
const std::map<std::string, std::vector<double>>& suggestions() {
  static const std::map<std::string, std::vector<double>> s = {
      {"variance_ratio", {0.8, 0.9, 0.95, 0.99, 1.0}},
      {"k", {4, 8, 16, 32, 64}},
      {"kmeans_max_iter", {8, 16, 32, 64}},
      {"rsvd_target_rank", {8, 16, 32, 64}},
      {"rsvd_oversample", {4, 8, 16}},
      {"rsvd_power_iters", {0, 1, 2, 4}},
      {"exact_rank_cap", {8, 16, 32, 64}},
      {"outlier_threshold", {2, 3, 4, 6}},
      {"residual", {0, 32, 64, 128, 256}},
  };
  return s;
}

bool in_range(const codec::ParamSpec& s, double v) {
  if (s.min == 0.0 && s.max == 0.0) return true;  // no range given
  return v >= s.min && v <= s.max;
}

}  // namespace

std::vector<std::string> GridParam::varied_values() const {
  std::vector<std::string> out;
  for (const auto& v : values)
    if (v.checked) out.push_back(v.value);
  if (out.empty() || (out.size() == 1 && out[0] == default_value)) return {};
  return out;
}

std::string GridFixedOption::label() const {
  return key + " = " + (value.is_string() ? value.get<std::string>() : value.dump());
}

std::vector<std::string> candidate_values(const codec::ParamSpec& spec) {
  std::vector<std::string> out;
  auto add = [&](const std::string& v) {
    if (std::find(out.begin(), out.end(), v) == out.end()) out.push_back(v);
  };
  switch (spec.type) {
    case codec::ParamType::kTable:
      return {};
    case codec::ParamType::kBool:
      return {"false", "true"};
    case codec::ParamType::kChoice:
      return spec.choices;
    case codec::ParamType::kInt:
    case codec::ParamType::kFloat: {
      const bool ranged = !(spec.min == 0.0 && spec.max == 0.0);
      const auto it = suggestions().find(spec.name);
      if (spec.type == codec::ParamType::kInt && ranged &&
          spec.max - spec.min + 1 <= kFullRangeValues) {
        for (double v = spec.min; v <= spec.max; v += 1) add(number_text(v));
        return out;
      }
      if (it != suggestions().end()) {
        for (double v : it->second)
          if (in_range(spec, v)) add(number_text(v));
      } else if (ranged && !spec.default_value.empty()) {
        // Spread around the default: /4, /2, x1, x2, x4 within the range.
        const double d = std::stod(spec.default_value);
        for (double f : {0.25, 0.5, 1.0, 2.0, 4.0}) {
          double v = d * f;
          if (spec.type == codec::ParamType::kInt) v = std::round(v);
          if (in_range(spec, v)) add(number_text(v));
        }
      }
      // Without a range and without suggestions (e.g. the u64 seed) nothing is offered.
      if (out.empty()) return {};
      std::vector<double> nums;
      for (const auto& v : out) nums.push_back(std::stod(v));
      std::sort(nums.begin(), nums.end());
      out.clear();
      for (double v : nums) add(number_text(v));
      return out;
    }
  }
  return out;
}

GridBuilderModel make_grid_builder(const sessions::RunConfig& current) {
  GridBuilderModel m;
  for (const auto& name : codec::codec_names()) {
    if (codec::codec_traits(name).reference)
      continue;  // what boundary layers keep; not a sweep family
    GridFamily f;
    f.codec = name;
    for (const auto& spec : codec::codec_params(name)) {
      std::vector<std::string> cands = candidate_values(spec);
      if (cands.empty()) continue;
      GridParam p;
      p.name = spec.name;
      p.help = spec.help;
      p.default_value = spec.default_value;
      std::string def = spec.default_value;
      // Normalise a numeric default to the candidates' spelling ("0.95" vs "0.9500").
      if (!def.empty() &&
          (spec.type == codec::ParamType::kInt || spec.type == codec::ParamType::kFloat)) {
        try {
          def = number_text(std::stod(def));
        } catch (const std::exception&) {
        }
        p.default_value = def;
      }
      if (def.empty()) {
        p.values.push_back({"", "(none)", true});
      } else if (std::find(cands.begin(), cands.end(), def) == cands.end()) {
        cands.insert(cands.begin(), def);
      }
      for (const auto& c : cands)
        p.values.push_back({c, c == def ? c + " (default)" : c, c == def});
      f.params.push_back(std::move(p));
    }
    m.families.push_back(std::move(f));
  }

  auto add_fixed = [&](const std::string& key, json value) {
    m.fixed.push_back({key, std::move(value), true});
  };
  add_fixed("block_size", current.block_size);
  if (current.block_rows != codec::BlockRows::kPerHead)
    add_fixed("block_rows", std::string(codec::block_rows_name(current.block_rows)));
  if (!current.layers.empty()) add_fixed("layers", current.layers);
  if (!current.boundary.empty()) add_fixed("boundary", current.boundary);
  if (!current.q_precond.empty()) add_fixed("q_precond", current.q_precond);
  if (!current.q_precond_skip_layers.empty())
    add_fixed("q_precond_skip", current.q_precond_skip_layers);
  if (current.target_cond) add_fixed("target_cond", *current.target_cond);
  if (current.turbo_policy != sessions::TurboPolicy::kNone)
    add_fixed("turbo_policy", std::string(sessions::turbo_policy_name(current.turbo_policy)));
  if (!current.attention_metrics) add_fixed("no_attention", true);
  return m;
}

std::vector<std::vector<std::string>> param_combos(const GridFamily& family) {
  std::vector<std::vector<std::string>> combos{{}};
  for (const auto& p : family.params) {
    const auto vals = p.varied_values();
    if (vals.empty()) continue;
    std::vector<std::vector<std::string>> next;
    for (const auto& c : combos) {
      for (const auto& v : vals) {
        auto n = c;
        if (!v.empty()) n.push_back(p.name + "=" + v);
        next.push_back(std::move(n));
      }
    }
    combos = std::move(next);
  }
  return combos;
}

size_t grid_cell_estimate(const GridBuilderModel& model) {
  size_t n = 0;
  for (const auto& f : model.families) {
    if (!f.enabled) continue;
    const size_t c = param_combos(f).size();
    n += f.cross_kv ? c * c : c;
  }
  return n;
}

json build_grid(const GridBuilderModel& model) {
  json grids = json::array();
  for (const auto& f : model.families) {
    if (!f.enabled) continue;
    const auto combos = param_combos(f);
    auto sub = [&]() {
      return json{{"k_codec", json::array({f.codec})}, {"v_codec", json::array({f.codec})}};
    };
    const bool varied = !(combos.size() == 1 && combos[0].empty());
    if (!varied) {
      grids.push_back(sub());
    } else if (f.cross_kv) {
      json g = sub();
      g["k_param"] = combos;
      g["v_param"] = combos;
      grids.push_back(std::move(g));
    } else {
      for (const auto& c : combos) {
        json g = sub();
        if (!c.empty()) {
          g["k_param"] = json::array({c});
          g["v_param"] = json::array({c});
        }
        grids.push_back(std::move(g));
      }
    }
  }
  if (grids.empty()) throw InvalidArgument("sweep grid: choose at least one codec family");
  json fixed = json::object();
  for (const auto& o : model.fixed)
    if (o.enabled) fixed[o.key] = o.value;
  json grid = json::object();
  if (!fixed.empty()) grid["fixed"] = fixed;
  grid["grids"] = std::move(grids);
  return grid;
}

json apply_fixed_options(const json& grid, const std::vector<GridFixedOption>& fixed) {
  json out = grid.is_object() ? grid : json::object();
  for (const auto& o : fixed) {
    if (!o.enabled) continue;
    if (!out.contains("fixed") || !out["fixed"].is_object()) out["fixed"] = json::object();
    out["fixed"][o.key] = o.value;
  }
  return out;
}

namespace {

std::string inline_text(const json& j) {
  std::string out;
  if (j.is_object()) {
    out = "{";
    bool first = true;
    for (auto it = j.begin(); it != j.end(); ++it) {
      out += (first ? "" : ", ") + json(it.key()).dump() + ": " + inline_text(*it);
      first = false;
    }
    return out + "}";
  }
  if (j.is_array()) {
    out = "[";
    for (size_t i = 0; i < j.size(); ++i) out += (i ? ", " : "") + inline_text(j[i]);
    return out + "]";
  }
  return j.dump();
}

void block_text(const json& j, size_t indent, size_t width, std::string& out) {
  const std::string one = inline_text(j);
  if (!j.is_structured() || j.empty() || indent + one.size() <= width) {
    out += one;
    return;
  }
  const std::string pad(indent + 2, ' ');
  out += j.is_object() ? "{\n" : "[\n";
  size_t i = 0;
  for (auto it = j.begin(); it != j.end(); ++it, ++i) {
    out += pad;
    if (j.is_object()) out += json(it.key()).dump() + ": ";
    block_text(*it, indent + 2, width, out);
    out += i + 1 < j.size() ? ",\n" : "\n";
  }
  out += std::string(indent, ' ') + (j.is_object() ? "}" : "]");
}

}  // namespace

std::string grid_to_text(const json& grid, size_t width) {
  std::string out;
  block_text(grid, 0, width, out);
  return out + "\n";
}

}  // namespace kvwb::app
