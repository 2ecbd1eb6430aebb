#pragma once
// The immutable state every view draws (tracy/PlotJuggler pattern): the shell builds a new
// Snapshot whenever a job finishes or the document changes and hands the same shared_ptr to every
// view. Views never compute metrics, never do I/O and never mutate a snapshot; they read these
// results (computed by the core in kvwb::sessions) and emit commands (views/view.h).
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sessions/analysis/analysis.h"
#include "sessions/config/run_config.h"
#include "sessions/run/runner.h"

namespace kvwb::views {

/// What the views need to know about the open capture (from io::CaptureInfo, copied by the shell).
struct CaptureSummary {
  std::string path;        // absolute path ("" = nothing open)
  std::string model_name;
  bool synthetic = false;  // the embedded demo capture (labelled SYNTHETIC everywhere)
  int num_layers = 0, num_query_heads = 0, num_kv_heads = 0, head_dim = 0;
  int sequences = 0, tokens = 0;
  std::vector<int> layers;                 // present layer indices, ascending
  std::vector<std::string> attention;      // per entry of `layers`: "full" | "sliding"
  std::vector<bool> has_q;                 // per entry of `layers`: q_pre present
};

/// Records of one sweep's result store (sessions/result_store.h), ascending cell.
struct SweepSnapshot {
  std::string name;        // sweep name in the session
  std::string store_path;  // result-store folder
  std::vector<nlohmann::json> records;
};

/// A (layer, kv head) selection; kv_head = -1 means "all heads of the layer".
struct Selection {
  int layer = -1;
  int kv_head = 0;
};

/// One finished run of the session, as the controller holds it: the run history, the baseline and
/// the current run are these. Immutable once published; `run` keeps the residuals (distribution
/// view) unless the history dropped them to stay within its memory budget (`has_residuals`).
struct RunEntry {
  uint64_t id = 0;    // 1, 2, … in the order runs finished (never reused within a session)
  std::string label;  // what produced it: the edit ("Keep layer 1 bf16 (boundary)"), "open", …
  std::shared_ptr<const sessions::RunConfig> config;  // the configuration that was run
  std::string config_key;  // canonical JSON text of `config` (equal keys = equal results)
  std::shared_ptr<const sessions::RunResult> run;
  std::shared_ptr<const sessions::OutlierRates> outliers;  // null when the run has no Kakeya stream
  bool has_residuals = true;  // `run` still holds the Kakeya scaled residuals
  Selection selection;        // the selection when it finished (or was pinned as the baseline)
  int64_t finished_ms = 0;    // wall clock, ms since the Unix epoch
};
using RunEntryPtr = std::shared_ptr<const RunEntry>;

/// Runs the history keeps (oldest dropped first).
inline constexpr size_t kRunHistoryLimit = 20;

struct Snapshot {
  uint64_t generation = 0;  // increases with every snapshot the shell publishes
  CaptureSummary capture;
  /// Analysis of the capture (spectra, Σ_q, kurtosis); null until the analysis job finished.
  std::shared_ptr<const sessions::AnalysisResult> analysis;
  /// The current configuration (what Run evaluates) and its boundary set (= config->boundary).
  std::shared_ptr<const sessions::RunConfig> config;
  /// Result of the last finished run of `config` (RunOptions::collect_residuals on, so Kakeya
  /// streams carry their scaled residuals for the distribution view); null before the first run.
  /// `run_is_current` is false while a rerun of an edited configuration is in flight.
  std::shared_ptr<const sessions::RunResult> run;
  bool run_is_current = false;
  /// `run` holds only the layers finished before a cancel: never the configuration's totals.
  bool run_partial = false;
  /// A run of `config` is in flight (its result replaces `run` when it finishes).
  bool run_in_flight = false;
  /// History id of `run` (0 when it is not in the history: partial or none).
  uint64_t run_id = 0;
  /// The session's finished runs, oldest first (at most kRunHistoryLimit).
  std::vector<RunEntryPtr> history;
  /// The pinned baseline every view can compare the current run with (null = none).
  RunEntryPtr baseline;
  /// Label of a baseline being computed (a sweep cell not held yet), "" when none.
  std::string baseline_pending;
  /// Outlier rates and residual kurtosis per layer of `run` (sessions::outlier_rates_from_run,
  /// computed by the run job, not by a view); null when the run has no Kakeya stream.
  std::shared_ptr<const sessions::OutlierRates> outliers;
  /// Sweeps of the session with their records; the Pareto view plots `sweeps[active_sweep]`.
  std::vector<SweepSnapshot> sweeps;
  int active_sweep = -1;
  Selection selection;
  std::string backend_label;               // "CPU (2 threads)" or "CUDA: NVIDIA H100 ..."
  std::vector<std::string> running_jobs;   // names of jobs in flight
};

using SnapshotPtr = std::shared_ptr<const Snapshot>;

}  // namespace kvwb::views
