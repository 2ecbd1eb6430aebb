// The Pareto model without Qt: on hand-made records the frontier, duplicates, excluded cells,
// families, the current configuration, the log axis and the CSV are exactly what the records
// say; on real sweeps (demo capture, tiny1m when present) the model's frontier equals the core's
// (sessions::pareto_points_from_records + pareto_frontier) for every offered metric.
#include <gtest/gtest.h>

#include <algorithm>

#include "codec/codec.h"
#include "sessions/analysis/pareto.h"
#include "sessions/explore/result_store.h"
#include "sessions/explore/sweep.h"
#include "tests/views/models/view_model_fixture.h"
#include "views/models/pareto_model.h"

namespace kvwb::views {
namespace {

using nlohmann::json;
using test::contains;

/// A successful result-store record with the totals the Pareto metrics read.
json ok_record(int64_t cell, const std::string& k_codec, const std::string& v_codec, double ratio,
               std::optional<double> attn_out, const json& options) {
  json totals = {{"k", {{"rel_mse", 0.001 * double(cell + 1)}}}, {"v", {{"rel_mse", 0.002}}}};
  if (attn_out)
    totals["attention"] = {{"attn_out_rel_err", *attn_out}, {"attn_kl", *attn_out / 10}};
  return {{"cell", cell},
          {"status", "ok"},
          {"key", "key" + std::to_string(cell)},
          {"options", options},
          {"config_hash", "hash" + std::to_string(cell)},
          {"result",
           {{"config", {{"k", {{"codec", k_codec}}}, {"v", {{"codec", v_codec}}}}},
            {"ratio_vs_bf16", ratio},
            {"total_bytes", uint64_t(1000 * (cell + 1))},
            {"totals", totals}}}};
}

std::shared_ptr<Snapshot> sweep_snapshot(
    const std::vector<json>& records, std::shared_ptr<const sessions::RunConfig> config = nullptr) {
  auto s = std::make_shared<Snapshot>();
  s->capture.path = "/tmp/capture.kvc.h5";
  s->config = config ? config : std::make_shared<const sessions::RunConfig>();
  s->sweeps.push_back({"sweep", "/tmp/store", records});
  s->active_sweep = 0;
  return s;
}

/// Seven cells: 0, 1 and 4 on the frontier, 3 a duplicate of 1, 2 dominated, 5 failed, 6 n/a.
std::vector<json> handmade_records() {
  std::vector<json> r;
  r.push_back(ok_record(0, "q8_0", "q8_0", 2.0, 0.01, {{"k_codec", "q8_0"}}));
  r.push_back(ok_record(1, "q4_0", "q4_0", 3.5, 0.05, {{"k_codec", "q4_0"}, {"bits", 4}}));
  r.push_back(ok_record(2, "turbo3", "turbo3", 3.0, 0.08, {{"k_codec", "turbo3"}}));
  r.push_back(ok_record(3, "kakeya_pca", "kakeya_pca", 3.5, 0.05, {{"k_codec", "kakeya_pca"}}));
  r.push_back(ok_record(4, "kakeya_pca", "q8_0", 5.0, 2.0, {{"label", "a \"quoted\", b"}}));
  r.push_back({{"cell", 5},
               {"status", "failed"},
               {"key", "key5"},
               {"error", {{"code", "FP16_RANGE"}, {"message", "value 1e6 out of fp16 range"}}}});
  r.push_back(ok_record(6, "q4_0", "q4_0", 3.9, std::nullopt, json::object()));
  return r;
}

const ParetoPlotPoint& point(const ParetoModel& m, int64_t id) {
  for (const auto& p : m.points)
    if (p.id == id) return p;
  throw std::runtime_error("no point #" + std::to_string(id));
}

std::vector<int64_t> frontier_ids(const sessions::ParetoResult& r) {
  std::vector<int64_t> ids;
  for (const auto& f : r.frontier) ids.push_back(f.rep.id);
  return ids;
}

/// For every metric the model offers, its points and frontier are the core's.
void expect_frontier_equals_core(const Snapshot& snap, const std::vector<json>& records) {
  const auto metrics = build_pareto_model(snap, "").metrics;
  ASSERT_FALSE(metrics.empty());
  for (const auto& metric : metrics) {
    SCOPED_TRACE(metric);
    const ParetoModel m = build_pareto_model(snap, metric);
    EXPECT_EQ(m.metric, metric);
    const auto pts = sessions::pareto_points_from_records(records, metric);
    const auto core = sessions::pareto_frontier(pts);
    EXPECT_EQ(frontier_ids(m.result), frontier_ids(core));
    ASSERT_EQ(m.result.frontier.size(), core.frontier.size());
    for (size_t i = 0; i < core.frontier.size(); ++i) {
      EXPECT_EQ(m.result.frontier[i].rep.r, core.frontier[i].rep.r);
      EXPECT_EQ(m.result.frontier[i].rep.q, core.frontier[i].rep.q);
    }
    EXPECT_EQ(m.result.excluded.size(), core.excluded.size());
    EXPECT_EQ(m.points.size() + m.excluded.size(), records.size());
    size_t on = 0;
    for (const auto& p : m.points) {
      on += p.on_frontier ? 1 : 0;
      const auto it = std::find_if(pts.begin(), pts.end(),
                                   [&](const sessions::ParetoPoint& q) { return q.id == p.id; });
      ASSERT_NE(it, pts.end());
      EXPECT_EQ(p.r, it->r);
      EXPECT_EQ(p.q, it->q);
    }
    EXPECT_EQ(on, core.frontier.size());
  }
}

TEST(ParetoModel, HandmadeFrontierDuplicatesAndExclusions) {
  const auto records = handmade_records();
  const ParetoModel m = build_pareto_model(*sweep_snapshot(records), "");
  EXPECT_EQ(m.sweep_name, "sweep");
  EXPECT_EQ(m.records, 7u);
  EXPECT_EQ(m.metric, "attn_out_rel_err");  // the default when present
  ASSERT_EQ(m.points.size(), 5u);
  for (size_t i = 0; i < m.points.size(); ++i) EXPECT_EQ(m.points[i].id, int64_t(i));
  EXPECT_EQ(frontier_ids(m.result), (std::vector<int64_t>{0, 1, 4}));
  EXPECT_TRUE(point(m, 0).on_frontier);
  EXPECT_TRUE(point(m, 1).on_frontier);
  EXPECT_FALSE(point(m, 2).on_frontier);
  EXPECT_EQ(point(m, 2).duplicate_of, -1);
  EXPECT_FALSE(point(m, 3).on_frontier);  // same (R, Q) as #1, which represents both
  EXPECT_EQ(point(m, 3).duplicate_of, 1);
  EXPECT_TRUE(point(m, 4).on_frontier);
  EXPECT_EQ(point(m, 4).r, 5.0);
  EXPECT_EQ(point(m, 4).q, 2.0);
  ASSERT_EQ(m.excluded.size(), 2u);
  EXPECT_EQ(m.excluded[0], "#5 failed: FP16_RANGE value 1e6 out of fp16 range");
  EXPECT_EQ(m.excluded[1], "#6 n/a: attn_out_rel_err");
  // Labels, codecs, families (legend in order of first appearance), bytes, hashes.
  EXPECT_EQ(point(m, 1).label, "bits=4 k_codec=q4_0");
  EXPECT_EQ(point(m, 1).codec, "q4_0");
  EXPECT_EQ(point(m, 4).codec, "kakeya_pca / q8_0");
  EXPECT_EQ(point(m, 4).family, "Kakeya-PCA / ggml quants");
  EXPECT_EQ(m.families, (std::vector<std::string>{"ggml quants", "TurboQuant", "Kakeya-PCA",
                                                  "Kakeya-PCA / ggml quants"}));
  EXPECT_EQ(point(m, 2).total_bytes, 3000u);
  EXPECT_EQ(point(m, 2).config_hash, "hash2");
  EXPECT_EQ(point(m, 2).config, records[2]["result"]["config"]);
  // Q spans 0.01 .. 2.0 (>= 100×): log axis. No current configuration among the cells.
  EXPECT_TRUE(m.log_y);
  EXPECT_EQ(m.current, -1);
}

TEST(ParetoModel, MetricsCurrentConfigurationAndLinearAxis) {
  auto records = handmade_records();
  const auto metrics = available_metrics(records);
  // Offered in the core's order, only when some ok record has a value (no Σ_q, no top-1 here).
  EXPECT_EQ(metrics,
            (std::vector<std::string>{"k_rel_mse", "v_rel_mse", "attn_kl", "attn_out_rel_err"}));
  // The current configuration is marked by its hash.
  auto cfg =
      std::make_shared<const sessions::RunConfig>(test::config_of({{"v", {{"codec", "q4_0"}}}}));
  records[2]["config_hash"] = sessions::run_config_hash(*cfg);
  const ParetoModel m = build_pareto_model(*sweep_snapshot(records, cfg), "k_rel_mse");
  EXPECT_EQ(m.metric, "k_rel_mse");
  ASSERT_EQ(m.current, 2);
  EXPECT_EQ(m.points[2].id, 2);
  // k_rel_mse spans 0.001 .. 0.007 (< 100×): linear axis; #6 has it, so only #5 is excluded.
  EXPECT_FALSE(m.log_y);
  EXPECT_EQ(m.points.size(), 6u);
  EXPECT_EQ(m.excluded.size(), 1u);
  // An unknown metric falls back to the default.
  EXPECT_EQ(build_pareto_model(*sweep_snapshot(records), "no_such_metric").metric,
            "attn_out_rel_err");
}

TEST(ParetoModel, EndToEndMetricsWhenARecordHasThem) {
  auto records = handmade_records();
  auto metrics = available_metrics(records);
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), "e2e.delta_ppl"), 0);
  records[1]["result"]["totals"]["e2e"] = {
      {"delta_ppl", -0.4}, {"abs_delta_ppl", 0.4}, {"kl", 0.01}, {"verdict", "ok"}};
  metrics = available_metrics(records);
  for (const char* name : {"e2e.delta_ppl", "e2e.abs_delta_ppl", "e2e.kl", "attn_out_rel_err"})
    EXPECT_EQ(std::count(metrics.begin(), metrics.end(), name), 1) << name;
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), "e2e.one_minus_top1"), 0);
  EXPECT_EQ(std::count(metrics.begin(), metrics.end(), "e2e.verdict"), 0);  // not a number
  const ParetoModel m = build_pareto_model(*sweep_snapshot(records), "e2e.kl");
  ASSERT_EQ(m.points.size(), 1u);
  EXPECT_EQ(m.points[0].id, 1);
  EXPECT_EQ(m.points[0].q, 0.01);
  EXPECT_EQ(m.excluded.size(), 6u);
  EXPECT_FALSE(m.has_ci);  // no interval recorded
  // A sweep with end-to-end results starts on e2e.kl.
  EXPECT_EQ(build_pareto_model(*sweep_snapshot(records), "").metric, "e2e.kl");
}

