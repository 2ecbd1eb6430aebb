#pragma once
// The layer map (issue #5): a layer × kv-head grid coloured by one metric of the snapshot, drawn
// with Dear ImGui in a QOpenGLWidget (LayerMapCanvas). Above the grid: the metric, the capture
// (SYNTHETIC for the demo capture), the totals of the current run as the CLI prints them
// ("ratio 2.8614", bytes, quality; "rerunning…" while a rerun is in flight) and a colour-scale
// legend. Hovering a cell shows its exact value and the layer's status; clicking it emits
// select_requested(layer, kv_head); the "bf16" box at the start of each row emits
// boundary_toggle_requested(layer). A Qt row above the canvas chooses the metric and the stream.
#include <QCheckBox>
#include <QComboBox>
#include <QLabel>
#include <QRect>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <utility>

#include "views/imgui_host.h"
#include "views/models/layer_map_model.h"
#include "views/view.h"

namespace kvwb::views {

/// The ImGui canvas of the layer map: draws a LayerMapModel, reports clicks through callbacks
/// (called after the ImGui frame ended, so they may replace the model).
class LayerMapCanvas : public ImGuiHost {
  Q_OBJECT
 public:
  explicit LayerMapCanvas(QWidget* parent = nullptr);

  /// The model to draw (null = nothing); schedules a frame.
  void set_model(std::shared_ptr<const LayerMapModel> model);
  const LayerMapModel* model() const { return model_.get(); }

  std::function<void(int layer, int kv_head)> on_select;
  std::function<void(int layer)> on_boundary_toggle;
  /// Ctrl + wheel asks for large cells (true) or the fitted grid (false).
  std::function<void(bool large)> on_zoom;

  /// Fit (default): cells shrink so the whole grid fits the canvas (80 layers × 8 kv heads in the
  /// default window), text shows in a cell only when it fits, exact values on hover. Large: the
  /// readable cells of before, the grid scrolls.
  void set_large_cells(bool large);
  bool large_cells() const { return large_cells_; }
  /// True when the last frame's grid needed scrolling (it did not fit).
  bool grid_scrolls() const { return grid_scrolls_; }
  /// Cell size of the last frame (logical pixels) and whether cells showed their text.
  QSizeF cell_size() const { return cell_size_; }
  bool cell_text_shown() const { return cell_text_shown_; }

  /// Rectangle of cell (layer, kv_head) / of the boundary box of `layer` in this widget's
  /// coordinates as drawn by the last frame; null QRect when not drawn (yet).
  QRect cell_rect(int layer, int kv_head) const;
  QRect boundary_toggle_rect(int layer) const;

 protected:
  void draw_frame() override;
  void after_frame() override;
  /// Keyboard: arrows move the selection (layer rows, kv-head columns), Home / End jump to the
  /// first / last layer, Space toggles bf16 (boundary) of the selected layer, Ctrl + / Ctrl −
  /// switch large / fitted cells. Tab and Backtab leave the canvas (never trapped).
  void keyPressEvent(QKeyEvent* e) override;
  void wheelEvent(QWheelEvent* e) override;

 private:
  void draw_header(const LayerMapModel& m);
  void draw_legend(const LayerMapModel& m);
  void draw_grid(const LayerMapModel& m);

  std::shared_ptr<const LayerMapModel> model_;
  std::map<std::pair<int, int>, QRect> cell_rects_;
  std::map<int, QRect> toggle_rects_;
  std::optional<std::pair<int, int>> pending_select_;
  std::optional<int> pending_toggle_;
  std::optional<Selection> key_selection_;  // moved by the keyboard, until the snapshot follows
  std::vector<Selection> keyed_;            // selections asked for, not yet seen in a model
  Selection shown_selection_;               // selection of the model drawn before this one
  bool large_cells_ = false;
  bool grid_scrolls_ = false;
  QSizeF cell_size_;
  bool cell_text_shown_ = false;
};

class LayerMapView : public View {
  Q_OBJECT
 public:
  explicit LayerMapView(QWidget* parent = nullptr);

  bool has_content() const override;

  QStringList picture_formats() const override { return {QStringLiteral("png")}; }
  bool can_export_csv() const override { return true; }
  /// PNG of the canvas (QOpenGLWidget::grabFramebuffer), written atomically.
  void export_picture(const QString& path) const override;
  /// The grid as CSV (layer_map_csv), written atomically.
  void export_csv(const QString& path) const override;

  /// Chooses the metric / stream (as the combo boxes do) and rebuilds the grid.
  void set_metric(LayerMapMetric metric, LayerMapStream stream = LayerMapStream::kNone);
  const LayerMapModel& model() const { return *model_; }
  LayerMapCanvas* canvas() const { return canvas_; }
  QComboBox* metric_box() const { return metric_box_; }
  QComboBox* stream_box() const { return stream_box_; }
  /// Δ vs the pinned baseline (run metrics; disabled without a baseline).
  QCheckBox* delta_box() const { return delta_box_; }
  /// Large cells (scrolling) instead of the fitted grid.
  QCheckBox* zoom_box() const { return zoom_box_; }
  /// Shows Δ = current − baseline (as the check box does).
  void set_delta(bool on);

 protected:
  /// Rebuilds the grid from values in the snapshot (build_layer_map) and redraws.
  void snapshot_changed() override { rebuild(); }

 private:
  void rebuild();
  void fill_stream_box();

  std::shared_ptr<const LayerMapModel> model_;
  LayerMapMetric metric_ = LayerMapMetric::kSigmaQCond;
  LayerMapStream stream_ = LayerMapStream::kNone;
  QComboBox* metric_box_ = nullptr;
  QComboBox* stream_box_ = nullptr;
  QLabel* stream_label_ = nullptr;
  QCheckBox* delta_box_ = nullptr;
  QCheckBox* zoom_box_ = nullptr;
  bool delta_ = false;
  LayerMapCanvas* canvas_ = nullptr;
  bool updating_boxes_ = false;
};

}  // namespace kvwb::views
