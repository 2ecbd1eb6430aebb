// Calibration transfer: reading a bundle back, applying its Σ_q factors and centroid tables to
// another capture (out of sample) or to its own (in sample, which reproduces the export's
// measurement run exactly), the provenance of results, sweeps with a bundle, and
// calibration_transfer. Synthetic captures (no real data needed); the real tiny1m WikiText-2 /
// TinyStories case is in tests/app/cli/test_cli.sh.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "base/errors.h"
#include "io/atomic_file.h"
#include "io/synthetic_capture.h"
#include "sessions/bundle/bundle.h"
#include "sessions/bundle/bundle_apply.h"
#include "sessions/bundle/calibration_export.h"
#include "sessions/bundle/transfer.h"
#include "sessions/explore/result_store.h"
#include "sessions/explore/store_merge.h"
#include "sessions/explore/sweep.h"
#include "tests/sessions/bundle/bundle_fixture.h"
#include "tests/test_support.h"

namespace kvwb::sessions {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

RunConfig calibrated_config() { return test::bundle_test_config(64); }

/// Two synthetic captures of the same shape drawn with different seeds, and a bundle fitted on A.
class BundleApplyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    for (int i = 0; i < 2; ++i) {
      io::write_demo_capture(dir_->file(i == 0 ? "a.kvc.h5" : "b.kvc.h5"),
                             {.layers = 2,
                              .kv_heads = 2,
                              .q_heads = 4,
                              .head_dim = 32,
                              .seqs = 2,
                              .tokens = 128,
                              .seed = 0xA000 + static_cast<uint64_t>(i)});
    }
    export_ =
        new BundleExportResult(export_bundle(cap_a(), calibrated_config(), dir_->file("bundle-a")));
  }
  static void TearDownTestSuite() {
    delete export_;
    delete dir_;
  }
  static std::string cap_a() { return dir_->file("a.kvc.h5"); }
  static std::string cap_b() { return dir_->file("b.kvc.h5"); }
  static std::string bundle_a() { return dir_->file("bundle-a"); }
  static test::TempDir* dir_;
  static BundleExportResult* export_;
};
test::TempDir* BundleApplyTest::dir_ = nullptr;
BundleExportResult* BundleApplyTest::export_ = nullptr;

TEST_F(BundleApplyTest, ReadsArtefactsOriginAndConfiguration) {
  const CalibrationBundle b = read_calibration_bundle(bundle_a());
  EXPECT_EQ(b.capture_sha256, io::sha256_file(cap_a()));
  EXPECT_EQ(b.capture_file_name, "a.kvc.h5");
  EXPECT_EQ(b.manifest_sha256, io::sha256_file(bundle_a() + "/MANIFEST.json"));
  EXPECT_EQ(b.sigma_q_file, bundle_a() + "/sigma_q.safetensors");
  ASSERT_EQ(b.tables.size(), 2u);
  EXPECT_EQ(b.tables.at("K_b3"), bundle_a() + "/K_b3_centroids.f32");
  EXPECT_EQ(b.tables.at("V_b2"), bundle_a() + "/V_b2_centroids.f32");
  // codec_config.json back to the configuration it was exported from.
  RunConfig want = calibrated_config();
  want.layers = {0, 1};
  want.threads = 0;
  RunConfig got = bundle_run_config(bundle_a());
  EXPECT_EQ(run_config_hash(got), run_config_hash(want)) << run_config_to_json(got).dump() << "\n"
                                                         << run_config_to_json(want).dump();
  // A damaged bundle is refused with the problems listed.
  test::TempDir t;
  fs::copy(bundle_a(), t.path() / "b", fs::copy_options::recursive);
  std::ofstream(t.path() / "b" / "K_b3_centroids.f32", std::ios::binary | std::ios::app) << "x";
  EXPECT_THROW(read_calibration_bundle((t.path() / "b").string()), FormatError);
  EXPECT_THROW(read_calibration_bundle((t.path() / "missing").string()), IoError);
}

