#include "views/pareto_view.h"

#include <qcustomplot.h>

#include <QFileInfo>
#include <QMouseEvent>
#include <QSignalBlocker>
#include <QToolTip>
#include <algorithm>
#include <cmath>
#include <map>

#include "base/errors.h"
#include "sessions/config/run_config.h"

namespace kvwb::views {

namespace {

constexpr double kPickRadiusPx = 10.0;

/// Axis title of a metric (all of them are dimensionless losses unless named otherwise).
QString metric_title(const std::string& metric) {
  static const std::map<std::string, QString> names = {
      {"k_rel_mse", "K relative MSE"},
      {"v_rel_mse", "V relative MSE"},
      {"k_whitened_mse", "K whitened MSE"},
      {"attn_kl", "attention KL divergence (nats)"},
      {"attn_out_rel_err", "attention output relative error"},
      {"one_minus_top1", "1 − attention top-1 agreement"},
      {"attention.attn_out_rel_err_pooled", "attention output rel. error (pooled)"},
      {"k.attn_out_rel_err", "attention output rel. error, K only"},
      {"v.attn_out_rel_err", "attention output rel. error, V only"},
      {"e2e.delta_ppl", "end-to-end Δ perplexity (%)"},
      {"e2e.abs_delta_ppl", "end-to-end |Δ perplexity| (%)"},
      {"e2e.kl", "end-to-end next-token KL (nats)"},
      {"e2e.one_minus_top1", "end-to-end 1 − top-1 agreement"},
  };
  const auto it = names.find(metric);
  const QString m = QString::fromStdString(metric);
  return it == names.end() ? m : it->second + "  [" + m + "]";
}

QColor family_color(const std::string& family, int index) {
  static const std::map<std::string, QColor> fixed = {
      {"Kakeya-PCA", QColor(31, 119, 180)}, {"Besicovitch", QColor(214, 39, 40)},
      {"TurboQuant", QColor(44, 160, 44)},  {"ggml quants", QColor(255, 127, 14)},
      {"KIVI", QColor(148, 103, 189)},      {"FP8 E4M3", QColor(140, 86, 75)},
      {"bf16", QColor(127, 127, 127)},
  };
  static const QColor extra[] = {QColor(227, 119, 194), QColor(188, 189, 34),
                                 QColor(23, 190, 207),  QColor(100, 100, 100),
                                 QColor(174, 199, 232), QColor(255, 152, 150)};
  const auto it = fixed.find(family);
  if (it != fixed.end()) return it->second;
  return extra[static_cast<size_t>(index) % (sizeof extra / sizeof extra[0])];
}

QCPScatterStyle::ScatterShape family_shape(int index) {
  static const QCPScatterStyle::ScatterShape shapes[] = {QCPScatterStyle::ssDisc,
                                                         QCPScatterStyle::ssSquare,
                                                         QCPScatterStyle::ssTriangle,
                                                         QCPScatterStyle::ssDiamond,
                                                         QCPScatterStyle::ssTriangleInverted,
                                                         QCPScatterStyle::ssCross,
                                                         QCPScatterStyle::ssPlus,
                                                         QCPScatterStyle::ssStar,
                                                         QCPScatterStyle::ssCircle};
  return shapes[static_cast<size_t>(index) % (sizeof shapes / sizeof shapes[0])];
}

}  // namespace

ParetoView::ParetoView(QWidget* parent) : ChartView(parent) {
  sweep_label_ = new QLabel("Sweep:", this);
  sweep_combo_ = new QComboBox(this);
  sweep_combo_->setObjectName("pareto.sweep");
  sweep_combo_->setToolTip("Which sweep of the session to plot");
  controls()->addWidget(sweep_label_);
  controls()->addWidget(sweep_combo_);
  controls()->addWidget(new QLabel("Quality metric (y):", this));
  metric_combo_ = new QComboBox(this);
  metric_combo_->setObjectName("pareto.metric");
  metric_combo_->setToolTip(
      "Quality-loss metric on the y axis (lower is better); only metrics present in the sweep");
  metric_combo_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
  controls()->addWidget(metric_combo_);
  controls()->addStretch(1);
  sweep_label_->setVisible(false);
  sweep_combo_->setVisible(false);

  connect(sweep_combo_, &QComboBox::activated, this,
          [this](int index) { emit sweep_requested(index); });
  connect(metric_combo_, &QComboBox::activated, this, [this](int index) {
    set_metric(metric_combo_->itemData(index).toString().toStdString());
  });

  QCustomPlot* p = plot();
  p->plotLayout()->insertRow(0);
  title_ = new QCPTextElement(p, "Pareto frontier", QFont(font().family(), 11, QFont::Bold));
  p->plotLayout()->addElement(0, 0, title_);
  p->legend->setVisible(true);
  // Legend under the plot, four entries a row, so it never covers points.
  p->axisRect()->insetLayout()->take(p->legend);
  p->plotLayout()->addElement(2, 0, p->legend);
  p->plotLayout()->setRowStretchFactor(2, 0.001);
  p->legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
  p->legend->setWrap(4);
  p->legend->setIconSize(28, 24);
  p->legend->setFont(QFont(font().family(), 9));
  p->legend->setBorderPen(Qt::NoPen);
  p->legend->setMargins(QMargins(4, 2, 4, 2));
  p->xAxis->setLabel("compression ratio vs bf16 (×, higher is better)");
  p->xAxis2->setVisible(true);
  p->xAxis2->setTicks(false);
  p->xAxis2->setTickLabels(false);
  p->yAxis2->setVisible(true);
  p->yAxis2->setTicks(false);
  p->yAxis2->setTickLabels(false);
  p->setMouseTracking(true);
  connect(p, &QCustomPlot::mouseMove, this, &ParetoView::on_mouse_move);
  connect(p, &QCustomPlot::mousePress, this, &ParetoView::on_mouse_press);
  set_note("no sweep yet — Sweep… (Ctrl+Shift+S) runs one");
}

void ParetoView::set_snapshot(SnapshotPtr snapshot) {
  snapshot_ = std::move(snapshot);
  {
    const QSignalBlocker block(sweep_combo_);
    sweep_combo_->clear();
    if (snapshot_)
      for (const auto& s : snapshot_->sweeps)
        sweep_combo_->addItem(QString::fromStdString(s.name) +
                              QString(" (%1 cells)").arg(s.records.size()));
    const bool several = snapshot_ && snapshot_->sweeps.size() > 1;
    sweep_label_->setVisible(several);
    sweep_combo_->setVisible(several);
    if (snapshot_ && snapshot_->active_sweep >= 0)
      sweep_combo_->setCurrentIndex(snapshot_->active_sweep);
  }
  rebuild();
}

void ParetoView::set_metric(const std::string& metric) {
  metric_ = metric;
  rebuild();
}

void ParetoView::rebuild() {
  model_ = snapshot_ ? build_pareto_model(*snapshot_, metric_) : ParetoModel{};
  if (!model_.metric.empty()) metric_ = model_.metric;
  {
    const QSignalBlocker block(metric_combo_);
    metric_combo_->clear();
    for (const auto& m : model_.metrics) {
      metric_combo_->addItem(QString::fromStdString(m), QString::fromStdString(m));
      metric_combo_->setItemData(metric_combo_->count() - 1, metric_title(m), Qt::ToolTipRole);
    }
    metric_combo_->setCurrentIndex(metric_combo_->findData(QString::fromStdString(model_.metric)));
    metric_combo_->setEnabled(!model_.metrics.empty());
  }

  QCustomPlot* p = plot();
  p->clearGraphs();
  p->clearItems();
  const bool synthetic = snapshot_ && snapshot_->capture.synthetic;
  QString capture =
      snapshot_ ? QFileInfo(QString::fromStdString(snapshot_->capture.path)).fileName() : QString();
  if (model_.points.empty()) {
    title_->setText("Pareto frontier");
    p->xAxis->setRange(1, 4);
    p->yAxis->setScaleType(QCPAxis::stLinear);
    p->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    p->yAxis->setRange(0, 1);
    p->yAxis->setLabel("quality loss (lower is better)");
    p->legend->setVisible(false);
    auto* text = new QCPItemText(p);
    text->position->setType(QCPItemPosition::ptAxisRectRatio);
    text->position->setCoords(0.5, 0.5);
    text->setFont(QFont(font().family(), 11));
    text->setColor(QColor(90, 90, 90));
    if (model_.sweep_name.empty()) {
      text->setText("no sweep yet — Sweep… (Ctrl+Shift+S) runs one");
      set_note("no sweep yet — Sweep… (Ctrl+Shift+S) runs one");
    } else {
      text->setText("no plottable cell in this sweep");
      QString note = "Sweep " + QString::fromStdString(model_.sweep_name) + ": no plottable cell.";
      if (!model_.excluded.empty()) {
        note += " Excluded:";
        for (const auto& e : model_.excluded) note += " " + QString::fromStdString(e) + ";";
      }
      set_note(note);
    }
    p->replot();
    return;
  }

  QString title = "Pareto frontier — " + QString::fromStdString(model_.sweep_name);
  if (!capture.isEmpty()) title += " on " + capture;
  if (synthetic) title += " (SYNTHETIC demo capture)";
  title += QString("  ·  %1 cells, %2 on the frontier")
               .arg(model_.records)
               .arg(model_.result.frontier.size());

  title_->setText(title);
  p->legend->setVisible(true);

  // Ranges with a margin (intervals included); log-y when the values span decades.
  double x0 = model_.points.front().r, x1 = x0, y0 = model_.points.front().q, y1 = y0;
  for (const auto& pt : model_.points) {
    x0 = std::min(x0, pt.r);
    x1 = std::max(x1, pt.r);
    y0 = std::min(y0, pt.q);
    y1 = std::max(y1, pt.q);
  }
  double ylo = y0, yhi = y1;  // with the intervals
  for (const auto& pt : model_.points)
    if (pt.has_ci) {
      yhi = std::max(yhi, pt.q_hi);
      if (!model_.log_y || pt.q_lo > 0) ylo = std::min(ylo, pt.q_lo);
    }
  const double log_floor = y0 / 1.8;  // log-y: an interval reaching 0 is drawn to the axis

  // One scatter graph per codec family, with the metric's 95 % intervals as error bars.
  for (size_t f = 0; f < model_.families.size(); ++f) {
    const std::string& fam = model_.families[f];
    QVector<double> xs, ys, minus, plus;
    for (const auto& pt : model_.points)
      if (pt.family == fam) {
        xs.push_back(pt.r);
        ys.push_back(pt.q);
        const double lo = !pt.has_ci ? pt.q : model_.log_y ? std::max(pt.q_lo, std::min(log_floor, pt.q)) : pt.q_lo;
        minus.push_back(std::max(0.0, pt.q - lo));
        plus.push_back(pt.has_ci ? std::max(0.0, pt.q_hi - pt.q) : 0.0);
      }
    QCPGraph* g = p->addGraph();
    g->setName(QString::fromStdString(fam) + QString(" (%1)").arg(xs.size()));
    g->setLineStyle(QCPGraph::lsNone);
    const QColor c = family_color(fam, static_cast<int>(f));
    QCPScatterStyle style(family_shape(static_cast<int>(f)), 9);
    style.setPen(QPen(c.darker(130), 1.2));
    style.setBrush(QColor(c.red(), c.green(), c.blue(), 170));
    g->setScatterStyle(style);
    g->setData(xs, ys, true);
    if (model_.has_ci) {
      auto* bars = new QCPErrorBars(p->xAxis, p->yAxis);
      bars->removeFromLegend();
      bars->setDataPlottable(g);
      bars->setErrorType(QCPErrorBars::etValueError);
      bars->setData(minus, plus);
      bars->setPen(QPen(c.darker(115), 1.1));
      bars->setWhiskerWidth(7);
      bars->setSymbolGap(9);
    }
  }
  // The frontier (core's, ascending R) as a staircase.
  {
    QVector<double> xs, ys;
    for (const auto& fp : model_.result.frontier) {
      xs.push_back(fp.rep.r);
      ys.push_back(fp.rep.q);
    }
    QCPGraph* g = p->addGraph();
    g->setName("Pareto frontier");
    g->setLineStyle(QCPGraph::lsStepRight);
    g->setPen(QPen(QColor(30, 30, 30), 1.6, Qt::DashLine));
    g->setScatterStyle(
        QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(QColor(30, 30, 30), 1.5), Qt::NoBrush, 14));
    g->setData(xs, ys, true);
    for (const auto& fp : model_.result.frontier) {
      auto* label = new QCPItemText(p);
      label->position->setCoords(fp.rep.r, fp.rep.q);
      label->setPositionAlignment(Qt::AlignLeft | Qt::AlignTop);
      label->setPadding(QMargins(7, 3, 0, 0));
      label->setFont(QFont(font().family(), 8));
      label->setColor(QColor(60, 60, 60));
      label->setText(QString("#%1").arg(fp.rep.id));
    }
  }
  if (model_.current >= 0) {
    const auto& cur = model_.points[static_cast<size_t>(model_.current)];
    QCPGraph* g = p->addGraph();
    g->setName(QString("current configuration (#%1)").arg(cur.id));
    g->setLineStyle(QCPGraph::lsNone);
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(QColor(220, 0, 120), 2.5),
                                       Qt::NoBrush, 22));
    g->setData(QVector<double>{cur.r}, QVector<double>{cur.q}, true);
  }

  const double xpad = std::max((x1 - x0) * 0.06, 0.05);
  p->xAxis->setRange(x0 - xpad, x1 + xpad);
  if (model_.log_y) {
    p->yAxis->setScaleType(QCPAxis::stLogarithmic);
    QSharedPointer<QCPAxisTickerLog> ticker(new QCPAxisTickerLog);
    p->yAxis->setTicker(ticker);
    p->yAxis->setNumberFormat("eb");
    p->yAxis->setNumberPrecision(0);
    p->yAxis->setRange(y0 / 1.8, yhi * 1.8);
  } else {
    p->yAxis->setScaleType(QCPAxis::stLinear);
    p->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    p->yAxis->setNumberFormat("g");
    p->yAxis->setNumberPrecision(4);
    const double ypad = std::max((yhi - ylo) * 0.08, std::abs(yhi) * 0.05 + 1e-12);
    p->yAxis->setRange(ylo - ypad, yhi + ypad);
  }
  p->yAxis->setLabel(metric_title(model_.metric) + (model_.log_y ? ", log scale" : "") +
                     " — lower is better");

  QString note;
  if (synthetic) note += "SYNTHETIC demo capture. ";
  note += "Hover a point for details, click it to load its configuration.";
  if (model_.has_ci) {
    int passages = 0;
    for (const auto& pt : model_.points) passages = std::max(passages, pt.passages);
    note += QString(" Error bars: 95 % paired-bootstrap intervals over %1 passages; dominated cells the "
                    "intervals cannot tell from the frontier: %2.")
                .arg(passages)
                .arg(model_.possibly_on_frontier.size());
  }
  if (!model_.excluded.empty()) {
    note += QString(" Excluded (%1):").arg(model_.excluded.size());
    for (const auto& e : model_.excluded) note += " " + QString::fromStdString(e) + ";";
  }
  set_note(note);
  p->replot();
}

