// The workbench main window (app/gui/main_window.h).
#include "app/gui/main_window.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QCheckBox>
#include <QCoreApplication>
#include <QDialog>
#include <QDialogButtonBox>
#include <QFormLayout>
#include <QSpinBox>
#include <QDir>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QElapsedTimer>
#include <QFileDialog>
#include <QFileInfo>
#include <QKeySequence>
#include <QLabel>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QOpenGLWidget>
#include <QPainter>
#include <QProgressBar>
#include <QSettings>
#include <QStatusBar>
#include <QTimer>
#include <QToolButton>
#include <QUrl>
#include <algorithm>
#include <cstdio>

#include "app/gui/boundary_panel.h"
#include "app/gui/bundle_dialog.h"
#include "app/gui/report_export.h"
#include "app/gui/sweep_dialog.h"
#include "app/gui/view_factory.h"
#include "base/errors.h"
#include "base/thread_pool.h"
#include "io/atomic_file.h"
#include "sessions/config/run_config.h"
#include "sessions/explore/result_store.h"
#include "sessions/run/runner.h"
#include "views/config_view.h"

namespace kvwb::app {
namespace {

constexpr int kMaxRecent = 10;

bool is_session_path(const QString& path) {
  return path.endsWith(".kvwb.json", Qt::CaseInsensitive) ||
         path.endsWith(".json", Qt::CaseInsensitive);
}
bool is_capture_path(const QString& path) { return path.endsWith(".h5", Qt::CaseInsensitive); }
/// A sweep result store: a folder holding store.json (docs/sweeps.md).
/// A result store folder, or a Slurm sweep folder (its merged store is opened).
bool is_store_path(const QString& path) {
  return QFileInfo(path).isDir() && (QFileInfo::exists(QDir(path).filePath("store.json")) ||
                                     QFileInfo::exists(QDir(path).filePath("submission.json")));
}

QString q(const std::string& s) { return QString::fromStdString(s); }

}  // namespace

MainWindow::MainWindow(const Options& options, QWidget* parent)
    : QMainWindow(parent), options_(options), wb_(new Workbench(this)) {
  setObjectName("kvwb_main_window");
  setAcceptDrops(true);
  setDockNestingEnabled(true);
  setDocumentMode(true);
  wb_->set_autosave_enabled(options_.autosave);
  build_docks();
  build_menus();
  build_status_bar();

  connect(wb_, &Workbench::snapshot_changed, this, &MainWindow::on_snapshot);
  connect(wb_, &Workbench::document_changed, this, [this] {
    update_title();
    update_undo_actions();
  });
  jobs_timer_ = new QTimer(this);
  jobs_timer_->setSingleShot(true);
  jobs_timer_->setInterval(250);
  connect(jobs_timer_, &QTimer::timeout, this, &MainWindow::update_jobs);
  connect(wb_, &Workbench::jobs_changed, this, [this] {
    if (wb_->jobs().size() != shown_jobs_)
      update_jobs();  // a job started or ended: at once
    else if (!jobs_timer_->isActive())
      jobs_timer_->start();
  });
  connect(wb_, &Workbench::job_failed, this,
          [this](const QString& name, const QString& code, const QString& msg) {
            report_error(name + " failed", code, msg);
          });
  connect(wb_, &Workbench::job_cancelled, this,
          [this](const QString& name) { statusBar()->showMessage(name + " cancelled", 5000); });
  connect(wb_, &Workbench::message, this, [this](const QString& level, const QString& text) {
    if (level == "error")
      report_error("Error", "", text);
    else
      statusBar()->showMessage(text, 8000);
  });

  resize(1500, 950);
  bool restored = false;
  if (options_.use_settings) {
    QSettings s;
    wb_->set_thread_setting(s.value("run/threads", 0).toInt());
    wb_->set_result_cache_enabled(s.value("run/result_cache", true).toBool());
    if (s.contains("window/geometry")) restoreGeometry(s.value("window/geometry").toByteArray());
    if (s.contains("window/state")) restored = restoreState(s.value("window/state").toByteArray());
  }
  default_split_pending_ = !restored;
  on_snapshot(wb_->snapshot());
  update_title();
  update_undo_actions();
  update_jobs();
}

MainWindow::~MainWindow() = default;

void MainWindow::build_docks() {
  // Left: the layer map (the main interaction, always visible). Right, tabbed: the charts, the
  // Pareto view and the configuration editor. Docks are named for saveState.
  for (const QString& name : view_names()) {
    views::View* v = make_view(name, nullptr);
    // Tab titles short enough for eight tabs in a 1200 px window (the View menu has full names).
    static const std::map<QString, QString> kTabTitle = {{"sigma-q", "Σ_q"},
                                                         {"distribution", "Distribution"},
                                                         {"layer-error", "Layer error"},
                                                         {"compare", "Compare"}};
    const auto short_title = kTabTitle.find(name);
    auto* dock = new QDockWidget(
        short_title != kTabTitle.end() ? short_title->second : v->view_title(), this);
    dock->setToolTip(v->view_title());
    dock->setObjectName("dock_" + name);
    dock->setWidget(v);
    dock->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable |
                      QDockWidget::DockWidgetClosable);
    views_[name] = v;
    docks_[name] = dock;
    connect(v, &views::View::select_requested, wb_, &Workbench::select, Qt::QueuedConnection);
    connect(v, &views::View::boundary_toggle_requested, wb_, &Workbench::toggle_boundary,
            Qt::QueuedConnection);
    connect(v, &views::View::config_requested, wb_, &Workbench::set_config, Qt::QueuedConnection);
    connect(v, &views::View::sweep_requested, wb_, &Workbench::set_active_sweep,
            Qt::QueuedConnection);
    connect(
        v, &views::View::recall_requested, wb_, [this](quint64 id) { wb_->recall(id); },
        Qt::QueuedConnection);
    connect(
        v, &views::View::pin_baseline_requested, wb_,
        [this](quint64 id) { id == 0 ? wb_->pin_current_as_baseline() : wb_->pin_baseline(id); },
        Qt::QueuedConnection);
    connect(
        v, &views::View::pin_config_requested, wb_,
        [this](const sessions::RunConfig& c, const QString& label) {
          wb_->pin_baseline_config(c, label);
        },
        Qt::QueuedConnection);
    connect(v, &views::View::clear_baseline_requested, wb_, &Workbench::clear_baseline,
            Qt::QueuedConnection);
    connect(v, &views::View::message_requested, this,
            [this](const QString& level, const QString& text) {
              if (level == "error")
                report_error("Error", "", text);
              else
                statusBar()->showMessage(text, 8000);
            });
    connect(dock, &QDockWidget::visibilityChanged, this, [this, name](bool visible) {
      if (!visible) return;
      current_view_ = name;
      schedule_delivery(name);
    });
  }
  // The layer map keeps at least 340 px (its controls wrap onto two rows); the charts get the rest.
  views_["layer-map"]->setMinimumWidth(340);
  addDockWidget(Qt::LeftDockWidgetArea, docks_["layer-map"]);
  addDockWidget(Qt::RightDockWidgetArea, docks_["spectrum"]);
  for (const char* n : {"sigma-q", "distribution", "layer-error", "pareto", "config", "compare"})
    tabifyDockWidget(docks_["spectrum"], docks_[n]);
  docks_["spectrum"]->raise();
  current_view_ = "layer-map";
  connect(this, &QMainWindow::tabifiedDockWidgetActivated, this, [this](QDockWidget* d) {
    for (const auto& [name, dock] : docks_)
      if (dock == d) current_view_ = name;
  });
}

