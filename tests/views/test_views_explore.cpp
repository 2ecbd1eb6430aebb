// QtTest of the Pareto view and the configuration editor (issue #5): click-to-load, the sweep
// selector, CSV / picture exports and the excluded-cells note of the Pareto view; generated
// widgets, widget round trips, inline validation and edits across snapshots of the editor;
// screenshots of both views. What their models compute (frontier against the core, metrics,
// form <-> configuration) is tested without Qt in tests/views/models/ (test_view_models).
#include <qcustomplot.h>

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QFileInfo>
#include <QLabel>
#include <QLineEdit>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QtTest>

#include "base/errors.h"
#include "codec/codec.h"
#include "sessions/config/run_config.h"
#include "sessions/explore/result_store.h"
#include "sessions/explore/sweep.h"
#include "views/config_view.h"
#include "views/models/config_model.h"
#include "views/models/pareto_model.h"
#include "views/pareto_view.h"

using namespace kvwb;
using nlohmann::json;

Q_DECLARE_METATYPE(kvwb::sessions::RunConfig)

namespace {

QString tiny1m_path() {
#ifdef KVWB_REAL_DATA_DIR
  return QString(KVWB_REAL_DATA_DIR) + "/tiny1m_wikitext2.kvc.h5";
#else
  return {};
#endif
}

/// Runs `grid` on `capture` into a fresh store under `dir`; returns the store's records.
std::vector<json> sweep_records(const QString& capture, const json& grid, const QString& dir) {
  const std::string store = (dir + "/store").toStdString();
  sessions::SweepOptions opt;
  opt.jobs = 2;
  const auto summary = sessions::run_sweep(capture.toStdString(), grid, store, opt);
  if (summary.failed != 0) qWarning("sweep: %zu failed cells", summary.failed);
  auto records = sessions::read_result_store(store).records;
  // Snapshot records are in ascending cell order (the store keeps finishing order).
  std::sort(records.begin(), records.end(),
            [](const json& a, const json& b) { return a.value("cell", -1) < b.value("cell", -1); });
  return records;
}

views::SnapshotPtr sweep_snapshot(const QString& capture, bool synthetic,
                                  const std::vector<json>& records, const std::string& name,
                                  std::shared_ptr<const sessions::RunConfig> config = nullptr) {
  auto s = std::make_shared<views::Snapshot>();
  s->generation = 1;
  s->capture.path = capture.toStdString();
  s->capture.synthetic = synthetic;
  s->config = config ? config : std::make_shared<sessions::RunConfig>();
  s->sweeps.push_back({name, "/tmp/store", records});
  s->active_sweep = 0;
  return s;
}

/// Clicks every plotted point and checks the emitted configuration is the cell's.
void check_clicks(views::ParetoView& view, const std::vector<json>& records) {
  QSignalSpy spy(&view, &views::View::config_requested);
  QCustomPlot* plot = view.plot();
  int clicked = 0;
  for (size_t i = 0; i < view.model().points.size(); ++i) {
    const auto& p = view.model().points[i];
    const QPoint px(qRound(plot->xAxis->coordToPixel(p.r)), qRound(plot->yAxis->coordToPixel(p.q)));
    QVERIFY(plot->rect().contains(px));
    // Points drawn on top of each other pick the nearest (either is a valid click target).
    if (view.point_at(px) != static_cast<int>(i)) continue;
    QTest::mouseClick(plot, Qt::LeftButton, Qt::NoModifier, px);
    QCOMPARE(spy.count(), clicked + 1);
    const auto cfg = spy.at(clicked).at(0).value<sessions::RunConfig>();
    ++clicked;
    std::string record_hash;
    for (const auto& r : records)
      if (r.value("cell", -1) == p.id) record_hash = r.value("config_hash", std::string());
    QCOMPARE(sessions::run_config_hash(cfg), record_hash);
    QVERIFY(spy.at(clicked - 1).at(1).toString().contains(QString("#%1").arg(p.id)));
    QVERIFY(view.point_details(static_cast<int>(i)).contains(QString("cell #%1").arg(p.id)));
  }
  QVERIFY(clicked >= 1);
  // A click on empty plot space emits nothing.
  QTest::mouseClick(plot, Qt::LeftButton, Qt::NoModifier, QPoint(3, 3));
  QCOMPARE(spy.count(), clicked);
}

sessions::RunConfig config_with_overrides() {
  sessions::RunConfig c;
  c.block_size = 256;
  c.block_rows = codec::BlockRows::kPooledHeads;
  c.layers = {0, 2, 3};
  c.include_sliding = true;
  c.boundary = {0, 3};
  c.k = {"besicovitch",
         {{"direction_bits", "8"}, {"magnitude_mode", "quantized"}, {"subtract_mean", "true"}},
         codec::KDomain::kPostRope,
         ""};
  c.v = {"kakeya_pca",
         {{"bit_width", "2"},
          {"share_basis", "true"},
          {"variance_ratio", "0.9"},
          {"pca_method", "randomized"},
          {"rsvd_target_rank", "24"},
          {"outlier_threshold", "3.5"},
          {"seed", "12345"}},
         {},
         "/tmp/V_b2.f32"};
  sessions::LayerOverride o;
  o.layer = 2;
  o.k = sessions::StreamConfig{"q8_0", {}, {}, ""};
  c.overrides = {o};
  c.q_precond = "/tmp/sigma_q.safetensors";
  c.q_precond_skip_layers = {1};
  c.q_precond_auto_skip = false;
  c.target_cond = 1000.0;
  c.turbo_policy = sessions::TurboPolicy::kMode2;
  c.attention_metrics = false;
  c.attn_sample = 0;  // "all"
  c.attn_scale = 0.125;
  c.threads = 2;
  c.backend = sessions::Backend::kAuto;
  return c;
}

}  // namespace