TEST_F(BundleApplyTest, InSampleReproducesTheExportAndOutOfSampleIsLabelled) {
  const CalibrationBundle b = read_calibration_bundle(bundle_a());
  const RunConfig applied = apply_calibration_bundle(calibrated_config(), b);
  EXPECT_EQ(applied.q_precond, b.sigma_q_file);
  EXPECT_FALSE(applied.q_precond_auto_skip);
  EXPECT_EQ(applied.k.centroids_file, b.tables.at("K_b3"));
  EXPECT_EQ(applied.v.centroids_file, b.tables.at("V_b2"));
  RunOptions ro;
  // On its own capture: exactly the export's measurement run (same factors, same tables).
  const RunResult same = run_config(cap_a(), applied, ro);
  EXPECT_EQ(same.total_bytes, export_->run.total_bytes);
  for (size_t l = 0; l < same.layers.size(); ++l) {
    EXPECT_EQ(same.layers[l].k.err.rel_mse(), export_->run.layers[l].k.err.rel_mse()) << l;
    EXPECT_EQ(same.layers[l].v.err.rel_mse(), export_->run.layers[l].v.err.rel_mse()) << l;
    EXPECT_EQ(same.layers[l].attn.kl(), export_->run.layers[l].attn.kl()) << l;
  }
  const auto in = calibration_provenance_json(b, applied, "capture", cap_a(), same.capture_sha256);
  EXPECT_EQ(in["sample"], "in-sample");
  // On the other capture: out of sample, both sha256 recorded, and not the in-sample numbers.
  const RunResult other = run_config(cap_b(), applied, ro);
  const auto out =
      calibration_provenance_json(b, applied, "capture", cap_b(), other.capture_sha256);
  EXPECT_EQ(out["sample"], "out-of-sample");
  EXPECT_EQ(out["calibrated_on"]["sha256"], io::sha256_file(cap_a()));
  EXPECT_EQ(out["evaluated_on"]["sha256"], io::sha256_file(cap_b()));
  EXPECT_EQ(out["sigma_q"], b.sigma_q_file);
  EXPECT_EQ(out["centroids"]["K"], b.tables.at("K_b3"));
  RunConfig own = calibrated_config();
  const RunResult in_b = run_config(cap_b(), own, ro);  // Σ_q of B itself (Gaussian tables)
  EXPECT_NE(other.layers[0].k.err.rel_mse(), in_b.layers[0].k.err.rel_mse());
  // An end-to-end evaluation is never in-sample for a bundle.
  EXPECT_EQ(calibration_provenance_json(b, applied, "text", "t.txt", b.capture_sha256)["sample"],
            "out-of-sample");
}

TEST_F(BundleApplyTest, WhatABundleCannotServeIsAnError) {
  const CalibrationBundle b = read_calibration_bundle(bundle_a());
  RunConfig c = calibrated_config();
  c.k.params["bit_width"] = "2";
  try {
    apply_calibration_bundle(c, b);
    FAIL() << "no K_b2 table";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("K_b2_centroids.f32"), std::string::npos) << e.what();
  }
  c = calibrated_config();
  c.k.centroids_file = "/elsewhere/K.f32";
  EXPECT_THROW(apply_calibration_bundle(c, b), InvalidArgument);
  // Per-layer overrides get their own bit width's table (none for b = 4 here).
  c = calibrated_config();
  LayerOverride o;
  o.layer = 1;
  o.k = c.k;
  o.k->params["bit_width"] = "4";
  c.overrides.push_back(o);
  EXPECT_THROW(apply_calibration_bundle(c, b), InvalidArgument);
  // Codecs without tables and no Q-preconditioning need nothing from the bundle.
  RunConfig q;
  q.k.codec = "q8_0";
  q.v.codec = "q4_0";
  q.k.params.clear();
  q.v.params.clear();
  const RunConfig qa = apply_calibration_bundle(q, b);
  EXPECT_EQ(run_config_hash(qa), run_config_hash(q));
}

