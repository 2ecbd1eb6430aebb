// Calibration bundles: export from the real tiny1m capture, check_bundle on good and corrupted
// bundles, the reference's Qwen Σ_q artefact, overwrite refusal, atomicity.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/errors.h"
#include "io/atomic_file.h"
#include "sessions/bundle/bundle.h"
#include "sessions/bundle/calibration_export.h"
#include "sessions/config/run_config.h"
#include "tests/sessions/bundle/bundle_fixture.h"
#include "tests/test_support.h"

namespace kvwb::sessions {
namespace {

namespace fs = std::filesystem;

/// The small configuration of the tests: layers 0-3, block 256, Σ_q from the capture, K b=3, V b=2.
RunConfig small_config() {
  RunConfig c = test::bundle_test_config(256);
  c.layers = {0, 1, 2, 3};
  return c;
}

/// Names of the entries of `dir` (files and folders), sorted.
std::vector<std::string> entry_names(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

bool contains(const std::vector<std::string>& v, const std::string& needle) {
  return std::any_of(v.begin(), v.end(), [&](const std::string& s) { return s.find(needle) != std::string::npos; });
}

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += x + "\n";
  return s;
}

/// check_bundle(d) fails and its errors contain each of `expected`.
void expect_check_fails_with(const fs::path& d, const std::vector<std::string>& expected) {
  const auto rep = check_bundle(d.string());
  EXPECT_FALSE(rep.ok);
  for (const std::string& e : expected)
    EXPECT_TRUE(contains(rep.errors, e)) << "no error contains '" << e << "' in:\n"
                                         << joined(rep.errors);
}

void flip_byte(const fs::path& p, size_t offset) {
  auto b = io::read_file(p.string());
  ASSERT_LT(offset, b.size());
  b[offset] ^= 0x5A;
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

/// One exported bundle shared by the tests of this suite (the export runs the codec twice).
class BundleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string cap = test::real_file("tiny1m_tinystories.kvc.h5");
    if (cap.empty()) return;
    dir_ = new test::TempDir();
    capture_ = cap;
    result_ = new BundleExportResult(export_bundle(cap, small_config(), dir_->file("tiny1m-k3v2")));
  }
  static void TearDownTestSuite() {
    delete result_;
    delete dir_;
    result_ = nullptr;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!result_) GTEST_SKIP() << "real data 'tiny1m_tinystories.kvc.h5' not found; skipping";
  }
  /// A private copy of the exported bundle to corrupt.
  fs::path copy_bundle(const test::TempDir& t) {
    const fs::path d = t.path() / "copy";
    fs::copy(result_->out_dir, d, fs::copy_options::recursive);
    return d;
  }
  static test::TempDir* dir_;
  static std::string capture_;
  static BundleExportResult* result_;
};
test::TempDir* BundleTest::dir_ = nullptr;
std::string BundleTest::capture_;
BundleExportResult* BundleTest::result_ = nullptr;

