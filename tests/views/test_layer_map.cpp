// Layer map (issue #5): the pure model against the core's numbers (analysis, run, outlier rates)
// on the demo capture and on tiny1m, boundary flags and totals, the ImGui canvas under Xvfb
// (not blank, click a cell -> select_requested, click the bf16 box -> boundary_toggle_requested),
// two canvases with their own ImGui contexts, PNG and CSV export.
#include <QFile>
#include <QImage>
#include <QSet>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <cstdio>
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

const sessions::LayerResult& run_layer(const views::Snapshot& s, int layer) {
  for (const auto& l : s.run->layers) {
    if (l.layer == layer) return l;
  }
  throw std::runtime_error("layer not in run");
}

const sessions::HeadAnalysis& head_of(const views::Snapshot& s, int layer, int h) {
  for (const auto& l : s.analysis->layers) {
    if (l.layer == layer) return l.heads.at(static_cast<size_t>(h));
  }
  throw std::runtime_error("layer not analysed");
}

const views::LayerMapRow& row_of(const views::LayerMapModel& m, int layer) {
  for (const auto& r : m.rows) {
    if (r.layer == layer) return r;
  }
  throw std::runtime_error("layer not in model");
}

int distinct_colours(const QImage& img) {
  QSet<QRgb> colours;
  for (int y = 0; y < img.height(); y += 2) {
    for (int x = 0; x < img.width(); x += 2) colours.insert(img.pixel(x, y) & 0xFFFFFFu);
  }
  return static_cast<int>(colours.size());
}

