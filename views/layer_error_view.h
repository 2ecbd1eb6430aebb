#pragma once
// Per-layer error chart: K and V error of the run per layer (relative MSE on log y, or the
// attention output error / KL with a metric selector), boundary (bf16) layers shaded, failed
// streams marked, whitened and skip-rule layers marked (views/layer_error_model.h).
#include <QComboBox>

#include "views/chart_view.h"
#include "views/models/layer_error_model.h"

class QCPTextElement;

namespace kvwb::views {

class LayerErrorView : public ChartView {
  Q_OBJECT
 public:
  explicit LayerErrorView(QWidget* parent = nullptr);

  QString view_name() const override { return QStringLiteral("layer-error"); }
  QString view_title() const override { return QStringLiteral("Per-layer error"); }
  void set_snapshot(SnapshotPtr snapshot) override;
  bool has_content() const override { return !model_.empty(); }

  const LayerErrorModel& model() const { return model_; }
  /// The baseline's model (same metric) drawn dashed when a baseline is pinned; empty otherwise.
  const LayerErrorModel& baseline_model() const { return baseline_; }
  /// Δ % series of the lower panel (current vs baseline), empty without a baseline.
  const std::vector<PlotSeries>& delta_series() const { return delta_; }
  /// The layer a click at x (plot coordinates) selects: the nearest layer of the run, or -1.
  int layer_at(double x) const;

 protected:
  void redraw() override { draw(); }
  /// Plotted series (current, then "baseline …" and the Δ % series) as CSV.
  std::string csv_text() const override;
  void on_plot_clicked(const QPointF& pos) override;

 private:
  void rebuild();
  void draw();

  SnapshotPtr snapshot_;
  LayerErrorModel model_;
  LayerErrorModel baseline_;
  std::vector<PlotSeries> delta_;
  std::string baseline_name_;  // "baseline #3"
  QCPTextElement* title_ = nullptr;
  QComboBox* metric_ = nullptr;  // objectName "metric": rel MSE, attention output error, KL
};

}  // namespace kvwb::views
