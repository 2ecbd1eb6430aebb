// The workbench shell: the main window over the controller on the demo capture (synthetic) and
// the real tiny1m capture — every view draws, the layer map's boundary toggle gives exactly the
// ratio `kvwb run --boundary 0` prints, undo/redo, the UI thread never stalls during a long job,
// cancel keeps finished layers, autosave + recovery, CAPTURE_CHANGED, bad files.
#include <QAction>
#include <QComboBox>
#include <QDialog>
#include <QDir>
#include <QDockWidget>
#include <QElapsedTimer>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QImage>
#include <QMimeData>
#include <QProcess>
#include <QRegularExpression>
#include <QSet>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTimer>
#include <QUrl>
#include <QtTest/QtTest>
#include <memory>
#include <nlohmann/json.hpp>

#include "app/gui/main_window.h"
#include "tests/app/gui/gui_test_util.h"
#include "app/gui/view_factory.h"
#include "app/gui/workbench.h"
#include "io/atomic_file.h"
#include "io/synthetic_capture.h"
#include "model/loader.h"
#include "model/tokenizer.h"
#include "sessions/explore/result_store.h"
#include "sessions/explore/sweep.h"
#include "sessions/report/text.h"

using kvwb::app::MainWindow;
using kvwb::app::Workbench;

namespace {

using kvwb::app::gui_test::quiet_options;
using kvwb::app::gui_test::tiny1m;

std::unique_ptr<MainWindow> make_window(bool autosave = false) {
  auto w = std::make_unique<MainWindow>(quiet_options(autosave));
  w->resize(1500, 950);
  w->show();
  return w;
}

/// Distinct colours in an image (a blank grab has one or two).
int distinct_colours(const QImage& img) {
  QSet<QRgb> colours;
  const QImage im = img.convertToFormat(QImage::Format_RGB32);
  for (int y = 0; y < im.height(); y += 2)
    for (int x = 0; x < im.width(); x += 2) {
      colours.insert(im.pixel(x, y));
      if (colours.size() > 200) return static_cast<int>(colours.size());
    }
  return static_cast<int>(colours.size());
}

/// "ratio X.XXXX" in a text (the CLI's total line or the status bar).
QString ratio_in(const QString& text) {
  const auto m = QRegularExpression("ratio (\\d+\\.\\d{4})").match(text);
  return m.hasMatch() ? m.captured(1) : QString();
}

QString cli_ratio(const QStringList& args) {
  QProcess p;
  p.start(KVWB_CLI, QStringList{"run"} + args);
  if (!p.waitForFinished(120000) || p.exitCode() != 0)
    return "cli failed: " + p.readAllStandardError();
  return ratio_in(QString::fromUtf8(p.readAllStandardOutput()));
}

}  // namespace

class TestGuiShell : public QObject {
  Q_OBJECT

 private slots:
  void initTestCase() { kvwb::app::gui_test::init_test_application("test_gui_shell"); }