void MainWindow::build_menus() {
  // ---- File ----
  QMenu* file = menuBar()->addMenu("&File");
  QAction* a = file->addAction("&Open capture…", this, [this] {
    const QString p = ask_open_path("Open capture", "Captures (*.kvc.h5 *.h5);;All files (*)");
    if (!p.isEmpty()) open_capture_file(p);
  });
  a->setShortcut(QKeySequence::Open);
  file->addAction("Open &session…", this, [this] {
    const QString p = ask_open_path("Open session", "Sessions (*.kvwb.json *.json);;All files (*)");
    if (!p.isEmpty()) open_session_file(p);
  });
  file->addAction("Open sweep s&tore…", this, [this] {
    const QString d = QFileDialog::getExistingDirectory(this, "Open sweep result store");
    if (!d.isEmpty()) open_sweep_store(d);
  });
  recent_menu_ = file->addMenu("&Recent files");
  rebuild_recent_menu();
  file->addSeparator();
  a = file->addAction("&Save session", this, &MainWindow::save);
  a->setShortcut(QKeySequence::Save);
  file->addAction("Save session &as…", this, &MainWindow::save_as);
  file->addSeparator();
  QMenu* exp = file->addMenu("&Export");
  exp->addAction("View &picture (PNG / SVG / PDF)…", this, &MainWindow::export_picture);
  exp->addAction("View &data (CSV)…", this, &MainWindow::export_csv);
  exp->addSeparator();
  exp->addAction("&Configuration (JSON)…", this, &MainWindow::export_config);
  exp->addAction("Run results (&JSON)…", this, [this] { export_results(false); });
  exp->addAction("Run results (C&SV)…", this, [this] { export_results(true); });
  exp->addSeparator();
  exp->addAction("&Bundle…", this, &MainWindow::open_bundle_dialog);
  exp->addAction("&Report (HTML + PDF)…", this, [this] {
    QString p = ask_save_path("Export report", "report.html",
                              "HTML report, with a PDF beside it (*.html);;PDF report only (*.pdf)");
    if (p.isEmpty()) return;
    if (p.endsWith(".pdf", Qt::CaseInsensitive)) {
      export_report(QString(), p);
    } else {
      if (!p.endsWith(".html", Qt::CaseInsensitive) && !p.endsWith(".htm", Qt::CaseInsensitive))
        p += ".html";
      export_report(p, p.left(p.lastIndexOf('.')) + ".pdf");
    }
  });
  file->addSeparator();
  a = file->addAction("&Quit", this, &QWidget::close);
  a->setShortcut(QKeySequence::Quit);

  // ---- Edit ----
  QMenu* edit = menuBar()->addMenu("&Edit");
  undo_action_ = edit->addAction("&Undo", this, [this] { wb_->undo(); });
  undo_action_->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_Z));
  redo_action_ = edit->addAction("&Redo", this, [this] { wb_->redo(); });
  redo_action_->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_Z));
  edit->addSeparator();
  edit->addAction("&Preferences…", this, [this] { open_preferences(); });

  // ---- View ----
  QMenu* viewm = menuBar()->addMenu("&View");
  int k = 1;
  for (const QString& name : view_names()) {
    QAction* va =
        viewm->addAction(views_[name]->view_title(), this, [this, name] { show_view(name); });
    va->setShortcut(QKeySequence(Qt::CTRL | static_cast<Qt::Key>(Qt::Key_0 + k++)));
  }

  // ---- Run ----
  QMenu* run = menuBar()->addMenu("&Run");
  a = run->addAction("&Run configuration", this, &MainWindow::run_edited_configuration);
  a->setShortcut(QKeySequence(Qt::Key_F5));
  a->setToolTip(
      "Runs the configuration as edited in the Configuration view (its pending edits "
      "applied first), otherwise reruns the current one");
  run->addAction("Re-&analyse capture", this, [this] { wb_->run_analysis(); });
  a = run->addAction("&Sweep…", this, &MainWindow::open_sweep_dialog);
  a->setShortcut(QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_S));
  run->addAction("&Boundary recommendation / plan…", this, &MainWindow::open_boundary_panel);
  run->addSeparator();
  a = run->addAction("Cancel the &focused job", this, [this] { cancel_focused_job(); });
  a->setObjectName("action_cancel_focused");
  a->setShortcut(QKeySequence(Qt::Key_Escape));
  a->setShortcutContext(Qt::WindowShortcut);
  run->addAction("Cancel &all jobs", this, [this] { wb_->cancel_all(); });
  run->addSeparator();
  a = run->addAction("&Pin current run as baseline", this, [this] {
    if (!wb_->pin_current_as_baseline())
      statusBar()->showMessage("No finished current run to pin (partial, stale or none)", 6000);
    else
      show_view("compare");
  });
  a->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_B));
  run->addAction("C&lear baseline", this, [this] { wb_->clear_baseline(); });

  // ---- Help ----
  QMenu* help = menuBar()->addMenu("&Help");
  help->addAction("&About KV Workbench", this, [this] {
    QMessageBox::about(
        this, "About KV Workbench",
        "<b>KV Workbench</b><br>An LLM KV-cache codec workbench: exact container bytes, "
        "error and attention metrics of Kakeya-PCA and its peers on real captures.<br><br>"
        "Views draw results computed by the same core as the <tt>kvwb</tt> CLI.");
  });
}

