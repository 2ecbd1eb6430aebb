// Layer map widget (issue #5): the ImGui canvas under Xvfb (not blank, click a cell ->
// select_requested, click the bf16 box -> boundary_toggle_requested, the metric combo rebuilds the
// grid), two canvases with their own ImGui contexts, PNG and CSV export, a tiny1m screenshot. What
// the model computes (cells against the core, colour range, flags, totals, hover text) is tested
// without Qt in tests/views/models/ (test_view_models).
#include <QFile>
#include <QImage>
#include <QSet>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>
#include <memory>

#include "base/errors.h"
#include "io/capture.h"
#include "sessions/analysis/analysis.h"
#include "io/synthetic_capture.h"
#include "sessions/config/run_config.h"
#include "sessions/run/runner.h"
#include "views/models/layer_map_model.h"
#include "views/layer_map_view.h"

using namespace kvwb;
using kvwb::views::LayerMapMetric;
using kvwb::views::LayerMapStream;

namespace {

/// A snapshot as the shell would publish it: capture summary, analysis of `layers`, a run of
/// `cfg` with residuals, and the outlier rates of that run.
views::SnapshotPtr make_snapshot(const std::string& path, const std::vector<int>& layers,
                                 sessions::RunConfig cfg) {
  auto s = std::make_shared<views::Snapshot>();
  s->generation = 1;
  {
    io::CaptureReader reader(path);
    const io::CaptureInfo& info = reader.info();
    s->capture.path = path;
    s->capture.model_name = info.model_name;
    s->capture.synthetic = info.model_name == io::kDemoModelName;
    s->capture.num_layers = info.num_layers;
    s->capture.num_query_heads = info.num_query_heads;
    s->capture.num_kv_heads = info.num_kv_heads;
    s->capture.head_dim = info.head_dim;
    s->capture.sequences = info.sequences;
    s->capture.tokens = info.tokens;
    for (const auto& l : info.layers) {
      s->capture.layers.push_back(l.layer);
      s->capture.attention.push_back(l.attention);
      s->capture.has_q.push_back(l.has_q_pre);
    }
  }
  sessions::AnalysisOptions ao;
  ao.layers = layers;
  s->analysis =
      std::make_shared<const sessions::AnalysisResult>(sessions::analyze_capture(path, ao));
  cfg.layers = layers;
  s->config = std::make_shared<const sessions::RunConfig>(cfg);
  sessions::RunOptions ro;
  ro.collect_residuals = true;
  ro.compute_sha256 = false;
  auto run = std::make_shared<const sessions::RunResult>(sessions::run_config(path, cfg, ro));
  s->outliers =
      std::make_shared<const sessions::OutlierRates>(sessions::outlier_rates_from_run(*run, true));
  s->run = run;
  s->run_is_current = true;
  s->selection = {layers.back(), 1};
  return s;
}

int distinct_colours(const QImage& img) {
  QSet<QRgb> colours;
  for (int y = 0; y < img.height(); y += 2) {
    for (int x = 0; x < img.width(); x += 2) colours.insert(img.pixel(x, y) & 0xFFFFFFu);
  }
  return static_cast<int>(colours.size());
}

}  // namespace

class TestLayerMap : public QObject {
  Q_OBJECT

 private:
  views::SnapshotPtr demo_;
  const std::vector<int> demo_layers_ = {0, 1};

  /// Shows `view` and waits until its canvas drew the grid.
  static bool show_and_wait(views::LayerMapView& view) {
    view.resize(1100, 640);
    view.show();
    if (!QTest::qWaitForWindowExposed(&view)) return false;
    const int first = view.model().rows.empty() ? -1 : view.model().rows.front().layer;
    for (int i = 0; i < 100; ++i) {
      QCoreApplication::processEvents();
      if (view.canvas()->frame_count() > 0 &&
          (first < 0 || view.canvas()->cell_rect(first, 0).isValid())) {
        return true;
      }
      QTest::qWait(20);
    }
    return false;
  }

 private slots:
  void initTestCase() {
    if (!QFile::exists(QStringLiteral(KVWB_DEMO_CAPTURE))) {
      QSKIP("demo capture " KVWB_DEMO_CAPTURE " not built (build the demo target first)");
    }
    sessions::RunConfig cfg;
    cfg.boundary = {0};
    cfg.q_precond = "capture";
    demo_ = make_snapshot(KVWB_DEMO_CAPTURE, demo_layers_, cfg);
  }

  void emptySnapshotDrawsTheHint() {
    views::LayerMapView view;
    view.set_snapshot(std::make_shared<const views::Snapshot>());
    QVERIFY(!view.has_content());
    QVERIFY(show_and_wait(view));
    QVERIFY(view.canvas()->frame_count() > 0);
  }

