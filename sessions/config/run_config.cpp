#include "sessions/config/run_config.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <set>

#include "base/errors.h"
#include "codec/params.h"
#include "io/atomic_file.h"
#include "io/limits.h"

namespace kvwb::sessions {

using nlohmann::json;

codec::KDomain resolved_k_domain(const StreamConfig& k) {
  return k.k_domain ? *k.k_domain : codec::codec_traits(k.codec).default_k_domain;
}

std::vector<int> parse_layer_list(const std::string& text, const std::string& what) {
  // Indices and range ends are checked against io::kMaxLayers before anything is expanded, so a
  // range such as 0-2147483647 is refused at once instead of enumerated.
  std::set<int> out;
  auto index = [&](const std::string& t, const std::string& item) -> int {
    const bool digits = !t.empty() && t.size() <= 18 && std::all_of(t.begin(), t.end(), ::isdigit);
    if (!digits) throw InvalidArgument(what + ": '" + item + "' is not a layer index or range (e.g. 0,1,26-27)");
    const long long v = std::stoll(t);
    if (v >= io::kMaxLayers)
      throw InvalidArgument(what + ": layer index " + t + " in '" + item + "' exceeds the limit of " +
                            std::to_string(io::kMaxLayers - 1));
    return static_cast<int>(v);
  };
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(pos, end - pos);
    item.erase(std::remove_if(item.begin(), item.end(), ::isspace), item.end());
    if (!item.empty()) {
      const size_t dash = item.find('-', 1);
      if (dash != std::string::npos) {
        const int a = index(item.substr(0, dash), item);
        const int b = index(item.substr(dash + 1), item);
        if (b < a) throw InvalidArgument(what + ": range '" + item + "' ends before it starts");
        for (int l = a; l <= b; ++l) out.insert(l);
      } else {
        out.insert(index(item, item));
      }
    }
    pos = end + 1;
  }
  return {out.begin(), out.end()};
}

int layer_index_from_json(const json& v, const std::string& where) {
  if (!v.is_number_integer() && !v.is_number_unsigned())
    throw InvalidArgument(where + ": " + v.dump() + " is not a layer index; expected an integer in 0.." +
                          std::to_string(io::kMaxLayers - 1));
  const bool neg = v.is_number_integer() && !v.is_number_unsigned() && v.get<long long>() < 0;
  if (neg || v.get<unsigned long long>() >= static_cast<unsigned long long>(io::kMaxLayers))
    throw InvalidArgument(where + ": layer index " + v.dump() + " is out of range; expected 0.." +
                          std::to_string(io::kMaxLayers - 1));
  return v.get<int>();
}

namespace {

void validate_stream_params(const StreamConfig& s, const std::string& where) {
  try {
    const auto& specs = codec::codec_params(s.codec);
    const codec::ParamReader r(s.codec, specs, s.params);
    for (const auto& spec : specs) {
      if (!s.params.count(spec.name)) continue;
      switch (spec.type) {
        case codec::ParamType::kInt: r.get_int(spec.name); break;
        case codec::ParamType::kFloat: r.get_float(spec.name); break;
        case codec::ParamType::kBool: r.get_bool(spec.name); break;
        case codec::ParamType::kChoice:
        case codec::ParamType::kTable: r.get_string(spec.name); break;
      }
    }
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(where + ": " + e.what());
  }
}

}  // namespace

void validate_run_config(const RunConfig& c, const std::string& source) {
  validate_stream_params(c.k, source + ": k");
  validate_stream_params(c.v, source + ": v");
  for (const auto& o : c.overrides) {
    if (o.layer < 0 || o.layer >= io::kMaxLayers)
      throw InvalidArgument(source + ": override layer " + std::to_string(o.layer) + " is out of range; expected 0.." +
                            std::to_string(io::kMaxLayers - 1));
    if (o.k) validate_stream_params(*o.k, source + ": overrides[" + std::to_string(o.layer) + "].k");
    if (o.v) validate_stream_params(*o.v, source + ": overrides[" + std::to_string(o.layer) + "].v");
  }
  if (c.attn_scale && !(std::isfinite(*c.attn_scale) && *c.attn_scale > 0))
    throw InvalidArgument(source + ": attn_scale must be a finite number > 0");
  if (c.target_cond && !(std::isfinite(*c.target_cond) && *c.target_cond > 1.0))
    throw InvalidArgument(source + ": target_cond must be a finite number > 1");
  if (c.threads < 0 || c.threads > kMaxThreads)
    throw InvalidArgument(source + ": threads must be in 0.." + std::to_string(kMaxThreads));
}

