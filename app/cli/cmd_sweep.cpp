// kvwb sweep: run every cell of a configuration grid on a capture into a crash-safe result store.
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <thread>

#include "app/cli/cli_common.h"
#include "app/cli/eval_args.h"
#include "app/cli/model_args.h"
#include "base/errors.h"
#include "io/atomic_file.h"
#include "io/limits.h"
#include "sessions/run/backends.h"
#include "sessions/bundle/bundle_apply.h"
#include "sessions/explore/result_store.h"
#include "sessions/explore/sweep.h"

namespace kvwb::app {

namespace {

struct SweepArgs {
  std::string capture, grid, store, csv_out, json_out;
  bool resume = false;
  int jobs = 1;
  std::string shard;      // --shard I/N | auto
  size_t shards = 0;      // --shards N (with --shard auto)
  bool fail_on_error = false;
  bool no_cache = false;
  ModelArgs model;              // --model: end-to-end quality axes (totals.e2e of every cell)
  EvalProtocolArgs eval;
  std::string bundle;           // --bundle: calibration transfer
  std::string backend;          // --backend cpu|cuda|auto: every cell's backend (fixed in the grid)
};

void write_tables(const SweepArgs& a) {
  if (a.csv_out.empty() && a.json_out.empty()) return;
  const auto sc = sessions::read_result_store(a.store);
  if (!a.csv_out.empty()) io::write_file_atomic(a.csv_out, sessions::sweep_table_csv(sc.records));
  if (!a.json_out.empty()) io::write_file_atomic(a.json_out, sessions::sweep_table_json(sc.records).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

void run(const SweepArgs& a) {
  nlohmann::json grid = read_json_file(a.grid, kSweepGridExpected, io::kMaxJsonBytes);
  if (!a.backend.empty()) {
    // The backend is checked before any cell runs (cuda without a device: Unavailable at once),
    // then fixed for every cell like any other grid option.
    (void)sessions::resolve_backend(sessions::parse_backend(a.backend, "--backend"), nullptr);
    if (!grid.is_object()) throw InvalidArgument(a.grid + ": a sweep grid must be a JSON object");
    if (grid.contains("backend") || (grid.contains("fixed") && grid["fixed"].is_object() &&
                                     grid["fixed"].contains("backend")))
      throw InvalidArgument("sweep: --backend and the grid's 'backend' both set the backend; keep one");
    grid["fixed"]["backend"] = a.backend;
  }
  sessions::SweepOptions opt;
  opt.grid_source = a.grid;
  opt.jobs = a.jobs;
  opt.resume = a.resume;
  const auto cache = cli_result_cache(a.no_cache);
  opt.cache = cache.get();
  if (!a.shard.empty())
    opt.shard = sessions::parse_shard_spec(a.shard, a.shards, sessions::process_environment());
  else if (a.shards)
    throw InvalidArgument("sweep: --shards needs --shard (I/N or auto)");
  std::unique_ptr<model::LoadedModel> m;
  std::unique_ptr<sessions::Evaluator> ev;
  if (!a.model.model.empty()) {
    m = std::make_unique<model::LoadedModel>(model::load_model(a.model.model, a.model.tokenizer));
    const std::vector<int32_t> toks = text_tokens(a.model, *m);
    ev = with_text_file(a.model,
                        [&] { return std::make_unique<sessions::Evaluator>(m->model, toks, eval_options(a.eval)); });
    opt.evaluator = ev.get();
    opt.e2e_settings = sessions::e2e_settings_json(a.model.model, text_source_text(a.model, toks.size()), *ev);
    std::printf("sweep: end-to-end axes with %s on %s: %d of %d passages (%s) x (%d + %d) tokens per cell, 95 %% "
                "intervals from %d bootstrap resamples\n",
                a.model.model.c_str(), text_source_text(a.model, toks.size()).c_str(), ev->passages(),
                ev->passages_available(), ev->selection().c_str(), ev->context(), ev->continuation(),
                ev->bootstrap().resamples);
  } else if (!a.model.text.empty() || !a.model.ids.empty() || !a.model.tokenizer.empty()) {
    throw InvalidArgument("sweep: --text/--ids/--tokenizer need --model (the end-to-end quality axes)");
  }
  std::optional<sessions::CalibrationBundle> bundle;
  if (!a.bundle.empty()) {
    bundle = sessions::read_calibration_bundle(a.bundle);
    opt.bundle = &*bundle;
    std::printf("sweep: every cell uses the Σ_q factors and centroid tables of bundle %s (fitted on %s, sha256 %s)\n",
                a.bundle.c_str(), bundle->capture_file_name.c_str(), bundle->capture_sha256.c_str());
  }
  sessions::SweepSummary s;
  try {
    TerminalJob job("kvwb sweep");
    s = sessions::run_sweep(a.capture, grid, a.store, opt, &job.control());
  } catch (const Cancelled&) {
    write_tables(a);  // finished cells stay in the store
    throw;
  }
  for (const auto& p : s.problems) std::printf("warning: %s\n", p.c_str());
  if (s.repaired_bytes)
    std::printf("warning: cut a torn last line of %llu bytes from the store (a crash mid-write)\n",
                static_cast<unsigned long long>(s.repaired_bytes));
  const std::string shard = s.shard.whole() ? std::string()
                                             : "shard " + s.shard.text() + " of a grid of " +
                                                   std::to_string(s.grid_cells) + " cells: ";
  std::printf("sweep: %s%zu cells (%zu duplicate grid cells dropped), %zu already stored, %zu run (%zu failed) in %.1f s "
              "-> %s\n",
              shard.c_str(), s.cells, s.dropped, s.skipped, s.ran, s.failed, s.seconds, a.store.c_str());
  write_tables(a);
  if (a.fail_on_error && !s.failures.empty()) {
    std::string list;
    for (size_t i = 0; i < s.failures.size() && i < 10; ++i) {
      const auto& f = s.failures[i];
      list += "\n  cell " + f.value("cell", nlohmann::json()).dump() + " " +
              f.value("options", nlohmann::json::object()).dump() + ": " +
              f["error"].value("code", std::string("?")) + ": " + f["error"].value("message", std::string());
    }
    if (s.failures.size() > 10) list += "\n  ...";
    throw CellsFailed("sweep of " + a.grid + ": " + std::to_string(s.failures.size()) + " of " + std::to_string(s.cells) +
                      " cells are stored as failures in " + a.store + " (--fail-on-error):" + list);
  }
  // Without --fail-on-error too: a sweep whose every cell run now failed measured nothing, which
  // is not a success (the failures stay in the store).
  if (s.ran > 0 && s.failed == s.ran) {
    const nlohmann::json& f = s.failures.front();
    throw CellsFailed("sweep of " + a.grid + ": every one of the " + std::to_string(s.ran) + " cells run failed (stored as failures in " +
                      a.store + "); the first, cell " + f.value("cell", nlohmann::json()).dump() + ": " +
                      f["error"].value("code", std::string("?")) + ": " + f["error"].value("message", std::string()));
  }
}

}  // namespace

void add_sweep_command(CLI::App& app) {
  auto args = std::make_shared<SweepArgs>();
  auto* cmd = app.add_subcommand("sweep", "Run every cell of a configuration grid on a capture into a crash-safe "
                                          "result store (docs/sweeps.md)");
  add_capture_arg(*cmd, args->capture);
  add_required_input(*cmd, "--grid", args->grid,
                     "Grid JSON: option names -> lists of values (docs/sweeps.md)");
  cmd->add_option("--out", args->store, "Result store folder (must be empty unless --resume)")->required();
  cmd->add_flag("--resume", args->resume, "Continue the store: skip cells already stored");
  cmd->add_option("--backend", args->backend, "cpu | cuda | auto for every cell (as the grid option 'backend')")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  cmd->add_flag("--no-cache", args->no_cache,
                "Compute every layer of every cell: neither read nor fill the result cache");
  cmd->add_option("--jobs,-j", args->jobs, "Cells run at the same time (each on one thread)")->check(CLI::Range(1, 1024));
  cmd->add_option("--shard", args->shard,
                  "Run only shard I of N (I/N): the cells at positions = I (mod N) of the grid's cells sorted by "
                  "configuration hash; 'auto' takes I from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX (docs/cluster.md)");
  cmd->add_option("--shards", args->shards,
                  "N for --shard auto (default: SLURM_ARRAY_TASK_COUNT; required under a Kubernetes Indexed Job)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 40));
  cmd->add_flag("--fail-on-error", args->fail_on_error,
                "Exit 1 (CELLS_FAILED) when a cell of this sweep is stored as a failure (the Slurm array uses it)");
  cmd->add_option("--csv", args->csv_out, "Write the results table (every cell of the store) as CSV");
  cmd->add_option("--json", args->json_out, "Write the results table as JSON");
  add_model_args(*cmd, args->model, false);
  add_eval_protocol_args(*cmd, args->eval, "End-to-end: ");
  add_bundle_arg(*cmd, args->bundle, "every cell");
  cmd->callback([args] { run(*args); });
}

}  // namespace kvwb::app