TEST_F(BundleApplyTest, SweepWithABundleRecordsProvenanceAndFailsCellsItCannotServe) {
  const CalibrationBundle b = read_calibration_bundle(bundle_a());
  test::TempDir t;
  const std::string store = (t.path() / "s").string();
  const auto grid = nlohmann::json::parse(
      R"({"bits_k": [3, 2], "fixed": {"bits_v": 2, "block_size": 64, "q_precond": "capture"}})");
  SweepOptions so;
  so.bundle = &b;
  const SweepSummary s = run_sweep(cap_b(), grid, store, so);
  EXPECT_EQ(s.ran, 2u);
  EXPECT_EQ(s.failed, 1u);
  const auto sc = read_result_store(store);
  EXPECT_EQ(sc.meta["calibration"]["bundle_manifest_sha256"], b.manifest_sha256);
  for (const auto& r : sc.records) {
    if (r["options"]["bits_k"] == 3) {
      ASSERT_EQ(r["status"], "ok");
      EXPECT_EQ(r["result"]["calibration"]["sample"], "out-of-sample");
      EXPECT_EQ(r["result"]["calibration"]["evaluated_on"]["sha256"], io::sha256_file(cap_b()));
      EXPECT_EQ(r["result"]["config"]["q_precond"], b.sigma_q_file);
    } else {
      EXPECT_EQ(r["status"], "failed");
      EXPECT_NE(r["error"]["message"].get<std::string>().find("K_b2"), std::string::npos);
    }
  }
  // Resuming without the bundle is refused: one store, one calibration.
  SweepOptions plain;
  plain.resume = true;
  EXPECT_THROW(run_sweep(cap_b(), grid, store, plain), InvalidArgument);
  // Shards merge only with the same bundle; the merged store keeps it.
  const std::string other = (t.path() / "o").string();
  fs::copy(store, other, fs::copy_options::recursive);
  json meta = read_result_store(other).meta;
  meta.erase("calibration");
  io::write_file_atomic(store_meta_path(other), meta.dump(2));
  EXPECT_THROW(merge_result_stores((t.path() / "m1").string(), {store, other}), StoreMismatch);
  merge_result_stores((t.path() / "m2").string(), {store});
  EXPECT_EQ(read_result_store((t.path() / "m2").string()).meta["calibration"], sc.meta["calibration"]);
}

TEST_F(BundleApplyTest, TransferComparesInSampleAndOutOfSampleOnB) {
  test::TempDir t;
  TransferOptions o;
  o.keep_bundles = (t.path() / "kept").string();
  const TransferResult r = calibration_transfer(cap_a(), cap_b(), calibrated_config(), o);
  EXPECT_EQ(r.sha256_a, io::sha256_file(cap_a()));
  EXPECT_EQ(r.sha256_b, io::sha256_file(cap_b()));
  EXPECT_EQ(r.in_sample.calibration["sample"], "in-sample");
  EXPECT_EQ(r.out_of_sample.calibration["sample"], "out-of-sample");
  EXPECT_TRUE(r.uncalibrated.calibration.is_null());
  EXPECT_TRUE(r.uncalibrated.config.q_precond.empty());
  EXPECT_TRUE(fs::exists(r.bundle_a + "/MANIFEST.json"));
  // The in-sample column is B calibrated on B: what export-bundle measured on B.
  const BundleExportResult eb =
      export_bundle(cap_b(), calibrated_config(), (t.path() / "eb").string());
  EXPECT_EQ(r.in_sample.run.total_bytes, eb.run.total_bytes);
  EXPECT_EQ(r.in_sample.run.layers[0].k.err.rel_mse(), eb.run.layers[0].k.err.rel_mse());
  EXPECT_NE(r.out_of_sample.run.layers[0].k.err.rel_mse(),
            r.in_sample.run.layers[0].k.err.rel_mse());
  const auto j = transfer_to_json(r);
  EXPECT_EQ(j["format"], "kvwb-transfer");
  EXPECT_TRUE(j["columns"]["out_of_sample"]["metrics"]["k_rel_mse"].is_number());
  EXPECT_TRUE(j["out_vs_in"]["k_rel_mse"].is_number());
  // Nothing to transfer, or calibration files named by the configuration: refused.
  RunConfig none;
  none.k.codec = "q8_0";
  none.v.codec = "q4_0";
  EXPECT_THROW(calibration_transfer(cap_a(), cap_b(), none), InvalidArgument);
  RunConfig file = calibrated_config();
  file.q_precond = r.calibration_a.sigma_q_file;
  EXPECT_THROW(calibration_transfer(cap_a(), cap_b(), file), InvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// Per-layer bit widths (bundle-format.md §10): a version 2 bundle on a synthetic capture.

/// 4 layers; K b = 3 with layers 1 and 2 overridden to b = 2, V b = 2 everywhere; no
/// Q-preconditioning, so that a table recomputed on a subset of layers sees the same residuals.
RunConfig per_layer_config() {
  RunConfig c = test::bundle_test_config(64);
  c.q_precond.clear();
  for (int l : {1, 2}) {
    LayerOverride o;
    o.layer = l;
    o.k = c.k;
    o.k->params["bit_width"] = "2";
    c.overrides.push_back(o);
  }
  return c;
}

std::vector<uint8_t> table_bytes(const std::vector<float>& t) {
  std::vector<uint8_t> b(t.size() * 4);
  std::memcpy(b.data(), t.data(), b.size());
  return b;
}

bool any_contains(const std::vector<std::string>& v, const std::string& needle) {
  return std::any_of(v.begin(), v.end(), [&](const std::string& x) { return x.find(needle) != std::string::npos; });
}

class BundleV2Test : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    io::write_demo_capture(dir_->file("c.kvc.h5"), {.layers = 4,
                                                     .kv_heads = 2,
                                                     .q_heads = 4,
                                                     .head_dim = 32,
                                                     .seqs = 2,
                                                     .tokens = 128,
                                                     .seed = 0xB200});
    export_ = new BundleExportResult(export_bundle(cap(), per_layer_config(), dir_->file("v2")));
  }
  static void TearDownTestSuite() {
    delete export_;
    delete dir_;
  }
  static std::string cap() { return dir_->file("c.kvc.h5"); }
  static std::string bundle() { return dir_->file("v2"); }
  static json read_json_file(const std::string& p) {
    const auto b = io::read_file(p);
    return json::parse(b.begin(), b.end());
  }
  static test::TempDir* dir_;
  static BundleExportResult* export_;
};
test::TempDir* BundleV2Test::dir_ = nullptr;
BundleExportResult* BundleV2Test::export_ = nullptr;