void MainWindow::build_status_bar() {
  jobs_label_ = new QLabel(this);
  progress_ = new QProgressBar(this);
  progress_->setMaximumWidth(180);
  progress_->setTextVisible(true);
  cancel_button_ = new QToolButton(this);
  cancel_button_->setText("Cancel");
  cancel_button_->setObjectName("status.cancel");
  cancel_button_->setToolTip("Cancel the newest job (Esc); the arrow lists every job");
  cancel_button_->setPopupMode(QToolButton::MenuButtonPopup);
  cancel_button_->setMenu(new QMenu(cancel_button_));
  connect(cancel_button_, &QToolButton::clicked, this, &MainWindow::cancel_focused_job);
  ratio_label_ = new QLabel(this);
  ratio_label_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  backend_label_ = new QLabel(this);
  capture_label_ = new QLabel(this);
  statusBar()->addPermanentWidget(capture_label_);
  statusBar()->addPermanentWidget(jobs_label_);
  statusBar()->addPermanentWidget(progress_);
  statusBar()->addPermanentWidget(cancel_button_);
  statusBar()->addPermanentWidget(ratio_label_);
  statusBar()->addPermanentWidget(backend_label_);
}

views::View* MainWindow::view(const QString& name) const {
  auto it = views_.find(name);
  return it == views_.end() ? nullptr : it->second;
}

bool MainWindow::show_view(const QString& name) {
  auto it = docks_.find(name);
  if (it == docks_.end()) return false;
  it->second->show();
  it->second->raise();
  current_view_ = name;
  return true;
}

QString MainWindow::current_view_name() const { return current_view_; }

