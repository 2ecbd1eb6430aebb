#include "views/pareto_view.h"

#include <qcustomplot.h>

#include <QFileInfo>
#include <QHeaderView>
#include <QMenu>
#include <QMouseEvent>
#include <QSignalBlocker>
#include <QSplitter>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <map>

#include "base/errors.h"
#include "sessions/config/run_config.h"
#include "views/chart_style.h"

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

/// "#<id> <short label> · <verdict>" of the point `id` (no verdict without end-to-end results).
QString point_label_text(const std::vector<ParetoPlotPoint>& points, int64_t id) {
  QString text = QString("#%1").arg(id);
  for (const auto& pt : points)
    if (pt.id == id) {
      text += " " + QString::fromStdString(pt.short_label);
      if (!pt.verdict.empty()) text += " · " + QString::fromStdString(pt.verdict);
    }
  return text;
}

/// A label in 8 pt `family` beside the frontier point `at` (marked "kvwb_point_label").
void add_point_label(QCustomPlot* p, const sessions::ParetoPoint& at, const QString& text,
                     const QString& family, Qt::Alignment alignment, const QMargins& padding,
                     const QColor& color) {
  auto* label = new QCPItemText(p);
  label->position->setCoords(at.r, at.q);
  label->setPositionAlignment(alignment);
  label->setPadding(padding);
  label->setProperty("kvwb_point_label", true);
  label->setFont(QFont(family, 8));
  label->setColor(color);
  label->setText(text);
}

}  // namespace

ParetoView::ParetoView(QWidget* parent) : ChartView("pareto", "Pareto", parent) {
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
  overlay_button_ = new QToolButton(this);
  overlay_button_->setObjectName("pareto.overlay");
  overlay_button_->setText("Overlay stores ▾");
  overlay_button_->setToolTip("Overlay other sweeps (result stores) of the session on this one");
  overlay_button_->setPopupMode(QToolButton::InstantPopup);
  overlay_button_->setMenu(new QMenu(overlay_button_));
  overlay_button_->setVisible(false);
  controls()->addWidget(overlay_button_);
  controls()->addStretch(1);
  sweep_label_->setVisible(false);
  sweep_combo_->setVisible(false);

  // Results table linked to the points, under the plot.
  auto* below = new QWidget(this);
  below->setObjectName("pareto.below");
  auto* bl = new QVBoxLayout(below);
  bl->setContentsMargins(0, 2, 0, 0);
  bl->setSpacing(2);
  table_ = make_row_table(
      below,
      {"Store", "Cell", "Codec · bits", "Options", "Ratio", "Metric", "Frontier", "e2e verdict"},
      "pareto.table");
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setSortingEnabled(false);
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setSectionResizeMode(3, QHeaderView::Stretch);
  table_->setToolTip("Select a row to mark its point · Enter or double-click loads it");
  bl->addWidget(table_, 1);
  auto* buttons = new QHBoxLayout;
  load_button_ = new QPushButton("Load configuration", below);
  load_button_->setObjectName("pareto.load");
  pin_button_ = new QPushButton("Pin as baseline", below);
  pin_button_->setObjectName("pareto.pin");
  pin_button_->setToolTip(
      "Compare every view with this cell (it runs when the history does not "
      "hold it yet)");
  buttons->addWidget(load_button_);
  buttons->addWidget(pin_button_);
  buttons->addStretch(1);
  bl->addLayout(buttons);
  QSplitter* split = plot_splitter();
  split->addWidget(below);
  split->setStretchFactor(0, 4);
  split->setStretchFactor(1, 1);
  split->setSizes({700, 180});
  connect(table_, &QTableWidget::currentCellChanged, this, [this](int row, int, int, int) {
    if (filling_) return;
    selected_ = row;
    load_button_->setEnabled(row >= 0);
    pin_button_->setEnabled(row >= 0);
    draw();  // the marker of the selected row (the models stay as they are)
  });
  connect(table_, &QTableWidget::activated, this, [this](const QModelIndex&) { load_selected(); });
  connect(load_button_, &QPushButton::clicked, this, [this] { load_selected(); });
  connect(pin_button_, &QPushButton::clicked, this, [this] { pin_selected(); });
  load_button_->setEnabled(false);
  pin_button_->setEnabled(false);

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
  p->legend->setWrap(3);
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
  set_note("no sweep yet — Sweep… (Ctrl+Shift+S) runs one");
}

