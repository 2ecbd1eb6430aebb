#pragma once
// Σ_q chart: per layer and kv head cond(Σ_reg) (log y, top panel) and max|L| (bottom panel) with
// the per-layer m_l, the skip-rule threshold kSkipRuleFactor × median and the auto-skipped layers
// marked (codec-kakeya.md §8.4, decisions.md #4). Values of the analysis
// (views/sigma_q_model.h). No baseline overlay (baseline_model() stays empty).
#include "views/analysis_chart_view.h"
#include "views/models/sigma_q_model.h"

namespace kvwb::views {

class SigmaQView : public ModelChartView<SigmaQModel> {
  Q_OBJECT
 public:
  explicit SigmaQView(QWidget* parent = nullptr);

 protected:
  void snapshot_changed() override;
  void draw() override;
  std::string csv_text() const override { return sigma_q_csv(model_); }
  /// A click on either panel selects the nearest layer in every view.
  void on_plot_clicked(const QPointF& pos) override;
};

}  // namespace kvwb::views
