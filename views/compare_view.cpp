#include "views/compare_view.h"

#include <QFileInfo>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QSplitter>
#include <QTabWidget>
#include <QVBoxLayout>
#include <cmath>

#include "base/errors.h"

namespace kvwb::views {

namespace {

QString qs(const std::string& s) { return QString::fromStdString(s); }

QString num(const std::optional<double>& v, const char* fmt) {
  if (!v || !std::isfinite(*v)) return QStringLiteral("n/a");
  return QString::asprintf(fmt, *v);
}

QTableWidgetItem* item(const QString& text, bool number = false) {
  auto* it = new QTableWidgetItem(text);
  it->setFlags(it->flags() & ~Qt::ItemIsEditable);
  if (number) it->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
  return it;
}

/// A read-only make_row_table with alternating row colours.
QTableWidget* make_table(QWidget* parent, const QStringList& headers, const QString& name) {
  QTableWidget* t = make_row_table(parent, headers, name);
  t->setEditTriggers(QAbstractItemView::NoEditTriggers);
  t->setAlternatingRowColors(true);
  t->horizontalHeader()->setHighlightSections(false);
  return t;
}

const QColor kBetter(0x1e, 0x7b, 0x34);
const QColor kWorse(0xc0, 0x39, 0x2b);

}  // namespace

CompareView::CompareView(QWidget* parent)
    : View(QStringLiteral("compare"), QStringLiteral("Compare & history"), parent) {
  auto* outer = new QVBoxLayout(this);
  outer->setContentsMargins(6, 6, 6, 6);
  outer->setSpacing(4);
  auto* top = new QHBoxLayout;
  header_ = new QLabel(this);
  header_->setObjectName("compare.header");
  header_->setTextFormat(Qt::RichText);
  header_->setWordWrap(true);
  pin_current_ = new QPushButton(tr("Pin current run"), this);
  pin_current_->setObjectName("compare.pin_current");
  pin_current_->setToolTip(tr("Make the current run the baseline every view compares with"));
  clear_ = new QPushButton(tr("Clear baseline"), this);
  clear_->setObjectName("compare.clear");
  top->addWidget(header_, 1);
  top->addWidget(pin_current_);
  top->addWidget(clear_);
  outer->addLayout(top);
  note_ = new QLabel(this);
  note_->setObjectName("compare.note");
  note_->setWordWrap(true);
  note_->setStyleSheet("color: #7a5a00;");
  outer->addWidget(note_);

  auto* split = new QSplitter(Qt::Vertical, this);
  split->setChildrenCollapsible(false);
  tabs_ = new QTabWidget(split);
  totals_ =
      make_table(tabs_, {tr("Total"), tr("Baseline"), tr("Current"), tr("Δ current − baseline")},
                 "compare.totals");
  totals_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);
  config_ = make_table(tabs_, {tr("Setting"), tr("Baseline"), tr("Current")}, "compare.config");
  config_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  layers_ = make_table(tabs_,
                       {tr("Layer"), tr("bf16 base / cur"), tr("bytes base"), tr("bytes cur"),
                        tr("K rel_mse base"), tr("K rel_mse cur"), tr("V rel_mse base"),
                        tr("V rel_mse cur"), tr("attn KL base"), tr("attn KL cur")},
                       "compare.layers");
  tabs_->addTab(totals_, tr("Totals"));
  tabs_->addTab(config_, tr("Settings that differ"));
  tabs_->addTab(layers_, tr("Per layer"));

