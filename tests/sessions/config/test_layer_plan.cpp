// The layer plan (sessions/config/layer_plan.h): layers in scope, boundary layers, per-layer
// overrides, the turbo policies of codec-peers.md §1.7, the resolved K domain; the enums of the
// run configuration at the JSON edge; and the runner and the centroid calibration following the
// plan.
#include <gtest/gtest.h>

#include <algorithm>

#include "base/errors.h"
#include "io/capture.h"
#include "io/synthetic_capture.h"
#include "sessions/bundle/calibration_export.h"
#include "sessions/config/enums.h"
#include "sessions/config/layer_plan.h"
#include "sessions/config/run_config.h"
#include "sessions/config/run_options.h"
#include "sessions/run/runner.h"
#include "tests/error_of.h"
#include "tests/sessions/demo_fixture.h"
#include "tests/test_support.h"

using namespace kvwb;
using kvwb::test::error_of;
using namespace kvwb::sessions;
using codec::CodecId;
using codec::KDomain;

namespace {

/// A capture description with `n` layers (`sliding` ones sliding-window), H_q / H_kv heads.
io::CaptureInfo info_of(int n, int q_heads, int kv_heads, std::vector<int> sliding = {},
                        std::vector<int> absent = {}) {
  io::CaptureInfo info;
  info.path = "/data/model.kvc.h5";
  info.num_layers = n;
  info.num_query_heads = q_heads;
  info.num_kv_heads = kv_heads;
  info.head_dim = 64;
  for (int l = 0; l < n; ++l) {
    if (std::count(absent.begin(), absent.end(), l)) continue;
    io::LayerInfo li;
    li.layer = l;
    li.has_k_pre = li.has_k = li.has_v = li.has_q_pre = true;
    if (std::count(sliding.begin(), sliding.end(), l)) {
      li.attention = "sliding";
      li.sliding_window = 128;
    }
    info.layers.push_back(li);
  }
  return info;
}

RunConfig config(const std::string& k, const std::string& v,
                 TurboPolicy policy = TurboPolicy::kNone) {
  RunConfig c;
  c.k = StreamConfig{k, {}, {}, ""};
  c.v = StreamConfig{v, {}, {}, ""};
  c.turbo_policy = policy;
  return c;
}

std::vector<int> layer_numbers(const std::vector<LayerPlan>& p) {
  std::vector<int> out;
  for (const auto& l : p) out.push_back(l.layer);
  return out;
}

/// "k/v" codec names of every layer of a plan.
std::vector<std::string> codecs(const std::vector<LayerPlan>& p) {
  std::vector<std::string> out;
  for (const auto& l : p) out.push_back(l.k.config.codec + "/" + l.v.config.codec);
  return out;
}

std::vector<std::string> repeat(const std::string& s, size_t n) {
  return std::vector<std::string>(n, s);
}

}  // namespace

