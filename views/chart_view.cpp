#include "views/chart_view.h"

#include <QBuffer>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QSvgGenerator>
#include <QVBoxLayout>
#include <cstdio>
#include <qcustomplot.h>

#include "base/errors.h"

namespace kvwb::views {

ChartView::ChartView(QWidget* parent) : View(parent) {
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
  layout->addWidget(plot_, 1);
}

void ChartView::set_note(const QString& text) {
  note_->setText(text);
  note_->setVisible(!text.isEmpty());
}

void ChartView::export_picture(const QString& path) const {
  const QString suffix = QFileInfo(path).suffix().toLower();
  const int w = std::max(plot_->width(), 320), h = std::max(plot_->height(), 240);
  if (suffix == "png") {
    QByteArray bytes;
    QBuffer buffer(&bytes);
    buffer.open(QIODevice::WriteOnly);
    if (!plot_->toPixmap(w, h).save(&buffer, "PNG")) {
      throw IoError(path.toStdString(), "PNG encoding failed");
    }
    write_bytes_atomic(path, bytes);
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