void ParetoView::snapshot_changed() {
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
  QMenu* menu = overlay_button_->menu();
  menu->clear();
  int others = 0;
  if (snapshot_)
    for (int i = 0; i < static_cast<int>(snapshot_->sweeps.size()); ++i) {
      if (i == snapshot_->active_sweep) continue;
      const std::string name = snapshot_->sweeps[static_cast<size_t>(i)].name;
      QAction* a = menu->addAction(QString::fromStdString(name));
      a->setCheckable(true);
      a->setChecked(std::find(overlay_names_.begin(), overlay_names_.end(), name) !=
                    overlay_names_.end());
      connect(a, &QAction::toggled, this, [this, name](bool on) { set_overlay(name, on); });
      ++others;
    }
  overlay_button_->setVisible(others > 0);
  rebuild();
}

void ParetoView::set_overlay(const std::string& name, bool on) {
  overlay_names_.erase(std::remove(overlay_names_.begin(), overlay_names_.end(), name),
                       overlay_names_.end());
  if (on) overlay_names_.push_back(name);
  selected_ = -1;
  rebuild();
}

const ParetoModel& ParetoView::store_model(int store) const {
  return store == 0 ? model_ : overlays_[static_cast<size_t>(store - 1)];
}

QString ParetoView::store_name(int store) const {
  return QString::fromStdString(store_model(store).sweep_name);
}

void ParetoView::select_row(int row) {
  if (row < 0 || row >= static_cast<int>(rows_.size())) {
    table_->clearSelection();
    table_->setCurrentCell(-1, -1);
    return;
  }
  table_->setCurrentCell(row, 0);
  table_->scrollToItem(table_->item(row, 0));
}

bool ParetoView::load_point(int store, int index) {
  const ParetoModel& m = store_model(store);
  if (index < 0 || index >= static_cast<int>(m.points.size())) return false;
  const auto& pt = m.points[static_cast<size_t>(index)];
  try {
    const sessions::RunConfig cfg =
        sessions::run_config_from_json(pt.config, "sweep cell #" + std::to_string(pt.id));
    emit config_requested(
        cfg, QString("sweep %1 cell #%2").arg(QString::fromStdString(m.sweep_name)).arg(pt.id));
    return true;
  } catch (const std::exception& e) {
    emit message_requested("error", QString("Cannot load cell #%1: %2").arg(pt.id).arg(e.what()));
  }
  return false;
}

bool ParetoView::load_selected() {
  if (selected_ < 0 || selected_ >= static_cast<int>(rows_.size())) return false;
  const TableRow r = rows_[static_cast<size_t>(selected_)];
  return load_point(r.store, r.point);
}

bool ParetoView::pin_selected() {
  if (selected_ < 0 || selected_ >= static_cast<int>(rows_.size())) return false;
  const TableRow r = rows_[static_cast<size_t>(selected_)];
  const ParetoModel& m = store_model(r.store);
  const auto& pt = m.points[static_cast<size_t>(r.point)];
  try {
    const sessions::RunConfig cfg =
        sessions::run_config_from_json(pt.config, "sweep cell #" + std::to_string(pt.id));
    emit pin_config_requested(cfg, QString("sweep %1 cell #%2 (%3)")
                                       .arg(QString::fromStdString(m.sweep_name))
                                       .arg(pt.id)
                                       .arg(QString::fromStdString(pt.short_label)));
    return true;
  } catch (const std::exception& e) {
    emit message_requested("error", QString("Cannot pin cell #%1: %2").arg(pt.id).arg(e.what()));
  }
  return false;
}

