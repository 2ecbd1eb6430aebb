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

 protected:
  std::string csv_text() const override { return layer_error_csv(model_); }

 private:
  void rebuild();
  void draw();

  SnapshotPtr snapshot_;
  LayerErrorModel model_;
  QCPTextElement* title_ = nullptr;
  QComboBox* metric_ = nullptr;  // objectName "metric": rel MSE, attention output error, KL
};

}  // namespace kvwb::views
