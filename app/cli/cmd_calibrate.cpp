// kvwb calibrate: Σ_q factors (sigma_q.safetensors + sigma_q.json, bundle-format.md §2–§3) and
// Lloyd-Max centroid tables fitted on the runtime encode path's residuals (§4) for a capture.
#include <CLI/CLI.hpp>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "app/cli/cli_common.h"
#include "app/cli/run_flags.h"
#include "base/errors.h"
#include "codec/traits.h"
#include "io/atomic_file.h"
#include "io/capture.h"
#include "sessions/bundle/calibration_export.h"

namespace kvwb::app {

namespace {

struct CalibrateArgs {
  std::string capture, out_dir, json_out;
  RunFlags flags;
  bool no_centroids = false, no_sigma_q = false, quiet = false;
};

bool capture_has_q(const std::string& path) {
  io::CaptureReader cap(path);
  for (const auto& li : cap.info().layers)
    if (li.has_q_pre && li.attention != "sliding") return true;
  return false;
}

void run(const CalibrateArgs& a) {
  const sessions::RunConfig cfg = build_run_config(a.flags);
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(a.out_dir, ec) && !fs::is_directory(a.out_dir, ec))
    throw IoError(a.out_dir, "--out must be a folder, but a file of that name exists");

  // Compute everything first; nothing is written unless all of it succeeds.
  std::optional<sessions::SigmaQCalibration> sq;
  if (!a.no_sigma_q) {
    if (capture_has_q(a.capture))
      sq = sessions::calibrate_sigma_q(a.capture, cfg);
    else if (!a.quiet)
      std::printf("note: the capture has no q_pre in a full-attention layer: no sigma_q files\n");
  }
  std::vector<sessions::CentroidCalibration> cents;
  if (!a.no_centroids && (codec::codec_traits(cfg.k.codec).centroid_table ||
                          codec::codec_traits(cfg.v.codec).centroid_table)) {
    TerminalJob job("kvwb calibrate");
    cents = sessions::calibrate_centroids(a.capture, cfg, &job.control());
  } else if (!a.no_centroids && !a.quiet) {
    std::printf("note: neither stream uses kakeya_pca: no centroid tables\n");
  }
  if (!sq && cents.empty())
    throw InvalidArgument("calibrate: nothing to write (no Σ_q and no kakeya_pca stream)");

  fs::create_directories(a.out_dir, ec);
  if (ec) throw IoError(a.out_dir, "cannot create the folder: " + ec.message());
  nlohmann::ordered_json report;
  report["capture"] = a.capture;
  if (sq) {
    sessions::write_sigma_q_files(a.out_dir, *sq);
    report["sigma_q"] = {{"layers_written", sq->written},
                         {"skip_layers", std::vector<int>(sq->whitening.skipped.begin(),
                                                          sq->whitening.skipped.end())},
                         {"median_max_abs_L", sq->whitening.rule.median}};
  }
  nlohmann::ordered_json cj = nlohmann::ordered_json::object();
  for (const auto& c : cents) {
    sessions::write_centroid_file(
        (fs::path(a.out_dir) / sessions::centroid_file_name(c.stream, c.bits)).string(),
        c.fit.table);
    cj[c.stream] = sessions::centroid_report_json(c);
  }
  report["centroids"] = cj;
  if (!a.json_out.empty()) io::write_file_atomic(a.json_out, report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  if (a.quiet) return;
  if (sq) {
    std::printf("wrote %s/sigma_q.safetensors and sigma_q.json: %zu layers written",
                a.out_dir.c_str(), sq->written.size());
    std::printf(", skipped:");
    if (sq->whitening.skipped.empty()) std::printf(" none");
    for (int l : sq->whitening.skipped) std::printf(" %d", l);
    std::printf(" (median max|L| %.4f)\n", sq->whitening.rule.median);
  }
  for (const auto& c : cents) {
    std::printf(
        "wrote %s/%s: %llu samples pooled, %llu used, %d iterations%s, MSE gaussian %.6g -> "
        "calibrated %.6g\n",
        a.out_dir.c_str(), sessions::centroid_file_name(c.stream, c.bits).c_str(),
        static_cast<unsigned long long>(c.samples_pooled),
        static_cast<unsigned long long>(c.samples_used), c.fit.iterations,
        c.fit.converged ? " (converged)" : " (not converged)", c.fit.mse_gaussian,
        c.fit.mse_calibrated);
    std::printf("   table:");
    for (float v : c.fit.table) std::printf(" %.6f", static_cast<double>(v));
    std::printf("\n");
  }
}

}  // namespace

void add_calibrate_command(CLI::App& app) {
  auto args = std::make_shared<CalibrateArgs>();
  auto* cmd =
      app.add_subcommand("calibrate",
                         "Write Σ_q factors (sigma_q.safetensors + .json) and Lloyd-Max centroid "
                         "tables calibrated on the runtime encode path");
  add_capture_arg(*cmd, args->capture);
  cmd->add_option("--out", args->out_dir,
                  "Output folder (created if missing; files are written atomically)")
      ->required();
  cmd->add_option("--json", args->json_out, "Write a calibration report JSON here");
  cmd->add_flag("--no-centroids", args->no_centroids, "Only write the Σ_q files");
  cmd->add_flag("--no-sigma-q", args->no_sigma_q, "Only write the centroid tables");
  cmd->add_flag("--quiet,-q", args->quiet, "Do not print the summary");
  add_run_flags(*cmd, args->flags);
  cmd->callback([args] { run(*args); });
}

}  // namespace kvwb::app
