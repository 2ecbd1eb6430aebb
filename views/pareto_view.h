#pragma once
// The Pareto view (issue #5): the cells of the active sweep as ratio vs bf16 (x) against a chosen
// quality metric (y, log scale when it spans decades), coloured and shaped by codec family, with
// the core's frontier drawn as a staircase, the current configuration ringed, the excluded cells
// listed in the note, hover details and click-to-load (emits config_requested with the cell's
// configuration). Points and frontier come from views/pareto_model.h (the core's functions).
#include <QComboBox>
#include <QPoint>
#include <QPushButton>
#include <QTableWidget>
#include <QToolButton>
#include <string>
#include <vector>

#include "views/chart_view.h"
#include "views/models/pareto_model.h"

class QMouseEvent;
class QCPTextElement;

namespace kvwb::views {

class ParetoView : public ChartView {
  Q_OBJECT
 public:
  explicit ParetoView(QWidget* parent = nullptr);

  bool has_content() const override { return !model_.points.empty(); }

  /// The model currently drawn.
  const ParetoModel& model() const { return model_; }
  /// Chooses the quality metric (one of model().metrics); redraws.
  void set_metric(const std::string& metric);
  /// Index into model().points of the point nearest to `pixel` (QCustomPlot widget coordinates)
  /// within 10 px, or -1.
  int point_at(const QPoint& pixel) const;
  /// Hover text of point `index` (id, options, codec, ratio, metric, bytes).
  QString point_details(int index) const;

  /// Overlays sweep `name` of the session (another result store) on the active one.
  void set_overlay(const std::string& name, bool on);
  /// The overlaid stores' models (same metric), in the session's sweep order.
  const std::vector<ParetoModel>& overlays() const { return overlays_; }
  /// One row of the results table: a point of the active store (store 0) or of an overlay.
  struct TableRow {
    int store = 0;  // 0 = the active sweep, i = overlays()[i - 1]
    int point = 0;  // index into that model's points
  };
  const std::vector<TableRow>& table_rows() const { return rows_; }
  QTableWidget* results_table() const { return table_; }
  /// Selects table row `row` (the point is marked in the plot); -1 clears.
  void select_row(int row);
  int selected_row() const { return selected_; }
  /// Loads / pins the configuration of the selected row (as the buttons).
  bool load_selected();
  bool pin_selected();

 protected:
  /// The sweep selector and overlay menu of the snapshot's sweeps, then the plot.
  void snapshot_changed() override;
  void redraw() override { rebuild(); }
  std::string csv_text() const override;
  void on_plot_clicked(const QPointF& pos) override;

 private:
  void rebuild();
  void draw();
  void fill_table();
  void on_mouse_move(QMouseEvent* event);
  const ParetoModel& store_model(int store) const;
  QString store_name(int store) const;
  /// Emits config_requested for point `index` of store `store`.
  bool load_point(int store, int index);

  ParetoModel model_;
  std::vector<ParetoModel> overlays_;
  std::vector<std::string> overlay_names_;
  std::vector<TableRow> rows_;
  int selected_ = -1;
  std::string metric_;
  QComboBox* sweep_combo_ = nullptr;
  QLabel* sweep_label_ = nullptr;
  QComboBox* metric_combo_ = nullptr;
  QToolButton* overlay_button_ = nullptr;
  QTableWidget* table_ = nullptr;
  QPushButton* load_button_ = nullptr;
  QPushButton* pin_button_ = nullptr;
  QCPTextElement* title_ = nullptr;
  bool filling_ = false;
};

}  // namespace kvwb::views
