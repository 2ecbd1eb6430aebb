#pragma once
// The comparison view: the pinned baseline against the current run (totals with Δ, the settings
// that differ, per-layer bytes and errors side by side) and the run history of the session with
// one-click Recall and Pin. Numbers come from views/models/comparison_model.h; the view only
// formats them and emits recall / pin / clear commands.
#include <QLabel>
#include <QPushButton>
#include <QTableWidget>

#include "views/models/comparison_model.h"
#include "views/view.h"

class QTabWidget;

namespace kvwb::views {

class CompareView : public View {
  Q_OBJECT
 public:
  explicit CompareView(QWidget* parent = nullptr);

  bool has_content() const override { return model_.has_baseline || !history_.empty(); }
  QStringList picture_formats() const override { return {QStringLiteral("png")}; }
  bool can_export_csv() const override { return model_.has_baseline || model_.has_current; }
  void export_picture(const QString& path) const override;
  void export_csv(const QString& path) const override;

  const ComparisonModel& model() const { return model_; }
  const std::vector<HistoryRow>& history() const { return history_; }
  QTableWidget* totals_table() const { return totals_; }
  QTableWidget* config_table() const { return config_; }
  QTableWidget* layers_table() const { return layers_; }
  QTableWidget* history_table() const { return history_table_; }
  /// The header line ("Baseline: run #3 · …").
  QString header_text() const { return header_->text(); }

 protected:
  void snapshot_changed() override { rebuild(); }

 private:
  void rebuild();

  ComparisonModel model_;
  std::vector<HistoryRow> history_;
  QLabel* header_ = nullptr;
  QLabel* note_ = nullptr;
  QPushButton* pin_current_ = nullptr;
  QPushButton* clear_ = nullptr;
  QTabWidget* tabs_ = nullptr;
  QTableWidget* totals_ = nullptr;
  QTableWidget* config_ = nullptr;
  QTableWidget* layers_ = nullptr;
  QTableWidget* history_table_ = nullptr;
  bool filling_ = false;
};

}  // namespace kvwb::views