TEST_F(BundleTest, ExportWritesExactlyTheSpecFilesAndPassesTheCheck) {
  const std::vector<std::string> want = {"K_b3_centroids.f32", "MANIFEST.json",       "V_b2_centroids.f32",
                                         "codec_config.json",  "deploy.env",          "sigma_q.json",
                                         "sigma_q.safetensors"};
  EXPECT_EQ(result_->files, want);
  std::vector<std::string> on_disk;
  for (const auto& e : fs::directory_iterator(result_->out_dir)) on_disk.push_back(e.path().filename().string());
  std::sort(on_disk.begin(), on_disk.end());
  EXPECT_EQ(on_disk, want);
  // Nothing temporary left next to the bundle.
  for (const auto& e : fs::directory_iterator(dir_->path())) EXPECT_EQ(e.path().filename().string(), "tiny1m-k3v2");

  const auto rep = check_bundle(result_->out_dir);
  EXPECT_TRUE(rep.ok) << joined(rep.errors);
  EXPECT_TRUE(rep.warnings.empty()) << joined(rep.warnings);
  ASSERT_EQ(rep.roundtrip.size(), 8u);  // 4 layers x 2 kv heads
  for (const auto& p : rep.roundtrip) {
    EXPECT_LE(p.fwd_err, kBundleRoundTripBar);
    EXPECT_LE(p.rev_err, kBundleRoundTripBar);
    EXPECT_LE(p.factor_err_rel, kBundleRoundTripBar);
  }
  EXPECT_EQ(fs::file_size(fs::path(result_->out_dir) / "K_b3_centroids.f32"), 32u);
  EXPECT_EQ(fs::file_size(fs::path(result_->out_dir) / "V_b2_centroids.f32"), 16u);
  // §2.4: 8 + N + 3 · n_written · H_kv · D² · 4 with 4 layers, H_kv = 2, D = 64.
  const auto st = io::read_file(result_->out_dir + "/sigma_q.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, st.data(), 8);
  EXPECT_EQ((8 + n) % 8, 0u);
  EXPECT_EQ(st.size(), 8 + n + 3ull * 4 * 2 * 64 * 64 * 4);

  const auto& m = result_->manifest;
  EXPECT_EQ(m["bundle_format_version"], 1);
  EXPECT_EQ(m["source_capture"]["sha256"], io::sha256_file(capture_));
  EXPECT_EQ(m["in_sample"], true);
  EXPECT_EQ(m["roundtrip"]["pass"], true);
  EXPECT_EQ(m["centroids"]["K"]["bits"], 3);
  EXPECT_GT(m["centroids"]["K"]["samples_used"].get<uint64_t>(), 0u);

  const auto cc = nlohmann::json::parse(io::read_file(result_->out_dir + "/codec_config.json"));
  EXPECT_EQ(cc["streams"]["K"]["params"]["centroids"], "K_b3_centroids.f32");
  EXPECT_EQ(cc["streams"]["K"]["params"]["seed"], "0xCAFEBABE");
  EXPECT_EQ(cc["block_size"], 256);
  EXPECT_EQ(cc["layers_in_scope"], nlohmann::json({0, 1, 2, 3}));
  const double ratio = cc["selection"]["summary"]["ratio_vs_bf16"].get<double>();
  EXPECT_NEAR(ratio, result_->run.ratio_vs_bf16(), 1e-12);
  EXPECT_GT(ratio, 1.0);
  EXPECT_TRUE(cc["selection"]["summary"]["attn_kl"].is_number());

  const auto env = io::read_file(result_->out_dir + "/deploy.env");
  const std::string text(env.begin(), env.end());
  EXPECT_NE(text.find("KAKEYA_SIGMA_Q_PATH=" + result_->out_dir + "/sigma_q.safetensors\n"), std::string::npos);
  EXPECT_NE(text.find("KAKEYA_USE_M2_CENTROIDS=1\n"), std::string::npos);
  EXPECT_NE(text.find("KAKEYA_DISABLE_SIGMA_Q=0\n"), std::string::npos);
  EXPECT_NE(text.find("KAKEYA_SKIP_LAYERS=\n"), std::string::npos);  // no layer is auto-skipped (§3 example)
  EXPECT_EQ(text.find("KAKEYA_OUTLIER_THRESHOLD"), std::string::npos);
  EXPECT_TRUE(result_->deploy_left_out.empty());
}

TEST_F(BundleTest, CorruptedCentroidFileFailsWithChecksumMessage) {
  test::TempDir t;
  const fs::path d = copy_bundle(t);
  flip_byte(d / "K_b3_centroids.f32", 5);
  expect_check_fails_with(d, {"K_b3_centroids.f32: SHA-256 differs from MANIFEST.json"});
}

TEST_F(BundleTest, NonAscendingCentroidsFailEvenWithoutManifest) {
  test::TempDir t;
  const fs::path d = copy_bundle(t);
  auto b = io::read_file((d / "V_b2_centroids.f32").string());
  std::swap_ranges(b.begin(), b.begin() + 4, b.begin() + 4);  // swap entries 0 and 1
  io::write_file_atomic((d / "V_b2_centroids.f32").string(), b);
  fs::remove(d / "MANIFEST.json");
  expect_check_fails_with(d, {"V_b2_centroids.f32: not strictly ascending at entries 0 and 1",
                              "MANIFEST.json: missing"});
}

TEST_F(BundleTest, CorruptedSafetensorsFails) {
  test::TempDir t;
  const fs::path d = copy_bundle(t);
  // Flip a byte in the data section: layer_0_chol[0][0][1] (strict upper triangle, must be 0).
  const auto st = io::read_file((d / "sigma_q.safetensors").string());
  uint64_t n = 0;
  std::memcpy(&n, st.data(), 8);
  flip_byte(d / "sigma_q.safetensors", 8 + n + 4 + 3);
  expect_check_fails_with(d, {"sigma_q.safetensors: SHA-256 differs",
                              "layer_0, kv head 0: chol is not lower triangular"});
}

TEST_F(BundleTest, DeletedFileAndEditedManifestFail) {
  test::TempDir t;
  const fs::path d = copy_bundle(t);
  fs::remove(d / "deploy.env");
  expect_check_fails_with(d, {"deploy.env: missing", "files lists deploy.env, which is missing"});

  test::TempDir t2;
  const fs::path d2 = copy_bundle(t2);
  auto man = nlohmann::json::parse(io::read_file((d2 / "MANIFEST.json").string()));
  man["files"][0]["size_bytes"] = 33;
  man["bundle_format_version"] = 3;  // version 2 is known (§10)
  io::write_file_atomic((d2 / "MANIFEST.json").string(), man.dump(2));
  expect_check_fails_with(d2, {"K_b3_centroids.f32: size 32 bytes differs from MANIFEST.json's 33",
                               "bundle_format_version 3 is newer"});
}

TEST_F(BundleTest, ExtraFileAndInconsistentDeployEnvFail) {
  test::TempDir t;
  const fs::path d = copy_bundle(t);
  std::ofstream(d / "notes.txt") << "x";
  auto env = io::read_file((d / "deploy.env").string());
  std::string text(env.begin(), env.end());
  const size_t at = text.find("\nKAKEYA_DISABLE_SIGMA_Q=0\n");  // the variable, not the comment
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 26, "\nKAKEYA_DISABLE_SIGMA_Q=1\n");
  io::write_file_atomic((d / "deploy.env").string(), text);
  expect_check_fails_with(
      d, {"notes.txt: unexpected file",
          "KAKEYA_DISABLE_SIGMA_Q=1 does not match codec_config.json (expected 0)"});
}