void MainWindow::on_snapshot(const views::SnapshotPtr& s) {
  latest_ = s;
  for (const auto& [name, v] : views_)
    if (docks_[name]->isVisible() && !v->visibleRegion().isEmpty()) schedule_delivery(name);
  backend_label_->setText(q(s->backend_label));
  if (s->capture.path.empty()) {
    capture_label_->setText("No capture open");
    capture_label_->setStyleSheet({});
  } else {
    const QString base =
        QFileInfo(q(s->capture.path)).fileName() + " · " + q(s->capture.model_name);
    capture_label_->setText(s->capture.synthetic ? "<b>SYNTHETIC DATA</b> · " + base : base);
    capture_label_->setStyleSheet(s->capture.synthetic ? "color: #b00020;" : "");
  }
  QString ratio;
  if (s->run) {
    const sessions::RunResult& r = *s->run;
    ratio = QString::asprintf("ratio %.4f", r.ratio_vs_bf16()) +
            QString(" · %1 of %2 bytes").arg(r.total_bytes).arg(r.bf16_bytes);
    if (s->run_partial)
      ratio = QString("PARTIAL run (cancelled, %1 layers finished): ").arg(r.layers.size()) +
              ratio + " — not the configuration's totals; F5 runs it";
    else if (!s->run_is_current)
      ratio += s->run_in_flight ? " (rerunning…)" : " (stale: F5 runs the edited configuration)";
    if (r.failed) ratio += " — some layers failed";
    if (s->baseline && s->baseline->run && !s->run_partial)
      ratio += QString::asprintf(" · Δ vs baseline #%llu %+.4f",
                                 static_cast<unsigned long long>(s->baseline->id),
                                 r.ratio_vs_bf16() - s->baseline->run->ratio_vs_bf16());
  } else if (!s->capture.path.empty()) {
    ratio = "ratio: running…";
  }
  ratio_label_->setText(ratio);
  update_title();
}

void MainWindow::schedule_delivery(const QString& name) {
  if (!latest_ || delivered_[name] == latest_->generation + 1) return;
  if (std::find(pending_.begin(), pending_.end(), name) == pending_.end()) pending_.push_back(name);
  if (delivery_scheduled_) return;
  delivery_scheduled_ = true;
  QTimer::singleShot(0, this, &MainWindow::deliver_next);
}

void MainWindow::deliver_next() {
  delivery_scheduled_ = false;
  if (pending_.empty() || !latest_) return;
  const QString name = pending_.front();
  pending_.erase(pending_.begin());
  if (delivered_[name] != latest_->generation + 1) {
    QElapsedTimer dbg_t;
    dbg_t.start();
    views_[name]->set_snapshot(latest_);
    if (qEnvironmentVariableIsSet("KVWB_DBG"))
      std::fprintf(stderr, "DBG %s %lld ms\n", name.toLocal8Bit().constData(), dbg_t.elapsed());
    delivered_[name] = latest_->generation + 1;  // +1: generation 0 is a real snapshot
  }
  if (!pending_.empty()) {
    delivery_scheduled_ = true;
    QTimer::singleShot(0, this, &MainWindow::deliver_next);
  }
}

QString MainWindow::ratio_text() const { return ratio_label_->text(); }

bool MainWindow::view_is_current(const QString& name) const {
  const auto it = delivered_.find(name);
  return latest_ && it != delivered_.end() && it->second == latest_->generation + 1;
}
QString MainWindow::backend_text() const { return backend_label_->text(); }

void MainWindow::update_title() {
  const views::SnapshotPtr s = wb_->snapshot();
  QString t = "KV Workbench";
  if (!s->capture.path.empty()) {
    t += " — " + QFileInfo(q(s->capture.path)).fileName();
    if (s->capture.synthetic) t += " [SYNTHETIC DATA]";
  }
  if (!wb_->session_path().isEmpty()) t += " — " + QFileInfo(wb_->session_path()).fileName();
  if (wb_->modified()) t += " *";
  setWindowTitle(t);
}

void MainWindow::update_undo_actions() {
  undo_action_->setEnabled(wb_->can_undo());
  redo_action_->setEnabled(wb_->can_redo());
  undo_action_->setText(wb_->can_undo() ? "&Undo " + wb_->undo_text() : "&Undo");
  redo_action_->setText(wb_->can_redo() ? "&Redo " + wb_->redo_text() : "&Redo");
}

void MainWindow::update_jobs() {
  const std::vector<JobInfo> jobs = wb_->jobs();
  shown_jobs_ = jobs.size();
  const bool any = !jobs.empty();
  jobs_label_->setVisible(any);
  progress_->setVisible(any);
  cancel_button_->setVisible(any);
  if (!any) return;
  QStringList names;
  size_t done = 0, total = 0;
  bool cancelling = false;
  const int focused = wb_->focused_job();
  QMenu* menu = cancel_button_->menu();
  menu->clear();
  for (const JobInfo& j : jobs) {
    const int id = j.id;
    QAction* a = menu->addAction("Cancel " + j.name + (id == focused ? "  (Esc)" : ""), this,
                                 [this, id] { wb_->cancel_job(id); });
    a->setEnabled(!j.cancelling);
  }
  menu->addSeparator();
  menu->addAction("Cancel all jobs", wb_, &Workbench::cancel_all);
  for (const JobInfo& j : jobs) {
    QString n = j.name;
    if (j.id == focused && jobs.size() > 1) n = "[Esc] " + n;
    if (j.total) n += QString(" %1/%2").arg(j.done).arg(j.total);
    names << n;
    done += j.done;
    total += j.total;
    cancelling = cancelling || j.cancelling;
  }
  jobs_label_->setText((cancelling ? "Cancelling: " : "") + names.join(" · "));
  // Determinate only (a busy indicator animates and repaints the window continuously).
  progress_->setRange(0, 1000);
  progress_->setValue(
      total ? static_cast<int>(1000.0 * static_cast<double>(done) / static_cast<double>(total))
            : 0);
}

