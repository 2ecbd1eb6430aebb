#include "sessions/bundle/bundle.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "base/errors.h"
#include "codec/codec.h"
#include "codec/math/calibration.h"
#include "codec/math/quantizer.h"
#include "codec/params.h"
#include "codec/traits.h"
#include "io/atomic_file.h"
#include "io/capture.h"
#include "io/limits.h"
#include "io/safetensors.h"
#include "sessions/bundle/calibration_export.h"
#include "sessions/config/layer_plan.h"

namespace kvwb::sessions {

namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

constexpr const char* kSigmaST = "sigma_q.safetensors";
constexpr const char* kSigmaJson = "sigma_q.json";
constexpr const char* kCodecConfig = "codec_config.json";
constexpr const char* kDeployEnv = "deploy.env";
constexpr const char* kManifest = "MANIFEST.json";

ordered_json num(double v) { return std::isfinite(v) ? ordered_json(v) : ordered_json(nullptr); }

std::string join_ints(const std::vector<int>& v, const char* sep = ",") {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + std::to_string(v[i]);
  return s;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char b[32];
  std::strftime(b, sizeof b, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return b;
}

/// Whether `dir` is recognisably a bundle (the only kind of folder `--force` may replace): a
/// MANIFEST.json naming a bundle_format_version, and nothing but regular files of the bundle file
/// set (bundle-format.md §1). Anything else (a capture, a subfolder, a foreign file) makes it not ours.
bool is_bundle_folder(const fs::path& dir, std::string* why) {
  static const std::regex file_re(
      "sigma_q\\.safetensors|sigma_q\\.json|codec_config\\.json|deploy\\.env|MANIFEST\\.json|[KV]_b[1-4]_centroids\\.f32");
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (!e.is_regular_file(ec) || e.is_symlink(ec) || !std::regex_match(n, file_re)) {
      *why = "it holds '" + n + "', which is not a bundle file";
      return false;
    }
  }
  if (ec) {
    *why = "it cannot be listed (" + ec.message() + ")";
    return false;
  }
  try {
    const auto b = io::read_file((dir / kManifest).string(), 16u << 20);
    const json m = json::parse(b.begin(), b.end());
    if (!m.is_object() || !m.contains("bundle_format_version") || !m["bundle_format_version"].is_number_integer()) {
      *why = "its MANIFEST.json has no bundle_format_version";
      return false;
    }
  } catch (const std::exception&) {
    *why = "it has no readable MANIFEST.json";
    return false;
  }
  return true;
}

std::string text_of(const std::vector<uint8_t>& b) { return std::string(b.begin(), b.end()); }

bool is_pow2(long long v) { return v > 0 && (v & (v - 1)) == 0; }

/// Bit width of a stream whose codec uses a centroid table (its table has 2^bit_width entries).
int table_bits(const StreamConfig& sc) {
  const codec::ParamReader pr(sc.codec, codec::codec_params(sc.codec), sc.params);
  return static_cast<int>(pr.get_int("bit_width"));
}

/// Whether the reference plugin implements the codec named `name` (Kakeya-PCA only, §6). Names
/// come from configurations and files, so an unknown one is simply not the plugin's.
bool plugin_codec(const std::string& name) {
  return codec::find_codec_id(name) == codec::CodecId::kKakeyaPca;
}

/// Codec parameters as typed JSON (§5): every parameter of the codec's spec, null when unset;
/// u64 seeds as hex strings; kakeya_pca's `centroids` as "gaussian" or the bundle's file name.
ordered_json params_json(const StreamConfig& sc, const std::string& centroid_name) {
  ordered_json p = ordered_json::object();
  for (const auto& spec : codec::codec_params(sc.codec)) {
    auto it = sc.params.find(spec.name);
    const std::string text = it != sc.params.end() ? it->second : spec.default_value;
    if (spec.name == "centroids" && codec::codec_traits(sc.codec).centroid_table) {
      p[spec.name] = centroid_name.empty() ? "gaussian" : centroid_name;
      continue;
    }
    if (text.empty()) {
      p[spec.name] = nullptr;
      continue;
    }
    try {
      if (spec.name == "seed") {
        char b[24];
        std::snprintf(b, sizeof b, "0x%llX", std::stoull(text, nullptr, 0));
        p[spec.name] = b;
      } else if (spec.type == codec::ParamType::kInt) {
        p[spec.name] = std::stoll(text, nullptr, 0);
      } else if (spec.type == codec::ParamType::kFloat) {
        p[spec.name] = std::stod(text);
      } else if (spec.type == codec::ParamType::kBool) {
        p[spec.name] = (text == "true" || text == "1");
      } else {
        p[spec.name] = text;
      }
    } catch (const std::exception&) {
      throw InvalidArgument(sc.codec + " parameter " + spec.name + ": cannot read value '" + text + "'");
    }
  }
  return p;
}

ordered_json stream_json(const StreamConfig& sc, bool is_k, const std::string& centroid_name) {
  ordered_json s;
  s["codec"] = sc.codec;
  s["params"] = params_json(sc, centroid_name);
  if (is_k) s["k_domain"] = codec::k_domain_name(resolved_k_domain(sc));
  return s;
}

struct Stats {
  double min = 0, median = 0, p95 = 0, max = 0, mean = 0;
};
Stats stats_of(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  s.min = v.front();
  s.max = v.back();
  s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  const double r = 0.95 * static_cast<double>(n - 1);
  const size_t lo = static_cast<size_t>(std::floor(r));
  const size_t hi = std::min(lo + 1, n - 1);
  s.p95 = v[lo] + (r - static_cast<double>(lo)) * (v[hi] - v[lo]);
  double acc = 0;
  for (double x : v) acc += x;
  s.mean = acc / static_cast<double>(n);
  return s;
}
ordered_json stats_json(const Stats& s) {
  return ordered_json{{"min", s.min}, {"median", s.median}, {"p95", s.p95}, {"max", s.max}, {"mean", s.mean}};
}

// ---------------------------------------------------------------------------------------------
// Σ_q tensors: parsing names and numerical checks (shared by the exporter and the checker).

struct LayerTensors {
  const io::SafeTensor* chol = nullptr;
  const io::SafeTensor* inv = nullptr;
  const io::SafeTensor* sigma = nullptr;
};

/// Groups layer_<l>_{chol,inv_chol,sigma}; unknown names go to `errors`.
std::map<int, LayerTensors> group_tensors(const io::SafeTensorsFile& f, std::vector<std::string>& errors) {
  static const std::regex re("layer_(0|[1-9][0-9]{0,8})_(chol|inv_chol|sigma)");
  std::map<int, LayerTensors> out;
  for (const auto& t : f.tensors) {
    std::smatch m;
    if (!std::regex_match(t.name, m, re)) {
      errors.push_back(std::string(kSigmaST) + ": unexpected tensor '" + t.name +
                       "' (expected layer_<l>_chol, layer_<l>_inv_chol, layer_<l>_sigma)");
      continue;
    }
    const long l = std::stol(m[1].str());
    if (l >= io::kMaxLayers) {
      errors.push_back(std::string(kSigmaST) + ": tensor '" + t.name + "': layer index exceeds the limit of " +
                       std::to_string(io::kMaxLayers - 1));
      continue;
    }
    auto& lt = out[static_cast<int>(l)];
    if (m[2] == "chol") lt.chol = &t;
    else if (m[2] == "inv_chol") lt.inv = &t;
    else lt.sigma = &t;
  }
  return out;
}

/// Structural and numerical checks of L and L⁻¹ per (layer, head). `sigma_fin(layer, head)`
/// returns the f64 matrix that was factored, or an empty vector when unknown (no factor check).
/// `tolerate_tiny_inv_upper`: count strict-upper inv_chol entries with |x| <= the bar instead of
/// failing (reference artefacts computed L⁻¹ by a general inverse); their number and largest
/// magnitude are returned through `tiny_count` / `tiny_max`.
template <class SigmaFin>
std::vector<RoundTripPair> roundtrip_checks(const std::map<int, LayerTensors>& layers, size_t H, size_t D,
                                            SigmaFin&& sigma_fin, std::vector<std::string>& errors,
                                            bool tolerate_tiny_inv_upper = false, size_t* tiny_count = nullptr,
                                            double* tiny_max = nullptr) {
  std::vector<RoundTripPair> pairs;
  for (const auto& [l, lt] : layers) {
    const std::string ln = "layer_" + std::to_string(l);
    if (!lt.chol || !lt.inv) {
      errors.push_back(std::string(kSigmaST) + ": " + ln + " lacks " + (!lt.chol ? "_chol" : "_inv_chol"));
      continue;
    }
    bool shapes_ok = true;
    for (const auto* t : {lt.chol, lt.inv, lt.sigma}) {
      if (!t) continue;
      if (t->dtype != "F32") {
        errors.push_back(std::string(kSigmaST) + ": " + t->name + " has dtype " + t->dtype + ", expected F32");
        shapes_ok = false;
      }
      if (t->shape != std::vector<uint64_t>{H, D, D}) {
        std::string sh;
        for (auto d : t->shape) sh += (sh.empty() ? "" : ", ") + std::to_string(d);
        errors.push_back(std::string(kSigmaST) + ": " + t->name + " has shape [" + sh + "], expected [" +
                         std::to_string(H) + ", " + std::to_string(D) + ", " + std::to_string(D) + "]");
        shapes_ok = false;
      }
    }
    if (!shapes_ok) continue;
    const auto L = io::tensor_to_f32(*lt.chol);
    const auto Li = io::tensor_to_f32(*lt.inv);
    for (size_t h = 0; h < H; ++h) {
      const float* a = L.data() + h * D * D;
      const float* b = Li.data() + h * D * D;
      const std::string where = std::string(kSigmaST) + ": " + ln + ", kv head " + std::to_string(h) + ": ";
      bool structural = true;
      for (size_t r = 0; r < D && structural; ++r)
        for (size_t c = 0; c < D; ++c) {
          const float x = a[r * D + c], y = b[r * D + c];
          if (!std::isfinite(x) || !std::isfinite(y)) {
            errors.push_back(where + "non-finite value at [" + std::to_string(r) + "][" + std::to_string(c) + "]");
            structural = false;
            break;
          }
          if (c > r && x == 0.0f && y != 0.0f && tolerate_tiny_inv_upper &&
              std::fabs(y) <= kBundleRoundTripBar) {
            if (tiny_count) ++*tiny_count;
            if (tiny_max) *tiny_max = std::max(*tiny_max, static_cast<double>(std::fabs(y)));
            continue;
          }
          if (c > r && (x != 0.0f || y != 0.0f)) {
            char v[32];
            std::snprintf(v, sizeof v, "%.9g", static_cast<double>(x != 0.0f ? x : y));
            errors.push_back(where + (x != 0.0f ? "chol" : "inv_chol") + " is not lower triangular: [" +
                             std::to_string(r) + "][" + std::to_string(c) + "] = " + v +
                             " (strict upper triangle must be exactly 0)");
            structural = false;
            break;
          }
          if (c == r && !(x > 0.0f)) {
            errors.push_back(where + "chol diagonal [" + std::to_string(r) + "][" + std::to_string(r) + "] = " +
                             std::to_string(x) + " is not positive");
            structural = false;
            break;
          }
        }
      if (!structural) continue;
      RoundTripPair p;
      p.layer = l;
      p.kv_head = static_cast<int>(h);
      for (size_t r = 0; r < D; ++r)
        for (size_t c = 0; c < D; ++c) {
          double f = 0, g = 0;
          for (size_t k = 0; k < D; ++k) {
            f += static_cast<double>(a[r * D + k]) * b[k * D + c];
            g += static_cast<double>(b[r * D + k]) * a[k * D + c];
          }
          const double id = r == c ? 1.0 : 0.0;
          p.fwd_err = std::max(p.fwd_err, std::fabs(f - id));
          p.rev_err = std::max(p.rev_err, std::fabs(g - id));
        }
      const std::vector<double> S = sigma_fin(l, h);
      if (S.size() == D * D) {
        double num_max = 0, den_max = 0;
        for (size_t r = 0; r < D; ++r)
          for (size_t c = 0; c < D; ++c) {
            double llt = 0;
            for (size_t k = 0; k < D; ++k) llt += static_cast<double>(a[r * D + k]) * a[c * D + k];
            num_max = std::max(num_max, std::fabs(llt - S[r * D + c]));
            den_max = std::max(den_max, std::fabs(S[r * D + c]));
          }
        p.factor_err_rel = den_max > 0 ? num_max / den_max : num_max;
      } else {
        p.factor_err_rel = std::nan("");
      }
      pairs.push_back(p);
    }
  }
  return pairs;
}

bool pair_passes(const RoundTripPair& p) {
  return p.fwd_err <= kBundleRoundTripBar && p.rev_err <= kBundleRoundTripBar &&
         (std::isnan(p.factor_err_rel) || p.factor_err_rel <= kBundleRoundTripBar);
}

/// "layer 3, kv head 1: fwd 1e-3, rev 2e-3, factor 4e-6" for up to ten worst failing pairs.
std::string worst_pairs_text(std::vector<RoundTripPair> pairs) {
  std::erase_if(pairs, [](const RoundTripPair& p) { return pair_passes(p); });
  auto worst = [](const RoundTripPair& p) {
    return std::max({p.fwd_err, p.rev_err, std::isnan(p.factor_err_rel) ? 0.0 : p.factor_err_rel});
  };
  std::sort(pairs.begin(), pairs.end(), [&](const auto& a, const auto& b) { return worst(a) > worst(b); });
  std::ostringstream os;
  os.precision(3);
  std::set<int> layers;
  for (size_t i = 0; i < pairs.size() && i < 10; ++i) {
    const auto& p = pairs[i];
    os << (i ? "; " : "") << "layer " << p.layer << ", kv head " << p.kv_head << ": fwd_err " << p.fwd_err
       << ", rev_err " << p.rev_err << ", factor_err_rel " << p.factor_err_rel;
    layers.insert(p.layer);
  }
  os << " (bar " << kBundleRoundTripBar << "); consider adding layer(s) "
     << join_ints(std::vector<int>(layers.begin(), layers.end())) << " to q_precond_skip_layers or applying "
     << "Tikhonov re-regularisation (target_cond, codec-kakeya.md §8.5)";
  return os.str();
}

ordered_json roundtrip_json(const std::vector<RoundTripPair>& pairs, bool structural_ok) {
  std::vector<double> f, r, x;
  bool pf = true, pr = true, px = true;
  ordered_json arr = ordered_json::array();
  for (const auto& p : pairs) {
    f.push_back(p.fwd_err);
    r.push_back(p.rev_err);
    x.push_back(p.factor_err_rel);
    pf = pf && p.fwd_err <= kBundleRoundTripBar;
    pr = pr && p.rev_err <= kBundleRoundTripBar;
    px = px && p.factor_err_rel <= kBundleRoundTripBar;
    arr.push_back(ordered_json{{"layer", p.layer},
                               {"kv_head", p.kv_head},
                               {"fwd_err", p.fwd_err},
                               {"rev_err", p.rev_err},
                               {"factor_err_rel", num(p.factor_err_rel)}});
  }
  ordered_json j;
  j["bar"] = kBundleRoundTripBar;
  j["pass"] = pf && pr && px && structural_ok;
  j["pass_detail"] = {{"fwd", pf}, {"rev", pr}, {"factor", px}};
  j["summary"] = {{"fwd_err", stats_json(stats_of(f))},
                  {"rev_err", stats_json(stats_of(r))},
                  {"factor_err_rel", stats_json(stats_of(x))}};
  j["pairs"] = arr;
  return j;
}

bool deploy_path_ok(const std::string& p) {
  return !p.empty() && std::all_of(p.begin(), p.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '/' || c == '+' || c == '-';
  });
}