TEST_F(BundleTest, ExistingFolderRefusedWithoutForceAndReplacedWithIt) {
  test::TempDir t;
  const fs::path d = t.path() / "b";
  fs::copy(result_->out_dir, d, fs::copy_options::recursive);  // a bundle this tool wrote
  const auto old_manifest = io::read_file((d / "MANIFEST.json").string());
  RunConfig c = small_config();
  c.layers = {1};
  c.q_precond.clear();
  try {
    export_bundle(capture_, c, d.string());
    FAIL() << "expected 'bundle folder exists'";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("bundle folder exists"), std::string::npos) << e.what();
  }
  EXPECT_EQ(io::read_file((d / "MANIFEST.json").string()), old_manifest);
  BundleExportOptions o;
  o.force = true;
  o.calibrate_centroids = false;  // Gaussian tables: keeps this test fast
  const auto r = export_bundle(capture_, c, d.string(), o);
  const auto rep = check_bundle(d.string());
  EXPECT_TRUE(rep.ok) << joined(rep.errors);
  // Without q_precond Σ_q files still ship (the capture has q_pre) but whitening is disabled.
  const auto env = io::read_file((d / "deploy.env").string());
  const std::string text(env.begin(), env.end());
  EXPECT_NE(text.find("KAKEYA_DISABLE_SIGMA_Q=1\n"), std::string::npos);
  EXPECT_EQ(text.find("KAKEYA_USE_M2_CENTROIDS"), std::string::npos);
  EXPECT_EQ(r.manifest["centroids"]["K"]["source"], "gaussian");
  EXPECT_EQ(entry_names(t.path()), std::vector<std::string>{"b"});
}

TEST_F(BundleTest, ForceReplacesOnlyABundle) {
  // --force never deletes a folder that is not recognisably a bundle (issue 14 #6): a foreign
  // file, a capture or a subfolder makes the export refuse and leaves everything in place.
  test::TempDir t;
  RunConfig c = small_config();
  c.layers = {1};
  c.q_precond.clear();
  BundleExportOptions o;
  o.force = true;
  o.calibrate_centroids = false;
  const fs::path d = t.path() / "b";
  fs::create_directories(d);
  std::ofstream(d / "keep.txt") << "old";
  EXPECT_THROW(export_bundle(capture_, c, d.string(), o), InvalidArgument);
  EXPECT_TRUE(fs::exists(d / "keep.txt"));
  // The capture's own folder (it holds the capture) is refused too.
  const fs::path cap_dir = t.path() / "with-capture";
  fs::create_directories(cap_dir);
  fs::copy_file(capture_, cap_dir / "input.kvc.h5");
  EXPECT_THROW(export_bundle((cap_dir / "input.kvc.h5").string(), c, cap_dir.string(), o), InvalidArgument);
  EXPECT_TRUE(fs::exists(cap_dir / "input.kvc.h5"));
  // A bundle with an extra subfolder is not ours either.
  const fs::path d2 = t.path() / "b2";
  fs::copy(result_->out_dir, d2, fs::copy_options::recursive);
  fs::create_directories(d2 / "notes");
  EXPECT_THROW(export_bundle(capture_, c, d2.string(), o), InvalidArgument);
  EXPECT_TRUE(fs::exists(d2 / "notes"));
}

