// Sweeps, the result store, the Pareto frontier (metrics.md §10), boundary recommendation and the
// budgeted plan, on small synthetic captures.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "base/errors.h"
#include "io/synthetic_capture.h"
#include "sessions/analysis/pareto.h"
#include "sessions/bundle/bundle.h"
#include "sessions/explore/boundary.h"
#include "sessions/explore/result_store.h"
#include "sessions/explore/sweep.h"
#include "tests/sessions/explore/explore_fixture.h"
#include "tests/test_support.h"

using namespace kvwb;
using namespace kvwb::sessions;
using kvwb::test::six_cell_grid;
using nlohmann::json;

namespace {

/// A tiny capture for sweeps (cells must be cheap).
const std::string& tiny_capture() {
  return kvwb::test::demo_capture(
      "tiny.kvc.h5",
      {.layers = 2, .kv_heads = 2, .q_heads = 4, .head_dim = 32, .seqs = 1, .tokens = 128});
}

/// The capture of the plan / boundary tests.
const std::string& plan_capture() {
  return kvwb::test::demo_capture(
      "plan.kvc.h5",
      {.layers = 4, .kv_heads = 2, .q_heads = 4, .head_dim = 64, .seqs = 1, .tokens = 256});
}

/// Records by key with the timing fields removed.
std::map<std::string, json> comparable(const std::string& store) {
  std::map<std::string, json> out;
  for (json r : read_result_store(store).records) {
    r.erase("timing");
    if (r.contains("result")) r["result"].erase("seconds");
    out[r["key"].get<std::string>()] = r;
  }
  return out;
}

ParetoPoint pt(int64_t id, double r, double q) {
  ParetoPoint p;
  p.id = id;
  p.r = r;
  p.q = q;
  return p;
}

}  // namespace

TEST(Pareto, HandMadeExampleOfMetricsSection10) {
  // A (2.0, 0.010), B (3.0, 0.020), C (3.0, 0.030), D (2.5, 0.025), E (3.0, 0.020).
  std::vector<ParetoPoint> pts = {pt(4, 3.0, 0.020), pt(0, 2.0, 0.010), pt(2, 3.0, 0.030), pt(3, 2.5, 0.025),
                                  pt(1, 3.0, 0.020)};
  ParetoPoint bad = pt(5, 9.0, 0.0);
  bad.valid = false;
  bad.reason = "failed: FP16_RANGE";
  pts.push_back(bad);
  const ParetoResult r = pareto_frontier(pts);
  ASSERT_EQ(r.frontier.size(), 2u);
  EXPECT_EQ(r.frontier[0].rep.id, 0);  // A first: ascending R
  EXPECT_TRUE(r.frontier[0].duplicates.empty());
  EXPECT_EQ(r.frontier[1].rep.id, 1);  // B, the lowest id of {B, E}
  ASSERT_EQ(r.frontier[1].duplicates.size(), 1u);
  EXPECT_EQ(r.frontier[1].duplicates[0].id, 4);
  ASSERT_EQ(r.dominated.size(), 2u);
  EXPECT_EQ(r.dominated[0].id, 2);
  EXPECT_EQ(r.dominated[1].id, 3);
  ASSERT_EQ(r.excluded.size(), 1u);
  EXPECT_EQ(r.excluded[0].id, 5);
  EXPECT_TRUE(dominates(pt(0, 3.0, 0.02), pt(1, 3.0, 0.03)));
  EXPECT_FALSE(dominates(pt(0, 3.0, 0.02), pt(1, 3.0, 0.02)));
}

TEST(Pareto, ExactComparisonWithoutTolerance) {
  const double q = 0.1;
  const double q_up = std::nextafter(q, 1.0);
  const ParetoResult r = pareto_frontier({pt(0, 2.0, q_up), pt(1, 2.0, q)});
  ASSERT_EQ(r.frontier.size(), 1u);
  EXPECT_EQ(r.frontier[0].rep.id, 1);
  ASSERT_EQ(r.dominated.size(), 1u);
}

