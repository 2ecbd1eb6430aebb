#include "views/distribution_view.h"

#include <qcustomplot.h>

#include <QLabel>
#include <algorithm>
#include <cmath>

#include "sessions/analysis/analysis.h"
#include "views/chart_style.h"
#include "views/models/comparison_model.h"

namespace kvwb::views {

namespace {

QVector<double> qvec(const std::vector<double>& v) { return QVector<double>(v.begin(), v.end()); }

/// Vertical lines at x (impulses from the axis bottom to `top`), hover shows x only.
QCPGraph* vertical_lines(QCPAxis* x, QCPAxis* y, const PlotSeries& s, double top, const QPen& pen) {
  QCPGraph* g = x->parentPlot()->addGraph(x, y);
  g->setName(QString::fromStdString(s.name));
  g->setData(qvec(s.x), QVector<double>(static_cast<int>(s.x.size()), top));
  g->setLineStyle(QCPGraph::lsImpulse);
  g->setPen(pen);
  g->setProperty("kvwb_vertical", true);
  return g;
}

}  // namespace

DistributionView::DistributionView(QWidget* parent)
    : ModelChartView(QStringLiteral("distribution"), QStringLiteral("Residual distribution"),
                     parent) {
  layer_ = add_combo("Layer", "layer");
  stream_ = add_combo("Stream", "stream");
  stream_->addItems({"K", "V"});
  threshold_ = add_combo("Outlier rate at", "threshold");
  for (double t : sessions::kOutlierThresholds)
    threshold_->addItem(QStringLiteral("|s| > %1").arg(t));
  threshold_->setCurrentIndex(1);
  controls()->addStretch(1);
  connect(layer_, &QComboBox::activated, this, [this](int) {
    want_layer_ = layer_->currentData().toInt();
    rebuild();
    emit select_requested(want_layer_, snapshot_->selection.kv_head);
  });
  connect(stream_, &QComboBox::currentIndexChanged, this, [this](int) { rebuild(); });
  connect(threshold_, &QComboBox::currentIndexChanged, this, [this](int) { rebuild(); });
  set_snapshot(std::make_shared<const Snapshot>());
}

void DistributionView::snapshot_changed() {
  want_layer_ = snapshot_->selection.layer;
  rebuild();
}

void DistributionView::rebuild() {
  model_ = build_distribution_model(*snapshot_, want_layer_, stream_->currentIndex() == 0,
                                    threshold_->currentIndex());
  has_baseline_ = snapshot_->baseline && snapshot_->baseline->run && model_.layer >= 0;
  baseline_ = DistributionModel{};
  baseline_name_.clear();
  if (has_baseline_) {
    baseline_name_ = "baseline #" + std::to_string(snapshot_->baseline->id);
    baseline_ =
        build_distribution_model(*snapshot_of_entry(*snapshot_, *snapshot_->baseline), model_.layer,
                                 stream_->currentIndex() == 0, threshold_->currentIndex());
  }
  fill_numbers(layer_, model_.layers, model_.layer);
  draw();
}

std::string DistributionView::csv_text() const {
  std::string out = distribution_csv(model_);
  if (!has_baseline_) return out;
  std::vector<PlotSeries> all = concat_series(baseline_.main_series(), baseline_.side_series());
  for (auto& s : all) s.name = baseline_name_ + " " + s.name;
  const std::string b = series_csv("x", "y", all);
  return b.empty() ? out : out + b.substr(b.find('\n') + 1);
}

void DistributionView::on_plot_clicked(const QPointF& pos) {
  // The lower panel's x is the layer: a click selects it in every view.
  const QList<QCPAxisRect*> rects = plot()->axisRects();
  if (rects.size() < 2 || !rects[1]->rect().contains(pos.toPoint())) return;
  const double x = rects[1]->axis(QCPAxis::atBottom)->pixelToCoord(pos.x());
  for (int l : model_.layers)
    if (std::fabs(l - x) <= 0.5) {
      emit select_requested(l, snapshot_->selection.kv_head);
      return;
    }
}

void DistributionView::draw() {
  QCustomPlot* p = begin_draw(model_.title, QString::fromStdString(model_.note),
                              "scaled residual s = y/‖r‖ (unit variance per coordinate, K§5.10)",
                              "density (1 / unit of s)");
  if (!has_content()) {
    end_empty_draw();
    return;
  }
  // Main panel: histogram, N(0,1), centroids, ±T.
  const std::vector<PlotSeries> main = model_.main_series();
  double top = 0.45;
  for (const PlotSeries& s : main)
    if (s.name == "residual density" || s.name == "N(0,1) density")
      for (double y : s.y) top = std::max(top, y);
  top *= 1.12;
  for (const PlotSeries& s : main) {
    if (s.name == "residual density") {
      auto* bars = new QCPBars(p->xAxis, p->yAxis);
      bars->setName("residual density (" +
                    QString::number(static_cast<qulonglong>(model_.histogram->values)) +
                    " values)");
      bars->setData(qvec(s.x), qvec(s.y), true);
      bars->setWidth(model_.histogram->edges[1] - model_.histogram->edges[0]);
      bars->setPen(QPen(QColor(0, 114, 178, 160), 0.5));
      bars->setBrush(QColor(0, 114, 178, 110));
    } else if (s.name == "N(0,1) density") {
      QCPGraph* g = p->addGraph(p->xAxis, p->yAxis);
      g->setName("N(0,1) density (reference)");
      g->setData(qvec(s.x), qvec(s.y), true);
      g->setPen(QPen(QColor(30, 30, 30), 1.6));
    } else if (s.name.rfind("Lloyd-Max", 0) == 0) {
      vertical_lines(p->xAxis, p->yAxis, s, top, QPen(QColor(0, 158, 115), 1.4, Qt::DashLine));
    } else {
      vertical_lines(p->xAxis, p->yAxis, s, top, QPen(QColor(213, 40, 0), 2.0, Qt::DashDotLine));
    }
  }
  if (has_baseline_ && baseline_.has_histogram()) {
    // The baseline's histogram of the same layer and stream as a step outline.
    for (const PlotSeries& s : baseline_.main_series()) {
      if (s.name != "residual density") continue;
      QCPGraph* g = p->addGraph(p->xAxis, p->yAxis);
      g->setName(
          QString::fromStdString(baseline_name_ + " residual density (" + baseline_.codec + ")"));
      g->setData(qvec(s.x), qvec(s.y), true);
      g->setLineStyle(QCPGraph::lsStepCenter);
      g->setPen(QPen(QColor(200, 30, 30), 1.6, Qt::DashLine));
      for (double y : s.y) top = std::max(top, y * 1.12);
    }
  }
  p->xAxis->setRange(-kDistributionRange, kDistributionRange);
  p->yAxis->setRange(0, top);
  if (!model_.has_histogram()) {
    p->legend->setVisible(false);
    auto* text = new QCPItemText(p);
    text->position->setType(QCPItemPosition::ptAxisRectRatio);
    text->position->setCoords(0.5, 0.5);
    text->setText(wrap_text(QString::fromStdString(model_.note), 90));
    text->setColor(QColor(120, 120, 120));
  }

  // Lower panel: kurtosis bars (left) and outlier rates (right) per layer.
  if (!model_.has_side()) {
    end_draw();
    return;
  }
  QCPLegend* legend = nullptr;
  QCPAxisRect* lower = add_lower_panel(p, 0.7, &legend);
  QCPAxis* lx = lower->axis(QCPAxis::atBottom);
  QCPAxis* ly = lower->axis(QCPAxis::atLeft);
  QCPAxis* ly2 = lower->axis(QCPAxis::atRight);
  style_axis(lx, "layer");
  style_axis(ly, "excess kurtosis");
  set_integer_axis(lx);
  auto* group = new QCPBarsGroup(p);
  double lo = 1e300, hi = -1e300, kmin = 0, kmax = 0, rmax = model_.gaussian_rate;
  bool has_rate = false;
  int ci = 0;
  for (const PlotSeries& s : model_.side_series()) {
    if (s.name.rfind("Gaussian", 0) != 0) {
      for (double x : s.x) {
        lo = std::min(lo, x);
        hi = std::max(hi, x);
      }
    }
    if (s.name.find("kurtosis") != std::string::npos) {
      auto* bars = new QCPBars(lx, ly);
      bars->setName(QString::fromStdString(s.name));
      bars->setData(qvec(s.x), qvec(s.y), true);
      bars->setWidth(0.35);
      bars->setBarsGroup(group);
      const QColor c = chart_color(ci == 0 ? 0 : 4);
      bars->setPen(QPen(c.darker(120), 0.8));
      bars->setBrush(QColor(c.red(), c.green(), c.blue(), 150));
      for (double y : s.y)
        if (std::isfinite(y)) {
          kmin = std::min(kmin, y);
          kmax = std::max(kmax, y);
        }
      bars->removeFromLegend();
      bars->addToLegend(legend);
      ++ci;
    } else {
      has_rate = true;
      QCPGraph* g = p->addGraph(lx, ly2);
      g->setName(QString::fromStdString(s.name));
      g->setData(qvec(s.x), qvec(s.y), true);
      if (s.name.rfind("Gaussian", 0) == 0) {
        g->setPen(QPen(QColor(110, 110, 110), 1.2, Qt::DotLine));
      } else {
        const QColor c = s.name[0] == 'K' ? chart_color(0).darker(130) : chart_color(1);
        g->setPen(QPen(c, 1.6));
        g->setScatterStyle(QCPScatterStyle(
            s.name[0] == 'K' ? QCPScatterStyle::ssCircle : QCPScatterStyle::ssSquare, c, Qt::white,
            7));
      }
      for (double y : s.y) rmax = std::max(rmax, y);
      g->removeFromLegend();
      g->addToLegend(legend);
    }
  }
  if (has_baseline_) {
    for (const PlotSeries& s : baseline_.side_series()) {
      if (s.name.find("outlier rate") == std::string::npos) continue;
      has_rate = true;
      QCPGraph* g = p->addGraph(lx, ly2);
      g->setName(QString::fromStdString(baseline_name_ + " " + s.name));
      g->setData(qvec(s.x), qvec(s.y), true);
      const QColor c = s.name[0] == 'K' ? chart_color(0).darker(130) : chart_color(1);
      g->setPen(QPen(c.lighter(140), 1.3, Qt::DashLine));
      g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCross, c.lighter(140), 6));
      for (double y : s.y) rmax = std::max(rmax, y);
      g->removeFromLegend();
      g->addToLegend(legend);
    }
  }
  center_legend_row(legend);
  lx->setRange(lo - 0.6, hi + 0.6);
  if (model_.layer >= 0) {
    // The layer of the histogram (the linked selection) framed in the per-layer panel.
    QCPItemRect* band = add_band(p, lower, model_.layer - 0.45, model_.layer + 0.45);
    band->setPen(QPen(QColor(200, 0, 0, 120), 1.0, Qt::DotLine));
    band->setBrush(QColor(200, 0, 0, 18));
  }
  ly->setRange(std::min(0.0, kmin * 1.15), std::max(1.0, kmax * 1.15));
  if (has_rate) {
    style_axis(ly2, "outlier rate (fraction)");
    ly2->setRange(0, rmax * 1.25);
    ly2->grid()->setVisible(false);
  }
  end_draw();
}

}  // namespace kvwb::views