TEST(LayerPlan, ScopeIsTheFullAttentionLayersOrTheListedOnes) {
  const auto info = info_of(6, 4, 2, {1, 3}, {5});
  RunConfig c = config("q8_0", "q8_0");
  EXPECT_EQ(layer_numbers(plan_layers(info, c)), (std::vector<int>{0, 2, 4}));
  c.include_sliding = true;
  const auto all = plan_layers(info, c);
  EXPECT_EQ(layer_numbers(all), (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_TRUE(all[1].sliding);
  EXPECT_FALSE(all[2].sliding);
  c.include_sliding = false;
  c.layers = {4, 1};  // as listed, sliding or not
  EXPECT_EQ(layer_numbers(plan_layers(info, c)), (std::vector<int>{4, 1}));
}

TEST(LayerPlan, LayersAndBoundaryLayersOutsideTheCaptureAreRefused) {
  const auto info = info_of(6, 4, 2, {}, {5});
  RunConfig c = config("q8_0", "q8_0");
  c.layers = {0, 5};
  EXPECT_EQ(error_of<InvalidArgument>([&] { plan_layers(info, c); }),
            "layer 5 is not in the capture /data/model.kvc.h5");
  c.layers.clear();
  c.boundary = {0, 7};
  EXPECT_EQ(error_of<InvalidArgument>([&] { plan_layers(info, c); }),
            "boundary layer 7 is not in the capture /data/model.kvc.h5");
  c.boundary = {0};
  c.k.codec = "q9_0";
  EXPECT_THROW(plan_layers(info, c), InvalidArgument);
}

TEST(LayerPlan, BoundaryLayersAreBf16PreRopeWhateverTheConfigurationSays) {
  const auto info = info_of(4, 4, 2);
  RunConfig c = config("turbo3", "kakeya_pca");
  c.v.params["weights"] = "attention";
  c.boundary = {0, 3};
  LayerOverride o;
  o.layer = 3;
  o.k = StreamConfig{"q4_0", {}, KDomain::kPostRope, ""};
  c.overrides = {o};
  const auto p = plan_layers(info, c);
  for (int i : {0, 3}) {
    EXPECT_TRUE(p[i].boundary);
    EXPECT_EQ(p[i].k.codec, CodecId::kBf16);
    EXPECT_EQ(p[i].v.codec, CodecId::kBf16);
    EXPECT_EQ(p[i].k_domain, KDomain::kPreRope);
    EXPECT_FALSE(p[i].v.attention_weights);
  }
  EXPECT_FALSE(p[1].boundary);
  EXPECT_EQ(p[1].k.codec, CodecId::kTurbo3);
  EXPECT_EQ(p[1].k_domain, KDomain::kPostRope);  // turbo3's default (decisions.md #2)
  EXPECT_TRUE(p[1].v.attention_weights);
}

TEST(LayerPlan, OverridesReplaceOneStreamOfOneLayer) {
  const auto info = info_of(4, 4, 2);
  RunConfig c = config("kakeya_pca", "kakeya_pca");
  c.k.params["bit_width"] = "3";
  LayerOverride o;
  o.layer = 2;
  o.v = StreamConfig{"q8_0", {}, {}, ""};
  LayerOverride o2;
  o2.layer = 1;
  o2.k = StreamConfig{"kakeya_pca", {{"bit_width", "4"}}, KDomain::kPostRope, ""};
  c.overrides = {o, o2};
  const auto p = plan_layers(info, c);
  EXPECT_EQ(codecs(p), (std::vector<std::string>{"kakeya_pca/kakeya_pca", "kakeya_pca/kakeya_pca",
                                                 "kakeya_pca/q8_0", "kakeya_pca/kakeya_pca"}));
  EXPECT_EQ(p[0].k.config.params.at("bit_width"), "3");
  EXPECT_EQ(p[1].k.config.params.at("bit_width"), "4");
  EXPECT_EQ(p[0].k_domain, KDomain::kPreRope);
  EXPECT_EQ(p[1].k_domain, KDomain::kPostRope);  // the override's explicit domain
}

TEST(LayerPlan, PooledHeadsApplyToBlockCodecsOnly) {
  const auto info = info_of(2, 4, 2);
  RunConfig c = config("besicovitch", "q8_0");
  EXPECT_FALSE(plan_layers(info, c)[0].k.pooled);
  c.block_rows = codec::BlockRows::kPooledHeads;
  const auto p = plan_layers(info, c);
  EXPECT_TRUE(p[0].k.pooled);
  EXPECT_FALSE(p[0].v.pooled);
}

// ---- turbo_policy (codec-peers.md §1.7) on a 12-layer model, GQA 4:2 (no auto-asymmetric K) ----

TEST(LayerPlan, TurboPolicyNoneKeepsTheChosenTypes) {
  EXPECT_EQ(codecs(plan_layers(info_of(12, 4, 2), config("turbo3", "turbo2"))),
            repeat("turbo3/turbo2", 12));
}

TEST(LayerPlan, TurboPolicyMode1And2UpgradeBothStreamsAtTheEdges) {
  const auto info = info_of(12, 4, 2);
  auto m1 = codecs(plan_layers(info, config("turbo3", "kakeya_pca", TurboPolicy::kMode1)));
  for (int l = 0; l < 12; ++l)
    EXPECT_EQ(m1[l], (l < 4 || l >= 8) ? "q8_0/q8_0" : "turbo3/kakeya_pca") << "mode1 layer " << l;
  auto m2 = codecs(plan_layers(info, config("turbo4", "turbo3", TurboPolicy::kMode2)));
  for (int l = 0; l < 12; ++l)
    EXPECT_EQ(m2[l], l >= 4 ? "q8_0/q8_0" : "turbo4/turbo3") << "mode2 layer " << l;
  // Modes 1 and 2 act only when K is a turbo type.
  EXPECT_EQ(codecs(plan_layers(info, config("q4_0", "turbo3", TurboPolicy::kMode1))),
            repeat("q4_0/turbo3", 12));
}

TEST(LayerPlan, TurboPolicyModes5To7ChangeV) {
  const auto info = info_of(12, 4, 2);
  auto m5 = codecs(plan_layers(info, config("q8_0", "turbo3", TurboPolicy::kMode5)));
  auto m6 = codecs(plan_layers(info, config("q8_0", "turbo3", TurboPolicy::kMode6)));
  auto m7 = codecs(plan_layers(info, config("q8_0", "turbo3", TurboPolicy::kMode7)));
  for (int l = 0; l < 12; ++l) {
    const bool edge2 = l < 2 || l >= 10;
    EXPECT_EQ(m5[l], edge2 ? "q8_0/turbo4" : "q8_0/turbo2") << "mode5 layer " << l;
    EXPECT_EQ(m6[l], l >= 4 ? "q8_0/turbo4" : "q8_0/turbo2") << "mode6 layer " << l;
    EXPECT_EQ(m7[l], edge2 ? "q8_0/q8_0" : "q8_0/turbo2") << "mode7 layer " << l;
  }
  // V not a turbo type: nothing to do.
  EXPECT_EQ(codecs(plan_layers(info, config("turbo3", "kivi", TurboPolicy::kMode7))),
            repeat("turbo3/kivi", 12));
}

TEST(LayerPlan, TurboPolicyForkAutoIsMode7ForTurbo2V) {
  const auto info = info_of(12, 4, 2);
  auto a = codecs(plan_layers(info, config("turbo3", "turbo2", TurboPolicy::kForkAuto)));
  for (int l = 0; l < 12; ++l)
    EXPECT_EQ(a[l], (l < 2 || l >= 10) ? "turbo3/q8_0" : "turbo3/turbo2") << l;
  EXPECT_EQ(codecs(plan_layers(info, config("turbo3", "turbo3", TurboPolicy::kForkAuto))),
            repeat("turbo3/turbo3", 12));
}

TEST(LayerPlan, TurboPolicyNeedsEightLayersForItsModes) {
  const auto info = info_of(7, 4, 2);
  for (TurboPolicy p :
       {TurboPolicy::kMode1, TurboPolicy::kMode5, TurboPolicy::kMode7, TurboPolicy::kForkAuto})
    EXPECT_EQ(codecs(plan_layers(info, config("turbo3", "turbo2", p))), repeat("turbo3/turbo2", 7));
}

TEST(LayerPlan, TurboPolicyUpgradesKFirstOnWideGqa) {
  // Step 1: K turbo, K == V and floor(H_q / H_kv) >= 6: K becomes q8_0 on every layer; the mode
  // then sees the upgraded K (mode 1 needs a turbo K, so it does nothing).
  const auto info = info_of(12, 12, 2);
  EXPECT_EQ(codecs(plan_layers(info, config("turbo3", "turbo3", TurboPolicy::kMode1))),
            repeat("q8_0/turbo3", 12));
  auto m5 = codecs(plan_layers(info, config("turbo3", "turbo3", TurboPolicy::kMode5)));
  EXPECT_EQ(m5[0], "q8_0/turbo4");
  EXPECT_EQ(m5[5], "q8_0/turbo2");
  // K != V, or a narrow group: no upgrade.
  EXPECT_EQ(codecs(plan_layers(info, config("turbo3", "turbo4", TurboPolicy::kMode6)))[0],
            "turbo3/turbo2");
  EXPECT_EQ(
      codecs(plan_layers(info_of(12, 10, 2), config("turbo3", "turbo3", TurboPolicy::kMode6)))[0],
      "turbo3/turbo2");
}

TEST(LayerPlan, OverridesWinOverTheTurboPolicyAndReplacedStreamsKeepAnExplicitDomain) {
  const auto info = info_of(12, 4, 2);
  RunConfig c = config("turbo3", "turbo3", TurboPolicy::kMode1);
  c.k.k_domain = KDomain::kPreRope;
  c.k.params["rotate"] = "hadamard";
  LayerOverride o;
  o.layer = 0;
  o.v = StreamConfig{"q4_0", {}, {}, ""};
  c.overrides = {o};
  const auto p = plan_layers(info, c);
  EXPECT_EQ(p[0].k.config.codec, "q8_0");
  EXPECT_EQ(p[0].v.config.codec, "q4_0");  // override
  // The policy's q8_0 replaces the whole stream: fresh parameters, an explicit domain kept as
  // post-RoPE.
  EXPECT_TRUE(p[0].k.config.params.empty());
  EXPECT_EQ(p[0].k.config.k_domain, KDomain::kPostRope);
  EXPECT_EQ(p[0].k_domain, KDomain::kPostRope);
  EXPECT_EQ(p[5].k.config.codec, "turbo3");
  EXPECT_EQ(p[5].k_domain, KDomain::kPreRope);
  EXPECT_EQ(p[5].k.config.params.at("rotate"), "hadamard");
}

// ---- enums at the JSON edge --------------------------------------------------------------------

TEST(ConfigEnums, ParseWhatTheyPrintAndListTheValuesOtherwise) {
  for (TurboPolicy p :
       {TurboPolicy::kNone, TurboPolicy::kForkAuto, TurboPolicy::kMode1, TurboPolicy::kMode2,
        TurboPolicy::kMode5, TurboPolicy::kMode6, TurboPolicy::kMode7})
    EXPECT_EQ(parse_turbo_policy(turbo_policy_name(p), "x"), p);
  for (Backend b : {Backend::kCpu, Backend::kCuda, Backend::kAuto})
    EXPECT_EQ(parse_backend(backend_name(b), "x"), b);
  EXPECT_EQ(parse_block_rows("pooled_heads", "x"), codec::BlockRows::kPooledHeads);
  EXPECT_EQ(parse_k_domain("post_rope", "x"), KDomain::kPostRope);
  EXPECT_EQ(
      error_of<InvalidArgument>([] { parse_turbo_policy("mode3", "run.json: turbo_policy"); }),
      "run.json: turbo_policy must be one of none, fork_auto, mode1, mode2, mode5, mode6, "
      "mode7 (got 'mode3')");
  EXPECT_THROW(parse_backend("gpu", "x"), InvalidArgument);
  EXPECT_THROW(parse_block_rows("Per_head", "x"), InvalidArgument);
  EXPECT_THROW(parse_k_domain("pre", "x"), InvalidArgument);
}

TEST(ConfigEnums, JsonSpellingsAndHashAreUnchanged) {
  // The canonical JSON of a configuration using every enum, and its hash, as before the enums.
  const nlohmann::json in = {{"block_rows", "pooled_heads"},
                             {"turbo_policy", "mode5"},
                             {"backend", "auto"},
                             {"k", {{"codec", "besicovitch"}, {"k_domain", "post_rope"}}},
                             {"v", {{"codec", "turbo3"}}}};
  const RunConfig c = run_config_from_json(in, "test");
  EXPECT_EQ(c.block_rows, codec::BlockRows::kPooledHeads);
  EXPECT_EQ(c.turbo_policy, TurboPolicy::kMode5);
  EXPECT_EQ(c.backend, Backend::kAuto);
  EXPECT_EQ(c.k.k_domain, KDomain::kPostRope);
  const nlohmann::json out = run_config_to_json(c);
  EXPECT_EQ(out["block_rows"], "pooled_heads");
  EXPECT_EQ(out["turbo_policy"], "mode5");
  EXPECT_EQ(out["k"]["k_domain"], "post_rope");
  EXPECT_FALSE(out.contains("backend"));
  EXPECT_EQ(run_config_to_json(RunConfig{})["k"]["k_domain"], "pre_rope");
  // config_hash of `kvwb run` configurations that use the enums, as the string-typed
  // implementation printed them (the regression baseline's run1, run5, run9 and run16).
  auto hash = [](const nlohmann::json& options) {
    return run_config_hash(apply_run_options({}, options, "test"));
  };
  EXPECT_EQ(hash({{"block_size", 256}}),
            "8f943d644175fdb426bfa56d8d3857b45264d705d196e92308b10cf2e31b84b8");
  EXPECT_EQ(hash({{"block_size", 64},
                  {"share_basis_v", true},
                  {"skeleton_dtype", "bf16"},
                  {"block_rows", "pooled_heads"}}),
            "c1f9eed78dbfa0eec90ba8e8c04f3ed866f3af5e71d20930e87d97a406b765a5");
  EXPECT_EQ(hash({{"k_codec", "turbo4"}, {"v_codec", "turbo3"}, {"turbo_policy", "mode1"}}),
            "9c4e27882b8f649593f0fc94f1fea3fbb1298f5c85123498eeaaafbe49d5357e");
  EXPECT_EQ(hash({{"k_codec", "kakeya_pca"},
                  {"v_codec", "turbo3"},
                  {"block_size", 256},
                  {"k_domain", "post_rope"}}),
            "7eb3bb37ace29a5a53c13ac86c98f0dda7d7a857ef47c943448fa167a9f6f378");
  EXPECT_EQ(error_of<InvalidArgument>([] {
              run_config_from_json({{"block_rows", "rows"}}, "cfg.json");
            }),
            "cfg.json: block_rows must be one of per_head, pooled_heads (got 'rows')");
}

// ---- the runner and the centroid calibration follow the plan ------------------------------------

namespace {

/// A 10-layer synthetic capture (1 kv head, 2 query heads, D = 64, 2 × 64 tokens).
const std::string& ten_layer_capture() {
  return test::demo_capture(
      "ten.kvc.h5",
      {.layers = 10, .kv_heads = 1, .q_heads = 2, .head_dim = 64, .seqs = 2, .tokens = 64});
}

}  // namespace

TEST(LayerPlan, TheRunnerRunsWhatThePlanSays) {
  RunConfig c = config("turbo3", "kakeya_pca", TurboPolicy::kMode1);
  c.block_size = 32;
  c.boundary = {9};
  c.attention_metrics = false;
  c.threads = 2;
  RunOptions ro;
  ro.compute_sha256 = false;
  const RunResult r = run_config(ten_layer_capture(), c, ro);
  const auto plan = plan_layers(io::CaptureReader(ten_layer_capture()).info(), c);
  ASSERT_EQ(r.layers.size(), plan.size());
  for (size_t i = 0; i < plan.size(); ++i) {
    EXPECT_EQ(r.layers[i].layer, plan[i].layer);
    EXPECT_EQ(r.layers[i].boundary, plan[i].boundary);
    EXPECT_EQ(r.layers[i].k.codec, plan[i].k.config.codec) << "layer " << plan[i].layer;
    EXPECT_EQ(r.layers[i].v.codec, plan[i].v.config.codec) << "layer " << plan[i].layer;
    EXPECT_EQ(r.layers[i].k.k_domain, plan[i].k_domain);
  }
  EXPECT_EQ(r.layers[0].v.codec, "q8_0");
  EXPECT_EQ(r.layers[5].v.codec, "kakeya_pca");
  EXPECT_EQ(r.layers[9].v.codec, "bf16");
}

TEST(LayerPlan, CentroidCalibrationPoolsOnlyTheLayersThatRunTheTableCodec) {
  // K turbo3, V kakeya_pca, mode 1 on 10 layers: V is q8_0 on layers 0-3 and 6-9, so only layers
  // 4 and 5 code V with kakeya_pca and feed its table (before the plan, all ten were listed).
  RunConfig c = config("turbo3", "kakeya_pca", TurboPolicy::kMode1);
  c.block_size = 32;
  c.threads = 2;
  const auto cals = calibrate_centroids(ten_layer_capture(), c);
  ASSERT_EQ(cals.size(), 1u);
  EXPECT_EQ(cals[0].stream, "V");
  EXPECT_EQ(cals[0].layers, (std::vector<int>{4, 5}));
  // The same as writing the policy's choice out as overrides.
  RunConfig o = config("turbo3", "kakeya_pca");
  o.block_size = 32;
  o.threads = 2;
  for (int l : {0, 1, 2, 3, 6, 7, 8, 9}) {
    LayerOverride x;
    x.layer = l;
    x.k = x.v = StreamConfig{"q8_0", {}, {}, ""};
    o.overrides.push_back(x);
  }
  const auto same = calibrate_centroids(ten_layer_capture(), o);
  ASSERT_EQ(same.size(), 1u);
  EXPECT_EQ(same[0].layers, cals[0].layers);
  EXPECT_GT(cals[0].samples_pooled, 0u);
  EXPECT_EQ(same[0].samples_pooled, cals[0].samples_pooled);
  EXPECT_EQ(same[0].fit.table, cals[0].fit.table);
}
