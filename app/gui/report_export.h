#pragma once
// File ▸ Export ▸ Report: the report (sessions/report/report.h) of what the workbench shows — the
// current run, the capture analysis, the active sweep's store and the last bundle exported or
// checked in this window — built and written by the core in a background job. Nothing is
// recomputed: the run, the analysis and the outlier rates are the snapshot's.
#include <QString>
#include <optional>

#include "sessions/report/report.h"

namespace kvwb::app {

class Workbench;

struct ReportExportRequest {
  QString html_path;  // "" = no HTML
  QString pdf_path;   // "" = no PDF
  /// The bundle check to show (the bundle dialog's last report; not re-run), or none.
  std::optional<sessions::ReportBundle> bundle;
};

/// Why the workbench's state cannot be reported now ("" when it can): no capture, no finished run,
/// a run that was cancelled (partial) or is being redone after an edit.
QString report_export_blocker(const Workbench& wb);

/// Starts the export job (Workbench::start_job, named "Export report"); errors go through the
/// workbench's job_failed signal. Returns the job id, or -1 when report_export_blocker is not "".
int start_report_export(Workbench& wb, const ReportExportRequest& request);

}  // namespace kvwb::app