class TestViewsExplore : public QObject {
  Q_OBJECT
 private slots:
  void initTestCase();
  void pareto_empty_state();
  void pareto_demo_sweep();
  void pareto_tiny1m_sweep();
  void config_widget_for_every_param();
  void config_round_trips();
  void config_rejects_bad_values();
  void config_snapshot_and_edits();
  void config_screenshot();
};

void TestViewsExplore::initTestCase() {
  QStandardPaths::setTestModeEnabled(true);
  qRegisterMetaType<sessions::RunConfig>();
}

void TestViewsExplore::pareto_empty_state() {
  views::ParetoView view;
  view.resize(800, 500);
  view.set_snapshot(std::make_shared<views::Snapshot>());
  QVERIFY(!view.has_content());
  const auto labels = view.findChildren<QLabel*>();
  bool found = false;
  for (const auto* l : labels)
    found = found || l->text().contains("no sweep yet — Sweep… (Ctrl+Shift+S)");
  QVERIFY(found);
  QVERIFY(view.model().points.empty());
  QCOMPARE(view.point_at(QPoint(100, 100)), -1);
}

void TestViewsExplore::pareto_demo_sweep() {
  const QString demo = KVWB_DEMO_CAPTURE;
  if (!QFileInfo::exists(demo)) QSKIP("demo capture not built (build target demo_capture)");
  QTemporaryDir dir;
  const json grid = json::parse(R"({"fixed": {"block_size": 256, "layers": "0"}, "grids": [
      {"k_codec": ["q8_0"], "v_codec": ["q8_0"]}, {"k_codec": ["q4_0"], "v_codec": ["q4_0"]},
      {"k_codec": ["turbo3"], "v_codec": ["turbo3"]}]})");
  const auto records = sweep_records(demo, grid, dir.path());
  QCOMPARE(records.size(), size_t{3});

  views::ParetoView view;
  view.resize(900, 600);
  view.show();
  QVERIFY(QTest::qWaitForWindowExposed(&view));
  view.set_snapshot(sweep_snapshot(demo, true, records, "demo"));
  QVERIFY(view.has_content());
  view.set_metric("attn_out_rel_err");
  QCOMPARE(view.model().metric, std::string("attn_out_rel_err"));
  view.plot()->replot();
  check_clicks(view, records);

  // CSV: the model's table of the plotted points.
  QTemporaryDir out;
  const QString csv = out.path() + "/pareto.csv";
  view.export_csv(csv);
  QFile f(csv);
  QVERIFY(f.open(QIODevice::ReadOnly));
  QCOMPARE(f.readAll().toStdString(), views::pareto_model_csv(view.model()));
  for (const char* ext : {"png", "svg", "pdf"}) {
    const QString pic = out.path() + "/pareto." + ext;
    view.export_picture(pic);
    QVERIFY(QFileInfo(pic).size() > 1000);
  }

  // Several sweeps: the sweep selector appears and asks the shell to switch.
  {
    auto two = std::make_shared<views::Snapshot>(*sweep_snapshot(demo, true, records, "demo"));
    two->sweeps.push_back({"second", "/tmp/other", {}});
    view.set_snapshot(two);
    auto* combo = view.findChild<QComboBox*>("pareto.sweep");
    QVERIFY(combo && combo->isVisible());
    QCOMPARE(combo->count(), 2);
    QSignalSpy sweep_spy(&view, &views::View::sweep_requested);
    emit combo->activated(1);
    QCOMPARE(sweep_spy.count(), 1);
    QCOMPARE(sweep_spy.at(0).at(0).toInt(), 1);
  }

  // End-to-end metrics with intervals: the view draws them as error bars.
  {
    auto with_e2e = records;
    with_e2e[0]["result"]["totals"]["e2e"] = {
        {"delta_ppl", -0.4}, {"abs_delta_ppl", 0.4}, {"kl", 0.01}, {"kl_ci", {0.008, 0.013}}};
    view.set_snapshot(sweep_snapshot(demo, true, with_e2e, "demo"));
    view.set_metric("e2e.kl");
    QCOMPARE(view.model().metric, std::string("e2e.kl"));
    int bars = 0;
    for (int i = 0; i < view.plot()->plottableCount(); ++i)
      if (qobject_cast<QCPErrorBars*>(view.plot()->plottable(i))) ++bars;
    QVERIFY(bars > 0);
    bool noted = false;
    for (const auto* l : view.findChildren<QLabel*>()) noted = noted || l->text().contains("Error bars");
    QVERIFY(noted);
  }

  // A failed cell is excluded and listed in the note.
  auto broken = records;
  broken[2] = json{{"cell", 2},
                   {"status", "failed"},
                   {"key", "x"},
                   {"error", {{"code", "FP16_RANGE"}, {"message", "value 1e6 out of fp16 range"}}}};
  view.set_snapshot(sweep_snapshot(demo, true, broken, "demo"));
  bool noted = false;
  for (const auto* l : view.findChildren<QLabel*>())
    noted = noted || l->text().contains("FP16_RANGE");
  QVERIFY(noted);
}

