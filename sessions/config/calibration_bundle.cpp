#include "sessions/config/calibration_bundle.h"

#include <string>

#include "base/errors.h"
#include "codec/codec.h"

namespace kvwb::sessions {

namespace {

int kakeya_bit_width(const StreamConfig& s) {
  auto it = s.params.find("bit_width");
  std::string text;
  if (it != s.params.end()) {
    text = it->second;
  } else {
    for (const auto& spec : codec::codec_params("kakeya_pca"))
      if (spec.name == "bit_width") text = spec.default_value;
  }
  try {
    return std::stoi(text);
  } catch (const std::exception&) {
    throw InvalidArgument("kakeya_pca bit_width '" + text + "' is not an integer");
  }
}

std::string table_list(const CalibrationBundle& b) {
  std::string s;
  for (const auto& [k, v] : b.tables) s += (s.empty() ? "" : ", ") + k + "_centroids.f32";
  return s.empty() ? "no centroid tables" : s;
}

void apply_table(StreamConfig& s, bool is_k, const CalibrationBundle& b, const std::string& where) {
  if (s.codec != "kakeya_pca") return;
  const std::string key =
      std::string(is_k ? "K" : "V") + "_b" + std::to_string(kakeya_bit_width(s));
  auto it = b.tables.find(key);
  if (it == b.tables.end())
    throw InvalidArgument("bundle " + b.dir + " has no " + key + "_centroids.f32 for " + where +
                          " (kakeya_pca at that bit width); it holds " + table_list(b));
  if (!s.centroids_file.empty() && s.centroids_file != it->second)
    throw InvalidArgument(where + " already names the centroid table " + s.centroids_file +
                          "; the bundle " + b.dir + " supplies " + it->second +
                          " (drop one of them)");
  s.centroids_file = it->second;
}

}  // namespace

RunConfig apply_calibration_bundle(const RunConfig& cfg, const CalibrationBundle& b) {
  RunConfig c = cfg;
  if (!c.q_precond.empty()) {
    if (b.sigma_q_file.empty())
      throw InvalidArgument(
          "the configuration Q-preconditions keys, but the bundle " + b.dir +
          " has no sigma_q.safetensors (it was fitted on a capture without q_pre)");
    c.q_precond = b.sigma_q_file;
    c.q_precond_auto_skip = false;
  }
  apply_table(c.k, true, b, "the K stream");
  apply_table(c.v, false, b, "the V stream");
  for (auto& o : c.overrides) {
    if (o.k) apply_table(*o.k, true, b, "the K stream of layer " + std::to_string(o.layer));
    if (o.v) apply_table(*o.v, false, b, "the V stream of layer " + std::to_string(o.layer));
  }
  return c;
}

nlohmann::json calibration_provenance_json(const CalibrationBundle& b, const RunConfig& applied,
                                           const std::string& evaluated_kind,
                                           const std::string& evaluated_file,
                                           const std::string& evaluated_sha256) {
  const bool in_sample = evaluated_kind == "capture" && !evaluated_sha256.empty() &&
                         evaluated_sha256 == b.capture_sha256;
  auto path_or_null = [](const std::string& p) {
    return p.empty() ? nlohmann::json(nullptr) : nlohmann::json(p);
  };
  return {{"source", "bundle"},
          {"bundle", b.dir},
          {"bundle_manifest_sha256", b.manifest_sha256},
          {"calibrated_on",
           {{"file_name", b.capture_file_name},
            {"sha256", b.capture_sha256},
            {"model_name", b.model_name}}},
          {"evaluated_on",
           {{"kind", evaluated_kind}, {"file", evaluated_file}, {"sha256", evaluated_sha256}}},
          {"sample", in_sample ? "in-sample" : "out-of-sample"},
          {"sigma_q",
           applied.q_precond.empty() ? nlohmann::json(nullptr) : nlohmann::json(applied.q_precond)},
          {"centroids",
           {{"K", applied.k.codec == "kakeya_pca" ? path_or_null(applied.k.centroids_file)
                                                  : nlohmann::json(nullptr)},
            {"V", applied.v.codec == "kakeya_pca" ? path_or_null(applied.v.centroids_file)
                                                  : nlohmann::json(nullptr)}}}};
}

}  // namespace kvwb::sessions
