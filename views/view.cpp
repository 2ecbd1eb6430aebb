#include "views/view.h"

#include <QBuffer>
#include <QHeaderView>
#include <QImage>
#include <QSaveFile>
#include <QTableWidget>

#include "base/errors.h"

namespace kvwb::views {

void View::set_snapshot(SnapshotPtr snapshot) {
  snapshot_ = snapshot ? std::move(snapshot) : std::make_shared<const Snapshot>();
  snapshot_changed();
}

void View::export_picture(const QString& path) const {
  throw InvalidArgument(view_name().toStdString() + " view has no picture to export (asked for " +
                        path.toStdString() + ")");
}

void View::export_csv(const QString& path) const {
  throw InvalidArgument(view_name().toStdString() + " view has no data to export as CSV (asked for " +
                        path.toStdString() + ")");
}

void write_bytes_atomic(const QString& path, const QByteArray& bytes) {
  QSaveFile file(path);
  if (!file.open(QIODevice::WriteOnly)) {
    throw IoError(path.toStdString(), "cannot open for writing: " + file.errorString().toStdString());
  }
  if (file.write(bytes) != bytes.size()) {
    throw IoError(path.toStdString(), "write failed: " + file.errorString().toStdString());
  }
  if (!file.commit()) {
    throw IoError(path.toStdString(), "cannot commit (rename) the written file: " +
                                          file.errorString().toStdString());
  }
}

void write_png_atomic(const QString& path, const QImage& image) {
  QByteArray bytes;
  QBuffer buffer(&bytes);
  buffer.open(QIODevice::WriteOnly);
  if (!image.save(&buffer, "PNG")) throw IoError(path.toStdString(), "PNG encoding failed");
  write_bytes_atomic(path, bytes);
}

QTableWidget* make_row_table(QWidget* parent, const QStringList& headers, const QString& name) {
  auto* t = new QTableWidget(parent);
  t->setObjectName(name);
  t->setColumnCount(static_cast<int>(headers.size()));
  t->setHorizontalHeaderLabels(headers);
  t->verticalHeader()->setVisible(false);
  t->setSelectionBehavior(QAbstractItemView::SelectRows);
  t->setSelectionMode(QAbstractItemView::SingleSelection);
  t->setTabKeyNavigation(false);
  return t;
}

}  // namespace kvwb::views