  void canvasDrawsAndClicks() {
    views::LayerMapView view;
    view.set_snapshot(demo_);
    view.set_metric(LayerMapMetric::kRelMse, LayerMapStream::kK);
    QVERIFY(view.has_content());
    QVERIFY(show_and_wait(view));
    views::LayerMapCanvas* canvas = view.canvas();
    const QImage img = canvas->grabFramebuffer();
    QVERIFY(!img.isNull());
    const int colours = distinct_colours(img);
    QVERIFY2(colours > 40, qPrintable(QString("only %1 distinct colours").arg(colours)));

    QSignalSpy select(&view, &views::View::select_requested);
    QSignalSpy toggle(&view, &views::View::boundary_toggle_requested);
    const QRect cell = canvas->cell_rect(1, 1);
    QVERIFY(cell.isValid());
    QTest::mouseClick(canvas, Qt::LeftButton, {}, cell.center());
    QTRY_COMPARE(select.count(), 1);
    QCOMPARE(select.at(0).at(0).toInt(), 1);
    QCOMPARE(select.at(0).at(1).toInt(), 1);
    QCOMPARE(toggle.count(), 0);

    const QRect cell0 = canvas->cell_rect(0, 0);
    QTest::mouseClick(canvas, Qt::LeftButton, {}, cell0.center());
    QTRY_COMPARE(select.count(), 2);
    QCOMPARE(select.at(1).at(0).toInt(), 0);
    QCOMPARE(select.at(1).at(1).toInt(), 0);

    const QRect box = canvas->boundary_toggle_rect(3);
    QVERIFY(box.isValid());
    QTest::mouseClick(canvas, Qt::LeftButton, {}, box.center());
    QTRY_COMPARE(toggle.count(), 1);
    QCOMPARE(toggle.at(0).at(0).toInt(), 3);
    QCOMPARE(select.count(), 2);

    // Switching the metric through the combo box rebuilds the grid.
    view.metric_box()->setCurrentIndex(
        view.metric_box()->findData(static_cast<int>(LayerMapMetric::kDEff)));
    QCOMPARE(view.model().metric, LayerMapMetric::kDEff);
    QVERIFY(view.stream_box()->count() == 3);
  }

  void twoCanvasesOwnContexts() {
    views::LayerMapView a, b;
    a.set_snapshot(demo_);
    b.set_snapshot(demo_);
    b.set_metric(LayerMapMetric::kBytes);
    QVERIFY(a.canvas()->imgui_context() != b.canvas()->imgui_context());
    QVERIFY(show_and_wait(a));
    QVERIFY(show_and_wait(b));
    QVERIFY(distinct_colours(a.canvas()->grabFramebuffer()) > 40);
    QVERIFY(distinct_colours(b.canvas()->grabFramebuffer()) > 20);
    QSignalSpy sel_b(&b, &views::View::select_requested);
    QSignalSpy sel_a(&a, &views::View::select_requested);
    QTest::mouseClick(b.canvas(), Qt::LeftButton, {}, b.canvas()->cell_rect(1, 0).center());
    QTRY_COMPARE(sel_b.count(), 1);
    QCOMPARE(sel_a.count(), 0);
  }

  void exportWithoutShowing() {
    // The shell's screenshot mode may export a view that was never shown: a rendered picture
    // or a typed error, never a crash.
    QTemporaryDir dir;
    views::LayerMapView view;
    view.set_snapshot(demo_);
    view.resize(900, 500);
    const QString png = dir.filePath("hidden.png");
    try {
      view.export_picture(png);
      const QImage img(png);
      QVERIFY(!img.isNull());
      QCOMPARE(img.width(), 900 - 8);  // the view's width less its margins
      QVERIFY(img.height() > 400);
      QVERIFY(distinct_colours(img) > 40);
    } catch (const kvwb::IoError& e) {
      QVERIFY2(QString(e.what()).contains("could not be rendered"), e.what());
    }
  }

  void exportsPngAndCsv() {
    QTemporaryDir dir;
    views::LayerMapView view;
    view.set_snapshot(demo_);
    view.set_metric(LayerMapMetric::kAttnKl);
    QVERIFY(show_and_wait(view));
    QCOMPARE(view.picture_formats(), QStringList{"png"});
    const QString png = dir.filePath("map.png");
    view.export_picture(png);
    const QImage img(png);
    QVERIFY(!img.isNull());
    QVERIFY(distinct_colours(img) > 40);
    QVERIFY_THROWS_EXCEPTION(kvwb::InvalidArgument, view.export_picture(dir.filePath("map.svg")));
    const QString csv = dir.filePath("map.csv");
    view.export_csv(csv);
    QFile f(csv);
    QVERIFY(f.open(QIODevice::ReadOnly));
    QCOMPARE(f.readAll().toStdString(), views::layer_map_csv(view.model()));
    QVERIFY(view.model().metric == LayerMapMetric::kAttnKl);
  }

  void tiny1mScreenshot() {
    const std::string path = std::string(KVWB_REAL_DATA_DIR) + "/tiny1m_wikitext2.kvc.h5";
    if (!QFile::exists(QString::fromStdString(path))) {
      QSKIP("real data absent: " KVWB_REAL_DATA_DIR "/tiny1m_wikitext2.kvc.h5");
    }
    sessions::RunConfig cfg;
    cfg.boundary = {0};
    cfg.block_size = 64;
    cfg.q_precond = "capture";
    const std::vector<int> layers = {0, 1, 2, 3};
    auto snap = make_snapshot(path, layers, cfg);
    views::LayerMapView view;
    view.set_snapshot(snap);
    view.set_metric(LayerMapMetric::kRelMse, LayerMapStream::kK);
    QVERIFY(show_and_wait(view));
    // Hover a cell so the saved picture shows the tooltip with the exact value.
    QTest::mouseMove(view.canvas(), view.canvas()->cell_rect(0, 0).center());
    QTest::qWait(100);
    view.export_picture(QStringLiteral("/tmp/layer_map_tiny1m.png"));
    const QImage img(QStringLiteral("/tmp/layer_map_tiny1m.png"));
    QVERIFY(!img.isNull());
    QVERIFY(distinct_colours(img) > 40);
  }
};

QTEST_MAIN(TestLayerMap)
#include "test_layer_map.moc"
