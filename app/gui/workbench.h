#pragma once
// The workbench controller: owns the session document (with its undo stack), the background jobs
// and the current Snapshot. Views and dialogs never touch the document directly: they call these
// commands, which are applied on the UI thread, and receive the new snapshot through
// snapshot_changed. Heavy work (analysis, runs, sweeps, recommendations, bundle export) runs in
// jobs on worker threads with progress and cooperative cancel; the UI thread never blocks.
#include <QObject>
#include <QString>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "sessions/config/run_config.h"
#include "sessions/run/result_cache.h"
#include "sessions/run/runner.h"
#include "sessions/document/session.h"
#include "sessions/explore/sweep.h"
#include "views/models/snapshot.h"

namespace kvwb::app {

/// The grid the sweep dialog starts from and the screenshot mode of the Pareto view runs when the
/// session has no sweep: a dozen cells across kakeya_pca bit widths, turbo, q8_0/q4_0 and KIVI.
nlohmann::json default_sweep_grid();

/// A job as the status bar and the job list show it.
struct JobInfo {
  int id = 0;
  QString name;
  size_t done = 0, total = 0;
  QString detail;
  bool cancelling = false;
};

class Workbench : public QObject {
  Q_OBJECT
 public:
  explicit Workbench(QObject* parent = nullptr);
  ~Workbench() override;

  // ---- state (UI thread) ----
  views::SnapshotPtr snapshot() const;
  const sessions::SessionDocument& document() const;
  QString capture_path() const;
  /// The current configuration (boundary set included).
  sessions::RunConfig current_config() const;
  QString session_path() const;  // "" until saved / opened

  // ---- document edits: undoable; each reruns the current configuration in the background ----
  void set_config(const sessions::RunConfig& config, const QString& label);
  void toggle_boundary(int layer);
  void set_boundary(std::vector<int> layers);
  void select(int layer, int kv_head);
  /// Adds (or replaces, by name) a sweep of the session and loads its store's records.
  void add_sweep(const sessions::SessionSweep& sweep);
  /// Re-reads the records of sweep `index` from its store (after a sweep job appended cells).
  void reload_sweep(int index);
  void set_active_sweep(int index);
  bool can_undo() const;
  bool can_redo() const;
  bool undo();
  bool redo();
  /// Description of the edit Undo / Redo would revert / reapply ("" when none).
  QString undo_text() const;
  QString redo_text() const;
  /// True when the document differs from the last opened / saved state.
  bool modified() const;
  /// True when the snapshot's run holds only the layers finished before a cancel.
  bool run_is_partial() const;
  /// Worker threads of runs, analyses and sweeps: the Preferences setting, by default every
  /// hardware thread (jobs run at a lower priority than the UI thread; results never depend on
  /// the count).
  static int run_threads();
  /// The Preferences setting behind run_threads(): 0 = every hardware thread.
  static int thread_setting();
  void set_thread_setting(int threads);
  /// Runs and sweeps reuse per-(layer, stream) results from the result cache (on by default):
  /// a boundary toggle recomputes one layer.
  bool result_cache_enabled() const;
  void set_result_cache_enabled(bool on);
  /// The cache itself (its statistics; also when disabled).
  sessions::ResultCache* result_cache() const;

  // ---- files; errors are typed kvwb::Error exceptions with a message naming the file ----
  /// Opens a capture (validates it), starts the analysis and the run of the current configuration.
  void open_capture(const QString& path);
  /// Opens a session; `accept_capture_change` re-pins a changed capture instead of throwing
  /// CaptureChanged. Returns the load warnings.
  QStringList open_session(const QString& path, bool accept_capture_change = false);
  void save_session(const QString& path);

