#include "sessions/bundle/bundle_apply.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>

#include "base/errors.h"
#include "codec/traits.h"
#include "io/atomic_file.h"
#include "sessions/bundle/bundle.h"

namespace kvwb::sessions {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

json read_json(const fs::path& p) {
  const auto bytes = io::read_file(p.string());
  json j = json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (j.is_discarded()) throw FormatError(p.string() + ": not valid JSON");
  return j;
}

const json& need(const json& j, const std::string& key, const std::string& where) {
  if (!j.is_object() || !j.contains(key))
    throw FormatError(where + ": missing field '" + key + "'");
  return j[key];
}

std::vector<int> int_list(const json& j, const std::string& where) {
  if (!j.is_array()) throw FormatError(where + ": expected a list of layers");
  std::vector<int> out;
  for (const auto& x : j) {
    if (!x.is_number_integer()) throw FormatError(where + ": expected integers");
    out.push_back(x.get<int>());
  }
  return out;
}

/// An enum setting read from a bundle file: a spelling the parser refuses is a FormatError.
template <class Parse>
auto file_enum(Parse parse, const std::string& text, const std::string& where) {
  try {
    return parse(text, where);
  } catch (const InvalidArgument& e) {
    throw FormatError(e.what());
  }
}

/// A codec_config.json stream object back to a StreamConfig (parameters as text; "centroids"
/// is left out: the table comes from apply_calibration_bundle).
StreamConfig stream_of(const json& s, bool is_k, const std::string& where) {
  StreamConfig sc;
  sc.codec = need(s, "codec", where).get<std::string>();
  const auto id = codec::find_codec_id(sc.codec);  // unknown names fail in run_config_from_json
  const bool table = id && codec::codec_traits(*id).centroid_table;
  const json& params = need(s, "params", where);
  if (!params.is_object()) throw FormatError(where + ".params: expected an object");
  for (auto it = params.begin(); it != params.end(); ++it) {
    if (it->is_null() || (table && it.key() == "centroids")) continue;
    std::string text;
    if (it->is_string() && it.key() == "seed") {
      // u64 seeds are hex strings in codec_config.json (§5); the configuration writes decimal.
      try {
        text = std::to_string(std::stoull(it->get<std::string>(), nullptr, 0));
      } catch (const std::exception&) {
        throw FormatError(where + ".params.seed: not an integer: " + it->get<std::string>());
      }
    } else if (it->is_string())
      text = it->get<std::string>();
    else if (it->is_boolean())
      text = it->get<bool>() ? "true" : "false";
    else if (it->is_number())
      text = it->dump();
    else
      throw FormatError(where + ".params." + it.key() + ": expected a number, string or boolean");
    sc.params[it.key()] = text;
  }
  if (is_k && s.contains("k_domain") && s["k_domain"].is_string())
    sc.k_domain = file_enum(parse_k_domain, s["k_domain"].get<std::string>(), where + ".k_domain");
  return sc;
}

}  // namespace

CalibrationBundle read_calibration_bundle(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw IoError(dir, "is not a bundle folder");
  const BundleCheckReport rep = check_bundle(dir);
  if (!rep.ok) {
    std::string msg;
    for (size_t i = 0; i < rep.errors.size() && i < 5; ++i) msg += "\n  " + rep.errors[i];
    if (rep.errors.size() > 5)
      msg += "\n  … and " + std::to_string(rep.errors.size() - 5) + " more";
    throw FormatError(
        dir + ": not a valid calibration bundle (kvwb bundle-check lists every problem):" + msg);
  }
  CalibrationBundle b;
  b.dir = dir;
  const fs::path root(dir);
  b.manifest_sha256 = io::sha256_file((root / "MANIFEST.json").string());
  const json man = read_json(root / "MANIFEST.json");
  const json& src = need(man, "source_capture", "MANIFEST.json");
  b.capture_file_name = need(src, "file_name", "MANIFEST.json source_capture").get<std::string>();
  b.capture_sha256 = need(src, "sha256", "MANIFEST.json source_capture").get<std::string>();
  b.model_name = src.value("model_name", std::string());
  if (fs::exists(root / "sigma_q.safetensors", ec))
    b.sigma_q_file = (root / "sigma_q.safetensors").string();
  static const std::regex table_name("^([KV]_b[1-4])_centroids\\.f32$");
  for (const auto& e : fs::directory_iterator(root, ec)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (std::regex_match(name, m, table_name)) b.tables[m[1].str()] = e.path().string();
  }
  if (ec) throw IoError(dir, "cannot list the folder: " + ec.message());
  return b;
}

