#pragma once
// The workbench main window: the eight views in dock widgets, menus (File / Edit / View / Run /
// Help), drag and drop of captures and sessions, the status bar (backend, total ratio, running
// jobs with progress and cancel), persisted preferences and crash recovery from the autosave.
#include <QImage>
#include <QMainWindow>
#include <QString>
#include <QStringList>
#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "app/gui/workbench.h"
#include "sessions/report/report.h"
#include "views/view.h"

class QDockWidget;
class QLabel;
class QMenu;
class QProgressBar;
class QToolButton;
class QAction;
class QTimer;

namespace kvwb::app {

class MainWindow : public QMainWindow {
  Q_OBJECT
 public:
  struct Options {
    /// Interactive: errors and questions in message boxes. Off (screenshot mode, tests): never
    /// block on a dialog; errors go to the status bar, stderr and last_error().
    bool interactive = true;
    /// Restore / save window geometry, dock state and recent files with QSettings.
    bool use_settings = true;
    /// Write the autosave file after edits (crash recovery).
    bool autosave = true;
  };

  explicit MainWindow(const Options& options, QWidget* parent = nullptr);
  MainWindow() : MainWindow(Options{}) {}
  ~MainWindow() override;

  Workbench& workbench() { return *wb_; }

  /// The view named `name` (view_names()), or nullptr.
  views::View* view(const QString& name) const;
  /// Shows and raises the dock of view `name`; false for an unknown name.
  bool show_view(const QString& name);
  /// True when view `name` has drawn the latest snapshot (views get it one per event).
  bool view_is_current(const QString& name) const;
  /// Name of the view the export actions apply to (the last raised / clicked visible view).
  QString current_view_name() const;

  /// Opens a capture (.kvc.h5 / .h5) or a session (.kvwb.json / .json) by its suffix. Errors are
  /// reported (message box or status bar, naming the file); returns false on error. A session
  /// whose capture changed asks whether to accept the changed capture (interactive), otherwise it
  /// fails with the CAPTURE_CHANGED message.
  bool open_path(const QString& path);
  bool open_capture_file(const QString& path);
  bool open_session_file(const QString& path, bool accept_capture_change = false);
  /// Adds an existing result store (a `kvwb sweep --out` folder, e.g. one with end-to-end
  /// totals.e2e from `kvwb sweep --model`) to the session as a sweep and shows it in the Pareto
  /// view. The store must have been made from the open capture (same SHA-256).
  bool open_sweep_store(const QString& dir);
  bool save_session_file(const QString& path);

  /// The demo capture next to the binary (<build>/demo/demo.kvc.h5 from app/gui), or the
  /// KVWB_DEMO_CAPTURE environment variable; "" when none exists.
  static QString demo_capture_path();

  /// Offers to recover the autosave of a crashed session: `force` recovers without asking
  /// (--recover), otherwise asks (interactive only). Returns true when a session was recovered.
  bool offer_recovery(bool force);

  /// Exports (the File ▸ Export actions after their file dialog). Errors are reported like
  /// open errors; return false on error. Writes are atomic.
  bool export_view_picture(const QString& view_name, const QString& path);  // .png / .svg / .pdf
  bool export_view_csv(const QString& view_name, const QString& path);
  bool export_config_json(const QString& path);             // canonical run configuration JSON
  bool export_results_file(const QString& path, bool csv);  // run_result_to_json / _to_csv
  /// File ▸ Export ▸ Report: starts the report job (app/gui/report_export.h) writing the HTML to
  /// `html_path` and / or the PDF to `pdf_path`; false (error reported) when the state cannot be
  /// reported yet. The job reports its own errors; Workbench::wait_idle waits for it.
  bool export_report(const QString& html_path, const QString& pdf_path);

  /// The last error reported (with its code), "" when none.
  QString last_error() const { return last_error_; }
  /// Text of the status bar's ratio field ("ratio 2.8614 · 4059168 of 16777216 bytes").
  QString ratio_text() const;
  QString backend_text() const;

  /// The whole window as an image, OpenGL canvases included.
  QImage grab_window();

 protected:
  void showEvent(QShowEvent* e) override;
  void closeEvent(QCloseEvent* e) override;
  void dragEnterEvent(QDragEnterEvent* e) override;
  void dropEvent(QDropEvent* e) override;

 private:
  void build_docks();
  void build_menus();
  void build_status_bar();
  void on_snapshot(const views::SnapshotPtr& s);
  /// Hands the latest snapshot to the visible views, one view per event (the UI thread never
  /// spends more than one view's rebuild between events); hidden views get it when shown.
  void schedule_delivery(const QString& name);
  void deliver_next();
  void update_title();
  void update_undo_actions();
  void update_jobs();
  void report_error(const QString& what, const QString& code, const QString& message);
  /// Runs `action`; an exception it throws is reported as `what` (report_error with the Error's
  /// code, or `other_code` for another exception) and gives false.
  bool run_reporting(const QString& what, const QString& other_code,
                     const std::function<void()>& action);
  /// run_reporting of `action` on the file `path` (reported as `failed` + path); on success the
  /// file joins the recent files and the status bar says `done` + path.
  bool file_action(const QString& path, const QString& failed, const QString& other_code,
                   const std::function<void()>& action, const QString& done);
  void add_recent(const QString& path);
  void rebuild_recent_menu();
  QString ask_save_path(const QString& title, const QString& name, const QString& filters);
  QString ask_open_path(const QString& title, const QString& filters);
  void save_as();
  void save();
  void export_picture();
  void export_csv();
  void export_config();
  void export_results(bool csv);
  /// F5: applies the Configuration view's pending edits (validated) or reruns the current one.
  void run_edited_configuration();
  /// Esc: cancels the focused job (Workbench::focused_job), never all of them.
  void cancel_focused_job();
  void open_sweep_dialog();
  void open_boundary_panel();
  void open_bundle_dialog();
  void write_settings();
  /// Edit → Preferences: worker threads (default every core) and the result cache.
  void open_preferences();
  bool write_export(const QString& path, const std::function<void()>& write);

  Options options_;
  Workbench* wb_ = nullptr;
  std::map<QString, views::View*> views_;
  std::map<QString, QDockWidget*> docks_;
  views::SnapshotPtr latest_;
  std::map<QString, uint64_t> delivered_;  // generation each view last drew
  std::vector<QString> pending_;
  bool delivery_scheduled_ = false;
  QTimer* jobs_timer_ = nullptr;  // progress shown at most 4 times a second
  size_t shown_jobs_ = 0;
  bool default_split_pending_ = false;
  QString current_view_;
  QString last_error_;
  QLabel* capture_label_ = nullptr;
  QLabel* backend_label_ = nullptr;
  QLabel* ratio_label_ = nullptr;
  QLabel* jobs_label_ = nullptr;
  QProgressBar* progress_ = nullptr;
  QToolButton* cancel_button_ = nullptr;
  QAction* undo_action_ = nullptr;
  QAction* redo_action_ = nullptr;
  QMenu* recent_menu_ = nullptr;
  QDockWidget* boundary_dock_ = nullptr;
  std::optional<sessions::ReportBundle> last_bundle_;  // bundle dialog's last check, for reports
};

}  // namespace kvwb::app
