#pragma once
// Sweeps (docs/sweeps.md): every cell of a configuration grid run on one capture, `jobs` cells at
// a time, each finished cell appended to a crash-safe result store (sessions/result_store.h) as
// soon as it finishes. A killed or cancelled sweep keeps every finished cell; a resumed sweep
// skips the cells whose key (capture sha256 + configuration hash) the store already holds.
#include <cstddef>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "model/loader.h"
#include "sessions/config/calibration_bundle.h"
#include "sessions/eval/eval.h"
#include "sessions/config/run_options.h"
#include "sessions/explore/shard.h"
#include "sessions/run/runner.h"

namespace kvwb::sessions {

/// Expands a sweep grid file: one grid object (run_options.h expand_grid), a JSON array of grid
/// objects, or {"grids": [...]} (optionally with a shared "fixed" object and "base" configuration
/// applied under each sub-grid's own). Sub-grids let one sweep mix codec families whose options
/// differ. Cells are numbered in order (the configuration ids); a cell whose canonical
/// configuration equals an earlier cell's is dropped (counted in `dropped`).
std::vector<GridCell> expand_sweep_grid(const nlohmann::json& grid, const std::string& source,
                                        size_t* dropped = nullptr);

/// sha256 of a grid's compact JSON text (store.json "grid_sha256"): grids that parse to the same
/// JSON value have the same hash, however the file was formatted.
std::string sweep_grid_sha256(const nlohmann::json& grid);

struct SweepOptions {
  std::string grid_source = "sweep grid";  // names the grid (its file) in error messages
  int jobs = 1;         // cells run at the same time (each cell's run uses 1 thread)
  bool resume = false;  // continue a store (skip finished keys); without it the store must be empty
  /// End-to-end quality axes (docs/model-in-the-loop.md): when set, every cell is also evaluated
  /// with the model (Evaluator::evaluate) and its record's result gets totals.e2e (e2e_totals_json),
  /// so `kvwb pareto --metric e2e.abs_delta_ppl` plots them with their intervals.
  const Evaluator* evaluator = nullptr;
  /// What the evaluator was built from (model, text, C/N/P), stored in store.json as "e2e"; a
  /// resumed store must have been made with the same settings.
  nlohmann::json e2e_settings;
  /// Calibration transfer (kvwb sweep --bundle): every cell's configuration gets the bundle's Σ_q
  /// factors and centroid tables (apply_calibration_bundle; a cell the bundle cannot serve, e.g. a
  /// bit width without a table, is stored as a failure) and its result a "calibration"
  /// provenance object (in-sample / out-of-sample with both sha256). store.json records the
  /// bundle ("calibration"); a resumed store must have been made with the same bundle contents.
  const CalibrationBundle* bundle = nullptr;
  /// Run only this shard of the grid (sessions/explore/shard.h; docs/cluster.md). A shard's store
  /// records it in store.json ("shard": {index, count, grid_cells}); resuming it as another shard
  /// is refused.
  ShardSpec shard;
  /// Per-(layer, stream) results shared between cells and runs (result_cache.h); null = none.
  ResultCache* cache = nullptr;
};

/// totals.e2e of a sweep record from an end-to-end evaluation: delta_ppl, abs_delta_ppl (percent),
/// top1 (percent), one_minus_top1 (fraction), kl (nats), each with `<name>_ci` = [lo, hi] (the
/// paired-bootstrap interval, null with one passage); the interval verdict, verdict_possible,
/// passages_needed, verdict_point; passages, passages_available, selection, context,
/// continuation, bootstrap {method, resamples, seed, level}, seconds_per_passage.
nlohmann::json e2e_totals_json(const EvalResult& r);

/// What a sweep needs for end-to-end axes: a model, a text, the protocol.
struct EndToEndRequest {
  std::string model_path;      // kvwb eval's --model (folder or llama2.c .bin)
  std::string tokenizer_path;  // "" = the model's own
  std::string text_path;       // UTF-8 text, tokenised with the model's tokenizer
  EvalOptions eval;
};
/// The loaded model, its Evaluator (prefill done once) and the store.json "e2e" settings.
struct EndToEndAxes {
  std::unique_ptr<model::LoadedModel> model;  // owned here: the evaluator refers to it
  std::unique_ptr<Evaluator> evaluator;
  nlohmann::json settings;  // {model, text: "FILE (N tokens)", context, continuation, passages, selection, bootstrap}
  size_t text_tokens = 0;
};
/// Loads and prepares end-to-end axes for run_sweep (SweepOptions::evaluator / e2e_settings).
/// Throws what load_model / the tokenizer / Evaluator throw (IoError, FormatError,
/// InvalidArgument: no tokenizer, text too short…).
std::unique_ptr<EndToEndAxes> load_end_to_end_axes(const EndToEndRequest& request);
/// The store.json "e2e" settings for an evaluator built from `model_path` on `text_source`.
nlohmann::json e2e_settings_json(const std::string& model_path, const std::string& text_source, const Evaluator& ev);

struct SweepSummary {
  size_t cells = 0;        // cells of this sweep: the grid's, or the shard's when sharded
  size_t grid_cells = 0;   // cells in the grid (after dropping duplicate configurations)
  ShardSpec shard;
  size_t skipped = 0;      // already in the store (resume)
  size_t ran = 0;          // cells run now and stored
  size_t failed = 0;       // of `ran`, cells stored as failures (data errors)
  size_t dropped = 0;      // grid cells identical to an earlier cell
  uint64_t repaired_bytes = 0;          // torn last line cut when the store was opened
  std::vector<std::string> problems;    // damaged lines found when reading the store
  std::string capture_sha256;
  double seconds = 0;
  /// Every failure record of this sweep's cells in the store after the sweep (stored earlier or
  /// now), ascending cell: {cell, config_hash, options, error {code, message}}.
  std::vector<nlohmann::json> failures;
};

/// Runs a sweep of `grid` on `capture_path` into the store folder `store_dir`. Throws
/// InvalidArgument for a bad grid, for a non-empty store without `resume`, or for resuming a store
/// made from a different grid; CaptureChanged when the store was made from a capture with another
/// sha256; IoError for store or capture I/O failures (earlier cells stay stored); Cancelled when
/// `job->cancel` is set (finished cells stay stored; cells in flight are not stored). A cell that
/// fails with any other typed error is stored as a failure record {code, message}.
/// `job->progress(done, total, detail)` is called under a lock from the worker threads, with
/// `done` counting skipped cells too.
SweepSummary run_sweep(const std::string& capture_path, const nlohmann::json& grid, const std::string& store_dir,
                       const SweepOptions& opt, JobControl* job = nullptr);

/// The results table of store records (ascending cell): one row per cell with ratio vs bf16, bits
/// per value and every quality metric (K/V relative MSE, K whitened MSE, attention output error,
/// attention KL, top-1) or the cell's failure.
nlohmann::json sweep_table_json(const std::vector<nlohmann::json>& records);
std::string sweep_table_csv(const std::vector<nlohmann::json>& records);

}  // namespace kvwb::sessions