namespace {

std::string value_text(const json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  if (v.is_number_unsigned()) return std::to_string(v.get<unsigned long long>());
  if (v.is_number_float()) {
    std::string s = json(v.get<double>()).dump();
    return s;
  }
  throw InvalidArgument(where + ": parameter values must be strings, numbers or booleans");
}

StreamConfig stream_from_json(const json& j, const std::string& where) {
  if (!j.is_object()) throw InvalidArgument(where + " must be an object");
  StreamConfig s;
  s.codec = "";
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    if (key == "codec") {
      s.codec = it->get<std::string>();
    } else if (key == "k_domain") {
      s.k_domain = parse_k_domain(it->get<std::string>(), where + ".k_domain");
    } else if (key == "centroids_file") {
      s.centroids_file = it->get<std::string>();
    } else if (key == "params") {
      if (!it->is_object()) throw InvalidArgument(where + ".params must be an object");
      for (auto p = it->begin(); p != it->end(); ++p) s.params[p.key()] = value_text(*p, where + ".params." + p.key());
    } else {
      throw InvalidArgument(where + ": unknown key '" + key + "' (known: codec, params, k_domain, centroids_file)");
    }
  }
  if (s.codec.empty()) throw InvalidArgument(where + ".codec is required");
  try {
    codec::codec_id_from_name(s.codec);  // validates the name
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(where + ".codec: " + e.what());
  }
  return s;
}

json stream_to_json(const StreamConfig& s, bool is_k) {
  json j;
  j["codec"] = s.codec;
  json params = json::object();
  for (const auto& spec : codec::codec_params(s.codec))
    if (!spec.default_value.empty()) params[spec.name] = spec.default_value;
  for (const auto& [k, v] : s.params) params[k] = v;
  j["params"] = params;
  if (is_k) j["k_domain"] = codec::k_domain_name(resolved_k_domain(s));
  if (!s.centroids_file.empty()) j["centroids_file"] = s.centroids_file;
  return j;
}

std::vector<int> int_list(const json& v, const std::string& where) {
  if (v.is_string()) return parse_layer_list(v.get<std::string>(), where);
  if (!v.is_array()) throw InvalidArgument(where + " must be a list of layer indices");
  std::set<int> out;
  for (const auto& x : v) out.insert(layer_index_from_json(x, where));
  return {out.begin(), out.end()};
}

}  // namespace

uint32_t parse_attn_sample(const json& v, const std::string& where) {
  if (v.is_string()) {
    const std::string t = v.get<std::string>();
    if (t == "all") return 0;
    char* end = nullptr;
    const unsigned long n = std::strtoul(t.c_str(), &end, 10);
    if (!t.empty() && end && *end == '\0' && n >= 1 && n <= (1u << 20)) return static_cast<uint32_t>(n);
  } else if (v.is_number_integer()) {
    const int64_t n = v.get<int64_t>();
    if (n >= 1 && n <= (1 << 20)) return static_cast<uint32_t>(n);
  }
  throw InvalidArgument(where + " must be \"all\" or an integer in 1..1048576 (query positions per "
                        "sequence and q head), not " + v.dump());
}

