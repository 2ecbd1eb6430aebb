#pragma once
// Σ_q chart: per layer and kv head cond(Σ_reg) (log y, top panel) and max|L| (bottom panel) with
// the per-layer m_l, the skip-rule threshold kSkipRuleFactor × median and the auto-skipped layers
// marked (codec-kakeya.md §8.4, decisions.md #4). Values of the analysis
// (views/sigma_q_model.h).
#include "views/chart_view.h"
#include "views/models/sigma_q_model.h"

class QCPTextElement;

namespace kvwb::views {

class SigmaQView : public ChartView {
  Q_OBJECT
 public:
  explicit SigmaQView(QWidget* parent = nullptr);

  QString view_name() const override { return QStringLiteral("sigma-q"); }
  QString view_title() const override { return QStringLiteral("Σ_q conditioning"); }
  void set_snapshot(SnapshotPtr snapshot) override;
  bool has_content() const override { return !model_.empty(); }

  const SigmaQModel& model() const { return model_; }

 protected:
  void redraw() override { draw(); }
  std::string csv_text() const override { return sigma_q_csv(model_); }
  /// A click on either panel selects the nearest layer in every view.
  void on_plot_clicked(const QPointF& pos) override;

 private:
  void draw();

  SnapshotPtr snapshot_;
  SigmaQModel model_;
  QCPTextElement* title_ = nullptr;
};

}  // namespace kvwb::views
