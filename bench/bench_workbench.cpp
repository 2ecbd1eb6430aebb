// The interactive workbench's latencies (issue 13 targets), measured in the real main window under
// Xvfb: open -> first picture (shapes, analysis, first layer, full run) with the largest event-loop
// stall, a one-layer boundary toggle, undo / redo, a Pareto pin of a stored sweep cell, and
// reopening a saved session with a warm result cache. Each latency is a median of --reps samples;
// "before" rows repeat the measurement with the result cache switched off (Preferences), i.e.
// every edit re-runs the whole capture as the workbench did before issue 13.
//
//   xvfb-run -a bench_workbench [--capture C.kvc.h5] [--large L.kvc.h5] [--reps 5] [--json OUT]
// scripts/run-bench-workbench.sh builds the large (1.5B-shaped) capture and adds the CLI timings.
#include <QApplication>
#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTimer>
#include <QtTest/QtTest>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "app/gui/main_window.h"
#include "app/gui/workbench.h"
#include "views/pareto_view.h"

using kvwb::app::MainWindow;
using kvwb::app::Workbench;
using nlohmann::json;

namespace {

constexpr int kWaitMs = 30 * 60 * 1000;

/// Largest gap between ticks of a 5 ms timer on the GUI thread: how long the UI was unresponsive.
class StallMeter : public QObject {
 public:
  StallMeter() {
    timer_.setInterval(5);
    QObject::connect(&timer_, &QTimer::timeout, this, [this] {
      const qint64 now = clock_.elapsed();
      max_gap_ = std::max(max_gap_, now - last_);
      last_ = now;
    });
  }
  void start() {
    clock_.start();
    last_ = 0;
    max_gap_ = 0;
    timer_.start();
  }
  /// Largest stall in ms beyond the timer's own period.
  double stop() {
    timer_.stop();
    return static_cast<double>(std::max<qint64>(0, max_gap_ - 5));
  }

 private:
  QTimer timer_;
  QElapsedTimer clock_;
  qint64 last_ = 0, max_gap_ = 0;
};

std::unique_ptr<MainWindow> make_window() {
  MainWindow::Options o;
  o.interactive = false;
  o.use_settings = false;
  o.autosave = false;
  auto w = std::make_unique<MainWindow>(o);
  w->resize(1500, 950);
  w->show();
  if (!QTest::qWaitForWindowExposed(w.get())) std::fprintf(stderr, "bench_workbench: window not exposed\n");
  return w;
}

double ms_since(const QElapsedTimer& t) { return static_cast<double>(t.nsecsElapsed()) / 1e6; }

double median(std::vector<double> v) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// Waits until no job runs and the snapshot shows a finished, current run; ms since `t`.
double settle(Workbench& wb, const QElapsedTimer& t) {
  while (true) {
    if (!wb.busy()) {
      const auto s = wb.snapshot();
      if (s->run && s->run_is_current && !s->run_in_flight) break;
    }
    if (t.elapsed() > kWaitMs) {
      std::fprintf(stderr, "bench_workbench: no current run after %d s\n", kWaitMs / 1000);
      std::exit(1);
    }
    QTest::qWait(1);
  }
  return ms_since(t);
}

struct OpenTimes {
  double shapes = -1, analysis = -1, first_layer = -1, full = -1, max_stall = -1;
};

/// Runs `open` (a capture or a session) in `w` and records when each part of the first picture
/// arrived.
template <class Open>
OpenTimes time_open(MainWindow& w, const QString& path, Open open) {
  Workbench& wb = w.workbench();
  OpenTimes t;
  QElapsedTimer clock;
  auto conn = QObject::connect(&wb, &Workbench::snapshot_changed, &wb, [&](kvwb::views::SnapshotPtr s) {
    if (t.shapes < 0 && s->capture.num_layers > 0) t.shapes = ms_since(clock);
    if (t.analysis < 0 && s->analysis) t.analysis = ms_since(clock);
    if (t.first_layer < 0 && s->run && !s->run->layers.empty()) t.first_layer = ms_since(clock);
  });
  StallMeter stall;
  stall.start();
  clock.start();
  if (!open()) {
    std::fprintf(stderr, "bench_workbench: cannot open %s\n", qPrintable(path));
    std::exit(1);
  }
  t.full = settle(wb, clock);
  if (!wb.wait_idle(kWaitMs)) std::exit(1);  // the analysis may finish after the run
  t.max_stall = stall.stop();
  QObject::disconnect(conn);
  return t;
}

OpenTimes open_and_time(MainWindow& w, const QString& path) {
  return time_open(w, path, [&] { return w.open_capture_file(path); });
}

/// `reps` one-layer boundary toggles, each to a state not seen before (layers 0, 1, … join the
/// boundary one by one, then leave it), so that no run of the history can answer it.
std::vector<double> toggles(Workbench& wb, int reps) {
  std::vector<double> v;
  const std::vector<int> layers = wb.snapshot()->capture.layers;
  const int n = static_cast<int>(layers.size());
  for (int i = 0; i < reps && i < 2 * n - 1; ++i) {
    QElapsedTimer t;
    t.start();
    wb.toggle_boundary(layers[static_cast<size_t>(i % n)]);
    v.push_back(settle(wb, t));
  }
  return v;
}

/// Makes `bits` the K bit width of the current configuration and waits for its run.
void set_k_bits(Workbench& wb, const char* bits) {
  auto c = wb.current_config();
  c.k.params["bit_width"] = bits;
  c.boundary.clear();
  wb.set_config(c, QString("K %1 bits").arg(bits));
  wb.wait_idle(kWaitMs);
}

std::vector<double> undo_redo(Workbench& wb, int reps, bool undo) {
  std::vector<double> v;
  for (int i = 0; i < reps; ++i) {
    QElapsedTimer t;
    t.start();
    if (!(undo ? wb.undo() : wb.redo())) break;
    v.push_back(settle(wb, t));
  }
  return v;
}

void row(const char* what, double ms, const char* target) {
  if (ms < 0)
    std::printf("| %-52s | %10s | %-10s |\n", what, "not run", target);
  else
    std::printf("| %-52s | %10.1f | %-10s |\n", what, ms, target);
}

}  // namespace