  // ---- jobs ----
  /// Work run on a worker thread with its JobControl (progress + cancel). It returns a
  /// continuation that is run on the UI thread once the work finished (may be empty). A typed
  /// error thrown by the work is reported through job_failed; Cancelled through job_cancelled.
  using Continuation = std::function<void()>;
  using Work = std::function<Continuation(JobControl& job)>;
  int start_job(const QString& name, Work work);
  void cancel_job(int id);
  void cancel_all();
  std::vector<JobInfo> jobs() const;
  bool busy() const;
  /// The job Esc cancels: the most recently started job that is not already cancelling (0 when
  /// none). Esc never cancels every job at once.
  int focused_job() const;
  /// Processes events until no job runs or `timeout_ms` passed; true when idle.
  bool wait_idle(int timeout_ms);

  /// Runs a sweep of `grid` (docs/sweeps.md) on the capture into `store_dir` as a job (resume
  /// continues a store), adds it to the session as `name`, makes it the active sweep and reloads
  /// its records while cells finish. Returns the job id.
  int start_sweep(const QString& name, const nlohmann::json& grid, const QString& store_dir, bool resume);
  /// The same with end-to-end quality axes (issue #7): the job first loads `e2e.model_path` and
  /// prefills its passages once, then every cell also gets totals.e2e (Δppl, top-1, KL), which
  /// the Pareto view offers as quality axes. An empty model_path means no end-to-end axes.
  int start_sweep(const QString& name, const nlohmann::json& grid, const QString& store_dir, bool resume,
                  const sessions::EndToEndRequest& e2e);
  /// Default folder for a new sweep's store (beside the session file, else the app data folder).
  QString default_store_dir(const QString& sweep_name) const;

  /// Reruns the current configuration now (also done automatically after every edit).
  void run_current();

  // ---- run history and the baseline (views/models/snapshot.h RunEntry) ----
  /// Every finished (not cancelled) run of the session is kept, newest last, at most
  /// views::kRunHistoryLimit; an edit that returns to a configuration the history holds shows its
  /// result at once instead of running it again (same capture, same canonical configuration).
  std::vector<views::RunEntryPtr> history() const;
  /// Makes run `run_id` of the history the current configuration (one undoable edit) and shows
  /// its result at once; false for an unknown id.
  bool recall(uint64_t run_id);
  /// Pins run `run_id` of the history as the baseline (with the current selection); false for an
  /// unknown id.
  bool pin_baseline(uint64_t run_id);
  /// Pins the current run (false when it is partial, stale or absent).
  bool pin_current_as_baseline();
  /// Pins `config` (e.g. a sweep cell) as the baseline: at once when the history holds its run,
  /// otherwise runs it as a job ("Run baseline") and pins it when it finishes. Returns the job id
  /// (0 when pinned at once, -1 when the configuration is invalid or no capture is open).
  int pin_baseline_config(const sessions::RunConfig& config, const QString& label);
  void clear_baseline();
  views::RunEntryPtr baseline() const;
  /// Re-analyses the capture.
  void run_analysis();

  // ---- autosave (crash recovery): the document is written shortly after each edit ----
  /// Default: <app data folder>/autosave.kvwb.json.
  QString autosave_path() const;
  void set_autosave_path(const QString& path);
  void set_autosave_enabled(bool on);
  bool autosave_exists() const;
  /// Writes the document to the autosave file atomically now; false when nothing to save.
  bool write_autosave();
  /// Removes the autosave file (normal quit).
  void remove_autosave();
  /// Opens the autosave file as the document (modified, saved back to the session it came
  /// from); returns the load warnings. Throws like open_session.
  QStringList recover_autosave();

 signals:
  void snapshot_changed(kvwb::views::SnapshotPtr snapshot);
  void document_changed();
  void jobs_changed();
  void job_failed(const QString& name, const QString& code, const QString& message);
  void job_cancelled(const QString& name);
  void message(const QString& level, const QString& text);

 private:
  /// undo() (forward false) or redo(): one step of the history; its label moves to the other list.
  bool step_history(bool forward);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvwb::app
