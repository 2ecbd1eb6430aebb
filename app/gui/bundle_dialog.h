#pragma once
// The bundle dialog: exports the current configuration as a calibration bundle
// (sessions::export_bundle, atomic in the core) and validates it (sessions::check_bundle), or
// validates any existing bundle folder (optionally as a partial reference artefact). Shows the
// check report: passed checks, warnings, errors (red), the Σ_q round-trip table against
// kBundleRoundTripBar and the settings deploy.env leaves out. Work runs in Workbench jobs.
#include <QDialog>
#include <QString>
#include <memory>
#include <optional>

#include "sessions/bundle/bundle.h"

class QCheckBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QProgressBar;
class QPushButton;
class QTableWidget;
class QTabWidget;

namespace kvwb::app {

class Workbench;

class BundleDialog : public QDialog {
  Q_OBJECT
 public:
  BundleDialog(Workbench& workbench, QWidget* parent = nullptr);
  ~BundleDialog() override;

  void set_destination(const QString& dir);
  QString destination() const;
  void set_force(bool on);
  void set_calibrate_centroids(bool on);
  void set_deploy_root(const QString& dir);
  void set_run_id(const QString& id);
  void set_criterion(const QString& criterion);
  void set_partial(bool on);

  /// Starts the export of the current configuration into destination() followed by its check;
  /// false when the inputs are invalid (shown inline) or a job of this dialog runs.
  bool start_export();
  /// Starts check_bundle on `dir` (Partial checkbox); false when a job of this dialog runs.
  bool start_check(const QString& dir);
  bool running() const { return job_ >= 0; }

 signals:
  /// A check of `dir` finished (after an export or a check) and report() holds it.
  void checked(const QString& dir);

 public:
  /// The last report shown (nullopt before any check finished or after an export error).
  const std::optional<sessions::BundleCheckReport>& report() const { return report_; }
  /// The inline error of the last export / check ("" when none).
  QString error_text() const;
  /// The report headline ("Bundle check passed: …").
  QString headline() const;

 private:
  void build_ui();
  void show_report(const QString& dir, const sessions::BundleCheckReport& r,
                   const std::shared_ptr<const sessions::BundleExportResult>& exported);
  void clear_report();
  void on_jobs_changed();
  void set_error(const QString& text);
  void update_buttons();

  Workbench& wb_;
  std::optional<sessions::BundleCheckReport> report_;
  int job_ = -1;
  QString job_name_;

  QLineEdit* dest_ = nullptr;
  QCheckBox* force_ = nullptr;
  QCheckBox* calibrate_ = nullptr;
  QLineEdit* deploy_root_ = nullptr;
  QLineEdit* run_id_ = nullptr;
  QLineEdit* criterion_ = nullptr;
  QCheckBox* partial_ = nullptr;
  QPushButton* export_button_ = nullptr;
  QPushButton* check_button_ = nullptr;
  QPushButton* cancel_button_ = nullptr;
  QProgressBar* progress_ = nullptr;
  QLabel* error_ = nullptr;
  QLabel* headline_ = nullptr;
  QLabel* export_info_ = nullptr;
  QTabWidget* report_tabs_ = nullptr;
  QListWidget* checks_ = nullptr;
  QListWidget* warnings_ = nullptr;
  QListWidget* errors_ = nullptr;
  QTableWidget* roundtrip_ = nullptr;
  QListWidget* left_out_ = nullptr;
};

}  // namespace kvwb::app
