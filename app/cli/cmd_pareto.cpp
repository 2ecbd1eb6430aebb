// kvwb pareto: the Pareto frontier (metrics.md §10) of a sweep's result store for one metric.
#include <CLI/CLI.hpp>
#include <algorithm>
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
  const bool ci = sessions::has_intervals(res);
  std::printf("Pareto frontier of %zu configurations: ratio vs bf16 (higher is better) vs %s (lower is better)%s\n",
              sc.records.size(), a.metric.c_str(), ci ? "; [95 % interval]" : "");
  // End-to-end metrics: the protocol behind the intervals (store.json "e2e").
  const nlohmann::json e2e = sc.meta.is_object() ? sc.meta.value("e2e", nlohmann::json()) : nlohmann::json();
  if (ci && e2e.is_object()) {
    const nlohmann::json boot = e2e.value("bootstrap", nlohmann::json::object());
    std::printf("end-to-end: %d passages per cell (%s) x (%d + %d) tokens; intervals from %d bootstrap resamples, "
                "seed %s\n",
                e2e.value("passages", 0), e2e.value("selection", std::string("first")).c_str(), e2e.value("context", 0),
                e2e.value("continuation", 0), boot.value("resamples", 0), boot.value("seed", std::string("?")).c_str());
  }
  std::printf("%6s %12s %14s %s %-12s %s\n", "id", "ratio", a.metric.c_str(), ci ? "         interval          " : "",
              "duplicates", "options");
  auto interval = [&](const sessions::ParetoPoint& p) -> std::string {
    if (!ci) return "";
    if (!p.q_ci) return "           n/a             ";
    char b[64];
    std::snprintf(b, sizeof b, "[%11.4g, %11.4g]", p.q_ci->first, p.q_ci->second);
    return b;
  };
  for (const auto& f : res.frontier) {
    std::string dups;
    for (const auto& d : f.duplicates) dups += (dups.empty() ? "" : ",") + std::to_string(d.id);
    std::printf("%6lld %12.6g %14.6g %s %-12s %s\n", static_cast<long long>(f.rep.id), f.rep.r, f.rep.q,
                interval(f.rep).c_str(), dups.empty() ? "-" : dups.c_str(), f.rep.label.c_str());
  }
  std::printf("dominated: %zu configurations\n", res.dominated.size());
  if (ci) {
    const auto maybe = sessions::possibly_on_frontier(res);
    std::printf("dominated but within the intervals of every point that dominates them (could be on the frontier): "
                "%zu\n",
                maybe.size());
    for (const auto& d : res.dominated)
      if (std::find(maybe.begin(), maybe.end(), d.id) != maybe.end())
        std::printf("  %6lld %12.6g %14.6g %s %s\n", static_cast<long long>(d.id), d.r, d.q, interval(d).c_str(),
                    d.label.c_str());
  }
  if (!res.excluded.empty()) {
    std::printf("excluded (n/a or failed): %zu\n", res.excluded.size());
    for (const auto& e : res.excluded)
      std::printf("  %lld %s: %s\n", static_cast<long long>(e.id), e.label.c_str(), e.reason.c_str());
  }
  if (!a.json_out.empty()) {
    nlohmann::json j = sessions::pareto_to_json(res, a.metric);
    if (e2e.is_object()) j["e2e"] = e2e;  // the protocol behind the intervals
    io::write_file_atomic(a.json_out, j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  }
  if (!a.csv_out.empty()) io::write_file_atomic(a.csv_out, sessions::pareto_to_csv(res, a.metric));
}

}  // namespace

void add_pareto_command(CLI::App& app) {
  auto args = std::make_shared<ParetoArgs>();
  auto* cmd = app.add_subcommand("pareto", "Pareto frontier (ratio vs bf16 against one quality-loss metric) of a "
                                           "sweep's result store (metrics.md §10)");
  add_required_input(*cmd, "store", args->store, "Result store folder written by kvwb sweep");
  cmd->add_option("--metric", args->metric,
                  "k_rel_mse | v_rel_mse | k_whitened_mse | attn_kl | attn_out_rel_err | one_minus_top1, or a "
                  "dotted path under the result's totals (e.g. k.snr_db)")
      ->required();
  cmd->add_option("--json", args->json_out, "Write the frontier, dominated and excluded lists as JSON");
  cmd->add_option("--csv", args->csv_out, "Write them as CSV");
  cmd->callback([args] { run(*args); });
}

}  // namespace kvwb::app
