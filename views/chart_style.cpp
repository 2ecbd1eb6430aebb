#include "views/chart_style.h"

#include <qcustomplot.h>

#include <QFont>
#include <QToolTip>
#include <algorithm>
#include <cmath>

namespace kvwb::views {

QColor chart_color(int i) {
  static const QColor kColors[] = {QColor(0, 114, 178),   QColor(213, 94, 0),  QColor(0, 158, 115),
                                   QColor(204, 121, 167), QColor(230, 159, 0), QColor(86, 180, 233),
                                   QColor(120, 120, 120), QColor(240, 228, 66)};
  return kColors[static_cast<size_t>(i) % (sizeof kColors / sizeof kColors[0])];
}

QCPTextElement* setup_chart(QCustomPlot* plot) {
  plot->setBackground(Qt::white);
  plot->setAntialiasedElements(QCP::aeAll);
  plot->setNoAntialiasingOnDrag(true);
  plot->plotLayout()->insertRow(0);
  QFont tf = plot->font();
  tf.setPointSizeF(11);
  tf.setBold(true);
  auto* title = new QCPTextElement(plot, QString(), tf);
  plot->plotLayout()->addElement(0, 0, title);
  plot->legend->setVisible(true);
  QFont lf = plot->font();
  lf.setPointSizeF(8.5);
  plot->legend->setFont(lf);
  plot->legend->setBrush(QColor(255, 255, 255, 220));
  plot->legend->setBorderPen(QPen(QColor(180, 180, 180)));
  plot->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
  return title;
}

void clear_chart(QCustomPlot* plot) {
  plot->clearPlottables();
  plot->clearItems();
  QCPLayoutGrid* grid = plot->plotLayout();
  // Rows: 0 = title, 1 = main axis rect, 2.. = extra panels.
  while (grid->rowCount() > 2) {
    grid->removeAt(grid->rowColToIndex(grid->rowCount() - 1, 0));
    grid->simplify();
  }
  for (QCPAxis* a : plot->axisRect()->axes()) {
    set_linear_axis(a);
    a->setLabel(QString());
    a->setVisible(a->axisType() == QCPAxis::atLeft || a->axisType() == QCPAxis::atBottom);
  }
  plot->legend->setVisible(true);
  plot->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignRight);
}

void style_axis(QCPAxis* axis, const QString& label) {
  QFont f = axis->parentPlot()->font();
  f.setPointSizeF(9.5);
  axis->setLabel(label);
  axis->setLabelFont(f);
  f.setPointSizeF(8.5);
  axis->setTickLabelFont(f);
  axis->setVisible(true);
  axis->grid()->setPen(QPen(QColor(225, 225, 225), 0, Qt::DotLine));
  axis->grid()->setZeroLinePen(Qt::NoPen);
}

void set_log_axis(QCPAxis* axis) {
  axis->setScaleType(QCPAxis::stLogarithmic);
  QSharedPointer<QCPAxisTickerLog> ticker(new QCPAxisTickerLog);
  ticker->setLogBase(10);
  ticker->setSubTickCount(8);
  axis->setTicker(ticker);
  axis->setNumberFormat("eb");
  axis->setNumberPrecision(0);
}

void set_linear_axis(QCPAxis* axis) {
  axis->setScaleType(QCPAxis::stLinear);
  axis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
  axis->setSubTicks(true);
  axis->setNumberFormat("gb");
  axis->setNumberPrecision(6);
}

void set_integer_axis(QCPAxis* axis) {
  axis->setScaleType(QCPAxis::stLinear);
  QSharedPointer<QCPAxisTickerFixed> ticker(new QCPAxisTickerFixed);
  ticker->setTickStep(1.0);
  ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
  axis->setTicker(ticker);
  axis->setSubTicks(false);
  axis->setNumberFormat("f");
  axis->setNumberPrecision(0);
}

QCPAxisRect* add_lower_panel(QCustomPlot* plot, double stretch, QCPLegend** legend) {
  QCPLayoutGrid* grid = plot->plotLayout();
  auto* rect = new QCPAxisRect(plot);
  grid->addElement(grid->rowCount(), 0, rect);
  const int rect_row = grid->rowCount() - 1;
  QCPMarginGroup* group = plot->axisRect()->marginGroup(QCP::msLeft);
  if (!group) group = new QCPMarginGroup(plot);
  plot->axisRect()->setMarginGroup(QCP::msLeft | QCP::msRight, group);
  rect->setMarginGroup(QCP::msLeft | QCP::msRight, group);
  for (QCPAxis* a : rect->axes()) {
    a->setLayer("axes");
    a->grid()->setLayer("grid");
    a->setVisible(a->axisType() == QCPAxis::atLeft || a->axisType() == QCPAxis::atBottom);
  }
  const bool inset_legend = plot->legend->visible();
  QCPLegend* lg = add_legend_row(plot);
  plot->legend->setVisible(inset_legend);
  grid->setRowSpacing(2);
  grid->setRowStretchFactor(0, 0.001);
  grid->setRowStretchFactor(1, 1.0);
  grid->setRowStretchFactor(rect_row, stretch);
  if (legend) *legend = lg;
  return rect;
}

