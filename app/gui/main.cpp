// kvwb-gui: the Qt workbench.
//   kvwb-gui [CAPTURE] [--session FILE] [--recover] [--config CFG.json] [--baseline CFG.json]
//            [--screenshot OUT.png [--view NAME] [--size WxH]]
// Without CAPTURE or --session it opens the demo capture (SYNTHETIC). --screenshot loads, runs the
// configuration and the analysis, waits for the jobs, raises the named view, saves the whole
// window as PNG and exits (0; 1 on any error; 2 for an unknown view name). --baseline runs a
// configuration (docs/run-config.md) and pins it as the baseline every view compares with;
// --config makes a configuration the current one.
#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QEventLoop>
#include <QFileInfo>
#include <QImageWriter>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QTimer>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "base/allocator.h"
#include "app/gui/main_window.h"
#include "app/gui/view_factory.h"
#include "app/gui/workbench.h"
#include "base/errors.h"
#include "sessions/config/run_config.h"

namespace {

/// Last line of defence: an exception escaping an event handler is reported, never an abort.
class Application : public QApplication {
 public:
  using QApplication::QApplication;
  bool notify(QObject* receiver, QEvent* event) override {
    try {
      return QApplication::notify(receiver, event);
    } catch (const kvwb::Error& e) {
      std::fprintf(stderr, "kvwb-gui: error[%s]: %s\n", e.code().c_str(), e.what());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kvwb-gui: internal error: %s\n", e.what());
    }
    return false;
  }
};

void fail(const QString& text) {
  std::fprintf(stderr, "kvwb-gui: %s\n", text.toLocal8Bit().constData());
}

void pause_events(int ms) {
  QEventLoop loop;
  QTimer::singleShot(ms, &loop, &QEventLoop::quit);
  loop.exec();
}

constexpr int kJobTimeoutMs = 60 * 60 * 1000;

}  // namespace

