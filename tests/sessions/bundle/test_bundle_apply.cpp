// Calibration transfer: reading a bundle back, applying its Σ_q factors and centroid tables to
// another capture (out of sample) or to its own (in sample, which reproduces the export's
// measurement run exactly), the provenance of results, sweeps with a bundle, and
// calibration_transfer. Synthetic captures (no real data needed); the real tiny1m WikiText-2 /
// TinyStories case is in tests/app/cli/test_cli.sh.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "base/errors.h"
#include "io/atomic_file.h"
#include "io/synthetic_capture.h"
#include "sessions/bundle/bundle.h"
#include "sessions/bundle/bundle_apply.h"
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

}  // namespace
}  // namespace kvwb::sessions
