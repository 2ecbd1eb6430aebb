// Dialogs and panels of issue #5 on the real tiny1m capture: the sweep dialog (grid builder,
// start, cancel + resume), the boundary panel (recommendation + apply, budgeted plan + apply,
// inline errors) and the bundle dialog (export + check, export into a non-empty folder).
#include <QCheckBox>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QStandardPaths>
#include <QTabWidget>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>
#include <map>
#include <memory>
#include <set>

#include "app/gui/boundary_panel.h"
#include "app/gui/bundle_dialog.h"
#include "app/gui/dialog_util.h"
#include "app/gui/grid_builder_model.h"
#include "app/gui/slurm_dialog.h"
#include "app/gui/sweep_dialog.h"
#include "app/gui/workbench.h"
#include "base/errors.h"
#include "io/atomic_file.h"
#include "sessions/explore/result_store.h"
#include "sessions/explore/slurm.h"
#include "sessions/explore/sweep.h"
#include "views/config_view.h"

using kvwb::app::BoundaryPanel;
using kvwb::app::BundleDialog;
using kvwb::app::SweepDialog;
using kvwb::app::Workbench;

namespace {

constexpr int kWaitMs = 180000;

QString tiny1m() { return QStringLiteral(KVWB_REAL_DATA_DIR "/tiny1m_wikitext2.kvc.h5"); }

// The configuration the tests start from: block 256 (tiny1m has 256 tokens per sequence; the
// default 512 would leave everything in the hot tail) and variance ratio 0.9 on both streams.
kvwb::sessions::RunConfig base_config() {
  kvwb::sessions::RunConfig c;
  c.block_size = 256;
  c.k.params["variance_ratio"] = "0.9";
  c.v.params["variance_ratio"] = "0.9";
  return c;
}

/// Shows a boundary panel at the size its screenshots are taken at.
void show_panel(BoundaryPanel& panel) {
  panel.resize(900, 720);
  panel.show();
}

void save_shot(QWidget& w, const QString& name) {
  QCoreApplication::processEvents();
  const QString path = QStringLiteral("/tmp/dlg_%1.png").arg(name);
  QVERIFY2(w.grab().save(path), qPrintable(path));
}

}  // namespace

class TestGuiDialogs : public QObject {
  Q_OBJECT

 private:
  std::unique_ptr<Workbench> wb_;
  QTemporaryDir tmp_;

  bool have_data() const { return QFileInfo::exists(tiny1m()); }

  /// Sets the workbench back to base_config() and waits for its run; false when it did not end.
  bool reset_to_base() {
    wb_->set_config(base_config(), "test base");
    return wb_->wait_idle(kWaitMs);
  }

