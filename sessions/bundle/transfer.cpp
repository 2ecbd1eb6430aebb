#include "sessions/bundle/transfer.h"

#include <cmath>
#include <filesystem>
#include <random>

#include "base/errors.h"
#include "io/atomic_file.h"
#include "sessions/bundle/bundle.h"
#include "sessions/bundle/bundle_apply.h"

namespace kvwb::sessions {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

bool names_tables(const RunConfig& c) {
  if (!c.k.centroids_file.empty() || !c.v.centroids_file.empty()) return true;
  for (const auto& o : c.overrides)
    if ((o.k && !o.k->centroids_file.empty()) || (o.v && !o.v->centroids_file.empty())) return true;
  return false;
}

bool has_kakeya(const RunConfig& c) {
  if (c.k.codec == "kakeya_pca" || c.v.codec == "kakeya_pca") return true;
  for (const auto& o : c.overrides)
    if ((o.k && o.k->codec == "kakeya_pca") || (o.v && o.v->codec == "kakeya_pca")) return true;
  return false;
}

void check_run(const RunResult& r, const std::string& column) {
  for (const auto& l : r.layers)
    for (const auto* s : {&l.k, &l.v})
      if (s->failed)
        throw Error(s->error_code, "transfer: the " + column + " run failed on layer " +
                                       std::to_string(l.layer) + " " + (s == &l.k ? "K" : "V") +
                                       ": " + s->error_message);
}

/// Removes a temporary folder on scope exit.
struct TempFolder {
  fs::path path;
  bool remove = false;
  ~TempFolder() {
    std::error_code ec;
    if (remove) fs::remove_all(path, ec);
  }
};

json number_or_null(const json& j, std::initializer_list<const char*> path) {
  const json* p = &j;
  for (const char* k : path) {
    if (!p->is_object() || !p->contains(k)) return nullptr;
    p = &(*p)[k];
  }
  return p->is_number() ? *p : json(nullptr);
}

}  // namespace

TransferResult calibration_transfer(const std::string& capture_a, const std::string& capture_b,
                                    const RunConfig& cfg, const TransferOptions& opt) {
  if (!cfg.q_precond.empty() && cfg.q_precond != "capture")
    throw InvalidArgument(
        "transfer calibrates Σ_q itself: use --q-precond capture (or none), not the file " +
        cfg.q_precond);
  if (names_tables(cfg))
    throw InvalidArgument(
        "transfer calibrates the centroid tables itself: drop --centroids-k/--centroids-v "
        "(centroids_file) from the configuration");
  if (cfg.q_precond.empty() && !has_kakeya(cfg))
    throw InvalidArgument(
        "transfer: the configuration calibrates nothing (no --q-precond capture and no kakeya_pca "
        "stream with a centroid table): there is nothing to transfer");
  TransferResult t;
  t.capture_a = capture_a;
  t.capture_b = capture_b;
  t.config = cfg;
  TempFolder folder;
  std::error_code ec;
  if (opt.keep_bundles.empty()) {
    std::random_device rd;
    char hex[17];
    std::snprintf(hex, sizeof hex, "%08x%08x", rd(), rd());
    folder.path = fs::temp_directory_path(ec) / (std::string("kvwb-transfer-") + hex);
    folder.remove = true;
  } else {
    folder.path = opt.keep_bundles;
    if (fs::exists(folder.path, ec) &&
        (!fs::is_directory(folder.path, ec) || !fs::is_empty(folder.path, ec)))
      throw InvalidArgument("transfer: --keep-bundles " + opt.keep_bundles +
                            " exists and is not an empty folder");
  }
  fs::create_directories(folder.path, ec);
  if (ec) throw IoError(folder.path.string(), "cannot create the bundle folder: " + ec.message());
  BundleExportOptions eo;
  eo.criterion = "kvwb transfer";
  eo.job = opt.job;
  const std::string dir_a = (folder.path / "calibrated-on-A").string();
  const std::string dir_b = (folder.path / "calibrated-on-B").string();
  export_bundle(capture_a, cfg, dir_a, eo);
  export_bundle(capture_b, cfg, dir_b, eo);
  t.calibration_a = read_calibration_bundle(dir_a);
  t.calibration_b = read_calibration_bundle(dir_b);
  t.sha256_a = t.calibration_a.capture_sha256;
  t.sha256_b = t.calibration_b.capture_sha256;
  if (!opt.keep_bundles.empty()) {
    t.bundle_a = dir_a;
    t.bundle_b = dir_b;
  }
  RunOptions ro;
  ro.compute_sha256 = true;
  auto column = [&](const std::string& name, const RunConfig& c, const CalibrationBundle* b) {
    TransferColumn col;
    col.name = name;
    col.config = c;
    col.run = run_config(capture_b, c, ro, opt.job);
    check_run(col.run, name);
    if (b)
      col.calibration =
          calibration_provenance_json(*b, c, "capture", capture_b, col.run.capture_sha256);
    return col;
  };
  RunConfig none = cfg;
  none.q_precond.clear();
  t.uncalibrated = column("uncalibrated", none, nullptr);
  t.in_sample =
      column("in-sample", apply_calibration_bundle(cfg, t.calibration_b), &t.calibration_b);
  t.out_of_sample =
      column("out-of-sample", apply_calibration_bundle(cfg, t.calibration_a), &t.calibration_a);
  if (t.in_sample.run.capture_sha256 != t.sha256_b)
    throw CaptureChanged("transfer: " + capture_b + " changed while the transfer ran");
  if (folder.remove) {
    // The provenance names bundle folders that are about to be removed: say so.
    for (auto* c : {&t.in_sample, &t.out_of_sample})
      c->calibration["bundle"] = "(temporary; --keep-bundles keeps it)";
  }
  return t;
}