TEST(Pareto, MetricsFromRecordsAndNaExclusion) {
  json res = {{"ratio_vs_bf16", 4.0},
              {"failed", false},
              {"totals", {{"k", {{"rel_mse", 0.1}}}, {"v", {{"rel_mse", 0.2}}},
                          {"attention", {{"attn_kl", 0.01}, {"attn_top1", 0.75}, {"attn_out_rel_err", 0.3}}}}}};
  EXPECT_DOUBLE_EQ(*metric_value(res, "one_minus_top1"), 0.25);
  EXPECT_DOUBLE_EQ(*metric_value(res, "k_rel_mse"), 0.1);
  EXPECT_DOUBLE_EQ(*metric_value(res, "totals.v.rel_mse"), 0.2);
  EXPECT_FALSE(metric_value(res, "k_whitened_mse").has_value());
  EXPECT_THROW(metric_value(res, "a..b"), InvalidArgument);
  std::vector<json> recs = {{{"key", "a"}, {"cell", 0}, {"status", "ok"}, {"result", res}},
                            {{"key", "b"}, {"cell", 1}, {"status", "failed"}, {"error", {{"code", "FP16_RANGE"}, {"message", "x"}}}}};
  const auto pts = pareto_points_from_records(recs, "k_whitened_mse");
  ASSERT_EQ(pts.size(), 2u);
  EXPECT_FALSE(pts[0].valid);
  EXPECT_EQ(pts[0].reason, "n/a: k_whitened_mse");
  EXPECT_FALSE(pts[1].valid);
  EXPECT_NE(pts[1].reason.find("FP16_RANGE"), std::string::npos);
}

TEST(Pareto, EndToEndIntervalsAndPointsWithinTheNoise) {
  auto rec = [](int cell, double r, double kl, double lo, double hi) {
    json res = {{"ratio_vs_bf16", r},
                {"failed", false},
                {"totals", {{"e2e", {{"kl", kl}, {"kl_ci", {lo, hi}}, {"delta_ppl", 0.1}}}}}};
    return json{{"key", std::to_string(cell)}, {"cell", cell}, {"status", "ok"}, {"result", res}};
  };
  // #1 dominates #2 by the estimates but their intervals overlap; #3 is beaten beyond the noise.
  const std::vector<json> recs = {rec(0, 1.0, 0.0, 0.0, 0.0), rec(1, 3.0, 0.010, 0.008, 0.012),
                                  rec(2, 2.9, 0.011, 0.009, 0.014), rec(3, 2.0, 0.050, 0.040, 0.060)};
  EXPECT_EQ(*metric_interval(recs[1]["result"], "e2e.kl"), std::make_pair(0.008, 0.012));
  EXPECT_FALSE(metric_interval(recs[1]["result"], "e2e.delta_ppl").has_value());  // no interval recorded
  EXPECT_FALSE(metric_interval(recs[1]["result"], "k_rel_mse").has_value());
  const ParetoResult p = pareto_frontier(pareto_points_from_records(recs, "e2e.kl"));
  ASSERT_EQ(p.frontier.size(), 2u);
  ASSERT_TRUE(p.frontier[1].rep.q_ci);
  EXPECT_EQ(p.frontier[1].rep.q_ci->second, 0.012);
  EXPECT_TRUE(has_intervals(p));
  EXPECT_EQ(possibly_on_frontier(p), std::vector<int64_t>{2});
  const json j = pareto_to_json(p, "e2e.kl");
  EXPECT_EQ(j["frontier"][1]["q_ci"], json::array({0.008, 0.012}));
  EXPECT_EQ(j["possibly_on_frontier"], json::array({2}));
  const std::string csv = pareto_to_csv(p, "e2e.kl");
  EXPECT_NE(csv.find("e2e.kl_lo,e2e.kl_hi"), std::string::npos);
  // Proxy metrics carry no interval: nothing changes for them.
  EXPECT_FALSE(has_intervals(pareto_frontier({pt(0, 1.0, 0.1)})));
}

