#pragma once
// Residual-distribution chart: histogram (density) of the scaled post-WHT residuals of the
// selected layer and stream of the run, the Lloyd-Max centroids of the stream's bit width, the
// outlier threshold ±T and the N(0,1) density; below it, per layer, the excess kurtosis of K
// pre-RoPE and V (analysis) and the outlier rate |s| > T (views/distribution_model.h).
#include <QComboBox>

#include "views/chart_view.h"
#include "views/models/distribution_model.h"

class QCPTextElement;

namespace kvwb::views {

class DistributionView : public ChartView {
  Q_OBJECT
 public:
  explicit DistributionView(QWidget* parent = nullptr);

  QString view_name() const override { return QStringLiteral("distribution"); }
  QString view_title() const override { return QStringLiteral("Residual distribution"); }
  void set_snapshot(SnapshotPtr snapshot) override;
  bool has_content() const override { return model_.has_histogram() || model_.has_side(); }

  const DistributionModel& model() const { return model_; }
  /// The baseline's model (same layer, stream and T) overlaid when a baseline is pinned.
  const DistributionModel& baseline_model() const { return baseline_; }
  bool has_baseline() const { return has_baseline_; }

 protected:
  void redraw() override { draw(); }
  /// Both panels' series, then the baseline's ("baseline #N …").
  std::string csv_text() const override;
  void on_plot_clicked(const QPointF& pos) override;

 private:
  void rebuild();
  void draw();

  SnapshotPtr snapshot_;
  DistributionModel model_;
  DistributionModel baseline_;
  bool has_baseline_ = false;
  std::string baseline_name_;
  QCPTextElement* title_ = nullptr;
  QComboBox* layer_ = nullptr;      // objectName "layer"
  QComboBox* stream_ = nullptr;     // objectName "stream": K, V
  QComboBox* threshold_ = nullptr;  // objectName "threshold": sessions::kOutlierThresholds
  int want_layer_ = -1;
};

}  // namespace kvwb::views