QCPLegend* add_legend_row(QCustomPlot* plot) {
  QCPLayoutGrid* grid = plot->plotLayout();
  auto* lg = new QCPLegend;
  grid->addElement(grid->rowCount(), 0, lg);
  lg->setLayer("legend");
  lg->setFont(plot->legend->font());
  lg->setBrush(Qt::NoBrush);
  lg->setBorderPen(Qt::NoPen);
  lg->setFillOrder(QCPLayoutGrid::foColumnsFirst);
  lg->setWrap(6);
  lg->setMargins(QMargins(4, 2, 4, 4));
  grid->setRowStretchFactor(grid->rowCount() - 1, 0.001);
  plot->legend->setVisible(false);
  return lg;
}

void fit_legend_row(QCPLegend* legend, int available_width) {
  const int items = legend->itemCount();
  if (items == 0) return;
  int widest = 0;
  for (int i = 0; i < items; ++i)
    if (QCPAbstractLegendItem* it = legend->item(i))
      widest = std::max(widest, it->minimumOuterSizeHint().width());
  const int spacing = 14;
  const int usable = std::max(1, available_width - 24);
  const int per_row = std::clamp(usable / std::max(1, widest + spacing), 1, items);
  legend->setWrap(per_row);
  legend->setFillOrder(QCPLayoutGrid::foColumnsFirst, true);
}

void center_legend_row(QCPLegend* legend) {
  fit_legend_row(legend, legend->parentPlot()->width());
  const int n = legend->columnCount();
  if (n == 0 || legend->itemCount() == 0) return;
  legend->insertColumn(0);
  legend->insertColumn(legend->columnCount());
  QList<double> factors;
  factors << 1.0;
  for (int i = 0; i < n; ++i) factors << 0.001;
  factors << 1.0;
  legend->setColumnStretchFactors(factors);
  legend->setColumnSpacing(14);
}

void set_log_range(QCPAxis* axis, double lo, double hi, double pad) {
  double a = std::floor(std::log10(lo / pad)), b = std::ceil(std::log10(hi * pad));
  if (b - a < 1) b = a + 1;
  axis->setRange(std::pow(10.0, a), std::pow(10.0, b));
}

QString wrap_text(const QString& text, int width) {
  QString out, line;
  for (const QString& word : text.split(' ', Qt::SkipEmptyParts)) {
    if (!line.isEmpty() && line.size() + 1 + word.size() > width) {
      out += line + '\n';
      line.clear();
    }
    line += (line.isEmpty() ? QString() : QStringLiteral(" ")) + word;
  }
  return out + line;
}

namespace {

QString number_text(double v) {
  if (std::isnan(v)) return QStringLiteral("–");
  return QString::number(v, 'g', 6);
}

}  // namespace

QCPItemRect* add_band(QCustomPlot* plot, QCPAxisRect* rect, double x0, double x1) {
  auto* band = new QCPItemRect(plot);
  band->setClipAxisRect(rect);
  for (QCPItemPosition* pos : {band->topLeft, band->bottomRight}) {
    pos->setAxes(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
    pos->setAxisRect(rect);
    pos->setTypeY(QCPItemPosition::ptAxisRectRatio);
  }
  band->topLeft->setCoords(x0, 0);
  band->bottomRight->setCoords(x1, 1);
  return band;
}

void install_hover_tooltips(QCustomPlot* plot) {
  QObject::connect(plot, &QCustomPlot::mouseMove, plot, [plot](QMouseEvent* ev) {
    const QPointF pos = ev->position();
    double best = 10.0;
    QString text;
    for (int i = 0; i < plot->plottableCount(); ++i) {
      QCPAbstractPlottable* p = plot->plottable(i);
      if (!p->visible() || !p->realVisibility()) continue;
      QCPPlottableInterface1D* data = p->interface1D();
      if (!data) continue;
      const bool bars = qobject_cast<QCPBars*>(p) != nullptr;
      for (int k = 0; k < data->dataCount(); ++k) {
        const double key = data->dataMainKey(k), value = data->dataMainValue(k);
        if (std::isnan(key)) continue;
        const double shown = std::isnan(value) ? p->valueAxis()->range().lower : value;
        const QPointF px = p->coordsToPixels(key, shown);
        double d = std::hypot(px.x() - pos.x(), px.y() - pos.y());
        const bool vertical = p->property("kvwb_vertical").toBool();
        if (vertical && p->keyAxis()->axisRect()->rect().contains(pos.toPoint())) {
          d = std::fabs(px.x() - pos.x()) + 2.0;  // real data points win over position marks
        }
        if (bars) {
          const QPointF base = p->coordsToPixels(key, p->valueAxis()->range().lower);
          const double lo = std::min(px.y(), base.y()), hi = std::max(px.y(), base.y());
          if (pos.y() >= lo && pos.y() <= hi) d = std::fabs(px.x() - pos.x());
        }
        if (d < best && vertical) {
          best = d;
          text = QStringLiteral("%1\n%2 = %3")
                     .arg(p->name(),
                          p->keyAxis()->label().isEmpty() ? QStringLiteral("x")
                                                          : p->keyAxis()->label(),
                          number_text(key));
        } else if (d < best) {
          best = d;
          text = QStringLiteral("%1\n%2 = %3\n%4 = %5")
                     .arg(p->name(),
                          p->keyAxis()->label().isEmpty() ? QStringLiteral("x")
                                                          : p->keyAxis()->label(),
                          number_text(key),
                          p->valueAxis()->label().isEmpty() ? QStringLiteral("y")
                                                            : p->valueAxis()->label(),
                          number_text(value));
        }
      }
    }
    if (text.isEmpty()) {
      QToolTip::hideText();
    } else {
      QToolTip::showText(ev->globalPosition().toPoint(), text, plot);
    }
  });
}

}  // namespace kvwb::views