TEST(ParetoModel, EndToEndIntervalsBecomeErrorBarData) {
  auto records = handmade_records();
  records[1]["result"]["totals"]["e2e"] = {{"delta_ppl", -0.4},
                                           {"abs_delta_ppl", 0.4},
                                           {"kl", 0.01},
                                           {"kl_ci", {0.008, 0.013}},
                                           {"verdict", "INCONCLUSIVE"},
                                           {"passages", 60},
                                           {"passages_needed", 250},
                                           {"seconds_per_passage", 0.02}};
  // Protocol numbers under totals.e2e are not quality axes.
  const auto metrics = available_metrics(records);
  for (const char* name : {"e2e.passages", "e2e.passages_needed", "e2e.seconds_per_passage"})
    EXPECT_EQ(std::count(metrics.begin(), metrics.end(), name), 0) << name;
  const ParetoModel m = build_pareto_model(*sweep_snapshot(records), "e2e.kl");
  ASSERT_EQ(m.points.size(), 1u);
  EXPECT_TRUE(m.has_ci);
  EXPECT_TRUE(m.points[0].has_ci);
  EXPECT_EQ(m.points[0].q_lo, 0.008);
  EXPECT_EQ(m.points[0].q_hi, 0.013);
  EXPECT_EQ(m.points[0].verdict, "INCONCLUSIVE");
  EXPECT_EQ(m.points[0].passages, 60);
  const auto lines = test::csv_lines(pareto_model_csv(m));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "id,label,codec,family,ratio_vs_bf16,e2e.kl,on_frontier,duplicate_of,total_bytes,"
                      "e2e.kl_lo,e2e.kl_hi");
  const auto c = test::csv_cells(lines[1]);
  ASSERT_EQ(c.size(), 11u);
  EXPECT_EQ(std::stod(c[9]), 0.008);
  EXPECT_EQ(std::stod(c[10]), 0.013);
}