TEST_F(BundleV2Test, OneTablePerStreamAndWidthCalibratedOnItsOwnLayers) {
  EXPECT_EQ(export_->format_version, 2);
  const std::vector<std::string> want = {"K_b2_centroids.f32", "K_b3_centroids.f32", "MANIFEST.json",
                                         "V_b2_centroids.f32", "codec_config.json",  "deploy.env",
                                         "sigma_q.json",       "sigma_q.safetensors"};
  EXPECT_EQ(export_->files, want);
  const json man = read_json_file(bundle() + "/MANIFEST.json");
  EXPECT_EQ(man["bundle_format_version"], 2);
  ASSERT_TRUE(man["centroids"]["K"].is_array());
  ASSERT_EQ(man["centroids"]["K"].size(), 2u);
  EXPECT_EQ(man["centroids"]["K"][0]["path"], "K_b2_centroids.f32");
  EXPECT_EQ(man["centroids"]["K"][0]["layers"], json({1, 2}));
  EXPECT_EQ(man["centroids"]["K"][1]["path"], "K_b3_centroids.f32");
  EXPECT_EQ(man["centroids"]["K"][1]["layers"], json({0, 3}));
  ASSERT_EQ(man["centroids"]["V"].size(), 1u);
  EXPECT_EQ(man["centroids"]["V"][0]["layers"], json({0, 1, 2, 3}));
  // Each table is the §4.2 calibration of exactly the layers using its width: recomputed here
  // from a run of those layers alone, it is the same bytes as the file.
  for (const auto& [bits, layers] : std::vector<std::pair<int, std::vector<int>>>{{2, {1, 2}}, {3, {0, 3}}}) {
    RunConfig only = test::bundle_test_config(64);
    only.q_precond.clear();
    only.layers = layers;
    only.k.params["bit_width"] = std::to_string(bits);
    const auto cals = calibrate_centroids(cap(), only);
    ASSERT_EQ(cals[0].stream, "K");
    EXPECT_EQ(cals[0].layers, layers);
    const std::string file = bundle() + "/K_b" + std::to_string(bits) + "_centroids.f32";
    EXPECT_EQ(io::read_file(file), table_bytes(cals[0].fit.table)) << file;
  }
  // The two K tables differ (different pools and sizes), and calibrate_centroid_widths gives both.
  const auto widths = calibrate_centroid_widths(cap(), per_layer_config());
  ASSERT_EQ(widths.size(), 3u);  // K b2, K b3, V b2
  EXPECT_EQ(widths[0].bits, 2u);
  EXPECT_EQ(widths[0].layers, (std::vector<int>{1, 2}));
  EXPECT_EQ(widths[1].bits, 3u);
  EXPECT_EQ(widths[2].stream, "V");
}