int ParetoView::point_at(const QPoint& pixel) const {
  int best = -1;
  double best_d = kPickRadiusPx;
  for (size_t i = 0; i < model_.points.size(); ++i) {
    const double dx = plot()->xAxis->coordToPixel(model_.points[i].r) - pixel.x();
    const double dy = plot()->yAxis->coordToPixel(model_.points[i].q) - pixel.y();
    const double d = std::hypot(dx, dy);
    if (d <= best_d) {
      best_d = d;
      best = static_cast<int>(i);
    }
  }
  return best;
}

QString ParetoView::point_details(int index) const {
  if (index < 0 || index >= static_cast<int>(model_.points.size())) return {};
  const auto& pt = model_.points[static_cast<size_t>(index)];
  QString s = QString("<b>cell #%1</b>").arg(pt.id);
  if (pt.on_frontier) s += " — on the frontier";
  if (pt.duplicate_of >= 0)
    s += QString(" — same (R, Q) as frontier point #%1").arg(pt.duplicate_of);
  if (index == model_.current) s += " — current configuration";
  s += "<br>options: " + QString::fromStdString(pt.label).toHtmlEscaped();
  s += "<br>codec: " + QString::fromStdString(pt.codec) + " (" + QString::fromStdString(pt.family) +
       ")";
  s += QString("<br>ratio vs bf16: %1×").arg(pt.r, 0, 'f', 3);
  s += "<br>" + QString::fromStdString(model_.metric) + ": " + QString::number(pt.q, 'g', 5);
  if (pt.has_ci)
    s += QString(" [%1, %2] (95 % interval, %3 passages)")
             .arg(QString::number(pt.q_lo, 'g', 4), QString::number(pt.q_hi, 'g', 4))
             .arg(pt.passages);
  if (!pt.verdict.empty()) s += "<br>end-to-end verdict: " + QString::fromStdString(pt.verdict);
  if (!pt.on_frontier && pt.duplicate_of < 0 &&
      std::find(model_.possibly_on_frontier.begin(), model_.possibly_on_frontier.end(), pt.id) !=
          model_.possibly_on_frontier.end())
    s += "<br><i>dominated, but within the intervals of every point that dominates it</i>";
  s += QString("<br>bytes: %1 (%2 MiB)")
           .arg(pt.total_bytes)
           .arg(pt.total_bytes / 1048576.0, 0, 'f', 2);
  s += "<br><i>click to load this configuration</i>";
  return s;
}

void ParetoView::on_mouse_move(QMouseEvent* event) {
  const int i = point_at(event->pos());
  if (i < 0) {
    QToolTip::hideText();
    return;
  }
  QToolTip::showText(event->globalPosition().toPoint(), point_details(i), plot());
}

void ParetoView::on_mouse_press(QMouseEvent* event) {
  if (event->button() != Qt::LeftButton) return;
  const int i = point_at(event->pos());
  if (i < 0) return;
  const auto& pt = model_.points[static_cast<size_t>(i)];
  try {
    const sessions::RunConfig cfg =
        sessions::run_config_from_json(pt.config, "sweep cell #" + std::to_string(pt.id));
    emit config_requested(
        cfg,
        QString("sweep %1 cell #%2").arg(QString::fromStdString(model_.sweep_name)).arg(pt.id));
  } catch (const std::exception& e) {
    emit message_requested("error", QString("Cannot load cell #%1: %2").arg(pt.id).arg(e.what()));
  }
}

std::string ParetoView::csv_text() const { return pareto_model_csv(model_); }

}  // namespace kvwb::views
