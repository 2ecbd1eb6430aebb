#include "views/analysis_chart_view.h"

#include <qcustomplot.h>

#include <QSignalBlocker>
#include <algorithm>

#include "views/chart_style.h"

namespace kvwb::views {

AnalysisChartView::AnalysisChartView(const QString& name, const QString& title, QWidget* parent)
    : ChartView(name, title, parent) {
  title_ = setup_chart(plot());
  install_hover_tooltips(plot());
}

QCustomPlot* AnalysisChartView::begin_draw(const std::string& title, const QString& note,
                                           const QString& x_label, const QString& y_label) {
  QCustomPlot* p = plot();
  clear_chart(p);
  title_->setText(QString::fromStdString(title));
  set_note(note);
  style_axis(p->xAxis, x_label);
  style_axis(p->yAxis, y_label);
  return p;
}

void AnalysisChartView::end_draw() { finish_draw(title_->text() + "|" + plot()->yAxis->label()); }

void AnalysisChartView::end_empty_draw() {
  plot()->legend->setVisible(false);
  end_draw();
}

QComboBox* AnalysisChartView::add_combo(const QString& label, const QString& object_name) {
  auto* combo = new QComboBox(this);
  combo->setObjectName(object_name);
  add_control(label, combo);
  return combo;
}

void AnalysisChartView::fill_numbers(QComboBox* combo, const std::vector<int>& values,
                                     int current) {
  const QSignalBlocker block(combo);
  combo->clear();
  for (int v : values) combo->addItem(QString::number(v), v);
  combo->setCurrentIndex(std::max(0, combo->findData(current)));
  combo->setEnabled(!values.empty());
}

}  // namespace kvwb::views
