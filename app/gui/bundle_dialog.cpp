#include "app/gui/bundle_dialog.h"

#include <QCheckBox>
#include <QDialogButtonBox>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPointer>
#include <QProgressBar>
#include <QPushButton>
#include <QTabBar>
#include <QTabWidget>
#include <QTableWidget>
#include <QVBoxLayout>
#include <algorithm>
#include <fstream>

#include "app/gui/dialog_util.h"
#include "app/gui/workbench.h"

namespace kvwb::app {

namespace {

/// The reference plugin's compatibility issues recorded in a bundle's codec_config.json
/// (deploy_compatibility.reference_plugin.issues, bundle-format.md §5.2); empty when the file or
/// the section is absent or unreadable (the bundle check reports those problems itself).
std::vector<std::string> plugin_issues(const std::string& dir) {
  std::vector<std::string> out;
  std::ifstream in(dir + "/codec_config.json");
  if (!in) return out;
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return out;
  const nlohmann::json* p = &j;
  for (const char* key : {"deploy_compatibility", "reference_plugin", "issues"}) {
    if (!p->is_object() || !p->contains(key)) return out;
    p = &(*p)[key];
  }
  if (!p->is_array()) return out;
  for (const auto& x : *p)
    if (x.is_string()) out.push_back(x.get<std::string>());
  return out;
}

/// Counts every reference-plugin compatibility issue as a warning of the check (a bundle the
/// reference plugin cannot load as written is not "0 warnings"). The core's check already warns
/// about per-layer bit widths (bundle-format.md §10, "codec_config.json: reference plugin
/// compatibility: …"); an issue it reported is not counted twice.
void add_plugin_warnings(sessions::BundleCheckReport& r, const std::string& dir) {
  for (const auto& issue : plugin_issues(dir)) {
    const std::string w = "reference plugin compatibility: " + issue;
    const bool reported = std::any_of(r.warnings.begin(), r.warnings.end(), [&](const std::string& x) {
      return x.size() >= w.size() && x.compare(x.size() - w.size(), w.size(), w) == 0;
    });
    if (!reported) r.warnings.push_back(w);
  }
}

}  // namespace

namespace {

QListWidget* make_list(const char* name) {
  auto* l = new QListWidget;
  l->setObjectName(QString::fromLatin1(name));
  l->setWordWrap(true);
  l->setSelectionMode(QAbstractItemView::ExtendedSelection);
  return l;
}

void fill_list(QListWidget* list, const std::vector<std::string>& lines, const QString& prefix,
               const QColor& color = QColor()) {
  list->clear();
  for (const auto& s : lines) {
    auto* it = new QListWidgetItem(prefix + QString::fromStdString(s), list);
    if (color.isValid()) it->setForeground(color);
  }
}

}  // namespace

BundleDialog::BundleDialog(Workbench& workbench, QWidget* parent)
    : QDialog(parent), wb_(workbench) {
  setWindowTitle(tr("Export calibration bundle"));
  setObjectName(QStringLiteral("bundle_dialog"));
  build_ui();
  connect(&wb_, &Workbench::jobs_changed, this, &BundleDialog::on_jobs_changed);
  dlg::watch_job(
      wb_, this, job_, job_name_, [this](const QString& e) { set_error(e); },
      [this] { set_error(tr("Cancelled: nothing was written (the export is atomic).")); });
  update_buttons();
}

BundleDialog::~BundleDialog() = default;

void BundleDialog::build_ui() {
  resize(980, 720);
  auto* root = new QVBoxLayout(this);

  auto* exp_box = new QGroupBox(tr("Export the current configuration"));
  auto* form = new QFormLayout(exp_box);
  auto* dest_row = new QHBoxLayout;
  dest_ = new QLineEdit;
  dest_->setObjectName(QStringLiteral("destination"));
  dest_->setPlaceholderText(tr("bundle folder to create"));
  auto* browse = new QPushButton(tr("Browse\u2026"));
  dest_row->addWidget(dest_, 1);
  dest_row->addWidget(browse);
  form->addRow(tr("Destination:"), dest_row);
  connect(browse, &QPushButton::clicked, this, [this] {
    const QString d = QFileDialog::getSaveFileName(this, tr("Bundle folder"), dest_->text(),
                                                   QString(), nullptr, QFileDialog::ShowDirsOnly);
    if (!d.isEmpty()) set_destination(d);
  });
  force_ = new QCheckBox(tr("Replace an existing non-empty folder (force)"));
  force_->setObjectName(QStringLiteral("force"));
  form->addRow(QString(), force_);
  calibrate_ = new QCheckBox(
      tr("Calibrate Lloyd-Max centroids of Kakeya-PCA streams (else the Gaussian table)"));
  calibrate_->setObjectName(QStringLiteral("calibrate"));
  calibrate_->setChecked(true);
  form->addRow(QString(), calibrate_);
  deploy_root_ =
      dlg::line_edit(tr("absolute folder for deploy.env paths (default: the bundle's location)"));
  form->addRow(tr("Deploy root:"), deploy_root_);
  run_id_ = dlg::line_edit(tr("selection.run_id (optional)"));
  form->addRow(tr("Run id:"), run_id_);
  criterion_ = new QLineEdit(QStringLiteral("user choice"));
  form->addRow(tr("Criterion:"), criterion_);
  root->addWidget(exp_box);

  auto* actions = new QHBoxLayout;
  export_button_ =
      dlg::button(tr("Export"), QStringLiteral("export"), this, [this] { start_export(); });
  export_button_->setDefault(true);
  check_button_ =
      dlg::button(tr("Check existing bundle\u2026"), QStringLiteral("check"), this, [this] {
        const QString d =
            QFileDialog::getExistingDirectory(this, tr("Bundle folder to check"), dest_->text());
        if (!d.isEmpty()) start_check(d);
      });
  partial_ = new QCheckBox(tr("Partial (reference artefact: missing files are warnings)"));
  partial_->setObjectName(QStringLiteral("partial"));
  cancel_button_ = dlg::cancel_button(tr("Cancel"), wb_, job_, this);
  actions->addWidget(export_button_);
  actions->addWidget(cancel_button_);
  actions->addSpacing(24);
  actions->addWidget(check_button_);
  actions->addWidget(partial_);
  actions->addStretch(1);
  root->addLayout(actions);

  progress_ = new QProgressBar;
  progress_->setVisible(false);
  root->addWidget(progress_);
  error_ = dlg::selectable_label(QStringLiteral("error"));
  error_->setVisible(false);
  root->addWidget(error_);

  auto* rep_box = new QGroupBox(tr("Check report"));
  auto* rl = new QVBoxLayout(rep_box);
  headline_ = dlg::selectable_label(QStringLiteral("headline"), tr("No bundle checked yet."));
  rl->addWidget(headline_);
  export_info_ = dlg::selectable_label();
  export_info_->setVisible(false);
  rl->addWidget(export_info_);
  report_tabs_ = new QTabWidget;
  report_tabs_->setObjectName(QStringLiteral("report_tabs"));
  checks_ = make_list("checks");
  warnings_ = make_list("warnings");
  errors_ = make_list("errors");
  left_out_ = make_list("left_out");
  roundtrip_ = new QTableWidget(0, 6);
  roundtrip_->setObjectName(QStringLiteral("roundtrip"));
  roundtrip_->setHorizontalHeaderLabels({tr("Layer"), tr("KV head"), tr("fwd_err"), tr("rev_err"),
                                         tr("factor_err_rel"),
                                         tr("vs bar %1").arg(sessions::kBundleRoundTripBar)});
  roundtrip_->verticalHeader()->setVisible(false);
  roundtrip_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  roundtrip_->setAlternatingRowColors(true);
  roundtrip_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  report_tabs_->addTab(checks_, tr("Checks"));
  report_tabs_->addTab(warnings_, tr("Warnings"));
  report_tabs_->addTab(errors_, tr("Errors"));
  report_tabs_->addTab(roundtrip_, tr("Round trip"));
  report_tabs_->addTab(left_out_, tr("deploy.env left out"));
  rl->addWidget(report_tabs_, 1);
  root->addWidget(rep_box, 1);

  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Close);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  root->addWidget(buttons);
}