  auto* hist_box = new QGroupBox(tr("Run history (this session, newest first)"), split);
  auto* hl = new QVBoxLayout(hist_box);
  hl->setContentsMargins(4, 4, 4, 4);
  history_table_ =
      make_table(hist_box,
                 {tr("#"), tr("Time"), tr("What"), tr("Configuration"), tr("Ratio"),
                  tr("K rel_mse"), tr("V rel_mse"), tr("attn KL"), QString(), QString()},
                 "compare.history");
  history_table_->horizontalHeader()->setSectionResizeMode(3, QHeaderView::Stretch);
  history_table_->setToolTip(tr("Enter or double-click recalls a run (its result shows at once)"));
  hl->addWidget(history_table_);
  split->addWidget(tabs_);
  split->addWidget(hist_box);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);
  outer->addWidget(split, 1);

  connect(pin_current_, &QPushButton::clicked, this, [this] { emit pin_baseline_requested(0); });
  connect(clear_, &QPushButton::clicked, this, [this] { emit clear_baseline_requested(); });
  connect(history_table_, &QTableWidget::activated, this, [this](const QModelIndex& idx) {
    if (idx.row() >= 0 && idx.row() < static_cast<int>(history_.size()))
      emit recall_requested(history_[static_cast<size_t>(idx.row())].id);
  });
  connect(layers_, &QTableWidget::currentCellChanged, this, [this](int row, int, int, int) {
    if (filling_ || row < 0 || row >= static_cast<int>(model_.layers.size()) || !snapshot_) return;
    emit select_requested(model_.layers[static_cast<size_t>(row)].layer,
                          snapshot_->selection.kv_head);
  });
  set_snapshot(std::make_shared<const Snapshot>());
}

