#pragma once
// Small formatting helpers shared by the sweep dialog, the boundary panel and the bundle dialog.
#include <QColor>
#include <QLabel>
#include <QString>
#include <QTableWidgetItem>
#include <exception>

#include "base/errors.h"

namespace kvwb::app::dlg {

/// Red used for inline errors.
inline QColor error_color() { return QColor(0xc0, 0x39, 0x2b); }
inline QString error_style() { return QStringLiteral("color: #c0392b;"); }

/// "error[CODE]: message" for a typed kvwb::Error, the message otherwise.
inline QString error_text(const std::exception& e) {
  if (const auto* k = dynamic_cast<const kvwb::Error*>(&e))
    return QString::fromStdString("error[" + k->code() + "]: " + k->what());
  return QString::fromUtf8(e.what());
}

/// Shows `text` in `label` in red (or clears the label when `text` is empty).
inline void show_error(QLabel* label, const QString& text) {
  label->setStyleSheet(error_style());
  label->setText(text);
  label->setVisible(!text.isEmpty());
}

/// A word-wrapped label whose text can be selected and copied (statuses, errors, notes), named
/// `object_name` (for tests) when that is not empty.
inline QLabel* selectable_label(const QString& object_name = QString(),
                                const QString& text = QString()) {
  auto* l = new QLabel(text);
  if (!object_name.isEmpty()) l->setObjectName(object_name);
  l->setWordWrap(true);
  l->setTextInteractionFlags(Qt::TextSelectableByMouse);
  return l;
}

/// A read-only table cell; numbers right-aligned.
inline QTableWidgetItem* cell(const QString& text, bool number = false) {
  auto* it = new QTableWidgetItem(text);
  it->setFlags(it->flags() & ~Qt::ItemIsEditable);
  if (number) it->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
  return it;
}

/// printf-style number ("n/a" for NaN).
inline QString num(double v, const char* fmt = "%.4g") {
  if (v != v) return QStringLiteral("n/a");
  return QString::asprintf(fmt, v);
}

/// Bytes with thousands separators ("2,781,728").
inline QString bytes(unsigned long long b) {
  QString s = QString::number(b);
  for (int i = s.size() - 3; i > 0; i -= 3) s.insert(i, QLatin1Char(','));
  return s;
}

}  // namespace kvwb::app::dlg
