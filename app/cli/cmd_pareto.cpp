// kvwb pareto: the Pareto frontier (metrics.md §10) of a sweep's result store for one metric.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "app/cli/cli_common.h"
#include "base/errors.h"
#include "io/atomic_file.h"
#include "sessions/analysis/pareto.h"
#include "sessions/explore/result_store.h"

namespace kvwb::app {

namespace {

struct ParetoArgs {
  std::string store, metric, json_out, csv_out;
};

void run(const ParetoArgs& a) {
  const auto sc = sessions::read_result_store(a.store);
  for (const auto& p : sc.problems) std::printf("warning: %s\n", p.c_str());
  if (sc.records.empty()) throw InvalidArgument(a.store + ": the result store holds no results");
  const auto res = sessions::pareto_frontier(sessions::pareto_points_from_records(sc.records, a.metric));
  std::printf("Pareto frontier of %zu configurations: ratio vs bf16 (higher is better) vs %s (lower is better)\n",
              sc.records.size(), a.metric.c_str());
  std::printf("%6s %12s %14s  %-12s %s\n", "id", "ratio", a.metric.c_str(), "duplicates", "options");
  for (const auto& f : res.frontier) {
    std::string dups;
    for (const auto& d : f.duplicates) dups += (dups.empty() ? "" : ",") + std::to_string(d.id);
    std::printf("%6lld %12.6g %14.6g  %-12s %s\n", static_cast<long long>(f.rep.id), f.rep.r, f.rep.q,
                dups.empty() ? "-" : dups.c_str(), f.rep.label.c_str());
  }
  std::printf("dominated: %zu configurations\n", res.dominated.size());
  if (!res.excluded.empty()) {
    std::printf("excluded (n/a or failed): %zu\n", res.excluded.size());
    for (const auto& e : res.excluded)
      std::printf("  %lld %s: %s\n", static_cast<long long>(e.id), e.label.c_str(), e.reason.c_str());
  }
  if (!a.json_out.empty()) io::write_file_atomic(a.json_out, sessions::pareto_to_json(res, a.metric).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  if (!a.csv_out.empty()) io::write_file_atomic(a.csv_out, sessions::pareto_to_csv(res, a.metric));
}

}  // namespace

void add_pareto_command(CLI::App& app) {
  auto args = std::make_shared<ParetoArgs>();
  auto* cmd = app.add_subcommand("pareto", "Pareto frontier (ratio vs bf16 against one quality-loss metric) of a "
                                           "sweep's result store (metrics.md §10)");
  cmd->add_option("store", args->store, "Result store folder written by kvwb sweep")->each(protect_input_value)->required();
  cmd->add_option("--metric", args->metric,
                  "k_rel_mse | v_rel_mse | k_whitened_mse | attn_kl | attn_out_rel_err | one_minus_top1, or a "
                  "dotted path under the result's totals (e.g. k.snr_db)")
      ->required();
  cmd->add_option("--json", args->json_out, "Write the frontier, dominated and excluded lists as JSON");
  cmd->add_option("--csv", args->csv_out, "Write them as CSV");
  cmd->callback([args] { run(*args); });
}

}  // namespace kvwb::app