void ParetoView::fill_table() {
  filling_ = true;
  rows_.clear();
  for (int store = 0; store <= static_cast<int>(overlays_.size()); ++store) {
    const ParetoModel& m = store_model(store);
    for (int i = 0; i < static_cast<int>(m.points.size()); ++i) rows_.push_back({store, i});
  }
  table_->setRowCount(static_cast<int>(rows_.size()));
  table_->horizontalHeaderItem(5)->setText(
      QString::fromStdString(model_.metric.empty() ? "metric" : model_.metric));
  auto cell = [](const QString& t, bool number = false) {
    auto* it = new QTableWidgetItem(t);
    if (number) it->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
    return it;
  };
  for (size_t r = 0; r < rows_.size(); ++r) {
    const ParetoModel& m = store_model(rows_[r].store);
    const auto& pt = m.points[static_cast<size_t>(rows_[r].point)];
    const int row = static_cast<int>(r);
    table_->setItem(row, 0, cell(store_name(rows_[r].store)));
    table_->setItem(row, 1, cell(QString("#%1").arg(pt.id), true));
    table_->setItem(row, 2, cell(QString::fromStdString(pt.short_label)));
    table_->setItem(row, 3, cell(QString::fromStdString(pt.label)));
    table_->setItem(row, 4, cell(QString::number(pt.r, 'f', 4), true));
    table_->setItem(row, 5, cell(QString::number(pt.q, 'g', 5), true));
    QString front = pt.on_frontier ? "frontier" : QString();
    if (rows_[r].store == 0 && rows_[r].point == m.current)
      front += front.isEmpty() ? "current" : " · current";
    if (rows_[r].point == m.baseline) front += front.isEmpty() ? "baseline" : " · baseline";
    table_->setItem(row, 6, cell(front));
    auto* v = cell(QString::fromStdString(pt.verdict.empty() ? "—" : pt.verdict));
    if (pt.verdict == "ACCEPT") v->setForeground(QColor(0x1e, 0x7b, 0x34));
    if (pt.verdict == "REJECT") v->setForeground(QColor(0xc0, 0x39, 0x2b));
    if (pt.verdict == "MARGINAL") v->setForeground(QColor(0x9a, 0x67, 0x00));
    table_->setItem(row, 7, v);
  }
  if (selected_ >= static_cast<int>(rows_.size())) selected_ = -1;
  // No point: no table (the empty plot keeps the whole height).
  if (QWidget* below = findChild<QWidget*>("pareto.below")) below->setVisible(!rows_.empty());
  if (selected_ >= 0) table_->selectRow(selected_);
  load_button_->setEnabled(selected_ >= 0);
  pin_button_->setEnabled(selected_ >= 0);
  filling_ = false;
}

void ParetoView::set_metric(const std::string& metric) {
  metric_ = metric;
  rebuild();
}

void ParetoView::rebuild() {
  model_ = snapshot_ ? build_pareto_model(*snapshot_, metric_) : ParetoModel{};
  if (!model_.metric.empty()) metric_ = model_.metric;
  overlays_.clear();
  if (snapshot_)
    for (int i = 0; i < static_cast<int>(snapshot_->sweeps.size()); ++i) {
      const auto& name = snapshot_->sweeps[static_cast<size_t>(i)].name;
      if (i == snapshot_->active_sweep ||
          std::find(overlay_names_.begin(), overlay_names_.end(), name) == overlay_names_.end())
        continue;
      overlays_.push_back(build_pareto_model(*snapshot_, i, model_.metric));
    }
  fill_table();
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
  draw();
}

