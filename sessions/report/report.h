#pragma once
// Reports (docs/reports.md): one self-contained HTML file and a PDF of the same content for
// colleagues who do not run the tool. A report shows the capture's identity (file, model, shapes,
// SHA-256, SYNTHETIC when it is), the configuration (readable table + canonical JSON), the run's
// totals and per-layer results (bytes, ratio, errors, attention metrics), the analysis charts
// (spectra / d_eff, Σ_q conditioning, per-layer error, residual distribution), the Pareto frontier
// and results table of a sweep store (with end-to-end metrics, their intervals and verdicts when
// the records have them), a bundle check, and the tool version and date.
//
// Every number comes from the core as computed for `kvwb run` / `kvwb analyze` / `kvwb pareto`
// / `kvwb bundle-check`: the run's tables are read from run_result_to_json (the JSON that
// `kvwb run --json` writes) and each of their cells names its JSON path (data-key); charts plot
// values of the analysis, the run and the store; nothing is recomputed here.
//
// sessions/report/ sits on top of the other sub-layers (config, run, analysis, explore, bundle);
// only app/ includes it. No Qt.
#include <cstdint>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/job.h"
#include "sessions/analysis/analysis.h"
#include "sessions/bundle/bundle.h"
#include "sessions/config/run_config.h"
#include "sessions/explore/result_store.h"
#include "sessions/report/document.h"
#include "sessions/run/runner.h"

namespace kvwb::sessions {

/// The tool name and version a report names (the same as `kvwb --version`).
inline constexpr const char* kReportTool = "kvwb";
inline constexpr const char* kReportToolVersion = kBundleToolVersion;

/// What identifies a capture in a report.
struct ReportCaptureIdentity {
  std::string path;       // as given
  std::string file_name;  // last path component
  std::string model_name, text_source, source_dtype;
  bool synthetic = false;  // io::is_synthetic_capture
  int sequences = 0, tokens = 0, num_layers = 0, num_query_heads = 0, num_kv_heads = 0,
      head_dim = 0;
  int rotary_dim = 0;
  std::string rope_style;
  double rope_theta = 0;
  bool qk_norm = false;
  std::vector<int> layers;             // present layers
  std::vector<std::string> attention;  // per present layer: "full" | "sliding"
  uint64_t file_bytes = 0;
  std::string sha256;
};

/// Reads the identity of a capture (metadata only). `sha256` = "" computes the file's SHA-256.
/// Throws what io::CaptureReader throws (IoError, FormatError).
ReportCaptureIdentity report_capture_identity(const std::string& path,
                                              const std::string& sha256 = {});

/// A sweep result store shown in a report.
struct ReportStore {
  std::string path;
  StoreContents contents;
  /// Quality metrics of the Pareto charts (metric_value names); empty = attn_out_rel_err (or the
  /// first metric present) plus e2e.abs_delta_ppl when the records have end-to-end totals.
  std::vector<std::string> metrics;
};

/// A bundle check shown in a report.
struct ReportBundle {
  std::string path;
  std::string
      origin;  // why it is in the report ("--bundle", "the sweep store's calibration bundle")
  BundleCheckReport check;
};

/// Everything a report shows. The run is given as its result JSON (run_result_to_json, or a store
/// record's "result"); `run_result` adds what the JSON does not hold (Kakeya scaled residuals
/// for the distribution charts, when the run collected them).
struct ReportInputs {
  ReportCaptureIdentity capture;
  nlohmann::json run;      // null = no detailed run
  std::string run_origin;  // how the run was obtained (one sentence)
  std::shared_ptr<const RunResult> run_result;
  std::shared_ptr<const AnalysisResult> analysis;
  std::shared_ptr<const OutlierRates> outliers;  // of the run (outlier_rates_from_run)
  std::optional<ReportStore> store;
  std::optional<ReportBundle> bundle;
  std::string generated_by;        // the command line, or "kvwb-gui …"
  std::time_t generated_at = 0;    // 0 = now
  std::vector<std::string> notes;  // shown under the summary (e.g. what was left out and why)
};

/// The report document (render with report::render_html / report::render_pdf).
report::ReportDocument build_report_document(const ReportInputs& in);

/// What `kvwb report` evaluates.
struct ReportRequest {
  std::string capture_path;
  /// The configuration to run and detail (as `kvwb run` would); none with a store.
  std::optional<RunConfig> config;
  std::string store_dir;        // sweep result store ("" = none)
  std::optional<int64_t> cell;  // store cell to detail (default: see docs/reports.md)
  std::vector<std::string> metrics;
  std::string bundle_dir;  // bundle to check ("" = the store's calibration bundle, if any)
  bool analysis = true;    // analyse the capture (spectra, Σ_q, kurtosis)
  /// The run keeps the Kakeya scaled residuals (4 bytes per K and V value of the capture) for the
  /// distribution charts only when the capture has at most this many K and V values; above it the
  /// report leaves the histograms and outlier rates out and says so (memory stays one layer's).
  uint64_t residual_budget_values = uint64_t{1} << 26;
  int threads = 0;  // analysis threads (0 = all); the run uses config.threads
  std::string generated_by;
};

/// Computes what a report shows: the capture's identity, the analysis, the run of `config` (with
/// the Kakeya residuals kept for the distribution charts; its numbers are `kvwb run`'s), or the
/// store's records with the chosen cell's stored result, and the bundle check. Throws
/// InvalidArgument for a bad request (no config and no store, an unknown cell, an unknown metric),
/// CaptureChanged when the store was made from another capture, and what the runner, the analysis
/// and the store reader throw; Cancelled through `job`.
ReportInputs compute_report_inputs(const ReportRequest& request, JobControl* job = nullptr);

/// The store cell a report details when none is chosen: among the frontier points of the first
/// Pareto metric, the one with the highest ratio whose quality loss is at most the median quality
/// loss of the frontier (a balanced point); nullopt when the store has no valid point.
std::optional<int64_t> default_report_cell(const std::vector<nlohmann::json>& records,
                                           const std::string& metric);

/// The metrics a report plots for `records` when none are asked for (see ReportStore::metrics).
std::vector<std::string> default_report_metrics(const std::vector<nlohmann::json>& records);

/// Writes the report: the HTML to `html_path` and, when `pdf_path` is not empty, the PDF, each
/// atomically (io::write_file_atomic). At least one path must be given. Throws IoError.
void write_report(const report::ReportDocument& doc, const std::string& html_path,
                  const std::string& pdf_path);

}  // namespace kvwb::sessions
