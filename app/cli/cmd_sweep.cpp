// kvwb sweep: run every cell of a configuration grid on a capture into a crash-safe result store.
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>

#include "app/cli/cli_common.h"
#include "app/cli/model_args.h"
#include "base/errors.h"
#include "io/atomic_file.h"
#include "io/limits.h"
#include "sessions/explore/result_store.h"
#include "sessions/explore/sweep.h"

namespace kvwb::app {

namespace {

struct SweepArgs {
  std::string capture, grid, store, csv_out, json_out;
  bool resume = false;
  int jobs = 1;
  ModelArgs model;              // --model: end-to-end quality axes (totals.e2e of every cell)
  sessions::EvalOptions eval;
};

nlohmann::json read_grid(const std::string& path) {
  const auto bytes = io::read_file(path, io::kMaxJsonBytes);
  auto j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (j.is_discarded()) throw InvalidArgument(path + ": not valid JSON (expected a sweep grid, docs/sweeps.md)");
  return j;
}

void write_tables(const SweepArgs& a) {
  if (a.csv_out.empty() && a.json_out.empty()) return;
  const auto sc = sessions::read_result_store(a.store);
  if (!a.csv_out.empty()) io::write_file_atomic(a.csv_out, sessions::sweep_table_csv(sc.records));
  if (!a.json_out.empty()) io::write_file_atomic(a.json_out, sessions::sweep_table_json(sc.records).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

void run(const SweepArgs& a) {
  const nlohmann::json grid = read_grid(a.grid);
  sessions::SweepOptions opt;
  opt.grid_source = a.grid;
  opt.jobs = a.jobs;
  opt.resume = a.resume;
  std::unique_ptr<model::LoadedModel> m;
  std::unique_ptr<sessions::Evaluator> ev;
  if (!a.model.model.empty()) {
    m = std::make_unique<model::LoadedModel>(model::load_model(a.model.model, a.model.tokenizer));
    const std::vector<int32_t> toks = text_tokens(a.model, *m);
    ev = with_text_file(a.model, [&] { return std::make_unique<sessions::Evaluator>(m->model, toks, a.eval); });
    opt.evaluator = ev.get();
    opt.e2e_settings =
        sessions::e2e_settings_json(a.model.model, text_source_text(a.model, toks.size()), *ev, a.eval.passages);
    std::printf("sweep: end-to-end axes with %s on %s: %d passages x (%d + %d) tokens per cell\n",
                a.model.model.c_str(), text_source_text(a.model, toks.size()).c_str(), a.eval.passages,
                ev->context(), ev->continuation());
  } else if (!a.model.text.empty() || !a.model.ids.empty() || !a.model.tokenizer.empty()) {
    throw InvalidArgument("sweep: --text/--ids/--tokenizer need --model (the end-to-end quality axes)");
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
  std::printf("sweep: %zu cells (%zu duplicate grid cells dropped), %zu already stored, %zu run (%zu failed) in %.1f s "
              "-> %s\n",
              s.cells, s.dropped, s.skipped, s.ran, s.failed, s.seconds, a.store.c_str());
  write_tables(a);
  // A sweep whose every cell run now failed measured nothing: that is not a success.
  if (s.ran > 0 && s.failed == s.ran)
    throw Error(s.first_failure_code, "sweep: every one of the " + std::to_string(s.ran) +
                                          " cells run failed (they are stored as failures in " + a.store +
                                          "); the first: " + s.first_failure);
}

}  // namespace

void add_sweep_command(CLI::App& app) {
  auto args = std::make_shared<SweepArgs>();
  auto* cmd = app.add_subcommand("sweep", "Run every cell of a configuration grid on a capture into a crash-safe "
                                          "result store (docs/sweeps.md)");
  cmd->add_option("capture", args->capture, "Capture file (.kvc.h5)")->each(protect_input_value)->required();
  cmd->add_option("--grid", args->grid, "Grid JSON: option names -> lists of values (docs/sweeps.md)")->each(protect_input_value)->required();
  cmd->add_option("--out", args->store, "Result store folder (must be empty unless --resume)")->required();
  cmd->add_flag("--resume", args->resume, "Continue the store: skip cells already stored");
  cmd->add_option("--jobs,-j", args->jobs, "Cells run at the same time (each on one thread)")->check(CLI::Range(1, 1024));
  cmd->add_option("--csv", args->csv_out, "Write the results table (every cell of the store) as CSV");
  cmd->add_option("--json", args->json_out, "Write the results table as JSON");
  add_model_args(*cmd, args->model, false);
  cmd->add_option("--context", args->eval.context, "End-to-end: prefill tokens C incl. BOS (default as kvwb eval)");
  cmd->add_option("--continuation", args->eval.continuation, "End-to-end: teacher-forced tokens N (default 64)")
      ->check(CLI::Range(2, 1 << 20));
  cmd->add_option("--passages", args->eval.passages, "End-to-end: passages P (default 4)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->callback([args] { run(*args); });
}

}  // namespace kvwb::app