int main(int argc, char** argv) {
  QTemporaryDir cache_dir;  // a cold result cache, removed at exit; the user's is never touched
  qputenv("KVWB_CACHE_DIR", cache_dir.path().toUtf8());
  QApplication app(argc, argv);
  QStandardPaths::setTestModeEnabled(true);
  QCoreApplication::setOrganizationName("KVWorkbenchBench");

  QString capture = QString(KVWB_REAL_DATA_DIR) + "/tiny1m_wikitext2.kvc.h5", large, json_out;
  int reps = 5;
  const QStringList args = app.arguments();
  for (int i = 1; i + 1 < args.size(); i += 2) {
    if (args[i] == "--capture") capture = args[i + 1];
    else if (args[i] == "--large") large = args[i + 1];
    else if (args[i] == "--reps") reps = std::clamp(args[i + 1].toInt(), 1, 100);
    else if (args[i] == "--json") json_out = args[i + 1];
    else {
      std::fprintf(stderr, "usage: bench_workbench [--capture C] [--large L] [--reps N] [--json OUT]\n");
      return 2;
    }
  }
  if (!QFileInfo::exists(capture)) {
    std::fprintf(stderr, "bench_workbench: capture %s not found (the real tiny1m data lives in ../shared)\n",
                 qPrintable(capture));
    return 77;
  }
  json out = {{"capture", capture.toStdString()}, {"reps", reps}, {"threads", Workbench::run_threads()}};
  QTemporaryDir work;

  // 1. The capture, cold cache: the first picture, then edits with the cache (after) and without.
  auto w = make_window();
  Workbench& wb = w->workbench();
  const OpenTimes open = open_and_time(*w, capture);
  const double toggle_after = median(toggles(wb, reps));
  const double undo_after = median(undo_redo(wb, reps, true));
  const double redo_after = median(undo_redo(wb, reps, false));

  // A stored sweep (three peer cells): pinning a cell as the baseline reuses its record.
  const json grid = {{"grids", {{{"k_codec", {"q8_0", "q4_0", "turbo3"}}, {"v_codec", {"q8_0"}}}}}};
  wb.start_sweep("bench", grid, work.filePath("sweep"), false);
  wb.wait_idle(kWaitMs);
  w->show_view("pareto");
  for (int i = 0; i < 1000 && !w->view_is_current("pareto"); ++i) QTest::qWait(10);
  std::vector<double> pins, pins_again;
  if (auto* pareto = qobject_cast<kvwb::views::ParetoView*>(w->view("pareto"))) {
    const int rows = static_cast<int>(pareto->table_rows().size());
    for (auto* v : {&pins, &pins_again})
      for (int r = 0; r < rows; ++r) {
        wb.clear_baseline();
        QElapsedTimer t;
        t.start();
        pareto->select_row(r);
        if (!pareto->pin_selected()) break;
        while (wb.busy() || !wb.baseline()) {
          if (t.elapsed() > kWaitMs) {
            std::fprintf(stderr, "bench_workbench: the pinned sweep cell never became the baseline\n");
            return 1;
          }
          QTest::qWait(1);
        }
        v->push_back(ms_since(t));
      }
  }
  const QString session = work.filePath("bench.kvwb.json");
  w->save_session_file(session);

  // Before: no result cache, on a configuration not run yet (every toggle runs the capture).
  wb.set_result_cache_enabled(false);
  set_k_bits(wb, "2");
  const double toggle_before = median(toggles(wb, reps));
  w.reset();

  // 2. Reopening the saved session with a warm cache.
  std::vector<double> reopen, reopen_shapes, reopen_all;
  for (int i = 0; i < reps; ++i) {
    auto w2 = make_window();
    const OpenTimes t = time_open(*w2, session, [&] { return w2->open_session_file(session, true); });
    reopen.push_back(t.first_layer >= 0 ? std::max(t.first_layer, t.shapes) : t.full);
    reopen_shapes.push_back(t.shapes);
    reopen_all.push_back(t.full);
  }

  // 3. The large capture (e.g. 1.5B-shaped): first picture and the UI during the full run.
  OpenTimes big;
  if (!large.isEmpty()) {
    auto w3 = make_window();
    big = open_and_time(*w3, large);
  }

  std::printf("\nbench_workbench: %s, %d GUI run threads, medians of %d\n\n", qPrintable(capture),
              Workbench::run_threads(), reps);
  std::printf("| %-52s | %10s | %-10s |\n|---|---:|---|\n", "what (ms)", "ms", "target");
  row("open: shapes drawn", open.shapes, "");
  row("open: first layer result", open.first_layer, "");
  row("open: full run", open.full, "");
  row("open: largest UI stall", open.max_stall, "");
  row("boundary toggle -> totals, cache off (before)", toggle_before, "");
  row("boundary toggle -> totals, cache on (after)", toggle_after, "<= 500");
  row("undo of a seen state, cache on (after)", undo_after, "<= 100");
  row("redo of a seen state, cache on (after)", redo_after, "<= 100");
  row("Pareto pin of a stored cell (first)", median(pins), "<= 200");
  row("Pareto pin of a stored cell (again)", median(pins_again), "<= 200");
  row("session reopen, warm cache: shapes drawn", median(reopen_shapes), "");
  row("session reopen, warm cache: run shown", median(reopen), "<= 1000");
  row("session reopen, warm cache: idle (analysis too)", median(reopen_all), "");
  if (!large.isEmpty()) {
    row("large capture: shapes drawn (first picture)", big.shapes, "<= 3000");
    row("large capture: analysis drawn", big.analysis, "");
    row("large capture: first layer result", big.first_layer, "");
    row("large capture: full run", big.full, "");
    row("large capture: largest UI stall during the run", big.max_stall, "<= 100");
  }
  out["open"] = {{"shapes_ms", open.shapes}, {"first_layer_ms", open.first_layer}, {"full_ms", open.full},
                 {"max_stall_ms", open.max_stall}};
  out["toggle_ms"] = {{"before", toggle_before}, {"after", toggle_after}};
  out["undo_ms"] = undo_after;
  out["redo_ms"] = redo_after;
  out["pareto_pin_ms"] = {{"first", median(pins)}, {"again", median(pins_again)}};
  out["session_reopen_ms"] = {{"shapes", median(reopen_shapes)}, {"run", median(reopen)}, {"idle", median(reopen_all)}};
  if (!large.isEmpty())
    out["large"] = {{"capture", large.toStdString()}, {"shapes_ms", big.shapes}, {"analysis_ms", big.analysis},
                    {"first_layer_ms", big.first_layer}, {"full_ms", big.full}, {"max_stall_ms", big.max_stall}};
  if (!json_out.isEmpty()) std::ofstream(json_out.toStdString()) << out.dump(2) << "\n";
  return 0;
}
