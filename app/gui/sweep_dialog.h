#pragma once
// The sweep dialog: a grid builder (codec families and, per family, values of their parameters
// from codec::codec_params; run-level settings of the current configuration as "fixed" options),
// the resulting grid JSON (load / save as .json), the cell count from sessions::expand_sweep_grid,
// the sweep's name and result-store folder, Resume, Start / Cancel with progress ("cell k of N")
// and, when the job ends, a summary (ran, skipped, failed) and the store's results table.
// All work runs in Workbench jobs; the UI thread never blocks.
#include <QDialog>
#include <QString>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "app/gui/grid_builder_model.h"

class QCheckBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QTableWidget;
class QTreeWidget;
class QTreeWidgetItem;
class QSpinBox;

namespace kvwb::app {

class SlurmDialog;
class Workbench;

class SweepDialog : public QDialog {
  Q_OBJECT
 public:
  SweepDialog(Workbench& workbench, QWidget* parent = nullptr);
  ~SweepDialog() override;

  /// The grid Start runs (docs/sweeps.md).
  const nlohmann::json& grid() const { return grid_; }
  /// Cells of the grid after dropping duplicate configurations (0 when the grid is invalid).
  size_t cell_count() const { return cells_; }
  /// The problem with the grid ("" when it expands).
  QString grid_error() const { return grid_error_; }

  // ---- builder edits (the same paths as clicking the tree) ----
  /// Enables or disables a codec family; false when there is no such family.
  bool set_family_enabled(const QString& codec, bool on);
  /// Checks or unchecks one candidate value of a family's parameter; false when not offered.
  bool set_value_checked(const QString& codec, const QString& param, const QString& value, bool on);
  /// K × V: vary the K and V parameter choices independently.
  bool set_cross_kv(const QString& codec, bool on);
  /// Enables or disables one fixed run-level option taken from the current configuration.
  bool set_fixed_enabled(const QString& key, bool on);

  /// Replaces the grid by `grid` (not from the builder); `source` is shown.
  void set_grid(const nlohmann::json& grid, const QString& source);
  /// Loads / saves the grid as JSON; errors are shown inline and returned as false.
  bool load_grid_file(const QString& path);
  bool save_grid_file(const QString& path);

  void set_sweep_name(const QString& name);
  void set_store_dir(const QString& dir);
  QString store_dir() const;
  void set_resume(bool on);
  /// End-to-end quality axes (kvwb sweep --model): evaluate every cell with `model_dir` on
  /// `text_file` (C/N/P as kvwb eval; context 0 and passages 0 = its defaults). Empty model_dir
  /// turns them off.
  void set_end_to_end(const QString& model_dir, const QString& text_file, int context = 0,
                      int continuation = 64, int passages = 0);
  bool end_to_end_enabled() const;
  /// Starts the sweep (as the Start button); false when the inputs are invalid (shown inline).
  bool start();
  /// Cancels the running sweep (finished cells stay in the store).
  void cancel();
  /// Opens (and returns) the dialog that writes this grid's Slurm job array and merge scripts
  /// instead of running the sweep here (the "Slurm scripts…" button); nullptr when the grid
  /// has no cells (shown inline). The dialog belongs to this one.
  SlurmDialog* open_slurm_dialog();
  bool running() const { return job_id_ >= 0 || preparing_; }

  /// Texts shown for tests and screenshots.
  QString status_text() const;
  QString summary_text() const;
  int progress_value() const;
  int progress_maximum() const;
  /// Rows of the store's results table shown after the last sweep ended.
  int result_rows() const;

 private:
  void build_ui();
  void populate_tree();
  void refresh_family_item(int family);
  void refresh_fixed();
  /// Rebuilds the fixed-settings list from model_.fixed (updating_ must be set by the caller).
  void fill_fixed_list();
  void on_item_changed(QTreeWidgetItem* item, int column);
  void rebuild_from_builder();
  void show_grid();
  void on_jobs_changed();
  void launch(size_t before_records, std::set<std::string> before_keys);
  void finish();
  void show_error(const QString& text);
  void update_buttons();
  QTreeWidgetItem* family_item(const QString& codec) const;

  Workbench& wb_;
  GridBuilderModel model_;
  nlohmann::json grid_;
  size_t cells_ = 0;
  size_t dropped_ = 0;
  QString grid_error_;
  QString grid_source_;
  bool updating_ = false;
  bool store_edited_ = false;

  // Running sweep.
  int job_id_ = -1;
  bool preparing_ = false;
  QString job_name_;
  QString run_store_;
  size_t run_cells_ = 0;
  size_t before_records_ = 0;
  std::set<std::string> before_keys_;
  bool cancelled_ = false;
  QString failure_;

  QTreeWidget* tree_ = nullptr;
  QListWidget* fixed_list_ = nullptr;
  QPlainTextEdit* grid_text_ = nullptr;
  QLabel* source_label_ = nullptr;
  QLabel* cells_label_ = nullptr;
  QLineEdit* name_edit_ = nullptr;
  QLineEdit* store_edit_ = nullptr;
  QCheckBox* resume_box_ = nullptr;
  QCheckBox* e2e_box_ = nullptr;
  QLineEdit* e2e_model_ = nullptr;
  QLineEdit* e2e_text_ = nullptr;
  QSpinBox* e2e_context_ = nullptr;
  QSpinBox* e2e_continuation_ = nullptr;
  QSpinBox* e2e_passages_ = nullptr;
  QPushButton* start_button_ = nullptr;
  QPushButton* cancel_button_ = nullptr;
  QPushButton* slurm_button_ = nullptr;
  QProgressBar* progress_ = nullptr;
  QLabel* status_label_ = nullptr;
  QLabel* summary_label_ = nullptr;
  QTableWidget* results_ = nullptr;
};

}  // namespace kvwb::app