std::string json_number_text(double v) { return json(v).dump(); }

std::vector<int> json_ints(const json& v) {
  std::vector<int> out;
  if (v.is_array())
    for (const auto& x : v)
      if (x.is_number_integer() && x.get<long long>() >= INT32_MIN && x.get<long long>() <= INT32_MAX)
        out.push_back(x.get<int>());
  return out;
}

/// "layers 1,2,3: b=2; layers 0: b=3" of a width -> layers map (§10).
std::string widths_text(const std::map<int, std::vector<int>>& layers_of) {
  std::string s;
  for (const auto& [b, ls] : layers_of)
    s += (s.empty() ? "" : "; ") + std::string("layers ") + join_ints(ls) + ": b=" + std::to_string(b);
  return s;
}

/// The bit width a deploy.env names for a stream with per-layer widths (§10): the most common,
/// ties to the run-level width `base`, then to the smaller.
int most_common_width(const std::map<int, std::vector<int>>& layers_of, int base) {
  int best = layers_of.begin()->first;
  for (const auto& [b, ls] : layers_of) {
    const size_t n = ls.size(), nb = layers_of.at(best).size();
    if (n > nb || (n == nb && b == base && best != base)) best = b;
  }
  return best;
}

/// Per-layer bit widths of a table stream as codec_config.json describes them (§5, §10): every
/// layer in scope, not a boundary layer, whose stream (run-level or layer_overrides) runs a
/// centroid-table codec. Streams whose run-level codec has no table have none (as the export).
struct JsonStreamWidths {
  bool table = false;            // the run-level codec uses a centroid table
  int base_bits = 0;             // streams.<S>.params.bit_width (0 when absent)
  std::map<int, int> bits_of;    // layer -> bit width
  std::map<int, json> centroids_of;  // layer -> params.centroids of its settings
  std::map<int, std::vector<int>> layers_of() const {
    std::map<int, std::vector<int>> m;
    for (const auto& [l, b] : bits_of) m[b].push_back(l);
    return m;
  }
  /// Widths other than the run-level one: the bundle is a version 2 bundle (§10).
  bool per_layer() const {
    for (const auto& [l, b] : bits_of)
      if (b != base_bits) return true;
    return false;
  }
  /// More than one width in use: the reference plugin, one table per stream, cannot load it.
  bool multi() const { return layers_of().size() > 1; }
};

JsonStreamWidths json_stream_widths(const json& cc, const char* s) {
  JsonStreamWidths w;
  auto table_codec = [](const json& st) {
    if (!st.is_object() || !st.contains("codec") || !st["codec"].is_string()) return false;
    const auto id = codec::find_codec_id(st["codec"].get<std::string>());
    return id && codec::codec_traits(*id).centroid_table;
  };
  auto bits = [](const json& st) {
    const json p = st.value("params", json::object());
    return p.is_object() && p.contains("bit_width") && p["bit_width"].is_number_integer()
               ? p["bit_width"].get<int>()
               : 0;
  };
  auto centroids = [](const json& st) {
    const json p = st.value("params", json::object());
    return p.is_object() && p.contains("centroids") ? p["centroids"] : json(nullptr);
  };
  if (!cc.is_object() || !cc.contains("streams") || !cc["streams"].is_object() ||
      !cc["streams"].contains(s))
    return w;
  const json& base = cc["streams"][s];
  w.table = table_codec(base);
  if (!w.table) return w;
  w.base_bits = bits(base);
  std::map<int, const json*> over;
  if (cc.contains("layer_overrides") && cc["layer_overrides"].is_array())
    for (const auto& o : cc["layer_overrides"])
      if (o.is_object() && o.contains("layer") && o["layer"].is_number_integer() && o.contains(s))
        over[o["layer"].get<int>()] = &o[s];
  const std::vector<int> scope = json_ints(cc.value("layers_in_scope", json::array()));
  const std::vector<int> bnd = json_ints(cc.value("boundary_skip_layers", json::array()));
  for (int l : scope) {
    if (std::find(bnd.begin(), bnd.end(), l) != bnd.end()) continue;
    const json& st = over.count(l) ? *over[l] : base;
    if (!table_codec(st)) continue;
    w.bits_of[l] = bits(st);
    w.centroids_of[l] = centroids(st);
  }
  return w;
}

}  // namespace

// -----------------------------------------------------------------------------------------------

DeployEnvPlan plan_deploy_env(const json& cc, const std::vector<std::string>& present) {
  DeployEnvPlan plan;
  auto has = [&](const std::string& n) { return std::find(present.begin(), present.end(), n) != present.end(); };
  auto find_prefix = [&](const std::string& pre) -> std::string {
    for (const auto& n : present)
      if (n.rfind(pre, 0) == 0 && n.size() > 16 && n.ends_with("_centroids.f32")) return n;
    return {};
  };
  const json streams = cc.value("streams", json::object());
  const json qp = cc.value("q_precond", json::object());
  auto stream_codec = [&](const char* s) {
    return streams.contains(s) && streams[s].is_object() ? streams[s].value("codec", std::string()) : std::string();
  };
  auto param = [&](const char* s, const char* p) -> json {
    if (!streams.contains(s) || !streams[s].contains("params")) return nullptr;
    const json& ps = streams[s]["params"];
    return ps.contains(p) ? ps[p] : json(nullptr);
  };
  auto ints = [](const json& v) {
    std::vector<int> out;
    if (v.is_array())
      for (const auto& x : v)
        if (x.is_number_integer()) out.push_back(x.get<int>());
    std::sort(out.begin(), out.end());
    return out;
  };
  const bool sigma = has(kSigmaST) && has(kSigmaJson);
  // Each stream's table file and its params.centroids; with per-layer bit widths (§10) those of
  // the most common width, and a note naming the layers that differ.
  std::map<std::string, std::pair<std::string, json>> table;
  for (const char* s : {"K", "V"}) {
    const JsonStreamWidths w = json_stream_widths(cc, s);
    if (!w.per_layer()) {
      table[s] = {find_prefix(std::string(s) + "_b"), param(s, "centroids")};
      continue;
    }
    auto layers_of = w.layers_of();
    const int b = most_common_width(layers_of, w.base_bits);
    const std::string file = centroid_file_name(s, static_cast<unsigned>(b));
    table[s] = {has(file) ? file : find_prefix(std::string(s) + "_b"),
                w.centroids_of.at(layers_of.at(b).front())};
    if (layers_of.size() < 2) continue;
    const std::string var = std::string("KAKEYA_") + s + "_CENTROIDS_PATH";
    std::string note = "per-layer bit widths: " + var + " names " + file + ", the most common " + s +
                       " width (b=" + std::to_string(b) + ", layers " + join_ints(layers_of.at(b)) +
                       "); ";
    layers_of.erase(b);
    std::string others;
    for (const auto& [ob, ls] : layers_of)
      others += (others.empty() ? "" : ", ") + centroid_file_name(s, static_cast<unsigned>(ob));
    note += "differing: " + widths_text(layers_of) + " (" + others +
            "; the reference plugin cannot load a table per layer)";
    plan.notes.push_back(note);
  }
  const std::string kfile = table["K"].first, vfile = table["V"].first;
  if (sigma) plan.vars.emplace_back("KAKEYA_SIGMA_Q_PATH", kSigmaST);
  if (!kfile.empty()) plan.vars.emplace_back("KAKEYA_K_CENTROIDS_PATH", kfile);
  if (!vfile.empty()) plan.vars.emplace_back("KAKEYA_V_CENTROIDS_PATH", vfile);
  bool calibrated = false;
  for (const char* s : {"K", "V"}) {
    const json& c = table[s].second;
    if (plugin_codec(stream_codec(s)) && c.is_string() && c.get<std::string>() != "gaussian")
      calibrated = true;
  }
  if (calibrated) plan.vars.emplace_back("KAKEYA_USE_M2_CENTROIDS", "1");
  plan.vars.emplace_back("KAKEYA_SKIP_LAYERS", join_ints(ints(qp.value("q_precond_skip_layers", json::array()))));
  plan.vars.emplace_back("KAKEYA_BOUNDARY_SKIP_LAYERS", join_ints(ints(cc.value("boundary_skip_layers", json::array()))));
  const bool enabled = qp.value("enabled", false) && plugin_codec(stream_codec("K"));
  plan.vars.emplace_back("KAKEYA_DISABLE_SIGMA_Q", enabled && sigma ? "0" : "1");
  const json kt = param("K", "outlier_threshold");
  if (plugin_codec(stream_codec("K")) && kt.is_number() && kt.get<double>() > 0)
    plan.vars.emplace_back("KAKEYA_OUTLIER_THRESHOLD", json_number_text(kt.get<double>()));

  // What deploy.env cannot express (decisions #10).
  for (const char* s : {"K", "V"}) {
    const std::string c = stream_codec(s);
    if (!c.empty() && !plugin_codec(c))
      plan.left_out.push_back(std::string(s) + " codec " + c + ": the reference plugin implements kakeya_pca only");
  }
  if (kt.is_number() && kt.get<double>() <= 0)
    plan.left_out.push_back("K outlier_threshold " + json_number_text(kt.get<double>()) +
                            ": the plugin reads an empty or zero threshold as 'no outliers'");
  const json vt = param("V", "outlier_threshold");
  if (vt.is_number())
    plan.left_out.push_back("V outlier_threshold " + json_number_text(vt.get<double>()) +
                            ": the plugin has a K outlier threshold only");
  const json ov = cc.value("layer_overrides", json::array());
  if (ov.is_array() && !ov.empty()) {
    std::vector<int> ls;
    for (const auto& o : ov)
      if (o.is_object() && o.contains("layer") && o["layer"].is_number_integer()) ls.push_back(o["layer"].get<int>());
    plan.left_out.push_back("per-layer overrides (layers " + join_ints(ls) + "): deploy.env has no per-layer settings");
  }
  if (qp.value("enabled", false) && !sigma)
    plan.left_out.push_back("Q-preconditioning: the bundle has no sigma_q files");
  return plan;
}

