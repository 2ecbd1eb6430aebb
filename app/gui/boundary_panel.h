#pragma once
// The boundary panel (docked by the shell), two tabs:
//  - Boundary layers: sessions::recommend_boundary on the capture and the current configuration
//    (max layers) → the layer ranking (score, KL, output error, Σ_q skip rule, failed streams) and
//    the measured greedy boundary sets, each with "Apply" → Workbench::set_boundary.
//  - Budget plan: sessions::plan_budget (target ratio, metric, boundary allowed) → the per-layer
//    choices, promised vs measured ratio / bytes / error, "Apply plan" → Workbench::set_config.
// Both run as Workbench jobs; the panel only formats the core's numbers. Errors (an unreachable
// target, a configuration with overrides…) are shown inline in red with the core's message.
#include <QString>
#include <QWidget>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sessions/explore/boundary.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTableWidget;
class QTabWidget;

namespace kvwb::app {

class Workbench;

class BoundaryPanel : public QWidget {
  Q_OBJECT
 public:
  BoundaryPanel(Workbench& workbench, QWidget* parent = nullptr);
  ~BoundaryPanel() override;

  QTabWidget* tabs() const { return tabs_; }

  // ---- recommendation ----
  void set_max_layers(int n);
  /// Starts the recommendation job; false when no capture is open or one is running.
  bool recommend();
  /// The last recommendation shown (null before the first one finished).
  const sessions::BoundaryRecommendation* recommendation() const { return rec_.get(); }
  /// Applies proposal `index` of the recommendation (-1: the no-boundary baseline).
  bool apply_proposal(int index);
  QString recommend_error() const;
  int ranking_rows() const;
  int proposal_rows() const;

  // ---- budgeted plan ----
  void set_target_ratio(double r);
  /// "attn_out_rel_err" | "attn_kl" | "rel_mse"; false for another value.
  bool set_metric(const QString& metric);
  void set_allow_boundary(bool on);
  bool plan();
  const sessions::PlanResult* plan_result() const { return plan_.get(); }
  bool apply_plan();
  QString plan_error() const;
  int plan_rows() const;

 private:
  void build_ui();
  QWidget* build_recommend_tab();
  QWidget* build_plan_tab();
  void show_recommendation();
  void show_plan();
  void on_jobs_changed();
  void on_snapshot();
  void set_rec_error(const QString& text);
  void set_plan_error(const QString& text);
  /// The open capture's path when a job (id `job`, -1 when none runs) may start, clearing the
  /// error shown by `show_error`; nullopt while it runs, or with no capture open (said there).
  std::optional<std::string> capture_to_start(int job,
                                              void (BoundaryPanel::*show_error)(const QString&));
  /// A tab's job just started: its progress bar shows and its status says `text`.
  void show_started(QProgressBar* progress, QLabel* status, const QString& text);
  void update_buttons();

  Workbench& wb_;
  std::shared_ptr<const sessions::BoundaryRecommendation> rec_;
  std::shared_ptr<const sessions::PlanResult> plan_;
  int rec_job_ = -1;
  int plan_job_ = -1;
  QString rec_job_name_, plan_job_name_;
  QString capture_;  // the capture the shown results belong to

  QTabWidget* tabs_ = nullptr;
  // recommendation
  QSpinBox* max_layers_ = nullptr;
  QPushButton* recommend_button_ = nullptr;
  QPushButton* rec_cancel_ = nullptr;
  QProgressBar* rec_progress_ = nullptr;
  QLabel* rec_status_ = nullptr;
  QLabel* rec_error_ = nullptr;
  QTableWidget* ranking_ = nullptr;
  QTableWidget* proposals_ = nullptr;
  QLabel* rec_notes_ = nullptr;
  // plan
  QDoubleSpinBox* target_ = nullptr;
  QComboBox* metric_ = nullptr;
  QCheckBox* allow_boundary_ = nullptr;
  QPushButton* plan_button_ = nullptr;
  QPushButton* plan_cancel_ = nullptr;
  QProgressBar* plan_progress_ = nullptr;
  QLabel* plan_status_ = nullptr;
  QLabel* plan_error_ = nullptr;
  QTableWidget* plan_layers_ = nullptr;
  QTableWidget* plan_totals_ = nullptr;
  QLabel* plan_notes_ = nullptr;
  QPushButton* apply_plan_ = nullptr;
};

}  // namespace kvwb::app
