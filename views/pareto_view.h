#pragma once
// The Pareto view (issue #5): the cells of the active sweep as ratio vs bf16 (x) against a chosen
// quality metric (y, log scale when it spans decades), coloured and shaped by codec family, with
// the core's frontier drawn as a staircase, the current configuration ringed, the excluded cells
// listed in the note, hover details and click-to-load (emits config_requested with the cell's
// configuration). Points and frontier come from views/pareto_model.h (the core's functions).
#include <QComboBox>
#include <QPoint>

#include "views/chart_view.h"
#include "views/models/pareto_model.h"

class QMouseEvent;
class QCPTextElement;

namespace kvwb::views {

class ParetoView : public ChartView {
  Q_OBJECT
 public:
  explicit ParetoView(QWidget* parent = nullptr);

  QString view_name() const override { return "pareto"; }
  QString view_title() const override { return "Pareto"; }
  void set_snapshot(SnapshotPtr snapshot) override;
  bool has_content() const override { return !model_.points.empty(); }

  /// The model currently drawn.
  const ParetoModel& model() const { return model_; }
  /// Chooses the quality metric (one of model().metrics); redraws.
  void set_metric(const std::string& metric);
  /// Index into model().points of the point nearest to `pixel` (QCustomPlot widget coordinates)
  /// within 10 px, or -1.
  int point_at(const QPoint& pixel) const;
  /// Hover text of point `index` (id, options, codec, ratio, metric, bytes).
  QString point_details(int index) const;

 protected:
  void redraw() override { rebuild(); }
  std::string csv_text() const override;

 private:
  void rebuild();
  void on_mouse_move(QMouseEvent* event);
  void on_mouse_press(QMouseEvent* event);

  SnapshotPtr snapshot_;
  ParetoModel model_;
  std::string metric_;
  QComboBox* sweep_combo_ = nullptr;
  QLabel* sweep_label_ = nullptr;
  QComboBox* metric_combo_ = nullptr;
  QCPTextElement* title_ = nullptr;
};

}  // namespace kvwb::views