void ParetoView::draw() {
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
    finish_draw(title_->text() + "|" + p->yAxis->label());
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
  // Every plotted store (the active one and the overlays) is inside the ranges.
  double x0 = model_.points.front().r, x1 = x0, y0 = model_.points.front().q, y1 = y0;
  bool all_positive = true;
  for (int store = 0; store <= static_cast<int>(overlays_.size()); ++store)
    for (const auto& pt : store_model(store).points) {
      x0 = std::min(x0, pt.r);
      x1 = std::max(x1, pt.r);
      y0 = std::min(y0, pt.q);
      y1 = std::max(y1, pt.q);
      all_positive = all_positive && pt.q > 0;
    }
  const bool log_y = model_.log_y && all_positive;
  double ylo = y0, yhi = y1;  // with the intervals
  for (const auto& pt : model_.points)
    if (pt.has_ci) {
      yhi = std::max(yhi, pt.q_hi);
      if (!log_y || pt.q_lo > 0) ylo = std::min(ylo, pt.q_lo);
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
        const double lo = !pt.has_ci ? pt.q : log_y ? std::max(pt.q_lo, std::min(log_floor, pt.q)) : pt.q_lo;
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
    for (const auto& fp : model_.result.frontier)
      add_point_label(p, fp.rep, point_label_text(model_.points, fp.rep.id), font().family(),
                      Qt::AlignLeft | Qt::AlignTop, QMargins(7, 3, 0, 0), QColor(60, 60, 60));
  }
  // Overlaid stores: one colour and marker per store, their own frontier staircase.
  static const QColor kStoreColours[] = {QColor(200, 30, 30), QColor(20, 130, 60),
                                         QColor(120, 60, 170), QColor(200, 120, 0),
                                         QColor(0, 130, 160)};
  for (size_t o = 0; o < overlays_.size(); ++o) {
    const ParetoModel& om = overlays_[o];
    const QColor c = kStoreColours[o % 5];
    QVector<double> xs, ys;
    for (const auto& pt : om.points) {
      xs.push_back(pt.r);
      ys.push_back(pt.q);
    }
    QCPGraph* g = p->addGraph();
    g->setName(QString("%1 (%2)").arg(QString::fromStdString(om.sweep_name)).arg(xs.size()));
    g->setLineStyle(QCPGraph::lsNone);
    QCPScatterStyle style(family_shape(static_cast<int>(o) + 1), 9);
    style.setPen(QPen(c.darker(120), 1.2));
    style.setBrush(QColor(c.red(), c.green(), c.blue(), 110));
    g->setScatterStyle(style);
    g->setData(xs, ys, true);
    QVector<double> fx, fy;
    for (const auto& fp : om.result.frontier) {
      fx.push_back(fp.rep.r);
      fy.push_back(fp.rep.q);
      add_point_label(p, fp.rep, point_label_text(om.points, fp.rep.id), font().family(),
                      Qt::AlignLeft | Qt::AlignBottom, QMargins(7, 0, 0, 3), c.darker(130));
    }
    QCPGraph* f = p->addGraph();
    f->setName(QString::fromStdString(om.sweep_name) + " frontier");
    f->setLineStyle(QCPGraph::lsStepRight);
    f->setPen(QPen(c, 1.4, Qt::DashLine));
    f->setData(fx, fy, true);
  }
  // End-to-end verdicts (stores made with a model): a coloured ring per verdict.
  {
    std::map<std::string, std::pair<QVector<double>, QVector<double>>> rings;
    for (int store = 0; store <= static_cast<int>(overlays_.size()); ++store)
      for (const auto& pt : store_model(store).points)
        if (!pt.verdict.empty()) {
          rings[pt.verdict].first.push_back(pt.r);
          rings[pt.verdict].second.push_back(pt.q);
        }
    for (const auto& [verdict, xy] : rings) {
      const QColor c = verdict == "ACCEPT"     ? QColor(30, 150, 60)
                       : verdict == "MARGINAL" ? QColor(220, 150, 0)
                                               : QColor(200, 30, 30);
      QCPGraph* g = p->addGraph();
      g->setName(QString("e2e %1 (%2)").arg(QString::fromStdString(verdict)).arg(xy.first.size()));
      g->setLineStyle(QCPGraph::lsNone);
      g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, QPen(c, 2.0), Qt::NoBrush, 17));
      g->setData(xy.first, xy.second, true);
    }
  }
  // The baseline's cell and the row selected in the table.
  // An outlined marker on one point, its name the legend entry.
  const auto mark = [p](const QString& name, const ParetoPlotPoint& pt,
                        QCPScatterStyle::ScatterShape shape, const QColor& color, double pen_width,
                        double size) {
    QCPGraph* g = p->addGraph();
    g->setName(name);
    g->setLineStyle(QCPGraph::lsNone);
    g->setScatterStyle(QCPScatterStyle(shape, QPen(color, pen_width), Qt::NoBrush, size));
    g->setData(QVector<double>{pt.r}, QVector<double>{pt.q}, true);
  };
  if (model_.baseline >= 0) {
    const auto& b = model_.points[static_cast<size_t>(model_.baseline)];
    mark(QString("baseline (#%1)").arg(b.id), b, QCPScatterStyle::ssDiamond, QColor(20, 80, 200),
         2.5, 20);
  }
  if (selected_ >= 0 && selected_ < static_cast<int>(rows_.size())) {
    const TableRow r = rows_[static_cast<size_t>(selected_)];
    const auto& pt = store_model(r.store).points[static_cast<size_t>(r.point)];
    mark(QString("selected row (%1 #%2)").arg(store_name(r.store)).arg(pt.id), pt,
         QCPScatterStyle::ssSquare, QColor(0, 0, 0), 2.0, 18);
  }
  if (model_.current >= 0) {
    const auto& cur = model_.points[static_cast<size_t>(model_.current)];
    mark(QString("current configuration (#%1)").arg(cur.id), cur, QCPScatterStyle::ssCircle,
         QColor(220, 0, 120), 2.5, 22);
  }

  const double xpad = std::max((x1 - x0) * 0.06, 0.05);
  p->xAxis->setRange(x0 - xpad, x1 + xpad);
  if (log_y) {
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
  p->yAxis->setLabel(metric_title(model_.metric) + (log_y ? ", log scale" : "") +
                     " — lower is better");

  QString note;
  if (synthetic) note += "SYNTHETIC demo capture. ";
  note +=
      "Hover a point for details, click it to load its configuration (wheel zooms, drag pans, "
      "double-click resets).";
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
  // Point labels in the right quarter go to the left of their point (never clipped at the edge).
  const double split = p->xAxis->range().lower + 0.72 * p->xAxis->range().size();
  for (int i = 0; i < p->itemCount(); ++i) {
    auto* label = qobject_cast<QCPItemText*>(p->item(i));
    if (!label || !label->property("kvwb_point_label").toBool()) continue;
    if (label->position->coords().x() < split) continue;
    const Qt::Alignment v = label->positionAlignment() & Qt::AlignVertical_Mask;
    label->setPositionAlignment(Qt::AlignRight | v);
    const QMargins m = label->padding();
    label->setPadding(QMargins(m.right(), m.top(), 7, m.bottom()));
  }
  fit_legend_row(p->legend, p->width());
  finish_draw(title_->text() + "|" + p->yAxis->label());
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

void ParetoView::on_plot_clicked(const QPointF& pos) {
  int store = 0, i = point_at(pos.toPoint());
  if (i < 0) {
    // An overlaid store's point.
    double best = kPickRadiusPx;
    for (size_t o = 0; o < overlays_.size(); ++o)
      for (size_t k = 0; k < overlays_[o].points.size(); ++k) {
        const auto& pt = overlays_[o].points[k];
        const double d = std::hypot(plot()->xAxis->coordToPixel(pt.r) - pos.x(),
                                    plot()->yAxis->coordToPixel(pt.q) - pos.y());
        if (d <= best) {
          best = d;
          store = static_cast<int>(o) + 1;
          i = static_cast<int>(k);
        }
      }
  }
  if (i < 0) return;
  for (size_t r = 0; r < rows_.size(); ++r)
    if (rows_[r].store == store && rows_[r].point == i) select_row(static_cast<int>(r));
  load_point(store, i);
}

std::string ParetoView::csv_text() const { return pareto_model_csv(model_); }

}  // namespace kvwb::views
