#include "sessions/config/run_options.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "codec/codec.h"
#include "base/errors.h"
#include "io/limits.h"

namespace kvwb::sessions {

using nlohmann::json;

const std::vector<std::string>& run_option_names() {
  static const std::vector<std::string> n = {
      "k_codec", "v_codec", "bits_k", "bits_v", "block_size", "block_rows", "pca", "rsvd_rank",
      "variance_ratio", "kmeans_k", "outliers_k", "outliers_v", "skeleton_dtype", "share_basis_v",
      "centroids_k", "centroids_v", "q_precond", "q_precond_skip", "target_cond", "boundary", "layers",
      "k_domain", "turbo_policy", "threads", "seed", "backend", "no_attention", "attn_sample", "k_param", "v_param"};
  return n;
}

namespace {

bool has_param(const std::string& codec, const std::string& name) {
  for (const auto& s : codec::codec_params(codec))
    if (s.name == name) return true;
  return false;
}

bool try_set(StreamConfig& s, const std::vector<std::string>& names, const std::string& value) {
  for (const auto& n : names) {
    if (has_param(s.codec, n)) {
      s.params[n] = value;
      return true;
    }
  }
  return false;
}

std::string text(const json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  if (v.is_number_unsigned()) return std::to_string(v.get<unsigned long long>());
  if (v.is_number_float()) {
    std::ostringstream os;
    os.precision(17);
    os << v.get<double>();
    return os.str();
  }
  throw InvalidArgument(where + ": expected a string, number or boolean");
}

std::string layer_list_text(const json& v, const std::string& where) {
  if (!v.is_array()) return text(v, where);
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + text(x, where);
  return s;
}

bool truthy(const json& v, const std::string& where) {
  if (v.is_boolean()) return v.get<bool>();
  const std::string t = text(v, where);
  if (t == "true" || t == "1") return true;
  if (t == "false" || t == "0") return false;
  throw InvalidArgument(where + ": expected true or false");
}

double number(const json& v, const std::string& where) {
  double d = 0;
  if (v.is_number()) {
    d = v.get<double>();
  } else {
    const std::string t = text(v, where);
    size_t used = 0;
    try {
      d = std::stod(t, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != t.size()) throw InvalidArgument(where + ": '" + t + "' is not a number");
  }
  if (!std::isfinite(d)) throw InvalidArgument(where + ": expected a finite number");
  return d;
}

void set_kv(StreamConfig& s, const std::string& kv, const std::string& where) {
  const auto eq = kv.find('=');
  if (eq == std::string::npos || eq == 0) throw InvalidArgument(where + " expects name=value, got '" + kv + "'");
  const std::string name = kv.substr(0, eq);
  if (!has_param(s.codec, name)) throw InvalidArgument(where + ": codec " + s.codec + " has no parameter '" + name + "'");
  s.params[name] = kv.substr(eq + 1);
}

}  // namespace

RunConfig apply_run_options(RunConfig c, const json& o, const std::string& source) {
  if (!o.is_object()) throw InvalidArgument(source + ": options must be an object");
  for (auto it = o.begin(); it != o.end(); ++it) {
    const auto& names = run_option_names();
    if (std::find(names.begin(), names.end(), it.key()) == names.end())
      throw InvalidArgument(source + ": unknown option '" + it.key() + "' (options are kvwb run flag names with "
                            "underscores, e.g. k_codec, bits_k, block_size, boundary)");
  }
  auto get = [&](const char* k) -> const json* { return o.contains(k) ? &o.at(k) : nullptr; };
  const bool flags = source == kCommandLineSource;
  auto where = [&](const char* k) {
    if (!flags) return source + ": " + k;
    std::string f = std::string("flag --") + k;
    std::replace(f.begin(), f.end(), '_', '-');
    return f + " " + o.at(k).dump();
  };
  // Command-line flags: each option's codec parameters are checked as it is applied, so an error
  // names that flag. Grid cells keep the documented behaviour (docs/sweeps.md): a bad parameter
  // value fails that cell only, when it runs.
  auto check_streams = [&](const std::string& w) {
    if (!flags) return;
    RunConfig t;
    t.k = c.k;
    t.v = c.v;
    validate_run_config(t, w);
  };
  auto one = [&](StreamConfig& s, const std::vector<std::string>& names, const std::string& v, const char* k) {
    if (!try_set(s, names, v)) throw InvalidArgument(where(k) + " does not apply to codec " + s.codec);
    check_streams(where(k));
  };
  auto both = [&](const std::vector<std::string>& names, const std::string& v, const char* k) {
    const bool a = try_set(c.k, names, v);
    const bool b = try_set(c.v, names, v);
    if (!a && !b)
      throw InvalidArgument(where(k) + " applies to neither the K codec " + c.k.codec + " nor the V codec " + c.v.codec);
    check_streams(where(k));
  };
  if (const json* v = get("k_codec")) {
    const std::string name = text(*v, where("k_codec"));
    codec::codec_id_from_name(name);
    if (name != c.k.codec) c.k = StreamConfig{name, {}, {}, ""};
  }
  if (const json* v = get("v_codec")) {
    const std::string name = text(*v, where("v_codec"));
    codec::codec_id_from_name(name);
    if (name != c.v.codec) c.v = StreamConfig{name, {}, {}, ""};
  }
  if (const json* v = get("bits_k")) one(c.k, {"bit_width", "bits", "magnitude_bits"}, text(*v, where("bits_k")), "bits_k");
  if (const json* v = get("bits_v")) one(c.v, {"bit_width", "bits", "magnitude_bits"}, text(*v, where("bits_v")), "bits_v");
  if (const json* v = get("block_size")) {
    const double b = number(*v, where("block_size"));
    if (b < 8 || b > 65536 || b != static_cast<double>(static_cast<long long>(b)))
      throw InvalidArgument(where("block_size") + " must be an integer in 8..65536");
    c.block_size = static_cast<uint32_t>(b);
  }
  if (const json* v = get("block_rows")) {
    c.block_rows = parse_block_rows(text(*v, where("block_rows")), where("block_rows"));
  }
  if (const json* v = get("pca")) {
    const std::string p = text(*v, where("pca"));
    if (p != "exact" && p != "rsvd" && p != "randomized") throw InvalidArgument(where("pca") + " must be exact or rsvd");
    both({"pca_method"}, p == "exact" ? "exact" : "randomized", "pca");
  }
  if (const json* v = get("rsvd_rank")) both({"rsvd_target_rank"}, text(*v, where("rsvd_rank")), "rsvd_rank");
  if (const json* v = get("variance_ratio")) both({"variance_ratio"}, text(*v, where("variance_ratio")), "variance_ratio");
  if (const json* v = get("kmeans_k")) both({"k"}, text(*v, where("kmeans_k")), "kmeans_k");
  if (const json* v = get("outliers_k")) {
    if (!v->is_null()) one(c.k, {"outlier_threshold"}, text(*v, where("outliers_k")), "outliers_k");
  }
  if (const json* v = get("outliers_v")) {
    if (!v->is_null()) one(c.v, {"outlier_threshold"}, text(*v, where("outliers_v")), "outliers_v");
  }
  if (const json* v = get("skeleton_dtype")) both({"skeleton_dtype"}, text(*v, where("skeleton_dtype")), "skeleton_dtype");
  if (const json* v = get("share_basis_v")) {
    if (truthy(*v, where("share_basis_v"))) one(c.v, {"share_basis"}, "true", "share_basis_v");
  }
  if (const json* v = get("seed")) both({"seed"}, text(*v, where("seed")), "seed");
  if (const json* v = get("centroids_k")) c.k.centroids_file = text(*v, where("centroids_k"));
  if (const json* v = get("centroids_v")) c.v.centroids_file = text(*v, where("centroids_v"));
  for (const char* key : {"k_param", "v_param"}) {
    if (const json* v = get(key)) {
      StreamConfig& s = key[0] == 'k' ? c.k : c.v;
      if (v->is_array())
        for (const auto& x : *v) set_kv(s, text(x, where(key)), where(key));
      else
        set_kv(s, text(*v, where(key)), where(key));
      check_streams(where(key));
    }
  }
  if (const json* v = get("q_precond")) c.q_precond = v->is_null() ? "" : text(*v, where("q_precond"));
  if (const json* v = get("q_precond_skip"))
    c.q_precond_skip_layers = parse_layer_list(layer_list_text(*v, where("q_precond_skip")), where("q_precond_skip"));
  if (const json* v = get("target_cond")) {
    if (v->is_null()) {
      c.target_cond.reset();
    } else {
      const double t = number(*v, where("target_cond"));
      if (!(t > 1.0)) throw InvalidArgument(where("target_cond") + " must be > 1");
      c.target_cond = t;
    }
  }
  if (const json* v = get("boundary")) c.boundary = parse_layer_list(layer_list_text(*v, where("boundary")), where("boundary"));
  if (const json* v = get("layers")) c.layers = parse_layer_list(layer_list_text(*v, where("layers")), where("layers"));
  if (const json* v = get("k_domain")) {
    c.k.k_domain = parse_k_domain(text(*v, where("k_domain")), where("k_domain"));
  }
  if (const json* v = get("turbo_policy"))
    c.turbo_policy = parse_turbo_policy(text(*v, where("turbo_policy")), where("turbo_policy"));
  if (const json* v = get("threads")) {
    const double t = number(*v, where("threads"));
    if (!(t >= 0 && t <= kMaxThreads) || t != std::floor(t))
      throw InvalidArgument(where("threads") + " must be an integer in 0.." + std::to_string(kMaxThreads));
    c.threads = static_cast<int>(t);
  }
  if (const json* v = get("backend"))
    c.backend = parse_backend(text(*v, where("backend")), where("backend"));
  if (const json* v = get("no_attention")) {
    if (truthy(*v, where("no_attention"))) c.attention_metrics = false;
  }
  if (const json* v = get("attn_sample")) c.attn_sample = parse_attn_sample(*v, where("attn_sample"));
  if (flags) validate_run_config(c, source);
  return c;
}

uint64_t grid_cell_count(const json& grid, const std::string& source) {
  if (!grid.is_object()) throw InvalidArgument(source + ": a sweep grid must be a JSON object");
  uint64_t total = 1;
  for (auto it = grid.begin(); it != grid.end(); ++it) {
    if (it.key() == "fixed" || it.key() == "base") continue;
    if (!it->is_array() || it->empty())
      throw InvalidArgument(source + ": grid key '" + it.key() + "' must map to a non-empty list of values");
    total *= it->size();  // both factors <= kMaxGridCells after the check below: no overflow
    if (total > static_cast<uint64_t>(io::kMaxGridCells))
      throw InvalidArgument(source + ": the grid has more than " + std::to_string(io::kMaxGridCells) +
                            " cells (the limit of one sweep; split it into several stores)");
  }
  return total;
}

std::vector<GridCell> expand_grid(const json& grid, const std::string& source) {
  const uint64_t total = grid_cell_count(grid, source);
  RunConfig base;
  if (grid.contains("base")) base = run_config_from_json(grid.at("base"), source + ": base");
  json fixed = json::object();
  if (grid.contains("fixed")) {
    fixed = grid.at("fixed");
    if (!fixed.is_object()) throw InvalidArgument(source + ": \"fixed\" must be an object");
  }
  std::vector<std::pair<std::string, json>> axes;
  for (auto it = grid.begin(); it != grid.end(); ++it) {
    if (it.key() == "fixed" || it.key() == "base") continue;
    axes.emplace_back(it.key(), *it);
  }
  std::vector<GridCell> cells;
  cells.reserve(total);
  std::vector<size_t> idx(axes.size(), 0);
  for (uint64_t c = 0; c < total; ++c) {
    json opts = json::object();
    for (size_t a = 0; a < axes.size(); ++a) opts[axes[a].first] = axes[a].second[idx[a]];
    json all = fixed;
    for (auto it = opts.begin(); it != opts.end(); ++it) all[it.key()] = *it;
    GridCell cell;
    cell.options = opts;
    cell.config = apply_run_options(base, all, source + ": cell " + std::to_string(c) + " " + opts.dump());
    cells.push_back(std::move(cell));
    for (size_t a = axes.size(); a-- > 0;) {
      if (++idx[a] < axes[a].second.size()) break;
      idx[a] = 0;
    }
  }
  return cells;
}

}  // namespace kvwb::sessions
