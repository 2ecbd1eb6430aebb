#include "views/layer_error_view.h"

#include <qcustomplot.h>

#include <algorithm>
#include <cmath>

#include "views/chart_style.h"
#include "views/models/comparison_model.h"

namespace kvwb::views {

namespace {

QVector<double> qvec(const std::vector<double>& v) { return QVector<double>(v.begin(), v.end()); }

}  // namespace

LayerErrorView::LayerErrorView(QWidget* parent)
    : ModelChartView(QStringLiteral("layer-error"), QStringLiteral("Per-layer error"), parent) {
  metric_ = add_combo("Metric", "metric");
  for (auto m :
       {LayerErrorMetric::kRelMse, LayerErrorMetric::kAttnOutRelErr, LayerErrorMetric::kAttnKl})
    metric_->addItem(QString::fromStdString(layer_error_metric_name(m)), static_cast<int>(m));
  controls()->addStretch(1);
  connect(metric_, &QComboBox::currentIndexChanged, this, [this](int) { rebuild(); });
  set_snapshot(std::make_shared<const Snapshot>());
}

void LayerErrorView::rebuild() {
  const auto metric = static_cast<LayerErrorMetric>(metric_->currentData().toInt());
  model_ = build_layer_error_model(*snapshot_, metric);
  baseline_ = LayerErrorModel{};
  delta_.clear();
  baseline_name_.clear();
  if (snapshot_->baseline && snapshot_->baseline->run && snapshot_->run) {
    baseline_ =
        build_layer_error_model(*snapshot_of_entry(*snapshot_, *snapshot_->baseline), metric);
    delta_ = layer_error_delta_series(model_, baseline_);
    baseline_name_ = "baseline #" + std::to_string(snapshot_->baseline->id);
  }
  draw();
}

int LayerErrorView::layer_at(double x) const {
  int best = -1;
  double d = 0.5;
  for (const LayerErrorRow& r : model_.rows)
    if (std::fabs(r.layer - x) <= d) {
      d = std::fabs(r.layer - x);
      best = r.layer;
    }
  return best;
}

void LayerErrorView::on_plot_clicked(const QPointF& pos) {
  // Either panel: the x axis is the layer in both.
  for (QCPAxisRect* r : plot()->axisRects()) {
    if (!r->rect().contains(pos.toPoint())) continue;
    const int layer = layer_at(r->axis(QCPAxis::atBottom)->pixelToCoord(pos.x()));
    if (layer >= 0) emit select_requested(layer, std::max(0, snapshot_->selection.kv_head));
    return;
  }
}

std::string LayerErrorView::csv_text() const {
  std::vector<PlotSeries> all = model_.series();
  for (PlotSeries s : baseline_.series()) {
    if (std::all_of(s.y.begin(), s.y.end(), [](double y) { return std::isnan(y); })) continue;
    s.name = baseline_name_ + " " + s.name;
    all.push_back(std::move(s));
  }
  for (const PlotSeries& s : delta_) all.push_back(s);
  return series_csv("layer", "value", all);
}

void LayerErrorView::draw() {
  QCustomPlot* p = begin_draw(model_.title, QString::fromStdString(model_.note), "layer",
                              model_.metric == LayerErrorMetric::kRelMse
                                  ? "relative MSE = Σ squared error / Σ‖x‖² (dimensionless)"
                              : model_.metric == LayerErrorMetric::kAttnKl
                                  ? "attention KL(π‖π̂) (nats, mean over queries)"
                                  : "attention output relative error (mean over queries)");
  if (model_.empty()) {
    end_empty_draw();
    return;
  }
  set_integer_axis(p->xAxis);
  set_log_axis(p->yAxis);
  const std::vector<PlotSeries> series = model_.series();
  double vmin = 0, vmax = 0, lo = 1e300, hi = -1e300;
  for (const LayerErrorRow& r : model_.rows) {
    lo = std::min<double>(lo, r.layer);
    hi = std::max<double>(hi, r.layer);
  }
  for (const PlotSeries& s : series)
    for (double y : s.y)
      if (std::isfinite(y) && y > 0) {
        vmin = vmin == 0 ? y : std::min(vmin, y);
        vmax = std::max(vmax, y);
      }
  if (vmax <= 0) vmin = 1e-6, vmax = 1.0;
  set_log_range(p->yAxis, vmin, vmax, 3.0);
  const double mark_low = p->yAxis->range().lower * 1.6, mark_high = p->yAxis->range().upper / 1.6;
  for (const PlotSeries& s : series) {
    QCPGraph* g = p->addGraph(p->xAxis, p->yAxis);
    g->setName(QString::fromStdString(s.name));
    const bool marks = std::all_of(s.y.begin(), s.y.end(), [](double y) { return std::isnan(y); });
    if (!marks) {
      g->setData(qvec(s.x), qvec(s.y), true);
      const int ci = s.name[0] == 'K' && s.name[1] == '+' ? 6 : s.name[0] == 'K' ? 0 : 1;
      const QColor c = chart_color(ci);
      g->setPen(QPen(c, 1.6));
      g->setScatterStyle(QCPScatterStyle(ci == 0   ? QCPScatterStyle::ssCircle
                                         : ci == 1 ? QCPScatterStyle::ssSquare
                                                   : QCPScatterStyle::ssDiamond,
                                         c, Qt::white, 7));
      continue;
    }
    g->setProperty("kvwb_vertical", true);
    g->setLineStyle(QCPGraph::lsNone);
    if (s.name == "boundary (bf16)") {
      // Shaded band per boundary layer; the graph only carries the legend entry and the hover.
      g->setData(qvec(s.x), QVector<double>(static_cast<int>(s.x.size()), mark_low));
      g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssSquare, QColor(150, 150, 150),
                                         QColor(200, 200, 200), 11));
      g->setName("boundary layer (both streams bf16)");
      for (double x : s.x) {
        QCPItemRect* band = add_band(p, p->axisRect(), x - 0.45, x + 0.45);
        band->setPen(Qt::NoPen);
        band->setBrush(QColor(150, 150, 150, 55));
        auto* label = new QCPItemText(p);
        label->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
        label->position->setCoords(x, 0.02);
        label->setPositionAlignment(Qt::AlignHCenter | Qt::AlignTop);
        label->setText("bf16");
        label->setColor(QColor(90, 90, 90));
      }
    } else if (s.name == "K failed" || s.name == "V failed") {
      g->setData(qvec(s.x), QVector<double>(static_cast<int>(s.x.size()), mark_low));
      g->setScatterStyle(QCPScatterStyle(
          QCPScatterStyle::ssCross,
          QPen(s.name[0] == 'K' ? QColor(200, 20, 20) : QColor(150, 0, 90), 2.5), Qt::NoBrush, 13));
      for (const LayerErrorRow& r : model_.rows) {
        const LayerErrorStream& st = s.name[0] == 'K' ? r.k : r.v;
        if (!st.failed) continue;
        auto* label = new QCPItemText(p);
        label->position->setCoords(r.layer, mark_low);
        label->setPositionAlignment(Qt::AlignHCenter | Qt::AlignBottom);
        label->setPadding(QMargins(0, 0, 0, 10));
        label->setColor(QColor(200, 20, 20));
        label->setText(QString::fromStdString(s.name.substr(0, 1) + " " + st.error_code));
      }
    } else {
      // Whitened (filled) / skip rule (hollow) markers along the top.
      const bool whitened = s.name.rfind("K whitened", 0) == 0;
      g->setData(qvec(s.x), QVector<double>(static_cast<int>(s.x.size()), mark_high));
      g->setScatterStyle(
          QCPScatterStyle(QCPScatterStyle::ssTriangleInverted,
                          QPen(whitened ? QColor(0, 130, 90) : QColor(200, 120, 0), 1.5),
                          whitened ? QBrush(QColor(0, 158, 115)) : QBrush(Qt::white), 9));
    }
  }
  // The baseline (dashed, lighter), its Δ % in a lower panel.
  if (!baseline_.rows.empty()) {
    for (const PlotSeries& s : baseline_.series()) {
      if (std::all_of(s.y.begin(), s.y.end(), [](double y) { return std::isnan(y); })) continue;
      QCPGraph* g = p->addGraph(p->xAxis, p->yAxis);
      g->setName(QString::fromStdString(baseline_name_ + " " + s.name));
      g->setData(qvec(s.x), qvec(s.y), true);
      const int ci = s.name[0] == 'K' && s.name[1] == '+' ? 6 : s.name[0] == 'K' ? 0 : 1;
      const QColor c = chart_color(ci).lighter(130);
      g->setPen(QPen(c, 1.4, Qt::DashLine));
      g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCross, c, 6));
    }
  }
  // The selected layer (linked selection): a light band.
  if (snapshot_->selection.layer >= 0) {
    for (const LayerErrorRow& r : model_.rows) {
      if (r.layer != snapshot_->selection.layer) continue;
      QCPItemRect* band = add_band(p, p->axisRect(), r.layer - 0.3, r.layer + 0.3);
      band->setPen(QPen(QColor(200, 0, 0, 120), 1.0, Qt::DotLine));
      band->setBrush(QColor(200, 0, 0, 22));
      band->setSelectable(false);
    }
  }
  p->xAxis->setRange(lo - 0.6, hi + 0.6);
  QCPLegend* legend = add_legend_row(p);
  for (int i = 0; i < p->plottableCount(); ++i) {
    QCPAbstractPlottable* pl = p->plottable(i);
    if (!p->legend->hasItemWithPlottable(pl)) continue;
    pl->removeFromLegend();
    pl->addToLegend(legend);
  }
  center_legend_row(legend);
  QCPLegend* delta_legend = nullptr;
  if (!delta_.empty()) {
    QCPAxisRect* lower = add_lower_panel(p, 0.45, &delta_legend);
    QCPAxis* lx = lower->axis(QCPAxis::atBottom);
    QCPAxis* ly = lower->axis(QCPAxis::atLeft);
    style_axis(lx, "layer");
    style_axis(ly, QString::fromStdString("Δ vs " + baseline_name_ + " (%)"));
    set_integer_axis(lx);
    lx->setRange(lo - 0.6, hi + 0.6);
    auto* group = new QCPBarsGroup(p);
    double amax = 1.0;
    for (const PlotSeries& s : delta_) {
      auto* bars = new QCPBars(lx, ly);
      bars->setName(QString::fromStdString(s.name) + " (current / baseline − 1)");
      bars->setData(qvec(s.x), qvec(s.y), true);
      bars->setWidth(0.25);
      bars->setBarsGroup(group);
      const int ci = s.name[0] == 'K' && s.name[1] == '+' ? 6 : s.name[0] == 'K' ? 0 : 1;
      const QColor c = chart_color(ci);
      bars->setPen(QPen(c.darker(120), 0.8));
      bars->setBrush(QColor(c.red(), c.green(), c.blue(), 150));
      for (double y : s.y)
        if (std::isfinite(y)) amax = std::max(amax, std::fabs(y));
      bars->removeFromLegend();
      bars->addToLegend(delta_legend);
    }
    ly->setRange(-amax * 1.15, amax * 1.15);
    center_legend_row(delta_legend);
  }
  end_draw();
}

}  // namespace kvwb::views