TEST(ResultStore, TornLastLineIsIgnoredReportedAndRepaired) {
  kvwb::test::TempDir dir;
  const std::string store = dir.file("store");
  {
    ResultStoreWriter w(store, json{{"format", kStoreFormat}});
    w.append({{"key", "k1"}, {"v", 1}});
    w.append({{"key", "k2"}, {"v", 2}});
    w.append({{"key", "k1"}, {"v", 3}});  // duplicate key: the first wins
  }
  {
    std::ofstream f(store_results_path(store), std::ios::app | std::ios::binary);
    f << "{\"key\":\"k3\",\"v\":";  // a crash mid-write
  }
  StoreContents c = read_result_store(store);
  ASSERT_EQ(c.records.size(), 2u);
  EXPECT_EQ(c.records[0]["v"], 1);
  EXPECT_EQ(c.duplicates, 1u);
  EXPECT_TRUE(c.torn_tail);
  ASSERT_EQ(c.problems.size(), 1u);
  EXPECT_NE(c.problems[0].find("torn"), std::string::npos);
  {
    ResultStoreWriter w(store, json{{"format", kStoreFormat}});
    EXPECT_EQ(w.repaired_bytes(), 16u);
    w.append({{"key", "k3"}, {"v", 4}});
  }
  c = read_result_store(store);
  EXPECT_EQ(c.records.size(), 3u);
  EXPECT_FALSE(c.torn_tail);
  EXPECT_TRUE(c.problems.empty());
  EXPECT_EQ(c.records[2]["v"], 4);
}

TEST(ResultStore, GarbageLineInTheMiddleIsSkipped) {
  kvwb::test::TempDir dir;
  const std::string store = dir.file("s");
  std::filesystem::create_directories(store);
  std::ofstream(store_meta_path(store)) << "{\"format\": \"kvwb-result-store\"}\n";
  std::ofstream(store_results_path(store)) << "{\"key\":\"a\"}\nnot json\n{\"key\":\"b\"}\n";
  const StoreContents c = read_result_store(store);
  EXPECT_EQ(c.records.size(), 2u);
  ASSERT_EQ(c.problems.size(), 1u);
  EXPECT_NE(c.problems[0].find("line 2"), std::string::npos);
}

TEST(ResultStore, MalformedRecordsAndDescriptionsAreRefusedNotTrusted) {
  kvwb::test::TempDir dir;
  const std::string store = dir.file("s");
  std::filesystem::create_directories(store);
  std::ofstream(store_results_path(store)) << "{\"key\":\"a\"}\n";
  EXPECT_THROW(read_result_store(store), FormatError);  // results without store.json: not a store
  std::ofstream(store_meta_path(store)) << "{\"format\": \"kvwb-result-store\", \"format_version\": 4294967297}";
  EXPECT_THROW(read_result_store(store), FormatError);  // never read as version 1
  std::ofstream(store_meta_path(store)) << "{\"format\": \"kvwb-result-store\", \"capture\": 5}";
  EXPECT_THROW(read_result_store(store), FormatError);
  std::ofstream(store_meta_path(store)) << "{\"format\": \"kvwb-result-store\"}";
  std::ofstream(store_results_path(store)) << "{\"key\":\"a\",\"cell\":\"x\"}\n"
                                              "{\"key\":\"b\",\"status\":\"ok\",\"result\":{\"totals\":[]}}\n"
                                              "{\"key\":\"c\",\"status\":\"ok\",\"result\":{\"layers\":[{\"k\":3}]}}\n"
                                              "{\"key\":\"d\",\"cell\":1}\n"
                                              // found by the json fuzzer: "ok" with the result renamed
                                              "{\"key\":\"e\",\"status\":\"ok\",\"2esult\":{}}\n";
  const StoreContents c = read_result_store(store);
  ASSERT_EQ(c.records.size(), 1u);  // only d is well-formed; the others are reported, not trusted
  EXPECT_EQ(c.records[0]["key"], "d");
  EXPECT_EQ(c.problems.size(), 4u);
  EXPECT_NE(c.problems[3].find("status \"ok\" but no \"result\""), std::string::npos) << c.problems[3];
  EXPECT_NO_THROW(pareto_points_from_records(c.records, "k_rel_mse"));
  EXPECT_NO_THROW(sweep_table_json(c.records));
  // The table never assumes a field: an "ok" record without a result (not from a store) is a row.
  const json table = sweep_table_json({json{{"key", "x"}, {"cell", 0}, {"status", "ok"}}});
  EXPECT_EQ(table["rows"][0]["failure"], "the record holds no result") << table.dump();
  std::filesystem::create_directories(dir.file("empty"));
  EXPECT_TRUE(read_result_store(dir.file("empty")).records.empty());  // an empty folder: an empty store
}