TEST_F(BundleTest, FailureMidExportLeavesNoPartialFolder) {
  test::TempDir t;
  RunConfig c = small_config();
  c.layers = {1};
  c.k.centroids_file = t.file("does-not-exist.f32");
  const fs::path d = t.path() / "b";
  EXPECT_THROW(export_bundle(capture_, c, d.string()), IoError);
  EXPECT_FALSE(fs::exists(d));
  for (const auto& e : fs::directory_iterator(t.path())) ADD_FAILURE() << "left behind: " << e.path();

  // With --force over an existing bundle: the old one stays untouched.
  fs::copy(result_->out_dir, d, fs::copy_options::recursive);
  BundleExportOptions o;
  o.force = true;
  EXPECT_THROW(export_bundle(capture_, c, d.string(), o), IoError);
  EXPECT_TRUE(check_bundle(d.string()).ok);
  EXPECT_EQ(entry_names(t.path()), std::vector<std::string>{"b"});
}

TEST_F(BundleTest, PerLayerBitWidthsExportAsVersion2WithATablePerWidth) {
  // bundle-format.md §10 on the real capture: layer 2's K at b = 4, the others at b = 3.
  test::TempDir t;
  RunConfig c = small_config();
  c.q_precond_auto_skip = false;  // the recomputed table below runs layer 2 alone
  LayerOverride o;
  o.layer = 2;
  o.k = c.k;
  o.k->params["bit_width"] = "4";
  c.overrides.push_back(o);
  const BundleExportResult r = export_bundle(capture_, c, t.file("b"));
  EXPECT_EQ(r.format_version, 2);
  const std::vector<std::string> want = {"K_b3_centroids.f32", "K_b4_centroids.f32", "MANIFEST.json",
                                         "V_b2_centroids.f32", "codec_config.json",  "deploy.env",
                                         "sigma_q.json",       "sigma_q.safetensors"};
  EXPECT_EQ(r.files, want);
  EXPECT_EQ(r.manifest["bundle_format_version"], 2);
  EXPECT_EQ(r.manifest["centroids"]["K"][1]["path"], "K_b4_centroids.f32");
  EXPECT_EQ(r.manifest["centroids"]["K"][1]["layers"], nlohmann::json({2}));
  EXPECT_EQ(r.manifest["centroids"]["K"][0]["layers"], nlohmann::json({0, 1, 3}));
  // The b = 4 table is calibrated on layer 2 alone.
  RunConfig only = c;
  only.overrides.clear();
  only.layers = {2};
  only.k.params["bit_width"] = "4";
  const auto cals = calibrate_centroids(capture_, only);
  ASSERT_EQ(cals[0].stream, "K");
  const auto file = io::read_file(t.file("b") + "/K_b4_centroids.f32");
  ASSERT_EQ(file.size(), 64u);
  EXPECT_EQ(std::memcmp(file.data(), cals[0].fit.table.data(), 64), 0);
  EXPECT_TRUE(contains(r.deploy_issues, "per-layer bit widths (layers 0,1,3: b=3; layers 2: b=4)")) << joined(r.deploy_issues);
  const auto rep = check_bundle(t.file("b"));
  EXPECT_TRUE(rep.ok) << joined(rep.errors);
  EXPECT_EQ(rep.warnings.size(), 1u) << joined(rep.warnings);
  EXPECT_TRUE(contains(rep.warnings, "reference plugin compatibility: per-layer bit widths")) << joined(rep.warnings);
  // The same Σ_q as the uniform bundle: widths do not touch the whitening.
  EXPECT_EQ(io::read_file(t.file("b") + "/sigma_q.safetensors"),
            io::read_file(result_->out_dir + "/sigma_q.safetensors"));
}

