// kvwb recommend-boundary / kvwb plan: boundary layers by measured attention sensitivity, and a
// per-layer bit-width + boundary plan that meets a target ratio with the least attention error.
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <thread>

#include "app/cli/cli_common.h"
#include "app/cli/run_flags.h"
#include "base/errors.h"
#include "io/atomic_file.h"
#include "sessions/explore/boundary.h"

namespace kvwb::app {

namespace {

struct BoundaryArgs {
  std::string capture, json_out;
  RunFlags flags;
  int max_layers = 2;
};

struct PlanArgs {
  std::string capture, json_out, metric = "attn_out_rel_err";
  RunFlags flags;
  double target = 0;
  bool no_boundary = false;
  bool uniform_bits = false;
};

std::string g(double v) {
  if (!std::isfinite(v)) return "n/a";
  char b[32];
  std::snprintf(b, sizeof b, "%.5g", v);
  return b;
}

std::string list(const std::vector<int>& v) {
  std::string s;
  for (int x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s.empty() ? "-" : s;
}

/// Runs `fn` with a progress bar and Ctrl-C mapped onto the job's cancel flag.
void with_job(const char* label, const std::function<void(JobControl&)>& fn) {
  TerminalJob job(label);
  fn(job.control());
}

void run_recommend(const BoundaryArgs& a) {
  if (!a.flags.boundary.empty())
    throw InvalidArgument("recommend-boundary: --boundary " + a.flags.boundary +
                          " would be ignored: the command measures boundary sets itself, starting from none "
                          "(`kvwb plan` keeps given boundary layers)");
  const sessions::RunConfig cfg = build_run_config(a.flags);
  sessions::BoundaryRecommendation r;
  with_job("kvwb recommend-boundary", [&](JobControl& job) {
    r = sessions::recommend_boundary(a.capture, cfg, a.max_layers, &job);
  });
  std::printf("layer sensitivity under the configuration, no boundary (score: %s)\n", r.score_metric.c_str());
  std::printf("%5s %6s %12s %12s %10s %12s %12s %10s\n", "rank", "layer", "attn_out_err", "attn_kl", "top1",
              "k_rel_mse", "v_rel_mse", "skip_rule");
  for (size_t i = 0; i < r.ranking.size(); ++i) {
    const auto& s = r.ranking[i];
    std::printf("%5zu %6d %12s %12s %10s %12s %12s %10s%s\n", i + 1, s.layer,
                s.has_attn ? g(s.attn_out_rel_err).c_str() : "n/a", s.has_attn ? g(s.attn_kl).c_str() : "n/a",
                s.has_attn ? g(s.attn_top1).c_str() : "n/a", g(s.k_rel_mse).c_str(), g(s.v_rel_mse).c_str(),
                s.skip_rule ? ("skip " + g(s.skip_ratio) + "x").c_str() : (s.skip_ratio > 0 ? g(s.skip_ratio) + "x" : "-").c_str(),
                s.failed ? "  [failed]" : "");
  }
  std::printf("\nmeasured boundary sets\n%-12s %10s %12s %12s %10s %12s %12s\n", "boundary", "ratio", "attn_out_err",
              "attn_kl", "top1", "k_rel_mse", "v_rel_mse");
  auto row = [](const sessions::BoundaryProposal& p) {
    std::printf("%-12s %10s %12s %12s %10s %12s %12s%s\n", list(p.boundary).c_str(), g(p.ratio).c_str(),
                g(p.attn_out_rel_err).c_str(), g(p.attn_kl).c_str(), g(p.attn_top1).c_str(), g(p.k_rel_mse).c_str(),
                g(p.v_rel_mse).c_str(), p.failed ? "  [a layer-stream failed]" : "");
  };
  row(r.baseline);
  for (const auto& p : r.proposals) row(p);
  for (const auto& n : r.notes) std::printf("note: %s\n", n.c_str());
  if (!a.json_out.empty())
    io::write_file_atomic(a.json_out, sessions::boundary_recommendation_to_json(r).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

void run_plan(const PlanArgs& a) {
  const sessions::RunConfig cfg = build_run_config(a.flags);
  sessions::PlanOptions opt;
  opt.target_ratio = a.target;
  opt.metric = a.metric;
  opt.allow_boundary = !a.no_boundary;
  opt.uniform_bits = a.uniform_bits;
  sessions::PlanResult p;
  with_job("kvwb plan", [&](JobControl& job) { p = sessions::plan_budget(a.capture, cfg, opt, &job); });
  std::printf("plan for ratio >= %s minimising the summed stream-only %s (%zu measurement runs)\n",
              g(p.target_ratio).c_str(), p.metric.c_str(), p.measurement_runs);
  std::printf("%6s %-9s %6s %6s %12s %12s %12s\n", "layer", "choice", "K", "V", "bytes", "k_err", "v_err");
  for (const auto& l : p.layers)
    std::printf("%6d %-9s %6s %6s %12llu %12s %12s\n", l.layer, l.boundary ? "boundary" : "codec",
                l.boundary ? "bf16" : (l.k_bits.empty() ? "-" : l.k_bits.c_str()),
                l.boundary ? "bf16" : (l.v_bits.empty() ? "-" : l.v_bits.c_str()),
                static_cast<unsigned long long>(l.bytes), g(l.k_err).c_str(), g(l.v_err).c_str());
  std::printf("promised: %llu bytes, ratio %s, error sum %s\n", static_cast<unsigned long long>(p.promised_bytes),
              g(p.promised_ratio).c_str(), g(p.promised_error).c_str());
  std::printf("measured: %llu bytes, ratio %s, error sum %s", static_cast<unsigned long long>(p.measured_bytes),
              g(p.measured_ratio).c_str(), g(p.measured_error).c_str());
  if (p.measured_totals.contains("attention")) {
    const auto& t = p.measured_totals["attention"];
    std::printf("; joint attn_out_rel_err %s, attn_kl %s, top1 %s", g(t.value("attn_out_rel_err", NAN)).c_str(),
                g(t.value("attn_kl", NAN)).c_str(), g(t.value("attn_top1", NAN)).c_str());
  }
  std::printf("\n");
  if (p.uniform_bits)
    std::printf("uniform bit widths: K %s, V %s in every non-boundary layer (no per-layer overrides: exports as a "
                "version 1 bundle)\n",
                p.k_param.empty() ? "fixed" : (p.k_param + "=" + p.config.k.params.at(p.k_param)).c_str(),
                p.v_param.empty() ? "fixed" : (p.v_param + "=" + p.config.v.params.at(p.v_param)).c_str());
  for (const auto& n : p.notes) std::printf("note: %s\n", n.c_str());
  if (!a.json_out.empty()) io::write_file_atomic(a.json_out, sessions::plan_result_to_json(p).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  if (!(p.measured_ratio >= p.target_ratio))
    throw Error("INVALID_ARGUMENT", "the confirming run measured ratio " + g(p.measured_ratio) + " below the target");
}

}  // namespace

void add_boundary_commands(CLI::App& app) {
  auto b = std::make_shared<BoundaryArgs>();
  auto* rc = app.add_subcommand("recommend-boundary",
                                "Rank layers by measured attention sensitivity (with the Σ_q skip rule marked) and "
                                "measure greedy boundary-layer sets of sizes 1..N");
  add_capture_arg(*rc, b->capture);
  add_run_flags(*rc, b->flags);
  rc->add_option("--max-layers", b->max_layers, "Largest boundary set to propose")->check(CLI::Range(1, 4096));
  rc->add_option("--json", b->json_out, "Write the ranking and the measured sets as JSON");
  rc->callback([b] { run_recommend(*b); });

  auto p = std::make_shared<PlanArgs>();
  auto* pc = app.add_subcommand("plan", "Choose per-layer K/V bit widths and boundary layers that reach a target ratio "
                                        "with the least attention error, then run the plan to confirm it");
  add_capture_arg(*pc, p->capture);
  add_run_flags(*pc, p->flags);
  pc->add_option("--target-ratio", p->target, "Model-level ratio vs bf16 to reach")->required();
  pc->add_option("--metric", p->metric, "attn_out_rel_err (default) | attn_kl | rel_mse");
  pc->add_flag("--no-boundary", p->no_boundary, "Do not add boundary layers (keep only --boundary's)");
  pc->add_flag("--uniform-bits", p->uniform_bits,
               "Bundle-ready plan: one bit width per stream for every non-boundary layer, only the boundary set "
               "varies; the plan's configuration has no per-layer overrides and exports as a version 1 bundle "
               "(bundle-format.md section 10)");
  pc->add_option("--json", p->json_out, "Write the plan, its configuration and promised vs measured as JSON");
  pc->callback([p] { run_plan(*p); });
}

}  // namespace kvwb::app