TEST(ParetoModel, CsvHasEveryPlottedPoint) {
  const ParetoModel m = build_pareto_model(*sweep_snapshot(handmade_records()), "attn_kl");
  const auto lines = test::csv_lines(pareto_model_csv(m));
  ASSERT_EQ(lines.size(), m.points.size() + 1);
  EXPECT_EQ(lines[0],
            "id,label,codec,family,ratio_vs_bf16,attn_kl,on_frontier,duplicate_of,total_bytes");
  for (size_t i = 0; i < m.points.size(); ++i) {
    const auto& p = m.points[i];
    const auto c = test::csv_cells(lines[i + 1]);
    ASSERT_EQ(c.size(), 9u) << lines[i + 1];
    EXPECT_EQ(std::stoll(c[0]), p.id);
    EXPECT_EQ(c[1], p.label);
    EXPECT_EQ(c[2], p.codec);
    EXPECT_EQ(c[3], p.family);
    EXPECT_EQ(std::stod(c[4]), p.r);
    EXPECT_EQ(std::stod(c[5]), p.q);  // 17 significant digits: exact
    EXPECT_EQ(c[6], p.on_frontier ? "true" : "false");
    EXPECT_EQ(c[7], p.duplicate_of >= 0 ? std::to_string(p.duplicate_of) : "");
    EXPECT_EQ(std::stoull(c[8]), p.total_bytes);
  }
  EXPECT_EQ(test::csv_cells(lines[5])[1], "label=a \"quoted\", b");
  EXPECT_EQ(pareto_model_csv(ParetoModel{}), "");
}