TEST_F(BundleTest, OverridesAtTheRunLevelWidthKeepTheVersion1Bundle) {
  // A plan-style configuration whose overrides repeat the run-level widths: one width per stream,
  // so a version 1 bundle whose tables are byte-for-byte those of the configuration without them.
  test::TempDir t;
  RunConfig c = small_config();
  for (int l : {0, 1, 2, 3}) {
    LayerOverride o;
    o.layer = l;
    o.k = c.k;
    o.v = c.v;
    c.overrides.push_back(o);
  }
  const BundleExportResult r = export_bundle(capture_, c, t.file("b"));
  EXPECT_EQ(r.format_version, 1);
  EXPECT_EQ(r.files, result_->files);
  for (const char* f : {"K_b3_centroids.f32", "V_b2_centroids.f32", "sigma_q.safetensors", "sigma_q.json"})
    EXPECT_EQ(io::read_file(t.file("b") + "/" + f), io::read_file(result_->out_dir + "/" + f)) << f;
  // The version 1 manifest layout: no version 2 fields, one centroid report per stream.
  std::vector<std::string> keys;
  for (auto it = r.manifest.begin(); it != r.manifest.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"bundle_format_version", "tool", "created_utc", "source_capture",
                                            "in_sample", "files", "roundtrip", "centroids"}));
  EXPECT_TRUE(r.manifest["centroids"]["K"].is_object());
  EXPECT_FALSE(contains(r.deploy_issues, "per-layer bit widths"));
  const auto rep = check_bundle(t.file("b"));
  EXPECT_TRUE(rep.ok) << joined(rep.errors);
  EXPECT_TRUE(rep.warnings.empty()) << joined(rep.warnings);
}

TEST(BundleCheck, ReferenceQwenSigmaQIsAcceptedAsPartialArtefact) {
  KVWB_REQUIRE_REAL(st, "qwen2_5_0_5b_sigma_q.safetensors");
  KVWB_REQUIRE_REAL(js, "qwen2_5_0_5b_sigma_q.json");
  test::TempDir t;
  fs::copy_file(st, t.path() / "sigma_q.safetensors");
  fs::copy_file(js, t.path() / "sigma_q.json");
  const auto rep = check_bundle(t.path().string(), {.partial = true});
  EXPECT_TRUE(rep.ok) << joined(rep.errors);
  EXPECT_TRUE(contains(rep.warnings, "MANIFEST.json: missing (partial bundle)")) << joined(rep.warnings);
  EXPECT_TRUE(contains(rep.warnings, "no __metadata__")) << joined(rep.warnings);
  // The reference computed L⁻¹ with a general inverse: tiny non-zeros above the diagonal.
  EXPECT_TRUE(contains(rep.warnings, "strict-upper inv_chol entries are not exactly 0")) << joined(rep.warnings);
  ASSERT_EQ(rep.roundtrip.size(), 48u);  // 24 layers x 2 kv heads
  double rev = 0, factor = 0;
  for (const auto& p : rep.roundtrip) {
    rev = std::max(rev, p.rev_err);
    factor = std::max(factor, p.factor_err_rel);
  }
  EXPECT_LT(rev, 1e-5);  // §7.1: 2.4e-6 for this artefact
  EXPECT_LT(factor, 1e-6);
  // As a full bundle it lacks the other files.
  const auto full = check_bundle(t.path().string());
  EXPECT_FALSE(full.ok);
  EXPECT_TRUE(contains(full.errors, "codec_config.json: missing")) << joined(full.errors);
  EXPECT_TRUE(contains(full.errors, "inv_chol is not lower triangular")) << joined(full.errors);
}

TEST(BundleCheck, DeployPlanListsWhatDeployEnvCannotExpress) {
  nlohmann::json cc = {
      {"boundary_skip_layers", {0, 3}},
      {"q_precond", {{"enabled", true}, {"q_precond_skip_layers", {1}}}},
      {"streams",
       {{"K", {{"codec", "kakeya_pca"}, {"params", {{"outlier_threshold", 0.0}, {"centroids", "gaussian"}}}}},
        {"V", {{"codec", "q8_0"}, {"params", nlohmann::json::object()}}}}},
      {"layer_overrides", {{{"layer", 2}}}}};
  const auto plan = plan_deploy_env(cc, {"sigma_q.safetensors", "sigma_q.json", "K_b3_centroids.f32"});
  std::map<std::string, std::string> vars(plan.vars.begin(), plan.vars.end());
  EXPECT_EQ(vars["KAKEYA_SKIP_LAYERS"], "1");
  EXPECT_EQ(vars["KAKEYA_BOUNDARY_SKIP_LAYERS"], "0,3");
  EXPECT_EQ(vars["KAKEYA_DISABLE_SIGMA_Q"], "0");
  EXPECT_EQ(vars.count("KAKEYA_OUTLIER_THRESHOLD"), 0u);
  EXPECT_EQ(vars.count("KAKEYA_USE_M2_CENTROIDS"), 0u);
  EXPECT_TRUE(contains(plan.left_out, "V codec q8_0")) << joined(plan.left_out);
  EXPECT_TRUE(contains(plan.left_out, "K outlier_threshold 0")) << joined(plan.left_out);
  EXPECT_TRUE(contains(plan.left_out, "per-layer overrides (layers 2)")) << joined(plan.left_out);
}

}  // namespace
}  // namespace kvwb::sessions
