#pragma once
// Small helpers shared by the sweep dialog, the boundary panel and the bundle dialog: formatting,
// inline errors, and the body of a background job that hands its result to the dialog.
#include <QColor>
#include <QLabel>
#include <QLineEdit>
#include <QPointer>
#include <QPushButton>
#include <QString>
#include <QTableWidgetItem>
#include <exception>
#include <functional>
#include <memory>

#include "app/gui/workbench.h"
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

/// The body of a dialog's background job (Workbench::start_job): runs `compute()` on the job's
/// thread (a Cancelled propagates and cancels the job) and returns the continuation that, on the
/// UI thread and only while `owner` lives, calls `done(*owner, result, error)`: the result (null
/// when `compute` threw) and the error ("" on success, error_text of what was thrown otherwise).
template <class Result, class Owner, class Compute, class Done>
std::function<void()> compute_then(QPointer<Owner> owner, Compute&& compute, Done done) {
  std::shared_ptr<const Result> result;
  QString err;
  try {
    result = std::make_shared<const Result>(compute());
  } catch (const Cancelled&) {
    throw;
  } catch (const std::exception& e) {
    err = error_text(e);
  }
  return [owner, result, err, done] {
    if (owner) done(*owner, result, err);
  };
}

/// A push button named `object_name` (for tests; unnamed when empty) whose click calls
/// `on_click` while `context` lives.
template <class F>
QPushButton* button(const QString& text, const QString& object_name, QObject* context,
                    F&& on_click) {
  auto* b = new QPushButton(text);
  if (!object_name.isEmpty()) b->setObjectName(object_name);
  QObject::connect(b, &QPushButton::clicked, context, std::forward<F>(on_click));
  return b;
}

/// A cancel button of a dialog's job: a click cancels the job whose id `job` holds (a member of
/// `context`, -1 while none runs).
inline QPushButton* cancel_button(const QString& text, Workbench& wb, const int& job,
                                  QObject* context) {
  return button(text, QString(), context, [&wb, &job] {
    if (job >= 0) wb.cancel_job(job);
  });
}

/// Watches the dialog's job (its id in `job`, -1 while none runs; its name in `name`, both members
/// of `context`): when it fails, `on_failed("error[CODE]: message")`; when it is cancelled,
/// `on_cancelled()`.
template <class Failed, class CancelledFn>
void watch_job(Workbench& wb, QObject* context, const int& job, const QString& name,
               Failed on_failed, CancelledFn on_cancelled) {
  QObject::connect(
      &wb, &Workbench::job_failed, context,
      [&job, &name, on_failed](const QString& n, const QString& code, const QString& msg) {
        if (job >= 0 && n == name) on_failed(QStringLiteral("error[%1]: %2").arg(code, msg));
      });
  QObject::connect(&wb, &Workbench::job_cancelled, context,
                   [&job, &name, on_cancelled](const QString& n) {
                     if (job >= 0 && n == name) on_cancelled();
                   });
}

/// Shows `text` in `label` in red (or clears the label when `text` is empty).
inline void show_error(QLabel* label, const QString& text) {
  label->setStyleSheet(error_style());
  label->setText(text);
  label->setVisible(!text.isEmpty());
}

/// A line edit showing `placeholder` while it is empty.
inline QLineEdit* line_edit(const QString& placeholder) {
  auto* e = new QLineEdit;
  e->setPlaceholderText(placeholder);
  return e;
}

/// A word-wrapped label (hints, statuses).
inline QLabel* wrapped_label(const QString& text = QString()) {
  auto* l = new QLabel(text);
  l->setWordWrap(true);
  return l;
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
