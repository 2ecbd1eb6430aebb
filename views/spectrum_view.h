#pragma once
// Spectrum chart: eigenvalues (log y) and cumulative explained variance (second y axis, 0–1) of
// the covariance of the selected (layer, kv head), for K pre-RoPE, whitened K and V, with d_eff
// markers at 0.90 / 0.95 / 0.99. Values of the analysis (views/spectrum_model.h). The spectra of
// the baseline's (layer, kv head), pinned with the baseline, are overlaid when it differs from the
// shown one (baseline_model() is empty otherwise).
#include <QComboBox>

#include "views/analysis_chart_view.h"
#include "views/models/spectrum_model.h"

namespace kvwb::views {

class SpectrumView : public ModelChartView<SpectrumModel> {
  Q_OBJECT
 public:
  explicit SpectrumView(QWidget* parent = nullptr);

 protected:
  /// Follows the snapshot's selected (layer, kv head).
  void snapshot_changed() override;
  void draw() override;
  std::string csv_text() const override { return spectrum_csv(model_); }

 private:
  void rebuild();
  void fill_selectors();
  std::vector<SpectrumTensor> requested_tensors() const;

  QComboBox* layer_ = nullptr;   // objectName "layer"
  QComboBox* head_ = nullptr;    // objectName "kv_head"
  QComboBox* tensor_ = nullptr;  // objectName "tensor": K pre-RoPE, K whitened, V, all three
  int want_layer_ = -1, want_head_ = 0;
};

}  // namespace kvwb::views