int main(int argc, char** argv) {
  kvwb::keep_freed_memory_for_reuse();
  // Qt reserves -session/--session (X11 session management) and strips it from the arguments:
  // hand it to the parser under another name.
  std::vector<std::string> args_text(argv, argv + argc);
  for (std::string& a : args_text) {
    if (a == "--session" || a == "-session")
      a = "--kvwb-session";
    else if (a.rfind("--session=", 0) == 0)
      a = "--kvwb-session=" + a.substr(10);
  }
  std::vector<char*> args_ptr;
  for (std::string& a : args_text) args_ptr.push_back(a.data());
  args_ptr.push_back(nullptr);
  int app_argc = argc;
  Application app(app_argc, args_ptr.data());
  QApplication::setOrganizationName("KVWorkbench");
  QApplication::setApplicationName("kvwb-gui");
  QApplication::setApplicationDisplayName("KV Workbench");

  QCommandLineParser parser;
  parser.setApplicationDescription("KV Workbench: LLM KV-cache codec workbench");
  parser.addHelpOption();
  parser.addPositionalArgument(
      "capture", "Capture to open (.kvc.h5); default: the demo capture (synthetic)", "[CAPTURE]");
  QCommandLineOption session_opt(QStringList{"session", "kvwb-session"},
                                 "Open a session (*.kvwb.json)", "FILE");
  QCommandLineOption shot_opt(
      "screenshot", "Save the window as PNG after the jobs finished, then exit", "OUT.png");
  QCommandLineOption view_opt(
      "view", "View to bring to front: " + kvwb::app::view_names().join(", "), "NAME");
  QCommandLineOption size_opt("size", "Window size for --screenshot, e.g. 1500x950", "WxH");
  QCommandLineOption recover_opt("recover",
                                 "Recover the autosave of a crashed session without asking");
  QCommandLineOption config_opt("config", "Make this run configuration (JSON) the current one",
                                "CFG.json");
  QCommandLineOption baseline_opt(
      "baseline", "Run this configuration (JSON) and pin it as the baseline to compare with",
      "CFG.json");
  parser.addOptions(
      {session_opt, shot_opt, view_opt, size_opt, recover_opt, config_opt, baseline_opt});
  parser.process(app);

  const QString view = parser.value(view_opt);
  if (!view.isEmpty() && !kvwb::app::view_names().contains(view)) {
    fail("unknown view '" + view + "'; expected one of: " + kvwb::app::view_names().join(", "));
    return 2;
  }
  const bool screenshot = parser.isSet(shot_opt);
  QSize size(1500, 950);
  if (parser.isSet(size_opt)) {
    const auto m = QRegularExpression("^(\\d+)x(\\d+)$").match(parser.value(size_opt));
    if (!m.hasMatch() || m.captured(1).toInt() < 200 || m.captured(2).toInt() < 150) {
      fail("--size: expected WxH such as 1500x950, got '" + parser.value(size_opt) + "'");
      return 2;
    }
    size = QSize(m.captured(1).toInt(), m.captured(2).toInt());
  }
  if (parser.positionalArguments().size() > 1) {
    fail("expected at most one CAPTURE argument");
    return 2;
  }

  kvwb::app::MainWindow::Options options;
  if (screenshot) {
    options.interactive = false;
    options.use_settings = false;
    options.autosave = false;
  }
  kvwb::app::MainWindow window(options);
  if (screenshot || parser.isSet(size_opt)) window.resize(size);
  window.show();
  kvwb::app::Workbench& wb = window.workbench();

  QStringList failures;
  QObject::connect(&wb, &kvwb::app::Workbench::job_failed, &window,
                   [&failures](const QString& name, const QString& code, const QString& message) {
                     failures << name + " failed [" + code + "]: " + message;
                   });

  bool recovered = false;
  if (!screenshot) recovered = window.offer_recovery(parser.isSet(recover_opt));
  if (!recovered) {
    bool ok = true;
    const QString capture = parser.positionalArguments().value(0);
    if (parser.isSet(session_opt)) {
      ok = window.open_session_file(parser.value(session_opt));
      if (ok && !capture.isEmpty()) ok = window.open_capture_file(capture);
    } else if (!capture.isEmpty()) {
      ok = window.open_capture_file(capture);
    } else {
      const QString demo = kvwb::app::MainWindow::demo_capture_path();
      if (!demo.isEmpty())
        ok = window.open_capture_file(demo);
      else if (screenshot) {
        fail("no CAPTURE given and the demo capture was not found (set KVWB_DEMO_CAPTURE)");
        return 1;
      }
    }
    if (screenshot && !ok) {
      fail(window.last_error());
      return 1;
    }
  }
  // --baseline / --config: configurations from files, applied to the open capture.
  auto read_config = [](const QString& path) -> std::optional<kvwb::sessions::RunConfig> {
    try {
      std::ifstream in(path.toStdString());
      if (!in) throw kvwb::IoError(path.toStdString(), "cannot open the configuration file");
      const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
      if (j.is_discarded()) throw kvwb::FormatError(path.toStdString() + ": not valid JSON");
      return kvwb::sessions::run_config_from_json(j, path.toStdString());
    } catch (const kvwb::Error& e) {
      fail(QString("error[%1]: %2")
               .arg(QString::fromStdString(e.code()), QString::fromUtf8(e.what())));
    }
    return std::nullopt;
  };
  if (parser.isSet(baseline_opt)) {
    const auto c = read_config(parser.value(baseline_opt));
    if (!c) return 1;
    if (wb.pin_baseline_config(
            *c, "--baseline " + QFileInfo(parser.value(baseline_opt)).fileName()) < 0)
      return 1;
  }
  if (parser.isSet(config_opt)) {
    const auto c = read_config(parser.value(config_opt));
    if (!c) return 1;
    wb.set_config(*c, "--config " + QFileInfo(parser.value(config_opt)).fileName());
  }
  if (!screenshot) return QApplication::exec();

  // ---- screenshot mode ----
  wb.wait_idle(kJobTimeoutMs);
  QTemporaryDir temp;
  if (view == "pareto") {
    const kvwb::views::SnapshotPtr s = wb.snapshot();
    const bool has_records =
        s->active_sweep >= 0 && !s->sweeps[static_cast<size_t>(s->active_sweep)].records.empty();
    if (!has_records) {
      try {
        wb.start_sweep("default", kvwb::app::default_sweep_grid(), temp.filePath("sweep-store"),
                       false);
      } catch (const kvwb::Error& e) {
        fail(QString("sweep: [%1] %2")
                 .arg(QString::fromStdString(e.code()), QString::fromUtf8(e.what())));
        return 1;
      }
      wb.wait_idle(kJobTimeoutMs);
    }
  }
  if (!failures.isEmpty()) {
    for (const QString& f : failures) fail(f);
    return 1;
  }
  if (wb.busy()) {
    fail("the jobs did not finish in time");
    return 1;
  }
  const kvwb::views::SnapshotPtr s = wb.snapshot();
  const auto& layers = s->capture.layers;
  if (!layers.empty()) {
    const bool has1 = std::find(layers.begin(), layers.end(), 1) != layers.end();
    wb.select(has1 ? 1 : layers.front(), 0);
  }
  if (!view.isEmpty()) window.show_view(view);
  pause_events(400);
  window.repaint();
  pause_events(200);
  const QImage img = window.grab_window();
  QImageWriter writer(parser.value(shot_opt), "png");
  if (!writer.write(img)) {
    fail("cannot write " + parser.value(shot_opt) + ": " + writer.errorString());
    return 1;
  }
  return 0;
}