void BundleDialog::set_destination(const QString& dir) { dest_->setText(dir); }
QString BundleDialog::destination() const { return dest_->text(); }
void BundleDialog::set_force(bool on) { force_->setChecked(on); }
void BundleDialog::set_calibrate_centroids(bool on) { calibrate_->setChecked(on); }
void BundleDialog::set_deploy_root(const QString& dir) { deploy_root_->setText(dir); }
void BundleDialog::set_run_id(const QString& id) { run_id_->setText(id); }
void BundleDialog::set_criterion(const QString& criterion) { criterion_->setText(criterion); }
void BundleDialog::set_partial(bool on) { partial_->setChecked(on); }
QString BundleDialog::error_text() const {
  return error_->isVisible() ? error_->text() : QString();
}
QString BundleDialog::headline() const { return headline_->text(); }

void BundleDialog::set_error(const QString& text) {
  error_->setStyleSheet(dlg::error_style());
  error_->setText(text);
  error_->setVisible(!text.isEmpty());
}

void BundleDialog::update_buttons() {
  const bool busy = job_ >= 0;
  export_button_->setEnabled(!busy && !wb_.capture_path().isEmpty());
  check_button_->setEnabled(!busy);
  cancel_button_->setEnabled(busy);
}

void BundleDialog::clear_report() {
  report_.reset();
  headline_->setStyleSheet(QString());
  headline_->setText(tr("No report."));
  export_info_->clear();
  export_info_->setVisible(false);
  for (QListWidget* l : {checks_, warnings_, errors_, left_out_}) l->clear();
  roundtrip_->setRowCount(0);
  for (int i = 0; i < report_tabs_->count(); ++i)
    report_tabs_->setTabText(i, report_tabs_->tabText(i).section(QStringLiteral(" ("), 0, 0));
}

