// The interactive workbench of issue #13 in the main window on the real tiny1m capture: the run
// history with instant recall, the pinned baseline shown by every view (Δratio, per-layer Δ
// error, Δ layer map, overlaid distributions), a sweep cell pinned as the baseline through the
// Pareto results table, the per-layer table of the configuration editor (edit → Run → undo, a
// global edit that would change nothing is refused), F5 runs the edited configuration, Esc
// cancels only the focused job and a cancelled run is labelled partial, keyboard navigation of
// the layer map and of the dialogs (Tab never trapped), and the layouts at 1200×800 (screenshot
// written by the test) and 1920×1080.
#include <qcustomplot.h>

#include <QAbstractButton>
#include <QCheckBox>
#include <QComboBox>
#include <QDialog>
#include <QDir>
#include <QDockWidget>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QImage>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QRegularExpression>
#include <QScrollArea>
#include <QScrollBar>
#include <QSet>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTabBar>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest/QtTest>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "app/gui/boundary_panel.h"
#include "app/gui/bundle_dialog.h"
#include "app/gui/main_window.h"
#include "tests/app/gui/gui_test_util.h"
#include "app/gui/sweep_dialog.h"
#include "app/gui/workbench.h"
#include "sessions/explore/result_store.h"
#include "sessions/run/runner.h"
#include "views/compare_view.h"
#include "views/config_view.h"
#include "views/distribution_view.h"
#include "views/layer_error_view.h"
#include "views/layer_map_view.h"
#include "views/models/comparison_model.h"
#include "views/pareto_view.h"

using kvwb::app::MainWindow;
using kvwb::app::Workbench;
namespace views = kvwb::views;

namespace {

constexpr int kWaitMs = 180000;

using kvwb::app::gui_test::tiny1m;

std::unique_ptr<MainWindow> make_window(QSize size = QSize(1500, 950)) {
  auto w = std::make_unique<MainWindow>(kvwb::app::gui_test::quiet_options());
  w->resize(size);
  w->show();
  w->activateWindow();  // shortcuts (F5, Esc, Ctrl+B) go to the active window
  if (!QTest::qWaitForWindowActive(w.get())) qWarning("the main window did not become active");
  return w;
}

/// make_window with the tiny1m capture open and its first run finished; null (the test failed,
/// naming the step) when either did not happen.
std::unique_ptr<MainWindow> window_on_tiny1m() {
  auto w = make_window();
  if (!QTest::qVerify(w->open_capture_file(tiny1m()), "w->open_capture_file(tiny1m())", "",
                      __FILE__, __LINE__))
    return nullptr;
  if (!QTest::qVerify(w->workbench().wait_idle(kWaitMs), "wb.wait_idle(kWaitMs)", "", __FILE__,
                      __LINE__))
    return nullptr;
  return w;
}

/// Raises view `name` and waits until it drew the latest snapshot (one view per event).
template <class V>
V* view_of(MainWindow& w, const char* name) {
  w.show_view(name);
  QElapsedTimer clock;
  clock.start();
  while (!w.view_is_current(name) && clock.elapsed() < 10000) QTest::qWait(10);
  if (!w.view_is_current(name)) qWarning("view %s did not get the latest snapshot", name);
  return qobject_cast<V*>(w.view(name));
}

QAction* action(MainWindow& w, const QString& prefix) {
  for (QAction* a : w.findChildren<QAction*>())
    if (a->text().startsWith(prefix)) return a;
  return nullptr;
}

kvwb::sessions::RunConfig with_k_bits(kvwb::sessions::RunConfig c, const char* bits) {
  c.k.params["bit_width"] = bits;
  return c;
}

/// Presses Tab `presses` times from the current focus: the distinct widgets that had the focus,
/// failing when a press leaves the focus where it was (trapped).
QSet<QWidget*> tab_through(QWidget* window, int presses) {
  QSet<QWidget*> seen;
  for (int i = 0; i < presses; ++i) {
    QWidget* before = QApplication::focusWidget();
    QTest::keyClick(before ? before : window, Qt::Key_Tab);
    QWidget* after = QApplication::focusWidget();
    if (after == before && after != nullptr) {
      qWarning("Tab trapped in %s (%s)", after->metaObject()->className(),
               qPrintable(after->objectName()));
      return {};
    }
    if (after) seen.insert(after);
  }
  return seen;
}

}  // namespace

