// The analysis charts (spectrum, Σ_q, distribution, per-layer error): their models equal the
// core's numbers (sessions::analyze_capture, run_config with collect_residuals,
// outlier_rates_from_run), the CSV round-trips the plotted values, PNG / SVG / PDF exports parse,
// empty snapshots show no content, and PNGs of every view on the real tiny1m capture are written
// to /tmp/chart_<name>.png for a person to look at.
#include <QComboBox>
#include <QFile>
#include <QImage>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QtTest>
#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>

#include "codec/math/calibration.h"
#include "base/errors.h"
#include "codec/math/quantizer.h"
#include "io/capture.h"
#include "sessions/analysis/analysis.h"
#include "sessions/analysis/distribution.h"
#include "sessions/run/runner.h"
#include "views/distribution_view.h"
#include "views/layer_error_view.h"
#include "views/sigma_q_view.h"
#include "views/spectrum_view.h"

using namespace kvwb;
using namespace kvwb::views;

namespace {

struct CsvRow {
  std::string series;
  double x = 0, y = 0;
};

double parse_cell(const std::string& s) { return s.empty() ? std::nan("") : std::stod(s); }

/// Parses "series,x,y" CSV (quoted series names allowed); returns the header and the rows.
std::vector<CsvRow> parse_csv(const std::string& text, std::string* header) {
  std::vector<CsvRow> rows;
  std::istringstream in(text);
  std::string line;
  std::getline(in, line);
  *header = line;
  while (std::getline(in, line)) {
    std::string name;
    size_t pos = 0;
    if (!line.empty() && line[0] == '"') {
      pos = 1;
      while (pos < line.size()) {
        if (line[pos] == '"' && pos + 1 < line.size() && line[pos + 1] == '"') {
          name += '"';
          pos += 2;
        } else if (line[pos] == '"') {
          ++pos;
          break;
        } else {
          name += line[pos++];
        }
      }
    } else {
      pos = line.find(',');
      name = line.substr(0, pos);
    }
    const size_t c1 = line.find(',', pos);
    const size_t c2 = line.find(',', c1 + 1);
    rows.push_back(
        {name, parse_cell(line.substr(c1 + 1, c2 - c1 - 1)), parse_cell(line.substr(c2 + 1))});
  }
  return rows;
}

bool same(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

/// The CSV written by `view` equals `series` point by point (exact doubles, NaN as empty).
void check_csv(const ChartView& view, const std::vector<PlotSeries>& series,
               const QString& header) {
  QTemporaryDir dir;
  const QString path = dir.filePath(view.view_name() + ".csv");
  view.export_csv(path);
  QFile f(path);
  QVERIFY(f.open(QIODevice::ReadOnly));
  std::string head;
  const auto rows = parse_csv(f.readAll().toStdString(), &head);
  QCOMPARE(QString::fromStdString(head), header);
  size_t i = 0;
  for (const PlotSeries& s : series) {
    for (size_t k = 0; k < s.x.size(); ++k, ++i) {
      QVERIFY2(i < rows.size(), "CSV has fewer rows than plotted points");
      QCOMPARE(rows[i].series, s.name);
      QVERIFY2(same(rows[i].x, s.x[k]), (s.name + " x").c_str());
      QVERIFY2(same(rows[i].y, s.y[k]), (s.name + " y").c_str());
    }
  }
  QCOMPARE(rows.size(), i);
  QVERIFY(i > 0);
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

const sessions::LayerAnalysis& analysis_layer(const Snapshot& s, int layer) {
  for (const auto& l : s.analysis->layers)
    if (l.layer == layer) return l;
  throw std::runtime_error("layer not analysed");
}

const sessions::LayerResult& run_layer(const Snapshot& s, int layer) {
  for (const auto& l : s.run->layers)
    if (l.layer == layer) return l;
  throw std::runtime_error("layer not run");
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
    SpectrumView sp;
    SigmaQView sq;
    DistributionView di;
    LayerErrorView le;
    for (ChartView* v : std::initializer_list<ChartView*>{&sp, &sq, &di, &le}) {
      v->set_snapshot(empty);
      QVERIFY2(!v->has_content(), qPrintable(v->view_name()));
      QVERIFY(v->picture_formats() == QStringList({"png", "svg", "pdf"}));
      QVERIFY_THROWS_EXCEPTION(kvwb::InvalidArgument, v->export_csv("/tmp/never-written.csv"));
    }
    QCOMPARE(QString::fromStdString(sp.model().note), QString("No capture open."));
    // A capture open but nothing computed yet: the waiting notes.
    auto waiting = std::make_shared<Snapshot>();
    waiting->capture = demo_->capture;
    waiting->running_jobs = {"analysis"};
    sp.set_snapshot(waiting);
    sq.set_snapshot(waiting);
    le.set_snapshot(waiting);
    di.set_snapshot(waiting);
    QVERIFY(!sp.has_content() && !sq.has_content() && !le.has_content() && !di.has_content());
    QCOMPARE(QString::fromStdString(sp.model().note), QString("Analysis running…"));
    QCOMPARE(QString::fromStdString(sq.model().note), QString("Analysis running…"));
    QCOMPARE(QString::fromStdString(le.model().note), QString("Run running…"));
    waiting->running_jobs.clear();
    le.set_snapshot(waiting);
    QVERIFY(QString::fromStdString(le.model().note).startsWith("No run yet"));
    QCOMPARE(sp.view_name(), QString("spectrum"));
    QCOMPARE(sq.view_name(), QString("sigma-q"));
    QCOMPARE(di.view_name(), QString("distribution"));
    QCOMPARE(le.view_name(), QString("layer-error"));
  }

  void spectrumEqualsTheAnalysis() {
    SpectrumView v;
    QSignalSpy select(&v, &View::select_requested);
    v.set_snapshot(demo_);
    QVERIFY(v.has_content());
    const auto& m = v.model();
    QCOMPARE(m.layer, 1);
    QCOMPARE(m.kv_head, 1);
    QVERIFY(QString::fromStdString(m.title).contains("demo.kvc.h5"));
    QVERIFY(QString::fromStdString(m.title).contains("layer 1 · kv head 1"));
    QVERIFY(QString::fromStdString(m.title).endsWith("SYNTHETIC"));
    const auto& head = analysis_layer(*demo_, 1).heads[1];
    QCOMPARE(m.curves.size(), size_t(1));
    QVERIFY(m.curves[0].eigenvalues == head.k_pre.spectrum.eigenvalues);
    QVERIFY(m.curves[0].cumulative == head.k_pre.spectrum.cumulative);
    QVERIFY(m.curves[0].d_eff == head.k_pre.spectrum.d_eff);
    QCOMPARE(m.curves[0].eigenvalues.size(), size_t(demo_->capture.head_dim));
    check_csv(v, m.series(), "series,component,value");
    check_exports(v);

    auto* tensor = v.findChild<QComboBox*>("tensor");
    QVERIFY(tensor);
    tensor->setCurrentIndex(3);  // all three
    QCOMPARE(v.model().curves.size(), size_t(3));
    QVERIFY(head.k_whitened.has_value());
    QVERIFY(v.model().curves[1].eigenvalues == head.k_whitened->spectrum.eigenvalues);
    QVERIFY(v.model().curves[2].d_eff == head.v.spectrum.d_eff);
    check_csv(v, v.model().series(), "series,component,value");
    save_picture(v, "/tmp/chart_spectrum_demo_all.png");

    auto* layer = v.findChild<QComboBox*>("layer");
    QCOMPARE(layer->count(), 2);
    layer->setCurrentIndex(0);
    emit layer->activated(0);
    QCOMPARE(select.count(), 1);
    QCOMPARE(select.at(0).at(0).toInt(), 0);
    QCOMPARE(select.at(0).at(1).toInt(), 1);
    QCOMPARE(v.model().layer, 0);
    QVERIFY(v.model().curves[0].eigenvalues ==
            analysis_layer(*demo_, 0).heads[1].k_pre.spectrum.eigenvalues);
  }

  void sigmaQEqualsTheAnalysisAndTheSkipRule() {
    SigmaQView v;
    v.set_snapshot(demo_);
    QVERIFY(v.has_content());
    const auto& m = v.model();
    const auto& an = *demo_->analysis;
    QCOMPARE(m.factor, codec::kSkipRuleFactor);
    QCOMPARE(m.median, an.skip_median);
    QCOMPARE(m.threshold, codec::kSkipRuleFactor * an.skip_median);
    QVERIFY(m.skip_layers == an.skip_layers);
    QCOMPARE(m.layers.size(), an.layers.size());
    for (const auto& l : m.layers) {
      const auto& la = analysis_layer(*demo_, l.layer);
      QCOMPARE(l.m_l, la.max_abs_L);
      QCOMPARE(l.skip, la.skip);
      QCOMPARE(l.skip_ratio, la.skip_ratio);
      // The drawn threshold line agrees with the core's verdict.
      QCOMPARE(l.skip, l.m_l > m.threshold);
      QCOMPARE(l.heads.size(), la.heads.size());
      for (size_t h = 0; h < l.heads.size(); ++h) {
        QCOMPARE(l.heads[h].cond_reg, la.heads[h].sigma_q->cond_reg);
        QCOMPARE(l.heads[h].max_abs_L, la.heads[h].sigma_q->max_abs_L);
      }
    }
    std::vector<PlotSeries> all = m.cond_series();
    QCOMPARE(all.size(), size_t(demo_->capture.num_kv_heads));
    for (auto& s : m.max_l_series()) all.push_back(s);
    check_csv(v, all, "series,layer,value");
    check_exports(v);
    save_picture(v, "/tmp/chart_sigma-q_demo.png");

    // An auto-skipped layer is marked (m_l edited above the threshold to draw the case).
    auto skipped = std::make_shared<Snapshot>(*demo_);
    auto an3 = std::make_shared<sessions::AnalysisResult>(an);
    for (auto& l : an3->layers)
      if (l.layer == 1) {
        l.max_abs_L = 3 * an3->skip_median;
        l.skip_ratio = 3;
        l.skip = true;
      }
    an3->skip_layers = {1};
    skipped->analysis = an3;
    v.set_snapshot(skipped);
    const auto ms = v.model().max_l_series();
    const auto sk = std::find_if(ms.begin(), ms.end(),
                                 [](const PlotSeries& s) { return s.name == "auto-skipped"; });
    QVERIFY(sk != ms.end());
    QVERIFY(sk->x == std::vector<double>{1});
    QCOMPARE(sk->y.front(), 3 * an3->skip_median);
    save_picture(v, "/tmp/chart_sigma-q_demo_skip.png");

    // A capture without q_pre: a clear note and nothing plotted.
    auto noq = std::make_shared<Snapshot>(*demo_);
    auto an2 = std::make_shared<sessions::AnalysisResult>(an);
    for (auto& l : an2->layers) {
      l.has_q = false;
      for (auto& h : l.heads) h.sigma_q.reset();
    }
    noq->analysis = an2;
    v.set_snapshot(noq);
    QVERIFY(!v.has_content());
    QVERIFY(QString::fromStdString(v.model().note).contains("no q_pre"));
  }

  void distributionEqualsTheCore() {
    DistributionView v;
    v.set_snapshot(demo_);
    QVERIFY(v.has_content());
    const auto& m = v.model();
    QCOMPARE(m.layer, 1);
    QVERIFY(m.k_stream);
    QVERIFY(m.has_histogram());
    const auto& lr = run_layer(*demo_, 1);
    const auto direct = sessions::residual_histogram(
        lr.k, sessions::stream_config_for_layer(demo_->run->config, 1, true), kDistributionBins,
        kDistributionRange);
    QVERIFY(m.histogram->counts == direct.counts);
    QVERIFY(m.histogram->density == direct.density);
    QCOMPARE(m.histogram->values, uint64_t(lr.k.scaled_residuals.size()));
    QCOMPARE(m.histogram->bit_width, 3u);
    QCOMPARE(*m.histogram->outlier_threshold, 2.5);
    const auto g3 = codec::gaussian_table(3);
    QCOMPARE(m.histogram->centroids.size(), g3.size());
    for (size_t i = 0; i < g3.size(); ++i) QCOMPARE(m.histogram->centroids[i], double(g3[i]));
    // Side panel: kurtosis of the analysis, outlier rates of the run at T = 2.0.
    const auto kurt = sessions::layer_kurtosis(*demo_->analysis);
    QCOMPARE(m.kurtosis.size(), kurt.size());
    for (size_t i = 0; i < kurt.size(); ++i) QCOMPARE(m.kurtosis[i].k_pre, kurt[i].k_pre);
    QCOMPARE(m.outliers.size(), size_t(1));  // layer 0 is a bf16 boundary layer
    QCOMPARE(m.outliers[0].layer, 1);
    const auto& ol = demo_->outliers->layers;
    const auto it = std::find_if(ol.begin(), ol.end(), [](const auto& o) { return o.layer == 1; });
    QCOMPARE(*m.outliers[0].k_rate, it->k->rate(1));
    QCOMPARE(*m.outliers[0].v_rate, it->v->rate(1));
    QCOMPARE(m.gaussian_rate, sessions::gaussian_outlier_rates()[1]);
    const auto side = m.side_series();
    const auto gauss = std::find_if(side.begin(), side.end(), [](const PlotSeries& s) {
      return s.name == "Gaussian rate |s|>2";
    });
    QVERIFY(gauss != side.end());
    QCOMPARE(gauss->y.front(), sessions::gaussian_outlier_rates()[1]);
    std::vector<PlotSeries> all = m.main_series();
    for (auto& s : m.side_series()) all.push_back(s);
    check_csv(v, all, "series,x,y");
    check_exports(v);
    save_picture(v, "/tmp/chart_distribution_demo.png");

    // V stream: b = 2, no outlier threshold configured.
    v.findChild<QComboBox*>("stream")->setCurrentIndex(1);
    QCOMPARE(v.model().histogram->bit_width, 2u);
    QVERIFY(!v.model().histogram->outlier_threshold);
    QCOMPARE(v.model().histogram->values, uint64_t(lr.v.scaled_residuals.size()));
    // Threshold selector: rates at T = 3.0.
    v.findChild<QComboBox*>("threshold")->setCurrentIndex(3);
    QCOMPARE(*v.model().outliers[0].k_rate, it->k->rate(3));
    // The boundary layer is bf16: the residual view says it applies to kakeya_pca streams.
    auto sel0 = std::make_shared<Snapshot>(*demo_);
    sel0->selection = {0, 0};
    v.set_snapshot(sel0);
    QVERIFY(!v.model().has_histogram());
    QVERIFY(QString::fromStdString(v.model().note).contains("applies to kakeya_pca streams"));
    QVERIFY(v.has_content());  // the per-layer panel is still there
  }

  void layerErrorEqualsTheRun() {
    LayerErrorView v;
    v.set_snapshot(demo_);
    QVERIFY(v.has_content());
    const auto& m = v.model();
    QCOMPARE(m.rows.size(), demo_->run->layers.size());
    for (const auto& r : m.rows) {
      const auto& lr = run_layer(*demo_, r.layer);
      QCOMPARE(*r.k.value, lr.k.err.rel_mse());
      QCOMPARE(*r.v.value, lr.v.err.rel_mse());
      QCOMPARE(r.boundary, lr.boundary);
      QCOMPARE(r.whitened, lr.whitened);
      QCOMPARE(r.k.codec, lr.k.codec);
    }
    QVERIFY(m.rows[0].boundary && !m.rows[1].boundary);
    QVERIFY(m.rows[1].whitened);
    const auto series = m.series();
    const auto b = std::find_if(series.begin(), series.end(),
                                [](const PlotSeries& s) { return s.name == "boundary (bf16)"; });
    QVERIFY(b != series.end());
    QVERIFY(b->x == std::vector<double>{0});
    check_csv(v, series, "series,layer,value");
    check_exports(v);

    auto* metric = v.findChild<QComboBox*>("metric");
    metric->setCurrentIndex(2);  // attention KL
    const auto& lr1 = run_layer(*demo_, 1);
    QCOMPARE(v.model().metric, LayerErrorMetric::kAttnKl);
    QVERIFY(lr1.has_attn);
    QCOMPARE(*v.model().rows[1].k.value, lr1.k.attn.kl());
    QCOMPARE(*v.model().rows[1].both, lr1.attn.kl());
    metric->setCurrentIndex(1);
    QCOMPARE(*v.model().rows[1].both, lr1.attn.out_rel_err());
    check_csv(v, v.model().series(), "series,layer,value");

    // A failed stream is marked and has no value.
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
    QVERIFY(!v.model().rows[1].v.value);
    QCOMPARE(v.model().rows[1].v.error_code, std::string("FP16_RANGE"));
    const auto fs = v.model().series();
    QVERIFY(std::any_of(fs.begin(), fs.end(), [](const PlotSeries& s) {
      return s.name == "V failed" && s.x == std::vector<double>{1};
    }));
    QVERIFY(QString::fromStdString(v.model().note).contains("failed"));
    save_picture(v, "/tmp/chart_layer-error_demo_failed.png");
  }

  void tiny1mScreenshots() {
    if (tiny_.empty())
      QSKIP("real data tiny1m_wikitext2.kvc.h5 not found in KVWB_REAL_DATA_DIR; skipping");
    const auto snap = make_snapshot(tiny_, {}, sessions::RunConfig{}, Selection{1, 0});
    QVERIFY(!snap->capture.synthetic);
    SpectrumView sp;
    SigmaQView sq;
    DistributionView di;
    LayerErrorView le;
    for (ChartView* v : std::initializer_list<ChartView*>{&sp, &sq, &di, &le}) {
      v->resize(1000, 650);
      v->set_snapshot(snap);
      v->show();
      QVERIFY(QTest::qWaitForWindowExposed(v));
      QVERIFY2(v->has_content(), qPrintable(v->view_name()));
      v->export_picture("/tmp/chart_" + v->view_name() + ".png");
      v->grab().save("/tmp/chart_" + v->view_name() + "_widget.png");
    }
    QVERIFY(QString::fromStdString(sp.model().title)
                .contains("tiny1m_wikitext2.kvc.h5 · layer 1 · kv head 0"));
    QVERIFY(!QString::fromStdString(sp.model().title).contains("SYNTHETIC"));
    QVERIFY(sp.model().has_whitened);
    QCOMPARE(sq.model().layers.size(), size_t(4));
    // The default configuration (block_size 512) keeps every row of a 256-token capture in the
    // bf16 hot tail: no coded residuals, and the note says so.
    QVERIFY(!di.model().has_histogram());
    QVERIFY(QString::fromStdString(di.model().note).contains("hot tail"));
    // With 128-row blocks the residuals exist: that picture shows the histogram.
    sessions::RunConfig c128;
    c128.block_size = 128;
    const auto snap128 = make_snapshot(tiny_, {}, c128, Selection{1, 0});
    di.set_snapshot(snap128);
    QVERIFY(di.model().has_histogram());
    QCOMPARE(di.model().outliers.size(), size_t(4));
    di.export_picture("/tmp/chart_distribution_bs128.png");
    di.grab().save("/tmp/chart_distribution_bs128_widget.png");
    le.set_snapshot(snap128);
    le.export_picture("/tmp/chart_layer-error_bs128.png");
  }
};

QTEST_MAIN(TestViewsCharts)
#include "test_views_charts.moc"
