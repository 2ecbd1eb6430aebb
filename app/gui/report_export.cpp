// File ▸ Export ▸ Report (app/gui/report_export.h).
#include "app/gui/report_export.h"

#include <memory>

#include "app/gui/workbench.h"
#include "base/errors.h"

namespace kvwb::app {

QString report_export_blocker(const Workbench& wb) {
  const views::SnapshotPtr s = wb.snapshot();
  if (s->capture.path.empty()) return "no capture is open";
  if (!s->run) return "no run has finished yet";
  if (wb.run_is_partial())
    return "the last run was cancelled and holds only some layers; rerun it first (F5)";
  if (!s->run_is_current) return "the run of the edited configuration has not finished yet";
  return {};
}

int start_report_export(Workbench& wb, const ReportExportRequest& request) {
  if (!report_export_blocker(wb).isEmpty()) return -1;
  const views::SnapshotPtr snap = wb.snapshot();
  const std::string html = request.html_path.toStdString(), pdf = request.pdf_path.toStdString();
  const std::optional<sessions::ReportBundle> bundle = request.bundle;
  const std::string session = wb.session_path().toStdString();
  Workbench* w = &wb;
  return wb.start_job(
      "Export report",
      [snap, html, pdf, bundle, session, w](JobControl& job) -> Workbench::Continuation {
        sessions::ReportInputs in;
        in.capture =
            sessions::report_capture_identity(snap->capture.path, snap->run->capture_sha256);
        in.run = sessions::run_result_to_json(*snap->run);
        in.run_result = snap->run;
        in.run_origin =
            "The configuration below is the workbench's current run (kvwb's runner, the same "
            "numbers as "
            "kvwb run with this configuration).";
        in.analysis = snap->analysis;
        in.outliers = snap->outliers;
        if (!snap->analysis)
          in.notes.push_back(
              "The capture analysis had not finished when this report was exported.");
        if (snap->active_sweep >= 0 && snap->active_sweep < static_cast<int>(snap->sweeps.size())) {
          const views::SweepSnapshot& sw = snap->sweeps[static_cast<size_t>(snap->active_sweep)];
          sessions::ReportStore st;
          st.path = sw.store_path;
          st.contents = sessions::read_result_store(sw.store_path);
          st.metrics = sessions::default_report_metrics(st.contents.records);
          in.store = std::move(st);
        }
        if (job.cancel.load()) throw Cancelled("report export cancelled");
        in.bundle = bundle;
        in.generated_by = "kvwb-gui (File > Export > Report)" +
                          (session.empty() ? std::string() : ", session " + session);
        const auto doc = sessions::build_report_document(in);
        if (job.cancel.load()) throw Cancelled("report export cancelled");
        sessions::write_report(doc, html, pdf);
        return [w, html, pdf] {
          QString what = QString::fromStdString(html.empty() ? pdf : html);
          if (!html.empty() && !pdf.empty()) what += " and " + QString::fromStdString(pdf);
          emit w->message("info", "Wrote report " + what);
        };
      });
}

}  // namespace kvwb::app