bool BundleDialog::start_export() {
  if (job_ >= 0) return false;
  const QString capture = wb_.capture_path();
  if (capture.isEmpty()) {
    set_error(tr("Open a capture first"));
    return false;
  }
  const QString dest = dest_->text().trimmed();
  if (dest.isEmpty()) {
    set_error(tr("Choose a destination folder"));
    return false;
  }
  set_error(QString());
  clear_report();
  const std::string out = QFileInfo(dest).absoluteFilePath().toStdString();
  const std::string path = capture.toStdString();
  const sessions::RunConfig cfg = wb_.current_config();
  sessions::BundleExportOptions opt;
  opt.force = force_->isChecked();
  opt.calibrate_centroids = calibrate_->isChecked();
  opt.deploy_root = deploy_root_->text().trimmed().toStdString();
  opt.run_id = run_id_->text().trimmed().toStdString();
  opt.criterion = criterion_->text().trimmed().toStdString();
  QPointer<BundleDialog> self(this);
  job_name_ = tr("Export bundle");
  job_ = wb_.start_job(
      job_name_,
      [self, path, cfg, out, opt](JobControl& job) mutable -> Workbench::Continuation {
        opt.job = &job;
        std::shared_ptr<const sessions::BundleExportResult> exported;
        auto report = std::make_shared<sessions::BundleCheckReport>();
        QString err;
        try {
          exported = std::make_shared<const sessions::BundleExportResult>(
              sessions::export_bundle(path, cfg, out, opt));
          *report = sessions::check_bundle(out);
          add_plugin_warnings(*report, out);
        } catch (const Cancelled&) {
          throw;
        } catch (const std::exception& e) {
          err = dlg::error_text(e);
        }
        const QString dir = QString::fromStdString(out);
        return [self, exported, report, err, dir] {
          if (!self) return;
          if (!err.isEmpty()) {
            self->set_error(err);
            self->headline_->setText(
                tr("Export failed; %1 was left as it was (the export is atomic).")
                    .arg(QDir::toNativeSeparators(dir)));
            return;
          }
          self->show_report(dir, *report, exported);
        };
      });
  progress_->setVisible(true);
  progress_->setRange(0, 0);
  update_buttons();
  return true;
}

bool BundleDialog::start_check(const QString& dir) {
  if (job_ >= 0) return false;
  set_error(QString());
  clear_report();
  sessions::BundleCheckOptions opt;
  opt.partial = partial_->isChecked();
  const std::string d = QFileInfo(dir).absoluteFilePath().toStdString();
  QPointer<BundleDialog> self(this);
  job_name_ = tr("Check bundle");
  job_ = wb_.start_job(job_name_, [self, d, opt](JobControl&) -> Workbench::Continuation {
    auto checked = std::make_shared<sessions::BundleCheckReport>(sessions::check_bundle(d, opt));
    add_plugin_warnings(*checked, d);
    std::shared_ptr<const sessions::BundleCheckReport> report = checked;
    const QString dir = QString::fromStdString(d);
    return [self, report, dir] {
      if (self) self->show_report(dir, *report, nullptr);
    };
  });
  progress_->setVisible(true);
  progress_->setRange(0, 0);
  update_buttons();
  return true;
}

