// kvwb run: evaluate one configuration on a capture and report bytes and quality.
#include <CLI/CLI.hpp>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <optional>
#include <thread>

#include "app/cli/cli_common.h"
#include "app/cli/eval_args.h"
#include "app/cli/run_flags.h"
#include "base/errors.h"
#include "io/atomic_file.h"
#include "sessions/bundle/bundle_apply.h"
#include "sessions/document/session.h"
#include "sessions/run/runner.h"

namespace kvwb::app {

namespace {

struct RunArgs {
  std::string capture;
  RunFlags flags;
  std::string json_out, csv_out, dump_decoded;
  std::string session, save_session;
  std::string bundle;
  bool quiet = false;
  bool no_cache = false;
};

void print_summary(const sessions::RunResult& r) {
  std::printf("%-6s %-4s %-12s %12s %8s %11s %11s %10s\n", "layer", "strm", "codec", "bytes", "ratio", "rel_mse",
              "snr_db", "attn_kl");
  for (const auto& l : r.layers) {
    for (const auto* s : {&l.k, &l.v}) {
      const double ratio = s->bytes ? static_cast<double>(s->bf16_bytes) / static_cast<double>(s->bytes) : NAN;
      std::printf("%-6d %-4s %-12s %12llu %8s %11s %11s %10s%s%s\n", l.layer, s == &l.k ? "K" : "V",
                  s->codec.c_str(), static_cast<unsigned long long>(s->bytes), format_number(ratio, "%.3f").c_str(),
                  s->failed ? "FAILED" : format_number(s->err.rel_mse()).c_str(), s->failed ? "" : format_number(s->err.snr_db(), "%.2f").c_str(),
                  s->has_attn ? format_number(s->attn.kl()).c_str() : "n/a", l.boundary ? "  [boundary]" : "",
                  (s == &l.k && l.whitened) ? "  [whitened]" : "");
      if (s->failed) std::printf("       error[%s]: %s\n", s->error_code.c_str(), s->error_message.c_str());
    }
  }
  std::printf("total: %llu bytes vs bf16 %llu bytes -> ratio %s (hot tail share %s)\n",
              static_cast<unsigned long long>(r.total_bytes), static_cast<unsigned long long>(r.bf16_bytes),
              format_number(r.ratio_vs_bf16(), "%.4f").c_str(),
              format_number(r.total_bytes ? static_cast<double>(r.tail_bytes) / static_cast<double>(r.total_bytes) : NAN, "%.3f").c_str());
  for (const auto& w : r.warnings) std::printf("warning: %s\n", w.c_str());
}

void write_outputs(const RunArgs& a, const sessions::RunResult& r, bool cancelled, const nlohmann::json& calibration) {
  if (!a.json_out.empty()) {
    auto j = sessions::run_result_to_json(r);
    if (cancelled) j["cancelled"] = true;
    if (!calibration.is_null()) j["calibration"] = calibration;
    io::write_file_atomic(a.json_out, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  }
  if (!a.csv_out.empty()) io::write_file_atomic(a.csv_out, sessions::run_result_to_csv(r));
}

/// The configuration of a run: the session's current configuration and boundary set (when
/// --session is given), then --config, then the flags.
sessions::RunConfig session_aware_config(RunArgs& a) {
  if (a.session.empty()) {
    if (a.capture.empty()) throw InvalidArgument("kvwb run needs a CAPTURE (or --session FILE)");
    if (!a.bundle.empty()) {
      const sessions::RunConfig base = sessions::bundle_run_config(a.bundle);
      return build_run_config(a.flags, &base);
    }
    return build_run_config(a.flags);
  }
  const sessions::SessionLoadResult s = sessions::load_session(a.session);
  for (const auto& w : s.warnings) std::fprintf(stderr, "warning: %s: %s\n", a.session.c_str(), w.c_str());
  if (!s.current_config_error.empty())
    throw FormatError(a.session + ": the current configuration cannot be read (" + s.current_config_error +
                      "); fix it in the session or run with --config");
  if (a.capture.empty()) {
    a.capture = s.doc.capture_path;
    io::protect_input(a.capture);
  }
  sessions::RunConfig base;
  if (const sessions::RunConfig* c = s.doc.current()) base = *c;
  base.boundary = s.doc.boundary;
  return build_run_config(a.flags, &base);
}

void run(RunArgs a) {
  sessions::RunConfig cfg = session_aware_config(a);
  // One default for the CLI and the GUI (issue 13 item 8): without a session, bundle, --config or
  // --block-size, the block size fits the capture and the result says so.
  const std::string fitted =
      a.session.empty() && a.bundle.empty() ? fit_default_block_size(a.flags, cfg, a.capture) : "";
  std::optional<sessions::CalibrationBundle> bundle;
  if (!a.bundle.empty()) {
    bundle = sessions::read_calibration_bundle(a.bundle);
    cfg = sessions::apply_calibration_bundle(cfg, *bundle);
  }
  sessions::RunOptions opt;
  opt.dump_decoded = a.dump_decoded;
  const auto cache = cli_result_cache(a.no_cache);
  opt.cache = cache.get();
  opt.digest_memo_dir = io::default_cache_dir();  // the digest memo serves --no-cache runs too
  sessions::RunResult partial;
  sessions::RunResult r;
  try {
    TerminalJob job("kvwb run");
    r = sessions::run_config(a.capture, cfg, opt, &job.control(), &partial);
    if (!fitted.empty()) r.warnings.insert(r.warnings.begin(), fitted);
  } catch (const Cancelled&) {
    if (!fitted.empty()) partial.warnings.insert(partial.warnings.begin(), fitted);
    const nlohmann::json cal = bundle ? sessions::calibration_provenance_json(*bundle, cfg, "capture", a.capture,
                                                                              partial.capture_sha256)
                                      : nlohmann::json();
    write_outputs(a, partial, true, cal);  // finished layers are kept
    throw;
  }
  const nlohmann::json cal =
      bundle ? sessions::calibration_provenance_json(*bundle, cfg, "capture", a.capture, r.capture_sha256)
             : nlohmann::json();
  write_outputs(a, r, false, cal);
  if (!a.quiet) print_summary(r);
  if (bundle)
    std::printf("calibration: %s: Σ_q and tables of bundle %s, fitted on %s (sha256 %s); evaluated on %s (sha256 %s)\n",
                cal["sample"].get<std::string>().c_str(), bundle->dir.c_str(), bundle->capture_file_name.c_str(),
                bundle->capture_sha256.c_str(), a.capture.c_str(), r.capture_sha256.c_str());
  if (!a.save_session.empty()) {
    sessions::SessionDocument doc;
    doc.capture_path = a.capture;
    doc.capture_sha256 = r.capture_sha256;
    doc.configs.push_back({"run", cfg});
    doc.current_config = "run";
    doc.boundary = cfg.boundary;
    sessions::save_session(a.save_session, doc);
    std::printf("session saved: %s\n", a.save_session.c_str());
  }
  if (r.failed) {
    for (const auto& l : r.layers)
      for (const auto* s : {&l.k, &l.v})
        if (s->failed)
          throw Error(s->error_code, "layer " + std::to_string(l.layer) + " failed: " + s->error_message +
                                         " (its metrics are absent; other layers were reported)");
  }
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand("run", "Encode and decode every layer of a capture with a configuration; report "
                                        "exact container bytes, ratio vs bf16 and error metrics");
  cmd->add_option("capture", args->capture, "Capture file (.kvc.h5); optional with --session")->each(protect_input_value);
  add_run_flags(*cmd, args->flags);
  cmd->add_option("--json", args->json_out, "Write the result JSON here (atomic)");
  cmd->add_option("--csv", args->csv_out, "Write one CSV row per (layer, stream) here");
  cmd->add_option("--dump-decoded", args->dump_decoded, "Write a capture holding the reconstructed tensors");
  cmd->add_flag("--quiet,-q", args->quiet, "Do not print the summary table");
  cmd->add_flag("--no-cache", args->no_cache,
                "Compute every layer: neither read nor fill the result cache (~/.cache/kvwb/results); the "
                "capture digest memo there is still used (KVWB_CACHE_DIR=off disables both)");
  cmd->add_option("--session", args->session, "Session (*.kvwb.json): its capture, current configuration and "
                                               "boundary set; flags override them");
  cmd->add_option("--save-session", args->save_session, "Save the capture and this configuration as a session");
  add_bundle_arg(*cmd, args->bundle, "the run (its configuration is the starting point; flags refine it)");
  cmd->callback([args] { run(*args); });
}

}  // namespace kvwb::app