RunConfig run_config_from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw InvalidArgument(source + ": a run configuration must be a JSON object");
  RunConfig c;
  try {
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& key = it.key();
      const std::string where = source + ": " + key;
      if (key == "block_size") {
        if (!it->is_number_integer()) throw InvalidArgument(where + " must be an integer in 8..65536, got " + it->dump());
        const auto v = it->get<long long>();
        if (v < 8 || v > 65536) throw InvalidArgument(where + " must be in 8..65536");
        c.block_size = static_cast<uint32_t>(v);
      } else if (key == "block_rows") {
        c.block_rows = parse_block_rows(it->get<std::string>(), where);
      } else if (key == "layers") {
        c.layers = int_list(*it, where);
      } else if (key == "include_sliding") {
        c.include_sliding = it->get<bool>();
      } else if (key == "boundary") {
        c.boundary = int_list(*it, where);
      } else if (key == "k") {
        c.k = stream_from_json(*it, where);
      } else if (key == "v") {
        c.v = stream_from_json(*it, where);
        if (c.v.k_domain) throw InvalidArgument(where + ": k_domain applies to the K stream only");
      } else if (key == "overrides") {
        if (!it->is_array()) throw InvalidArgument(where + " must be a list");
        for (const auto& o : *it) {
          LayerOverride lo;
          if (!o.is_object() || !o.contains("layer"))
            throw InvalidArgument(where + ": each override must be an object with a layer");
          lo.layer = layer_index_from_json(o.at("layer"), where + ": layer");
          for (auto f = o.begin(); f != o.end(); ++f) {
            if (f.key() == "layer") continue;
            if (f.key() == "k") lo.k = stream_from_json(*f, where + "[" + std::to_string(lo.layer) + "].k");
            else if (f.key() == "v") lo.v = stream_from_json(*f, where + "[" + std::to_string(lo.layer) + "].v");
            else throw InvalidArgument(where + ": unknown override key '" + f.key() + "'");
          }
          c.overrides.push_back(lo);
        }
      } else if (key == "q_precond") {
        c.q_precond = it->is_null() ? "" : it->get<std::string>();
      } else if (key == "q_precond_skip_layers") {
        c.q_precond_skip_layers = int_list(*it, where);
      } else if (key == "q_precond_auto_skip") {
        c.q_precond_auto_skip = it->get<bool>();
      } else if (key == "target_cond") {
        if (!it->is_null()) {
          c.target_cond = it->get<double>();
          if (!(std::isfinite(*c.target_cond) && *c.target_cond > 1.0))
            throw InvalidArgument(where + " must be a finite number > 1");
        }
      } else if (key == "turbo_policy") {
        c.turbo_policy = parse_turbo_policy(it->get<std::string>(), where);
      } else if (key == "attention_metrics") {
        c.attention_metrics = it->get<bool>();
      } else if (key == "attn_sample") {
        c.attn_sample = parse_attn_sample(*it, source + ": attn_sample");
      } else if (key == "attn_scale") {
        if (!it->is_null()) c.attn_scale = it->get<double>();
      } else if (key == "threads") {
        if (!it->is_number_integer() || it->get<long long>() < 0 || it->get<long long>() > kMaxThreads)
          throw InvalidArgument(where + " must be an integer in 0.." + std::to_string(kMaxThreads));
        c.threads = it->get<int>();
      } else if (key == "backend") {
        c.backend = parse_backend(it->get<std::string>(), where);
      } else {
        throw InvalidArgument(source + ": unknown key '" + key + "' in run configuration (see docs/run-config.md)");
      }
    }
  } catch (const json::exception& e) {
    throw InvalidArgument(source + ": " + e.what());
  }
  validate_run_config(c, source);
  return c;
}

json run_config_to_json(const RunConfig& c) {
  json j;
  j["block_size"] = c.block_size;
  j["block_rows"] = codec::block_rows_name(c.block_rows);
  j["layers"] = c.layers;
  j["include_sliding"] = c.include_sliding;
  j["boundary"] = c.boundary;
  j["k"] = stream_to_json(c.k, true);
  j["v"] = stream_to_json(c.v, false);
  json ov = json::array();
  for (const auto& o : c.overrides) {
    json x;
    x["layer"] = o.layer;
    if (o.k) x["k"] = stream_to_json(*o.k, true);
    if (o.v) x["v"] = stream_to_json(*o.v, false);
    ov.push_back(x);
  }
  j["overrides"] = ov;
  j["q_precond"] = c.q_precond.empty() ? json(nullptr) : json(c.q_precond);
  j["q_precond_skip_layers"] = c.q_precond_skip_layers;
  j["q_precond_auto_skip"] = c.q_precond_auto_skip;
  j["target_cond"] = c.target_cond ? json(*c.target_cond) : json(nullptr);
  j["turbo_policy"] = turbo_policy_name(c.turbo_policy);
  j["attention_metrics"] = c.attention_metrics;
  j["attn_scale"] = c.attn_scale ? json(*c.attn_scale) : json(nullptr);
  // The default sample is left out so that configuration hashes made before attn_sample existed
  // stay valid (stores, sessions); any other value, "all" included, is part of the identity.
  if (c.attn_sample != kDefaultAttnSample) j["attn_sample"] = c.attn_sample ? json(c.attn_sample) : json("all");
  return j;  // threads and backend are execution choices, not part of the configuration identity
}

std::string run_config_hash(const RunConfig& c) {
  const std::string text = run_config_to_json(c).dump();
  return io::sha256_hex(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

}  // namespace kvwb::sessions
