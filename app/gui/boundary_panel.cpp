#include "app/gui/boundary_panel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPointer>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QTabWidget>
#include <QTableWidget>
#include <QVBoxLayout>
#include <algorithm>

#include "app/gui/dialog_util.h"
#include "app/gui/workbench.h"

namespace kvwb::app {

namespace {

QString layer_set_text(const std::vector<int>& layers) {
  if (layers.empty()) return QStringLiteral("none");
  QStringList s;
  for (int l : layers) s << QString::number(l);
  return s.join(QStringLiteral(", "));
}

QTableWidget* make_table(const QStringList& headers) {
  auto* t = new QTableWidget(0, static_cast<int>(headers.size()));
  t->setHorizontalHeaderLabels(headers);
  t->verticalHeader()->setVisible(false);
  t->setEditTriggers(QAbstractItemView::NoEditTriggers);
  t->setSelectionBehavior(QAbstractItemView::SelectRows);
  t->setAlternatingRowColors(true);
  t->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  t->horizontalHeader()->setStretchLastSection(true);
  return t;
}

/// The feedback rows of a tab, under its buttons, added to `l`: a hidden progress bar, a status
/// line showing `status`, and a hidden inline error label named `error_name` (for tests).
void add_job_feedback(QVBoxLayout* l, const QString& status, const QString& error_name,
                      QProgressBar*& progress, QLabel*& status_label, QLabel*& error_label) {
  progress = new QProgressBar;
  progress->setVisible(false);
  l->addWidget(progress);
  status_label = dlg::wrapped_label(status);
  l->addWidget(status_label);
  error_label = dlg::selectable_label(error_name);
  error_label->setStyleSheet(dlg::error_style());
  error_label->setVisible(false);
  l->addWidget(error_label);
}

QString plan_intro() {
  return BoundaryPanel::tr(
      "Chooses per-layer K/V bit widths (and boundary layers) of the current configuration "
      "that reach the target ratio with the least summed error, then runs the plan to "
      "confirm it.");
}

void update_progress(QProgressBar* bar, const JobInfo& j) {
  if (j.total > 0) {
    bar->setRange(0, static_cast<int>(j.total));
    bar->setValue(static_cast<int>(j.done));
  } else {
    bar->setRange(0, 0);  // busy indicator
  }
  bar->setFormat(j.detail.isEmpty() ? QStringLiteral("%p%") : j.detail);
}

}  // namespace

BoundaryPanel::BoundaryPanel(Workbench& workbench, QWidget* parent)
    : QWidget(parent), wb_(workbench) {
  setObjectName(QStringLiteral("boundary_panel"));
  setWindowTitle(tr("Boundary layers & budget plan"));
  build_ui();
  connect(&wb_, &Workbench::jobs_changed, this, &BoundaryPanel::on_jobs_changed);
  connect(&wb_, &Workbench::snapshot_changed, this,
          [this](const views::SnapshotPtr&) { on_snapshot(); });
  dlg::watch_job(
      wb_, this, rec_job_, rec_job_name_, [this](const QString& e) { set_rec_error(e); },
      [this] { rec_status_->setText(tr("Recommendation cancelled.")); });
  dlg::watch_job(
      wb_, this, plan_job_, plan_job_name_, [this](const QString& e) { set_plan_error(e); },
      [this] { plan_status_->setText(tr("Plan cancelled.")); });
  on_snapshot();
}

BoundaryPanel::~BoundaryPanel() = default;

void BoundaryPanel::build_ui() {
  auto* root = new QVBoxLayout(this);
  root->setContentsMargins(4, 4, 4, 4);
  tabs_ = new QTabWidget;
  tabs_->addTab(build_recommend_tab(), tr("Boundary layers"));
  tabs_->addTab(build_plan_tab(), tr("Budget plan"));
  root->addWidget(tabs_);
}

QWidget* BoundaryPanel::build_recommend_tab() {
  auto* w = new QWidget;
  auto* l = new QVBoxLayout(w);
  auto* row = new QHBoxLayout;
  row->addWidget(new QLabel(tr("Max boundary layers:")));
  max_layers_ = new QSpinBox;
  max_layers_->setObjectName(QStringLiteral("max_layers"));
  max_layers_->setRange(1, 1024);
  max_layers_->setValue(4);
  max_layers_->setToolTip(tr("Greedy boundary sets of sizes 1..N are measured (each one run)"));
  row->addWidget(max_layers_);
  recommend_button_ =
      dlg::button(tr("Recommend"), QStringLiteral("recommend"), this, [this] { recommend(); });
  rec_cancel_ = dlg::cancel_button(tr("Cancel"), wb_, rec_job_, this);
  row->addWidget(recommend_button_);
  row->addWidget(rec_cancel_);
  row->addStretch(1);
  l->addLayout(row);
  add_job_feedback(l,
                   tr("Measures each layer's sensitivity under the current configuration "
                      "(boundary cleared), then runs the greedy boundary sets."),
                   QStringLiteral("rec_error"), rec_progress_, rec_status_, rec_error_);

  auto* rank_box = new QGroupBox(tr("Layer ranking (most sensitive first)"));
  auto* rl = new QVBoxLayout(rank_box);
  ranking_ = make_table({tr("Rank"), tr("Layer"), tr("Score"), tr("Attn KL"), tr("Out rel. err"),
                         tr("Top-1"), tr("K rel. MSE"), tr("V rel. MSE"), tr("\u03a3_q m/median"),
                         tr("Skip rule"), tr("Failed")});
  ranking_->setObjectName(QStringLiteral("ranking"));
  ranking_->horizontalHeaderItem(8)->setToolTip(
      tr("m_l / median of the \u03a3_q skip rule (K\u00a78.4)"));
  rl->addWidget(ranking_);
  l->addWidget(rank_box, 1);

  auto* prop_box = new QGroupBox(tr("Measured boundary sets"));
  auto* pl = new QVBoxLayout(prop_box);
  proposals_ = make_table({tr("Size"), tr("Boundary set"), tr("Ratio vs bf16"), tr("Bytes"),
                           tr("Out rel. err"), tr("Attn KL"), tr("Top-1"), QString()});
  proposals_->setObjectName(QStringLiteral("proposals"));
  proposals_->horizontalHeader()->setStretchLastSection(false);
  proposals_->horizontalHeader()->setSectionResizeMode(1, QHeaderView::Stretch);
  pl->addWidget(proposals_);
  rec_notes_ = dlg::wrapped_label();
  pl->addWidget(rec_notes_);
  l->addWidget(prop_box, 1);
  return w;
}

QWidget* BoundaryPanel::build_plan_tab() {
  auto* w = new QWidget;
  auto* l = new QVBoxLayout(w);
  auto* form = new QFormLayout;
  form->setFieldGrowthPolicy(QFormLayout::FieldsStayAtSizeHint);
  target_ = new QDoubleSpinBox;
  target_->setObjectName(QStringLiteral("target_ratio"));
  target_->setRange(1.01, 1000.0);
  target_->setDecimals(2);
  target_->setSingleStep(0.25);
  target_->setValue(3.0);
  target_->setSuffix(QStringLiteral(" \u00d7"));
  form->addRow(tr("Target ratio vs bf16:"), target_);
  metric_ = new QComboBox;
  metric_->setObjectName(QStringLiteral("metric"));
  metric_->addItems(
      {QStringLiteral("attn_out_rel_err"), QStringLiteral("attn_kl"), QStringLiteral("rel_mse")});
  metric_->setToolTip(
      tr("Error summed over layers and streams, each measured with only that stream compressed"));
  form->addRow(tr("Metric:"), metric_);
  allow_boundary_ = new QCheckBox(tr("Allow boundary layers (bf16)"));
  allow_boundary_->setChecked(true);
  form->addRow(QString(), allow_boundary_);
  l->addLayout(form);
  auto* row = new QHBoxLayout;
  plan_button_ = dlg::button(tr("Plan"), QStringLiteral("plan"), this, [this] { plan(); });
  plan_cancel_ = dlg::cancel_button(tr("Cancel"), wb_, plan_job_, this);
  apply_plan_ =
      dlg::button(tr("Apply plan"), QStringLiteral("apply_plan"), this, [this] { apply_plan(); });
  row->addWidget(plan_button_);
  row->addWidget(plan_cancel_);
  row->addStretch(1);
  row->addWidget(apply_plan_);
  l->addLayout(row);
  add_job_feedback(l, plan_intro(), QStringLiteral("plan_error"), plan_progress_, plan_status_,
                   plan_error_);

  auto* layers_box = new QGroupBox(tr("Per-layer choices"));
  auto* ll = new QVBoxLayout(layers_box);
  plan_layers_ = make_table({tr("Layer"), tr("Choice"), tr("K bits"), tr("V bits"), tr("Bytes"),
                             tr("K err"), tr("V err")});
  plan_layers_->setObjectName(QStringLiteral("plan_layers"));
  plan_layers_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  ll->addWidget(plan_layers_);
  l->addWidget(layers_box, 1);

  auto* tot_box = new QGroupBox(tr("Promised vs measured"));
  auto* tl = new QVBoxLayout(tot_box);
  plan_totals_ = make_table({QString(), tr("Ratio vs bf16"), tr("Bytes"), tr("Error sum")});
  plan_totals_->setObjectName(QStringLiteral("plan_totals"));
  plan_totals_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  plan_totals_->setRowCount(2);
  plan_totals_->setMaximumHeight(plan_totals_->horizontalHeader()->sizeHint().height() +
                                 2 * plan_totals_->verticalHeader()->defaultSectionSize() + 6);
  plan_totals_->setAlternatingRowColors(false);
  tl->addWidget(plan_totals_);
  plan_notes_ = dlg::selectable_label();
  tl->addWidget(plan_notes_);
  l->addWidget(tot_box);
  return w;
}

void BoundaryPanel::on_snapshot() {
  const views::SnapshotPtr s = wb_.snapshot();
  const QString capture = wb_.capture_path();
  if (capture != capture_) {  // results of another capture are not shown
    capture_ = capture;
    rec_.reset();
    plan_.reset();
    ranking_->setRowCount(0);
    proposals_->setRowCount(0);
    rec_notes_->clear();
    set_rec_error(QString());
    set_plan_error(QString());
    show_plan();
  }
  if (s && !s->capture.layers.empty())
    max_layers_->setMaximum(static_cast<int>(s->capture.layers.size()));
  if (rec_) show_recommendation();  // the "current" marks follow the boundary set
  update_buttons();
}

void BoundaryPanel::update_buttons() {
  const bool open = !wb_.capture_path().isEmpty();
  recommend_button_->setEnabled(open && rec_job_ < 0);
  rec_cancel_->setEnabled(rec_job_ >= 0);
  plan_button_->setEnabled(open && plan_job_ < 0);
  plan_cancel_->setEnabled(plan_job_ >= 0);
  apply_plan_->setEnabled(plan_ != nullptr && plan_job_ < 0);
}

void BoundaryPanel::set_rec_error(const QString& text) { dlg::show_error(rec_error_, text); }
void BoundaryPanel::set_plan_error(const QString& text) { dlg::show_error(plan_error_, text); }
QString BoundaryPanel::recommend_error() const { return rec_error_->text(); }
QString BoundaryPanel::plan_error() const { return plan_error_->text(); }
int BoundaryPanel::ranking_rows() const { return ranking_->rowCount(); }
int BoundaryPanel::proposal_rows() const { return proposals_->rowCount(); }
int BoundaryPanel::plan_rows() const { return plan_layers_->rowCount(); }

void BoundaryPanel::set_max_layers(int n) { max_layers_->setValue(n); }

std::optional<std::string> BoundaryPanel::capture_to_start(
    int job, void (BoundaryPanel::*show_error)(const QString&)) {
  if (job >= 0) return std::nullopt;
  const QString capture = wb_.capture_path();
  if (capture.isEmpty()) {
    (this->*show_error)(tr("Open a capture first"));
    return std::nullopt;
  }
  (this->*show_error)(QString());
  return capture.toStdString();
}

bool BoundaryPanel::recommend() {
  const std::optional<std::string> capture =
      capture_to_start(rec_job_, &BoundaryPanel::set_rec_error);
  if (!capture) return false;
  const sessions::RunConfig cfg = wb_.current_config();
  const int n = max_layers_->value();
  const std::string path = *capture;
  QPointer<BoundaryPanel> self(this);
  rec_job_name_ = tr("Recommend boundary layers");
  rec_job_ = wb_.start_job(
      rec_job_name_, [self, path, cfg, n](JobControl& job) -> Workbench::Continuation {
        return dlg::compute_then<sessions::BoundaryRecommendation>(
            self, [&] { return sessions::recommend_boundary(path, cfg, n, &job); },
            [](BoundaryPanel& panel,
               const std::shared_ptr<const sessions::BoundaryRecommendation>& r,
               const QString& err) {
              if (r) {
                panel.rec_ = r;
                panel.rec_status_->setText(
                    tr("Score: %1. Apply a set to make it the current boundary.")
                        .arg(QString::fromStdString(r->score_metric)));
                panel.show_recommendation();
              } else {
                panel.set_rec_error(err);
              }
            });
      });
  show_started(rec_progress_, rec_status_, tr("Measuring\u2026"));
  return true;
}

void BoundaryPanel::show_started(QProgressBar* progress, QLabel* status, const QString& text) {
  progress->setVisible(true);
  status->setText(text);
  update_buttons();
  on_jobs_changed();
}

void BoundaryPanel::show_recommendation() {
  if (!rec_) return;
  const sessions::BoundaryRecommendation& r = *rec_;
  ranking_->setRowCount(static_cast<int>(r.ranking.size()));
  for (size_t i = 0; i < r.ranking.size(); ++i) {
    const auto& s = r.ranking[i];
    const int row = static_cast<int>(i);
    ranking_->setItem(row, 0, dlg::cell(QString::number(i + 1), true));
    ranking_->setItem(row, 1, dlg::cell(QString::number(s.layer), true));
    ranking_->setItem(row, 2, dlg::cell(dlg::num(s.score), true));
    ranking_->setItem(row, 3,
                      dlg::cell(s.has_attn ? dlg::num(s.attn_kl) : QStringLiteral("n/a"), true));
    ranking_->setItem(
        row, 4, dlg::cell(s.has_attn ? dlg::num(s.attn_out_rel_err) : QStringLiteral("n/a"), true));
    ranking_->setItem(
        row, 5,
        dlg::cell(s.has_attn ? dlg::num(s.attn_top1, "%.4f") : QStringLiteral("n/a"), true));
    ranking_->setItem(row, 6, dlg::cell(dlg::num(s.k_rel_mse), true));
    ranking_->setItem(row, 7, dlg::cell(dlg::num(s.v_rel_mse), true));
    ranking_->setItem(
        row, 8,
        dlg::cell(s.skip_ratio > 0 ? dlg::num(s.skip_ratio, "%.3f\u00d7") : tr("\u2014"), true));
    auto* skip = dlg::cell(s.skip_rule ? tr("skipped") : QString());
    ranking_->setItem(row, 9, skip);
    auto* failed = dlg::cell(s.failed ? tr("FAILED") : QString());
    if (s.failed) failed->setForeground(dlg::error_color());
    ranking_->setItem(row, 10, failed);
  }

  const std::vector<int> current = wb_.current_config().boundary;
  std::vector<const sessions::BoundaryProposal*> props{&r.baseline};
  for (const auto& p : r.proposals) props.push_back(&p);
  proposals_->setRowCount(static_cast<int>(props.size()));
  for (size_t i = 0; i < props.size(); ++i) {
    const auto& p = *props[i];
    const int row = static_cast<int>(i);
    proposals_->setItem(
        row, 0, dlg::cell(i == 0 ? tr("0 (baseline)") : QString::number(p.boundary.size()), true));
    proposals_->setItem(row, 1, dlg::cell(layer_set_text(p.boundary)));
    proposals_->setItem(row, 2, dlg::cell(QString::asprintf("%.4f", p.ratio), true));
    proposals_->setItem(row, 3, dlg::cell(dlg::bytes(p.total_bytes), true));
    proposals_->setItem(row, 4, dlg::cell(dlg::num(p.attn_out_rel_err), true));
    proposals_->setItem(row, 5, dlg::cell(dlg::num(p.attn_kl), true));
    auto* top1 = dlg::cell(p.failed ? tr("FAILED") : dlg::num(p.attn_top1, "%.4f"), true);
    if (p.failed) top1->setForeground(dlg::error_color());
    proposals_->setItem(row, 6, top1);
    const bool is_current = p.boundary == current;
    auto* apply = new QPushButton(is_current ? tr("Current") : tr("Apply"));
    apply->setObjectName(QStringLiteral("apply_%1").arg(i));
    apply->setEnabled(!is_current);
    const int index = static_cast<int>(i) - 1;
    connect(apply, &QPushButton::clicked, this, [this, index] { apply_proposal(index); });
    proposals_->setCellWidget(row, 7, apply);
  }
  QStringList notes;
  for (const auto& n : r.notes) notes << QString::fromStdString(n);
  rec_notes_->setText(notes.join('\n'));
  rec_notes_->setVisible(!notes.isEmpty());
}

bool BoundaryPanel::apply_proposal(int index) {
  if (!rec_) return false;
  if (index < -1 || index >= static_cast<int>(rec_->proposals.size())) return false;
  const sessions::BoundaryProposal& p =
      index < 0 ? rec_->baseline : rec_->proposals[static_cast<size_t>(index)];
  wb_.set_boundary(p.boundary);
  show_recommendation();
  return true;
}

void BoundaryPanel::set_target_ratio(double r) { target_->setValue(r); }

bool BoundaryPanel::set_metric(const QString& metric) {
  const int i = metric_->findText(metric);
  if (i < 0) return false;
  metric_->setCurrentIndex(i);
  return true;
}

void BoundaryPanel::set_allow_boundary(bool on) { allow_boundary_->setChecked(on); }

bool BoundaryPanel::plan() {
  const std::optional<std::string> capture =
      capture_to_start(plan_job_, &BoundaryPanel::set_plan_error);
  if (!capture) return false;
  const sessions::RunConfig cfg = wb_.current_config();
  sessions::PlanOptions opt;
  opt.target_ratio = target_->value();
  opt.metric = metric_->currentText().toStdString();
  opt.allow_boundary = allow_boundary_->isChecked();
  const std::string path = *capture;
  QPointer<BoundaryPanel> self(this);
  plan_job_name_ = tr("Budget plan");
  plan_job_ = wb_.start_job(
      plan_job_name_, [self, path, cfg, opt](JobControl& job) -> Workbench::Continuation {
        return dlg::compute_then<sessions::PlanResult>(
            self, [&] { return sessions::plan_budget(path, cfg, opt, &job); },
            [](BoundaryPanel& panel, const std::shared_ptr<const sessions::PlanResult>& p,
               const QString& err) {
              panel.plan_ = p;  // null when the plan failed: the tab shows its intro and the error
              panel.show_plan();
              if (!p) panel.set_plan_error(err);
            });
      });
  show_started(plan_progress_, plan_status_,
               tr("Measuring every bit width per layer and stream\u2026"));
  return true;
}

void BoundaryPanel::show_plan() {
  if (!plan_) {
    plan_layers_->setRowCount(0);
    plan_totals_->clearContents();
    plan_notes_->clear();
    plan_status_->setText(plan_intro());
    update_buttons();
    return;
  }
  const sessions::PlanResult& p = *plan_;
  auto options = [](const std::string& param, const std::vector<std::string>& opts) {
    if (param.empty()) return tr("fixed");
    QStringList o;
    for (const auto& x : opts) o << QString::fromStdString(x);
    return QStringLiteral("%1 \u2208 {%2}").arg(QString::fromStdString(param), o.join(','));
  };
  plan_status_->setText(
      tr("Plan for ratio \u2265 %1 minimising the summed stream-only %2 (%3 measurement runs). "
         "K: %4; V: %5.")
          .arg(p.target_ratio, 0, 'g', 4)
          .arg(QString::fromStdString(p.metric))
          .arg(p.measurement_runs)
          .arg(options(p.k_param, p.k_options), options(p.v_param, p.v_options)));
  plan_layers_->setRowCount(static_cast<int>(p.layers.size()));
  for (size_t i = 0; i < p.layers.size(); ++i) {
    const auto& l = p.layers[i];
    const int row = static_cast<int>(i);
    plan_layers_->setItem(row, 0, dlg::cell(QString::number(l.layer), true));
    plan_layers_->setItem(row, 1, dlg::cell(l.boundary ? tr("boundary (bf16)") : tr("codec")));
    plan_layers_->setItem(
        row, 2, dlg::cell(l.boundary ? tr("\u2014") : QString::fromStdString(l.k_bits), true));
    plan_layers_->setItem(
        row, 3, dlg::cell(l.boundary ? tr("\u2014") : QString::fromStdString(l.v_bits), true));
    plan_layers_->setItem(row, 4, dlg::cell(dlg::bytes(l.bytes), true));
    plan_layers_->setItem(row, 5, dlg::cell(dlg::num(l.k_err), true));
    plan_layers_->setItem(row, 6, dlg::cell(dlg::num(l.v_err), true));
  }
  plan_totals_->setItem(0, 0, dlg::cell(tr("Promised")));
  plan_totals_->setItem(0, 1, dlg::cell(QString::asprintf("%.4f", p.promised_ratio), true));
  plan_totals_->setItem(0, 2, dlg::cell(dlg::bytes(p.promised_bytes), true));
  plan_totals_->setItem(0, 3, dlg::cell(dlg::num(p.promised_error, "%.5g"), true));
  plan_totals_->setItem(1, 0, dlg::cell(tr("Measured")));
  plan_totals_->setItem(1, 1, dlg::cell(QString::asprintf("%.4f", p.measured_ratio), true));
  plan_totals_->setItem(1, 2, dlg::cell(dlg::bytes(p.measured_bytes), true));
  plan_totals_->setItem(1, 3, dlg::cell(dlg::num(p.measured_error, "%.5g"), true));
  QStringList notes;
  notes << tr("bf16: %1 bytes").arg(dlg::bytes(p.bf16_bytes));
  if (p.measured_totals.is_object() && p.measured_totals.contains("attention")) {
    const auto& a = p.measured_totals["attention"];
    auto get = [&](const char* k) {
      return a.contains(k) && a[k].is_number() ? a[k].get<double>() : NAN;
    };
    notes << tr("Measured joint attention (both streams): out rel. err %1, KL %2, top-1 %3")
                 .arg(dlg::num(get("attn_out_rel_err")), dlg::num(get("attn_kl")),
                      dlg::num(get("attn_top1"), "%.4f"));
  }
  for (const auto& n : p.notes) notes << QString::fromStdString(n);
  plan_notes_->setText(notes.join('\n'));
  update_buttons();
}

bool BoundaryPanel::apply_plan() {
  if (!plan_) return false;
  wb_.set_config(plan_->config, tr("plan"));
  plan_status_->setText(tr("Plan applied as the current configuration."));
  return true;
}

void BoundaryPanel::on_jobs_changed() {
  bool rec_alive = false, plan_alive = false;
  for (const auto& j : wb_.jobs()) {
    if (j.id == rec_job_) {
      rec_alive = true;
      update_progress(rec_progress_, j);
    }
    if (j.id == plan_job_) {
      plan_alive = true;
      update_progress(plan_progress_, j);
    }
  }
  if (rec_job_ >= 0 && !rec_alive) {
    rec_job_ = -1;
    rec_progress_->setVisible(false);
  }
  if (plan_job_ >= 0 && !plan_alive) {
    plan_job_ = -1;
    plan_progress_->setVisible(false);
  }
  update_buttons();
}

}  // namespace kvwb::app