json transfer_metrics_json(const RunResult& r) {
  const json j = run_result_to_json(r);
  return {{"ratio_vs_bf16", number_or_null(j, {"ratio_vs_bf16"})},
          {"total_bytes", r.total_bytes},
          {"k_rel_mse", number_or_null(j, {"totals", "k", "rel_mse"})},
          {"v_rel_mse", number_or_null(j, {"totals", "v", "rel_mse"})},
          {"attn_out_rel_err", number_or_null(j, {"totals", "attention", "attn_out_rel_err"})},
          {"attn_kl", number_or_null(j, {"totals", "attention", "attn_kl"})},
          {"attn_top1", number_or_null(j, {"totals", "attention", "attn_top1"})}};
}

json transfer_to_json(const TransferResult& t) {
  json cols = json::object();
  json in, out;
  for (const auto* c : {&t.uncalibrated, &t.in_sample, &t.out_of_sample}) {
    json m = transfer_metrics_json(c->run);
    const std::string key = c == &t.uncalibrated ? "uncalibrated"
                            : c == &t.in_sample  ? "in_sample"
                                                 : "out_of_sample";
    if (c == &t.in_sample) in = m;
    if (c == &t.out_of_sample) out = m;
    cols[key] = {
        {"metrics", m}, {"calibration", c->calibration}, {"config_hash", c->run.config_hash}};
  }
  json rel = json::object();
  for (auto it = in.begin(); it != in.end(); ++it) {
    const json& a = *it;
    const json& b = out[it.key()];
    rel[it.key()] = a.is_number() && b.is_number() && a.get<double>() != 0
                        ? json((b.get<double>() - a.get<double>()) / std::fabs(a.get<double>()))
                        : json(nullptr);
  }
  return {{"format", "kvwb-transfer"},
          {"format_version", 1},
          {"calibrated_on", {{"file", t.capture_a}, {"sha256", t.sha256_a}}},
          {"evaluated_on", {{"file", t.capture_b}, {"sha256", t.sha256_b}}},
          {"config", run_config_to_json(t.config)},
          {"bundles",
           {{"calibrated_on_a", t.bundle_a.empty() ? json(nullptr) : json(t.bundle_a)},
            {"calibrated_on_b", t.bundle_b.empty() ? json(nullptr) : json(t.bundle_b)}}},
          {"columns", cols},
          {"out_vs_in", rel}};
}

}  // namespace kvwb::sessions
