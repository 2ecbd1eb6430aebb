#include "app/gui/slurm_dialog.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileDialog>
#include <QFileInfo>
#include <QFontDatabase>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPointer>
#include <QPushButton>
#include <QSpinBox>
#include <QStandardPaths>
#include <QVBoxLayout>
#include <filesystem>
#include <memory>

#include "app/gui/dialog_util.h"
#include "app/gui/workbench.h"
#include "base/errors.h"
#include "io/process.h"
#include "sessions/explore/slurm.h"

namespace kvwb::app {

SlurmDialog::SlurmDialog(Workbench& workbench, nlohmann::json grid, size_t cells,
                         std::vector<std::string> sweep_args, QWidget* parent)
    : QDialog(parent),
      wb_(workbench),
      grid_(std::move(grid)),
      cells_(cells),
      sweep_args_(std::move(sweep_args)) {
  setWindowTitle(tr("Sweep on a Slurm cluster"));
  setObjectName(QStringLiteral("slurm_dialog"));
  resize(1000, 760);
  auto* root = new QVBoxLayout(this);
  auto* hint = new QLabel(
      tr("Writes a folder with a Slurm job array (one shard of the %n grid cell(s) per task) and a "
         "merge job "
         "that runs after every shard succeeded (docs/cluster.md). Paths must be the same on the "
         "cluster's "
         "nodes. Submit it on the cluster with <tt>kvwb slurm submit --resume FOLDER</tt>; "
         "<tt>kvwb slurm status FOLDER</tt> shows progress.",
         nullptr, static_cast<int>(cells_)));
  hint->setWordWrap(true);
  root->addWidget(hint);
  auto* form = new QFormLayout;
  auto* folder_row = new QHBoxLayout;
  folder_ = new QLineEdit;
  folder_->setObjectName(QStringLiteral("slurm_folder"));
  folder_->setText(wb_.default_store_dir(QStringLiteral("slurm-sweep")));
  auto* browse = new QPushButton(tr("Browse\u2026"));
  folder_row->addWidget(folder_, 1);
  folder_row->addWidget(browse);
  form->addRow(tr("Folder (new or empty):"), folder_row);
  connect(browse, &QPushButton::clicked, this, [this] {
    const QString d =
        QFileDialog::getExistingDirectory(this, tr("Slurm sweep folder"), folder_->text());
    if (!d.isEmpty()) folder_->setText(d);
  });
  shards_ = new QSpinBox;
  shards_->setObjectName(QStringLiteral("slurm_shards"));
  shards_->setRange(1, static_cast<int>(std::max<size_t>(1, std::min<size_t>(cells_, 1 << 20))));
  shards_->setValue(static_cast<int>(std::min<size_t>(cells_ ? cells_ : 1, 8)));
  shards_->setToolTip(
      tr("Array tasks; shard I runs the cells at positions = I (mod N) of the "
         "configuration-hash-sorted cell list"));
  form->addRow(tr("Shards (array tasks):"), shards_);
  partition_ = dlg::line_edit(tr("cluster default"));
  form->addRow(tr("Partition:"), partition_);
  time_ = dlg::line_edit(tr("partition default, e.g. 04:00:00"));
  form->addRow(tr("Time limit per shard:"), time_);
  mem_ = dlg::line_edit(tr("default, e.g. 16G"));
  form->addRow(tr("Memory:"), mem_);
  cpus_ = new QSpinBox;
  cpus_->setRange(1, 1 << 16);
  cpus_->setValue(1);
  cpus_->setToolTip(tr("Each shard runs this many cells at a time (kvwb sweep --jobs)"));
  form->addRow(tr("CPUs per task:"), cpus_);
  gpus_ = new QSpinBox;
  gpus_->setRange(0, 1 << 10);
  gpus_->setSpecialValueText(tr("none"));
  form->addRow(tr("GPUs per task:"), gpus_);
  sbatch_args_ =
      dlg::line_edit(tr("extra sbatch arguments as shell words, e.g. --qos=high --account=lab"));
  form->addRow(tr("Extra sbatch arguments:"), sbatch_args_);
  kvwb_ = new QLineEdit;
  kvwb_->setObjectName(QStringLiteral("slurm_kvwb"));
  kvwb_->setText(default_kvwb_path());
  form->addRow(tr("kvwb binary on the nodes:"), kvwb_);
  root->addLayout(form);

  auto* buttons = new QHBoxLayout;
  preview_button_ = dlg::button(tr("Preview"), QString(), this, [this] { preview(); });
  write_button_ = dlg::button(tr("Write scripts"), QStringLiteral("slurm_write"), this,
                              [this] { write_scripts(); });
  write_button_->setDefault(true);
  auto* close = dlg::button(tr("Close"), QString(), this, [this] { accept(); });
  buttons->addStretch(1);
  buttons->addWidget(preview_button_);
  buttons->addWidget(write_button_);
  buttons->addWidget(close);
  root->addLayout(buttons);

  status_ = dlg::selectable_label(QStringLiteral("slurm_status"));
  root->addWidget(status_);
  text_ = new QPlainTextEdit;
  text_->setObjectName(QStringLiteral("slurm_text"));
  text_->setReadOnly(true);
  text_->setLineWrapMode(QPlainTextEdit::NoWrap);
  text_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  root->addWidget(text_, 1);
}

SlurmDialog::~SlurmDialog() = default;

void SlurmDialog::set_folder(const QString& dir) { folder_->setText(dir); }
void SlurmDialog::set_shards(int n) { shards_->setValue(n); }
void SlurmDialog::set_partition(const QString& p) { partition_->setText(p); }
void SlurmDialog::set_time(const QString& t) { time_->setText(t); }
void SlurmDialog::set_mem(const QString& m) { mem_->setText(m); }
void SlurmDialog::set_cpus_per_task(int n) { cpus_->setValue(n); }
void SlurmDialog::set_gpus_per_task(int n) { gpus_->setValue(n); }
void SlurmDialog::set_sbatch_args(const QString& words) { sbatch_args_->setText(words); }
void SlurmDialog::set_kvwb(const QString& path) { kvwb_->setText(path); }
QString SlurmDialog::kvwb() const { return kvwb_->text().trimmed(); }
QString SlurmDialog::script_text() const { return text_->toPlainText(); }
QString SlurmDialog::status_text() const { return status_->text(); }

QString SlurmDialog::default_kvwb_path() {
  const QString dir = QCoreApplication::applicationDirPath();
  for (const QString& p : {dir + QStringLiteral("/kvwb"), dir + QStringLiteral("/../cli/kvwb")}) {
    const QFileInfo fi(p);
    if (fi.isFile() && fi.isExecutable()) return QDir::cleanPath(fi.absoluteFilePath());
  }
  return QStandardPaths::findExecutable(QStringLiteral("kvwb"));
}

void SlurmDialog::show_error(const QString& text) {
  status_->setStyleSheet(dlg::error_style());
  status_->setText(text);
}

bool SlurmDialog::preview() { return start(false); }
bool SlurmDialog::write_scripts() { return start(true); }

bool SlurmDialog::start(bool write) {
  if (busy()) return false;
  if (wb_.capture_path().isEmpty()) {
    show_error(tr("Open a capture first"));
    return false;
  }
  if (cells_ == 0) {
    show_error(tr("The grid has no cells"));
    return false;
  }
  if (kvwb().isEmpty()) {
    show_error(tr("Give the path of the kvwb binary on the cluster's nodes"));
    return false;
  }
  sessions::SlurmSweepRequest q;
  q.dir = folder_->text().trimmed().toStdString();
  q.kvwb = kvwb().toStdString();
  q.capture = wb_.capture_path().toStdString();
  q.grid = grid_;
  q.shards = static_cast<size_t>(shards_->value());
  q.resources.partition = partition_->text().trimmed().toStdString();
  q.resources.time = time_->text().trimmed().toStdString();
  q.resources.mem = mem_->text().trimmed().toStdString();
  q.resources.cpus_per_task = cpus_->value();
  q.resources.gpus_per_task = gpus_->value();
  try {
    q.resources.sbatch_args = io::split_shell_words(sbatch_args_->text().toStdString());
  } catch (const std::exception& e) {
    show_error(tr("Extra sbatch arguments: %1").arg(dlg::error_text(e)));
    return false;
  }
  q.sweep_args = sweep_args_;
  if (q.dir.empty()) {
    show_error(tr("Choose a folder"));
    return false;
  }
  status_->setStyleSheet(QString());
  status_->setText(write ? tr("Writing\u2026") : tr("Hashing the capture\u2026"));
  QPointer<SlurmDialog> self(this);
  job_id_ = wb_.start_job(
      write ? tr("Slurm: write scripts") : tr("Slurm: preview"),
      [self, q, write](JobControl&) -> Workbench::Continuation {
        auto text = std::make_shared<QString>();
        auto err = std::make_shared<QString>();
        auto dir = std::make_shared<QString>();
        try {
          const sessions::SlurmSweep s = sessions::describe_slurm_sweep(q);
          *dir = QString::fromStdString(s.dir);
          std::error_code ec;
          if (write && std::filesystem::exists(s.dir, ec) &&
              (!std::filesystem::is_directory(s.dir, ec) || !std::filesystem::is_empty(s.dir, ec)))
            throw InvalidArgument("the folder " + s.dir +
                                  " exists and is not empty; choose a new one");
          std::vector<size_t> all(s.shards);
          for (size_t i = 0; i < all.size(); ++i) all[i] = i;
          std::string t = sessions::slurm_dry_run_text(s, all);
          if (write) {
            sessions::write_slurm_folder(s);
            const std::string head =
                "# kvwb slurm submit --dry-run: nothing was written or submitted.\n";
            if (t.rfind(head, 0) == 0)
              t = "# Written by kvwb-gui; nothing was submitted.\n" + t.substr(head.size());
          }
          *text = QString::fromStdString(t);
        } catch (const std::exception& e) {
          *err = dlg::error_text(e);
        }
        return [self, text, err, dir, write] {
          if (!self) return;
          self->job_id_ = -1;
          if (!err->isEmpty()) {
            self->show_error(*err);
            return;
          }
          self->text_->setPlainText(*text);
          self->status_->setStyleSheet(QString());
          const QString submit = QString::fromStdString("kvwb slurm submit --resume " +
                                                        io::shell_quote(dir->toStdString()));
          self->status_->setText(
              write ? tr("Wrote %1. Submit it on the cluster with: %2")
                          .arg(QDir::toNativeSeparators(*dir), submit)
                    : tr("Preview of %1 (nothing written).").arg(QDir::toNativeSeparators(*dir)));
        };
      });
  return true;
}

}  // namespace kvwb::app