void MainWindow::report_error(const QString& what, const QString& code, const QString& message) {
  last_error_ = (code.isEmpty() ? QString() : "[" + code + "] ") + what + ": " + message;
  statusBar()->showMessage(last_error_, 15000);
  if (!options_.interactive) {
    std::fprintf(stderr, "kvwb-gui: %s\n", last_error_.toLocal8Bit().constData());
    return;
  }
  auto* box = new QMessageBox(QMessageBox::Critical, "KV Workbench", what, QMessageBox::Ok, this);
  box->setInformativeText(message + (code.isEmpty() ? QString() : "\n\n(error code " + code + ")"));
  box->setAttribute(Qt::WA_DeleteOnClose);
  box->open();
}

bool MainWindow::open_path(const QString& path) {
  if (is_session_path(path)) return open_session_file(path);
  return open_capture_file(path);
}

bool MainWindow::run_reporting(const QString& what, const QString& other_code,
                               const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& e) {
    report_error(what, q(e.code()), QString::fromUtf8(e.what()));
    return false;
  } catch (const std::exception& e) {
    report_error(what, other_code, QString::fromUtf8(e.what()));
    return false;
  }
  return true;
}

bool MainWindow::file_action(const QString& path, const QString& failed, const QString& other_code,
                             const std::function<void()>& action, const QString& done) {
  if (!run_reporting(failed + path, other_code, action)) return false;
  add_recent(path);
  statusBar()->showMessage(done + path, 5000);
  return true;
}

bool MainWindow::open_capture_file(const QString& path) {
  return file_action(
      path, "Cannot open the capture ", "INTERNAL", [&] { wb_->open_capture(path); }, "Opened ");
}

bool MainWindow::open_sweep_store(const QString& dir) {
  try {
    // A Slurm sweep folder (kvwb slurm submit, docs/cluster.md) opens as its merged store.
    QString store = dir;
    if (QFileInfo::exists(dir + "/submission.json") && !QFileInfo::exists(dir + "/store.json")) {
      if (!QFileInfo::exists(dir + "/merged/store.json"))
        throw Unavailable(dir.toStdString() +
                          " is a Slurm sweep folder whose merged store is not written yet (kvwb slurm status " +
                          dir.toStdString() + " shows why)");
      store = dir + "/merged";
    }
    const sessions::StoreContents c = sessions::read_result_store(store.toStdString());
    if (c.meta.is_null())
      throw FormatError(dir.toStdString() + ": not a sweep result store (no store.json; made by kvwb sweep --out)");
    const std::string sha = c.meta.value("capture", nlohmann::json::object()).value("sha256", std::string());
    // The open capture's SHA-256: pinned in the document, or computed by the last run.
    std::string open_sha = wb_->document().capture_sha256;
    if (open_sha.empty() && wb_->snapshot()->run) open_sha = wb_->snapshot()->run->capture_sha256;
    if (open_sha.empty())
      throw Unavailable("the open capture's SHA-256 is not known yet (wait for the first run to finish), so " +
                        dir.toStdString() + " cannot be matched to it");
    if (!open_sha.empty() && !sha.empty() && sha != open_sha)
      throw CaptureChanged(dir.toStdString() + ": the store was made from a capture with SHA-256 " + sha +
                           ", not from the open capture (" + open_sha + ")");
    sessions::SessionSweep sw;
    sw.name = QFileInfo(dir).fileName().toStdString();
    sw.store_path = QFileInfo(store).absoluteFilePath().toStdString();
    sw.grid = c.meta.value("grid", nlohmann::json::object());
    wb_->add_sweep(sw);
  } catch (const Error& e) {
    report_error("Cannot open the sweep store " + dir, q(e.code()), QString::fromUtf8(e.what()));
    return false;
  }
  show_view("pareto");
  statusBar()->showMessage("Opened sweep store " + dir, 5000);
  return true;
}

bool MainWindow::open_session_file(const QString& path, bool accept_capture_change) {
  QStringList warnings;
  std::optional<CaptureChanged> changed;
  const bool opened = run_reporting("Cannot open the session " + path, "INTERNAL", [&] {
    try {
      warnings = wb_->open_session(path, accept_capture_change);
    } catch (const CaptureChanged& e) {
      changed = e;
    }
  });
  if (changed) {
    const QString msg = QString::fromUtf8(changed->what());
    if (options_.interactive) {
      const auto answer = QMessageBox::question(
          this, "The capture changed",
          "The capture of the session " + path + " changed since the session was saved:\n\n" + msg +
              "\n\nAccept the changed capture (its new SHA-256 is pinned when you save)?",
          QMessageBox::Yes | QMessageBox::No, QMessageBox::No);
      if (answer == QMessageBox::Yes) return open_session_file(path, true);
    }
    report_error("Cannot open the session " + path +
                     " (the capture changed; accept the changed capture to open it)",
                 q(changed->code()), msg);
    return false;
  }
  if (!opened) return false;
  add_recent(path);
  if (!warnings.isEmpty()) {
    if (options_.interactive) {
      auto* box =
          new QMessageBox(QMessageBox::Warning, "KV Workbench",
                          "The session " + path + " opened with warnings", QMessageBox::Ok, this);
      box->setInformativeText(warnings.join("\n"));
      box->setAttribute(Qt::WA_DeleteOnClose);
      box->open();
    } else {
      for (const QString& w : warnings)
        std::fprintf(stderr, "kvwb-gui: warning: %s\n", w.toLocal8Bit().constData());
    }
  }
  statusBar()->showMessage("Opened session " + path, 5000);
  return true;
}

