// The configuration-editor model without Qt: one widget spec per codec::ParamSpec of every codec
// (kind, range, choices, tooltip), configuration -> form -> configuration round trips through the
// core's canonical JSON, the JSON of edited forms, and the core's typed errors naming the field.
#include <gtest/gtest.h>

#include "base/errors.h"
#include "codec/codec.h"
#include "tests/views/models/view_model_fixture.h"
#include "views/models/config_model.h"

namespace kvwb::views {
namespace {

using nlohmann::json;
using test::contains;

/// Every field the form edits set away from its default, plus the keys it carries.
sessions::RunConfig config_with_overrides() {
  return test::config_of(json::parse(R"({
    "block_size": 256, "block_rows": "pooled_heads", "layers": [0, 2, 3], "include_sliding": true,
    "boundary": [0, 3],
    "k": {"codec": "besicovitch", "k_domain": "post_rope",
          "params": {"direction_bits": 8, "magnitude_mode": "quantized", "subtract_mean": true}},
    "v": {"codec": "kakeya_pca", "centroids_file": "/tmp/V_b2.f32",
          "params": {"bit_width": 2, "share_basis": true, "variance_ratio": 0.9,
                     "pca_method": "randomized", "rsvd_target_rank": 24,
                     "outlier_threshold": 3.5, "seed": 12345}},
    "overrides": [{"layer": 2, "k": {"codec": "q8_0"}}],
    "q_precond": "/tmp/sigma_q.safetensors", "q_precond_skip_layers": [1],
    "q_precond_auto_skip": false, "target_cond": 1000.0, "turbo_policy": "mode2",
    "attention_metrics": false, "attn_sample": "all", "attn_scale": 0.125, "threads": 2, "backend": "auto"})"));
}

/// The message of the InvalidArgument that config_from_form(f) throws ("" when it does not).
std::string form_error(const ConfigForm& f) {
  try {
    config_from_form(f);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

TEST(ConfigModel, OneWidgetSpecPerParamSpecOfEveryCodec) {
  ASSERT_GE(codec::codec_names().size(), 10u);
  size_t kinds[5] = {};
  for (const auto& name : codec::codec_names()) {
    const auto& specs = codec::codec_params(name);
    const auto ws = param_widget_specs(name);
    ASSERT_EQ(ws.size(), specs.size()) << name;
    for (size_t i = 0; i < specs.size(); ++i) {
      const auto& s = specs[i];
      const auto& w = ws[i];
      SCOPED_TRACE(name + "." + s.name);
      EXPECT_EQ(w.name, s.name);  // ParamSpec order
      EXPECT_EQ(w.default_value, s.default_value);
      EXPECT_EQ(w.optional, s.default_value.empty());
      EXPECT_TRUE(contains(w.tooltip, s.help));
      EXPECT_TRUE(contains(w.tooltip, "[" + s.name + ": "));
      EXPECT_TRUE(contains(w.tooltip, "default " + (s.default_value.empty() ? std::string("none")
                                                                            : s.default_value)));
      const bool ranged = !(s.min == 0 && s.max == 0);
      switch (s.type) {
        case codec::ParamType::kBool:
          EXPECT_EQ(w.kind, ParamWidgetKind::kCheck);
          break;
        case codec::ParamType::kChoice:
          EXPECT_EQ(w.kind, ParamWidgetKind::kCombo);
          EXPECT_EQ(w.choices, s.choices);
          EXPECT_FALSE(w.choices.empty());
          break;
        case codec::ParamType::kInt:
          if (ranged && s.max <= 2147483647.0) {
            EXPECT_EQ(w.kind, ParamWidgetKind::kSpin);
            EXPECT_EQ(w.min, w.optional ? s.min - 1 : s.min);  // min − 1 shows "(none)"
            EXPECT_EQ(w.max, s.max);
          } else {
            EXPECT_EQ(w.kind, ParamWidgetKind::kLine);  // seeds and other unbounded integers
          }
          break;
        case codec::ParamType::kFloat:
          if (ranged && !w.optional) {
            EXPECT_EQ(w.kind, ParamWidgetKind::kDoubleSpin);
            EXPECT_EQ(w.min, s.min);
            EXPECT_EQ(w.max, s.max);
            EXPECT_EQ(w.decimals, 4);
          } else {
            EXPECT_EQ(w.kind, ParamWidgetKind::kLine);
          }
          break;
        case codec::ParamType::kTable:
          EXPECT_EQ(w.kind, ParamWidgetKind::kLine);
          break;
      }
      ++kinds[static_cast<int>(w.kind)];
    }
  }
  // Today's codecs use every kind but the double spin box (their float parameters are unbounded).
  for (ParamWidgetKind k : {ParamWidgetKind::kSpin, ParamWidgetKind::kCombo,
                            ParamWidgetKind::kCheck, ParamWidgetKind::kLine})
    EXPECT_GT(kinds[static_cast<int>(k)], 0u) << static_cast<int>(k);
  EXPECT_THROW(param_widget_specs("no_such_codec"), InvalidArgument);
}

TEST(ConfigModel, LayerListText) {
  EXPECT_EQ(layer_list_text({}), "");
  EXPECT_EQ(layer_list_text({3}), "3");
  EXPECT_EQ(layer_list_text({0, 1}), "0,1");
  EXPECT_EQ(layer_list_text({0, 1, 2, 5}), "0-2,5");
  EXPECT_EQ(layer_list_text({0, 2, 3, 4, 7, 8, 10, 11, 12, 13}), "0,2-4,7,8,10-13");
  EXPECT_EQ(sessions::parse_layer_list(layer_list_text({0, 2, 3, 4, 9}), "layers"),
            (std::vector<int>{0, 2, 3, 4, 9}));
}

TEST(ConfigModel, FormShowsTheConfiguration) {
  const ConfigForm d = form_from_config(sessions::RunConfig{});
  EXPECT_EQ(d.block_size, "512");
  EXPECT_EQ(d.block_rows, "per_head");
  EXPECT_EQ(d.layers, "");
  EXPECT_EQ(d.boundary, "");
  EXPECT_EQ(d.q_precond_mode, "off");
  EXPECT_EQ(d.target_cond, "");
  EXPECT_EQ(d.turbo_policy, "none");
  EXPECT_EQ(d.backend, "cpu");
  EXPECT_TRUE(d.attention_metrics);
  EXPECT_EQ(d.k.codec, "kakeya_pca");
  // Every parameter is filled with its spec default.
  for (const auto& s : codec::codec_params("kakeya_pca"))
    EXPECT_EQ(d.k.params.at(s.name), s.default_value);

  const ConfigForm f = form_from_config(config_with_overrides());
  EXPECT_EQ(f.block_size, "256");
  EXPECT_EQ(f.block_rows, "pooled_heads");
  EXPECT_EQ(f.layers, "0,2,3");
  EXPECT_TRUE(f.include_sliding);
  EXPECT_EQ(f.boundary, "0,3");
  EXPECT_EQ(f.k.codec, "besicovitch");
  EXPECT_EQ(f.k.k_domain, "post_rope");
  EXPECT_EQ(f.k.params.at("direction_bits"), "8");
  EXPECT_EQ(f.v.params.at("pca_method"), "randomized");
  EXPECT_EQ(f.v.params.at("seed"), "12345");
  EXPECT_EQ(f.v.centroids_file, "/tmp/V_b2.f32");
  EXPECT_EQ(f.q_precond_mode, "file");
  EXPECT_EQ(f.q_precond_file, "/tmp/sigma_q.safetensors");
  EXPECT_FALSE(f.q_precond_auto_skip);
  EXPECT_EQ(f.target_cond, "1000.0");
  EXPECT_EQ(f.turbo_policy, "mode2");
  EXPECT_FALSE(f.attention_metrics);
  EXPECT_EQ(f.backend, "auto");
  // Keys the form does not edit are carried unchanged.
  const json canon = sessions::run_config_to_json(config_with_overrides());
  EXPECT_EQ(f.carried.at("overrides"), canon.at("overrides"));
  EXPECT_EQ(f.carried.at("q_precond_skip_layers"), json::array({1}));
  EXPECT_EQ(f.carried.at("attn_scale"), 0.125);
  EXPECT_EQ(f.carried.at("threads"), 2);
  EXPECT_EQ(form_from_config(test::config_of({{"q_precond", "capture"}})).q_precond_mode,
            "capture");
}

TEST(ConfigModel, ConfigurationFormConfigurationRoundTrips) {
  for (const auto& cfg : {sessions::RunConfig{}, config_with_overrides(), test::demo_config()}) {
    const json want = sessions::run_config_to_json(cfg);
    const sessions::RunConfig back = config_from_form(form_from_config(cfg));
    EXPECT_EQ(sessions::run_config_to_json(back).dump(), want.dump());
    EXPECT_EQ(sessions::run_config_hash(back), sessions::run_config_hash(cfg));
    // Execution choices, outside the canonical JSON, come through as well.
    EXPECT_EQ(back.threads, cfg.threads);
    EXPECT_TRUE(back.backend == cfg.backend);
  }
}

TEST(ConfigModel, FormJsonLeavesUnsetOutAndPassesTextThrough) {
  ConfigForm f = form_from_config(sessions::RunConfig{});
  f.k.params["seed"] = "";  // unset: the spec default applies
  f.k.params["bit_width"] = "4";
  f.q_precond_mode = "capture";
  f.target_cond = "50";
  json j = form_to_json(f);
  EXPECT_FALSE(j["k"]["params"].contains("seed"));
  EXPECT_EQ(j["k"]["params"]["bit_width"], "4");
  EXPECT_FALSE(j["k"].contains("centroids_file"));
  EXPECT_FALSE(j["v"].contains("k_domain"));
  EXPECT_EQ(j["block_size"], 512);
  EXPECT_EQ(j["q_precond"], "capture");
  EXPECT_EQ(j["target_cond"], 50.0);
  EXPECT_EQ(j["threads"], 0);  // carried
  f.block_size = "12x";
  f.target_cond = "";
  f.q_precond_mode = "off";
  j = form_to_json(f);
  EXPECT_EQ(j["block_size"], "12x");  // passed as text so the core reports it
  EXPECT_TRUE(j["target_cond"].is_null());
  EXPECT_TRUE(j["q_precond"].is_null());
}

TEST(ConfigModel, RejectsBadValuesWithTheCoresErrors) {
  const ConfigForm good = form_from_config(sessions::RunConfig{});
  auto with = [&](auto edit) {
    ConfigForm f = good;
    edit(f);
    return form_error(f);
  };
  EXPECT_EQ(form_error(good), "");
  std::string e = with([](ConfigForm& f) { f.block_size = "4"; });
  EXPECT_TRUE(contains(e, "block_size must be in 8..65536")) << e;
  e = with([](ConfigForm& f) { f.block_size = "70000"; });
  EXPECT_TRUE(contains(e, "block_size must be in 8..65536")) << e;
  EXPECT_EQ(with([](ConfigForm& f) { f.block_size = "abc"; }),
            "block size: 'abc' is not an integer (8..65536)");
  EXPECT_EQ(with([](ConfigForm& f) { f.block_size = ""; }),
            "block size: enter a number of rows (8..65536)");
  e = with([](ConfigForm& f) { f.target_cond = "0.5"; });
  EXPECT_TRUE(contains(e, "target_cond")) << e;
  EXPECT_EQ(with([](ConfigForm& f) { f.target_cond = "x"; }),
            "target_cond: 'x' is not a number (> 1, or empty for none)");
  e = with([](ConfigForm& f) { f.k.params["seed"] = "not-a-seed"; });
  EXPECT_TRUE(contains(e, "K stream") && contains(e, "seed")) << e;
  e = with([](ConfigForm& f) { f.v.params["bit_width"] = "9"; });
  EXPECT_TRUE(contains(e, "V stream") && contains(e, "bit_width")) << e;
  e = with([](ConfigForm& f) { f.v.params["no_such_param"] = "1"; });
  EXPECT_TRUE(contains(e, "V stream") && contains(e, "no_such_param")) << e;
  e = with([](ConfigForm& f) { f.boundary = "0,x"; });
  EXPECT_TRUE(contains(e, "boundary")) << e;
  e = with([](ConfigForm& f) { f.q_precond_mode = "file"; });
  EXPECT_TRUE(contains(e, "choose a Σ_q safetensors file")) << e;
  EXPECT_THROW(validate_stream_params("kivi", {{"bits", "3"}}, "V stream"), InvalidArgument);
  EXPECT_NO_THROW(validate_stream_params("kivi", {{"bits", "4"}, {"group", ""}}, "V stream"));
}

TEST(ConfigModel, AttentionSampleIsAFieldOfTheForm) {
  // The default stays out of the canonical JSON (configuration hashes made before the option
  // stay valid); any other value, "all" included, goes through and changes the hash.
  ConfigForm f = form_from_config(sessions::RunConfig{});
  EXPECT_EQ(f.attn_sample, "256");
  EXPECT_FALSE(sessions::run_config_to_json(config_from_form(f)).contains("attn_sample"));
  EXPECT_EQ(sessions::run_config_hash(config_from_form(f)), sessions::run_config_hash(sessions::RunConfig{}));
  f.attn_sample = "all";
  EXPECT_EQ(config_from_form(f).attn_sample, 0u);
  f.attn_sample = "64";
  const sessions::RunConfig c64 = config_from_form(f);
  EXPECT_EQ(c64.attn_sample, 64u);
  EXPECT_NE(sessions::run_config_hash(c64), sessions::run_config_hash(sessions::RunConfig{}));
  EXPECT_EQ(form_from_config(c64).attn_sample, "64");
  EXPECT_EQ(form_from_config(test::config_of({{"attn_sample", "all"}})).attn_sample, "all");
  for (const char* bad : {"0", "-3", "12x", "", "2000000"}) {
    f.attn_sample = bad;
    const std::string e = form_error(f);
    EXPECT_TRUE(contains(e, "attn_sample") && contains(e, "1..1048576")) << bad << ": " << e;
  }
}

TEST(ConfigModel, EditsBecomeExactlyThatConfiguration) {
  ConfigForm f = form_from_config(sessions::RunConfig{});
  f.v = StreamForm{"kivi", {{"bits", "4"}}, "", ""};
  f.boundary = "0,3";
  const auto want = test::config_of(
      {{"v", {{"codec", "kivi"}, {"params", {{"bits", 4}}}}}, {"boundary", {0, 3}}});
  EXPECT_EQ(sessions::run_config_hash(config_from_form(f)), sessions::run_config_hash(want));
}

}  // namespace
}  // namespace kvwb::views