void BundleDialog::show_report(
    const QString& dir, const sessions::BundleCheckReport& r,
    const std::shared_ptr<const sessions::BundleExportResult>& exported) {
  report_ = r;
  const QString where = QDir::toNativeSeparators(dir);
  if (r.ok) {
    headline_->setStyleSheet(QStringLiteral("color: #1e7b34; font-weight: bold;"));
    headline_->setText(r.warnings.empty() ? tr("Bundle check passed: %1").arg(where)
                                          : tr("Bundle check passed with %n warning(s): %1",
                                               nullptr, static_cast<int>(r.warnings.size()))
                                                .arg(where));
  } else {
    headline_->setStyleSheet(dlg::error_style() + QStringLiteral(" font-weight: bold;"));
    headline_->setText(
        tr("Bundle check FAILED (%n error(s)): %1", nullptr, static_cast<int>(r.errors.size()))
            .arg(where));
  }
  if (exported) {
    QStringList info;
    info << tr("Exported %n file(s); measured ratio vs bf16 %1; bundle format version %2.", nullptr,
               static_cast<int>(exported->files.size()))
                .arg(QString::asprintf("%.4f", exported->run.ratio_vs_bf16()))
                .arg(exported->format_version);
    if (!exported->deploy_issues.empty())
      info << tr(
          "Reference plugin: %n compatibility issue(s), counted as warnings (see the "
          "Warnings tab).",
          nullptr, static_cast<int>(exported->deploy_issues.size()));
    for (const auto& s : exported->warnings)
      info << tr("Warning: %1").arg(QString::fromStdString(s));
    export_info_->setText(info.join('\n'));
    export_info_->setVisible(true);
  }
  fill_list(checks_, r.checks, QStringLiteral("\u2713 "), QColor(0x1e, 0x7b, 0x34));
  fill_list(warnings_, r.warnings, QStringLiteral("\u26a0 "), QColor(0x9a, 0x67, 0x00));
  fill_list(errors_, r.errors, QStringLiteral("\u2717 "), dlg::error_color());
  fill_list(left_out_, r.deploy_left_out, QString());
  if (r.deploy_left_out.empty())
    new QListWidgetItem(tr("deploy.env expresses every setting of codec_config.json"), left_out_);
  roundtrip_->setRowCount(static_cast<int>(r.roundtrip.size()));
  for (size_t i = 0; i < r.roundtrip.size(); ++i) {
    const auto& p = r.roundtrip[i];
    const int row = static_cast<int>(i);
    const double bar = sessions::kBundleRoundTripBar;
    const bool pass = p.fwd_err <= bar && p.rev_err <= bar && p.factor_err_rel <= bar;
    roundtrip_->setItem(row, 0, dlg::cell(QString::number(p.layer), true));
    roundtrip_->setItem(row, 1, dlg::cell(QString::number(p.kv_head), true));
    roundtrip_->setItem(row, 2, dlg::cell(dlg::num(p.fwd_err, "%.3g"), true));
    roundtrip_->setItem(row, 3, dlg::cell(dlg::num(p.rev_err, "%.3g"), true));
    roundtrip_->setItem(row, 4, dlg::cell(dlg::num(p.factor_err_rel, "%.3g"), true));
    auto* verdict = dlg::cell(pass ? tr("pass") : tr("FAIL"));
    verdict->setForeground(pass ? QColor(0x1e, 0x7b, 0x34) : dlg::error_color());
    roundtrip_->setItem(row, 5, verdict);
  }
  roundtrip_->resizeColumnsToContents();
  roundtrip_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  report_tabs_->setTabText(0, tr("Checks (%1)").arg(r.checks.size()));
  report_tabs_->setTabText(1, tr("Warnings (%1)").arg(r.warnings.size()));
  report_tabs_->setTabText(2, tr("Errors (%1)").arg(r.errors.size()));
  report_tabs_->setTabText(3, tr("Round trip (%1)").arg(r.roundtrip.size()));
  report_tabs_->setTabText(4, tr("deploy.env left out (%1)").arg(r.deploy_left_out.size()));
  report_tabs_->tabBar()->setTabTextColor(2, r.errors.empty() ? QColor() : dlg::error_color());
  report_tabs_->setCurrentIndex(r.errors.empty() ? 0 : 2);
  emit checked(dir);
}

void BundleDialog::on_jobs_changed() {
  if (job_ < 0) return;
  for (const auto& j : wb_.jobs()) {
    if (j.id != job_) continue;
    if (j.total > 0) {
      progress_->setRange(0, static_cast<int>(j.total));
      progress_->setValue(static_cast<int>(j.done));
    }
    if (!j.detail.isEmpty()) progress_->setFormat(j.detail);
    return;
  }
  job_ = -1;
  progress_->setVisible(false);
  update_buttons();
}

}  // namespace kvwb::app
