#include "views/sigma_q_view.h"

#include <qcustomplot.h>

#include <algorithm>
#include <cmath>

#include "views/chart_style.h"

namespace kvwb::views {

namespace {

const QCPScatterStyle::ScatterShape kHeadShapes[] = {
    QCPScatterStyle::ssCircle,  QCPScatterStyle::ssSquare,           QCPScatterStyle::ssTriangle,
    QCPScatterStyle::ssDiamond, QCPScatterStyle::ssTriangleInverted, QCPScatterStyle::ssStar};

QVector<double> qvec(const std::vector<double>& v) { return QVector<double>(v.begin(), v.end()); }

}  // namespace

SigmaQView::SigmaQView(QWidget* parent)
    : ModelChartView(QStringLiteral("sigma-q"), QStringLiteral("Σ_q conditioning"), parent) {
  set_snapshot(std::make_shared<const Snapshot>());
}

void SigmaQView::snapshot_changed() {
  model_ = build_sigma_q_model(*snapshot_);
  draw();
}

void SigmaQView::on_plot_clicked(const QPointF& pos) {
  for (QCPAxisRect* r : plot()->axisRects()) {
    if (!r->rect().contains(pos.toPoint())) continue;
    const double x = r->axis(QCPAxis::atBottom)->pixelToCoord(pos.x());
    for (const SigmaQLayer& l : model_.layers)
      if (std::fabs(l.layer - x) <= 0.5) {
        emit select_requested(l.layer, std::max(0, snapshot_->selection.kv_head));
        return;
      }
  }
}

void SigmaQView::draw() {
  QCustomPlot* p = begin_draw(model_.title, QString::fromStdString(model_.note), "",
                              "cond(Σ_reg) (dimensionless)");
  if (model_.empty()) {
    end_empty_draw();
    return;
  }
  set_log_axis(p->yAxis);
  set_integer_axis(p->xAxis);
  QCPLegend* lower_legend = nullptr;
  QCPAxisRect* lower = add_lower_panel(p, 1.0, &lower_legend);
  QCPAxis* lx = lower->axis(QCPAxis::atBottom);
  QCPAxis* ly = lower->axis(QCPAxis::atLeft);
  style_axis(lx, "layer");
  style_axis(ly, "max|L| (largest |entry| of L)");
  set_integer_axis(lx);

  double lo = 1e300, hi = -1e300, cmin = 0, cmax = 0, lmax = 0;
  for (const SigmaQLayer& l : model_.layers) {
    if (!l.has_q) continue;
    lo = std::min<double>(lo, l.layer);
    hi = std::max<double>(hi, l.layer);
    for (const SigmaQHead& h : l.heads) {
      if (h.cond_reg > 0) {
        cmin = cmin == 0 ? h.cond_reg : std::min(cmin, h.cond_reg);
        cmax = std::max(cmax, h.cond_reg);
      }
      lmax = std::max(lmax, h.max_abs_L);
    }
    lmax = std::max(lmax, l.m_l);
  }
  lmax = std::max(lmax, model_.threshold);

  int hi_idx = 0;
  for (const PlotSeries& s : model_.cond_series()) {
    const QColor c = chart_color(hi_idx);
    QCPGraph* g = p->addGraph(p->xAxis, p->yAxis);
    g->setName(QString::fromStdString(s.name));
    g->setData(qvec(s.x), qvec(s.y), true);
    g->setPen(QPen(c, 1.2));
    g->setScatterStyle(QCPScatterStyle(kHeadShapes[hi_idx % 6], c, Qt::white, 7));
    ++hi_idx;
  }
  hi_idx = 0;
  for (const PlotSeries& s : model_.max_l_series()) {
    QCPGraph* g = p->addGraph(lx, ly);
    g->setName(QString::fromStdString(s.name));
    g->setData(qvec(s.x), qvec(s.y), true);
    if (s.name.rfind("max|L| kv head", 0) == 0) {
      const QColor c = chart_color(hi_idx);
      g->setLineStyle(QCPGraph::lsNone);
      g->setScatterStyle(QCPScatterStyle(kHeadShapes[hi_idx % 6], c, Qt::white, 7));
      ++hi_idx;
    } else if (s.name.rfind("m_l", 0) == 0) {
      g->setPen(QPen(QColor(40, 40, 40), 1.6));
    } else if (s.name.rfind("skip threshold", 0) == 0) {
      g->setPen(QPen(QColor(200, 30, 30), 1.8, Qt::DashLine));
    } else if (s.name.rfind("median", 0) == 0) {
      g->setPen(QPen(QColor(130, 130, 130), 1.2, Qt::DotLine));
    } else {  // auto-skipped
      g->setLineStyle(QCPGraph::lsNone);
      g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCross, QPen(QColor(200, 30, 30), 2.5),
                                         Qt::NoBrush, 14));
    }
    g->removeFromLegend();
    g->addToLegend(lower_legend);
  }
  center_legend_row(lower_legend);
  // Skipped / user-skipped layers: a shaded band over both panels and a label.
  for (const SigmaQLayer& l : model_.layers) {
    if (!l.skip && !l.user_skip) continue;
    for (QCPAxisRect* r : {p->axisRect(0), lower}) {
      QCPItemRect* band = add_band(p, r, l.layer - 0.4, l.layer + 0.4);
      band->setPen(Qt::NoPen);
      band->setBrush(QColor(220, 40, 40, 28));
    }
    auto* text = new QCPItemText(p);
    text->setClipAxisRect(lower);
    text->position->setAxes(lx, ly);
    text->position->setCoords(l.layer, l.m_l);
    text->setPositionAlignment(Qt::AlignHCenter | Qt::AlignBottom);
    text->setPadding(QMargins(2, 2, 2, 8));
    text->setColor(QColor(180, 20, 20));
    text->setText(l.skip ? QStringLiteral("skip (×%1)").arg(l.skip_ratio, 0, 'f', 2)
                         : QStringLiteral("user skip"));
  }
  const QString thr =
      QStringLiteral("%1 × median = %2").arg(model_.factor).arg(model_.threshold, 0, 'g', 4);
  auto* tl = new QCPItemText(p);
  tl->setClipAxisRect(lower);
  tl->position->setAxes(lx, ly);
  tl->position->setCoords(lo - 0.45, model_.threshold);
  tl->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
  tl->setColor(QColor(200, 30, 30));
  tl->setText(thr);

  // The selected layer (linked selection): a dotted frame over both panels.
  if (snapshot_->selection.layer >= 0) {
    const int layer = snapshot_->selection.layer;
    for (QCPAxisRect* r : {p->axisRect(0), lower}) {
      QCPItemRect* band = add_band(p, r, layer - 0.3, layer + 0.3);
      band->setPen(QPen(QColor(200, 0, 0, 120), 1.0, Qt::DotLine));
      band->setBrush(QColor(200, 0, 0, 18));
    }
  }
  p->xAxis->setRange(lo - 0.5, hi + 0.5);
  lx->setRange(lo - 0.5, hi + 0.5);
  if (cmax > 0) set_log_range(p->yAxis, cmin, cmax, 1.5);
  ly->setRange(0, lmax * 1.2);
  end_draw();
}

}  // namespace kvwb::views