bool MainWindow::save_session_file(const QString& path) {
  if (!file_action(
          path, "Cannot save the session ", "IO_ERROR", [&] { wb_->save_session(path); }, "Saved "))
    return false;
  update_title();
  return true;
}

QString MainWindow::demo_capture_path() {
  const QByteArray env = qgetenv("KVWB_DEMO_CAPTURE");
  if (!env.isEmpty() && QFileInfo::exists(QString::fromLocal8Bit(env)))
    return QString::fromLocal8Bit(env);
  const QString dir = QCoreApplication::applicationDirPath();
  for (const QString& rel : {QString("/../../demo/demo.kvc.h5"), QString("/../demo/demo.kvc.h5"),
                             QString("/demo/demo.kvc.h5")}) {
    const QString p = QDir::cleanPath(dir + rel);
    if (QFileInfo::exists(p)) return p;
  }
  return {};
}

bool MainWindow::offer_recovery(bool force) {
  if (!wb_->autosave_exists()) return false;
  if (!force) {
    if (!options_.interactive) return false;
    const auto answer = QMessageBox::question(
        this, "Recover unsaved work",
        "KV Workbench did not quit normally. Recover the unsaved session from " +
            wb_->autosave_path() + "?",
        QMessageBox::Yes | QMessageBox::Discard, QMessageBox::Yes);
    if (answer != QMessageBox::Yes) {
      wb_->remove_autosave();
      return false;
    }
  }
  try {
    const QStringList warnings = wb_->recover_autosave();
    for (const QString& w : warnings) statusBar()->showMessage(w, 8000);
  } catch (const Error& e) {
    report_error("Cannot recover the autosave " + wb_->autosave_path(), q(e.code()),
                 QString::fromUtf8(e.what()));
    return false;
  }
  statusBar()->showMessage("Recovered the unsaved session", 8000);
  return true;
}

QImage MainWindow::grab_window() {
  QImage img = grab().toImage().convertToFormat(QImage::Format_RGB32);
  // OpenGL canvases: paint their framebuffer over the grab so they are never blank.
  QPainter p(&img);
  for (QOpenGLWidget* gl : findChildren<QOpenGLWidget*>()) {
    if (!gl->isVisible() || gl->visibleRegion().isEmpty()) continue;
    const QImage fb = gl->grabFramebuffer();
    if (fb.isNull()) continue;
    p.drawImage(QRect(gl->mapTo(this, QPoint(0, 0)), gl->size()), fb);
  }
  p.end();
  return img;
}

void MainWindow::add_recent(const QString& path) {
  if (!options_.use_settings) return;
  QSettings s;
  const QString abs = QFileInfo(path).absoluteFilePath();
  QStringList recent = s.value("recent_files").toStringList();
  recent.removeAll(abs);
  recent.prepend(abs);
  while (recent.size() > kMaxRecent) recent.removeLast();
  s.setValue("recent_files", recent);
  s.setValue("last_dir", QFileInfo(abs).absolutePath());
  rebuild_recent_menu();
}

void MainWindow::rebuild_recent_menu() {
  recent_menu_->clear();
  QStringList recent;
  if (options_.use_settings) recent = QSettings().value("recent_files").toStringList();
  for (const QString& p : recent)
    recent_menu_->addAction(QFileInfo(p).fileName() + "  —  " + QFileInfo(p).absolutePath(), this,
                            [this, p] { open_path(p); });
  recent_menu_->setEnabled(!recent.isEmpty());
}

QString MainWindow::ask_open_path(const QString& title, const QString& filters) {
  const QString dir = options_.use_settings ? QSettings().value("last_dir").toString() : QString();
  return QFileDialog::getOpenFileName(this, title, dir, filters);
}

QString MainWindow::ask_save_path(const QString& title, const QString& name,
                                  const QString& filters) {
  QString dir = options_.use_settings ? QSettings().value("last_dir").toString() : QString();
  if (dir.isEmpty()) dir = QDir::currentPath();
  const QString p = QFileDialog::getSaveFileName(this, title, dir + "/" + name, filters);
  if (!p.isEmpty() && options_.use_settings)
    QSettings().setValue("last_dir", QFileInfo(p).absolutePath());
  return p;
}

void MainWindow::save() {
  if (wb_->session_path().isEmpty())
    save_as();
  else
    save_session_file(wb_->session_path());
}

void MainWindow::save_as() {
  QString name = "session.kvwb.json";
  if (!wb_->capture_path().isEmpty()) {
    name = QFileInfo(wb_->capture_path()).fileName();
    name.replace(".kvc.h5", "").replace(".h5", "");
    name += ".kvwb.json";
  }
  QString p = ask_save_path("Save session", name, "Sessions (*.kvwb.json)");
  if (p.isEmpty()) return;
  if (!p.endsWith(".json")) p += ".kvwb.json";
  save_session_file(p);
}