 private slots:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY(tmp_.isValid());
    if (!have_data()) return;
    wb_ = std::make_unique<Workbench>();
    wb_->set_autosave_enabled(false);
    wb_->open_capture(tiny1m());
    wb_->set_config(base_config(), QStringLiteral("test base"));
    QVERIFY(wb_->wait_idle(kWaitMs));
  }

  void cleanupTestCase() {
    if (wb_) {
      wb_->cancel_all();
      wb_->wait_idle(kWaitMs);
    }
  }

  // ---- the grid builder model (no capture needed) ----
  void gridBuilderModel() {
    kvwb::sessions::RunConfig cur = base_config();
    cur.boundary = {1, 3};
    cur.q_precond = "capture";
    kvwb::app::GridBuilderModel m = kvwb::app::make_grid_builder(cur);
    auto fixed = [&](const std::string& k) -> const kvwb::app::GridFixedOption* {
      for (const auto& o : m.fixed)
        if (o.key == k) return &o;
      return nullptr;
    };
    QVERIFY(fixed("block_size") && fixed("block_size")->value == 256);
    QVERIFY(fixed("boundary") && fixed("boundary")->value == nlohmann::json({1, 3}));
    QVERIFY(fixed("q_precond") && fixed("q_precond")->value == "capture");
    QVERIFY(!fixed("turbo_policy"));

    kvwb::app::GridFamily* kakeya = nullptr;
    kvwb::app::GridFamily* kivi = nullptr;
    for (auto& f : m.families) {
      QVERIFY(f.codec != "bf16");
      if (f.codec == "kakeya_pca") kakeya = &f;
      if (f.codec == "kivi") kivi = &f;
    }
    QVERIFY(kakeya && kivi);
    kvwb::app::GridParam* bw = nullptr;
    for (auto& p : kakeya->params) {
      QVERIFY(p.name != "seed" && p.name != "centroids");  // no usable range / table: not offered
      if (p.name == "bit_width") bw = &p;
    }
    QVERIFY(bw);
    QCOMPARE(bw->values.size(), size_t(4));  // 1..4 in full
    for (const auto& v : bw->values) QCOMPARE(v.checked, v.value == "3");
    QVERIFY(bw->varied_values().empty());
    QCOMPARE(kivi->params[0].name, std::string("bits"));
    QCOMPARE(kivi->params[0].values.size(), size_t(2));

    QVERIFY_THROWS_EXCEPTION(kvwb::InvalidArgument, kvwb::app::build_grid(m));
    kakeya->enabled = true;
    bw->values[1].checked = true;  // 2
    bw->values[3].checked = true;  // 4
    QCOMPARE(kvwb::app::param_combos(*kakeya).size(), size_t(3));
    const auto cells = kvwb::sessions::expand_sweep_grid(kvwb::app::build_grid(m), "test");
    QCOMPARE(cells.size(), size_t(3));
    std::set<std::string> widths;
    for (const auto& c : cells) {
      QCOMPARE(c.config.k.params.at("bit_width"), c.config.v.params.at("bit_width"));
      QCOMPARE(c.config.boundary, (std::vector<int>{1, 3}));
      QCOMPARE(c.config.block_size, 256u);
      QCOMPARE(c.config.q_precond, std::string("capture"));
      widths.insert(c.config.k.params.at("bit_width"));
    }
    QCOMPARE(widths, (std::set<std::string>{"2", "3", "4"}));
    const nlohmann::json g = kvwb::app::build_grid(m);
    QVERIFY(nlohmann::json::parse(kvwb::app::grid_to_text(g)) == g);
    kakeya->cross_kv = true;
    QCOMPARE(kvwb::app::grid_cell_estimate(m), size_t(9));
    QCOMPARE(kvwb::sessions::expand_sweep_grid(kvwb::app::build_grid(m), "test").size(), size_t(9));
    // apply_fixed_options: ticked options replace the grid's own, unticked ones leave them.
    const nlohmann::json file_grid = {{"fixed", {{"block_size", 512}, {"layers", {0}}}},
                                      {"k_codec", {"q8_0"}}};
    for (auto& o : m.fixed) o.enabled = o.key != "q_precond";
    const nlohmann::json applied = kvwb::app::apply_fixed_options(file_grid, m.fixed);
    QCOMPARE(applied["fixed"]["block_size"], nlohmann::json(256));
    QCOMPARE(applied["fixed"]["boundary"], nlohmann::json({1, 3}));
    QCOMPARE(applied["fixed"]["layers"], nlohmann::json({0}));
    QVERIFY(!applied["fixed"].contains("q_precond"));
    QCOMPARE(applied["k_codec"], file_grid["k_codec"]);
  }

  // ---- sweep dialog: build, start, wait; the store and the session hold the sweep ----
  void sweepRuns() {
    if (!have_data()) QSKIP("real data absent: " KVWB_REAL_DATA_DIR " (tiny1m capture)");
    SweepDialog dlg(*wb_, nullptr);
    dlg.show();
    QVERIFY(QTest::qWaitForWindowExposed(&dlg));
    QVERIFY(dlg.cell_count() > 0);  // the default grid expands
    QVERIFY(dlg.set_family_enabled("kakeya_pca", true));
    QVERIFY(dlg.set_value_checked("kakeya_pca", "bit_width", "2", true));
    QVERIFY(dlg.set_family_enabled("q8_0", true));
    QVERIFY(!dlg.set_family_enabled("no_such_codec", true));
    QCOMPARE(dlg.cell_count(), size_t(3));
    QVERIFY(dlg.grid_error().isEmpty());
    QVERIFY(dlg.findChild<QPlainTextEdit*>("grid_text")->isReadOnly());
    const QString text = dlg.findChild<QPlainTextEdit*>("grid_text")->toPlainText();
    QVERIFY(text.contains("bit_width=2") && text.contains("q8_0") &&
            text.contains("\"block_size\": 256"));

    const QString grid_file = tmp_.filePath("grid.json");
    QVERIFY(dlg.save_grid_file(grid_file));
    QVERIFY(dlg.load_grid_file(grid_file));
    QCOMPARE(dlg.cell_count(), size_t(3));

    const QString store = tmp_.filePath("store1");
    dlg.set_sweep_name("t-sweep");
    dlg.set_store_dir(store);
    QVERIFY(dlg.start());
    QVERIFY(dlg.running());
    QVERIFY(wb_->wait_idle(kWaitMs));
    QTRY_VERIFY_WITH_TIMEOUT(!dlg.running(), 10000);
    const auto contents = kvwb::sessions::read_result_store(store.toStdString());
    QCOMPARE(contents.records.size(), size_t(3));
    for (const auto& r : contents.records)
      QCOMPARE(r.value("status", std::string()), std::string("ok"));
    QVERIFY2(dlg.summary_text().contains("ran 3, skipped 0, failed 0"),
             qPrintable(dlg.summary_text()));
    QCOMPARE(dlg.result_rows(), 3);
    QCOMPARE(dlg.progress_value(), 3);
    bool listed = false;
    for (const auto& s : wb_->document().sweeps)
      if (s.name == "t-sweep" &&
          QFileInfo(QString::fromStdString(s.store_path)) == QFileInfo(store))
        listed = true;
    QVERIFY(listed);
    save_shot(dlg, "sweep");

    // Starting the finished sweep again into its store without Resume is refused in the dialog's
    // own words (Resume / New folder), not the CLI's (--resume); nothing runs.
    QVERIFY(!dlg.start());
    QVERIFY(!dlg.running() && !wb_->busy());
    QVERIFY2(dlg.status_text().contains("Resume") && dlg.status_text().contains("New folder"),
             qPrintable(dlg.status_text()));
    QVERIFY2(!dlg.status_text().contains("--resume"), qPrintable(dlg.status_text()));
    QCOMPARE(kvwb::sessions::read_result_store(store.toStdString()).records.size(), size_t(3));
    dlg.findChild<QPushButton*>("new_store")->click();
    QVERIFY(dlg.store_dir() != store);
    QVERIFY(!QFileInfo::exists(dlg.store_dir()));
  }

  // ---- end-to-end axes (issue #7): every cell of a dialog sweep gets totals.e2e ----
  void sweepWithEndToEndAxes() {
    const QString model = QStringLiteral(KVWB_REAL_DATA_DIR "/tiny1m");
    const QString text = QStringLiteral(KVWB_REAL_DATA_DIR "/text/TinyStories-valid_excerpt.txt");
    if (!have_data() || !QFileInfo::exists(model) || !QFileInfo::exists(text))
      QSKIP("real data absent: " KVWB_REAL_DATA_DIR " (tiny1m capture, model, TinyStories text)");
    SweepDialog dlg(*wb_, nullptr);
    dlg.show();
    QVERIFY(QTest::qWaitForWindowExposed(&dlg));
    dlg.set_grid(nlohmann::json::parse(R"({"fixed": {"block_size": 256},
        "k_codec": ["bf16", "q4_0"], "v_codec": ["bf16"]})"),
                 "test");
    QCOMPARE(dlg.cell_count(), size_t(2));
    // Without a text, or without a model while the box is ticked, the request is refused
    // inline (never a silent proxy-only sweep).
    dlg.set_end_to_end(model, QString(), 96, 24, 1);
    QVERIFY(dlg.end_to_end_enabled());
    dlg.set_sweep_name("e2e");
    const QString store = tmp_.filePath("store-e2e");
    dlg.set_store_dir(store);
    QVERIFY(!dlg.start());
    QVERIFY(dlg.status_text().contains("model folder and a text file"));
    dlg.set_end_to_end(QString(), text, 96, 24, 1);
    dlg.findChild<QCheckBox*>("e2e")->setChecked(true);
    QVERIFY(!dlg.start());
    QVERIFY2(dlg.status_text().contains("model folder and a text file"),
             qPrintable(dlg.status_text()));
    QVERIFY(!wb_->busy());
    dlg.set_end_to_end(model, text, 96, 24, 1);
    QVERIFY(dlg.start());
    QVERIFY(wb_->wait_idle(kWaitMs));
    QTRY_VERIFY_WITH_TIMEOUT(!dlg.running(), 10000);
    const auto contents = kvwb::sessions::read_result_store(store.toStdString());
    QCOMPARE(contents.records.size(), size_t(2));
    QCOMPARE(contents.meta["e2e"]["passages"].get<int>(), 1);
    QCOMPARE(contents.meta["e2e"]["context"].get<int>(), 96);
    for (const auto& r : contents.records) {
      const auto& e = r["result"]["totals"]["e2e"];
      if (r["options"]["k_codec"] == "bf16") {  // bf16/bf16 reproduces the reference cache exactly
        QCOMPARE(e["delta_ppl"].get<double>(), 0.0);
        QCOMPARE(e["top1"].get<double>(), 100.0);
      } else {
        QVERIFY(e["kl"].get<double>() > 0.0);
      }
    }
    // The session's snapshot carries the records for the Pareto view.
    const auto snap = wb_->snapshot();
    QVERIFY(snap->active_sweep >= 0);
    QCOMPARE(snap->sweeps[static_cast<size_t>(snap->active_sweep)].records.size(), size_t(2));
    dlg.set_end_to_end(QString(), QString());
    QVERIFY(!dlg.end_to_end_enabled());
  }

  // ---- the fixed run-level options follow the current configuration ----
  void sweepFixedFollowsConfig() {
    if (!have_data()) QSKIP("real data absent: " KVWB_REAL_DATA_DIR " (tiny1m capture)");
    SweepDialog dlg(*wb_, nullptr);
    QVERIFY(dlg.set_family_enabled("q8_0", true));
    QVERIFY(!dlg.grid()["fixed"].contains("boundary"));
    wb_->set_boundary({2});
    QCOMPARE(dlg.grid()["fixed"]["boundary"], nlohmann::json({2}));
    for (const auto& c : kvwb::sessions::expand_sweep_grid(dlg.grid(), "test"))
      QCOMPARE(c.config.boundary, std::vector<int>{2});
    QVERIFY(dlg.set_fixed_enabled("boundary", false));
    QVERIFY(!dlg.grid()["fixed"].contains("boundary"));
    QCOMPARE(dlg.cell_count(), size_t(1));
    // The default grid (and a loaded one) gets the ticked settings too: the dialog applies what
    // its list shows, and its grid text shows what it applies.
    QVERIFY(dlg.set_fixed_enabled("boundary", true));
    dlg.set_grid(kvwb::app::default_sweep_grid(), "default grid");
    QCOMPARE(dlg.grid()["fixed"]["boundary"], nlohmann::json({2}));
    const QString text = dlg.findChild<QPlainTextEdit*>("grid_text")->toPlainText();
    QVERIFY2(text.contains("\"boundary\": [2]"), qPrintable(text));
    for (const auto& c : kvwb::sessions::expand_sweep_grid(dlg.grid(), "test"))
      QCOMPARE(c.config.boundary, std::vector<int>{2});
    QVERIFY(dlg.set_fixed_enabled("boundary", false));
    QVERIFY(!dlg.grid()["fixed"].contains("boundary"));
    for (const auto& c : kvwb::sessions::expand_sweep_grid(dlg.grid(), "test"))
      QVERIFY(c.config.boundary.empty());
    QVERIFY(reset_to_base());
  }

  // ---- cancel midway: finished cells stay; Resume completes the store ----
  void sweepCancelResume() {
    if (!have_data()) QSKIP("real data absent: " KVWB_REAL_DATA_DIR " (tiny1m capture)");
    SweepDialog dlg(*wb_, nullptr);
    dlg.show();
    QVERIFY(dlg.set_family_enabled("kakeya_pca", true));
    for (const char* b : {"1", "2", "4"})
      QVERIFY(dlg.set_value_checked("kakeya_pca", "bit_width", b, true));
    QVERIFY(dlg.set_family_enabled("q4_0", true));
    QVERIFY(dlg.set_family_enabled("turbo3", true));
    QCOMPARE(dlg.cell_count(), size_t(6));
    const QString store = tmp_.filePath("store2");
    dlg.set_sweep_name("t-cancel");
    dlg.set_store_dir(store);
    QVERIFY(dlg.start());
    QTRY_VERIFY_WITH_TIMEOUT(dlg.progress_value() >= 1, kWaitMs);
    dlg.cancel();
    QVERIFY(wb_->wait_idle(kWaitMs));
    QTRY_VERIFY_WITH_TIMEOUT(!dlg.running(), 10000);
    const size_t kept = kvwb::sessions::read_result_store(store.toStdString()).records.size();
    QVERIFY2(kept >= 1 && kept < 6, qPrintable(QString::number(kept)));
    QVERIFY2(dlg.summary_text().startsWith("Cancelled"), qPrintable(dlg.summary_text()));
    QVERIFY2(dlg.summary_text().contains(QStringLiteral("holds %1 of 6").arg(kept)),
             qPrintable(dlg.summary_text()));
    QCOMPARE(dlg.result_rows(), static_cast<int>(kept));
    save_shot(dlg, "sweep_cancelled");

    dlg.set_resume(true);
    QVERIFY(dlg.start());
    QVERIFY(wb_->wait_idle(kWaitMs));
    QTRY_VERIFY_WITH_TIMEOUT(!dlg.running(), 10000);
    QCOMPARE(kvwb::sessions::read_result_store(store.toStdString()).records.size(), size_t(6));
    QVERIFY2(
        dlg.summary_text().contains(QStringLiteral("ran %1, skipped %2").arg(6 - kept).arg(kept)),
        qPrintable(dlg.summary_text()));
  }

  // ---- boundary recommendation → Apply ----
  void boundaryRecommend() {
    if (!have_data()) QSKIP("real data absent: " KVWB_REAL_DATA_DIR " (tiny1m capture)");
    QVERIFY(reset_to_base());
    BoundaryPanel panel(*wb_, nullptr);
    show_panel(panel);
    panel.set_max_layers(2);
    QVERIFY(panel.recommend());
    QVERIFY(wb_->wait_idle(kWaitMs));
    QTRY_VERIFY_WITH_TIMEOUT(panel.recommendation() != nullptr, 10000);
    const auto& rec = *panel.recommendation();
    QVERIFY(panel.recommend_error().isEmpty());
    QCOMPARE(rec.ranking.size(), size_t(4));
    QCOMPARE(rec.proposals.size(), size_t(2));
    QCOMPARE(panel.ranking_rows(), 4);
    QCOMPARE(panel.proposal_rows(), 3);  // baseline + 2
    // The table shows the core's numbers.
    auto* ranking = panel.findChild<QTableWidget*>("ranking");
    QCOMPARE(ranking->item(0, 1)->text(), QString::number(rec.ranking[0].layer));
    QCOMPARE(ranking->item(0, 2)->text(), kvwb::app::dlg::num(rec.ranking[0].score));
    auto* props = panel.findChild<QTableWidget*>("proposals");
    QCOMPARE(props->item(2, 2)->text(), QString::asprintf("%.4f", rec.proposals[1].ratio));
    QVERIFY(rec.proposals[1].ratio < rec.baseline.ratio);

    const std::vector<int> chosen = rec.proposals[1].boundary;
    QCOMPARE(chosen.size(), size_t(2));
    auto* apply = panel.findChild<QPushButton*>("apply_2");  // row 2 = proposal of size 2
    QVERIFY(apply && apply->isEnabled());
    QTest::mouseClick(apply, Qt::LeftButton);
    QCOMPARE(wb_->current_config().boundary, chosen);
    QTRY_VERIFY(!panel.findChild<QPushButton*>("apply_2")->isEnabled());  // now "Current"
    QVERIFY(panel.apply_proposal(-1));  // the baseline: no boundary
    QVERIFY(wb_->current_config().boundary.empty());
    QVERIFY(panel.apply_proposal(1));
    QCOMPARE(wb_->current_config().boundary, chosen);
    QVERIFY(wb_->wait_idle(kWaitMs));
    QVERIFY(!panel.apply_proposal(7));
    panel.tabs()->setCurrentIndex(0);
    save_shot(panel, "boundary");
  }

  // ---- budgeted plan target 3 → Apply plan; planning again shows the core's error inline ----
  void budgetPlan() {
    if (!have_data()) QSKIP("real data absent: " KVWB_REAL_DATA_DIR " (tiny1m capture)");
    QVERIFY(reset_to_base());
    BoundaryPanel panel(*wb_, nullptr);
    show_panel(panel);
    panel.tabs()->setCurrentIndex(1);
    panel.set_target_ratio(3.0);
    QVERIFY(panel.set_metric("attn_out_rel_err"));
    QVERIFY(!panel.set_metric("bogus"));
    QVERIFY(panel.plan());
    QVERIFY(wb_->wait_idle(kWaitMs));
    QTRY_VERIFY_WITH_TIMEOUT(panel.plan_result() != nullptr, 10000);
    const auto& plan = *panel.plan_result();
    QVERIFY(panel.plan_error().isEmpty());
    QCOMPARE(panel.plan_rows(), static_cast<int>(plan.layers.size()));
    QCOMPARE(plan.layers.size(), size_t(4));
    QVERIFY(plan.measured_ratio >= 3.0);
    QCOMPARE(plan.measured_bytes, plan.promised_bytes);
    auto* totals = panel.findChild<QTableWidget*>("plan_totals");
    QCOMPARE(totals->item(1, 1)->text(), QString::asprintf("%.4f", plan.measured_ratio));
    QVERIFY(!plan.config.overrides.empty());
    save_shot(panel, "plan");

    QVERIFY(panel.apply_plan());
    const auto cfg = wb_->current_config();
    QCOMPARE(cfg.overrides.size(), plan.config.overrides.size());
    QCOMPARE(kvwb::sessions::run_config_hash(cfg), kvwb::sessions::run_config_hash(plan.config));
    QVERIFY(wb_->wait_idle(kWaitMs));

    // Issue #13: after Apply plan the configuration editor shows the plan's per-layer widths, and
    // the global stream sections say that layers override them.
    {
      kvwb::views::ConfigView view;
      view.resize(1100, 900);
      view.set_snapshot(wb_->snapshot());
      const auto& table = view.layer_table_model();
      QCOMPARE(table.rows.size(), size_t(4));
      QCOMPARE(view.layer_table()->rowCount(), 4);
      for (const auto& l : plan.layers) {
        const auto& row = table.rows[static_cast<size_t>(l.layer)];
        QCOMPARE(row.layer, l.layer);
        QCOMPARE(row.boundary, l.boundary);
        if (l.boundary) continue;
        QCOMPARE(row.k_bits, l.k_bits);
        QCOMPARE(row.v_bits, l.v_bits);
        QCOMPARE(view.layer_table()->item(l.layer, 2)->text(), QString::fromStdString(l.k_bits));
      }
      QVERIFY(!view.override_notice_text(true).isEmpty() ||
              !view.override_notice_text(false).isEmpty());
      save_shot(view, "plan_config_table");
    }

    // Issue #13: the applied plan exports as a bundle (refused before): per-layer widths give a
    // version 2 bundle with one table per (stream, width), the check passes, and the reference
    // plugin's incompatibility is a warning (counted once) that the headline reports.
    {
      std::map<std::string, std::set<std::string>> widths;
      for (const auto& l : plan.layers)
        if (!l.boundary) {
          widths["K"].insert(l.k_bits);
          widths["V"].insert(l.v_bits);
        }
      const bool per_layer = widths["K"].size() > 1 || widths["V"].size() > 1;
      const QString dest = tmp_.filePath("plan_bundle");
      BundleDialog dlg(*wb_, nullptr);
      dlg.show();
      dlg.set_destination(dest);
      QVERIFY(dlg.start_export());
      QVERIFY(wb_->wait_idle(kWaitMs));
      QTRY_VERIFY_WITH_TIMEOUT(dlg.report().has_value() || !dlg.error_text().isEmpty(), 10000);
      QVERIFY2(dlg.error_text().isEmpty(), qPrintable(dlg.error_text()));
      QVERIFY(dlg.report()->ok);
      QVERIFY(dlg.headline().startsWith("Bundle check passed"));
      QVERIFY2(dlg.headline().contains("warning"), qPrintable(dlg.headline()));
      const auto man = nlohmann::json::parse(kvwb::io::read_file((dest + "/MANIFEST.json").toStdString()));
      QCOMPARE(man["bundle_format_version"].get<int>(), per_layer ? 2 : 1);
      for (const auto& [stream, bits] : widths)
        for (const auto& b : bits)
          QVERIFY2(QFileInfo::exists(dest + "/" + QString::fromStdString(stream + "_b" + b + "_centroids.f32")),
                   qPrintable(QString::fromStdString(stream + " b" + b)));
      int per_layer_warnings = 0;
      for (const auto& w : dlg.report()->warnings)
        if (w.find("reference plugin compatibility: per-layer bit widths") != std::string::npos) ++per_layer_warnings;
      QCOMPARE(per_layer_warnings, (widths["K"].size() > 1 ? 1 : 0) + (widths["V"].size() > 1 ? 1 : 0));
      QVERIFY(dlg.findChild<QTabWidget*>("report_tabs")
                  ->tabText(1)
                  .contains(QString::number(dlg.report()->warnings.size())));
      dlg.findChild<QTabWidget*>("report_tabs")->setCurrentIndex(1);
      save_shot(dlg, "bundle_plan_v2");
    }

    // The applied plan has per-layer overrides: the core refuses to plan on top of it.
    QVERIFY(panel.plan());
    QVERIFY(wb_->wait_idle(kWaitMs));
    QTRY_VERIFY_WITH_TIMEOUT(!panel.plan_error().isEmpty(), 10000);
    QVERIFY2(panel.plan_error().startsWith("error[INVALID_ARGUMENT]"),
             qPrintable(panel.plan_error()));
    QVERIFY(panel.plan_result() == nullptr);
    save_shot(panel, "plan_error");
  }

  // ---- bundle export + check; export into a non-empty folder without force ----
  void bundleExport() {
    if (!have_data()) QSKIP("real data absent: " KVWB_REAL_DATA_DIR " (tiny1m capture)");
    kvwb::sessions::RunConfig cfg = base_config();
    cfg.q_precond = "capture";
    wb_->set_config(cfg, "test bundle");
    QVERIFY(wb_->wait_idle(kWaitMs));
    const QString dest = tmp_.filePath("bundle");
    {
      BundleDialog dlg(*wb_, nullptr);
      dlg.show();
      dlg.set_destination(dest);
      dlg.set_run_id("test-run");
      QVERIFY(dlg.start_export());
      QVERIFY(wb_->wait_idle(kWaitMs));
      QTRY_VERIFY_WITH_TIMEOUT(dlg.report().has_value() || !dlg.error_text().isEmpty(), 10000);
      QVERIFY2(dlg.error_text().isEmpty(), qPrintable(dlg.error_text()));
      QVERIFY(dlg.report()->ok);
      QVERIFY(dlg.report()->errors.empty());
      QVERIFY(!dlg.report()->checks.empty());
      QCOMPARE(dlg.report()->roundtrip.size(), size_t(8));  // 4 layers x 2 kv heads
      QVERIFY(dlg.headline().startsWith("Bundle check passed"));
      // The reference plugin's compatibility issues (data-dependent d_eff at variance ratio 0.9)
      // count as warnings of the check, and the headline says so.
      int plugin = 0;
      for (const auto& w : dlg.report()->warnings)
        if (w.rfind("reference plugin compatibility: ", 0) == 0) ++plugin;
      QVERIFY(plugin >= 2);  // K and V
      QVERIFY2(dlg.headline().contains("warning"), qPrintable(dlg.headline()));
      QVERIFY(dlg.findChild<QTabWidget*>("report_tabs")
                  ->tabText(1)
                  .contains(QString::number(dlg.report()->warnings.size())));
      QVERIFY(QFileInfo::exists(dest + "/MANIFEST.json"));
      QCOMPARE(dlg.findChild<QTableWidget*>("roundtrip")->rowCount(), 8);
      save_shot(dlg, "bundle");
      dlg.findChild<QTabWidget*>("report_tabs")->setCurrentIndex(3);
      save_shot(dlg, "bundle_roundtrip");
    }
    {
      BundleDialog dlg(*wb_, nullptr);
      dlg.show();
      dlg.set_destination(dest);
      QVERIFY(dlg.start_export());
      QVERIFY(wb_->wait_idle(kWaitMs));
      QTRY_VERIFY_WITH_TIMEOUT(!dlg.error_text().isEmpty(), 10000);
      QVERIFY2(dlg.error_text().contains("exists"), qPrintable(dlg.error_text()));
      QVERIFY(!dlg.report().has_value());
      QVERIFY(QFileInfo::exists(dest + "/MANIFEST.json"));  // the old bundle is untouched
      save_shot(dlg, "bundle_error");

      // Check the existing bundle (and an empty folder as a partial artefact).
      QVERIFY(dlg.start_check(dest));
      QVERIFY(wb_->wait_idle(kWaitMs));
      QTRY_VERIFY_WITH_TIMEOUT(dlg.report().has_value(), 10000);
      QVERIFY(dlg.report()->ok);
      bool counted = false;  // a check of an existing bundle counts them too
      for (const auto& w : dlg.report()->warnings)
        counted = counted || w.rfind("reference plugin compatibility: ", 0) == 0;
      QVERIFY(counted);
      QVERIFY(QDir().mkpath(tmp_.filePath("empty")));
      QVERIFY(dlg.start_check(tmp_.filePath("empty")));
      QVERIFY(wb_->wait_idle(kWaitMs));
      QTRY_VERIFY_WITH_TIMEOUT(dlg.report().has_value(), 10000);
      QVERIFY(!dlg.report()->ok);
      QVERIFY(dlg.headline().contains("FAILED"));
    }
  }

  // ---- a continuation arriving after its dialog was destroyed is dropped ----
  // ---- issue #15: Run → Sweep… writes the Slurm job array + merge scripts (dry run) ----
  void slurmScripts() {
    if (!have_data()) QSKIP("real data absent: " KVWB_REAL_DATA_DIR " (tiny1m capture)");
    SweepDialog dlg(*wb_, nullptr);
    dlg.show();
    dlg.set_grid(nlohmann::json::parse(R"({"k_codec": ["kakeya_pca"], "bits_k": [2, 3, 4],
                                           "variance_ratio": [0.95, 1.0], "fixed": {"block_size": 256}})"),
                 "six cells");
    QCOMPARE(dlg.cell_count(), size_t(6));
    kvwb::app::SlurmDialog* s = dlg.open_slurm_dialog();
    QVERIFY(s);
    QVERIFY(QTest::qWaitForWindowExposed(s));
    const QString folder = tmp_.filePath("slurm run");  // a space: paths are quoted in the scripts
    s->set_folder(folder);
    s->set_shards(3);
    s->set_partition("gpu");
    s->set_time("00:30:00");
    s->set_cpus_per_task(2);
    s->set_sbatch_args("--qos=high --comment='two words'");
    s->set_kvwb("/opt/kvwb/bin/kvwb");
    QVERIFY(s->preview());
    QVERIFY(wb_->wait_idle(kWaitMs));
    QTRY_VERIFY_WITH_TIMEOUT(!s->busy(), 10000);
    QVERIFY2(s->script_text().contains("--array=0-2"), qPrintable(s->status_text() + s->script_text()));
    QVERIFY(!QFileInfo::exists(folder));  // a preview writes nothing

    QVERIFY(s->write_scripts());
    QVERIFY(wb_->wait_idle(kWaitMs));
    QTRY_VERIFY_WITH_TIMEOUT(!s->busy(), 10000);
    QVERIFY2(s->status_text().contains("kvwb slurm submit --resume"), qPrintable(s->status_text()));
    const auto sw = kvwb::sessions::read_slurm_folder(folder.toStdString());
    QCOMPARE(sw.shards, size_t(3));
    QCOMPARE(sw.cells, size_t(6));
    QCOMPARE(sw.kvwb, std::string("/opt/kvwb/bin/kvwb"));
    QCOMPARE(sw.capture, QFileInfo(tiny1m()).absoluteFilePath().toStdString());
    QCOMPARE(sw.resources.partition, std::string("gpu"));
    QCOMPARE(sw.resources.cpus_per_task, 2);
    QCOMPARE(sw.resources.sbatch_args, (std::vector<std::string>{"--qos=high", "--comment=two words"}));
    QVERIFY(sw.submissions.empty());
    for (const auto& f : {sw.array_script_path(), sw.merge_script_path(), sw.grid_path()})
      QVERIFY2(QFileInfo::exists(QString::fromStdString(f)), f.c_str());
    // The dialog shows what `kvwb slurm submit --dry-run` prints for the same folder.
    const std::string dry = kvwb::sessions::slurm_dry_run_text(sw, {0, 1, 2});
    const std::string shown = s->script_text().toStdString();
    QCOMPARE(shown.substr(shown.find('\n')), dry.substr(dry.find('\n')));
    save_shot(*s, "slurm");
    // A second write into the now non-empty folder is refused inline.
    QVERIFY(s->write_scripts());
    QVERIFY(wb_->wait_idle(kWaitMs));
    QTRY_VERIFY_WITH_TIMEOUT(!s->busy(), 10000);
    QVERIFY2(s->status_text().contains("not empty"), qPrintable(s->status_text()));
  }

  void destroyedBeforeContinuation() {
    if (!have_data()) QSKIP("real data absent: " KVWB_REAL_DATA_DIR " (tiny1m capture)");
    auto dlg = std::make_unique<BundleDialog>(*wb_, nullptr);
    QVERIFY(dlg->start_check(tmp_.filePath("bundle")));
    dlg.reset();
    QVERIFY(wb_->wait_idle(kWaitMs));
  }
};

QTEST_MAIN(TestGuiDialogs)
#include "test_gui_dialogs.moc"
