#include "views/chart_view.h"

#include <qcustomplot.h>

#include <QBuffer>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QSplitter>
#include <QSvgGenerator>
#include <QTimer>
#include <QVBoxLayout>
#include <QWheelEvent>
#include <cmath>
#include <cstdio>

#include "base/errors.h"

namespace kvwb::views {

ChartView::ChartView(const QString& name, const QString& title, QWidget* parent)
    : View(name, title, parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  layout->setSpacing(2);
  controls_ = new QHBoxLayout();
  controls_->setSpacing(6);
  layout->addLayout(controls_);
  note_ = new QLabel(this);
  note_->setWordWrap(true);
  note_->setVisible(false);
  layout->addWidget(note_);
  plot_ = new QCustomPlot(this);
  plot_->setMinimumSize(240, 160);
  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  plot_->setToolTip(QString());
  layout->addWidget(plot_, 1);
  reset_ = new QToolButton(this);
  reset_->setObjectName("reset_zoom");
  reset_->setText(tr("Reset zoom"));
  reset_->setToolTip(
      tr("Back to the whole chart (or double-click the chart). Wheel: zoom, drag: pan"));
  reset_->setEnabled(false);
  connect(reset_, &QToolButton::clicked, this, [this] { reset_zoom(); });
  // The controls row gets the button last (subclasses add their selectors before it).
  QTimer::singleShot(0, this, [this] { controls_->addWidget(reset_); });
  auto user_zoomed = [this] {
    user_ = current_ranges();
    zoomed_ = user_ != home_;
    reset_->setEnabled(zoomed_);
  };
  connect(plot_, &QCustomPlot::mouseWheel, this,
          [user_zoomed](QWheelEvent*) { QTimer::singleShot(0, user_zoomed); });
  connect(plot_, &QCustomPlot::mousePress, this, [this](QMouseEvent* e) {
    pressed_ = e->button() == Qt::LeftButton;
    press_pos_ = e->position();
  });
  connect(plot_, &QCustomPlot::mouseRelease, this, [this, user_zoomed](QMouseEvent* e) {
    if (!pressed_ || e->button() != Qt::LeftButton) return;
    pressed_ = false;
    const QPointF d = e->position() - press_pos_;
    if (std::abs(d.x()) + std::abs(d.y()) <= 4.0)
      on_plot_clicked(e->position());
    else
      user_zoomed();
  });
  connect(plot_, &QCustomPlot::mouseDoubleClick, this, [this](QMouseEvent*) { reset_zoom(); });
  redraw_timer_ = new QTimer(this);
  redraw_timer_->setSingleShot(true);
  redraw_timer_->setInterval(120);
  connect(redraw_timer_, &QTimer::timeout, this, [this] {
    if (std::abs(plot_->width() - drawn_width_) > 24) redraw();
  });
}

void ChartView::resizeEvent(QResizeEvent* e) {
  View::resizeEvent(e);
  redraw_timer_->start();
}

QSplitter* ChartView::plot_splitter() {
  if (splitter_) return splitter_;
  auto* l = static_cast<QVBoxLayout*>(layout());
  const int at = l->indexOf(plot_);
  splitter_ = new QSplitter(Qt::Vertical, this);
  splitter_->setChildrenCollapsible(false);
  l->insertWidget(at, splitter_, 1);
  splitter_->addWidget(plot_);
  return splitter_;
}

std::map<ChartView::AxisKey, std::pair<double, double>> ChartView::current_ranges() const {
  std::map<AxisKey, std::pair<double, double>> out;
  const QList<QCPAxisRect*> rects = plot_->axisRects();
  for (int i = 0; i < rects.size(); ++i)
    for (QCPAxis* a : rects[i]->axes())
      out[{i, static_cast<int>(a->axisType())}] = {a->range().lower, a->range().upper};
  return out;
}

void ChartView::apply_ranges(const std::map<AxisKey, std::pair<double, double>>& ranges) {
  const QList<QCPAxisRect*> rects = plot_->axisRects();
  for (int i = 0; i < rects.size(); ++i)
    for (QCPAxis* a : rects[i]->axes()) {
      const auto it = ranges.find({i, static_cast<int>(a->axisType())});
      if (it != ranges.end()) a->setRange(it->second.first, it->second.second);
    }
}

void ChartView::finish_draw(const QString& key) {
  for (QCPAxisRect* r : plot_->axisRects()) {
    r->setRangeDrag(Qt::Horizontal | Qt::Vertical);
    r->setRangeZoom(Qt::Horizontal | Qt::Vertical);
  }
  home_ = current_ranges();
  if (zoomed_ && key == draw_key_) {
    apply_ranges(user_);
  } else {
    zoomed_ = false;
    user_.clear();
  }
  draw_key_ = key;
  drawn_width_ = plot_->width();
  reset_->setEnabled(zoomed_);
  plot_->replot();
}

void ChartView::reset_zoom() {
  apply_ranges(home_);
  zoomed_ = false;
  user_.clear();
  reset_->setEnabled(false);
  plot_->replot();
}

void ChartView::add_control(const QString& label, QWidget* selector) {
  controls_->addWidget(new QLabel(label, this));
  controls_->addWidget(selector);
}

void ChartView::set_note(const QString& text) {
  note_->setText(text);
  note_->setVisible(!text.isEmpty());
}

void ChartView::export_picture(const QString& path) const {
  const QString suffix = QFileInfo(path).suffix().toLower();
  const int w = std::max(plot_->width(), 320), h = std::max(plot_->height(), 240);
  if (suffix == "png") {
    write_png_atomic(path, plot_->toPixmap(w, h).toImage());
  } else if (suffix == "svg") {
    QByteArray bytes;
    QBuffer buffer(&bytes);
    buffer.open(QIODevice::WriteOnly);
    QSvgGenerator svg;
    svg.setOutputDevice(&buffer);
    svg.setSize(QSize(w, h));
    svg.setViewBox(QRect(0, 0, w, h));
    svg.setTitle(view_title());
    QCPPainter painter;
    painter.begin(&svg);
    plot_->toPainter(&painter, w, h);
    painter.end();
    write_bytes_atomic(path, bytes);
  } else if (suffix == "pdf") {
    // QCustomPlot writes the PDF only to a file: render it beside the target, then commit its bytes
    // through the same atomic write as every other export.
    const QString tmp = QFileInfo(path).absolutePath() + "/." + QFileInfo(path).fileName() + ".pdf-render";
    const bool rendered = plot_->savePdf(tmp, w, h);
    QFile rendered_file(tmp);
    const bool readable = rendered && rendered_file.open(QIODevice::ReadOnly);
    const QByteArray bytes = readable ? rendered_file.readAll() : QByteArray();
    rendered_file.close();
    QFile::remove(tmp);
    if (!readable || bytes.isEmpty())
      throw IoError(path.toStdString(), "PDF export failed (cannot write " + tmp.toStdString() + ")");
    write_bytes_atomic(path, bytes);
  } else {
    throw InvalidArgument(path.toStdString() + ": unknown picture format '." + suffix.toStdString() +
                          "' (expected .png, .svg or .pdf)");
  }
}

void ChartView::export_csv(const QString& path) const {
  const std::string text = csv_text();
  if (text.empty()) {
    throw InvalidArgument(view_name().toStdString() + " view has no data yet (nothing written to " +
                          path.toStdString() + ")");
  }
  write_bytes_atomic(path, QByteArray::fromStdString(text));
}

}  // namespace kvwb::views
