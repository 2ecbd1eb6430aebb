// kvwb analyze: spectra, d_eff, Σ_q conditioning, skip rule, kurtosis and outlier rates of a
// capture (metrics.md §4–§6), as JSON/CSV and a compact table.
#include <CLI/CLI.hpp>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <thread>

#include "app/cli/cli_common.h"
#include "app/cli/run_flags.h"
#include "base/errors.h"
#include "io/atomic_file.h"
#include "sessions/analysis/analysis.h"

namespace kvwb::app {

namespace {

struct AnalyzeArgs {
  std::string capture, json_out, csv_out;
  RunFlags flags;
  bool outliers = false, no_rotated = false, quiet = false;
  std::optional<double> vr;
};

void print_table(const sessions::AnalysisResult& r) {
  std::printf("%s: %s, S=%d T=%d H_q=%d H_kv=%d D=%d\n", r.capture_file.c_str(),
              r.model_name.c_str(), r.sequences, r.tokens, r.num_query_heads, r.num_kv_heads,
              r.head_dim);
  std::printf("%-5s %-4s %11s %11s %8s %6s %5s %5s %5s %5s %8s %8s %8s %10s\n", "layer", "head",
              "cond(Sreg)", "cond(S)", "max|L|", "ratio", "skip", "dK95", "dKw95", "dV95", "kurt_K",
              "kurt_Kw", "kurt_V", "max|K.L|");
  for (const auto& la : r.layers) {
    for (const auto& h : la.heads) {
      const auto* s = h.sigma_q ? &*h.sigma_q : nullptr;
      const auto* w = h.k_whitened ? &*h.k_whitened : nullptr;
      std::printf(
          "%-5d %-4d %11s %11s %8s %6s %5s %5zu %5s %5zu %8s %8s %8s %10s%s\n", la.layer, h.kv_head,
          s ? format_number(s->cond_reg, "%.2f").c_str() : "-", s ? format_number(s->cond_raw, "%.4g").c_str() : "-",
          s ? format_number(s->max_abs_L, "%.3f").c_str() : "-", s ? format_number(la.skip_ratio, "%.2f").c_str() : "-",
          s ? (la.skip ? "SKIP" : "no") : "-", h.k_pre.spectrum.d_eff[1],
          w ? std::to_string(w->spectrum.d_eff[1]).c_str() : "-", h.v.spectrum.d_eff[1],
          format_number(h.k_pre.kurtosis.pooled, "%.3f").c_str(),
          w ? format_number(w->kurtosis.pooled, "%.3f").c_str() : "-",
          format_number(h.v.kurtosis.pooled, "%.3f").c_str(), w ? format_number(w->max_abs, "%.4g").c_str() : "-",
          la.whitened_beyond_fp16 ? "  [> fp16 max]" : "");
    }
  }
  std::printf("skip rule: median max|L| = %s; auto-skipped layers:",
              format_number(r.skip_median, "%.4f").c_str());
  if (r.skip_layers.empty()) std::printf(" none");
  for (int l : r.skip_layers) std::printf(" %d", l);
  std::printf("\n");
  if (r.outliers) {
    const auto g = sessions::gaussian_outlier_rates();
    std::printf("outlier rates of the scaled post-WHT residual (|s| > T), %%:\n");
    std::printf("%-8s %9s %9s %9s %9s %12s %8s\n", "scope", "T=1.5", "T=2.0", "T=2.5", "T=3.0",
                "values", "kurt");
    auto row = [](const std::string& name, const sessions::OutlierCounts& c) {
      std::printf("%-8s", name.c_str());
      for (size_t i = 0; i < 4; ++i)
        std::printf(" %9s", c.values ? format_number(100.0 * c.rate(i), "%.3f").c_str() : "n/a");
      std::printf(" %12llu %8s\n", static_cast<unsigned long long>(c.values),
                  format_number(c.kurtosis, "%.3f").c_str());
    };
    for (const auto& l : r.outliers->layers) {
      if (l.k) row("L" + std::to_string(l.layer) + " K", *l.k);
      if (l.v) row("L" + std::to_string(l.layer) + " V", *l.v);
    }
    if (r.outliers->has_k) row("all K", r.outliers->k_total);
    if (r.outliers->has_v) row("all V", r.outliers->v_total);
    std::printf("%-8s", "Gaussian");
    for (double v : g) std::printf(" %9s", format_number(100.0 * v, "%.3f").c_str());
    std::printf("\n");
  }
}

void run(const AnalyzeArgs& a) {
  sessions::AnalysisOptions opt;
  if (!a.flags.layers.empty()) opt.layers = sessions::parse_layer_list(a.flags.layers, "--layers");
  if (!a.flags.q_precond_skip.empty())
    opt.user_skip_layers = sessions::parse_layer_list(a.flags.q_precond_skip, "--q-precond-skip");
  opt.target_cond = a.flags.target_cond;
  opt.user_vr = a.vr;
  opt.rotated = !a.no_rotated;
  if (a.flags.threads) opt.threads = *a.flags.threads;
  // Any configuration flag (--config, a codec, --q-precond FILE, --boundary, ...) implies
  // --outliers: a flag is never accepted and then ignored.
  const bool want_outliers = a.outliers || has_codec_flags(a.flags);
  std::optional<sessions::RunConfig> cfg;
  if (want_outliers) cfg = build_run_config(a.flags);  // validate before the long part

  sessions::AnalysisResult r;
  {
    TerminalJob job("kvwb analyze");
    r = sessions::analyze_capture(a.capture, opt, &job.control());
    if (cfg) r.outliers = sessions::residual_outlier_rates(a.capture, *cfg, &job.control());
  }
  if (!a.json_out.empty())
    io::write_file_atomic(a.json_out, sessions::analysis_to_json(r).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  if (!a.csv_out.empty()) io::write_file_atomic(a.csv_out, sessions::analysis_to_csv(r));
  if (!a.quiet) print_table(r);
}

}  // namespace

void add_analyze_command(CLI::App& app) {
  auto args = std::make_shared<AnalyzeArgs>();
  auto* cmd =
      app.add_subcommand("analyze",
                         "Spectra and d_eff of K (pre-RoPE, whitened) and V, Σ_q conditioning and "
                         "skip rule, kurtosis, and residual outlier rates of a configuration");
  add_capture_arg(*cmd, args->capture);
  cmd->add_option("--json", args->json_out, "Write the analysis JSON here (atomic)");
  cmd->add_option("--csv", args->csv_out, "Write one CSV row per (layer, kv head) here");
  cmd->add_option("--vr", args->vr, "An extra variance ratio for d_eff (0 < vr <= 1)");
  cmd->add_flag("--outliers", args->outliers,
                "Also count residual outliers under the run flags (implied by --config and every "
                "codec flag)");
  cmd->add_flag("--no-rotated", args->no_rotated,
                "Skip the kurtosis of the Hadamard-rotated tensors");
  cmd->add_flag("--quiet,-q", args->quiet, "Do not print the table");
  add_run_flags(*cmd, args->flags);
  cmd->callback([args] { run(*args); });
}

}  // namespace kvwb::app
