// kvwb export-bundle / kvwb bundle-check: the deployable calibration bundle of
// bundle-format.md (Σ_q factors, centroid tables, codec_config.json, deploy.env, MANIFEST.json).
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "app/cli/cli_common.h"
#include "app/cli/run_flags.h"
#include "base/errors.h"
#include "sessions/bundle/bundle.h"

namespace kvwb::app {

namespace {

struct ExportArgs {
  std::string capture, out_dir, deploy_root;
  RunFlags flags;
  bool force = false, gaussian = false, quiet = false;
};

void run_export(const ExportArgs& a) {
  sessions::RunConfig cfg = build_run_config(a.flags);
  const std::string fitted = fit_default_block_size(a.flags, cfg, a.capture);
  if (!fitted.empty()) std::printf("note: %s\n", fitted.c_str());
  sessions::BundleExportOptions opt;
  opt.force = a.force;
  opt.calibrate_centroids = !a.gaussian;
  opt.deploy_root = a.deploy_root;
  sessions::BundleExportResult res;
  {
    TerminalJob job("kvwb export-bundle");
    opt.job = &job.control();
    res = sessions::export_bundle(a.capture, cfg, a.out_dir, opt);
    opt.job = nullptr;
  }
  if (a.quiet) return;
  std::printf("wrote bundle %s (ratio vs bf16 %.4f):\n", res.out_dir.c_str(), res.run.ratio_vs_bf16());
  for (const auto& f : res.files) std::printf("  %s\n", f.c_str());
  const auto rep = sessions::check_bundle(res.out_dir);
  std::printf("checks:\n");
  for (const auto& c : rep.checks) std::printf("  ok  %s\n", c.c_str());
  for (const auto& w : res.warnings) std::printf("warning: %s\n", w.c_str());
  if (!res.deploy_issues.empty()) {
    std::printf("reference plugin compatibility issues:\n");
    for (const auto& i : res.deploy_issues) std::printf("  %s\n", i.c_str());
  }
  if (res.deploy_left_out.empty()) {
    std::printf("deploy.env expresses every setting of the configuration\n");
  } else {
    std::printf("deploy.env left out (decisions #10):\n");
    for (const auto& i : res.deploy_left_out) std::printf("  %s\n", i.c_str());
  }
}

struct CheckArgs {
  std::string dir;
  bool json = false, partial = false;
};

int run_check(const CheckArgs& a) {
  sessions::BundleCheckOptions opt;
  opt.partial = a.partial;
  const auto rep = sessions::check_bundle(a.dir, opt);
  if (a.json) {
    std::printf("%s\n", rep.to_json().dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    for (const auto& c : rep.checks) std::printf("ok       %s\n", c.c_str());
    for (const auto& w : rep.warnings) std::printf("warning  %s\n", w.c_str());
    for (const auto& l : rep.deploy_left_out) std::printf("left out %s (deploy.env cannot express it)\n", l.c_str());
    for (const auto& e : rep.errors) std::printf("error    %s\n", e.c_str());
    std::printf("%s: %s (%zu errors, %zu warnings)\n", a.dir.c_str(), rep.ok ? "valid bundle" : "INVALID bundle",
                rep.errors.size(), rep.warnings.size());
  }
  return rep.ok ? kExitOk : kExitData;
}

}  // namespace

void add_export_bundle_command(CLI::App& app) {
  auto args = std::make_shared<ExportArgs>();
  auto* cmd = app.add_subcommand("export-bundle",
                                 "Export a configuration as a deployable calibration bundle (bundle-format.md), "
                                 "written atomically");
  add_capture_arg(*cmd, args->capture);
  cmd->add_option("--out", args->out_dir, "Bundle folder to create")->required();
  cmd->add_flag("--force", args->force, "Replace an existing non-empty bundle folder (atomically)");
  cmd->add_flag("--gaussian-centroids", args->gaussian,
                "Ship the Gaussian table for kakeya_pca streams without centroids_file instead of calibrating");
  cmd->add_option("--deploy-root", args->deploy_root,
                  "Absolute folder written into deploy.env paths (default: the bundle's own location)");
  cmd->add_flag("--quiet,-q", args->quiet, "Do not print the summary");
  add_run_flags(*cmd, args->flags);
  cmd->callback([args] { run_export(*args); });
}

void add_bundle_check_command(CLI::App& app) {
  auto args = std::make_shared<CheckArgs>();
  auto* cmd = app.add_subcommand("bundle-check", "Validate a calibration bundle folder (exit 0 valid, 1 invalid)");
  add_required_input(*cmd, "dir", args->dir, "Bundle folder");
  cmd->add_flag("--json", args->json, "Print the report as JSON");
  cmd->add_flag("--partial", args->partial,
                "Accept a partial artefact (e.g. the reference's sigma_q files alone): missing files are warnings");
  cmd->callback([args] {
    if (run_check(*args) != kExitOk)  // main prints error[FORMAT_ERROR] and exits 1 (decisions #7)
      throw FormatError(args->dir + ": not a valid bundle (problems listed above)");
  });
}

}  // namespace kvwb::app
