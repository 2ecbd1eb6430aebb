#pragma once
// Run → Sweep… → "Slurm scripts…": writes the Slurm sweep folder of the sweep dialog's grid
// (sessions/explore/slurm.h, docs/cluster.md) instead of running it here: the shard array script,
// the merge script, grid.json and submission.json, and shows the scripts with the sbatch commands
// (`kvwb slurm submit --dry-run`'s text). Nothing is submitted from the GUI: the user submits on
// the cluster with `kvwb slurm submit --resume DIR`. The capture is hashed in a Workbench job.
#include <QDialog>
#include <QString>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;

namespace kvwb::app {

class Workbench;

class SlurmDialog : public QDialog {
  Q_OBJECT
 public:
  /// `grid` with `cells` cells (after dropping duplicates); `sweep_args` are extra `kvwb sweep`
  /// arguments (the end-to-end axes, absolute paths).
  SlurmDialog(Workbench& workbench, nlohmann::json grid, size_t cells,
              std::vector<std::string> sweep_args, QWidget* parent = nullptr);
  ~SlurmDialog() override;

  void set_folder(const QString& dir);
  void set_shards(int n);
  void set_partition(const QString& p);
  void set_time(const QString& t);
  void set_mem(const QString& m);
  void set_cpus_per_task(int n);
  void set_gpus_per_task(int n);
  /// Extra sbatch arguments as shell words ("--qos=high --account='my lab'").
  void set_sbatch_args(const QString& words);
  void set_kvwb(const QString& path);
  QString kvwb() const;

  /// Shows the scripts and sbatch commands without writing anything (a job); false when the
  /// inputs are invalid (shown inline).
  bool preview();
  /// Writes the folder (a job); false when the inputs are invalid (shown inline).
  bool write_scripts();
  bool busy() const { return job_id_ >= 0; }
  /// The scripts and sbatch commands last shown.
  QString script_text() const;
  QString status_text() const;

  /// kvwb next to this executable (installed layout), in the build tree (../cli/kvwb), or on PATH.
  static QString default_kvwb_path();

 private:
  bool start(bool write);
  void show_error(const QString& text);

  Workbench& wb_;
  nlohmann::json grid_;
  size_t cells_ = 0;
  std::vector<std::string> sweep_args_;
  int job_id_ = -1;

  QLineEdit* folder_ = nullptr;
  QSpinBox* shards_ = nullptr;
  QLineEdit* partition_ = nullptr;
  QLineEdit* time_ = nullptr;
  QLineEdit* mem_ = nullptr;
  QSpinBox* cpus_ = nullptr;
  QSpinBox* gpus_ = nullptr;
  QLineEdit* sbatch_args_ = nullptr;
  QLineEdit* kvwb_ = nullptr;
  QPushButton* preview_button_ = nullptr;
  QPushButton* write_button_ = nullptr;
  QPlainTextEdit* text_ = nullptr;
  QLabel* status_ = nullptr;
};

}  // namespace kvwb::app