void TestViewsExplore::pareto_tiny1m_sweep() {
  const QString tiny = tiny1m_path();
  if (tiny.isEmpty() || !QFileInfo::exists(tiny))
    QSKIP("real data absent: tiny1m_wikitext2.kvc.h5 not found under KVWB_REAL_DATA_DIR");
  QTemporaryDir dir;
  const json grid = json::parse(R"({"fixed": {"block_size": 256, "layers": "0-1"}, "grids": [
      {"k_codec": ["kakeya_pca"], "v_codec": ["kakeya_pca"], "bits_k": [1, 2, 3, 4]},
      {"k_codec": ["besicovitch"], "v_codec": ["besicovitch"], "k_param": ["direction_bits=5", "direction_bits=8"]},
      {"k_codec": ["turbo2"], "v_codec": ["turbo2"]}, {"k_codec": ["turbo3"], "v_codec": ["turbo3"]},
      {"k_codec": ["turbo4"], "v_codec": ["turbo4"]}, {"k_codec": ["q8_0"], "v_codec": ["q8_0"]},
      {"k_codec": ["q4_0"], "v_codec": ["q4_0"]},
      {"k_codec": ["kivi"], "v_codec": ["kivi"], "k_param": ["bits=2", "bits=4"]},
      {"k_codec": ["fp8_e4m3"], "v_codec": ["fp8_e4m3"]}]})");
  const auto records = sweep_records(tiny, grid, dir.path());
  QVERIFY(records.size() >= 12);
  views::ParetoView view;
  view.resize(1000, 650);
  view.show();
  QVERIFY(QTest::qWaitForWindowExposed(&view));
  view.set_snapshot(sweep_snapshot(tiny, false, records, "tiny1m codecs (layers 0-1)"));
  view.set_metric("attn_kl");
  view.plot()->replot();
  check_clicks(view, records);

  // Mark a frontier cell as current and save the screenshot.
  const auto& front = view.model().result.frontier;
  QVERIFY(!front.empty());
  const int64_t mid = front[front.size() / 2].rep.id;
  auto current = std::make_shared<sessions::RunConfig>(sessions::run_config_from_json(
      records[static_cast<size_t>(mid)]["result"]["config"], "test"));
  view.set_snapshot(sweep_snapshot(tiny, false, records, "tiny1m codecs (layers 0-1)", current));
  QCOMPARE(view.model().metric, std::string("attn_kl"));  // the chosen metric survives
  view.export_picture("/tmp/view_pareto.png");
  QVERIFY(QFileInfo("/tmp/view_pareto.png").size() > 10000);
}

