#pragma once
// Spectrum chart: eigenvalues (log y) and cumulative explained variance (second y axis, 0–1) of
// the covariance of the selected (layer, kv head), for K pre-RoPE, whitened K and V, with d_eff
// markers at 0.90 / 0.95 / 0.99. Values of the analysis (views/spectrum_model.h).
#include <QComboBox>

#include "views/chart_view.h"
#include "views/models/spectrum_model.h"

class QCPTextElement;

namespace kvwb::views {

class SpectrumView : public ChartView {
  Q_OBJECT
 public:
  explicit SpectrumView(QWidget* parent = nullptr);

  QString view_name() const override { return QStringLiteral("spectrum"); }
  QString view_title() const override { return QStringLiteral("Spectrum"); }
  void set_snapshot(SnapshotPtr snapshot) override;
  bool has_content() const override { return !model_.empty(); }

  /// What is drawn (for tests and the shell).
  const SpectrumModel& model() const { return model_; }
  /// The spectra of the baseline's (layer, kv head) (pinned with the baseline), overlaid when it
  /// differs from the shown one; empty otherwise.
  const SpectrumModel& baseline_model() const { return baseline_; }

 protected:
  void redraw() override { draw(); }
  std::string csv_text() const override { return spectrum_csv(model_); }

 private:
  void rebuild();
  void fill_selectors();
  void draw();
  std::vector<SpectrumTensor> requested_tensors() const;

  SnapshotPtr snapshot_;
  SpectrumModel model_;
  SpectrumModel baseline_;
  QCPTextElement* title_ = nullptr;
  QComboBox* layer_ = nullptr;   // objectName "layer"
  QComboBox* head_ = nullptr;    // objectName "kv_head"
  QComboBox* tensor_ = nullptr;  // objectName "tensor": K pre-RoPE, K whitened, V, all three
  int want_layer_ = -1, want_head_ = 0;
};

}  // namespace kvwb::views
