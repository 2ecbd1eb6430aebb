#pragma once
// Base of the QCustomPlot views: a row of controls (combo boxes the view adds) above one
// QCustomPlot, picture export to PNG / SVG / PDF and data export to CSV. Subclasses fill the plot
// in set_snapshot from values the core computed, and return the plotted data in csv_text().
#include <QHBoxLayout>
#include <QLabel>
#include <string>

#include "views/view.h"

class QCustomPlot;

namespace kvwb::views {

class ChartView : public View {
  Q_OBJECT
 public:
  explicit ChartView(QWidget* parent = nullptr);

  QStringList picture_formats() const override { return {"png", "svg", "pdf"}; }
  bool can_export_csv() const override { return true; }
  /// Format from the suffix of `path` (.png, .svg, .pdf); written atomically at the widget's size.
  void export_picture(const QString& path) const override;
  void export_csv(const QString& path) const override;

  QCustomPlot* plot() const { return plot_; }

 protected:
  /// The data currently plotted as CSV text (header row first). Empty when there is none.
  virtual std::string csv_text() const = 0;
  /// Row for the view's own selectors (layer, head, tensor, metric…), above the plot.
  QHBoxLayout* controls() const { return controls_; }
  /// A one-line note under the controls ("no analysis yet", "SYNTHETIC demo capture" …).
  void set_note(const QString& text);

 private:
  QHBoxLayout* controls_ = nullptr;
  QLabel* note_ = nullptr;
  QCustomPlot* plot_ = nullptr;
};

}  // namespace kvwb::views
