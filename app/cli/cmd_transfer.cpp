// kvwb transfer: calibrate a configuration on capture A, apply it to capture B, and compare with
// the same configuration calibrated on B (in-sample) and uncalibrated; optionally end to end.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <memory>

#include "app/cli/cli_common.h"
#include "app/cli/eval_args.h"
#include "app/cli/model_args.h"
#include "app/cli/run_flags.h"
#include "base/errors.h"
#include "io/atomic_file.h"
#include "io/capture.h"
#include "sessions/bundle/transfer.h"
#include "sessions/eval/eval.h"

namespace kvwb::app {

namespace {

struct TransferArgs {
  std::string capture_a, capture_b, config_file, json_out, keep_bundles;
  RunFlags flags;
  ModelArgs model;
  EvalProtocolArgs protocol;
};

std::string cell(const nlohmann::json& v, const char* fmt) {
  if (!v.is_number()) return "n/a";
  char b[48];
  std::snprintf(b, sizeof b, fmt, v.get<double>());
  return b;
}

/// End-to-end columns: each configuration evaluated with the model on the text, plus the paired
/// out-of-sample − in-sample differences over the same passages.
nlohmann::json end_to_end(const TransferArgs& a, const sessions::TransferResult& t) {
  const model::LoadedModel m = model::load_model(a.model.model, a.model.tokenizer);
  const std::vector<int32_t> toks = text_tokens(a.model, m);
  const sessions::Evaluator ev(m.model, toks, eval_options(a.protocol));
  const sessions::TransferColumn* cols[] = {&t.uncalibrated, &t.in_sample, &t.out_of_sample};
  std::vector<sessions::EvalResult> res;
  {
    TerminalJob job("kvwb transfer (end to end)");
    for (const auto* c : cols) res.push_back(ev.evaluate(c->config, &job.control()));
  }
  std::printf(
      "\nend to end on %s: %zu of %d passages (%s) x (%d + %d) tokens, 95 %% paired-bootstrap "
      "intervals\n",
      text_source_text(a.model, toks.size()).c_str(), res[0].passages.size(),
      res[0].passages_available, res[0].selection.c_str(), res[0].context, res[0].continuation);
  std::printf("%-15s %-30s %-26s %-32s %s\n", "column", "dppl %", "top-1 %", "KL (nats)",
              "verdict");
  nlohmann::json j = nlohmann::json::object();
  for (size_t i = 0; i < 3; ++i) {
    const auto& g = res[i].aggregate;
    std::printf("%-15s %-30s %-26s %-32s %s\n", cols[i]->name.c_str(),
                value_with_interval("%+.3f", g.delta_ppl, g.delta_ppl_ci).c_str(),
                value_with_interval("%.2f", g.top1, g.top1_ci).c_str(),
                value_with_interval("%.3e", g.kl, g.kl_ci).c_str(), g.verdict.c_str());
    for (const auto& w : res[i].warnings)
      if (i == 0 || w.find("nothing was compressed") == std::string::npos)
        std::printf("  warning: %s\n", w.c_str());
    nlohmann::json e = sessions::eval_result_to_json(res[i]);
    e.erase("passages");
    j[i == 0 ? "uncalibrated" : i == 1 ? "in_sample" : "out_of_sample"] = e;
  }
  // Paired differences out-of-sample − in-sample, passage by passage.
  std::vector<double> dd, dk;
  for (size_t p = 0; p < res[1].passages.size(); ++p) {
    dd.push_back(res[2].passages[p].delta_ppl - res[1].passages[p].delta_ppl);
    dk.push_back(res[2].passages[p].kl - res[1].passages[p].kl);
  }
  const auto ci = sessions::paired_bootstrap_means({dd, dk}, ev.bootstrap());
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? NAN : s / static_cast<double>(v.size());
  };
  const double md = mean(dd), mk = mean(dk);
  auto excl0 = [](const sessions::Interval& x) { return x.defined() && (x.lo > 0 || x.hi < 0); };
  std::printf("out-of-sample - in-sample, paired over passages: dppl %s points (%s), KL %s (%s)\n",
              value_with_interval("%+.3f", md, ci[0]).c_str(),
              excl0(ci[0]) ? "distinguishable" : "not distinguishable",
              value_with_interval("%+.3e", mk, ci[1]).c_str(),
              excl0(ci[1]) ? "distinguishable" : "not distinguishable");
  j["out_minus_in"] = {{"delta_ppl", md},
                       {"delta_ppl_ci", sessions::interval_json(ci[0])},
                       {"kl", mk},
                       {"kl_ci", sessions::interval_json(ci[1])}};
  j["model"] = {{"path", a.model.model}, {"name", m.model.config().name}};
  j["text"] = text_source_text(a.model, toks.size());
  return j;
}

void run_transfer(TransferArgs a) {
  if (!a.config_file.empty()) {
    if (!a.flags.config_file.empty())
      throw InvalidArgument("transfer: give the configuration once (CONFIG or --config)");
    a.flags.config_file = a.config_file;
  }
  // Default: the workbench's configuration for the shorter capture, with Σ_q from the capture.
  const int tokens = std::min(io::CaptureReader(a.capture_a).info().tokens,
                              io::CaptureReader(a.capture_b).info().tokens);
  sessions::RunConfig base = sessions::workbench_default_config(tokens);
  base.q_precond = "capture";
  const sessions::RunConfig cfg = build_run_config(a.flags, &base);
  if ((!a.model.text.empty() || !a.model.ids.empty()) && a.model.model.empty())
    throw InvalidArgument("transfer: --text/--ids need --model (the end-to-end columns)");
  sessions::TransferOptions opt;
  opt.keep_bundles = a.keep_bundles;
  sessions::TransferResult t;
  {
    TerminalJob job("kvwb transfer");
    opt.job = &job.control();
    t = sessions::calibration_transfer(a.capture_a, a.capture_b, cfg, opt);
  }
  std::printf("calibrated on A: %s (sha256 %s)\n", t.capture_a.c_str(), t.sha256_a.c_str());
  std::printf("evaluated on  B: %s (sha256 %s)\n", t.capture_b.c_str(), t.sha256_b.c_str());
  std::printf("configuration %s: Σ_q %s, K %s, V %s, block %u\n",
              sessions::run_config_hash(cfg).substr(0, 12).c_str(),
              cfg.q_precond.empty() ? "off" : "calibrated", cfg.k.codec.c_str(),
              cfg.v.codec.c_str(), cfg.block_size);
  std::printf(
      "columns: uncalibrated = no Σ_q, Gaussian tables; in-sample = calibrated on B (B->B); "
      "out-of-sample = "
      "calibrated on A, applied to B (A->B)\n\n");
  const nlohmann::json m[] = {sessions::transfer_metrics_json(t.uncalibrated.run),
                              sessions::transfer_metrics_json(t.in_sample.run),
                              sessions::transfer_metrics_json(t.out_of_sample.run)};
  std::printf("%-18s %14s %14s %14s %12s\n", "metric (on B)", "uncalibrated", "in-sample",
              "out-of-sample", "out vs in");
  const std::pair<const char*, const char*> rows[] = {
      {"ratio_vs_bf16", "%.4f"},    {"k_rel_mse", "%.4e"}, {"v_rel_mse", "%.4e"},
      {"attn_out_rel_err", "%.4e"}, {"attn_kl", "%.4e"},   {"attn_top1", "%.4f"}};
  for (const auto& [k, f] : rows) {
    const nlohmann::json& in = m[1][k];
    const nlohmann::json& out = m[2][k];
    std::string rel = "n/a";
    if (in.is_number() && out.is_number() && in.get<double>() != 0) {
      char b[32];
      std::snprintf(b, sizeof b, "%+.2f %%",
                    100.0 * (out.get<double>() - in.get<double>()) / std::fabs(in.get<double>()));
      rel = b;
    }
    std::printf("%-18s %14s %14s %14s %12s\n", k, cell(m[0][k], f).c_str(), cell(in, f).c_str(),
                cell(out, f).c_str(), rel.c_str());
  }
  if (!t.bundle_a.empty())
    std::printf("bundles kept: %s, %s\n", t.bundle_a.c_str(), t.bundle_b.c_str());
  nlohmann::json j = sessions::transfer_to_json(t);
  if (!a.model.model.empty()) j["e2e"] = end_to_end(a, t);
  if (!a.json_out.empty()) io::write_file_atomic(a.json_out, j.dump(2) + "\n");
}

}  // namespace