class TestGuiWorkbench : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() { kvwb::app::gui_test::init_test_application("test_gui_workbench"); }

  // History, recall (instant: the held result, no job) and the baseline in every view.
  void history_recall_and_baseline_in_every_view() {
    if (!QFileInfo::exists(tiny1m())) QSKIP("real data absent: tiny1m_wikitext2.kvc.h5");
    auto w = window_on_tiny1m();
    QVERIFY(w);
    Workbench& wb = w->workbench();
    QCOMPARE(wb.history().size(), size_t(1));
    const uint64_t first = wb.history().front()->id;
    QCOMPARE(wb.snapshot()->run_id, first);
    QAction* pin = action(*w, "&Pin current run as baseline");
    QVERIFY(pin);
    QCOMPARE(pin->shortcut(), QKeySequence(Qt::CTRL | Qt::Key_B));
    pin->trigger();
    QVERIFY(wb.baseline() && wb.baseline()->id == first);

    wb.set_config(with_k_bits(wb.current_config(), "2"), "K 2 bits");
    QVERIFY(wb.wait_idle(kWaitMs));
    const auto s = wb.snapshot();
    QCOMPARE(wb.history().size(), size_t(2));
    const double delta = s->run->ratio_vs_bf16() - s->baseline->run->ratio_vs_bf16();
    QVERIFY(delta > 0);
    QVERIFY2(w->ratio_text().contains(QString::asprintf(
                 "Δ vs baseline #%llu %+.4f", static_cast<unsigned long long>(first), delta)),
             qPrintable(w->ratio_text()));

    // The comparison view: totals with Δ, the one setting that differs, the history.
    auto* cmp = view_of<views::CompareView>(*w, "compare");
    QVERIFY(cmp && cmp->model().has_baseline);
    QCOMPARE(*cmp->model().totals.front().delta(), delta);
    QVERIFY(cmp->header_text().contains("Δratio"));
    QCOMPARE(cmp->config_table()->rowCount(), 1);
    QCOMPARE(cmp->config_table()->item(0, 0)->text(), QString("K · bit_width"));
    QCOMPARE(cmp->history_table()->rowCount(), 2);
    QCOMPARE(cmp->layers_table()->rowCount(), static_cast<int>(s->run->layers.size()));

    // Per-layer error: the baseline dashed and its Δ %.
    auto* le = view_of<views::LayerErrorView>(*w, "layer-error");
    QVERIFY(!le->baseline_model().rows.empty());
    QVERIFY(!le->delta_series().empty());
    QVERIFY(le->plot()->axisRectCount() == 2);
    // Distribution: the baseline's histogram of the same layer and stream.
    auto* dist = view_of<views::DistributionView>(*w, "distribution");
    QVERIFY(dist->has_baseline() && dist->baseline_model().has_histogram());
    // Layer map: Δ relative MSE, cell by cell.
    auto* map = view_of<views::LayerMapView>(*w, "layer-map");
    map->set_metric(views::LayerMapMetric::kRelMse, views::LayerMapStream::kK);
    QVERIFY(map->delta_box()->isEnabled());
    map->set_delta(true);
    QVERIFY(map->model().delta);
    const auto base = views::snapshot_of_entry(*s, *s->baseline);
    const double want =
        s->run->layers[0].k.heads[0].rel_mse() - base->run->layers[0].k.heads[0].rel_mse();
    QCOMPARE(map->model().rows[0].cells[0].value, want);
    map->set_delta(false);

    // Recall run 1: its result at once (no job), the configuration back to 3 bits (undoable).
    wb.recall(first);
    QVERIFY(!wb.busy());
    QTRY_VERIFY(wb.snapshot()->run_id == first);
    QCOMPARE(wb.snapshot()->run, wb.history().front()->run);  // the held result itself
    QVERIFY(wb.snapshot()->run_is_current);
    QCOMPARE(wb.current_config().k.params.count("bit_width"), size_t(0));  // the default, 3
    QVERIFY(wb.undo_text().startsWith("Recall run #1"));
    // Undo returns to the 2-bit run, also held: no job either.
    QVERIFY(wb.undo());
    QVERIFY(!wb.busy());
    QTRY_COMPARE(wb.snapshot()->run_id, wb.history().back()->id);
    QCOMPARE(wb.current_config().k.params.at("bit_width"), std::string("2"));
    // F5 always runs again (a fresh result replaces the held one).
    QTest::keyClick(w.get(), Qt::Key_F5);
    QVERIFY(wb.busy());
    QVERIFY(wb.wait_idle(kWaitMs));
    QCOMPARE(wb.history().size(), size_t(2));
  }

  // A sweep cell pinned as the baseline from the Pareto results table; two stores overlaid.
  void sweep_cell_pinned_from_the_pareto_table() {
    if (!QFileInfo::exists(tiny1m())) QSKIP("real data absent: tiny1m_wikitext2.kvc.h5");
    QTemporaryDir dir;
    auto w = window_on_tiny1m();
    QVERIFY(w);
    Workbench& wb = w->workbench();
    const nlohmann::json g8 = {{"fixed", {{"block_size", 256}}},
                               {"grids", {{{"k_codec", {"q8_0"}}, {"v_codec", {"q8_0"}}}}}};
    const nlohmann::json g4 = {{"fixed", {{"block_size", 256}}},
                               {"grids", {{{"k_codec", {"q4_0"}}, {"v_codec", {"q4_0"}}}}}};
    wb.start_sweep("eight", g8, dir.filePath("s8"), false);
    QVERIFY(wb.wait_idle(kWaitMs));
    wb.start_sweep("four", g4, dir.filePath("s4"), false);
    QVERIFY(wb.wait_idle(kWaitMs));
    auto* pareto = view_of<views::ParetoView>(*w, "pareto");
    QCOMPARE(pareto->model().sweep_name, std::string("four"));
    QCOMPARE(pareto->model().points.size(), size_t(1));
    QCOMPARE(pareto->model().points[0].short_label, std::string("q4_0"));
    pareto->set_overlay("eight", true);
    QCOMPARE(pareto->overlays().size(), size_t(1));
    QCOMPARE(pareto->table_rows().size(), size_t(2));
    QCOMPARE(pareto->results_table()->rowCount(), 2);
    // Select the overlaid store's cell (row 1) and pin it.
    pareto->select_row(1);
    QCOMPARE(pareto->selected_row(), 1);
    QCOMPARE(pareto->results_table()->item(1, 0)->text(), QString("eight"));
    QVERIFY(pareto->pin_selected());
    QTRY_VERIFY(wb.busy() || wb.baseline());
    QVERIFY(wb.wait_idle(kWaitMs));
    QVERIFY(wb.baseline());
    const auto store = kvwb::sessions::read_result_store(dir.filePath("s8").toStdString());
    const auto& rec = store.records.front();
    QCOMPARE(kvwb::sessions::run_config_hash(*wb.baseline()->config),
             rec.value("config_hash", std::string()));
    QCOMPARE(wb.baseline()->run->ratio_vs_bf16(),
             rec["result"]["ratio_vs_bf16"].get<double>());  // the same exact run
    QVERIFY(wb.baseline()->label.find("sweep eight cell #0") != std::string::npos);
    // Pinning it again is instant: the history holds it.
    wb.clear_baseline();
    QVERIFY(pareto->pin_selected());
    QTRY_VERIFY(wb.baseline() != nullptr);
    QVERIFY(!wb.busy());
  }

  // Per-layer table: what a plan-like configuration gives each layer, edits → Run → undo, and a
  // global edit that no layer would get is refused until applied to every layer.
  void per_layer_table_edits_and_global_overrides() {
    if (!QFileInfo::exists(tiny1m())) QSKIP("real data absent: tiny1m_wikitext2.kvc.h5");
    auto w = window_on_tiny1m();
    QVERIFY(w);
    Workbench& wb = w->workbench();
    kvwb::sessions::RunConfig plan = wb.current_config();
    for (int layer = 0; layer < 4; ++layer) {
      kvwb::sessions::LayerOverride o;
      o.layer = layer;
      o.k = plan.k;
      o.k->params["bit_width"] = layer % 2 ? "4" : "2";
      plan.overrides.push_back(o);
    }
    wb.set_config(plan, "plan");
    QVERIFY(wb.wait_idle(kWaitMs));
    auto* cv = view_of<views::ConfigView>(*w, "config");
    QTableWidget* table = cv->layer_table();
    QCOMPARE(table->rowCount(), 4);
    for (int layer = 0; layer < 4; ++layer) {
      QCOMPARE(table->item(layer, 2)->text(), QString(layer % 2 ? "4" : "2"));
      QVERIFY(table->item(layer, 2)->font().bold());  // an override
      QVERIFY(table->item(layer, 7)->text() != "—");  // the measured layer ratio
    }
    QVERIFY(cv->override_notice_text(true).contains("apply to no layer"));
    QVERIFY(cv->override_notice_text(false).isEmpty());

    // A cell edit is a pending form edit; Run applies it as one undoable step.
    QVERIFY(cv->edit_layer(1, views::LayerColumn::kKBits, "1"));
    QVERIFY(cv->is_edited());
    QCOMPARE(table->item(1, 2)->text(), QString("1"));
    QVERIFY(cv->run());
    QTRY_VERIFY2(wb.undo_text().contains("layer 1 K bits 1"), qPrintable(wb.undo_text()));
    QCOMPARE(wb.current_config().overrides[1].k->params.at("bit_width"), std::string("1"));
    QVERIFY(wb.wait_idle(kWaitMs));
    QCOMPARE(wb.snapshot()->run->config["overrides"][1]["k"]["params"]["bit_width"],
             nlohmann::json("1"));
    // Space on a bf16 cell ticks it (keyboard).
    table->setFocus();
    table->setCurrentCell(2, 5);
    QTest::keyClick(table, Qt::Key_Space);
    QVERIFY(cv->is_edited());
    QCOMPARE(cv->form().boundary, std::string("2"));
    cv->revert();
    QVERIFY(wb.undo());
    QCOMPARE(wb.current_config().overrides[1].k->params.at("bit_width"), std::string("4"));

    // Every layer overrides K: editing the global K bit width would change nothing: refused.
    QTRY_VERIFY(!cv->is_edited() && cv->layer_table_model().rows[1].k_bits == "4");
    auto* bits = cv->findChild<QSpinBox*>("k.param.bit_width");
    QVERIFY(bits);
    bits->setValue(1);
    QVERIFY(cv->is_edited());
    QVERIFY(!cv->run());
    QVERIFY2(cv->error_text().contains("apply to no layer"), qPrintable(cv->error_text()));
    // "Apply to every layer" drops the K overrides: now the global width applies everywhere.
    cv->findChild<QAbstractButton*>("k.apply_every_layer")->click();
    QVERIFY(cv->override_notice_text(true).isEmpty());
    QVERIFY(cv->run());
    QTRY_VERIFY(wb.current_config().overrides.empty());  // applied after the event
    QVERIFY(wb.wait_idle(kWaitMs));
    QCOMPARE(wb.current_config().k.params.at("bit_width"), std::string("1"));
  }

  // F5 runs the configuration as edited in the Configuration view; an invalid form runs nothing.
  void f5_runs_the_edited_configuration() {
    if (!QFileInfo::exists(tiny1m())) QSKIP("real data absent: tiny1m_wikitext2.kvc.h5");
    auto w = window_on_tiny1m();
    QVERIFY(w);
    Workbench& wb = w->workbench();
    auto* cv = view_of<views::ConfigView>(*w, "config");
    cv->findChild<QSpinBox*>("v.param.bit_width")->setValue(2);
    QVERIFY(cv->is_edited());
    QTest::keyClick(w.get(), Qt::Key_F5);
    QTRY_VERIFY(wb.current_config().v.params.count("bit_width") == 1);  // applied after the event
    QCOMPARE(wb.current_config().v.params.at("bit_width"), std::string("2"));
    QVERIFY(!cv->is_edited());
    QVERIFY(wb.wait_idle(kWaitMs));
    QCOMPARE(wb.snapshot()->run->config["v"]["params"]["bit_width"], nlohmann::json("2"));
    cv->findChild<QComboBox*>("config.block_size")->setCurrentText("abc");
    QTest::keyClick(w.get(), Qt::Key_F5);
    QVERIFY(!wb.busy());
    QVERIFY(!cv->error_text().isEmpty());
    QCOMPARE(wb.current_config().block_size, 256u);
    cv->revert();
  }

  // Esc cancels only the focused (newest) job; the cancelled run is labelled partial everywhere.
  void esc_cancels_the_focused_job_and_partial_is_labelled() {
    if (!QFileInfo::exists(KVWB_DEMO_CAPTURE)) QSKIP("demo capture absent (target demo_capture)");
    auto w = make_window();
    Workbench& wb = w->workbench();
    QVERIFY(w->open_capture_file(KVWB_DEMO_CAPTURE));  // analysis, then the run (newest)
    auto job = [&](const QString& name) -> std::optional<kvwb::app::JobInfo> {
      for (const auto& j : wb.jobs())
        if (j.name == name) return j;
      return std::nullopt;
    };
    QTRY_VERIFY_WITH_TIMEOUT(job("Run configuration") && job("Run configuration")->done >= 2,
                             kWaitMs);
    const bool analysis_running = job("Analyse capture").has_value();
    QCOMPARE(wb.focused_job(), job("Run configuration")->id);
    QTest::keyClick(w.get(), Qt::Key_Escape);
    if (analysis_running && job("Analyse capture")) {
      QVERIFY(!job("Analyse capture")->cancelling);  // Esc left it alone
    }
    QTRY_VERIFY_WITH_TIMEOUT(!job("Run configuration"), kWaitMs);
    QTRY_VERIFY(wb.snapshot()->run_partial);
    const auto s = wb.snapshot();
    QVERIFY(s->run && !s->run_is_current && s->run_id == 0);
    QVERIFY(wb.history().empty());  // a partial run is never the configuration's result
    QTRY_VERIFY2(w->ratio_text().startsWith("PARTIAL run"), qPrintable(w->ratio_text()));
    QVERIFY(!w->ratio_text().contains("rerunning"));
    auto* map = view_of<views::LayerMapView>(*w, "layer-map");
    QVERIFY(map->model().run_partial);
    QVERIFY(map->model().totals_line.rfind("PARTIAL", 0) == 0);
    auto* le = view_of<views::LayerErrorView>(*w, "layer-error");
    QVERIFY(QString::fromStdString(le->model().note).contains("PARTIAL"));
    QVERIFY(!wb.pin_current_as_baseline());
    wb.cancel_all();
    QVERIFY(wb.wait_idle(kWaitMs));
  }

  // The result cache and the run settings (issue 13 item 1): every core by default, finished
  // layers shown while the run goes on, a boundary toggle recomputes one layer (counted by the
  // runner: layers from the cache, streams through the executor), identical to an uncached run;
  // Preferences switch the cache off.
  void boundary_toggle_recomputes_one_layer() {
    if (!QFileInfo::exists(tiny1m())) QSKIP("real data absent: tiny1m_wikitext2.kvc.h5");
    auto w = make_window();
    Workbench& wb = w->workbench();
    QCOMPARE(Workbench::thread_setting(), 0);
    QCOMPARE(Workbench::run_threads(), static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    QVERIFY(wb.result_cache_enabled());
    bool saw_progressive = false;
    QObject::connect(&wb, &Workbench::snapshot_changed, &wb, [&](views::SnapshotPtr s) {
      if (s->run && s->run_in_flight && s->run_partial && !s->run->layers.empty() &&
          s->run->layers.size() < 4)
        saw_progressive = true;
    });
    QVERIFY(w->open_capture_file(tiny1m()));
    QVERIFY(wb.wait_idle(kWaitMs));
    QVERIFY(saw_progressive);  // layers appeared before the run ended
    const auto first = wb.snapshot()->run;
    QCOMPARE(first->layers.size(), size_t(4));
    QCOMPARE(first->layers_from_cache, size_t(0));

    // Toggle layer 2 to bf16: the three others come from the cache, no codec runs.
    wb.toggle_boundary(2);
    QVERIFY(wb.wait_idle(kWaitMs));
    auto s = wb.snapshot();
    QVERIFY(s->run_is_current && !s->run_partial);
    QCOMPARE(s->run->layers_from_cache, size_t(3));
    QCOMPARE(s->run->executor_streams, size_t(0));
    QVERIFY(s->run->layers[2].boundary);

    // A layer coded for the first time: exactly its K and V go through the executor.
    wb.set_boundary({1});
    wb.set_config(with_k_bits(wb.current_config(), "2"), "K 2 bits");
    QVERIFY(wb.wait_idle(kWaitMs));
    wb.toggle_boundary(1);
    QVERIFY(wb.wait_idle(kWaitMs));
    s = wb.snapshot();
    QCOMPARE(s->run->layers_from_cache, size_t(3));
    QCOMPARE(s->run->executor_streams, size_t(2));
    kvwb::sessions::RunOptions plain;
    plain.collect_residuals = true;
    auto a = kvwb::sessions::run_result_to_json(*s->run);
    auto b = kvwb::sessions::run_result_to_json(
        kvwb::sessions::run_config(tiny1m().toStdString(), wb.current_config(), plain));
    a.erase("seconds");
    b.erase("seconds");
    QVERIFY(a == b);

    // Preferences: the thread count (0 = all cores) and the cache switch.
    QAction* prefs = action(*w, "&Preferences");
    QVERIFY(prefs);
    prefs->trigger();
    auto* dlg = w->findChild<QDialog*>("preferences");
    QVERIFY(dlg);
    auto* threads = dlg->findChild<QSpinBox*>("threads");
    QVERIFY(threads && threads->value() == 0 && threads->specialValueText().startsWith("All cores"));
    auto* cache = dlg->findChild<QCheckBox*>("result_cache");
    QVERIFY(cache && cache->isChecked());
    cache->setChecked(false);
    dlg->accept();
    QVERIFY(!wb.result_cache_enabled());
    wb.toggle_boundary(3);
    QVERIFY(wb.wait_idle(kWaitMs));
    QCOMPARE(wb.snapshot()->run->layers_from_cache, size_t(0));
  }

  // Keyboard: the layer map (arrows, Space toggles bf16, Tab leaves) and every dialog.
  void keyboard_navigation() {
    if (!QFileInfo::exists(tiny1m())) QSKIP("real data absent: tiny1m_wikitext2.kvc.h5");
    auto w = make_window();
    QVERIFY(QTest::qWaitForWindowExposed(w.get()));
    Workbench& wb = w->workbench();
    QVERIFY(w->open_capture_file(tiny1m()));
    QVERIFY(wb.wait_idle(kWaitMs));
    auto* map = view_of<views::LayerMapView>(*w, "layer-map");
    auto* canvas = map->canvas();
    w->activateWindow();
    canvas->setFocus();
    QTRY_VERIFY(canvas->hasFocus());
    wb.select(0, 0);
    QTRY_VERIFY(map->model().selection.layer == 0);
    QTest::keyClick(canvas, Qt::Key_Down);
    QTRY_COMPARE(wb.snapshot()->selection.layer, 1);
    QTest::keyClick(canvas, Qt::Key_Right);
    QTRY_COMPARE(wb.snapshot()->selection.kv_head, 1);
    QTest::keyClick(canvas, Qt::Key_End);
    QTRY_COMPARE(wb.snapshot()->selection.layer, 3);
    QTest::keyClick(canvas, Qt::Key_Space);
    QTRY_VERIFY2(wb.document().boundary == std::vector<int>{3},
                 qPrintable(QString("boundary size %1, focus %2")
                                .arg(wb.document().boundary.size())
                                .arg(canvas->hasFocus())));
    QVERIFY(wb.undo_text().contains("layer 3"));
    QTest::keyClick(canvas, Qt::Key_Tab);
    QVERIFY(!canvas->hasFocus());
    // Tab walks the main window without getting stuck (charts, tables, the map).
    QVERIFY(tab_through(w.get(), 30).size() >= 8);
    wb.cancel_all();
    QVERIFY(wb.wait_idle(kWaitMs));

    // Every dialog: Tab moves through its fields and never stays put.
    std::vector<std::unique_ptr<QWidget>> dialogs;
    dialogs.push_back(std::make_unique<kvwb::app::SweepDialog>(wb, nullptr));
    dialogs.push_back(std::make_unique<kvwb::app::BundleDialog>(wb, nullptr));
    dialogs.push_back(std::make_unique<kvwb::app::BoundaryPanel>(wb, nullptr));
    for (auto& d : dialogs) {
      d->show();
      QVERIFY(QTest::qWaitForWindowExposed(d.get()));
      d->activateWindow();
      QTRY_VERIFY(QApplication::activeWindow() == d.get());
      if (QWidget* first = d->nextInFocusChain()) first->setFocus(Qt::TabFocusReason);
      const QSet<QWidget*> seen = tab_through(d.get(), 25);
      QVERIFY2(
          seen.size() >= 4,
          qPrintable(QString("%1: %2 widgets").arg(d->metaObject()->className()).arg(seen.size())));
      for (QWidget* x : seen) QVERIFY(d->isAncestorOf(x));
      d->close();
    }
  }

  // Layouts at 1200×800 (screenshot written) and 1920×1080: tabs and titles not clipped, the V
  // stream visible without scrolling sideways, chart legends inside the plot, the Pareto view
  // before any sweep not squashed, the whole layer map without scrolling.
  void layouts_hold_at_1200x800_and_1920x1080() {
    if (!QFileInfo::exists(tiny1m())) QSKIP("real data absent: tiny1m_wikitext2.kvc.h5");
    for (const QSize size : {QSize(1200, 800), QSize(1920, 1080)}) {
      auto w = make_window(size);
      QVERIFY(QTest::qWaitForWindowExposed(w.get()));
      Workbench& wb = w->workbench();
      QVERIFY(w->open_capture_file(tiny1m()));
      QVERIFY(wb.wait_idle(kWaitMs));
      QTest::qWait(200);
      const QString where = QString("%1x%2").arg(size.width()).arg(size.height());
      QCOMPARE(w->size(), size);
      // Dock tabs: every title fully shown, no scroll buttons.
      for (QTabBar* bar : w->findChildren<QTabBar*>()) {
        if (!bar->isVisible() || bar->visibleRegion().isEmpty() || bar->window() != w.get())
          continue;
        for (int i = 0; i < bar->count(); ++i) {
          const QRect r = bar->tabRect(i);
          QVERIFY2(r.left() >= 0 && r.right() <= bar->width(),
                   qPrintable(where + ": tab clipped: " + bar->tabText(i)));
          QVERIFY2(r.width() >= bar->fontMetrics().horizontalAdvance(bar->tabText(i)),
                   qPrintable(where + ": tab title elided: " + bar->tabText(i)));
        }
      }
      // Every dock lies inside the window.
      for (QDockWidget* d : w->findChildren<QDockWidget*>()) {
        if (!d->isVisible() || d->visibleRegion().isEmpty()) continue;
        const QRect r(d->mapTo(w.get(), QPoint(0, 0)), d->size());
        QVERIFY2(w->rect().contains(r), qPrintable(where + ": dock outside: " + d->objectName()));
      }
      // Configuration: the V stream section is within the viewport (no sideways scrolling).
      auto* cv = view_of<views::ConfigView>(*w, "config");
      auto* scroll = cv->findChild<QScrollArea*>();
      QVERIFY(scroll);
      QWidget* v_box = cv->findChild<QWidget*>("v.codec")->parentWidget();
      const QPoint v_at = v_box->mapTo(scroll->viewport(), QPoint(0, 0));
      QVERIFY2(v_at.x() >= 0 && v_at.x() + v_box->width() <= scroll->viewport()->width(),
               qPrintable(where + ": V stream off-screen"));
      QVERIFY(!scroll->horizontalScrollBar()->isVisible());
      // Charts: legend rows inside the plot.
      for (const char* name : {"distribution", "layer-error", "sigma-q", "spectrum"}) {
        auto* chart = view_of<views::ChartView>(*w, name);
        QTest::qWait(200);  // a resize redraw
        QCustomPlot* p = chart->plot();
        for (int i = 0; i < p->plotLayout()->elementCount(); ++i) {
          auto* lg = qobject_cast<QCPLegend*>(p->plotLayout()->elementAt(i));
          if (!lg || !lg->visible()) continue;
          for (int k = 0; k < lg->itemCount(); ++k) {
            if (!lg->item(k)) continue;  // empty cells of a centred row
            const QRect r = lg->item(k)->outerRect();
            QVERIFY2(r.right() <= p->width() && r.left() >= 0,
                     qPrintable(where + ": legend entry clipped in " + name));
          }
        }
      }
      // Pareto before any sweep: the plot keeps the view's height (no empty table below).
      auto* pareto = view_of<views::ParetoView>(*w, "pareto");
      QVERIFY(!pareto->findChild<QWidget*>("pareto.below")->isVisible());
      QVERIFY2(pareto->plot()->height() > pareto->height() * 3 / 4,
               qPrintable(where + ": Pareto plot squashed"));
      // The layer map fits (tiny1m: 4 layers) with readable cells.
      auto* map = view_of<views::LayerMapView>(*w, "layer-map");
      QTRY_VERIFY(map->canvas()->cell_size().height() > 0);
      QVERIFY(!map->canvas()->grid_scrolls());
      QVERIFY(map->canvas()->cell_text_shown());
      if (size.width() == 1200) {
        w->show_view("config");
        QTest::qWait(200);
        const QImage img = w->grab_window();
        QCOMPARE(img.size(), size);
        const QString shot = QDir(QDir::tempPath()).filePath("kvwb_layout_1200x800.png");
        QVERIFY(img.save(shot));
        qInfo("layout screenshot: %s", qPrintable(shot));
      }
      wb.cancel_all();
      QVERIFY(wb.wait_idle(kWaitMs));
    }
  }
};

QTEST_MAIN(TestGuiWorkbench)
#include "test_gui_workbench.moc"
