#pragma once
// Base of every workbench view (one view per file). A view draws the Snapshot it was last given
// and emits commands; the shell applies the commands after the current event and publishes a new
// snapshot. set_snapshot must be cheap (no metric computation, no I/O): it stores the pointer and
// rebuilds the view's plot data from values the core already computed.
#include <QString>
#include <QStringList>
#include <QWidget>

#include "sessions/config/run_config.h"
#include "views/models/snapshot.h"

class QImage;
class QTableWidget;

namespace kvwb::views {

class View : public QWidget {
  Q_OBJECT
 public:
  /// `name`: the stable name used by `kvwb-gui --view NAME` and the View menu ("layer-map",
  /// "spectrum", …); `title`: the title of its dock ("Layer map", "Spectrum", …).
  View(const QString& name, const QString& title, QWidget* parent = nullptr)
      : QWidget(parent), view_name_(name), view_title_(title) {}

  QString view_name() const { return view_name_; }
  QString view_title() const { return view_title_; }
  /// Draws `snapshot` (may be an empty snapshot with no capture; null is taken as one): stores
  /// it as snapshot_ and calls snapshot_changed().
  void set_snapshot(SnapshotPtr snapshot);

  /// True when the view currently shows data (used by the screenshot mode and GUI tests).
  virtual bool has_content() const = 0;

  /// Exports of the view. Formats this view can write its picture to ("png", "svg", "pdf"; empty
  /// for views without a picture) and whether it can export its data as CSV.
  virtual QStringList picture_formats() const { return {}; }
  virtual bool can_export_csv() const { return false; }
  /// Writes the picture (format from the file suffix) / the data as CSV; throws
  /// kvwb::IoError or kvwb::InvalidArgument on failure. Writes are atomic.
  virtual void export_picture(const QString& path) const;
  virtual void export_csv(const QString& path) const;

 signals:
  /// Select a (layer, kv head) in every view (kv_head -1 = whole layer).
  void select_requested(int layer, int kv_head);
  /// Toggle layer `layer` in the boundary set (both streams bf16) and rerun.
  void boundary_toggle_requested(int layer);
  /// Replace the current configuration (e.g. a Pareto point clicked) and rerun.
  void config_requested(const kvwb::sessions::RunConfig& config, const QString& label);
  /// Make sweep `index` of the snapshot the active one.
  void sweep_requested(int index);
  /// Make run `run_id` of the history the current configuration and show its result.
  void recall_requested(quint64 run_id);
  /// Pin run `run_id` of the history as the baseline (0 = the current run).
  void pin_baseline_requested(quint64 run_id);
  /// Pin `config` (a sweep cell) as the baseline; it is run when the history does not hold it.
  void pin_config_requested(const kvwb::sessions::RunConfig& config, const QString& label);
  /// Drop the baseline.
  void clear_baseline_requested();
  /// Something a user should read (errors of exports, hints); level: "info" | "warning" | "error".
  void message_requested(const QString& level, const QString& text);

 protected:
  /// Rebuilds the view from snapshot_ (just stored by set_snapshot, never null here).
  virtual void snapshot_changed() = 0;

  /// The snapshot drawn (null until the first set_snapshot).
  SnapshotPtr snapshot_;

 private:
  QString view_name_;
  QString view_title_;
};

/// Writes `bytes` to `path` atomically (QSaveFile: temp file + rename); throws kvwb::IoError.
void write_bytes_atomic(const QString& path, const QByteArray& bytes);
/// Writes `image` to `path` as PNG atomically; throws kvwb::IoError when encoding or writing fails.
void write_png_atomic(const QString& path, const QImage& image);

/// A table of one selectable row at a time (`headers` as its columns, objectName `name`), without
/// row numbers; Tab leaves it (keyboard navigation of the window). The caller sets what it edits.
QTableWidget* make_row_table(QWidget* parent, const QStringList& headers, const QString& name);

}  // namespace kvwb::views
