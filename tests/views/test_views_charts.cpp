// The analysis-chart widgets (spectrum, Σ_q, distribution, per-layer error): each view builds its
// model from the snapshot and its own controls (selection, tensor / stream / threshold / metric
// combos, select_requested), writes exactly its model's CSV, exports PNG / SVG / PDF that parse,
// shows no content for empty snapshots, and PNGs of every view on the real tiny1m capture are
// written to /tmp/chart_<name>.png for a person to look at. What the models compute is tested
// without Qt in tests/views/models/ (test_view_models).
#include <qcustomplot.h>

#include <QComboBox>
#include <QFile>
#include <QImage>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QToolButton>
#include <QWheelEvent>
#include <QtTest>
#include <array>
#include <filesystem>
#include <set>

#include "base/errors.h"
#include "io/capture.h"
#include "sessions/analysis/analysis.h"
#include "sessions/run/runner.h"
#include "tests/views/models/snapshot_edits.h"
#include "views/distribution_view.h"
#include "views/layer_error_view.h"
#include "views/sigma_q_view.h"
#include "views/spectrum_view.h"

using namespace kvwb;
using namespace kvwb::views;

namespace {

/// One of each analysis chart (spectrum, Σ_q, distribution, per-layer error).
struct AnalysisCharts {
  SpectrumView sp;
  SigmaQView sq;
  DistributionView di;
  LayerErrorView le;
  std::array<ChartView*, 4> all() { return {&sp, &sq, &di, &le}; }
};

/// Shows `view` at `size` drawing `snapshot`; true once the window is exposed.
bool show_drawing(ChartView* view, const QSize& size, SnapshotPtr snapshot) {
  view->resize(size);
  view->set_snapshot(std::move(snapshot));
  view->show();
  return QTest::qWaitForWindowExposed(view);
}

/// The CSV file written by `view` holds exactly `expected` (the model's CSV: the plotted data).
void check_csv(const ChartView& view, const std::string& expected) {
  QVERIFY(!expected.empty());
  QTemporaryDir dir;
  const QString path = dir.filePath(view.view_name() + ".csv");
  view.export_csv(path);
  QFile f(path);
  QVERIFY(f.open(QIODevice::ReadOnly));
  QCOMPARE(f.readAll().toStdString(), expected);
}

/// PNG loads and is not blank, SVG is XML with an <svg> element, PDF starts with %PDF.
void check_exports(const ChartView& view) {
  QTemporaryDir dir;
  const QString base = dir.filePath(view.view_name());
  view.export_picture(base + ".png");
  view.export_picture(base + ".svg");
  view.export_picture(base + ".pdf");
  QImage img(base + ".png");
  QVERIFY(!img.isNull());
  QVERIFY(img.width() >= 320 && img.height() >= 240);
  std::set<QRgb> colours;
  for (int y = 0; y < img.height(); y += 3)
    for (int x = 0; x < img.width(); x += 3) colours.insert(img.pixel(x, y));
  QVERIFY2(colours.size() > 20, "the PNG is (nearly) blank");
  QFile svg(base + ".svg");
  QVERIFY(svg.open(QIODevice::ReadOnly));
  const QByteArray s = svg.readAll();
  QVERIFY(s.startsWith("<?xml"));
  QVERIFY(s.contains("<svg"));
  QFile pdf(base + ".pdf");
  QVERIFY(pdf.open(QIODevice::ReadOnly));
  QVERIFY(pdf.read(4) == "%PDF");
  QVERIFY(pdf.size() > 1000);
  QVERIFY_THROWS_EXCEPTION(kvwb::InvalidArgument, view.export_picture(base + ".bmp"));
}

/// Shows `view` at 1000×650 and writes its picture to `path` (for a person to look at).
void save_picture(ChartView& view, const QString& path) {
  view.resize(1000, 650);
  view.show();
  QVERIFY(QTest::qWaitForWindowExposed(&view));
  view.export_picture(path);
  QVERIFY(QImage(path).width() > 900);
}

CaptureSummary summary_of(const std::string& path) {
  io::CaptureReader reader(path);
  const io::CaptureInfo& info = reader.info();
  CaptureSummary c;
  c.path = std::filesystem::absolute(path).string();
  c.model_name = info.model_name;
  c.synthetic = info.model_name.find("SYNTHETIC") != std::string::npos;
  c.num_layers = info.num_layers;
  c.num_query_heads = info.num_query_heads;
  c.num_kv_heads = info.num_kv_heads;
  c.head_dim = info.head_dim;
  c.sequences = info.sequences;
  c.tokens = info.tokens;
  for (const auto& l : info.layers) {
    c.layers.push_back(l.layer);
    c.attention.push_back(l.attention);
    c.has_q.push_back(l.has_q_pre);
  }
  return c;
}

/// A snapshot as the shell publishes it: analysis, run (collect_residuals) and outlier rates.
std::shared_ptr<Snapshot> make_snapshot(const std::string& path, const std::vector<int>& layers,
                                        const sessions::RunConfig& cfg, Selection sel) {
  auto s = std::make_shared<Snapshot>();
  s->generation = 1;
  s->capture = summary_of(path);
  sessions::AnalysisOptions ao;
  ao.layers = layers;
  s->analysis = std::make_shared<sessions::AnalysisResult>(sessions::analyze_capture(path, ao));
  s->config = std::make_shared<sessions::RunConfig>(cfg);
  sessions::RunOptions ro;
  ro.collect_residuals = true;
  auto run = std::make_shared<sessions::RunResult>(sessions::run_config(path, cfg, ro));
  s->outliers =
      std::make_shared<sessions::OutlierRates>(sessions::outlier_rates_from_run(*run, true));
  s->run = run;
  s->run_is_current = true;
  s->selection = sel;
  s->backend_label = "CPU";
  return s;
}

}  // namespace