TEST(ParetoModel, NoSweepOrNothingPlottable) {
  const ParetoModel none = build_pareto_model(Snapshot{}, "");
  EXPECT_EQ(none.sweep_name, "");
  EXPECT_TRUE(none.points.empty());
  EXPECT_TRUE(none.metrics.empty());
  auto out_of_range = sweep_snapshot(handmade_records());
  out_of_range->active_sweep = 3;
  EXPECT_TRUE(build_pareto_model(*out_of_range, "").points.empty());
  // Only failed cells and cells without any metric: nothing to plot, each cell listed.
  std::vector<json> bad = {handmade_records()[5],
                           {{"cell", 9}, {"status", "ok"}, {"result", json::object()}}};
  const ParetoModel m = build_pareto_model(*sweep_snapshot(bad), "");
  EXPECT_EQ(m.metric, "");
  EXPECT_TRUE(m.points.empty());
  EXPECT_EQ(m.excluded, (std::vector<std::string>{"#5 failed", "#9 n/a: no quality metric"}));
}

TEST(ParetoModel, CodecFamilies) {
  EXPECT_EQ(codec_family("kakeya_pca"), "Kakeya-PCA");
  EXPECT_EQ(codec_family("besicovitch"), "Besicovitch");
  EXPECT_EQ(codec_family("turbo2"), "TurboQuant");
  EXPECT_EQ(codec_family("turbo4"), "TurboQuant");
  EXPECT_EQ(codec_family("kivi"), "KIVI");
  EXPECT_EQ(codec_family("fp8_e4m3"), "FP8 E4M3");
  EXPECT_EQ(codec_family("bf16"), "bf16");
  EXPECT_EQ(codec_family("q8_0"), "ggml quants");
  EXPECT_EQ(codec_family("q4_1"), "ggml quants");
  EXPECT_EQ(codec_family("something_else"), "something_else");
  for (const auto& name : codec::codec_names()) EXPECT_FALSE(codec_family(name).empty()) << name;
}

