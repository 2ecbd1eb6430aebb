// kvwb proxy-truth: over a grid of configurations, how well do the capture-based proxy metrics
// (K relative MSE, attention-output error, attention KL) rank configurations the way end-to-end
// |Δppl| does? Prints every cell and the Spearman rank correlation of each proxy with |Δppl|.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "app/cli/cli_common.h"
#include "app/cli/eval_args.h"
#include "app/cli/grid.h"
#include "app/cli/model_args.h"
#include "base/errors.h"
#include "io/atomic_file.h"
#include "sessions/eval/eval.h"

namespace kvwb::app {

namespace {

struct ProxyArgs {
  ModelArgs model;
  std::string capture, grid, json_out;
  EvalProtocolArgs protocol;
};

void run_proxy_truth(const ProxyArgs& a) {
  const nlohmann::json g = read_json_file(a.grid);
  const auto cells = expand_grid_cells(g, a.grid);
  const model::LoadedModel m = model::load_model(a.model.model, a.model.tokenizer);
  const std::vector<int32_t> toks = text_tokens(a.model, m);
  const sessions::Evaluator ev = with_text_file(
      a.model, [&] { return sessions::Evaluator(m.model, toks, eval_options(a.protocol)); });
  sessions::ProxyTruthResult r;
  {
    TerminalJob job("kvwb proxy-truth");
    r = sessions::proxy_truth(ev, a.capture, cells, &job.control());
  }
  if (!r.cells.empty() && std::all_of(r.cells.begin(), r.cells.end(), [](const auto& c) { return c.failed; }))
    throw Error(r.cells.front().error.substr(0, r.cells.front().error.find(':')),
                "proxy-truth of " + a.grid + ": every one of the " + std::to_string(r.cells.size()) +
                    " cells failed, so there is nothing to correlate; the first: " + r.cells.front().error);
  std::printf("%-4s %-44s %8s %11s %11s %11s %10s %8s\n", "cell", "label", "ratio", "k_rel_mse", "attn_out", "attn_kl",
              "dppl_%", "top1_%");
  for (size_t i = 0; i < r.cells.size(); ++i) {
    const auto& c = r.cells[i];
    if (c.failed) {
      std::printf("%-4zu %-44s FAILED: %s\n", i, c.label.c_str(), c.error.c_str());
      continue;
    }
    std::printf("%-4zu %-44s %8.3f %11.4e %11.4e %11.4e %+10.4f %8.2f\n", i, c.label.c_str(), c.ratio, c.k_rel_mse,
                c.attn_out_err, c.attn_kl, c.delta_ppl, c.top1);
  }
  std::printf("Spearman rank correlation with |dppl| over %zu cells (%d passages x (%d + %d) tokens), 95 %% "
              "bootstrap intervals over cells and passages (%d resamples, seed %s, %zu usable):\n",
              r.n, r.passages, r.context, r.continuation, r.bootstrap.resamples,
              sessions::seed_hex(r.bootstrap.seed).c_str(), r.replicates_used);
  const char* titles[] = {"K rel MSE              ", "attention-output error ", "attention KL           "};
  for (size_t k = 0; k < r.rhos.size() && k < 3; ++k)
    std::printf("  %s %s\n", titles[k],
                std::isfinite(r.rhos[k].rho) ? value_with_interval("%+.3f", r.rhos[k].rho, r.rhos[k].ci).c_str() : "n/a");
  std::printf("Which proxies are distinguishable (interval of the difference in rho excludes 0):\n");
  for (const auto& p : r.pairs)
    std::printf("  %-13s vs %-13s  %s  %s\n", p.a.c_str(), p.b.c_str(),
                std::isfinite(p.diff) ? value_with_interval("%+.3f", p.diff, p.ci).c_str() : "n/a",
                p.distinguishable ? "distinguishable" : "not distinguishable");
  if (!a.json_out.empty()) {
    nlohmann::json j = sessions::proxy_truth_to_json(r);
    j["model"] = {{"path", a.model.model}, {"name", m.model.config().name}, {"format", m.format}};
    j["text"] = text_source_text(a.model, toks.size());
    j["grid"] = g;
    io::write_file_atomic(a.json_out, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  }
}

}  // namespace

void add_proxy_truth_command(CLI::App& app) {
  auto a = std::make_shared<ProxyArgs>();
  auto* cmd = app.add_subcommand(
      "proxy-truth", "Evaluate a grid of configurations with the capture proxies (kvwb run) and end-to-end "
                     "(kvwb eval); report the Spearman rank correlation of each proxy with |Δppl|");
  add_model_args(*cmd, a->model);
  add_required_input(*cmd, "--capture", a->capture,
                     "Capture (.kvc.h5) the proxies are measured on");
  add_required_input(*cmd, "--grid", a->grid,
                     "Grid JSON: option -> list of values, optional \"fixed\" object");
  add_eval_protocol_args(*cmd, a->protocol);
  cmd->add_option("--json", a->json_out, "Write every cell and the correlations as JSON here (atomic)");
  cmd->callback([a] { run_proxy_truth(*a); });
}

}  // namespace kvwb::app