  // Issue #7 in the GUI: a store made with end-to-end axes (kvwb sweep --model) opens as a sweep,
  // and the Pareto view offers and plots its totals.e2e metrics.
  void e2e_sweep_store_opens_in_pareto_view() {
    const QString model_dir = QString(KVWB_REAL_DATA_DIR) + "/tiny1m";
    const QString text = QString(KVWB_REAL_DATA_DIR) + "/text/TinyStories-valid_excerpt.txt";
    if (!QFileInfo::exists(tiny1m()) || !QFileInfo::exists(model_dir) || !QFileInfo::exists(text))
      QSKIP("real data absent: tiny1m capture, model and TinyStories text (../shared/data/real)");
    QTemporaryDir dir;
    const std::string store = dir.filePath("e2e-store").toStdString();
    {
      const kvwb::model::LoadedModel m = kvwb::model::load_model(model_dir.toStdString());
      const auto toks = m.tokenizer->encode(kvwb::model::read_text_file(text.toStdString()));
      kvwb::sessions::EvalOptions eo;
      eo.context = 64;
      eo.continuation = 16;
      eo.passages = 3;
      const kvwb::sessions::Evaluator ev(m.model, toks, eo);
      kvwb::sessions::SweepOptions so;
      so.evaluator = &ev;
      so.e2e_settings = {{"model", "tiny1m"}, {"passages", 3}};
      const auto grid = nlohmann::json::parse(
          R"({"fixed": {"block_size": 64}, "k_codec": ["bf16", "q8_0", "turbo3"], "v_codec": ["turbo3"]})");
      kvwb::sessions::run_sweep(tiny1m().toStdString(), grid, store, so);
    }
    auto w = make_window();
    QVERIFY(w->open_capture_file(tiny1m()));
    QVERIFY(w->workbench().wait_idle(120000));
    QVERIFY2(w->open_sweep_store(QString::fromStdString(store)), qPrintable(w->last_error()));
    const auto s = w->workbench().snapshot();
    QVERIFY(s->active_sweep >= 0);
    const auto& recs = s->sweeps[static_cast<size_t>(s->active_sweep)].records;
    QCOMPARE(recs.size(), size_t{3});
    for (const auto& r : recs) {
      QVERIFY(r["result"]["totals"].contains("e2e"));
      QVERIFY(r["result"]["totals"]["e2e"]["kl_ci"].is_array());  // the Pareto view's error bars
    }
    QVERIFY(w->show_view("pareto"));
    auto offered = [&] {  // the view gets the snapshot once it is shown
      for (QComboBox* box : w->view("pareto")->findChildren<QComboBox*>())
        for (int i = 0; i < box->count(); ++i)
          if (box->itemData(i).toString() == "e2e.kl") return true;
      return false;
    };
    QTRY_VERIFY_WITH_TIMEOUT(offered(), 5000);
    QVERIFY(w->view("pareto")->has_content());
    // A folder that is not a store is a clear error naming it.
    QVERIFY(!w->open_sweep_store(dir.path()));
    QVERIFY(w->last_error().contains(dir.path()));
  }

  // Issue #15 in the GUI: a store merged from shards (kvwb sweep --shard + kvwb store merge, as a
  // Slurm array and its merge job write it) opens like any other; so does the Slurm folder itself,
  // which opens its merged store (and says so when the merge has not run yet).
  void merged_shard_store_opens_in_pareto_view() {
    if (!QFileInfo::exists(tiny1m())) QSKIP("real data absent: tiny1m capture (../shared/data/real)");
    QTemporaryDir dir;
    const QString grid = dir.filePath("grid.json");
    kvwb::io::write_file_atomic(
        grid.toStdString(),
        std::string(R"({"fixed": {"block_size": 256}, "k_codec": ["q8_0", "q4_0", "turbo3"], "v_codec": ["q8_0"]})"));
    auto kvwb = [](const QStringList& args) {
      QProcess p;
      p.start(KVWB_CLI, args);
      if (!p.waitForFinished(120000) || p.exitStatus() != QProcess::NormalExit || p.exitCode() != 0)
        return QString("kvwb %1 failed: %2").arg(args.join(' '), QString::fromUtf8(p.readAllStandardError()));
      return QString();
    };
    const QString folder = dir.filePath("slurm-run");
    QDir().mkpath(folder + "/shards");
    QVERIFY(QFile(folder + "/submission.json").open(QIODevice::WriteOnly));  // a Slurm folder without its merge
    for (int i = 0; i < 2; ++i) {
      const QString err = kvwb({"sweep", tiny1m(), "--grid", grid, "--out",
                                folder + QString("/shards/shard-%1").arg(i), "--shard", QString("%1/2").arg(i)});
      QVERIFY2(err.isEmpty(), qPrintable(err));
    }
    auto w = make_window();
    QVERIFY(w->open_capture_file(tiny1m()));
    QVERIFY(w->workbench().wait_idle(120000));
    QVERIFY(!w->open_sweep_store(folder));
    QVERIFY2(w->last_error().contains("merged store is not written yet"), qPrintable(w->last_error()));
    const QString merge = kvwb({"store", "merge", folder + "/merged", folder + "/shards/shard-0",
                                folder + "/shards/shard-1", "--grid", grid, "--require-complete"});
    QVERIFY2(merge.isEmpty(), qPrintable(merge));
    QVERIFY2(w->open_sweep_store(folder), qPrintable(w->last_error()));
    const auto s = w->workbench().snapshot();
    QVERIFY(s->active_sweep >= 0);
    QCOMPARE(s->sweeps[static_cast<size_t>(s->active_sweep)].records.size(), size_t{3});
    QVERIFY(w->show_view("pareto"));
    QTRY_VERIFY_WITH_TIMEOUT(w->view("pareto")->has_content(), 5000);
  }