TEST_F(BundleV2Test, CodecConfigManifestAndDeployEnvDescribeEveryLayer) {
  const json cc = read_json_file(bundle() + "/codec_config.json");
  EXPECT_EQ(cc["streams"]["K"]["params"]["bit_width"], 3);
  EXPECT_EQ(cc["streams"]["K"]["params"]["centroids"], "K_b3_centroids.f32");
  ASSERT_EQ(cc["layer_overrides"].size(), 2u);
  for (const auto& o : cc["layer_overrides"]) {
    EXPECT_EQ(o["K"]["params"]["bit_width"], 2) << o.dump();
    EXPECT_EQ(o["K"]["params"]["centroids"], "K_b2_centroids.f32") << o.dump();
  }
  const json& rp = cc["deploy_compatibility"]["reference_plugin"];
  EXPECT_EQ(rp["compatible"], false);
  std::vector<std::string> issues = rp["issues"].get<std::vector<std::string>>();
  EXPECT_TRUE(any_contains(issues, "per-layer bit widths (layers 1,2: b=2; layers 0,3: b=3) in the K stream"))
      << rp.dump();
  EXPECT_FALSE(any_contains(issues, "in the V stream")) << rp.dump();  // V has one width
  // Round trips cover each layer with its own table.
  const json man = read_json_file(bundle() + "/MANIFEST.json");
  EXPECT_EQ(man["roundtrip"]["pass"], true);
  ASSERT_EQ(man["layer_tables"]["pass"], true);
  ASSERT_EQ(man["layer_tables"]["layers"].size(), 4u);
  for (const auto& e : man["layer_tables"]["layers"]) {
    const int l = e["layer"].get<int>();
    EXPECT_EQ(e["K"]["path"], (l == 1 || l == 2) ? "K_b2_centroids.f32" : "K_b3_centroids.f32") << l;
    EXPECT_EQ(e["K"]["table_matches"], true);
    EXPECT_EQ(e["V"]["path"], "V_b2_centroids.f32") << l;
  }
  // deploy.env: the most common K width (a 2-2 tie goes to the run-level b = 3), and a comment
  // naming the layers that differ.
  const auto env = io::read_file(bundle() + "/deploy.env");
  const std::string text(env.begin(), env.end());
  EXPECT_NE(text.find("KAKEYA_K_CENTROIDS_PATH=" + bundle() + "/K_b3_centroids.f32\n"), std::string::npos) << text;
  EXPECT_NE(text.find("KAKEYA_V_CENTROIDS_PATH=" + bundle() + "/V_b2_centroids.f32\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# per-layer bit widths: KAKEYA_K_CENTROIDS_PATH names K_b3_centroids.f32"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("differing: layers 1,2: b=2 (K_b2_centroids.f32"), std::string::npos) << text;
}

TEST_F(BundleV2Test, CheckWarnsAboutThePluginAndRefusesWhatItCannotRead) {
  const BundleCheckReport rep = check_bundle(bundle());
  std::string all;
  for (const auto& e : rep.errors) all += e + "\n";
  EXPECT_TRUE(rep.ok) << all;
  ASSERT_EQ(rep.warnings.size(), 1u);  // the plugin incompatibility, counted as a warning
  EXPECT_NE(rep.warnings[0].find("reference plugin compatibility: per-layer bit widths"), std::string::npos)
      << rep.warnings[0];
  EXPECT_TRUE(any_contains(rep.checks, "layer_tables: 4 layers of K each with the table of its bit width"));
  auto tampered = [&](const std::string& name, const std::function<void(const fs::path&)>& edit) {
    const fs::path d = dir_->path() / name;
    fs::remove_all(d);
    fs::copy(bundle(), d, fs::copy_options::recursive);
    edit(d);
    return check_bundle(d.string());
  };
  auto set_version = [](const fs::path& d, int v) {
    json m = read_json_file((d / "MANIFEST.json").string());
    m["bundle_format_version"] = v;
    io::write_file_atomic((d / "MANIFEST.json").string(), m.dump(2));
  };
  // A newer version than this reader knows is refused.
  auto r3 = tampered("v3", [&](const fs::path& d) { set_version(d, 3); });
  EXPECT_FALSE(r3.ok);
  EXPECT_TRUE(any_contains(r3.errors, "bundle_format_version 3 is newer than this reader's 2; refusing"));
  // Per-layer widths in a bundle that claims version 1 are an error, and so is a second table.
  auto r1 = tampered("v1", [&](const fs::path& d) { set_version(d, 1); });
  EXPECT_FALSE(r1.ok);
  EXPECT_TRUE(any_contains(r1.errors, "they need version 2"));
  EXPECT_TRUE(any_contains(r1.errors, "a second K centroid file"));
  // A width's table missing: the layers using it are named.
  auto rm = tampered("missing", [&](const fs::path& d) { fs::remove(d / "K_b2_centroids.f32"); });
  EXPECT_FALSE(rm.ok);
  EXPECT_TRUE(any_contains(rm.errors, "stream K layers 1,2 use b=2 but the bundle has no K_b2_centroids.f32"));
  // read_calibration_bundle refuses a newer version with a typed error.
  EXPECT_THROW(read_calibration_bundle((dir_->path() / "v3").string()), FormatError);
}

TEST_F(BundleV2Test, AppliedBundleGivesEachLayerItsOwnTableAndReproducesTheExport) {
  const CalibrationBundle b = read_calibration_bundle(bundle());
  EXPECT_EQ(b.tables.size(), 3u);
  const RunConfig base = bundle_run_config(bundle());
  ASSERT_EQ(base.overrides.size(), 2u);
  const RunConfig applied = apply_calibration_bundle(base, b);
  EXPECT_EQ(applied.k.centroids_file, b.tables.at("K_b3"));
  for (const auto& o : applied.overrides) EXPECT_EQ(o.k->centroids_file, b.tables.at("K_b2")) << o.layer;
  RunOptions ro;
  const RunResult same = run_config(cap(), applied, ro);
  EXPECT_EQ(same.total_bytes, export_->run.total_bytes);
  ASSERT_EQ(same.layers.size(), export_->run.layers.size());
  for (size_t l = 0; l < same.layers.size(); ++l) {
    EXPECT_EQ(same.layers[l].k.err.rel_mse(), export_->run.layers[l].k.err.rel_mse()) << l;
    EXPECT_EQ(same.layers[l].v.err.rel_mse(), export_->run.layers[l].v.err.rel_mse()) << l;
  }
}

TEST_F(BundleV2Test, EveryLayerOverriddenToOneWidthHasNoTableForTheUnusedRunLevelWidth) {
  // A plan that moves every layer's V to b = 1 (run-level b = 2): one V table, b = 1, and the
  // run-level width, used by no layer, has none (params.centroids null); applying the bundle
  // runs the run-level width at the layers' width, which has a table.
  test::TempDir t;
  RunConfig c = per_layer_config();
  for (int l = 0; l < 4; ++l) {
    auto it = std::find_if(c.overrides.begin(), c.overrides.end(), [&](const LayerOverride& o) { return o.layer == l; });
    if (it == c.overrides.end()) {
      c.overrides.push_back(LayerOverride{l, std::nullopt, std::nullopt});
      it = std::prev(c.overrides.end());
    }
    it->v = c.v;
    it->v->params["bit_width"] = "1";
  }
  const BundleExportResult r = export_bundle(cap(), c, t.file("b"));
  EXPECT_EQ(r.format_version, 2);
  EXPECT_TRUE(std::find(r.files.begin(), r.files.end(), "V_b1_centroids.f32") != r.files.end());
  EXPECT_TRUE(std::find(r.files.begin(), r.files.end(), "V_b2_centroids.f32") == r.files.end());
  const json cc = read_json_file(t.file("b") + "/codec_config.json");
  EXPECT_TRUE(cc["streams"]["V"]["params"]["centroids"].is_null());
  const BundleCheckReport rep = check_bundle(t.file("b"));
  std::string all;
  for (const auto& e : rep.errors) all += e + "\n";
  EXPECT_TRUE(rep.ok) << all;
  const RunConfig base = bundle_run_config(t.file("b"));
  EXPECT_EQ(base.v.params.at("bit_width"), "1");
  const RunConfig applied = apply_calibration_bundle(base, read_calibration_bundle(t.file("b")));
  EXPECT_EQ(run_config(cap(), applied, RunOptions{}).total_bytes, r.run.total_bytes);
}

}  // namespace
}  // namespace kvwb::sessions
