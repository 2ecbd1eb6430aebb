#pragma once
// Per-layer error chart: K and V error of the run per layer (relative MSE on log y, or the
// attention output error / KL with a metric selector), boundary (bf16) layers shaded, failed
// streams marked, whitened and skip-rule layers marked (views/layer_error_model.h). With a pinned
// baseline its model (same metric) is drawn dashed and a lower panel shows Δ %.
#include <QComboBox>

#include "views/analysis_chart_view.h"
#include "views/models/layer_error_model.h"

namespace kvwb::views {

class LayerErrorView : public ModelChartView<LayerErrorModel> {
  Q_OBJECT
 public:
  explicit LayerErrorView(QWidget* parent = nullptr);

  /// Δ % series of the lower panel (current vs baseline), empty without a baseline.
  const std::vector<PlotSeries>& delta_series() const { return delta_; }
  /// The layer a click at x (plot coordinates) selects: the nearest layer of the run, or -1.
  int layer_at(double x) const;

 protected:
  void snapshot_changed() override { rebuild(); }
  void draw() override;
  /// Plotted series (current, then "baseline …" and the Δ % series) as CSV.
  std::string csv_text() const override;
  void on_plot_clicked(const QPointF& pos) override;

 private:
  void rebuild();

  std::vector<PlotSeries> delta_;
  std::string baseline_name_;    // "baseline #3"
  QComboBox* metric_ = nullptr;  // objectName "metric": rel MSE, attention output error, KL
};

}  // namespace kvwb::views