// -----------------------------------------------------------------------------------------------
// export_bundle and its steps (bundle-format.md §8), in the order it runs them.

namespace {

/// The destination of an export: the final folder, its parent and the temporary build folder.
struct Destination {
  fs::path dest, parent;
  std::string name;
  bool exists = false, nonempty = false;
  std::string root;  // folder written into deploy.env paths
};

/// Checks the output folder and `force`, creates its parent.
Destination prepare_destination(const std::string& out_dir, const BundleExportOptions& opt) {
  if (out_dir.empty()) throw InvalidArgument("export-bundle: no output folder given");
  Destination d;
  d.dest = fs::absolute(fs::path(out_dir)).lexically_normal();
  d.parent = d.dest.parent_path();
  d.name = d.dest.filename().string();
  if (d.name.empty() || d.name == "." || d.name == "..")
    throw InvalidArgument("export-bundle: bad output folder " + out_dir);
  std::error_code ec;
  io::remove_stale_temps(d.dest.string());
  d.exists = fs::exists(d.dest, ec);
  if (d.exists && !fs::is_directory(d.dest, ec))
    throw IoError(d.dest.string(), "exists and is not a folder");
  d.nonempty = d.exists && !fs::is_empty(d.dest, ec);
  if (d.nonempty && !opt.force)
    throw InvalidArgument("bundle folder exists: " + d.dest.string() +
                          " (use --force to replace it)");
  if (d.nonempty) {
    std::string why;
    if (!is_bundle_folder(d.dest, &why))
      throw InvalidArgument("export-bundle: " + d.dest.string() + " is not a bundle folder (" + why +
                            "); --force replaces only a bundle this tool wrote. Choose another --out");
  }
  fs::create_directories(d.parent, ec);
  if (ec) throw IoError(d.parent.string(), "cannot create the folder: " + ec.message());
  d.root = opt.deploy_root.empty() ? d.dest.string() : opt.deploy_root;
  if (!fs::path(d.root).is_absolute())
    throw InvalidArgument("deploy_root must be an absolute path: " + d.root);
  return d;
}

/// The bit widths of one table stream (§1, §10): the run-level width and, per width in use, the
/// layers that run the stream's table codec with it (boundary layers and layers overridden to
/// another codec have none).
struct StreamWidths {
  bool is_k = true;
  int base_bits = 0;
  std::map<int, std::vector<int>> layers_of;  // bit width -> ascending layers
  const char* name() const { return is_k ? "K" : "V"; }
  /// Widths other than the run-level one: a version 2 bundle (§10; the version 1 layout names
  /// the stream's table by the run-level width).
  bool per_layer() const {
    return layers_of.size() > 1 || (layers_of.size() == 1 && layers_of.begin()->first != base_bits);
  }
  /// More than one width in use: the reference plugin, one table per stream, cannot load it.
  bool multi() const { return layers_of.size() > 1; }
  /// The widths that get a table: those in use, or the run-level one when no layer uses the
  /// codec (its table is shipped as in version 1).
  std::vector<int> table_widths() const {
    std::vector<int> w;
    for (const auto& [b, ls] : layers_of) w.push_back(b);
    if (w.empty()) w.push_back(base_bits);
    return w;
  }
};

/// The table streams of `cfg` (run-level codec with a centroid table) and their widths per layer.
std::vector<StreamWidths> stream_widths(const RunConfig& cfg, const std::vector<LayerPlan>& plan) {
  std::vector<StreamWidths> out;
  for (bool is_k : {true, false}) {
    const StreamConfig& base = is_k ? cfg.k : cfg.v;
    if (!codec::codec_traits(base.codec).centroid_table) continue;
    StreamWidths w;
    w.is_k = is_k;
    w.base_bits = table_bits(base);
    for (const LayerPlan& lp : plan) {
      if (lp.boundary) continue;
      const StreamPlan& sp = lp.stream(is_k);
      if (sp.traits().centroid_table) w.layers_of[table_bits(sp.config)].push_back(lp.layer);
    }
    for (auto& [b, ls] : w.layers_of) std::sort(ls.begin(), ls.end());
    out.push_back(std::move(w));
  }
  return out;
}

/// bundle_format_version of an export: 2 when a table stream has per-layer bit widths (§10).
int format_version_of(const std::vector<StreamWidths>& widths) {
  for (const auto& w : widths)
    if (w.per_layer()) return 2;
  return 1;
}

/// Σ_q (§2, §3): calibrated on the capture when a full-attention layer in scope has q_pre, and
/// written into `tmp`.
std::optional<SigmaQCalibration> write_sigma_q(const std::string& capture_path,
                                               const io::CaptureInfo& info, const RunConfig& cfg,
                                               const std::vector<LayerPlan>& plan,
                                               const fs::path& tmp, BundleExportResult& res) {
  bool has_q = false;
  for (const LayerPlan& lp : plan) {
    const auto* li = info.layer(lp.layer);
    if (li && !lp.sliding && li->has_q_pre) has_q = true;
  }
  if (!has_q) return std::nullopt;
  SigmaQCalibration sq = calibrate_sigma_q(capture_path, cfg);
  write_sigma_q_files(tmp.string(), sq);
  if (!cfg.q_precond.empty() && cfg.q_precond != "capture")
    res.warnings.push_back("the configuration whitens with " + cfg.q_precond +
                           "; the bundle's sigma_q files are calibrated on the capture instead");
  return sq;
}

/// One centroid table of the bundle (§4), of one (stream, bit width) (§10).
struct TableInfo {
  std::string stream, file;
  int bits = 0;
  std::vector<int> layers;  // layers that use it (ascending; empty when no layer runs the codec)
  std::string source;       // "calibrated", "config", "gaussian"
  std::string config_file;  // source == "config": the configured table's path
  std::optional<CentroidCalibration> cal;
  std::vector<float> table;  // the values written
};

/// The configured centroids_file of the layers of stream `w` at width `bits`: the run-level one
/// for the run-level width, else that of the width's first layer.
std::string configured_table(const RunConfig& cfg, const std::vector<LayerPlan>& plan,
                             const StreamWidths& w, int bits) {
  const StreamConfig& base = w.is_k ? cfg.k : cfg.v;
  if (bits == w.base_bits || !w.layers_of.count(bits)) return base.centroids_file;
  const int first = w.layers_of.at(bits).front();
  for (const LayerPlan& lp : plan)
    if (lp.layer == first) return lp.stream(w.is_k).config.centroids_file;
  return {};
}

/// Centroid tables (§4, §10): one per (table stream, bit width in use), written into `tmp`.
/// Points `cfg` (its stream and the overrides of the same width) at each shipped non-Gaussian
/// table, so that the measurement run uses exactly what the bundle ships, in every layer.
std::vector<TableInfo> write_centroid_tables(const std::string& capture_path, RunConfig& cfg,
                                             const std::vector<LayerPlan>& plan,
                                             const std::vector<StreamWidths>& widths,
                                             const BundleExportOptions& opt, const fs::path& tmp,
                                             bool& calibrated) {
  auto in_tmp = [&](const std::string& f) { return (tmp / f).string(); };
  std::vector<TableInfo> tables;
  calibrated = false;
  for (const StreamWidths& w : widths) {
    for (int bits : w.table_widths()) {
      TableInfo t;
      t.stream = w.name();
      t.bits = bits;
      if (w.layers_of.count(bits)) t.layers = w.layers_of.at(bits);
      t.file = centroid_file_name(t.stream, static_cast<unsigned>(t.bits));
      t.config_file = configured_table(cfg, plan, w, bits);
      t.source = !t.config_file.empty()   ? "config"
                 : opt.calibrate_centroids ? "calibrated"
                                           : "gaussian";
      calibrated = calibrated || t.source == "calibrated";
      tables.push_back(std::move(t));
    }
  }
  std::vector<CentroidCalibration> cals;
  if (calibrated) cals = calibrate_centroid_widths(capture_path, cfg, opt.job);
  for (auto& t : tables) {
    const bool is_k = t.stream == "K";
    StreamConfig& sc = is_k ? cfg.k : cfg.v;
    std::vector<float>& table = t.table;
    if (t.source == "config") {
      const auto bytes = io::read_file(t.config_file);
      if (bytes.size() != 4u << t.bits)
        throw FormatError(t.config_file + ": " + t.stream + " centroid file holds " +
                          std::to_string(bytes.size()) + " bytes, expected " +
                          std::to_string(4u << t.bits) + " for bit_width " +
                          std::to_string(t.bits));
      table.resize(bytes.size() / 4);
      std::memcpy(table.data(), bytes.data(), bytes.size());
    } else if (t.source == "calibrated") {
      for (auto& c : cals)
        if (c.stream == t.stream && static_cast<int>(c.bits) == t.bits) t.cal = c;
      if (!t.cal)
        throw InvalidArgument("centroid calibration produced no table for " + t.stream + " b=" +
                              std::to_string(t.bits));
      table = t.cal->fit.table;
    } else {
      const auto g = codec::gaussian_table(static_cast<unsigned>(t.bits));
      table.assign(g.begin(), g.end());
    }
    write_centroid_file(in_tmp(t.file), table);
    if (t.source != "gaussian") {
      // The measurement run uses exactly the table the bundle ships, in every layer of its pool.
      const std::string path = in_tmp(t.file);
      if (codec::codec_traits(sc.codec).centroid_table && table_bits(sc) == t.bits)
        sc.centroids_file = path;
      for (auto& o : cfg.overrides) {
        auto& os = is_k ? o.k : o.v;
        if (os && codec::codec_traits(os->codec).centroid_table && table_bits(*os) == t.bits)
          os->centroids_file = path;
      }
    }
  }
  return tables;
}

/// Version 2 (§10): every layer's table, checked on the bytes as written in `tmp`: the layer's
/// stream settings in the measured configuration `cfg` name the file of its own width, and the
/// file holds exactly the table calibrated (or configured) for that width. Throws FormatError.
ordered_json check_layer_tables(const fs::path& tmp, const io::CaptureInfo& info,
                                const RunConfig& cfg, const std::vector<TableInfo>& tables) {
  std::map<std::pair<std::string, int>, const TableInfo*> by_width;
  for (const auto& t : tables) by_width[{t.stream, t.bits}] = &t;
  std::vector<LayerPlan> measured = plan_layers(info, cfg);
  std::sort(measured.begin(), measured.end(),
            [](const LayerPlan& a, const LayerPlan& b) { return a.layer < b.layer; });
  ordered_json layers = ordered_json::array();
  for (const LayerPlan& lp : measured) {
    ordered_json e;
    e["layer"] = lp.layer;
    for (bool is_k : {true, false}) {
      const char* s = is_k ? "K" : "V";
      const StreamPlan& sp = lp.stream(is_k);
      auto it = by_width.end();
      if (!lp.boundary && sp.traits().centroid_table) it = by_width.find({s, table_bits(sp.config)});
      if (it == by_width.end()) {
        e[s] = nullptr;
        continue;
      }
      const TableInfo& t = *it->second;
      const std::string where = "export-bundle: layer " + std::to_string(lp.layer) + " " + s +
                                " (b=" + std::to_string(t.bits) + "): ";
      const auto bytes = io::read_file((tmp / t.file).string());
      if (bytes.size() != t.table.size() * 4 ||
          std::memcmp(bytes.data(), t.table.data(), bytes.size()) != 0)
        throw FormatError(where + t.file + " as written differs from the table of its width");
      const bool gaussian = t.source == "gaussian";
      const std::string want = gaussian ? std::string() : (tmp / t.file).string();
      if (sp.config.centroids_file != want)
        throw FormatError(where + "the measurement run used " +
                          (sp.config.centroids_file.empty() ? std::string("the Gaussian table")
                                                            : sp.config.centroids_file) +
                          ", not " + t.file);
      e[s] = {{"path", t.file}, {"bits", t.bits}, {"source", t.source}, {"table_matches", true}};
    }
    layers.push_back(e);
  }
  return {{"pass", true}, {"layers", layers}};
}

/// The measurement run of the configuration; a failed layer-stream fails the export.
RunResult measurement_run(const std::string& capture_path, const RunConfig& cfg, JobControl* job) {
  RunOptions ro;
  ro.compute_sha256 = true;
  RunResult run = run_config(capture_path, cfg, ro, job);
  for (const auto& l : run.layers)
    for (const auto* s : {&l.k, &l.v})
      if (s->failed)
        throw Error(s->error_code, "export-bundle: the configuration failed on layer " +
                                       std::to_string(l.layer) + " " + (s == &l.k ? "K" : "V") +
                                       ": " + s->error_message);
  return run;
}

/// q_precond of codec_config.json (§5).
ordered_json q_precond_json(const RunConfig& cfg, const std::optional<SigmaQCalibration>& sq) {
  ordered_json qp;
  qp["enabled"] = !cfg.q_precond.empty();
  qp["source"] = cfg.q_precond.empty() ? ordered_json(nullptr) : ordered_json(cfg.q_precond);
  qp["ridge"] = codec::kDefaultRidge;
  qp["target_cond"] = cfg.target_cond ? ordered_json(*cfg.target_cond) : ordered_json(nullptr);
  std::vector<int> auto_skip, skip_all;
  std::set<int> user_skip(cfg.q_precond_skip_layers.begin(), cfg.q_precond_skip_layers.end());
  if (sq) {
    if (sq->auto_skip)
      for (const auto& [l, s] : sq->whitening.rule.skip)
        if (s) auto_skip.push_back(l);
    skip_all.assign(sq->whitening.skipped.begin(), sq->whitening.skipped.end());
  } else {
    skip_all.assign(user_skip.begin(), user_skip.end());
  }
  qp["auto_skip_layers"] = auto_skip;
  qp["user_skip_layers"] = std::vector<int>(user_skip.begin(), user_skip.end());
  qp["q_precond_skip_layers"] = skip_all;
  if (sq) {
    ordered_json rule;
    rule["rule"] = "max_abs_L > 2 x median";
    rule["median_max_abs_L"] = sq->whitening.rule.median;
    ordered_json per = ordered_json::array();
    for (const auto& [l, m] : sq->whitening.rule.m)
      per.push_back(
          {{"layer", l},
           {"max_abs_L", m},
           {"ratio", num(sq->whitening.rule.median > 0 ? m / sq->whitening.rule.median : NAN)},
           {"auto_skip", sq->auto_skip && sq->whitening.rule.skip.at(l)},
           {"user_skip", user_skip.count(l) > 0}});
    rule["per_layer"] = per;
    qp["skip_rule"] = rule;
  } else {
    qp["skip_rule"] = nullptr;
  }
  return qp;
}

/// selection.summary of codec_config.json (§5) from the measurement run's result JSON.
ordered_json selection_summary_json(const json& rj, const RunResult& run) {
  ordered_json sum;
  auto get = [&](const json& j, std::initializer_list<const char*> path) -> ordered_json {
    const json* p = &j;
    for (const char* k : path) {
      if (!p->is_object() || !p->contains(k)) return nullptr;
      p = &(*p)[k];
    }
    return p->is_number() ? ordered_json(p->get<double>()) : ordered_json(nullptr);
  };
  sum["ratio_vs_bf16"] = get(rj, {"ratio_vs_bf16"});
  sum["bits_per_value"] = get(rj, {"bits_per_value"});
  sum["bytes_total"] = run.total_bytes;
  sum["tail_share"] = get(rj, {"tail_share"});
  sum["k_rel_mse"] = get(rj, {"totals", "k", "rel_mse"});
  sum["v_rel_mse"] = get(rj, {"totals", "v", "rel_mse"});
  sum["k_sigma_q_rel_err"] = nullptr;
  sum["attn_out_rel_err"] = get(rj, {"totals", "attention", "attn_out_rel_err"});
  sum["attn_kl"] = get(rj, {"totals", "attention", "attn_kl"});
  sum["attn_top1"] = get(rj, {"totals", "attention", "attn_top1"});
  sum["verdict_mse"] = {{"ladder", "mse-ladder-v1"},
                        {"baseline", nullptr},
                        {"inflation", nullptr},
                        {"verdict", nullptr}};
  sum["on_frontier"] = {{"quality_metric", nullptr}, {"value", nullptr}};
  ordered_json per_layer = ordered_json::array();
  for (const auto& l : rj["layers"]) {
    per_layer.push_back({{"layer", l["layer"]},
                         {"boundary", l["boundary"]},
                         {"k_codec", l["k"]["codec"]},
                         {"v_codec", l["v"]["codec"]},
                         {"k_rel_mse", get(l, {"k", "rel_mse"})},
                         {"v_rel_mse", get(l, {"v", "rel_mse"})},
                         {"k_whitened_mse", get(l, {"k", "whitened_mse"})},
                         {"attn_out_rel_err", get(l, {"attention", "attn_out_rel_err"})},
                         {"attn_kl", get(l, {"attention", "attn_kl"})},
                         {"attn_top1", get(l, {"attention", "attn_top1"})}});
  }
  sum["per_layer"] = per_layer;
  return sum;
}

/// codec_config.json (§5) up to, not including, deploy_compatibility.
ordered_json codec_config_json(const std::string& capture_path, const io::CaptureInfo& info,
                               const RunConfig& cfg, const std::optional<SigmaQCalibration>& sq,
                               const std::vector<TableInfo>& tables, const RunResult& run,
                               const BundleExportOptions& opt, bool in_sample) {
  const json rj = run_result_to_json(run);
  // (stream, bit width) -> the shipped non-Gaussian table's file name; every (stream, width)
  // with a table, Gaussian or not, in `shipped`.
  std::map<std::pair<std::string, int>, std::string> table_of;
  std::set<std::pair<std::string, int>> shipped;
  for (const auto& t : tables) {
    shipped.insert({t.stream, t.bits});
    if (t.source != "gaussian") table_of[{t.stream, t.bits}] = t.file;
  }
  auto table_name = [&](const StreamConfig& sc, const char* st) -> std::string {
    if (!codec::codec_traits(sc.codec).centroid_table) return "";
    auto it = table_of.find({st, table_bits(sc)});
    return it == table_of.end() ? "" : it->second;
  };
  ordered_json cc;
  cc["config_format_version"] = 1;
  cc["capture"] = {{"file_name", fs::path(capture_path).filename().string()},
                   {"model_name", info.model_name},
                   {"num_sequences", info.sequences},
                   {"tokens_per_sequence", info.tokens}};
  std::vector<int> in_scope;
  for (const auto& l : run.layers) in_scope.push_back(l.layer);
  std::sort(in_scope.begin(), in_scope.end());
  cc["layers_in_scope"] = in_scope;
  std::vector<int> sliding, not_captured;
  for (int l = 0; l < info.num_layers; ++l) {
    const auto* li = info.layer(l);
    if (!li)
      not_captured.push_back(l);
    else if (li->attention == "sliding" && !std::binary_search(in_scope.begin(), in_scope.end(), l))
      sliding.push_back(l);
  }
  cc["excluded_layers"] = {{"sliding", sliding}, {"not_captured", not_captured}};
  cc["block_size"] = cfg.block_size;
  cc["block_rows"] = codec::block_rows_name(cfg.block_rows);
  const std::set<int> boundary(cfg.boundary.begin(), cfg.boundary.end());
  cc["boundary_skip_layers"] = std::vector<int>(boundary.begin(), boundary.end());
  cc["q_precond"] = q_precond_json(cfg, sq);
  cc["streams"] = {{"K", stream_json(cfg.k, true, table_name(cfg.k, "K"))},
                   {"V", stream_json(cfg.v, false, table_name(cfg.v, "V"))}};
  // §10: a run-level width that no layer uses has no table.
  for (const char* st : {"K", "V"}) {
    const StreamConfig& sc = st[0] == 'K' ? cfg.k : cfg.v;
    if (codec::codec_traits(sc.codec).centroid_table && !shipped.count({st, table_bits(sc)}))
      cc["streams"][st]["params"]["centroids"] = nullptr;
  }
  ordered_json ovs = ordered_json::array();
  for (const auto& o : cfg.overrides) {
    ordered_json x;
    x["layer"] = o.layer;
    auto cname = [&](const StreamConfig& s, const char* st) {
      return s.centroids_file.empty() ? std::string() : table_name(s, st);
    };
    if (o.k) x["K"] = stream_json(*o.k, true, cname(*o.k, "K"));
    if (o.v) x["V"] = stream_json(*o.v, false, cname(*o.v, "V"));
    ovs.push_back(x);
  }
  cc["layer_overrides"] = ovs;
  cc["selection"] = {
      {"run_id", opt.run_id.empty() ? ordered_json(run.config_hash) : ordered_json(opt.run_id)},
      {"criterion", opt.criterion},
      {"in_sample", in_sample},
      {"summary", selection_summary_json(rj, run)}};
  return cc;
}

/// deploy_compatibility (§5.2): what keeps the reference plugin from running the configuration.
std::vector<std::string> deploy_compatibility_issues(const RunConfig& cfg, int D,
                                                     const RunResult& run) {
  std::vector<std::string> issues;
  for (const char* s : {"K", "V"}) {
    const StreamConfig& sc = s[0] == 'K' ? cfg.k : cfg.v;
    if (!plugin_codec(sc.codec)) {
      issues.push_back(std::string(s) + " codec " + sc.codec + " is not kakeya_pca");
      continue;
    }
    const codec::ParamReader pr(sc.codec, codec::codec_params(sc.codec), sc.params);
    if (!is_pow2(pr.get_int("k")))
      issues.push_back(std::string(s) + " k = " + std::to_string(pr.get_int("k")) +
                       " is not a power of two");
    if (pr.has("share_basis") && pr.get_bool("share_basis"))
      issues.push_back(std::string(s) + " share_basis is on (not streaming-safe)");
    const int fixed = D == 96 ? 64 : D / 2;
    const bool randomized = pr.get_string("pca_method") == "randomized";
    const double vr = pr.get_float("variance_ratio");
    int rank = 0;
    if (randomized)
      rank = pr.has("rsvd_target_rank") ? static_cast<int>(pr.get_int("rsvd_target_rank"))
                                        : std::max(D / 2, 8);
    else if (pr.has("exact_rank_cap"))
      rank = static_cast<int>(pr.get_int("exact_rank_cap"));
    if (vr < 1.0 || rank != fixed)
      issues.push_back(std::string(s) + " d_eff is " +
                       (vr < 1.0 ? "data-dependent (variance_ratio " + json_number_text(vr) + ")"
                                 : "fixed at " + std::to_string(rank ? rank : D)) +
                       "; the plugin uses a fixed d_eff of " + std::to_string(fixed));
  }
  if (cfg.block_rows == codec::BlockRows::kPooledHeads)
    issues.push_back("block_rows = pooled_heads (the plugin is per head)");
  if (!is_pow2(cfg.block_size))
    issues.push_back("block_size " + std::to_string(cfg.block_size) + " is not a power of two");
  if (D != 64 && D != 96 && D != 128 && D != 256)
    issues.push_back("head_dim " + std::to_string(D) + " is not one of 64, 96, 128, 256");
  uint64_t outl = 0, coded = 0;
  for (const auto& l : run.layers) {
    outl += l.k.outliers;
    coded += l.k.coded_values;
  }
  if (coded && static_cast<double>(outl) > 0.08 * static_cast<double>(coded))
    issues.push_back(
        "K outliers are " +
        json_number_text(100.0 * static_cast<double>(outl) / static_cast<double>(coded)) +
        " % of coordinates, above the plugin's budget of 8 %");
  return issues;
}

/// deploy.env (§6): comments, then the variables of `plan` with path values under `root`.
std::string deploy_env_text(const std::string& capture_path, const std::vector<std::string>& issues,
                            const DeployEnvPlan& plan, const std::string& root) {
  std::ostringstream env;
  env << "# " << kBundleToolName << " " << kBundleToolVersion << ", " << utc_now() << ", capture "
      << fs::path(capture_path).filename().string() << "\n";
  env << "# The reference plugin loads calibration only if all three *_PATH variables are set.\n";
  env << "# Sigma_q is a pre-RoPE statistic while the plugin whitens the post-RoPE keys of its "
         "cache;\n";
  env << "# KAKEYA_DISABLE_SIGMA_Q=0 reproduces this bundle's measurements only where the plugin "
         "whitens\n";
  env << "# pre-RoPE keys (see bundle-format.md section 6).\n";
  for (const auto& i : issues) env << "# deploy_compatibility issue: " << i << "\n";
  for (const auto& i : plan.left_out) env << "# not expressible in deploy.env: " << i << "\n";
  for (const auto& n : plan.notes) env << "# " << n << "\n";
  for (const auto& [k, v] : plan.vars) {
    std::string value = v;
    if (k.ends_with("_PATH")) {
      value = (fs::path(root) / v).string();
      if (!deploy_path_ok(value))
        throw InvalidArgument(
            "deploy.env: the path " + value +
            " contains characters outside A-Z a-z 0-9 . _ / + - (bundle-format.md §6); "
            "choose another folder or set deploy_root");
    }
    env << k << "=" << value << "\n";
  }
  return env.str();
}

/// Round trips of the Σ_q factors on the bytes as written in `tmp` (§7.1); throws FormatError when
/// a structural or numerical check fails. Returns whether the structure was sound.
bool check_written_sigma_q(const fs::path& tmp, const SigmaQCalibration& sq,
                           BundleExportResult& res) {
  std::vector<std::string> errs;
  const auto st = io::read_safetensors((tmp / kSigmaST).string());
  const auto groups = group_tensors(st, errs);
  auto sigma_fin = [&](int l, size_t h) {
    const auto& w = sq.whitening.factors.at(l)[h];
    std::vector<double> s = w.sigma;
    const size_t n = w.dim;
    for (size_t i = 0; i < n; ++i) s[i * n + i] += sq.ridge * w.diag_mean + w.tikhonov_lambda;
    return s;
  };
  res.roundtrip = roundtrip_checks(groups, static_cast<size_t>(sq.num_kv_heads),
                                   static_cast<size_t>(sq.head_dim), sigma_fin, errs);
  const bool structural_ok = errs.empty();
  if (!errs.empty())
    throw FormatError("export-bundle: Σ_q structural check failed: " + errs.front());
  for (const auto& p : res.roundtrip) res.roundtrip_pass = res.roundtrip_pass && pair_passes(p);
  if (!res.roundtrip_pass)
    throw FormatError("export-bundle: Σ_q round-trip check failed: " +
                      worst_pairs_text(res.roundtrip));
  return structural_ok;
}

/// MANIFEST.json (§7) of the files `present` in `tmp` (sorted, MANIFEST.json not among them).
ordered_json manifest_json(const std::string& capture_path, const io::CaptureInfo& info,
                           const fs::path& tmp, const std::vector<std::string>& present,
                           const std::vector<TableInfo>& tables,
                           const std::optional<SigmaQCalibration>& sq, bool structural_ok,
                           bool in_sample, const BundleExportResult& res,
                           const ordered_json& layer_tables) {
  auto in_tmp = [&](const std::string& f) { return (tmp / f).string(); };
  const bool v2 = res.format_version >= 2;
  ordered_json man;
  man["bundle_format_version"] = res.format_version;
  man["tool"] = {{"name", kBundleToolName}, {"version", kBundleToolVersion}};
  man["created_utc"] = utc_now();
  man["source_capture"] = {{"file_name", fs::path(capture_path).filename().string()},
                           {"sha256", res.run.capture_sha256.empty() ? io::sha256_file(capture_path)
                                                                     : res.run.capture_sha256},
                           {"size_bytes", static_cast<uint64_t>(fs::file_size(capture_path))},
                           {"model_name", info.model_name},
                           {"kvcapture_version", info.version},
                           {"num_sequences", info.sequences},
                           {"tokens_per_sequence", info.tokens}};
  man["in_sample"] = in_sample;
  ordered_json files = ordered_json::array();
  for (const auto& f : present)
    files.push_back({{"path", f},
                     {"sha256", io::sha256_file(in_tmp(f))},
                     {"size_bytes", fs::file_size(in_tmp(f))}});
  man["files"] = files;
  if (sq) man["roundtrip"] = roundtrip_json(res.roundtrip, structural_ok);
  // Version 1: one report per stream; version 2 (§10): per stream, one per bit width, ascending.
  ordered_json cents = ordered_json::object();
  for (const auto& t : tables) {
    ordered_json r;
    if (t.cal) {
      r = centroid_report_json(*t.cal);
      r["source"] = "calibrated";
    } else {
      r = {
          {"path", t.file},
          {"bits", t.bits},
          {"samples_pooled", nullptr},
          {"samples_used", nullptr},
          {"iterations", nullptr},
          {"converged", nullptr},
          {"final_max_change", nullptr},
          {"mse_gaussian", nullptr},
          {"mse_calibrated", nullptr},
          {"source", t.source == "config" ? "config:" + fs::path(t.config_file).filename().string()
                                          : std::string("gaussian")}};
      if (v2) r["layers"] = t.layers;
    }
    if (!v2) {
      cents[t.stream] = r;
    } else {
      if (!cents.contains(t.stream)) cents[t.stream] = ordered_json::array();
      cents[t.stream].push_back(r);
    }
  }
  man["centroids"] = cents;
  if (v2) man["layer_tables"] = layer_tables;
  return man;
}

/// The final gate (the checker must accept what was written) and the rename into place (§8 step 6).
void commit_bundle(const Destination& d, const fs::path& tmp) {
  const BundleCheckReport rep = check_bundle(tmp.string());
  if (!rep.ok) {
    std::string msg = "export-bundle: the written bundle fails its checks:";
    for (const auto& e : rep.errors) msg += "\n  " + e;
    throw FormatError(msg);
  }
  // Into place (§8 step 6): one rename, or an atomic exchange with the bundle it replaces.
  io::commit_directory(tmp.string(), d.dest.string(), d.nonempty);
}

}  // namespace