void MainWindow::export_picture() {
  views::View* v = view(current_view_);
  if (!v || v->picture_formats().isEmpty()) {
    report_error("Export picture", "", "the view " + current_view_ + " has no picture to export");
    return;
  }
  QStringList filters;
  for (const QString& f : v->picture_formats()) filters << f.toUpper() + " (*." + f + ")";
  const QString p =
      ask_save_path("Export " + v->view_title(), current_view_ + "." + v->picture_formats().front(),
                    filters.join(";;"));
  if (!p.isEmpty()) export_view_picture(current_view_, p);
}

void MainWindow::export_csv() {
  views::View* v = view(current_view_);
  if (!v || !v->can_export_csv()) {
    report_error("Export data", "", "the view " + current_view_ + " has no data to export as CSV");
    return;
  }
  const QString p =
      ask_save_path("Export " + v->view_title() + " data", current_view_ + ".csv", "CSV (*.csv)");
  if (!p.isEmpty()) export_view_csv(current_view_, p);
}

void MainWindow::export_config() {
  const QString p = ask_save_path("Export configuration", "config.json", "JSON (*.json)");
  if (!p.isEmpty()) export_config_json(p);
}

void MainWindow::export_results(bool csv) {
  if (!wb_->snapshot()->run) {
    report_error("Export results", "", "no run has finished yet");
    return;
  }
  const QString p = ask_save_path("Export run results", csv ? "results.csv" : "results.json",
                                  csv ? "CSV (*.csv)" : "JSON (*.json)");
  if (!p.isEmpty()) export_results_file(p, csv);
}

bool MainWindow::write_export(const QString& path, const std::function<void()>& write) {
  if (!run_reporting("Cannot export " + path, "IO_ERROR", write)) return false;
  statusBar()->showMessage("Wrote " + path, 5000);
  return true;
}

bool MainWindow::export_view_picture(const QString& name, const QString& path) {
  views::View* v = view(name);
  if (!v || v->picture_formats().isEmpty()) {
    report_error("Export picture", "", "the view " + name + " has no picture to export");
    return false;
  }
  return write_export(path, [&] { v->export_picture(path); });
}

bool MainWindow::export_view_csv(const QString& name, const QString& path) {
  views::View* v = view(name);
  if (!v || !v->can_export_csv()) {
    report_error("Export data", "", "the view " + name + " has no data to export as CSV");
    return false;
  }
  return write_export(path, [&] { v->export_csv(path); });
}

bool MainWindow::export_config_json(const QString& path) {
  const sessions::RunConfig cfg = wb_->current_config();
  return write_export(path, [&] {
    io::write_file_atomic(path.toStdString(), sessions::run_config_to_json(cfg).dump(2) + "\n");
  });
}

bool MainWindow::export_results_file(const QString& path, bool csv) {
  const views::SnapshotPtr s = wb_->snapshot();
  if (!s->run) {
    report_error("Export results", "", "no run has finished yet");
    return false;
  }
  return write_export(path, [&] {
    io::write_file_atomic(path.toStdString(),
                          csv ? sessions::run_result_to_csv(*s->run)
                              : sessions::run_result_to_json(*s->run).dump(2) + "\n");
  });
}

void MainWindow::run_edited_configuration() {
  // F5 runs what the Configuration view shows: its pending edits are validated and applied (one
  // undoable step); an invalid form shows its error there and nothing runs.
  auto* config = qobject_cast<views::ConfigView*>(view("config"));
  if (config && config->is_edited()) {
    if (!config->run()) {
      show_view("config");
      statusBar()->showMessage("The edited configuration is invalid: " + config->error_text(),
                               8000);
    }
    return;
  }
  wb_->run_current();
}

void MainWindow::cancel_focused_job() {
  const int id = wb_->focused_job();
  if (id == 0) {
    statusBar()->showMessage("No job to cancel", 3000);
    return;
  }
  QString name;
  for (const JobInfo& j : wb_->jobs())
    if (j.id == id) name = j.name;
  wb_->cancel_job(id);
  statusBar()->showMessage("Cancelling " + name + " (Esc cancels one job: the newest)", 5000);
}

bool MainWindow::export_report(const QString& html_path, const QString& pdf_path) {
  const QString why = report_export_blocker(*wb_);
  if (!why.isEmpty()) {
    report_error("Export report", "", why);
    return false;
  }
  return start_report_export(*wb_, ReportExportRequest{html_path, pdf_path, last_bundle_}) >= 0;
}

void MainWindow::open_sweep_dialog() {
  auto* d = new SweepDialog(*wb_, this);
  d->setAttribute(Qt::WA_DeleteOnClose);
  d->open();
}

void MainWindow::open_boundary_panel() {
  if (!boundary_dock_) {
    boundary_dock_ = new QDockWidget("Boundary / plan", this);
    boundary_dock_->setObjectName("dock_boundary_panel");
    boundary_dock_->setWidget(new BoundaryPanel(*wb_, boundary_dock_));
    addDockWidget(Qt::RightDockWidgetArea, boundary_dock_);
    tabifyDockWidget(docks_["spectrum"], boundary_dock_);
  }
  boundary_dock_->show();
  boundary_dock_->raise();
}

