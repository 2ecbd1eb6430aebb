// kvwb eval: end-to-end Δppl / top-1 / KL of a configuration with the compressed cache in the loop.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <optional>

#include "app/cli/cli_common.h"
#include "app/cli/eval_args.h"
#include "app/cli/model_args.h"
#include "app/cli/run_flags.h"
#include "base/errors.h"
#include "io/atomic_file.h"
#include "sessions/bundle/bundle_apply.h"
#include "sessions/eval/eval.h"

namespace kvwb::app {

namespace {

struct EvalArgs {
  ModelArgs model;
  RunFlags flags;
  EvalProtocolArgs protocol;
  std::string bundle;
  std::string json_out;
  bool quiet = false;
};

void print_eval(const sessions::EvalResult& r) {
  std::printf("protocol: %zu of %d passages (%s) x (%d context + %d continuation), %d scored each; reference = bf16 "
              "cache\n",
              r.passages.size(), r.passages_available, r.selection.c_str(), r.context, r.continuation,
              r.continuation - 1);
  std::printf("%-8s %5s %10s %10s %10s %10s %8s %10s\n", "passage", "slot", "ppl_exact", "ppl_ref", "ppl_alt", "dppl_%",
              "top1_%", "kl");
  for (const auto& p : r.passages)
    std::printf("%-8d %5d %10.4f %10.4f %10.4f %+10.4f %8.2f %10.3e\n", p.index, p.slot, p.ppl_exact, p.ppl_ref,
                p.ppl_alt, p.delta_ppl, p.top1, p.kl);
  print_eval_aggregate(r);
  for (const auto& w : r.warnings) std::printf("warning: %s\n", w.c_str());
}

void run_eval(const EvalArgs& a) {
  std::optional<sessions::CalibrationBundle> bundle;
  sessions::RunConfig cfg;
  if (!a.bundle.empty()) {
    bundle = sessions::read_calibration_bundle(a.bundle);
    const sessions::RunConfig base = sessions::bundle_run_config(a.bundle);
    cfg = sessions::apply_calibration_bundle(build_run_config(a.flags, &base), *bundle);
  } else {
    cfg = build_run_config(a.flags);
  }
  const model::LoadedModel m = model::load_model(a.model.model, a.model.tokenizer);
  const std::vector<int32_t> toks = text_tokens(a.model, m);
  const sessions::Evaluator ev(m.model, toks, eval_options(a.protocol));
  JobControl job;
  ProgressBar bar("kvwb eval", 1);
  job.progress = [&](size_t done, size_t total, const std::string& detail) {
    if (interrupted()) job.cancel.store(true);
    bar.set_total(total);
    bar.update(done, detail);
  };
  sessions::EvalResult r = ev.evaluate(cfg, &job);
  bar.finish();
  nlohmann::json calibration;
  if (bundle) {
    const std::string data = !a.model.text.empty() ? a.model.text : a.model.ids;
    calibration = sessions::calibration_provenance_json(*bundle, cfg, "text", data, io::sha256_file(data));
    if (!bundle->model_name.empty() && bundle->model_name != m.model.config().name)
      r.warnings.push_back("the bundle was fitted on a capture of " + bundle->model_name + ", the model is " +
                           m.model.config().name);
  }
  if (!a.json_out.empty()) {
    nlohmann::json j = sessions::eval_result_to_json(r);
    j["model"] = {{"path", a.model.model}, {"name", m.model.config().name}, {"format", m.format}};
    j["text"] = text_source_text(a.model, toks.size());
    if (bundle) j["calibration"] = calibration;
    io::write_file_atomic(a.json_out, j.dump(2) + "\n");
  }
  if (a.quiet) return;
  print_eval(r);
  if (bundle)
    std::printf("calibration: %s: Σ_q and tables of bundle %s, fitted on %s (sha256 %s); evaluated on %s (sha256 "
                "%s)\n",
                calibration["sample"].get<std::string>().c_str(), bundle->dir.c_str(), bundle->capture_file_name.c_str(),
                bundle->capture_sha256.c_str(), calibration["evaluated_on"]["file"].get<std::string>().c_str(),
                calibration["evaluated_on"]["sha256"].get<std::string>().c_str());
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand(
      "eval", "End-to-end quality of a configuration: prefill, round-trip the cache through the codecs, "
              "teacher-force the continuation; Δppl, top-1 agreement, KL and the ppl-strict-v1 verdict");
  add_model_args(*cmd, a->model);
  add_run_flags(*cmd, a->flags);
  add_eval_protocol_args(*cmd, a->protocol);
  add_bundle_arg(*cmd, a->bundle, "the evaluation");
  cmd->add_option("--json", a->json_out, "Write the result JSON here (atomic)");
  cmd->add_flag("--quiet,-q", a->quiet, "Do not print the table");
  cmd->callback([a] { run_eval(*a); });
}

}  // namespace kvwb::app