  void default_sweep_grid_is_valid() {
    size_t dropped = 0;
    const auto cells = kvwb::sessions::expand_sweep_grid(kvwb::app::default_sweep_grid(),
                                                         "default grid", &dropped);
    QVERIFY(cells.size() >= 10 && cells.size() <= 14);
    QCOMPARE(dropped, size_t{0});
  }

  void every_view_draws_tiny1m() {
    if (!QFileInfo::exists(tiny1m()))
      QSKIP("real data absent: tiny1m_wikitext2.kvc.h5 (../shared/data/real)");
    auto w = make_window();
    QVERIFY2(w->open_capture_file(tiny1m()), qPrintable(w->last_error()));
    QVERIFY(w->workbench().wait_idle(120000));
    const auto s = w->workbench().snapshot();
    QVERIFY(s->run && s->run_is_current && s->analysis);
    QVERIFY(!s->capture.synthetic);
    QVERIFY(!w->windowTitle().contains("SYNTHETIC"));
    // The default configuration is `kvwb run --block-size 256` on a 256-token capture.
    QCOMPARE(ratio_in(w->ratio_text()), cli_ratio({tiny1m(), "--block-size", "256"}));
    QVERIFY(w->backend_text().startsWith("CPU (") || w->backend_text().startsWith("CUDA: "));
    w->workbench().select(1, 0);
    for (const QString& name : kvwb::app::view_names()) {
      QVERIFY(w->show_view(name));
      QTest::qWait(150);
      QCOMPARE(w->current_view_name(), name);
      kvwb::views::View* v = w->view(name);
      QVERIFY(v && v->isVisible());
      if (name != "pareto") QVERIFY2(v->has_content(), qPrintable(name));  // no sweep yet
      const QImage full = w->grab_window();
      const QImage img = full.copy(QRect(v->mapTo(w.get(), QPoint(0, 0)), v->size()));
      QVERIFY2(distinct_colours(img) > 20, qPrintable(name + " grab is blank"));
    }
  }

