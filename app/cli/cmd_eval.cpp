// kvwb eval: end-to-end Δppl / top-1 / KL of a configuration with the compressed cache in the loop.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>

#include "app/cli/cli_common.h"
#include "app/cli/model_args.h"
#include "app/cli/run_flags.h"
#include "base/errors.h"
#include "io/atomic_file.h"
#include "sessions/eval/eval.h"

namespace kvwb::app {

namespace {

struct EvalArgs {
  ModelArgs model;
  RunFlags flags;
  sessions::EvalOptions opt;
  std::string json_out;
  bool quiet = false;
};

void print_eval(const sessions::EvalResult& r) {
  std::printf("protocol: %zu passages x (%d context + %d continuation), %d scored each; reference = bf16 cache\n",
              r.passages.size(), r.context, r.continuation, r.continuation - 1);
  std::printf("%-8s %10s %10s %10s %10s %8s %10s\n", "passage", "ppl_exact", "ppl_ref", "ppl_alt", "dppl_%", "top1_%",
              "kl");
  for (const auto& p : r.passages)
    std::printf("%-8d %10.4f %10.4f %10.4f %+10.4f %8.2f %10.3e\n", p.index, p.ppl_exact, p.ppl_ref, p.ppl_alt,
                p.delta_ppl, p.top1, p.kl);
  const auto& a = r.aggregate;
  std::printf("aggregate: dppl %+.4f %% (std %.4f), top-1 %.2f %%, KL %.4e nats, ratio vs bf16 %.4f\n", a.delta_ppl,
              a.delta_ppl_std, a.top1, a.kl, a.ratio_vs_bf16);
  std::printf("verdict:  %s (%s)%s\n", a.verdict.c_str(), a.ladder.c_str(),
              a.provisional ? " provisional: fewer than 4 passages" : "");
  for (const auto& w : r.warnings) std::printf("warning: %s\n", w.c_str());
}

void run_eval(const EvalArgs& a) {
  const sessions::RunConfig cfg = build_run_config(a.flags);
  const model::LoadedModel m = model::load_model(a.model.model, a.model.tokenizer);
  const std::vector<int32_t> toks = text_tokens(a.model, m);
  const sessions::Evaluator ev = with_text_file(a.model, [&] { return sessions::Evaluator(m.model, toks, a.opt); });
  sessions::EvalResult r;
  {
    TerminalJob job("kvwb eval");
    r = ev.evaluate(cfg, &job.control());
  }
  if (!a.json_out.empty()) {
    nlohmann::json j = sessions::eval_result_to_json(r);
    j["model"] = {{"path", a.model.model}, {"name", m.model.config().name}, {"format", m.format}};
    j["text"] = text_source_text(a.model, toks.size());
    io::write_file_atomic(a.json_out, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  }
  if (!a.quiet) print_eval(r);
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand(
      "eval", "End-to-end quality of a configuration: prefill, round-trip the cache through the codecs, "
              "teacher-force the continuation; Δppl, top-1 agreement, KL and the ppl-strict-v1 verdict");
  add_model_args(*cmd, a->model);
  add_run_flags(*cmd, a->flags);
  cmd->add_option("--context", a->opt.context,
                  "Prefill tokens C incl. BOS (default: min(2048, max_position − N); 2048 when unknown)")
      ->check(CLI::Range(0, 1 << 24));
  cmd->add_option("--continuation", a->opt.continuation, "Teacher-forced tokens N (default 64; N−1 scored)")
      ->check(CLI::Range(2, 1 << 24));
  cmd->add_option("--passages", a->opt.passages, "Passages P (default 4; fewer makes the verdict provisional)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--json", a->json_out, "Write the result JSON here (atomic)");
  cmd->add_flag("--quiet,-q", a->quiet, "Do not print the table");
  cmd->callback([a] { run_eval(*a); });
}

}  // namespace kvwb::app