void TestViewsExplore::config_widget_for_every_param() {
  views::ConfigView view;
  for (const char* tag : {"k", "v"}) {
    auto* codec = view.findChild<QComboBox*>(QString(tag) + ".codec");
    QVERIFY(codec);
    QCOMPARE(codec->count(), static_cast<int>(codec::codec_names().size()));
    for (const auto& name : codec::codec_names()) {
      codec->setCurrentText(QString::fromStdString(name));
      QCOMPARE(codec->currentText().toStdString(), name);
      for (const auto& spec : codec::codec_params(name)) {
        auto* w =
            view.findChild<QWidget*>(QString(tag) + ".param." + QString::fromStdString(spec.name));
        QVERIFY2(w, (name + "." + spec.name).c_str());
        QVERIFY(!w->toolTip().isEmpty());
        QVERIFY(w->toolTip().contains(QString::fromStdString(spec.help).left(20)));
        if (spec.type == codec::ParamType::kBool) QVERIFY(qobject_cast<QCheckBox*>(w));
        if (spec.type == codec::ParamType::kChoice) {
          auto* cb = qobject_cast<QComboBox*>(w);
          QVERIFY(cb);
          QCOMPARE(cb->count(), static_cast<int>(spec.choices.size()));
        }
      }
    }
  }
  QVERIFY(view.is_edited());
}

void TestViewsExplore::config_round_trips() {
  qRegisterMetaType<sessions::RunConfig>();
  for (const auto& cfg : {sessions::RunConfig{}, config_with_overrides()}) {
    const json want = sessions::run_config_to_json(cfg);
    // Widgets: load, Run, compare what was emitted.
    views::ConfigView view;
    QSignalSpy spy(&view, &views::View::config_requested);
    view.load_config(cfg);
    QVERIFY(!view.is_edited());
    QVERIFY(view.run());
    QCOMPARE(spy.count(), 1);
    const auto emitted = spy.at(0).at(0).value<sessions::RunConfig>();
    QCOMPARE(spy.at(0).at(1).toString(), QString("edited"));
    QCOMPARE(QString::fromStdString(sessions::run_config_to_json(emitted).dump()),
             QString::fromStdString(want.dump()));
    QCOMPARE(sessions::run_config_hash(emitted), sessions::run_config_hash(cfg));
    QCOMPARE(emitted.backend, cfg.backend);
    QCOMPARE(emitted.threads, cfg.threads);
    QVERIFY(view.error_text().isEmpty());
  }
  // Editing widgets changes exactly what was edited.
  views::ConfigView view;
  QSignalSpy spy(&view, &views::View::config_requested);
  view.load_config(sessions::RunConfig{});
  view.findChild<QComboBox*>("v.codec")->setCurrentText("kivi");
  view.findChild<QComboBox*>("v.param.bits")->setCurrentText("4");
  view.findChild<QLineEdit*>("config.boundary")->setText("0,3");
  auto* sample = view.findChild<QComboBox*>("config.attn_sample");
  QVERIFY(sample && sample->isEnabled());
  QCOMPARE(sample->currentText(), QString("256"));
  sample->setCurrentText("64");
  // The sample only means something with attention metrics on.
  view.findChild<QCheckBox*>("config.attention_metrics")->setChecked(false);
  QVERIFY(!sample->isEnabled());
  view.findChild<QCheckBox*>("config.attention_metrics")->setChecked(true);
  QVERIFY(sample->isEnabled());
  QVERIFY(view.run());
  const auto got = spy.at(0).at(0).value<sessions::RunConfig>();
  sessions::RunConfig want;
  want.v = {"kivi", {{"bits", "4"}}, {}, ""};
  want.boundary = {0, 3};
  want.attn_sample = 64;
  QCOMPARE(sessions::run_config_hash(got), sessions::run_config_hash(want));
}