BundleExportResult export_bundle(const std::string& capture_path, const RunConfig& cfg_in,
                                 const std::string& out_dir, const BundleExportOptions& opt) {
  const Destination d = prepare_destination(out_dir, opt);
  RunConfig cfg = cfg_in;
  io::CaptureReader cap(capture_path);
  const io::CaptureInfo info = cap.info();
  const std::vector<LayerPlan> plan =
      plan_layers(info, cfg);  // the layers in scope, as the runner runs them
  const std::vector<StreamWidths> widths = stream_widths(cfg, plan);

  std::error_code ec;
  const fs::path tmp = io::temp_path_for(d.dest.string());
  fs::create_directory(tmp, ec);
  if (ec) throw IoError(tmp.string(), "cannot create the temporary bundle folder: " + ec.message());
  BundleExportResult res;
  res.out_dir = d.dest.string();
  res.format_version = format_version_of(widths);
  try {
    auto in_tmp = [&](const std::string& f) { return (tmp / f).string(); };
    const std::optional<SigmaQCalibration> sq =
        write_sigma_q(capture_path, info, cfg, plan, tmp, res);
    bool calibrated = false;
    const std::vector<TableInfo> tables =
        write_centroid_tables(capture_path, cfg, plan, widths, opt, tmp, calibrated);
    res.run = measurement_run(capture_path, cfg, opt.job);
    const bool in_sample = calibrated || cfg.q_precond == "capture";

    ordered_json cc =
        codec_config_json(capture_path, info, cfg, sq, tables, res.run, opt, in_sample);
    res.deploy_issues = deploy_compatibility_issues(cfg, info.head_dim, res.run);
    for (const StreamWidths& w : widths)
      if (w.multi()) {
        // §10: the reference plugin reads one table per stream.
        res.deploy_issues.push_back("per-layer bit widths (" + widths_text(w.layers_of) + ") in the " +
                                    w.name() + " stream; the plugin reads one table per stream");
        res.warnings.push_back(std::string("bundle_format_version 2: the ") + w.name() +
                               " stream has per-layer bit widths (" + widths_text(w.layers_of) +
                               "), one table per width; the reference plugin cannot load it as written");
      }
    const std::vector<std::string>& issues = res.deploy_issues;
    cc["deploy_compatibility"] = {{"reference_plugin", {{"compatible", issues.empty()}, {"issues", issues}}}};
    io::write_file_atomic(in_tmp(kCodecConfig), cc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");

    std::vector<std::string> present;
    if (sq) present = {kSigmaST, kSigmaJson};
    for (const auto& t : tables) present.push_back(t.file);
    const DeployEnvPlan env = plan_deploy_env(json::parse(cc.dump()), present);
    res.deploy_left_out = env.left_out;
    io::write_file_atomic(in_tmp(kDeployEnv), deploy_env_text(capture_path, issues, env, d.root));

    const bool structural_ok = sq ? check_written_sigma_q(tmp, *sq, res) : true;

    present.push_back(kCodecConfig);
    present.push_back(kDeployEnv);
    std::sort(present.begin(), present.end());
    const ordered_json layer_tables =
        res.format_version >= 2 ? check_layer_tables(tmp, info, cfg, tables) : ordered_json();
    const ordered_json man = manifest_json(capture_path, info, tmp, present, tables, sq,
                                           structural_ok, in_sample, res, layer_tables);
    io::write_file_atomic(in_tmp(kManifest),
                          man.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
    res.manifest = man;
    io::fsync_directory(tmp.string());

    commit_bundle(d, tmp);
    present.push_back(kManifest);
    std::sort(present.begin(), present.end());
    res.files = present;
  } catch (...) {
    std::error_code ec2;
    fs::remove_all(tmp, ec2);
    throw;
  }
  return res;
}

// -----------------------------------------------------------------------------------------------

ordered_json BundleCheckReport::to_json() const {
  ordered_json j;
  j["ok"] = ok;
  j["errors"] = errors;
  j["warnings"] = warnings;
  j["checks"] = checks;
  j["deploy_left_out"] = deploy_left_out;
  ordered_json rt = ordered_json::array();
  for (const auto& p : roundtrip)
    rt.push_back({{"layer", p.layer}, {"kv_head", p.kv_head}, {"fwd_err", p.fwd_err}, {"rev_err", p.rev_err},
                  {"factor_err_rel", num(p.factor_err_rel)}});
  j["roundtrip"] = rt;
  return j;
}

namespace {

/// Parses a JSON file of the bundle; errors go to `errs`.
std::optional<json> read_json(const fs::path& p, std::vector<std::string>& errs) {
  try {
    const auto b = io::read_file(p.string());
    return json::parse(text_of(b));
  } catch (const json::exception& e) {
    errs.push_back(p.filename().string() + ": not valid JSON: " + e.what());
  } catch (const Error& e) {
    errs.push_back(p.filename().string() + ": " + e.what());
  }
  return std::nullopt;
}

struct Checker {
  const fs::path dir;
  BundleCheckReport& r;
  void err(const std::string& file, const std::string& m) { r.errors.push_back(file + ": " + m); }
  void warn(const std::string& file, const std::string& m) { r.warnings.push_back(file + ": " + m); }

  /// Requires `j[key]` of a type; returns nullptr after recording an error when absent/wrong.
  const json* field(const std::string& file, const json& j, const std::string& key, const char* type) {
    if (!j.is_object() || !j.contains(key)) {
      err(file, "missing field '" + key + "'");
      return nullptr;
    }
    const json& v = j[key];
    const std::string t = type;
    const bool ok = (t == "int" && v.is_number_integer()) || (t == "number" && v.is_number()) ||
                    (t == "string" && v.is_string()) || (t == "bool" && v.is_boolean()) ||
                    (t == "array" && v.is_array()) || (t == "object" && v.is_object()) ||
                    (t == "number|null" && (v.is_number() || v.is_null())) ||
                    (t == "bool|null" && (v.is_boolean() || v.is_null()));
    if (!ok) {
      err(file, "field '" + key + "' must be " + t + ", got " + v.type_name());
      return nullptr;
    }
    return &v;
  }

  bool int_list(const std::string& file, const json& j, const std::string& key, bool ascending = true) {
    const json* v = field(file, j, key, "array");
    if (!v) return false;
    long long prev = -1;
    for (const auto& x : *v) {
      if (!x.is_number_integer() || x.get<long long>() < 0 || x.get<long long>() >= io::kMaxLayers) {
        err(file, "field '" + key + "' must hold layer indices in 0.." + std::to_string(io::kMaxLayers - 1) + ", got " +
                      x.dump());
        return false;
      }
      if (ascending && x.get<long long>() <= prev) {
        err(file, "field '" + key + "' must be strictly ascending");
        return false;
      }
      prev = x.get<long long>();
    }
    return true;
  }
};

}  // namespace

namespace {

/// Centroid file names of §1 (K_b<b>_centroids.f32, V_b<b>_centroids.f32): stream and bits.
const std::regex& centroid_file_re() {
  static const std::regex re("([KV])_b([1-4])_centroids\\.f32");
  return re;
}

/// The files of a bundle folder, as check_bundle's steps see them.
struct BundleFiles {
  std::vector<std::string> present;                // the bundle files found, sorted
  std::map<std::string, std::string> centroid_of;  // stream -> its (first) centroid file
  std::map<std::string, std::map<int, std::string>> centroid_files;  // stream -> bits -> file
  int version = 1;  // MANIFEST.json bundle_format_version (1 when unknown)
  bool has(const std::string& n) const {
    return std::binary_search(present.begin(), present.end(), n);
  }
};

/// File set (§1): only bundle files, the required ones present, the Σ_q files as a pair.
BundleFiles check_file_set(const fs::path& dir, Checker& ck, const BundleCheckOptions& options) {
  BundleFiles files;
  std::vector<std::string>& present = files.present;
  std::map<std::string, std::string>& centroid_of = files.centroid_of;
  const std::regex& centroid_re = centroid_file_re();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (!e.is_regular_file()) {
      ck.err(n, "unexpected entry (a bundle holds only regular files)");
      continue;
    }
    std::smatch m;
    if (n == kSigmaST || n == kSigmaJson || n == kCodecConfig || n == kDeployEnv || n == kManifest) {
      present.push_back(n);
    } else if (std::regex_match(n, m, centroid_re)) {
      // Several files of one stream are version 2's (§10); check_manifest judges them.
      files.centroid_files[m[1].str()][std::stoi(m[2].str())] = n;
      present.push_back(n);
    } else {
      ck.err(n, "unexpected file (a bundle holds only the files of bundle-format.md §1)");
    }
  }
  std::sort(present.begin(), present.end());
  for (const auto& [st, by_bits] : files.centroid_files) centroid_of[st] = by_bits.begin()->second;
  auto has = [&](const std::string& n) { return files.has(n); };
  for (const char* req : {kCodecConfig, kDeployEnv, kManifest})
    if (!has(req)) {
      if (options.partial) ck.warn(req, "missing (partial bundle)");
      else ck.err(req, "missing (every bundle has it, bundle-format.md §1)");
    }
  if (has(kSigmaST) != has(kSigmaJson))
    ck.err(has(kSigmaST) ? kSigmaJson : kSigmaST,
           std::string("missing: sigma_q.safetensors and sigma_q.json come together (bundle-format.md §1)"));
  return files;
}

/// MANIFEST.json (§7): schema, file list, sizes and SHA-256 of every other file. Returns it.
std::optional<json> check_manifest(const fs::path& dir, Checker& ck, BundleFiles& files) {
  BundleCheckReport& r = ck.r;
  const std::vector<std::string>& present = files.present;
  const std::map<std::string, std::string>& centroid_of = files.centroid_of;
  auto has = [&](const std::string& n) { return files.has(n); };
  std::error_code ec;
  std::optional<json> man;
  if (has(kManifest)) man = read_json(dir / kManifest, r.errors);
  if (man) {
    const std::string F = kManifest;
    if (const json* v = ck.field(F, *man, "bundle_format_version", "int")) {
      if (v->is_number_unsigned() ? v->get<unsigned long long>() > kBundleFormatVersion
                                  : v->get<long long>() > kBundleFormatVersion)
        ck.err(F, "bundle_format_version " + v->dump() + " is newer than this reader's " +
                      std::to_string(kBundleFormatVersion) + "; refusing");
      else if (v->get<long long>() < 1) ck.err(F, "bundle_format_version must be >= 1");
      else files.version = v->get<int>();
    }
    if (const json* t = ck.field(F, *man, "tool", "object")) {
      ck.field(F, *t, "name", "string");
      ck.field(F, *t, "version", "string");
    }
    if (const json* c = ck.field(F, *man, "created_utc", "string")) {
      static const std::regex iso("\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}Z");
      if (!std::regex_match(c->get<std::string>(), iso))
        ck.err(F, "created_utc '" + c->get<std::string>() + "' is not ISO 8601 UTC (YYYY-MM-DDThh:mm:ssZ)");
    }
    if (const json* s = ck.field(F, *man, "source_capture", "object")) {
      ck.field(F, *s, "file_name", "string");
      if (const json* h = ck.field(F, *s, "sha256", "string")) {
        static const std::regex hex("[0-9a-f]{64}");
        if (!std::regex_match(h->get<std::string>(), hex)) ck.err(F, "source_capture.sha256 is not 64 lowercase hex digits");
      }
      ck.field(F, *s, "size_bytes", "int");
      ck.field(F, *s, "model_name", "string");
    }
    ck.field(F, *man, "in_sample", "bool");
    if (const json* files = ck.field(F, *man, "files", "array")) {
      std::vector<std::string> listed;
      for (const auto& e : *files) {
        if (!e.is_object() || !e.contains("path") || !e["path"].is_string() || !e.contains("sha256") ||
            !e["sha256"].is_string() || !e.contains("size_bytes") || !e["size_bytes"].is_number_unsigned()) {
          ck.err(F, "each files entry needs path, sha256 and size_bytes");
          continue;
        }
        const std::string p = e["path"].get<std::string>();
        listed.push_back(p);
        if (p == kManifest || p.find('/') != std::string::npos) {
          ck.err(F, "files lists '" + p + "', which is not a bundle file it may list");
          continue;
        }
        if (!has(p)) {
          ck.err(F, "files lists " + p + ", which is missing from the folder");
          continue;
        }
        const uint64_t size = fs::file_size(dir / p, ec);
        if (size != e["size_bytes"].get<uint64_t>())
          ck.err(p, "size " + std::to_string(size) + " bytes differs from MANIFEST.json's " +
                        std::to_string(e["size_bytes"].get<uint64_t>()));
        else if (io::sha256_file((dir / p).string()) != e["sha256"].get<std::string>())
          ck.err(p, "SHA-256 differs from MANIFEST.json (the file was modified or corrupted)");
        else
          r.checks.push_back(p + ": size and SHA-256 match MANIFEST.json");
      }
      if (!std::is_sorted(listed.begin(), listed.end())) ck.err(F, "files must be sorted by path");
      for (const auto& p : present)
        if (p != kManifest && std::find(listed.begin(), listed.end(), p) == listed.end())
          ck.err(F, "does not list " + p + " (every other file of the bundle is listed)");
    }
    if (has(kSigmaST) && !man->contains("roundtrip")) ck.err(F, "missing field 'roundtrip' (the bundle has sigma_q.safetensors)");
    if (man->contains("roundtrip") && (*man)["roundtrip"].is_object() && (*man)["roundtrip"].value("pass", false) != true)
      ck.err(F, "roundtrip.pass is not true");
    if (const json* c = ck.field(F, *man, "centroids", "object")) {
      if (files.version < 2) {
        for (const auto& [s, f] : centroid_of)
          if (!c->contains(s)) ck.err(F, "centroids lacks an entry for " + f);
      } else {
        // §10: per stream, one report per table file.
        for (const auto& [s, by_bits] : files.centroid_files)
          for (const auto& [b, f] : by_bits) {
            bool found = false;
            if (c->contains(s) && (*c)[s].is_array())
              for (const auto& e : (*c)[s])
                found = found || (e.is_object() && e.value("path", std::string()) == f);
            if (!found) ck.err(F, "centroids." + s + " lacks an entry for " + f);
          }
      }
    }
    if (files.version >= 2) {
      const json* lt = ck.field(F, *man, "layer_tables", "object");
      if (lt && (!lt->contains("pass") || (*lt)["pass"] != true))
        ck.err(F, "layer_tables.pass is not true");
      if (lt) ck.field(F, *lt, "layers", "array");
    }
  }
  for (const auto& [s, by_bits] : files.centroid_files)
    if (by_bits.size() > 1 && files.version < 2)
      ck.err(std::next(by_bits.begin())->second,
             "a second " + s + " centroid file (" + by_bits.begin()->second +
                 "); only a bundle_format_version 2 bundle carries several (bundle-format.md §10)");
  return man;
}

/// sigma_q.safetensors (§2) and sigma_q.json (§3): container, sidecar schema, structure and
/// round trips of the factors. Returns the sidecar.
std::optional<json> check_sigma_q(const fs::path& dir, Checker& ck, const BundleFiles& files,
                                  const BundleCheckOptions& options) {
  BundleCheckReport& r = ck.r;
  auto has = [&](const std::string& n) { return files.has(n); };
  std::optional<json> side;
  if (has(kSigmaJson)) side = read_json(dir / kSigmaJson, r.errors);
  std::optional<io::SafeTensorsFile> st;
  if (has(kSigmaST)) {
    try {
      const auto bytes = io::read_file((dir / kSigmaST).string());
      st = io::parse_safetensors(bytes, kSigmaST);
      uint64_t n = 0;
      for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(bytes[static_cast<size_t>(i)]) << (8 * i);
      if ((8 + n) % 8 != 0) ck.warn(kSigmaST, "header is not padded so that 8 + N is a multiple of 8 (§2.1)");
      if (st->metadata.empty()) ck.warn(kSigmaST, "no __metadata__ (accepted: the reference's own files have none)");
      r.checks.push_back(std::string(kSigmaST) + ": safetensors container valid (" + std::to_string(st->tensors.size()) +
                         " tensors)");
    } catch (const Error& e) {
      r.errors.push_back(e.what());
    }
  }
  if (side) {
    const std::string F = kSigmaJson;
    const json* hd = ck.field(F, *side, "head_dim", "int");
    const json* hq = ck.field(F, *side, "num_q_heads", "int");
    const json* hkv = ck.field(F, *side, "num_kv_heads", "int");
    const json* nl = ck.field(F, *side, "num_layers", "int");
    ck.field(F, *side, "model_path", "string");
    ck.field(F, *side, "n_passages_used", "int");
    ck.field(F, *side, "ctx_len", "int");
    const json* ridge = ck.field(F, *side, "ridge", "number");
    // Every count is range-checked before it sizes a loop or a buffer.
    auto in_range = [&](const json* v, const char* name, long long lo, long long hi) -> const json* {
      if (!v) return nullptr;
      const bool low = v->is_number_unsigned() ? v->get<unsigned long long>() < static_cast<unsigned long long>(lo)
                                               : v->get<long long>() < lo;
      const bool high = v->is_number_unsigned() ? v->get<unsigned long long>() > static_cast<unsigned long long>(hi)
                                                : v->get<long long>() > hi;
      if (low || high) {
        ck.err(F, std::string(name) + " " + v->dump() + " is out of range; expected " + std::to_string(lo) + ".." +
                      std::to_string(hi));
        return nullptr;
      }
      return v;
    };
    hd = in_range(hd, "head_dim", 1, io::kMaxHeadDim);
    hq = in_range(hq, "num_q_heads", 1, io::kMaxHeads);
    hkv = in_range(hkv, "num_kv_heads", 1, io::kMaxHeads);
    nl = in_range(nl, "num_layers", 1, io::kMaxLayers);
    if (ridge && !(std::isfinite(ridge->get<double>()) && ridge->get<double>() >= 0 && ridge->get<double>() <= 1)) {
      ck.err(F, "ridge " + ridge->dump() + " is out of range; expected a fraction of mean(diag Σ_q) in 0..1");
      ridge = nullptr;
    }
    if (side->contains("regularisation") && (*side)["regularisation"].is_object() &&
        (*side)["regularisation"].contains("target_cond")) {
      const json& tc = (*side)["regularisation"]["target_cond"];
      if (!tc.is_null() && !(tc.is_number() && std::isfinite(tc.get<double>()) && tc.get<double>() > 1))
        ck.err(F, "regularisation.target_cond " + tc.dump() + " is invalid; expected a finite number > 1 or null");
    }
    if (hq && hkv && hq->get<int>() % hkv->get<int>() != 0)
      ck.err(F, "num_q_heads must be a positive multiple of num_kv_heads");
    if (const json* lt = ck.field(F, *side, "layer_types", "array")) {
      if (nl && static_cast<int>(lt->size()) != nl->get<int>())
        ck.err(F, "layer_types has " + std::to_string(lt->size()) + " entries, num_layers is " +
                      std::to_string(nl->get<int>()));
      for (const auto& t : *lt)
        if (!t.is_string() || (t != "full_attention" && t != "sliding_attention" && t != "not_captured"))
          ck.err(F, "layer_types entries must be full_attention, sliding_attention or not_captured");
    }
    std::set<std::pair<int, int>> diag_pairs;
    if (const json* dg = ck.field(F, *side, "diagnostics", "array")) {
      std::pair<int, int> prev{-1, -1};
      for (const auto& d : *dg) {
        bool ok = d.is_object();
        for (const char* k : {"layer", "kv_head"}) ok = ok && d.contains(k) && d[k].is_number_integer();
        for (const char* k : {"sigma_trace", "eig_min", "eig_max", "condition", "diag_mean", "off_diag_max_abs"})
          ok = ok && d.contains(k) && d[k].is_number() && std::isfinite(d[k].get<double>());
        if (!ok) {
          ck.err(F, "a diagnostics entry lacks a field or holds a non-finite value");
          break;
        }
        const long long dl = d["layer"].get<long long>(), dh = d["kv_head"].get<long long>();
        if (dl < 0 || dl >= io::kMaxLayers || dh < 0 || dh >= io::kMaxHeads) {
          ck.err(F, "a diagnostics entry names layer " + d["layer"].dump() + ", kv head " + d["kv_head"].dump() +
                        "; expected a layer in 0.." + std::to_string(io::kMaxLayers - 1) + " and a kv head in 0.." +
                        std::to_string(io::kMaxHeads - 1));
          break;
        }
        const std::pair<int, int> p{static_cast<int>(dl), static_cast<int>(dh)};
        if (p <= prev) ck.err(F, "diagnostics are not ordered by layer then kv head");
        prev = p;
        diag_pairs.insert(p);
        if (hkv && p.second >= hkv->get<int>()) ck.err(F, "diagnostics kv_head " + std::to_string(p.second) + " >= num_kv_heads");
        if (nl && p.first >= nl->get<int>()) ck.err(F, "diagnostics layer " + std::to_string(p.first) + " >= num_layers");
      }
    }
    if (side->contains("layers_written")) ck.int_list(F, *side, "layers_written");
    if (side->contains("skip_layers")) ck.int_list(F, *side, "skip_layers");

    if (st && hd && hkv) {
      const size_t H = static_cast<size_t>(hkv->get<int>()), D = static_cast<size_t>(hd->get<int>());
      std::vector<std::string> errs;
      const auto groups = group_tensors(*st, errs);
      for (auto& e : errs) r.errors.push_back(e);
      std::vector<int> tensor_layers;
      for (const auto& [l, g] : groups) {
        tensor_layers.push_back(l);
        if (!g.sigma) ck.err(kSigmaST, "layer_" + std::to_string(l) + "_sigma is missing");
        if (nl && l >= nl->get<int>())
          ck.err(kSigmaST, "layer " + std::to_string(l) + " >= sidecar num_layers " + std::to_string(nl->get<int>()));
        for (size_t h = 0; h < H; ++h)
          if (!diag_pairs.empty() && !diag_pairs.count({l, static_cast<int>(h)}))
            ck.err(F, "no diagnostics entry for layer " + std::to_string(l) + ", kv head " + std::to_string(h));
      }
      if (side->contains("layers_written") && json_ints((*side)["layers_written"]) != tensor_layers)
        ck.err(F, "layers_written does not match the layers with tensors in sigma_q.safetensors");
      if (side->contains("skip_layers"))
        for (int l : json_ints((*side)["skip_layers"]))
          if (groups.count(l)) ck.err(F, "skip layer " + std::to_string(l) + " has tensors (skipped layers have none)");
      const double rd = ridge ? ridge->get<double>() : codec::kDefaultRidge;
      std::optional<double> target;
      if (side->contains("regularisation") && (*side)["regularisation"].is_object() &&
          (*side)["regularisation"].contains("target_cond") && (*side)["regularisation"]["target_cond"].is_number() &&
          (*side)["regularisation"]["target_cond"].get<double>() > 1)
        target = (*side)["regularisation"]["target_cond"].get<double>();
      std::map<std::pair<int, int>, double> diag_trace;
      if (side->contains("diagnostics") && (*side)["diagnostics"].is_array())
        for (const auto& d : (*side)["diagnostics"])
          if (d.is_object() && d.contains("sigma_trace") && d["sigma_trace"].is_number() && d.contains("layer") &&
              d.contains("kv_head") && d["layer"].is_number_integer() && d["kv_head"].is_number_integer())
            diag_trace[{d["layer"].get<int>(), d["kv_head"].get<int>()}] = d["sigma_trace"].get<double>();
      bool any_sigma_missing = false;
      auto sigma_fin = [&](int l, size_t h) -> std::vector<double> {
        const auto& g = groups.at(l);
        if (!g.sigma || g.sigma->shape != std::vector<uint64_t>{H, D, D} || g.sigma->dtype != "F32") {
          any_sigma_missing = true;
          return {};
        }
        const auto sv = io::tensor_to_f32(*g.sigma);
        std::vector<double> s(sv.begin() + static_cast<std::ptrdiff_t>(h * D * D),
                              sv.begin() + static_cast<std::ptrdiff_t>((h + 1) * D * D));
        double tr = 0;
        for (size_t i = 0; i < D; ++i) tr += s[i * D + i];
        auto it = diag_trace.find({l, static_cast<int>(h)});
        if (it != diag_trace.end() && std::fabs(tr - it->second) > 1e-4 * std::max(1.0, std::fabs(it->second)))
          ck.err(F, "sigma_trace of layer " + std::to_string(l) + ", kv head " + std::to_string(h) + " (" +
                        json_number_text(it->second) + ") differs from the trace of layer_" + std::to_string(l) +
                        "_sigma (" + json_number_text(tr) + ")");
        const double add = rd * tr / static_cast<double>(D);
        for (size_t i = 0; i < D; ++i) s[i * D + i] += add;
        if (target) {
          const auto eig = codec::symmetric_eigenvalues(s, D);
          const double C2 = *target * *target, lmax = eig.front(), lmin = std::max(0.0, eig.back());
          const double lam = std::max(0.0, (lmax - C2 * lmin) / (C2 - 1));
          for (size_t i = 0; i < D; ++i) s[i * D + i] += lam;
        }
        for (double x : s)
          if (!std::isfinite(x)) {
            ck.err(F, "layer " + std::to_string(l) + ", kv head " + std::to_string(h) +
                          ": Σ_q with the sidecar's ridge and target_cond is not finite");
            return {};
          }
        return s;
      };
      const size_t before = r.errors.size();
      size_t tiny = 0;
      double tiny_max = 0;
      r.roundtrip = roundtrip_checks(groups, H, D, sigma_fin, r.errors, options.partial, &tiny, &tiny_max);
      if (tiny) {
        char b[200];
        std::snprintf(b, sizeof b,
                      "%zu strict-upper inv_chol entries are not exactly 0 (largest |x| %.3g <= bar %.0e); "
                      "accepted for a partial/reference artefact, an error in a bundle (§2.2)",
                      tiny, tiny_max, kBundleRoundTripBar);
        ck.warn(kSigmaST, b);
      }
      if (any_sigma_missing) ck.warn(kSigmaST, "factor_err_rel not checked where layer_<l>_sigma is absent");
      std::vector<RoundTripPair> bad;
      for (const auto& p : r.roundtrip)
        if (!pair_passes(p)) bad.push_back(p);
      if (!bad.empty()) ck.err(kSigmaST, "round-trip check failed: " + worst_pairs_text(bad));
      if (r.errors.size() == before && !r.roundtrip.empty()) {
        double mf = 0, mr = 0, mx = 0;
        for (const auto& p : r.roundtrip) {
          mf = std::max(mf, p.fwd_err);
          mr = std::max(mr, p.rev_err);
          if (!std::isnan(p.factor_err_rel)) mx = std::max(mx, p.factor_err_rel);
        }
        char b[256];
        std::snprintf(b, sizeof b,
                      "%s: %zu layers x %zu heads: L lower triangular, diag > 0, max|L·L⁻¹−I| %.3g, "
                      "max|L⁻¹·L−I| %.3g, max factor_err_rel %.3g (bar %.0e)",
                      kSigmaST, groups.size(), H, mf, mr, mx, kBundleRoundTripBar);
        r.checks.push_back(b);
      }
      if (!st->tensors.empty()) {
        std::vector<std::string> names;
        for (const auto& t : st->tensors) names.push_back(t.name);
        if (!std::is_sorted(names.begin(), names.end()))
          ck.warn(kSigmaST, "tensor data is not in byte-wise lexicographic name order (§2.1)");
      }
    }
  } else if (st) {
    ck.err(kSigmaJson, "missing: the sidecar is needed to validate sigma_q.safetensors");
  }
  return side;
}

/// Centroid files (§4): 2^b finite, strictly ascending f32 values.
void check_centroid_files(const fs::path& dir, Checker& ck, const BundleFiles& files) {
  BundleCheckReport& r = ck.r;
  const std::regex& centroid_re = centroid_file_re();
  std::vector<std::string> all;
  for (const auto& [s, by_bits] : files.centroid_files)
    for (const auto& [b, f] : by_bits) all.push_back(f);
  for (const std::string& f : all) {
    std::smatch m;
    std::regex_match(f, m, centroid_re);
    const unsigned b = static_cast<unsigned>(std::stoi(m[2].str()));
    try {
      const auto bytes = io::read_file((dir / f).string());
      if (bytes.size() != 4u << b) {
        ck.err(f, "holds " + std::to_string(bytes.size()) + " bytes, expected " + std::to_string(4u << b) +
                      " (2^" + std::to_string(b) + " f32 values)");
        continue;
      }
      std::vector<float> t(bytes.size() / 4);
      std::memcpy(t.data(), bytes.data(), bytes.size());
      bool ok = true;
      for (size_t i = 0; i < t.size() && ok; ++i)
        if (!std::isfinite(t[i])) {
          ck.err(f, "entry " + std::to_string(i) + " is not finite");
          ok = false;
        } else if (i && !(t[i - 1] < t[i])) {
          ck.err(f, "not strictly ascending at entries " + std::to_string(i - 1) + " and " + std::to_string(i) + " (" +
                        json_number_text(t[i - 1]) + ", " + json_number_text(t[i]) + ")");
          ok = false;
        }
      if (ok) r.checks.push_back(f + ": " + std::to_string(t.size()) + " finite, strictly ascending f32 values");
    } catch (const Error& e) {
      r.errors.push_back(e.what());
    }
  }
}

/// A table stream with per-layer bit widths (§10): a version 2 bundle, a table file for every
/// width in use and none unused, each layer's params.centroids naming its width's file, and
/// MANIFEST.json layer_tables giving every layer its own table.
void check_layer_widths(Checker& ck, const BundleFiles& files, const json& cc,
                        const std::optional<json>& man, const char* name,
                        const JsonStreamWidths& jw) {
  const std::string F = kCodecConfig;
  const auto layers_of = jw.layers_of();
  if (files.version < 2)
    ck.err(F, std::string("stream ") + name + " has per-layer bit widths (" + widths_text(layers_of) +
                  ") but MANIFEST.json's bundle_format_version is " + std::to_string(files.version) +
                  " (they need version 2, bundle-format.md §10)");
  const auto fit = files.centroid_files.find(name);
  const std::map<int, std::string> none;
  const std::map<int, std::string>& have = fit == files.centroid_files.end() ? none : fit->second;
  for (const auto& [b, ls] : layers_of)
    if (!have.count(b))
      ck.err(F, std::string("stream ") + name + " layers " + join_ints(ls) + " use b=" + std::to_string(b) +
                    " but the bundle has no " + centroid_file_name(name, static_cast<unsigned>(b)));
  for (const auto& [b, f] : have)
    if (!layers_of.count(b)) ck.err(f, std::string("no layer in scope runs the ") + name + " stream at b=" + std::to_string(b));
  for (const auto& [l, c] : jw.centroids_of) {
    const std::string want = centroid_file_name(name, static_cast<unsigned>(jw.bits_of.at(l)));
    if (c.is_string() && c != "gaussian" && c != want)
      ck.err(F, "layer " + std::to_string(l) + " " + name + " names the table " + c.get<std::string>() +
                    ", not " + want + " of its bit width");
  }
  // MANIFEST.json layer_tables: every layer of the stream with its own table.
  if (!man || !man->contains("layer_tables") || !(*man)["layer_tables"].is_object() ||
      !(*man)["layer_tables"].contains("layers") || !(*man)["layer_tables"]["layers"].is_array())
    return;
  std::map<int, json> listed;
  for (const auto& e : (*man)["layer_tables"]["layers"])
    if (e.is_object() && e.contains("layer") && e["layer"].is_number_integer())
      listed[e["layer"].get<int>()] = e.value(name, json(nullptr));
  size_t covered = 0;
  for (const auto& [l, b] : jw.bits_of) {
    const std::string want = centroid_file_name(name, static_cast<unsigned>(b));
    auto it = listed.find(l);
    if (it == listed.end() || !it->second.is_object() || it->second.value("path", std::string()) != want ||
        it->second.value("bits", 0) != b || it->second.value("table_matches", false) != true)
      ck.err(kManifest, "layer_tables does not give layer " + std::to_string(l) + " " + name + " its table " + want);
    else
      ++covered;
  }
  if (covered == jw.bits_of.size())
    ck.r.checks.push_back(std::string(kManifest) + ": layer_tables: " + std::to_string(covered) + " layers of " + name +
                          " each with the table of its bit width (" + widths_text(layers_of) + ")");
}

/// codec_config.json (§5): schema, against the sidecar, the centroid files and MANIFEST.json.
/// Returns it.
std::optional<json> check_codec_config(const fs::path& dir, Checker& ck, const BundleFiles& files,
                                       const BundleCheckOptions& options,
                                       const std::optional<json>& man,
                                       const std::optional<json>& side) {
  BundleCheckReport& r = ck.r;
  const std::map<std::string, std::string>& centroid_of = files.centroid_of;
  auto has = [&](const std::string& n) { return files.has(n); };
  std::optional<json> cc;
  if (has(kCodecConfig)) cc = read_json(dir / kCodecConfig, r.errors);
  if (cc) {
    const std::string F = kCodecConfig;
    const size_t before = r.errors.size();
    if (const json* v = ck.field(F, *cc, "config_format_version", "int"))
      if (!(v->is_number_unsigned() && v->get<unsigned long long>() == 1) && !(v->get<long long>() == 1))
        ck.err(F, "config_format_version " + v->dump() + " is not 1");
    if (const json* c = ck.field(F, *cc, "capture", "object")) {
      ck.field(F, *c, "file_name", "string");
      ck.field(F, *c, "model_name", "string");
      ck.field(F, *c, "num_sequences", "int");
      ck.field(F, *c, "tokens_per_sequence", "int");
    }
    ck.int_list(F, *cc, "layers_in_scope");
    if (const json* e = ck.field(F, *cc, "excluded_layers", "object")) {
      ck.int_list(F, *e, "sliding");
      ck.int_list(F, *e, "not_captured");
    }
    if (const json* b = ck.field(F, *cc, "block_size", "int"))
      if (b->get<long long>() < 8 || b->get<long long>() > 65536) ck.err(F, "block_size must be in 8..65536");
    if (const json* b = ck.field(F, *cc, "block_rows", "string")) {
      try {
        parse_block_rows(b->get<std::string>(), "block_rows");
      } catch (const InvalidArgument& e) {
        ck.err(F, e.what());
      }
    }
    ck.int_list(F, *cc, "boundary_skip_layers");
    if (const json* q = ck.field(F, *cc, "q_precond", "object")) {
      ck.field(F, *q, "enabled", "bool");
      ck.field(F, *q, "ridge", "number");
      ck.field(F, *q, "target_cond", "number|null");
      ck.int_list(F, *q, "auto_skip_layers");
      ck.int_list(F, *q, "user_skip_layers");
      ck.int_list(F, *q, "q_precond_skip_layers");
      if (!q->contains("skip_rule")) ck.err(F, "missing field 'q_precond.skip_rule'");
      if (side && side->contains("skip_layers") && q->contains("q_precond_skip_layers") &&
          json_ints((*side)["skip_layers"]) != json_ints((*q)["q_precond_skip_layers"]))
        ck.err(F, "q_precond.q_precond_skip_layers differs from sigma_q.json skip_layers");
    }
    if (const json* s = ck.field(F, *cc, "streams", "object")) {
      for (const char* name : {"K", "V"}) {
        const json* sj = ck.field(F, *s, name, "object");
        if (!sj) continue;
        const json* codec = ck.field(F, *sj, "codec", "string");
        const json* params = ck.field(F, *sj, "params", "object");
        if (name[0] == 'K') {
          if (const json* kd = ck.field(F, *sj, "k_domain", "string")) {
            try {
              parse_k_domain(kd->get<std::string>(), "streams.K.k_domain");
            } catch (const InvalidArgument& e) {
              ck.err(F, e.what());
            }
          }
        }
        if (!codec) continue;
        const JsonStreamWidths jw = json_stream_widths(*cc, name);
        if (jw.per_layer()) {
          check_layer_widths(ck, files, *cc, man, name, jw);
          continue;
        }
        const std::string codec_name = codec->get<std::string>();
        const auto codec_id = codec::find_codec_id(codec_name);
        const bool kak =
            codec_id && codec::codec_traits(*codec_id).centroid_table;  // a stream with a table
        auto it = centroid_of.find(name);
        if (kak && it == centroid_of.end()) {
          const std::string m = std::string("stream ") + name + " is " + codec_name +
                                " but the bundle has no " + name + "_b<b>_centroids.f32";
          if (options.partial)
            ck.warn(F, m);
          else
            ck.err(F, m);
        }
        if (!kak && it != centroid_of.end())
          ck.err(it->second, std::string("present although stream ") + name + " uses " + codec->get<std::string>());
        if (kak && params && it != centroid_of.end()) {
          const json& bw = params->contains("bit_width") ? (*params)["bit_width"] : json(nullptr);
          const std::string want = std::string(name) + "_b" + (bw.is_number_integer() ? std::to_string(bw.get<int>()) : "?") + "_centroids.f32";
          if (want != it->second) ck.err(F, std::string("streams.") + name + ".params.bit_width does not match " + it->second);
          if (params->contains("centroids") && (*params)["centroids"].is_string() &&
              (*params)["centroids"] != "gaussian" && (*params)["centroids"] != it->second)
            ck.err(F, std::string("streams.") + name + ".params.centroids names " + (*params)["centroids"].get<std::string>() +
                          ", not the bundle's " + it->second);
        }
      }
    }
    if (const json* o = ck.field(F, *cc, "layer_overrides", "array"))
      for (const auto& x : *o)
        if (!x.is_object() || !x.contains("layer") || !x["layer"].is_number_integer())
          ck.err(F, "each layer_overrides entry needs an integer layer");
    if (const json* s = ck.field(F, *cc, "selection", "object")) {
      ck.field(F, *s, "in_sample", "bool");
      if (const json* sum = ck.field(F, *s, "summary", "object"))
        for (const char* k : {"ratio_vs_bf16", "bits_per_value", "k_rel_mse", "v_rel_mse", "attn_out_rel_err", "attn_kl", "attn_top1"})
          ck.field(F, *sum, k, "number|null");
      if (man && man->contains("in_sample") && s->contains("in_sample") && (*man)["in_sample"] != (*s)["in_sample"])
        ck.err(F, "selection.in_sample differs from MANIFEST.json in_sample");
    }
    if (const json* d = ck.field(F, *cc, "deploy_compatibility", "object"))
      if (const json* rp = ck.field(F, *d, "reference_plugin", "object")) {
        const json* comp = ck.field(F, *rp, "compatible", "bool");
        const json* issues = ck.field(F, *rp, "issues", "array");
        // §10: per-layer bit widths make the bundle one the reference plugin cannot load as
        // written; that is a warning of the check, not an error.
        bool per_layer_issue = false;
        if (issues)
          for (const auto& i : *issues)
            if (i.is_string() && i.get<std::string>().find("per-layer bit widths") != std::string::npos) {
              per_layer_issue = true;
              ck.warn(F, "reference plugin compatibility: " + i.get<std::string>());
            }
        bool per_layer = false;
        for (const char* st : {"K", "V"}) per_layer = per_layer || json_stream_widths(*cc, st).multi();
        if (per_layer && (!per_layer_issue || (comp && *comp != false)))
          ck.err(F, "deploy_compatibility.reference_plugin must be compatible = false with a "
                    "\"per-layer bit widths\" issue (the streams have per-layer bit widths, §10)");
      }
    if (r.errors.size() == before) r.checks.push_back(F + ": schema valid");
  }
  return cc;
}

/// deploy.env (§6) against codec_config.json (decisions #10).
void check_deploy_env(const fs::path& dir, Checker& ck, const BundleFiles& files,
                      const std::optional<json>& cc) {
  BundleCheckReport& r = ck.r;
  const std::vector<std::string>& present = files.present;
  auto has = [&](const std::string& n) { return files.has(n); };
  if (has(kDeployEnv)) {
    const std::string F = kDeployEnv;
    const size_t before = r.errors.size();
    std::map<std::string, std::string> vars;
    try {
      const std::string text = text_of(io::read_file((dir / F).string()));
      if (text.find('\r') != std::string::npos) ck.err(F, "has CR characters (LF line endings only)");
      std::istringstream is(text);
      std::string line;
      int no = 0;
      static const std::regex kv("([A-Z_][A-Z0-9_]*)=([^ \"']*)");
      while (std::getline(is, line)) {
        ++no;
        if (line.empty() || line[0] == '#') continue;
        std::smatch m;
        if (!std::regex_match(line, m, kv)) {
          ck.err(F, "line " + std::to_string(no) + " is not KEY=VALUE without spaces or quotes: " + line);
          continue;
        }
        if (vars.count(m[1].str())) ck.err(F, "line " + std::to_string(no) + ": " + m[1].str() + " set twice");
        vars[m[1].str()] = m[2].str();
      }
    } catch (const Error& e) {
      r.errors.push_back(e.what());
    }
    static const std::set<std::string> known = {"KAKEYA_SIGMA_Q_PATH",     "KAKEYA_K_CENTROIDS_PATH",
                                                "KAKEYA_V_CENTROIDS_PATH", "KAKEYA_USE_M2_CENTROIDS",
                                                "KAKEYA_SKIP_LAYERS",      "KAKEYA_BOUNDARY_SKIP_LAYERS",
                                                "KAKEYA_DISABLE_SIGMA_Q",  "KAKEYA_OUTLIER_THRESHOLD"};
    for (const auto& [k, v] : vars) {
      if (!known.count(k)) ck.warn(F, "unknown variable " + k);
      if (k.ends_with("_PATH")) {
        if (!deploy_path_ok(v) || v.front() != '/')
          ck.err(F, k + "=" + v + " is not an absolute path of characters A-Z a-z 0-9 . _ / + -");
        else if (!has(fs::path(v).filename().string()))
          ck.err(F, k + " names " + fs::path(v).filename().string() + ", which is not in the bundle");
      }
    }
    if (cc) {
      const DeployEnvPlan plan = plan_deploy_env(*cc, present);
      r.deploy_left_out = plan.left_out;
      std::set<std::string> planned;
      for (const auto& [k, v] : plan.vars) {
        planned.insert(k);
        auto it = vars.find(k);
        if (it == vars.end()) {
          ck.err(F, "lacks " + k + " (codec_config.json implies " + k + "=" + v + ")");
          continue;
        }
        const std::string have = k.ends_with("_PATH") ? fs::path(it->second).filename().string() : it->second;
        if (have != v) ck.err(F, k + "=" + it->second + " does not match codec_config.json (expected " + v + ")");
      }
      for (const auto& [k, v] : vars)
        if (known.count(k) && !planned.count(k))
          ck.err(F, k + "=" + v + " is set although codec_config.json does not imply it");
    } else {
      for (const char* k : {"KAKEYA_SKIP_LAYERS", "KAKEYA_BOUNDARY_SKIP_LAYERS", "KAKEYA_DISABLE_SIGMA_Q"})
        if (!vars.count(k)) ck.err(F, std::string("lacks ") + k);
    }
    if (r.errors.size() == before) r.checks.push_back(F + ": " + std::to_string(vars.size()) + " variables, consistent with codec_config.json");
  }
}

}  // namespace

BundleCheckReport check_bundle(const std::string& dir_in, const BundleCheckOptions& options) {
  BundleCheckReport r;
  const fs::path dir(dir_in);
  Checker ck{dir, r};
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    r.errors.push_back(dir_in + ": not a folder");
    r.ok = false;
    return r;
  }
  BundleFiles files = check_file_set(dir, ck, options);
  const std::optional<json> man = check_manifest(dir, ck, files);
  const std::optional<json> side = check_sigma_q(dir, ck, files, options);
  check_centroid_files(dir, ck, files);
  const std::optional<json> cc = check_codec_config(dir, ck, files, options, man, side);
  check_deploy_env(dir, ck, files, cc);
  r.ok = r.errors.empty();
  return r;
}

}  // namespace kvwb::sessions