TEST(ParetoModel, DemoSweepFrontierEqualsTheCore) {
  test::TempDir dir;
  const json grid = json::parse(R"({"fixed": {"block_size": 128, "layers": "0"}, "grids": [
      {"k_codec": ["q8_0"], "v_codec": ["q8_0"]}, {"k_codec": ["q4_0"], "v_codec": ["q4_0"]},
      {"k_codec": ["turbo3"], "v_codec": ["turbo3"]}]})");
  sessions::SweepOptions opt;
  opt.jobs = 1;
  const auto summary = sessions::run_sweep(test::view_demo_capture(), grid, dir.file("store"), opt);
  ASSERT_EQ(summary.failed, 0u);
  auto records = sessions::read_result_store(dir.file("store")).records;
  std::sort(records.begin(), records.end(),
            [](const json& a, const json& b) { return a.value("cell", -1) < b.value("cell", -1); });
  ASSERT_EQ(records.size(), 3u);
  // The current configuration is cell 1's (as after clicking it in the view).
  auto current = std::make_shared<const sessions::RunConfig>(
      sessions::run_config_from_json(records[1]["result"]["config"], "test"));
  const auto snap = sweep_snapshot(records, current);
  snap->capture.synthetic = true;
  expect_frontier_equals_core(*snap, records);
  const ParetoModel m = build_pareto_model(*snap, "attn_out_rel_err");
  ASSERT_EQ(m.points.size(), 3u);
  ASSERT_GE(m.current, 0);
  EXPECT_EQ(m.points[size_t(m.current)].id, 1);
  EXPECT_EQ(m.families, (std::vector<std::string>{"ggml quants", "TurboQuant"}));
  for (const auto& p : m.points) {
    EXPECT_EQ(p.r, records[size_t(p.id)]["result"]["ratio_vs_bf16"].get<double>());
    EXPECT_EQ(p.config_hash, records[size_t(p.id)]["config_hash"].get<std::string>());
  }
  // The demo capture has q_pre but no Σ_q preconditioning in these cells: no k_whitened_mse.
  EXPECT_EQ(std::count(m.metrics.begin(), m.metrics.end(), "k_whitened_mse"), 0);
  EXPECT_EQ(std::count(m.metrics.begin(), m.metrics.end(), "attn_kl"), 1);
}

TEST(ParetoModelTiny1m, CodecSweepFrontierEqualsTheCore) {
  KVWB_REQUIRE_REAL(path, "tiny1m_wikitext2.kvc.h5");
  test::TempDir dir;
  const json grid = json::parse(R"({"fixed": {"block_size": 256, "layers": "1"}, "grids": [
      {"k_codec": ["kakeya_pca"], "v_codec": ["kakeya_pca"], "bits_k": [2, 4]},
      {"k_codec": ["besicovitch"], "v_codec": ["besicovitch"]},
      {"k_codec": ["turbo3"], "v_codec": ["turbo3"]}, {"k_codec": ["q8_0"], "v_codec": ["q8_0"]},
      {"k_codec": ["q4_0"], "v_codec": ["q4_0"]}, {"k_codec": ["kivi"], "v_codec": ["kivi"]},
      {"k_codec": ["fp8_e4m3"], "v_codec": ["fp8_e4m3"]}]})");
  sessions::SweepOptions opt;
  opt.jobs = 2;
  const auto summary = sessions::run_sweep(path, grid, dir.file("store"), opt);
  ASSERT_EQ(summary.failed, 0u);
  auto records = sessions::read_result_store(dir.file("store")).records;
  std::sort(records.begin(), records.end(),
            [](const json& a, const json& b) { return a.value("cell", -1) < b.value("cell", -1); });
  ASSERT_EQ(records.size(), 8u);
  const auto snap = sweep_snapshot(records);
  expect_frontier_equals_core(*snap, records);
  const ParetoModel m = build_pareto_model(*snap, "attn_kl");
  EXPECT_EQ(m.families.size(), 6u);  // Kakeya-PCA, Besicovitch, TurboQuant, ggml, KIVI, FP8
  EXPECT_TRUE(m.log_y);              // attention KL spans decades from fp8 to 2-bit codecs
  EXPECT_TRUE(m.excluded.empty());
  const std::string csv = pareto_model_csv(m);
  EXPECT_TRUE(contains(csv, "\"Kakeya-PCA\"")) << csv;
}

}  // namespace
}  // namespace kvwb::views
