#pragma once
// Base of the analysis charts (spectrum, Σ_q, residual distribution, per-layer error): the look
// of views/chart_style.h (a title row, hover tooltips with exact values), one draw() of the
// current models that every redraw repeats, and the number selectors (layer, kv head) they share.
#include <QComboBox>
#include <string>
#include <vector>

#include "views/chart_view.h"

class QCPTextElement;

namespace kvwb::views {

class AnalysisChartView : public ChartView {
  Q_OBJECT
 public:
  /// `name`, `title`: as View's. Sets up the chart (setup_chart) and its hover tooltips.
  AnalysisChartView(const QString& name, const QString& title, QWidget* parent = nullptr);

 protected:
  /// Draws the current models (no computation).
  virtual void draw() = 0;
  void redraw() override { draw(); }
  /// Starts a draw: clears the plot (clear_chart), sets the chart's title, the note under the
  /// controls and the labels of the bottom and left axes (style_axis). Returns the plot.
  QCustomPlot* begin_draw(const std::string& title, const QString& note, const QString& x_label,
                          const QString& y_label);
  /// Ends a draw (finish_draw): a zoom is kept while the title and the y axis label stay the same.
  void end_draw();
  /// Ends a draw that has nothing to plot: the legend hidden, then end_draw().
  void end_empty_draw();
  /// A combo box with objectName `object_name`, appended to the controls row after `label`.
  QComboBox* add_combo(const QString& label, const QString& object_name);
  /// Refills `combo` with `values` (text: the number; data: the value) without emitting signals,
  /// selects `current` (the first item when absent) and enables it when `values` is not empty.
  static void fill_numbers(QComboBox* combo, const std::vector<int>& values, int current);

 private:
  QCPTextElement* title_ = nullptr;
};

/// An analysis chart drawing one model (views/models/): `model_` is rebuilt from each snapshot
/// and the chart has content when the model is not empty. `baseline_` is the same model of the
/// pinned baseline where the chart overlays one (each chart's header says what it overlays).
template <class Model>
class ModelChartView : public AnalysisChartView {
 public:
  using AnalysisChartView::AnalysisChartView;

  bool has_content() const override { return !model_.empty(); }
  /// What is drawn (for tests and the shell).
  const Model& model() const { return model_; }
  /// The baseline's model drawn with model(); empty without a baseline or an overlay.
  const Model& baseline_model() const { return baseline_; }

 protected:
  Model model_;
  Model baseline_;
};

}  // namespace kvwb::views