/// Checks every numeric metric of the model against the core's structures.
void check_against_core(const views::Snapshot& s, const std::vector<int>& layers) {
  const int H = s.capture.num_kv_heads;
  for (int l : layers) {
    const auto& lr = run_layer(s, l);
    for (int h = 0; h < H; ++h) {
      const auto& ha = head_of(s, l, h);
      auto cell = [&](LayerMapMetric m, LayerMapStream st) {
        return row_of(views::build_layer_map(s, m, st), l).cells.at(static_cast<size_t>(h)).value;
      };
      if (ha.sigma_q) {
        QCOMPARE(cell(LayerMapMetric::kSigmaQCond, LayerMapStream::kNone), ha.sigma_q->cond_reg);
      } else {
        QVERIFY(std::isnan(cell(LayerMapMetric::kSigmaQCond, LayerMapStream::kNone)));
      }
      QCOMPARE(cell(LayerMapMetric::kDEff, LayerMapStream::kK),
               static_cast<double>(ha.k_pre.spectrum.d_eff[1]));
      QCOMPARE(cell(LayerMapMetric::kDEff, LayerMapStream::kV),
               static_cast<double>(ha.v.spectrum.d_eff[1]));
      if (ha.k_whitened) {
        QCOMPARE(cell(LayerMapMetric::kDEff, LayerMapStream::kKWhitened),
                 static_cast<double>(ha.k_whitened->spectrum.d_eff[1]));
      }
      QCOMPARE(cell(LayerMapMetric::kKurtosis, LayerMapStream::kK), ha.k_pre.kurtosis.pooled);
      QCOMPARE(cell(LayerMapMetric::kKurtosis, LayerMapStream::kV), ha.v.kurtosis.pooled);
      QCOMPARE(cell(LayerMapMetric::kRelMse, LayerMapStream::kK), lr.k.heads.at(h).rel_mse());
      QCOMPARE(cell(LayerMapMetric::kRelMse, LayerMapStream::kV), lr.v.heads.at(h).rel_mse());
      if (lr.has_attn) {
        QCOMPARE(cell(LayerMapMetric::kAttnKl, LayerMapStream::kNone), lr.attn_heads.at(h).kl());
      }
      QCOMPARE(cell(LayerMapMetric::kBytes, LayerMapStream::kBoth),
               static_cast<double>(lr.k.bytes + lr.v.bytes));
      QCOMPARE(cell(LayerMapMetric::kBytes, LayerMapStream::kK), static_cast<double>(lr.k.bytes));
      // Outlier rate: per layer (every head the same), NaN for streams not coded by kakeya_pca.
      const sessions::OutlierLayer* ol = nullptr;
      for (const auto& o : s.outliers->layers) {
        if (o.layer == l) ol = &o;
      }
      const double k_rate = cell(LayerMapMetric::kOutlierRate, LayerMapStream::kK);
      if (ol && ol->k) {
        QCOMPARE(k_rate, ol->k->rate(views::kLayerMapOutlierIndex));
      } else {
        QVERIFY(std::isnan(k_rate));
      }
    }
  }
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

  void emptySnapshotShowsHint() {
    const views::LayerMapModel m =
        views::build_layer_map(views::Snapshot{}, LayerMapMetric::kRelMse);
    QVERIFY(m.rows.empty());
    QVERIFY(!m.hint.empty());
    // A capture without analysis or run: rows with flags, every cell n/a, a hint what to do.
    views::Snapshot capture_only;
    capture_only.capture = demo_->capture;
    const views::LayerMapModel mc =
        views::build_layer_map(capture_only, LayerMapMetric::kSigmaQCond);
    QCOMPARE(mc.rows.size(), demo_->capture.layers.size());
    QVERIFY(!mc.has_values);
    QVERIFY(!mc.has_run);
    QVERIFY(mc.hint.find("analysis") != std::string::npos);
    QVERIFY(std::isnan(mc.rows[0].cells[0].value));
    QCOMPARE(mc.rows[0].cells[0].why_na, std::string("no analysis yet"));
    views::LayerMapView view;
    view.set_snapshot(std::make_shared<const views::Snapshot>());
    QVERIFY(!view.has_content());
    QVERIFY(show_and_wait(view));
    QVERIFY(view.canvas()->frame_count() > 0);
  }

  void demoModelMatchesCore() {
    const views::Snapshot& s = *demo_;
    QVERIFY(s.capture.synthetic);
    check_against_core(s, demo_layers_);
    const views::LayerMapModel m =
        views::build_layer_map(s, LayerMapMetric::kRelMse, LayerMapStream::kK);
    QVERIFY(m.synthetic);
    QCOMPARE(static_cast<int>(m.rows.size()), static_cast<int>(s.capture.layers.size()));
    QCOMPARE(m.num_kv_heads, s.capture.num_kv_heads);
    // Layers the run did not cover are flagged (greyed) and their run metrics are n/a.
    for (const auto& r : m.rows) {
      const bool covered = r.layer == 0 || r.layer == 1;
      QCOMPARE(r.in_run, covered);
      if (!covered) {
        QVERIFY(std::isnan(r.cells[0].value));
        QCOMPARE(r.cells[0].why_na, std::string("layer not in the run"));
      }
    }
    // Colour range = min/max over the finite cells of the compressed layers (boundary layer 0
    // holds bf16 errors ~3e-6 that would squash the scale).
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& r : m.rows) {
      if (r.boundary) continue;
      for (const auto& c : r.cells) {
        if (std::isfinite(c.value)) {
          lo = std::min(lo, c.value);
          hi = std::max(hi, c.value);
        }
      }
    }
    QCOMPARE(m.min, lo);
    QCOMPARE(m.max, hi);
    QVERIFY(row_of(m, 0).cells[0].value < m.min);
    QVERIFY(!m.scale_note.empty());
    QVERIFY(!m.log_scale);
    QVERIFY(views::build_layer_map(s, LayerMapMetric::kSigmaQCond).log_scale);
    QVERIFY(!views::build_layer_map(s, LayerMapMetric::kDEff, LayerMapStream::kV).log_scale);
  }

  void boundaryAndTotals() {
    const views::Snapshot& s = *demo_;
    const views::LayerMapModel m = views::build_layer_map(s, LayerMapMetric::kBytes);
    QCOMPARE(m.stream, LayerMapStream::kBoth);  // default stream of bytes
    QVERIFY(m.per_layer);
    for (const auto& r : m.rows) QCOMPARE(r.boundary, r.layer == 0);
    QVERIFY(row_of(m, 1).whitened == run_layer(s, 1).whitened);
    QVERIFY(m.has_run);
    QVERIFY(m.run_is_current);
    char ratio[64];
    std::snprintf(ratio, sizeof ratio, "ratio %.4f", s.run->ratio_vs_bf16());
    QVERIFY2(m.totals_line.rfind(ratio, 0) == 0, m.totals_line.c_str());
    QVERIFY(m.totals_line.find(std::to_string(s.run->total_bytes) + " bytes") != std::string::npos);
    QVERIFY(m.quality_line.find("K rel_mse") != std::string::npos);
    // While a rerun is in flight the old totals stay, flagged as not current.
    auto stale = std::make_shared<views::Snapshot>(s);
    stale->run_is_current = false;
    auto boundary2 = std::make_shared<sessions::RunConfig>(*s.config);
    boundary2->boundary = {0, 1};
    stale->config = boundary2;
    const views::LayerMapModel ms = views::build_layer_map(*stale, LayerMapMetric::kBytes);
    QVERIFY(!ms.run_is_current);
    QCOMPARE(ms.totals_line, m.totals_line);
    QVERIFY(row_of(ms, 1).boundary);
    QVERIFY(
        !row_of(ms, 1).run_boundary);  // the old run coded layer 1: it stays in the colour range
    QVERIFY(row_of(ms, 1).status.find("waits for the rerun") != std::string::npos);
    const views::LayerMapModel mk =
        views::build_layer_map(*stale, LayerMapMetric::kRelMse, LayerMapStream::kK);
    QCOMPARE(mk.max, std::max(row_of(mk, 1).cells[0].value, row_of(mk, 1).cells[1].value));
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
    const QStringList lines = QString::fromUtf8(f.readAll()).split('\n', Qt::SkipEmptyParts);
    QCOMPARE(lines.size(), static_cast<int>(demo_->capture.layers.size()) + 1);
    QVERIFY(lines[0].startsWith("layer,attention,boundary,in_run,whitened,q_skip"));
    const QStringList l1 = lines[2].split(',');  // layer 1
    QCOMPARE(l1[0].toInt(), 1);
    QCOMPARE(l1[6].toDouble(), run_layer(*demo_, 1).attn_heads[0].kl());
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
    QVERIFY(!snap->capture.synthetic);
    check_against_core(*snap, layers);
    const views::LayerMapModel m =
        views::build_layer_map(*snap, LayerMapMetric::kRelMse, LayerMapStream::kK);
    QVERIFY(!m.synthetic);
    QVERIFY(row_of(m, 0).boundary);
    QVERIFY(!row_of(m, 1).boundary);
    QVERIFY(row_of(m, 1).whitened);
    QVERIFY(m.totals_line.rfind("ratio 1.5443", 0) ==
            0);  // = `kvwb run --boundary 0 --block-size 64 --q-precond capture`

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
