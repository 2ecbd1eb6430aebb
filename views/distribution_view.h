#pragma once
// Residual-distribution chart: histogram (density) of the scaled post-WHT residuals of the
// selected layer and stream of the run, the Lloyd-Max centroids of the stream's bit width, the
// outlier threshold ±T and the N(0,1) density; below it, per layer, the excess kurtosis of K
// pre-RoPE and V (analysis) and the outlier rate |s| > T (views/distribution_model.h).
#include <QComboBox>

#include "views/analysis_chart_view.h"
#include "views/models/distribution_model.h"

namespace kvwb::views {

class DistributionView : public ModelChartView<DistributionModel> {
  Q_OBJECT
 public:
  explicit DistributionView(QWidget* parent = nullptr);

  /// A baseline is pinned: baseline_model() (same layer, stream and T) is overlaid.
  bool has_baseline() const { return has_baseline_; }

 protected:
  /// Follows the snapshot's selected layer.
  void snapshot_changed() override;
  void draw() override;
  /// Both panels' series, then the baseline's ("baseline #N …").
  std::string csv_text() const override;
  void on_plot_clicked(const QPointF& pos) override;

 private:
  void rebuild();

  bool has_baseline_ = false;
  std::string baseline_name_;
  QComboBox* layer_ = nullptr;      // objectName "layer"
  QComboBox* stream_ = nullptr;     // objectName "stream": K, V
  QComboBox* threshold_ = nullptr;  // objectName "threshold": sessions::kOutlierThresholds
  int want_layer_ = -1;
};

}  // namespace kvwb::views
