// kvwb store: merge result stores (the shards of a sweep run on several machines) and compare them.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "app/cli/cli_common.h"
#include "base/errors.h"
#include "io/atomic_file.h"
#include "sessions/explore/store_merge.h"

namespace kvwb::app {

namespace {

struct MergeArgs {
  std::string out, grid;
  std::vector<std::string> inputs;
  bool require_complete = false;
};

struct DiffArgs {
  std::string a, b;
};

void run_merge(const MergeArgs& a) {
  sessions::MergeOptions opt;
  if (!a.grid.empty()) opt.grid = read_json_file(a.grid, kSweepGridExpected);
  opt.require_complete = a.require_complete;
  const sessions::MergeReport r = sessions::merge_result_stores(a.out, a.inputs, opt);
  for (const auto& p : r.problems) std::printf("warning: %s (skipped)\n", p.c_str());
  std::printf(
      "store merge: %zu stores of capture %s -> %s: %zu records (%zu failed), %zu identical "
      "duplicates kept once\n",
      r.inputs, r.capture_sha256.c_str(), r.out.c_str(), r.records, r.failed, r.duplicates);
  if (r.grid_cells) {
    std::printf("grid: %zu cells, %zu missing, %zu records not in the grid\n", r.grid_cells,
                r.missing.size(), r.not_in_grid.size());
    for (const auto& m : r.missing)
      std::printf("missing: cell %zu %s (config hash %s)\n", m.cell, m.options.dump().c_str(),
                  m.config_hash.c_str());
    for (const auto& k : r.not_in_grid) std::printf("not in the grid: %s\n", k.c_str());
  }
}

void run_diff(const DiffArgs& a) {
  const sessions::StoreDiff d = sessions::diff_result_stores(a.a, a.b);
  if (d.capture_differs)
    std::printf("the stores hold results of different captures (store.json capture sha256)\n");
  for (const auto& k : d.only_a) std::printf("only in %s: %s\n", a.a.c_str(), k.c_str());
  for (const auto& k : d.only_b) std::printf("only in %s: %s\n", a.b.c_str(), k.c_str());
  for (const auto& [k, where] : d.different)
    std::printf("different: %s (first difference at %s)\n", k.c_str(), where.c_str());
  std::printf(
      "store diff: %zu records identical, %zu only in the first, %zu only in the second, %zu "
      "different "
      "(timing, result.seconds and result.capture.file ignored)\n",
      d.same, d.only_a.size(), d.only_b.size(), d.different.size());
  if (!d.identical()) throw StoreMismatch("the stores " + a.a + " and " + a.b + " differ");
}

}  // namespace

void add_store_commands(CLI::App& app) {
  auto* store =
      app.add_subcommand("store", "Merge and compare sweep result stores (docs/cluster.md)");
  store->require_subcommand(1);

  auto m = std::make_shared<MergeArgs>();
  auto* merge = store->add_subcommand("merge",
                                      "Merge result stores of one capture (e.g. the shards of a "
                                      "sweep) into a new store, atomically: one "
                                      "record per cell, in configuration-hash order");
  merge->add_option("out", m->out, "New store folder (absent or empty; never one of the inputs)")
      ->required();
  merge->add_option("stores", m->inputs, "Input store folders")->each(protect_input_value)->required();
  merge->add_option(
      "--grid", m->grid,
      "The sweep grid the stores were made from: checked, written to the merged store.json, and "
      "missing cells reported");
  merge->add_flag(
      "--require-complete", m->require_complete,
      "Refuse (STORE_INCOMPLETE, nothing written) unless the stores hold exactly the grid's cells");
  merge->callback([m] { run_merge(*m); });

  auto d = std::make_shared<DiffArgs>();
  auto* diff = store->add_subcommand("diff",
                                     "Compare two result stores record by record (order, timing, "
                                     "result.seconds and result.capture.file "
                                     "ignored); exit 1 when they differ");
  diff->add_option("a", d->a, "First store folder")->required();
  diff->add_option("b", d->b, "Second store folder")->required();
  diff->callback([d] { run_diff(*d); });
}

}  // namespace kvwb::app