void add_transfer_command(CLI::App& app) {
  auto a = std::make_shared<TransferArgs>();
  auto* cmd = app.add_subcommand(
      "transfer",
      "Calibrate a configuration (Σ_q, centroid tables) on capture A, apply it to capture B and "
      "compare "
      "with calibrating on B itself (in-sample) and with no calibration (docs/bundles.md)");
  add_required_input(*cmd, "capture_a", a->capture_a,
                     "Capture the calibration is fitted on (.kvc.h5)");
  add_required_input(*cmd, "capture_b", a->capture_b,
                     "Capture the configuration is evaluated on (.kvc.h5)");
  cmd->add_option(
      "config", a->config_file,
      "Run configuration JSON (default: the workbench configuration for the captures with "
      "--q-precond capture); flags refine it")
      ->each(protect_input_value);
  add_run_flags(*cmd, a->flags);
  cmd->add_option("--keep-bundles", a->keep_bundles,
                  "Keep both bundles in this (new or empty) folder");
  cmd->add_option("--json", a->json_out, "Write the comparison as JSON here (atomic)");
  add_model_args(*cmd, a->model, false);
  add_eval_protocol_args(*cmd, a->protocol, "End-to-end: ");
  cmd->callback([a] { run_transfer(*a); });
}

}  // namespace kvwb::app
