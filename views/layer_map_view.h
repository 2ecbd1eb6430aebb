#pragma once
// The layer map (issue #5): a layer × kv-head grid coloured by one metric of the snapshot, drawn
// with Dear ImGui in a QOpenGLWidget (LayerMapCanvas). Above the grid: the metric, the capture
// (SYNTHETIC for the demo capture), the totals of the current run as the CLI prints them
// ("ratio 2.8614", bytes, quality; "rerunning…" while a rerun is in flight) and a colour-scale
// legend. Hovering a cell shows its exact value and the layer's status; clicking it emits
// select_requested(layer, kv_head); the "bf16" box at the start of each row emits
// boundary_toggle_requested(layer). A Qt row above the canvas chooses the metric and the stream.
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

  /// Rectangle of cell (layer, kv_head) / of the boundary box of `layer` in this widget's
  /// coordinates as drawn by the last frame; null QRect when not drawn (yet).
  QRect cell_rect(int layer, int kv_head) const;
  QRect boundary_toggle_rect(int layer) const;

 protected:
  void draw_frame() override;
  void after_frame() override;

 private:
  void draw_header(const LayerMapModel& m);
  void draw_legend(const LayerMapModel& m);
  void draw_grid(const LayerMapModel& m);

  std::shared_ptr<const LayerMapModel> model_;
  std::map<std::pair<int, int>, QRect> cell_rects_;
  std::map<int, QRect> toggle_rects_;
  std::optional<std::pair<int, int>> pending_select_;
  std::optional<int> pending_toggle_;
};

class LayerMapView : public View {
  Q_OBJECT
 public:
  explicit LayerMapView(QWidget* parent = nullptr);

  QString view_name() const override { return QStringLiteral("layer-map"); }
  QString view_title() const override { return QStringLiteral("Layer map"); }
  /// Rebuilds the grid from values in `snapshot` (build_layer_map) and redraws.
  void set_snapshot(SnapshotPtr snapshot) override;
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

 private:
  void rebuild();
  void fill_stream_box();

  SnapshotPtr snapshot_;
  std::shared_ptr<const LayerMapModel> model_;
  LayerMapMetric metric_ = LayerMapMetric::kSigmaQCond;
  LayerMapStream stream_ = LayerMapStream::kNone;
  QComboBox* metric_box_ = nullptr;
  QComboBox* stream_box_ = nullptr;
  QLabel* stream_label_ = nullptr;
  LayerMapCanvas* canvas_ = nullptr;
  bool updating_boxes_ = false;
};

}  // namespace kvwb::views
