#pragma once
// The configuration editor (issue #5): a Qt form generated from the codecs' parameter
// descriptions (codec::codec_params), with K and V stream sections, the run-level settings, the
// boundary set, Q-preconditioning, target_cond, turbo_policy, attention metrics and the backend.
// Run validates the form through the core (views/config_model.h: run_config_from_json of the
// form's JSON + codec::ParamReader), shows errors inline in red and emits
// config_requested(config, "edited"). set_snapshot loads the snapshot's configuration unless the
// user has unsaved edits ("edited — Run to apply", Revert). Below the sections, the per-layer
// table (views/models/layer_table_model.h): per layer the K / V codec and bit width (global or
// the layer's override, e.g. after Apply plan), bf16 (boundary) and Σ_q skip, editable like the
// rest of the form; the global stream sections say which layers override them.
#include <QCheckBox>
#include <QComboBox>
#include <QFormLayout>
#include <QGridLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QTableWidget>
#include <optional>

#include "views/models/config_model.h"
#include "views/models/layer_table_model.h"
#include "views/view.h"

namespace kvwb::views {

class ConfigView : public View {
  Q_OBJECT
 public:
  explicit ConfigView(QWidget* parent = nullptr);

  bool has_content() const override { return loaded_; }
  QStringList picture_formats() const override { return {"png"}; }
  /// PNG of the form (QWidget::grab), written atomically.
  void export_picture(const QString& path) const override;

  /// Shows `config` in the form (no signal) and clears the edited state.
  void load_config(const sessions::RunConfig& config);
  /// The form's current state (as typed; not validated).
  ConfigForm form() const;
  /// True while the form holds edits that were not run.
  bool is_edited() const { return edited_; }
  /// The validation message shown under the form ("" when none).
  QString error_text() const { return error_->isVisible() ? error_->text() : QString(); }
  QPushButton* run_button() const { return run_; }
  /// Validates the form; on success emits config_requested(config, "edited") and returns true,
  /// otherwise shows the core's message in red and returns false (no signal).
  bool run();
  /// Reloads the snapshot's configuration, dropping the edits.
  void revert();

  /// The per-layer table (rows: capture layers; columns: layer, K codec, K bits, V codec, V bits,
  /// bf16, Σ_q skip, ratio of the current run).
  QTableWidget* layer_table() const { return layer_table_; }
  /// The model the table shows (the form's pending configuration).
  const LayerTable& layer_table_model() const { return table_; }
  /// Sets one cell of the per-layer table as the user would (a pending edit; Run applies it).
  /// false (with the message shown) when the value is refused.
  bool edit_layer(int layer, LayerColumn column, const std::string& value);
  /// Drops every per-layer override of a stream in the form (the global settings apply to every
  /// layer); the "Apply to every layer" button of the override notice.
  void apply_stream_to_every_layer(bool k_stream);
  /// The override notice under the K / V section ("" when no layer overrides the stream).
  QString override_notice_text(bool k_stream) const;
  /// Columns of the stream sections as laid out now (3 wide, 2 or 1 in narrow docks).
  int section_columns() const { return columns_; }

 protected:
  /// Loads the snapshot's configuration unless the form holds edits.
  void snapshot_changed() override;

 private:
  struct StreamWidgets {
    QComboBox* codec = nullptr;
    QComboBox* k_domain = nullptr;  // K only
    QLineEdit* centroids = nullptr;
    QPushButton* centroids_browse = nullptr;
    QWidget* params_host = nullptr;
    QFormLayout* params_form = nullptr;
    std::vector<ParamWidgetSpec> specs;
    std::vector<QWidget*> param_widgets;  // parallel to specs
    char tag = 'k';
    QWidget* box = nullptr;
    QLabel* notice = nullptr;  // which layers override this stream
    QPushButton* notice_apply = nullptr;
  };
  QWidget* build_stream_section(StreamWidgets& s, const QString& title, bool is_k);
  void rebuild_params(StreamWidgets& s, const std::map<std::string, std::string>& values);
  void set_stream(StreamWidgets& s, const StreamForm& f);
  void update_centroids(StreamWidgets& s);
  StreamForm read_stream(const StreamWidgets& s, bool is_k) const;
  void set_form(const ConfigForm& f);
  void mark_edited();
  void show_error(const QString& text);
  /// Red frame on the field a validation message names (and focus on it).
  void highlight_field(const QString& message);
  void clear_highlight();
  void update_header();
  /// The form's configuration when it validates (the snapshot's otherwise).
  sessions::RunConfig pending_config() const;
  /// Writes the per-layer parts of `cfg` (boundary, overrides, Σ_q skip list) into the form.
  void load_layer_parts(const sessions::RunConfig& cfg);
  void refresh_table();
  void relayout();
  void resizeEvent(QResizeEvent* e) override;

  bool loaded_ = false;
  bool edited_ = false;
  bool loading_ = false;
  nlohmann::json carried_ = nlohmann::json::object();

  QLabel* header_ = nullptr;
  QLabel* status_ = nullptr;
  QLabel* error_ = nullptr;
  QPushButton* run_ = nullptr;
  QPushButton* revert_ = nullptr;
  QComboBox* block_size_ = nullptr;  // editable
  QComboBox* block_rows_ = nullptr;
  QLineEdit* layers_ = nullptr;
  QCheckBox* include_sliding_ = nullptr;
  QLineEdit* boundary_ = nullptr;
  QComboBox* q_mode_ = nullptr;
  QLineEdit* q_file_ = nullptr;
  QPushButton* q_browse_ = nullptr;
  QCheckBox* q_auto_skip_ = nullptr;
  QLineEdit* target_cond_ = nullptr;
  QComboBox* turbo_policy_ = nullptr;
  QCheckBox* attention_ = nullptr;
  QComboBox* attn_sample_ = nullptr;  // editable: a number or "all"
  QComboBox* backend_ = nullptr;
  StreamWidgets k_, v_;
  QWidget* body_ = nullptr;
  QGridLayout* grid_ = nullptr;
  QWidget* run_box_ = nullptr;
  QWidget* layer_box_ = nullptr;
  QTableWidget* layer_table_ = nullptr;
  LayerTable table_;
  bool filling_table_ = false;
  int columns_ = 0;
};

}  // namespace kvwb::views