RunConfig bundle_run_config(const std::string& dir) {
  const std::string F = (fs::path(dir) / "codec_config.json").string();
  const json cc = read_json(F);
  RunConfig c;
  c.layers = int_list(need(cc, "layers_in_scope", F), F + " layers_in_scope");
  c.block_size = need(cc, "block_size", F).get<uint32_t>();
  c.block_rows =
      file_enum(parse_block_rows, need(cc, "block_rows", F).get<std::string>(), F + " block_rows");
  c.boundary = int_list(need(cc, "boundary_skip_layers", F), F + " boundary_skip_layers");
  const json& qp = need(cc, "q_precond", F);
  if (need(qp, "enabled", F + " q_precond").get<bool>()) {
    c.q_precond = "capture";
    c.q_precond_skip_layers =
        int_list(need(qp, "user_skip_layers", F + " q_precond"), F + " q_precond.user_skip_layers");
    if (qp.contains("target_cond") && qp["target_cond"].is_number())
      c.target_cond = qp["target_cond"].get<double>();
  }
  const json& streams = need(cc, "streams", F);
  c.k = stream_of(need(streams, "K", F + " streams"), true, F + " streams.K");
  c.v = stream_of(need(streams, "V", F + " streams"), false, F + " streams.V");
  for (const auto& o : need(cc, "layer_overrides", F)) {
    LayerOverride lo;
    lo.layer = need(o, "layer", F + " layer_overrides").get<int>();
    if (o.contains("K")) lo.k = stream_of(o["K"], true, F + " layer_overrides K");
    if (o.contains("V")) lo.v = stream_of(o["V"], false, F + " layer_overrides V");
    c.overrides.push_back(std::move(lo));
  }
  // A version 2 bundle (bundle-format.md §10) whose run-level width no layer uses has no table
  // for it (params.centroids null): the run-level width becomes the most common width of the
  // layers (ties to the smaller), the one deploy.env names, so that every layer, in scope or
  // added later, has a table of the bundle. The layers in scope keep their own widths.
  for (const char* name : {"K", "V"}) {
    const json& p = streams[name]["params"];
    if (!p.is_object() || !p.contains("centroids") || !p["centroids"].is_null()) continue;
    StreamConfig& base = name[0] == 'K' ? c.k : c.v;
    std::map<std::string, int> count;
    for (const auto& o : c.overrides) {
      const auto& os = name[0] == 'K' ? o.k : o.v;
      if (!os || os->codec != base.codec || !os->params.count("bit_width")) continue;
      if (std::find(c.boundary.begin(), c.boundary.end(), o.layer) != c.boundary.end()) continue;
      ++count[os->params.at("bit_width")];
    }
    if (count.empty())
      throw FormatError(F + " streams." + name + ".params.centroids is null but no layer override "
                        "gives the stream a bit width with a table");
    auto best = count.begin();
    for (auto it = count.begin(); it != count.end(); ++it)
      if (it->second > best->second ||
          (it->second == best->second && std::stoi(it->first) < std::stoi(best->first)))
        best = it;
    base.params["bit_width"] = best->first;
  }
  // Validate through the configuration schema (unknown codecs or parameters are errors here).
  return run_config_from_json(run_config_to_json(c), F);
}

}  // namespace kvwb::sessions