class TestViewsCharts : public QObject {
  Q_OBJECT

 private:
  SnapshotPtr demo_;  // demo capture, layers 0–1 (0 = boundary), selection layer 1 head 1
  std::string tiny_;  // tiny1m path ("" when absent)

 private slots:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY2(QFile::exists(KVWB_DEMO_CAPTURE), "demo capture missing (build the demo target)");
    sessions::RunConfig cfg;
    cfg.layers = {0, 1};
    cfg.boundary = {0};
    cfg.v.params.emplace("bit_width", "2");
    cfg.k.params.emplace("outlier_threshold", "2.5");
    cfg.q_precond = "capture";
    demo_ = make_snapshot(KVWB_DEMO_CAPTURE, {0, 1}, cfg, Selection{1, 1});
    const std::string t =
        (std::filesystem::path(KVWB_REAL_DATA_DIR) / "tiny1m_wikitext2.kvc.h5").string();
    if (QFile::exists(QString::fromStdString(t))) tiny_ = t;
  }

  void emptySnapshotsShowNoContent() {
    auto empty = std::make_shared<const Snapshot>();
    AnalysisCharts charts;
    auto& [sp, sq, di, le] = charts;
    for (ChartView* v : charts.all()) {
      v->set_snapshot(empty);
      QVERIFY2(!v->has_content(), qPrintable(v->view_name()));
      QVERIFY(v->picture_formats() == QStringList({"png", "svg", "pdf"}));
      QVERIFY_THROWS_EXCEPTION(kvwb::InvalidArgument, v->export_csv("/tmp/never-written.csv"));
    }
    // A capture open but nothing computed yet: still no content (the models' notes show).
    auto waiting = std::make_shared<Snapshot>();
    waiting->capture = demo_->capture;
    waiting->running_jobs = {"analysis"};
    for (ChartView* v : charts.all()) {
      v->set_snapshot(waiting);
      QVERIFY2(!v->has_content(), qPrintable(v->view_name()));
    }
    QCOMPARE(sp.model().note, waiting_note(*waiting, "analysis"));
    QCOMPARE(sp.view_name(), QString("spectrum"));
    QCOMPARE(sq.view_name(), QString("sigma-q"));
    QCOMPARE(di.view_name(), QString("distribution"));
    QCOMPARE(le.view_name(), QString("layer-error"));
  }

  void spectrumFollowsSelectionAndControls() {
    SpectrumView v;
    QSignalSpy select(&v, &View::select_requested);
    v.set_snapshot(demo_);
    QVERIFY(v.has_content());
    // The snapshot's selection (layer 1, kv head 1), K pre-RoPE by default.
    QCOMPARE(v.model().layer, 1);
    QCOMPARE(v.model().kv_head, 1);
    QCOMPARE(v.model().curves.size(), size_t(1));
    QVERIFY(v.model().curves[0].tensor == SpectrumTensor::kPreRope);
    check_csv(v, spectrum_csv(v.model()));
    check_exports(v);

    auto* tensor = v.findChild<QComboBox*>("tensor");
    QVERIFY(tensor);
    tensor->setCurrentIndex(3);  // all three
    QCOMPARE(v.model().curves.size(), size_t(3));
    QVERIFY(v.model().curves[1].tensor == SpectrumTensor::kWhitened);
    QVERIFY(v.model().curves[2].tensor == SpectrumTensor::kV);
    check_csv(v, spectrum_csv(v.model()));
    save_picture(v, "/tmp/chart_spectrum_demo_all.png");

    auto* layer = v.findChild<QComboBox*>("layer");
    QCOMPARE(layer->count(), 2);
    layer->setCurrentIndex(0);
    emit layer->activated(0);
    QCOMPARE(select.count(), 1);
    QCOMPARE(select.at(0).at(0).toInt(), 0);
    QCOMPARE(select.at(0).at(1).toInt(), 1);
    QCOMPARE(v.model().layer, 0);
    QCOMPARE(v.model().kv_head, 1);
  }

  void sigmaQDrawsTheSkipRule() {
    SigmaQView v;
    v.set_snapshot(demo_);
    QVERIFY(v.has_content());
    check_csv(v, sigma_q_csv(v.model()));
    check_exports(v);
    save_picture(v, "/tmp/chart_sigma-q_demo.png");

    // An auto-skipped layer is marked (m_l edited above the threshold to draw the case).
    auto skipped = std::make_shared<Snapshot>(*demo_);
    test::mark_auto_skipped(test::edit_analysis(*skipped), 1);
    v.set_snapshot(skipped);
    QVERIFY(v.model().layers[1].skip);
    save_picture(v, "/tmp/chart_sigma-q_demo_skip.png");

    // A capture without q_pre: nothing plotted.
    auto noq = std::make_shared<Snapshot>(*demo_);
    auto an2 = std::make_shared<sessions::AnalysisResult>(*demo_->analysis);
    for (auto& l : an2->layers) {
      l.has_q = false;
      for (auto& h : l.heads) h.sigma_q.reset();
    }
    noq->analysis = an2;
    v.set_snapshot(noq);
    QVERIFY(!v.has_content());
  }

  void distributionFollowsSelectionAndControls() {
    DistributionView v;
    v.set_snapshot(demo_);
    QVERIFY(v.has_content());
    QCOMPARE(v.model().layer, 1);  // the snapshot's selection
    QVERIFY(v.model().k_stream);
    QCOMPARE(v.model().threshold_index, 1);  // T = 2.0 by default
    QVERIFY(v.model().has_histogram());
    check_csv(v, distribution_csv(v.model()));
    check_exports(v);
    save_picture(v, "/tmp/chart_distribution_demo.png");

    v.findChild<QComboBox*>("stream")->setCurrentIndex(1);
    QVERIFY(!v.model().k_stream);
    QCOMPARE(v.model().histogram->bit_width, 2u);  // the V stream's configuration
    v.findChild<QComboBox*>("threshold")->setCurrentIndex(3);
    QCOMPARE(v.model().threshold_index, 3);
    check_csv(v, distribution_csv(v.model()));
    // The boundary layer (bf16) has no histogram; the per-layer panel is still there.
    auto sel0 = std::make_shared<Snapshot>(*demo_);
    sel0->selection = {0, 0};
    v.set_snapshot(sel0);
    QCOMPARE(v.model().layer, 0);
    QVERIFY(!v.model().has_histogram());
    QVERIFY(v.has_content());
  }

  void layerErrorFollowsTheMetricCombo() {
    LayerErrorView v;
    v.set_snapshot(demo_);
    QVERIFY(v.has_content());
    QVERIFY(v.model().metric == LayerErrorMetric::kRelMse);
    check_csv(v, layer_error_csv(v.model()));
    check_exports(v);

    auto* metric = v.findChild<QComboBox*>("metric");
    metric->setCurrentIndex(2);
    QVERIFY(v.model().metric == LayerErrorMetric::kAttnKl);
    metric->setCurrentIndex(1);
    QVERIFY(v.model().metric == LayerErrorMetric::kAttnOutRelErr);
    check_csv(v, layer_error_csv(v.model()));

    // A failed stream is drawn marked.
    auto failed = std::make_shared<Snapshot>(*demo_);
    auto run = std::make_shared<sessions::RunResult>(*demo_->run);
    for (auto& l : run->layers)
      if (l.layer == 1) {
        l.v.failed = true;
        l.v.error_code = "FP16_RANGE";
      }
    failed->run = run;
    metric->setCurrentIndex(0);
    v.set_snapshot(failed);
    QVERIFY(v.model().rows[1].v.failed);
    save_picture(v, "/tmp/chart_layer-error_demo_failed.png");
  }

  // Issue #13: every chart zooms (wheel) and pans (drag), a double click or Reset returns to the
  // whole chart, and a zoom survives a new snapshot of the same chart. A click (no drag) on a
  // layer of the per-layer charts selects it in every view.
  void everyChartZoomsPansAndResets() {
    AnalysisCharts charts;
    auto& [sp, sq, di, le] = charts;
    for (ChartView* v : charts.all()) {
      QVERIFY(show_drawing(v, QSize(900, 600), demo_));
      QCustomPlot* p = v->plot();
      const QCPRange home = p->xAxis->range();
      const QPoint centre = p->axisRect()->rect().center();
      QWheelEvent wheel(QPointF(centre), QPointF(p->mapToGlobal(centre)), QPoint(), QPoint(0, 240),
                        Qt::NoButton, Qt::NoModifier, Qt::NoScrollPhase, false);
      QApplication::sendEvent(p, &wheel);
      QTRY_VERIFY2(v->zoomed(), qPrintable(v->view_name()));
      QVERIFY(p->xAxis->range().size() < home.size());
      QVERIFY(v->reset_button()->isEnabled());
      // The same snapshot again (a rebuild): the zoom stays.
      v->set_snapshot(demo_);
      QVERIFY(v->zoomed());
      QVERIFY(p->xAxis->range().size() < home.size());
      v->reset_button()->click();
      QVERIFY(!v->zoomed());
      QCOMPARE(p->xAxis->range().lower, home.lower);
      QCOMPARE(p->xAxis->range().upper, home.upper);
      // Drag pans.
      QTest::mousePress(p, Qt::LeftButton, {}, centre);
      QTest::mouseMove(p, centre + QPoint(60, 0));
      QTest::mouseRelease(p, Qt::LeftButton, {}, centre + QPoint(60, 0));
      QTRY_VERIFY2(v->zoomed(), qPrintable(v->view_name() + " pan"));
      QVERIFY(p->xAxis->range().lower < home.lower);
      QTest::mouseDClick(p, Qt::LeftButton, {}, centre);
      QVERIFY(!v->zoomed());
      QCOMPARE(p->xAxis->range().lower, home.lower);
    }
    // Linked selection: a click on layer 0 of the per-layer error chart selects it.
    QSignalSpy select(&le, &views::View::select_requested);
    const int x = qRound(le.plot()->xAxis->coordToPixel(0.0));
    const int y = le.plot()->axisRect()->rect().center().y();
    QTest::mouseClick(le.plot(), Qt::LeftButton, {}, QPoint(x, y));
    QCOMPARE(select.count(), 1);
    QCOMPARE(select.at(0).at(0).toInt(), 0);
    QVERIFY(!le.zoomed());  // a click is not a pan
    QSignalSpy select_q(&sq, &views::View::select_requested);
    QTest::mouseClick(sq.plot(), Qt::LeftButton, {},
                      QPoint(qRound(sq.plot()->xAxis->coordToPixel(1.0)),
                             sq.plot()->axisRect()->rect().center().y()));
    QCOMPARE(select_q.count(), 1);
    QCOMPARE(select_q.at(0).at(0).toInt(), 1);
  }

  void tiny1mScreenshots() {
    if (tiny_.empty())
      QSKIP("real data tiny1m_wikitext2.kvc.h5 not found in KVWB_REAL_DATA_DIR; skipping");
    const auto snap = make_snapshot(tiny_, {}, sessions::RunConfig{}, Selection{1, 0});
    AnalysisCharts charts;
    auto& [sp, sq, di, le] = charts;
    for (ChartView* v : charts.all()) {
      QVERIFY(show_drawing(v, QSize(1000, 650), snap));
      QVERIFY2(v->has_content(), qPrintable(v->view_name()));
      v->export_picture("/tmp/chart_" + v->view_name() + ".png");
      v->grab().save("/tmp/chart_" + v->view_name() + "_widget.png");
    }
    // With 128-row blocks the residuals exist: that picture shows the histogram.
    sessions::RunConfig c128;
    c128.block_size = 128;
    const auto snap128 = make_snapshot(tiny_, {}, c128, Selection{1, 0});
    di.set_snapshot(snap128);
    di.export_picture("/tmp/chart_distribution_bs128.png");
    di.grab().save("/tmp/chart_distribution_bs128_widget.png");
    le.set_snapshot(snap128);
    le.export_picture("/tmp/chart_layer-error_bs128.png");
  }
};

QTEST_MAIN(TestViewsCharts)
#include "test_views_charts.moc"