void TestViewsExplore::config_rejects_bad_values() {
  views::ConfigView view;
  view.resize(1000, 650);
  view.show();
  QVERIFY(QTest::qWaitForWindowExposed(&view));
  QSignalSpy spy(&view, &views::View::config_requested);
  view.load_config(sessions::RunConfig{});
  auto* error = view.findChild<QLabel*>("config.error");
  QVERIFY(error);
  QVERIFY(!error->isVisible());

  // Block size out of the core's range 8..65536.
  view.findChild<QComboBox*>("config.block_size")->setCurrentText("4");
  QTest::mouseClick(view.run_button(), Qt::LeftButton);
  QCOMPARE(spy.count(), 0);
  QVERIFY(error->isVisible());
  QVERIFY2(view.error_text().contains("block_size must be in 8..65536"),
           qPrintable(view.error_text()));
  QVERIFY(error->styleSheet().contains("#c00000"));
  QVERIFY(view.findChild<QComboBox*>("config.block_size")->property("kvwb_invalid").toBool());

  // target_cond must be > 1 (core); a codec parameter must parse (ParamReader).
  view.findChild<QComboBox*>("config.block_size")->setCurrentText("512");
  view.findChild<QLineEdit*>("config.target_cond")->setText("0.5");
  QVERIFY(!view.run());
  QVERIFY(view.error_text().contains("target_cond"));
  view.findChild<QLineEdit*>("config.target_cond")->setText("");
  view.findChild<QLineEdit*>("k.param.seed")->setText("not-a-seed");
  QVERIFY(!view.run());
  QVERIFY2(view.error_text().contains("seed"), qPrintable(view.error_text()));
  QVERIFY(view.findChild<QLineEdit*>("k.param.seed")->property("kvwb_invalid").toBool());
  QVERIFY(!view.findChild<QComboBox*>("config.block_size")->property("kvwb_invalid").toBool());
  view.findChild<QLineEdit*>("k.param.seed")->setText("12");
  view.findChild<QLineEdit*>("config.boundary")->setText("0,x");
  QVERIFY(!view.run());
  QVERIFY(view.error_text().contains("boundary"));
  view.findChild<QLineEdit*>("config.boundary")->setText("0");
  view.findChild<QComboBox*>("config.attn_sample")->setCurrentText("0");
  QVERIFY(!view.run());
  QVERIFY2(view.error_text().contains("attn_sample"), qPrintable(view.error_text()));
  QVERIFY(view.findChild<QComboBox*>("config.attn_sample")->property("kvwb_invalid").toBool());
  view.findChild<QComboBox*>("config.attn_sample")->setCurrentText("all");
  QCOMPARE(spy.count(), 0);

  // Fixing it runs and clears the message.
  view.findChild<QLineEdit*>("config.boundary")->setText("0");
  QVERIFY(view.run());
  QCOMPARE(spy.count(), 1);
  QVERIFY(!error->isVisible());
}

void TestViewsExplore::config_snapshot_and_edits() {
  views::ConfigView view;
  QSignalSpy spy(&view, &views::View::config_requested);
  auto snap = std::make_shared<views::Snapshot>();
  snap->config = std::make_shared<sessions::RunConfig>(config_with_overrides());
  view.set_snapshot(snap);
  QVERIFY(view.has_content());
  QCOMPARE(spy.count(), 0);
  QCOMPARE(views::form_to_json(view.form()),
           views::form_to_json(views::form_from_config(config_with_overrides())));
  auto* status = view.findChild<QLabel*>("config.status");
  QVERIFY(status->text().isEmpty());

  // An edit survives a new snapshot, Revert brings the snapshot's configuration back.
  QTest::keyClicks(view.findChild<QLineEdit*>("config.boundary"), ",1");
  QVERIFY(view.is_edited());
  QCOMPARE(status->text(), QString("edited — Run to apply"));
  auto snap2 = std::make_shared<views::Snapshot>();
  snap2->config = std::make_shared<sessions::RunConfig>();
  view.set_snapshot(snap2);
  QCOMPARE(view.findChild<QLineEdit*>("config.boundary")->text(), QString("0,3,1"));
  QVERIFY(view.findChild<QPushButton*>("config.revert")->isEnabled());
  view.revert();
  QVERIFY(!view.is_edited());
  QCOMPARE(views::form_to_json(view.form()),
           views::form_to_json(views::form_from_config(sessions::RunConfig{})));
  QCOMPARE(spy.count(), 0);
}

void TestViewsExplore::config_screenshot() {
  views::ConfigView view;
  view.resize(1000, 650);
  auto snap = std::make_shared<views::Snapshot>();
  snap->capture.path = "/work/shared/data/real/tiny1m_wikitext2.kvc.h5";
  snap->capture.num_kv_heads = 2;
  snap->capture.head_dim = 64;
  snap->capture.layers = {0, 1, 2, 3};
  sessions::RunConfig cfg;
  cfg.boundary = {0};
  cfg.q_precond = "capture";
  snap->config = std::make_shared<sessions::RunConfig>(cfg);
  view.set_snapshot(snap);
  view.show();
  QVERIFY(QTest::qWaitForWindowExposed(&view));
  view.findChild<QComboBox*>("v.codec")->setCurrentText("q8_0");
  view.findChild<QComboBox*>("config.block_size")->setCurrentText("3");
  view.run();
  QVERIFY(!view.error_text().isEmpty());
  QCoreApplication::processEvents();
  view.export_picture("/tmp/view_config.png");
  QVERIFY(QFileInfo("/tmp/view_config.png").size() > 10000);
}

QTEST_MAIN(TestViewsExplore)
#include "test_views_explore.moc"
