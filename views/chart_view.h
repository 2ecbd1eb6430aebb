#pragma once
// Base of the QCustomPlot views: a row of controls (combo boxes the view adds) above one
// QCustomPlot, picture export to PNG / SVG / PDF and data export to CSV. Subclasses fill the plot
// in snapshot_changed from values the core computed, and return the plotted data in csv_text().
#include <QHBoxLayout>
#include <QLabel>
#include <QToolButton>
#include <map>
#include <string>

#include "views/view.h"

class QCustomPlot;
class QTimer;
class QSplitter;

namespace kvwb::views {

class ChartView : public View {
  Q_OBJECT
 public:
  /// `name`, `title`: as View's.
  ChartView(const QString& name, const QString& title, QWidget* parent = nullptr);

  QStringList picture_formats() const override { return {"png", "svg", "pdf"}; }
  bool can_export_csv() const override { return true; }
  /// Format from the suffix of `path` (.png, .svg, .pdf); written atomically at the widget's size.
  void export_picture(const QString& path) const override;
  void export_csv(const QString& path) const override;

  QCustomPlot* plot() const { return plot_; }

  /// Zoom and pan (every chart): the wheel zooms, a left drag pans, a double click or the Reset
  /// button returns to the drawn ranges. A zoom survives new snapshots while the chart shows the
  /// same thing (same title); it is dropped when the chart changes.
  bool zoomed() const { return zoomed_; }
  void reset_zoom();
  QToolButton* reset_button() const { return reset_; }

 protected:
  /// Ends a draw (instead of plot()->replot()): makes every axis rect zoomable and pannable,
  /// records the drawn ranges as the home view and re-applies the user's zoom when `key` (what
  /// the chart shows) equals the previous draw's.
  void finish_draw(const QString& key);
  /// A click (press and release within a few pixels, left button) on the plot, not a drag.
  virtual void on_plot_clicked(const QPointF& pos) { (void)pos; }
  /// Draws the current model again (after a resize, so legend rows re-flow to the new width).
  virtual void redraw() {}
  void resizeEvent(QResizeEvent* e) override;
  /// The data currently plotted as CSV text (header row first). Empty when there is none.
  virtual std::string csv_text() const = 0;
  /// Row for the view's own selectors (layer, head, tensor, metric…), above the plot.
  QHBoxLayout* controls() const { return controls_; }
  /// Appends a label and the selector it names to the controls row.
  void add_control(const QString& label, QWidget* selector);
  /// A one-line note under the controls ("no analysis yet", "SYNTHETIC demo capture" …).
  void set_note(const QString& text);
  /// A vertical splitter holding the plot (created on the first call): add widgets below it.
  QSplitter* plot_splitter();

 private:
  struct AxisKey {
    int rect = 0;
    int type = 0;
    bool operator<(const AxisKey& o) const {
      return rect != o.rect ? rect < o.rect : type < o.type;
    }
    bool operator==(const AxisKey& o) const { return rect == o.rect && type == o.type; }
  };
  std::map<AxisKey, std::pair<double, double>> current_ranges() const;
  void apply_ranges(const std::map<AxisKey, std::pair<double, double>>& ranges);

  QHBoxLayout* controls_ = nullptr;
  QLabel* note_ = nullptr;
  QCustomPlot* plot_ = nullptr;
  QToolButton* reset_ = nullptr;
  QSplitter* splitter_ = nullptr;
  bool zoomed_ = false;
  QString draw_key_;
  std::map<AxisKey, std::pair<double, double>> home_, user_;
  QPointF press_pos_;
  bool pressed_ = false;
  QTimer* redraw_timer_ = nullptr;
  int drawn_width_ = 0;
};

}  // namespace kvwb::views
