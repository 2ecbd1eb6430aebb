#pragma once
// Set-up shared by the kvwb-gui tests that drive the main window (QtTest under Xvfb): the real
// tiny1m capture, window options that never block on a dialog, and a test-only application
// identity.
#include <QCoreApplication>
#include <QStandardPaths>
#include <QString>

#include "app/gui/main_window.h"

namespace kvwb::app::gui_test {

/// The real tiny1m WikiText-2 capture (absent in a fresh clone: the tests using it skip).
inline QString tiny1m() { return QString(KVWB_REAL_DATA_DIR) + "/tiny1m_wikitext2.kvc.h5"; }

/// Main-window options of a test: no modal dialogs, no QSettings, autosave only when asked.
inline MainWindow::Options quiet_options(bool autosave = false) {
  MainWindow::Options o;
  o.interactive = false;
  o.use_settings = false;
  o.autosave = autosave;
  return o;
}

/// initTestCase of a GUI test: QStandardPaths in test mode and an application identity of its
/// own (`name`), so settings, caches and autosaves never touch the user's.
inline void init_test_application(const char* name) {
  QStandardPaths::setTestModeEnabled(true);
  QCoreApplication::setOrganizationName("KVWorkbenchTest");
  QCoreApplication::setApplicationName(name);
}

}  // namespace kvwb::app::gui_test