void CompareView::rebuild() {
  const Snapshot& s = *snapshot_;
  model_ = build_comparison(s);
  history_ = history_rows(s);
  filling_ = true;

  QString h;
  if (model_.has_baseline) {
    h = "<b>Baseline:</b> " + qs(model_.baseline_label).toHtmlEscaped();
    const CompareTotal& ratio = model_.totals.front();
    if (ratio.delta())
      h += QString(" &nbsp;·&nbsp; <b>Δratio %1</b>").arg(qs(ratio.delta_text()).toHtmlEscaped());
  } else if (!s.baseline_pending.empty()) {
    h = "<b>Baseline:</b> computing " + qs(s.baseline_pending).toHtmlEscaped() + "…";
  } else {
    h = "<b>No baseline pinned</b>";
  }
  header_->setText(h);
  note_->setText(qs(model_.note));
  note_->setVisible(!model_.note.empty());
  pin_current_->setEnabled(s.run && s.run_is_current && !s.run_partial && s.run_id != 0);
  clear_->setEnabled(model_.has_baseline || !s.baseline_pending.empty());

  totals_->setRowCount(static_cast<int>(model_.totals.size()));
  for (size_t i = 0; i < model_.totals.size(); ++i) {
    const CompareTotal& t = model_.totals[i];
    const int r = static_cast<int>(i);
    totals_->setItem(r, 0, item(qs(t.name)));
    totals_->setItem(r, 1, item(num(t.baseline, t.format.c_str()), true));
    totals_->setItem(r, 2, item(num(t.current, t.format.c_str()), true));
    auto* d = item(qs(t.delta_text()), true);
    if (t.verdict() > 0) d->setForeground(kBetter);
    if (t.verdict() < 0) d->setForeground(kWorse);
    d->setToolTip(t.verdict() > 0   ? tr("the current run is better")
                  : t.verdict() < 0 ? tr("the current run is worse")
                                    : QString());
    totals_->setItem(r, 3, d);
  }
  totals_->resizeColumnsToContents();
  totals_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::Stretch);

  config_->setRowCount(static_cast<int>(model_.config.size()));
  for (size_t i = 0; i < model_.config.size(); ++i) {
    const int r = static_cast<int>(i);
    config_->setItem(r, 0, item(qs(model_.config[i].setting)));
    config_->setItem(r, 1, item(qs(model_.config[i].baseline)));
    config_->setItem(r, 2, item(qs(model_.config[i].current)));
  }
  tabs_->setTabText(1, model_.has_baseline
                           ? tr("Settings that differ (%1)").arg(model_.config.size())
                           : tr("Settings that differ"));

  layers_->setRowCount(static_cast<int>(model_.layers.size()));
  for (size_t i = 0; i < model_.layers.size(); ++i) {
    const CompareLayer& l = model_.layers[i];
    const int r = static_cast<int>(i);
    layers_->setItem(r, 0, item(QString::number(l.layer), true));
    auto bf = [](bool b) { return b ? QStringLiteral("bf16") : QStringLiteral("·"); };
    layers_->setItem(r, 1, item(bf(l.baseline_boundary) + " / " + bf(l.current_boundary)));
    auto pair = [&](int col, const std::optional<double>& b, const std::optional<double>& c,
                    const char* fmt) {
      layers_->setItem(r, col, item(num(b, fmt), true));
      auto* ci = item(num(c, fmt), true);
      if (b && c && *c != *b) ci->setForeground(*c < *b ? kBetter : kWorse);
      layers_->setItem(r, col + 1, ci);
    };
    pair(2, l.baseline_bytes, l.current_bytes, "%.0f");
    pair(4, l.baseline_k, l.current_k, "%.4g");
    pair(6, l.baseline_v, l.current_v, "%.4g");
    pair(8, l.baseline_kl, l.current_kl, "%.4g");
    if (l.layer == s.selection.layer) layers_->selectRow(r);
  }
  layers_->resizeColumnsToContents();

  history_table_->setRowCount(static_cast<int>(history_.size()));
  for (size_t i = 0; i < history_.size(); ++i) {
    const HistoryRow& hr = history_[i];
    const int r = static_cast<int>(i);
    QString id = QString("#%1").arg(hr.id);
    if (hr.is_current) id += tr(" (current)");
    if (hr.is_baseline) id += tr(" (baseline)");
    auto* first = item(id);
    QFont f = first->font();
    f.setBold(hr.is_current || hr.is_baseline);
    first->setFont(f);
    history_table_->setItem(r, 0, first);
    history_table_->setItem(r, 1, item(qs(hr.time)));
    history_table_->setItem(r, 2, item(qs(hr.label)));
    auto* cfg = item(qs(hr.summary));
    cfg->setToolTip(qs(hr.summary) + (hr.has_residuals
                                          ? QString()
                                          : tr("\nresiduals dropped (memory): recall reruns it")));
    history_table_->setItem(r, 3, cfg);
    history_table_->setItem(r, 4, item(QString::asprintf("%.4f", hr.ratio), true));
    history_table_->setItem(r, 5, item(num(hr.k_rel_mse, "%.4g"), true));
    history_table_->setItem(r, 6, item(num(hr.v_rel_mse, "%.4g"), true));
    history_table_->setItem(r, 7, item(num(hr.attn_kl, "%.4g"), true));
    auto* recall = new QPushButton(tr("Recall"));
    recall->setObjectName(QString("compare.recall_%1").arg(hr.id));
    recall->setToolTip(tr("Make this configuration current (undoable) and show its result"));
    recall->setEnabled(!hr.is_current);
    const quint64 rid = hr.id;
    connect(recall, &QPushButton::clicked, this, [this, rid] { emit recall_requested(rid); });
    history_table_->setCellWidget(r, 8, recall);
    auto* pin = new QPushButton(hr.is_baseline ? tr("Baseline") : tr("Pin"));
    pin->setObjectName(QString("compare.pin_%1").arg(hr.id));
    pin->setToolTip(tr("Pin this run as the baseline every view compares with"));
    pin->setEnabled(!hr.is_baseline);
    connect(pin, &QPushButton::clicked, this, [this, rid] { emit pin_baseline_requested(rid); });
    history_table_->setCellWidget(r, 9, pin);
  }
  history_table_->resizeColumnsToContents();
  history_table_->horizontalHeader()->setSectionResizeMode(3, QHeaderView::Stretch);
  filling_ = false;
}

void CompareView::export_picture(const QString& path) const {
  if (QFileInfo(path).suffix().compare("png", Qt::CaseInsensitive) != 0)
    throw InvalidArgument(path.toStdString() + ": the compare view exports PNG only");
  write_png_atomic(path, const_cast<CompareView*>(this)->grab().toImage());
}

void CompareView::export_csv(const QString& path) const {
  if (!model_.has_baseline && !model_.has_current)
    throw InvalidArgument("compare view has nothing to export yet (" + path.toStdString() + ")");
  write_bytes_atomic(path, QByteArray::fromStdString(comparison_csv(model_)));
}

}  // namespace kvwb::views