  void exports_and_drop_open() {
    if (!QFileInfo::exists(tiny1m()))
      QSKIP("real data absent: tiny1m_wikitext2.kvc.h5 (../shared/data/real)");
    QTemporaryDir dir;
    auto w = make_window();
    QVERIFY(w->open_capture_file(tiny1m()));
    QVERIFY(w->workbench().wait_idle(120000));
    QVERIFY(w->show_view("spectrum"));
    QTest::qWait(100);
    for (const char* ext : {"png", "svg", "pdf"}) {
      const QString p = dir.filePath(QString("spectrum.") + ext);
      QVERIFY2(w->export_view_picture("spectrum", p), qPrintable(w->last_error()));
      QVERIFY(QFileInfo(p).size() > 1000);
    }
    QVERIFY(w->export_view_csv("spectrum", dir.filePath("spectrum.csv")));
    QVERIFY(QFileInfo(dir.filePath("spectrum.csv")).size() > 100);
    QVERIFY(w->export_config_json(dir.filePath("config.json")));
    const auto cfg =
        nlohmann::json::parse(kvwb::io::read_file(dir.filePath("config.json").toStdString()));
    QCOMPARE(cfg.at("block_size").get<int>(), 256);  // workbench_default_config(256 tokens)
    QVERIFY(w->export_results_file(dir.filePath("r.json"), false));
    const auto res =
        nlohmann::json::parse(kvwb::io::read_file(dir.filePath("r.json").toStdString()));
    QCOMPARE(res.at("layers").size(), size_t{4});
    QVERIFY(w->export_results_file(dir.filePath("r.csv"), true));
    QVERIFY(QFileInfo(dir.filePath("r.csv")).size() > 100);
    QVERIFY(!w->export_results_file(dir.filePath("no/such/dir/r.csv"), true));
    QVERIFY(w->last_error().contains("no/such/dir/r.csv"));

    // Drag and drop of a session file opens it.
    const QString session = dir.filePath("d.kvwb.json");
    QVERIFY(w->save_session_file(session));
    QVERIFY(w->open_capture_file(tiny1m()));  // a fresh document without a session path
    QVERIFY(w->workbench().session_path().isEmpty());
    QMimeData mime;
    mime.setUrls({QUrl::fromLocalFile(session)});
    QDragEnterEvent enter(QPoint(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(w.get(), &enter);
    QVERIFY(enter.isAccepted());
    QDropEvent drop(QPointF(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QCoreApplication::sendEvent(w.get(), &drop);
    QTRY_COMPARE(w->workbench().session_path(), QFileInfo(session).absoluteFilePath());
    QVERIFY(w->workbench().wait_idle(120000));
  }

  void boundary_toggle_matches_cli_and_undoes() {
    if (!QFileInfo::exists(tiny1m()))
      QSKIP("real data absent: tiny1m_wikitext2.kvc.h5 (../shared/data/real)");
    auto w = make_window();
    QVERIFY(w->open_capture_file(tiny1m()));
    Workbench& wb = w->workbench();
    // The default configuration on tiny1m (256 tokens) is RunConfig{} with block 256
    // (workbench_default_config), i.e. `kvwb run --block-size 256`; then 3 bits for K.
    QVERIFY(wb.wait_idle(120000));
    QCOMPARE(wb.current_config().block_size, 256u);
    QCOMPARE(ratio_in(w->ratio_text()), cli_ratio({tiny1m(), "--block-size", "256"}));
    kvwb::sessions::RunConfig cfg = wb.current_config();
    cfg.k.params["bit_width"] = "4";
    wb.set_config(cfg, "K 4 bits");
    QVERIFY(wb.wait_idle(120000));
    const QString before = ratio_in(w->ratio_text());
    QCOMPARE(before, cli_ratio({tiny1m(), "--block-size", "256", "--bits-k", "4"}));

    // The layer map's command path: its signal, applied by the shell after the event.
    emit w->view("layer-map")->boundary_toggle_requested(0);
    QTRY_VERIFY(wb.busy() || wb.document().boundary == std::vector<int>{0});
    QCOMPARE(wb.document().boundary, std::vector<int>{0});
    QVERIFY(wb.undo_text().contains("layer 0"));
    QVERIFY(wb.wait_idle(120000));
    QVERIFY(wb.snapshot()->run_is_current);
    const QString with_boundary = ratio_in(w->ratio_text());
    QCOMPARE(with_boundary,
             cli_ratio({tiny1m(), "--block-size", "256", "--bits-k", "4", "--boundary", "0"}));
    QVERIFY(with_boundary != before);

    QVERIFY(wb.undo());
    QVERIFY(wb.document().boundary.empty());
    QCOMPARE(wb.redo_text(), QString("Keep layer 0 bf16 (boundary)"));
    QVERIFY(wb.wait_idle(120000));
    QCOMPARE(ratio_in(w->ratio_text()), before);
    QVERIFY(wb.redo());
    QCOMPARE(wb.document().boundary, std::vector<int>{0});
    QVERIFY(wb.wait_idle(120000));
    QCOMPARE(ratio_in(w->ratio_text()), with_boundary);
    QVERIFY(wb.undo() && wb.undo());  // boundary, then the K bit width
    QCOMPARE(wb.current_config().k.params.count("bit_width"), size_t{0});
    QVERIFY(!wb.can_undo());
    wb.wait_idle(120000);
  }

  void newer_edit_supersedes_and_errors_are_typed() {
    if (!QFileInfo::exists(tiny1m()))
      QSKIP("real data absent: tiny1m_wikitext2.kvc.h5 (../shared/data/real)");
    auto w = make_window();
    Workbench& wb = w->workbench();
    QVERIFY(w->open_capture_file(tiny1m()));
    QVERIFY(wb.wait_idle(120000));
    QStringList failures;
    connect(&wb, &Workbench::job_failed, this,
            [&](const QString& name, const QString& code, const QString&) {
              failures << name + ":" + code;
            });
    // Two quick edits: the first run is cancelled, only the last configuration's result shows.
    wb.toggle_boundary(0);
    QVERIFY(!wb.snapshot()->run_is_current);  // rerunning
    wb.toggle_boundary(3);
    QVERIFY(wb.wait_idle(120000));
    auto s = wb.snapshot();
    QVERIFY(s->run_is_current && !wb.run_is_partial());
    for (const auto& l : s->run->layers) QCOMPARE(l.boundary, l.layer == 0 || l.layer == 3);
    QCOMPARE(s->config->boundary, (std::vector<int>{0, 3}));
    QVERIFY(failures.isEmpty());

    // An invalid configuration is refused at the edit (the document is unchanged)...
    kvwb::sessions::RunConfig bad = wb.current_config();
    bad.k.codec = "no_such_codec";
    const size_t depth_before = wb.can_undo() ? 1 : 0;
    wb.set_config(bad, "Bad codec");
    QCOMPARE(wb.current_config().k.codec, std::string("kakeya_pca"));
    QVERIFY(w->last_error().contains("no_such_codec"));
    QVERIFY(!wb.busy());
    QCOMPARE(wb.can_undo() ? size_t{1} : size_t{0}, depth_before);
    // ...one the runner refuses (a missing Σ_q file) is a typed job failure; nothing aborts, the
    // last good result stays on screen (not current), and undo runs again.
    kvwb::sessions::RunConfig missing = wb.current_config();
    missing.q_precond = "/nonexistent/sigma_q.safetensors";
    wb.set_config(missing, "Missing Σ_q file");
    QVERIFY(wb.wait_idle(120000));
    QCOMPARE(failures.size(), 1);
    QVERIFY2(failures.front().startsWith("Run configuration:"), qPrintable(failures.front()));
    QVERIFY2(!failures.front().endsWith(":INTERNAL"), qPrintable(failures.front()));
    QVERIFY(w->last_error().contains("Run configuration failed"));
    QVERIFY(wb.snapshot()->run && !wb.snapshot()->run_is_current);
    QVERIFY(wb.undo());
    QVERIFY(wb.wait_idle(120000));
    QVERIFY(wb.snapshot()->run_is_current);
  }

  void ui_stays_responsive_and_cancel_keeps_layers() {
    if (!QFileInfo::exists(KVWB_DEMO_CAPTURE))
      QSKIP("demo capture absent (build target demo_capture)");
    auto w = make_window();
    Workbench& wb = w->workbench();
    QVERIFY(QTest::qWaitForWindowExposed(w.get()));
    QTest::qWait(300);  // the window's first paint (OpenGL context creation) is not the job's
    QElapsedTimer clock;
    qint64 last = 0, worst = 0;
    QTimer tick;
    tick.setInterval(10);
    connect(&tick, &QTimer::timeout, this, [&] {
      const qint64 now = clock.elapsed();
      worst = std::max(worst, now - last);
      last = now;
    });
    QVERIFY(w->open_capture_file(KVWB_DEMO_CAPTURE));
    QTest::qWait(300);  // opening (file metadata, the first snapshot drawn) is not the job either
    QVERIFY(wb.busy());
    clock.start();
    tick.start();
    QVERIFY(w->windowTitle().contains("SYNTHETIC"));
    QVERIFY(wb.snapshot()->capture.synthetic);
    // Let the run (8 layers) finish two layers while the analysis runs as well, then cancel.
    auto run_done = [&]() -> size_t {
      for (const auto& j : wb.jobs())
        if (j.name == "Run configuration") return j.done;
      return 0;
    };
    QTRY_VERIFY_WITH_TIMEOUT(run_done() >= 2, 120000);
    tick.stop();
    const qint64 stall = worst;
    wb.cancel_all();
    QVERIFY(wb.wait_idle(120000));
    qInfo("largest event-loop gap during the demo run + analysis: %lld ms",
          static_cast<long long>(stall));
    // Behaviour, not speed: the UI thread never computes a layer or an analysis itself (that would
    // stall it for seconds on the demo). The 100 ms responsiveness target is a timing and lives in
    // the GUI benchmark, not here: a loaded CI machine stretches gaps past 100 ms by itself.
    QVERIFY2(stall < 1000, qPrintable(QString("UI thread stalled %1 ms").arg(stall)));

    auto s = wb.snapshot();
    QVERIFY(s->run);
    QVERIFY(wb.run_is_partial());
    QVERIFY(!s->run_is_current);
    QVERIFY(s->run->layers.size() >= 2 && s->run->layers.size() < 8);
    QVERIFY(w->ratio_text().contains("partial", Qt::CaseInsensitive));

    // A later run works: one layer of the demo.
    kvwb::sessions::RunConfig cfg = wb.current_config();
    cfg.layers = {0};
    wb.set_config(cfg, "Layer 0 only");
    QVERIFY(wb.wait_idle(120000));
    s = wb.snapshot();
    QVERIFY(s->run && s->run_is_current && !wb.run_is_partial());
    QCOMPARE(s->run->layers.size(), size_t{1});
    QVERIFY(!w->ratio_text().contains("partial", Qt::CaseInsensitive));
  }

  void autosave_and_recovery_round_trip() {
    if (!QFileInfo::exists(tiny1m()))
      QSKIP("real data absent: tiny1m_wikitext2.kvc.h5 (../shared/data/real)");
    QTemporaryDir dir;
    const QString autosave = dir.filePath("autosave.kvwb.json");
    {
      auto w = make_window(true);
      w->workbench().set_autosave_path(autosave);
      QVERIFY(w->open_capture_file(tiny1m()));
      QVERIFY(!QFileInfo::exists(autosave));
      w->workbench().toggle_boundary(2);
      QTRY_VERIFY_WITH_TIMEOUT(QFileInfo::exists(autosave), 5000);  // shortly after the edit
      w->workbench().cancel_all();
      w->workbench().wait_idle(60000);
      // The window is destroyed without a normal close (a crash): the autosave stays.
    }
    QVERIFY(QFileInfo::exists(autosave));
    auto w = make_window(true);
    w->workbench().set_autosave_path(autosave);
    QVERIFY(w->offer_recovery(true));
    QCOMPARE(w->workbench().document().boundary, std::vector<int>{2});
    QCOMPARE(w->workbench().capture_path(), QFileInfo(tiny1m()).absoluteFilePath());
    QVERIFY(w->workbench().modified());
    QVERIFY(w->workbench().session_path().isEmpty());
    QVERIFY(w->workbench().wait_idle(120000));
    for (const auto& l : w->workbench().snapshot()->run->layers) QCOMPARE(l.boundary, l.layer == 2);
    w->close();  // normal quit removes the autosave
    QVERIFY(!QFileInfo::exists(autosave));
  }

  void capture_changed_and_bad_files_are_reported() {
    if (!QFileInfo::exists(tiny1m()))
      QSKIP("real data absent: tiny1m_wikitext2.kvc.h5 (../shared/data/real)");
    QTemporaryDir dir;
    const QString session = dir.filePath("s.kvwb.json");
    {
      auto w = make_window();
      QVERIFY(w->open_capture_file(tiny1m()));
      QVERIFY(w->save_session_file(session));
      QVERIFY(!w->workbench().modified());
      QVERIFY(w->windowTitle().contains("s.kvwb.json"));
      w->workbench().cancel_all();
      w->workbench().wait_idle(60000);
    }
    // Pretend the capture changed: another pinned SHA-256.
    nlohmann::json j = nlohmann::json::parse(kvwb::io::read_file(session.toStdString()));
    j["capture"]["sha256"] = std::string(64, 'a');
    kvwb::io::write_file_atomic(session.toStdString(), j.dump(2));

    auto w = make_window();
    QVERIFY(!w->open_session_file(session));
    QVERIFY2(w->last_error().contains("CAPTURE_CHANGED"), qPrintable(w->last_error()));
    QVERIFY(w->last_error().contains(session));
    QVERIFY(w->last_error().contains("accept the changed capture"));
    QVERIFY(w->workbench().capture_path().isEmpty());
    QVERIFY(w->open_session_file(session, true));
    QCOMPARE(w->workbench().capture_path(), QFileInfo(tiny1m()).absoluteFilePath());
    QVERIFY(w->workbench().wait_idle(120000));

    const QString missing = dir.filePath("nope.kvc.h5");
    QVERIFY(!w->open_capture_file(missing));
    QVERIFY(w->last_error().contains(missing));
    const QString garbage = dir.filePath("garbage.kvc.h5");
    QFile f(garbage);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write("not an HDF5 file");
    f.close();
    QVERIFY(!w->open_path(garbage));
    QVERIFY(w->last_error().contains(garbage));
    // The open capture is untouched by the failed opens.
    QCOMPARE(w->workbench().capture_path(), QFileInfo(tiny1m()).absoluteFilePath());
  }

  void screenshot_mode_of_the_binary() {
    if (!QFileInfo::exists(tiny1m()))
      QSKIP("real data absent: tiny1m_wikitext2.kvc.h5 (../shared/data/real)");
    QTemporaryDir dir;
    auto run = [](const QStringList& args, QString* err) {
      QProcess p;
      p.start(KVWB_GUI_BIN, args);
      if (!p.waitForFinished(180000)) return -1;
      *err = QString::fromUtf8(p.readAllStandardError());
      return p.exitCode();
    };
    QString err;
    QCOMPARE(run({tiny1m(), "--screenshot", dir.filePath("x.png"), "--view", "nope"}, &err), 2);
    QVERIFY(err.contains("layer-map") && err.contains("pareto"));
    QCOMPARE(run({dir.filePath("missing.kvc.h5"), "--screenshot", dir.filePath("y.png")}, &err), 1);
    QVERIFY(err.contains("missing.kvc.h5"));
    const QString shot = dir.filePath("spectrum.png");
    QCOMPARE(
        run({tiny1m(), "--screenshot", shot, "--view", "spectrum", "--size", "1200x800"}, &err), 0);
    const QImage img(shot);
    QCOMPARE(img.size(), QSize(1200, 800));
    QVERIFY(distinct_colours(img) > 50);
  }

  void menus_open_the_dialogs_and_name_the_undo_step() {
    if (!QFileInfo::exists(tiny1m()))
      QSKIP("real data absent: tiny1m_wikitext2.kvc.h5 (../shared/data/real)");
    auto w = make_window();
    QVERIFY(w->open_capture_file(tiny1m()));
    auto action = [&](const QString& prefix) -> QAction* {
      for (QAction* a : w->findChildren<QAction*>())
        if (a->text().startsWith(prefix)) return a;
      return nullptr;
    };
    QAction* undo = action("&Undo");
    QVERIFY(undo && !undo->isEnabled());
    w->workbench().toggle_boundary(1);
    QTRY_VERIFY(undo->isEnabled());
    QCOMPARE(undo->text(), QString("&Undo Keep layer 1 bf16 (boundary)"));
    QCOMPARE(undo->shortcut(), QKeySequence(Qt::CTRL | Qt::Key_Z));
    QVERIFY(w->windowTitle().endsWith("*"));

    for (const QString& name : {QString("&Sweep"), QString("&Bundle")}) {
      QAction* a = action(name);
      QVERIFY2(a, qPrintable(name));
      a->trigger();
      QTest::qWait(100);
      QDialog* d = w->findChild<QDialog*>();
      QVERIFY2(d && d->isVisible(), qPrintable(name));
      d->close();
      QTest::qWait(50);
    }
    QAction* plan = action("&Boundary recommendation");
    QVERIFY(plan);
    plan->trigger();
    QTest::qWait(100);
    auto* dock = w->findChild<QDockWidget*>("dock_boundary_panel");
    QVERIFY(dock && dock->isVisible());
    w->workbench().cancel_all();
    QVERIFY(w->workbench().wait_idle(60000));
  }

  void sweep_records_reach_the_snapshot() {
    if (!QFileInfo::exists(tiny1m()))
      QSKIP("real data absent: tiny1m_wikitext2.kvc.h5 (../shared/data/real)");
    QTemporaryDir dir;
    auto w = make_window();
    Workbench& wb = w->workbench();
    QVERIFY(w->open_capture_file(tiny1m()));
    const nlohmann::json grid = {{"grids",
                                  {{{"k_codec", {"q8_0"}}, {"v_codec", {"q8_0"}}},
                                   {{"k_codec", {"q4_0"}}, {"v_codec", {"q4_0"}}}}}};
    wb.start_sweep("two", grid, dir.filePath("store"), false);
    QVERIFY(wb.wait_idle(120000));
    const auto s = wb.snapshot();
    QCOMPARE(s->sweeps.size(), size_t{1});
    QCOMPARE(s->active_sweep, 0);
    QCOMPARE(s->sweeps[0].records.size(), size_t{2});
    QCOMPARE(wb.document().sweeps.front().name, std::string("two"));
    QVERIFY(w->show_view("pareto"));
    QTRY_VERIFY_WITH_TIMEOUT(w->view("pareto")->has_content(), 5000);  // delivered after the event
  }

  // File > Export > Report (issue #13, item 4): the menu action writes one self-contained HTML
  // file and a PDF beside it; the HTML holds every chart and the configuration, and every keyed
  // number equals `kvwb run --json` with the exported configuration. A run in flight is refused.
  void report_export_matches_the_cli() {
    QTemporaryDir dir;
    const QString cap = dir.filePath("synthetic.kvc.h5");
    kvwb::io::DemoCaptureOptions opt;
    opt.layers = 3, opt.kv_heads = 2, opt.q_heads = 4, opt.head_dim = 32, opt.seqs = 2, opt.tokens = 96;
    kvwb::io::write_demo_capture(cap.toStdString(), opt);
    auto w = make_window();
    Workbench& wb = w->workbench();
    QVERIFY(w->open_capture_file(cap));
    QVERIFY(!w->export_report(dir.filePath("early.html"), QString()));  // the run has not finished
    QVERIFY2(w->last_error().contains("run"), qPrintable(w->last_error()));
    QVERIFY(wb.wait_idle(120000));
    wb.toggle_boundary(2);  // an edit: its rerun is in flight until the event loop delivers it
    QVERIFY(!w->export_report(dir.filePath("early.html"), QString()));
    QVERIFY2(w->last_error().contains("not finished"), qPrintable(w->last_error()));
    QVERIFY(wb.wait_idle(120000));
    QVERIFY(!QFileInfo::exists(dir.filePath("early.html")));

    // Through the menu; the save dialog is answered by a timer.
    const QString html = dir.filePath("report.html"), pdf = dir.filePath("report.pdf");
    QAction* act = nullptr;
    for (QAction* a : w->findChildren<QAction*>())
      if (a->text().startsWith("&Report")) act = a;
    QVERIFY(act);
    bool answered = false;
    QTimer poll;
    poll.setInterval(50);
    connect(&poll, &QTimer::timeout, [&] {
      if (auto* d = qobject_cast<QFileDialog*>(QApplication::activeModalWidget())) {
        d->selectFile(html);
        QMetaObject::invokeMethod(d, "accept", Qt::QueuedConnection);
        answered = true;
        poll.stop();
      }
    });
    poll.start();
    act->trigger();
    poll.stop();
    QVERIFY(answered);
    QVERIFY(wb.wait_idle(60000));
    QVERIFY2(QFileInfo::exists(html), qPrintable(w->last_error()));
    QVERIFY(QFileInfo::exists(pdf));

    // The same configuration through the CLI.
    const QString cfg = dir.filePath("cfg.json"), rj = dir.filePath("run.json");
    QVERIFY(w->export_config_json(cfg));
    QProcess p;
    p.start(KVWB_CLI, QStringList{"run", cap, "--config", cfg, "--json", rj, "--quiet"});
    QVERIFY(p.waitForFinished(120000));
    QCOMPARE(p.exitCode(), 0);
    const auto run = nlohmann::json::parse(kvwb::io::read_file(rj.toStdString()));
    QCOMPARE(run["config"]["boundary"], nlohmann::json::array({2}));
    const auto bytes = kvwb::io::read_file(html.toStdString());
    const std::string text(bytes.begin(), bytes.end());
    QVERIFY(text.rfind("<!DOCTYPE html>", 0) == 0);
    QVERIFY(text.find("<script") == std::string::npos);
    QVERIFY(text.find("id=\"synthetic-banner\"") != std::string::npos);
    QVERIFY(text.find(run["capture"]["sha256"].get<std::string>()) != std::string::npos);
    QVERIFY(text.find("<pre id=\"config-json\"><code>" + kvwb::sessions::report::xml_escape(run["config"].dump(2)) +
                      "</code></pre>") != std::string::npos);
    for (const char* id : {"chart-layer-bytes", "chart-layer-error", "chart-layer-attention", "chart-d-eff",
                           "chart-spectrum-cumulative", "chart-sigma-q-cond", "chart-residuals-k", "chart-outliers"})
      QVERIFY2(text.find(std::string("<figure class=\"chart\" id=\"") + id + "\">\n<svg") != std::string::npos, id);
    const QRegularExpression cell("data-key=\"([^\"]+)\" data-value=\"([^\"]+)\"");
    int checked = 0;
    for (auto it = cell.globalMatch(QString::fromStdString(text)); it.hasNext();) {
      const auto m = it.next();
      nlohmann::json::json_pointer ptr(
          "/" + m.captured(1).replace(QRegularExpression("\\[(\\d+)\\]"), ".\\1").replace('.', '/').toStdString());
      QVERIFY2(run.contains(ptr) && run[ptr].is_number(), qPrintable(m.captured(1)));
      QCOMPARE(m.captured(2).toDouble(), run[ptr].get<double>());
      ++checked;
    }
    QVERIFY(checked > 80);
    const auto pbytes = kvwb::io::read_file(pdf.toStdString());
    const std::string ptext(pbytes.begin(), pbytes.end());
    QVERIFY(ptext.rfind("%PDF-1.4", 0) == 0);
    QVERIFY(ptext.find("/Type /Page /Parent") != std::string::npos);
  }
};

QTEST_MAIN(TestGuiShell)
#include "test_gui_shell.moc"