void MainWindow::open_bundle_dialog() {
  auto* d = new BundleDialog(*wb_, this);
  connect(d, &BundleDialog::checked, this, [this, d](const QString& dir) {
    if (d->report())
      last_bundle_ =
          sessions::ReportBundle{dir.toStdString(), "checked in the bundle dialog", *d->report()};
  });
  d->setAttribute(Qt::WA_DeleteOnClose);
  d->open();
}

void MainWindow::open_preferences() {
  auto* d = new QDialog(this);
  d->setObjectName("preferences");
  d->setWindowTitle("Preferences");
  auto* form = new QFormLayout(d);
  auto* threads = new QSpinBox(d);
  threads->setObjectName("threads");
  threads->setRange(0, sessions::kMaxThreads);
  threads->setSpecialValueText(QString("All cores (%1)").arg(resolve_threads(0)));
  threads->setValue(Workbench::thread_setting());
  threads->setToolTip("Worker threads of runs, analyses and sweeps (results never depend on it)");
  form->addRow("&Threads:", threads);
  auto* cache = new QCheckBox("Reuse results of layers already computed", d);
  cache->setObjectName("result_cache");
  cache->setChecked(wb_->result_cache_enabled());
  form->addRow("Result &cache:", cache);
  const auto st = wb_->result_cache()->stats();
  const std::string dir = wb_->result_cache()->options().dir;
  auto* info = new QLabel(QString("Folder: %1\nThis session: %2 hits in memory, %3 on disk, %4 misses")
                              .arg(dir.empty() ? QString("none (memory only)") : QString::fromStdString(dir))
                              .arg(st.memory_hits)
                              .arg(st.disk_hits)
                              .arg(st.misses),
                          d);
  info->setTextInteractionFlags(Qt::TextSelectableByMouse);
  form->addRow(info);
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, d);
  form->addRow(buttons);
  connect(buttons, &QDialogButtonBox::accepted, d, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, d, &QDialog::reject);
  connect(d, &QDialog::accepted, this, [this, threads, cache] {
    wb_->set_thread_setting(threads->value());
    wb_->set_result_cache_enabled(cache->isChecked());
    if (options_.use_settings) {
      QSettings s;
      s.setValue("run/threads", threads->value());
      s.setValue("run/result_cache", cache->isChecked());
    }
  });
  d->setAttribute(Qt::WA_DeleteOnClose);
  d->open();
}

void MainWindow::write_settings() {
  if (!options_.use_settings) return;
  QSettings s;
  s.setValue("window/geometry", saveGeometry());
  s.setValue("window/state", saveState());
}

void MainWindow::showEvent(QShowEvent* e) {
  QMainWindow::showEvent(e);
  if (qEnvironmentVariableIsSet("KVWB_DBG"))
    for (const auto& [n, d] : docks_)
      std::fprintf(stderr, "DBG %s min %d x %d  view %d x %d\n", n.toLocal8Bit().constData(),
                   d->minimumSizeHint().width(), d->minimumSizeHint().height(),
                   views_[n]->minimumSizeHint().width(), views_[n]->minimumSizeHint().height());
  if (!default_split_pending_) return;
  default_split_pending_ = false;
  // Default split once the window is laid out: the layer map left, the charts right (wider).
  QTimer::singleShot(0, this, [this] {
    const int w = std::max(800, width());
    resizeDocks({docks_["layer-map"], docks_["spectrum"]}, {w * 38 / 100, w * 62 / 100},
                Qt::Horizontal);
  });
}

void MainWindow::closeEvent(QCloseEvent* e) {
  if (options_.interactive && wb_->modified() && !wb_->capture_path().isEmpty()) {
    const auto answer = QMessageBox::question(
        this, "KV Workbench", "Save the changes to the session?",
        QMessageBox::Save | QMessageBox::Discard | QMessageBox::Cancel, QMessageBox::Save);
    if (answer == QMessageBox::Cancel) {
      e->ignore();
      return;
    }
    if (answer == QMessageBox::Save) {
      save();
      if (wb_->modified()) {
        e->ignore();
        return;
      }
    }
  }
  write_settings();
  wb_->cancel_all();
  if (options_.autosave) wb_->remove_autosave();
  e->accept();
}

void MainWindow::dragEnterEvent(QDragEnterEvent* e) {
  if (!e->mimeData()->hasUrls()) return;
  for (const QUrl& u : e->mimeData()->urls()) {
    const QString p = u.toLocalFile();
    if (!p.isEmpty() && (is_capture_path(p) || is_session_path(p) || is_store_path(p))) {
      e->acceptProposedAction();
      return;
    }
  }
}

void MainWindow::dropEvent(QDropEvent* e) {
  for (const QUrl& u : e->mimeData()->urls()) {
    const QString p = u.toLocalFile();
    if (!p.isEmpty() && (is_capture_path(p) || is_session_path(p) || is_store_path(p))) {
      e->acceptProposedAction();
      // Open after the drop finished (a question box must not run inside the drag).
      QMetaObject::invokeMethod(
          this, [this, p] { is_store_path(p) ? open_sweep_store(p) : open_path(p); },
          Qt::QueuedConnection);
      return;
    }
  }
}

}  // namespace kvwb::app