TEST(Sweep, OneCellCapForEveryGridFormCountedBeforeExpansion) {
  // Issue 14 #2: a list of sub-grids used to bypass the cap; the count is computed, not enumerated.
  json many = json::array();
  for (int i = 0; i < 60000; ++i) many.push_back(i);
  const json half = {{"seed", many}};
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(expand_sweep_grid(json::array({half, half}), "g"), InvalidArgument);
  EXPECT_THROW(expand_sweep_grid(json{{"grids", {half, half}}}, "g"), InvalidArgument);
  json wide = json::object();
  for (int a = 0; a < 9; ++a) wide["k" + std::to_string(a)] = json::array({1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  EXPECT_THROW(expand_sweep_grid(wide, "g"), InvalidArgument);  // 10^9 cells: refused, not expanded
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
  EXPECT_EQ(grid_cell_count(json{{"bits_k", {2, 3}}, {"fixed", {{"block_size", 64}}}}, "g"), 2u);
}

TEST(Sweep, ABrokenCaptureStopsTheSweepBeforeAnyStore) {
  // Issue 14 #4: format errors are errors of the sweep, not a store full of failed cells.
  kvwb::test::TempDir dir;
  std::ofstream(dir.file("broken.kvc.h5")) << "not an HDF5 file";
  EXPECT_THROW(
      run_sweep(dir.file("broken.kvc.h5"), six_cell_grid(), dir.file("st"), SweepOptions{}),
      FormatError);
  EXPECT_FALSE(std::filesystem::exists(dir.file("st")));
}

TEST(Sweep, GridExpansionCountsAndSubGrids) {
  EXPECT_EQ(expand_sweep_grid(six_cell_grid(), "g").size(), 6u);
  size_t dropped = 0;
  const json multi = {{"fixed", {{"block_size", 64}}},
                      {"grids",
                       {{{"k_codec", {"kakeya_pca"}}, {"bits_k", {2, 3}}},
                        {{"k_codec", {"q8_0", "q4_0"}}, {"v_codec", {"q8_0"}}},
                        {{"k_codec", {"kakeya_pca"}}, {"bits_k", {3}}}}}};
  const auto cells = expand_sweep_grid(multi, "g", &dropped);
  EXPECT_EQ(cells.size(), 4u);
  EXPECT_EQ(dropped, 1u);  // the last sub-grid repeats a cell of the first
  for (const auto& c : cells) EXPECT_EQ(c.config.block_size, 64u);
  EXPECT_THROW(expand_sweep_grid(json{{"bits_k", {3}}, {"k_codec", {"q8_0"}}}, "g"), InvalidArgument);
}

TEST(Sweep, KilledAndResumedEqualsUninterrupted) {
  kvwb::test::TempDir dir;
  const std::string full = dir.file("full"), part = dir.file("part");
  SweepOptions two;
  two.jobs = 2;
  const SweepSummary s_full = run_sweep(tiny_capture(), six_cell_grid(), full, two);
  EXPECT_EQ(s_full.cells, 6u);
  EXPECT_EQ(s_full.ran, 6u);
  EXPECT_EQ(s_full.failed, 0u);

  // Cancel after two finished cells.
  JobControl job;
  job.progress = [&](size_t done, size_t, const std::string&) {
    if (done >= 2) job.cancel.store(true);
  };
  SweepOptions one;
  EXPECT_THROW(run_sweep(tiny_capture(), six_cell_grid(), part, one, &job), Cancelled);
  const size_t kept = read_result_store(part).records.size();
  EXPECT_GE(kept, 2u);
  EXPECT_LT(kept, 6u);
  // Simulate a crash in the middle of the next record: a torn last line.
  {
    std::ofstream f(store_results_path(part), std::ios::app | std::ios::binary);
    f << "{\"key\":\"torn";
  }
  // Without --resume a non-empty store is refused.
  EXPECT_THROW(run_sweep(tiny_capture(), six_cell_grid(), part, one), InvalidArgument);
  // A different grid cannot resume this store.
  SweepOptions resume;
  resume.resume = true;
  resume.jobs = 2;
  json other = six_cell_grid();
  other["bits_k"] = {1, 2};
  EXPECT_THROW(run_sweep(tiny_capture(), other, part, resume), InvalidArgument);
  const SweepSummary s_res = run_sweep(tiny_capture(), six_cell_grid(), part, resume);
  EXPECT_EQ(s_res.skipped, kept);
  EXPECT_EQ(s_res.ran, 6u - kept);
  EXPECT_GT(s_res.repaired_bytes, 0u);
  EXPECT_EQ(comparable(part), comparable(full));

  // A second resume runs nothing.
  const SweepSummary again = run_sweep(tiny_capture(), six_cell_grid(), part, resume);
  EXPECT_EQ(again.ran, 0u);
  EXPECT_EQ(again.skipped, 6u);

  // The results table has one row per cell with the quality metrics.
  const json table = sweep_table_json(read_result_store(full).records);
  ASSERT_EQ(table["rows"].size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(table["rows"][i]["cell"], i);
    EXPECT_GT(table["rows"][i]["ratio_vs_bf16"].get<double>(), 1.0);
    EXPECT_TRUE(table["rows"][i]["attn_kl"].is_number());
    EXPECT_TRUE(table["rows"][i]["failure"].is_null());
  }
  // More bits: less K error at the same variance ratio (cells 0, 2, 4 have vr 0.9).
  EXPECT_GT(table["rows"][0]["k_rel_mse"].get<double>(), table["rows"][2]["k_rel_mse"].get<double>());
  EXPECT_GT(table["rows"][2]["k_rel_mse"].get<double>(), table["rows"][4]["k_rel_mse"].get<double>());
  const std::string csv = sweep_table_csv(read_result_store(full).records);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 7);
}

TEST(Sweep, CellDataErrorsAreStoredAsFailures) {
  kvwb::test::TempDir dir;
  // An invalid codec parameter value (found when the cell runs) fails that cell only.
  const json grid = {{"k_codec", {"kakeya_pca"}}, {"k_param", {"bit_width=2", "bit_width=9"}}};
  const SweepSummary s = run_sweep(tiny_capture(), grid, dir.file("st"), SweepOptions{});
  EXPECT_EQ(s.ran, 2u);
  EXPECT_EQ(s.failed, 1u);
  const auto recs = read_result_store(dir.file("st")).records;
  ASSERT_EQ(recs.size(), 2u);
  size_t failed = 0;
  for (const auto& r : recs)
    if (r["status"] == "failed") {
      ++failed;
      EXPECT_EQ(r["error"]["code"], "INVALID_ARGUMENT");
    }
  EXPECT_EQ(failed, 1u);
}

TEST(Boundary, RecommendationSizesAndDecreasingRatios) {
  RunConfig cfg;
  cfg.block_size = 256;
  cfg.k.params["bit_width"] = "2";
  cfg.v.params["bit_width"] = "2";
  const BoundaryRecommendation r = recommend_boundary(plan_capture(), cfg, 3);
  ASSERT_EQ(r.ranking.size(), 4u);
  EXPECT_EQ(r.score_metric, "attn_out_rel_err");
  ASSERT_EQ(r.proposals.size(), 3u);
  double prev = r.baseline.ratio;
  for (size_t i = 0; i < r.proposals.size(); ++i) {
    EXPECT_EQ(r.proposals[i].boundary.size(), i + 1);
    EXPECT_LT(r.proposals[i].ratio, prev);
    prev = r.proposals[i].ratio;
    // Greedy: each set contains the previous one.
    if (i > 0) {
      for (int l : r.proposals[i - 1].boundary) {
        EXPECT_NE(std::find(r.proposals[i].boundary.begin(), r.proposals[i].boundary.end(), l),
                  r.proposals[i].boundary.end());
      }
    }
  }
  // Protecting layers lowers the attention error.
  EXPECT_LT(r.proposals.back().attn_out_rel_err, r.baseline.attn_out_rel_err);
  EXPECT_THROW(recommend_boundary(plan_capture(), cfg, 0), InvalidArgument);
}

TEST(Boundary, BudgetedPlanMeetsItsRatio) {
  RunConfig cfg;
  cfg.block_size = 256;
  PlanOptions opt;
  opt.target_ratio = 3.0;
  const PlanResult p = plan_budget(plan_capture(), cfg, opt);
  ASSERT_EQ(p.layers.size(), 4u);
  EXPECT_GE(p.promised_ratio, opt.target_ratio);
  EXPECT_GE(p.measured_ratio, opt.target_ratio);
  EXPECT_EQ(p.measured_bytes, p.promised_bytes);  // bytes of a (layer, stream, width) are exact
  EXPECT_NEAR(p.measured_error, p.promised_error, 1e-12 * std::max(1.0, p.promised_error));
  EXPECT_EQ(p.measurement_runs, 5u);  // widths 1..4 plus the all-boundary run
  // A looser target can only lower (or keep) the error.
  PlanOptions loose = opt;
  loose.target_ratio = 2.0;
  const PlanResult q = plan_budget(plan_capture(), cfg, loose);
  EXPECT_LE(q.promised_error, p.promised_error);
  EXPECT_GE(q.measured_ratio, 2.0);
  PlanOptions impossible = opt;
  impossible.target_ratio = 1000.0;
  EXPECT_THROW(plan_budget(plan_capture(), cfg, impossible), InvalidArgument);
}

TEST(Boundary, UniformBitsPlanHasOneWidthPerStreamAndExportsAsVersion1) {
  RunConfig cfg;
  cfg.block_size = 256;
  PlanOptions opt;
  opt.target_ratio = 3.0;
  const PlanResult free = plan_budget(plan_capture(), cfg, opt);
  opt.uniform_bits = true;
  const PlanResult p = plan_budget(plan_capture(), cfg, opt);
  EXPECT_TRUE(p.uniform_bits);
  ASSERT_EQ(p.layers.size(), 4u);
  EXPECT_GE(p.measured_ratio, opt.target_ratio);
  EXPECT_EQ(p.measured_bytes, p.promised_bytes);
  EXPECT_NEAR(p.measured_error, p.promised_error, 1e-12 * std::max(1.0, p.promised_error));
  // Fewer choices: never better than the per-layer plan.
  EXPECT_GE(p.promised_error, free.promised_error - 1e-12);
  // One width per stream, carried by the run-level streams, no per-layer overrides.
  EXPECT_TRUE(p.config.overrides.empty());
  std::set<std::string> kb, vb;
  for (const auto& l : p.layers)
    if (!l.boundary) {
      kb.insert(l.k_bits);
      vb.insert(l.v_bits);
    }
  ASSERT_EQ(kb.size(), 1u);
  ASSERT_EQ(vb.size(), 1u);
  EXPECT_EQ(p.config.k.params.at("bit_width"), *kb.begin());
  EXPECT_EQ(p.config.v.params.at("bit_width"), *vb.begin());
  EXPECT_EQ(plan_result_to_json(p)["uniform_bits"], true);
  // It exports as a version 1 bundle, which passes its check without warnings.
  test::TempDir t;
  const BundleExportResult b = export_bundle(plan_capture(), p.config, t.file("b"));
  EXPECT_EQ(b.format_version, 1);
  EXPECT_EQ(b.manifest["bundle_format_version"], 1);
  const BundleCheckReport rep = check_bundle(t.file("b"));
  EXPECT_TRUE(rep.ok);
  EXPECT_TRUE(rep.warnings.empty());
  // The per-layer plan of the same capture, where it uses two widths, exports as version 2.
  std::set<std::string> fk;
  for (const auto& l : free.layers)
    if (!l.boundary) fk.insert(l.k_bits);
  if (fk.size() > 1) {
    const BundleExportResult b2 = export_bundle(plan_capture(), free.config, t.file("b2"));
    EXPECT_EQ(b2.format_version, 2);
    EXPECT_TRUE(check_bundle(t.file("b2")).ok);
  }
}
