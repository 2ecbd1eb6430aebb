// codec/traits.h: every trait checked against what the codec actually does, so the table cannot
// drift from the codecs (decisions.md #1, #2; codec-peers.md §1.7, §4).
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "base/errors.h"
#include "codec/codec.h"
#include "codec/format/half.h"
#include "codec/math/rng.h"
#include "codec/traits.h"

using namespace kvwb;
using namespace kvwb::codec;

namespace {

constexpr size_t kD = 64, kRows = 96;

/// Key-like rows [kRows, kD] from the project generator.
const std::vector<float>& rows() {
  static const std::vector<float> r = [] {
    std::vector<float> d(kRows * kD);
    rng::synthetic(d.data(), kRows, kD, 8, 0.05, 7);
    return d;
  }();
  return r;
}

EncodedUnit encode(const std::string& name, uint32_t block_size, bool collect_residuals = false,
                   const float* weights = nullptr, const ParamMap& params = {}) {
  auto c = make_codec(name, params, kD);
  UnitInput in;
  in.rows = rows().data();
  in.weights = weights;
  in.n = kRows;
  in.dim = kD;
  in.info.block_size = block_size;
  in.collect_residuals = collect_residuals;
  return c->encode(in);
}

bool has_param(const std::string& name, const std::string& param, const std::string& choice = "") {
  for (const auto& p : codec_params(name))
    if (p.name == param)
      return choice.empty() ||
             std::find(p.choices.begin(), p.choices.end(), choice) != p.choices.end();
  return false;
}

}  // namespace

TEST(CodecTraits, EveryRegistryNameHasItsTraits) {
  std::set<std::string_view> display;
  for (const std::string& name : codec_names()) {
    const CodecTraits& t = codec_traits(name);
    EXPECT_EQ(t.name, name);
    EXPECT_EQ(t.id, codec_id_from_name(name));
    EXPECT_EQ(&codec_traits(t.id), &t);
    ASSERT_TRUE(find_codec_id(name).has_value());
    EXPECT_EQ(*find_codec_id(name), t.id);
    EXPECT_FALSE(t.display_name.empty());
    EXPECT_FALSE(t.family.empty());
    EXPECT_TRUE(display.insert(t.display_name).second)
        << "display name used twice: " << t.display_name;
  }
  EXPECT_EQ(display.size(), 14u);
}

TEST(CodecTraits, UnknownNamesThrowListingEveryName) {
  EXPECT_FALSE(find_codec_id("turbo5").has_value());
  EXPECT_FALSE(find_codec_id("").has_value());
  try {
    codec_traits("turbo5");
    FAIL() << "no error for an unknown codec";
  } catch (const InvalidArgument& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("turbo5"), std::string::npos) << m;
    for (const auto& n : codec_names())
      EXPECT_NE(m.find(n), std::string::npos) << n << " not listed: " << m;
  }
  EXPECT_THROW(codec_traits(static_cast<CodecId>(0)), InvalidArgument);
  EXPECT_THROW(codec_traits(static_cast<CodecId>(15)), InvalidArgument);
}

TEST(CodecTraits, BlockCodecsAreExactlyThoseThatDependOnBlockSize) {
  for (const std::string& name : codec_names()) {
    const EncodedUnit a = encode(name, 32), b = encode(name, 48);
    const auto da = decode_container(a.bytes, name), db = decode_container(b.bytes, name);
    const bool depends = a.reported_bytes != b.reported_bytes || da.rows != db.rows;
    EXPECT_EQ(codec_traits(name).block_codec, depends) << name;
  }
}

TEST(CodecTraits, DefaultKDomainIsPreRopeForTheBlockCodecsOnly) {
  // decisions.md #2: kakeya_pca and besicovitch pre-RoPE, every peer and bf16 post-RoPE.
  for (const std::string& name : codec_names()) {
    const CodecTraits& t = codec_traits(name);
    EXPECT_EQ(t.default_k_domain, t.block_codec ? KDomain::kPreRope : KDomain::kPostRope) << name;
  }
  EXPECT_EQ(codec_traits("kakeya_pca").default_k_domain, KDomain::kPreRope);
  EXPECT_EQ(codec_traits("q8_0").default_k_domain, KDomain::kPostRope);
}

TEST(CodecTraits, RowWeightsCentroidTablesAndLayerScalesFollowTheParameters) {
  for (const std::string& name : codec_names()) {
    const CodecTraits& t = codec_traits(name);
    EXPECT_EQ(t.row_weights, has_param(name, "weights", "attention")) << name;
    EXPECT_EQ(t.centroid_table, has_param(name, "centroids")) << name;
    EXPECT_EQ(t.layer_scale, has_param(name, "scale_mode", "absmax")) << name;
  }
}

TEST(CodecTraits, RowWeightsChangeWhatARowWeightCodecCodes) {
  std::vector<float> w(kRows, 1.0f);
  for (size_t r = 0; r < kRows / 4; ++r) w[r] = 20.0f;  // the first rows dominate the fit
  for (const std::string& name : codec_names()) {
    if (!codec_traits(name).row_weights) continue;
    const ParamMap p{{"weights", "attention"}};
    const EncodedUnit plain = encode(name, 48, false, std::vector<float>(kRows, 1.0f).data(), p);
    const EncodedUnit weighted = encode(name, 48, false, w.data(), p);
    EXPECT_NE(plain.bytes, weighted.bytes) << name;
  }
}

TEST(CodecTraits, ScaledResidualsComeFromExactlyTheCodecsThatSaySo) {
  for (const std::string& name : codec_names()) {
    const EncodedUnit e = encode(name, 32, true);
    EXPECT_EQ(codec_traits(name).scaled_residuals, !e.stats.scaled_residuals.empty()) << name;
  }
}

TEST(CodecTraits, TurboTypesAndTheReference) {
  for (const std::string& name : codec_names()) {
    const CodecTraits& t = codec_traits(name);
    EXPECT_EQ(t.turbo, name.rfind("turbo", 0) == 0) << name;  // tests may compare names
    EXPECT_EQ(t.turbo, t.family == "TurboQuant") << name;
    EXPECT_EQ(t.reference, name == "bf16") << name;
  }
  // The reference codes every value as bf16: 2 bytes a value, decoded = bf16 rounding.
  const CodecTraits& ref = codec_traits(CodecId::kBf16);
  const EncodedUnit e = encode(std::string(ref.name), 32);
  EXPECT_EQ(e.reported_bytes, 2 * kRows * kD);
  const auto d = decode_container(e.bytes, "bf16");
  for (size_t i = 0; i < d.rows.size(); ++i) ASSERT_EQ(d.rows[i], round_bf16(rows()[i])) << i;
}

TEST(CodecTraits, LayerStreamScale) {
  const std::vector<float> x{0.5f, -896.0f, 3.0f};
  EXPECT_FLOAT_EQ(layer_stream_scale(CodecId::kFp8E4m3, {{"scale_mode", "absmax"}}, x),
                  2.0f);  // 896 / 448
  EXPECT_FLOAT_EQ(layer_stream_scale(CodecId::kFp8E4m3, {{"scale_mode", "unit"}}, x), 1.0f);
  EXPECT_FLOAT_EQ(layer_stream_scale(CodecId::kFp8E4m3, {}, x),
                  1.0f);  // default unit (decisions.md #3)
  EXPECT_FLOAT_EQ(layer_stream_scale(CodecId::kFp8E4m3, {{"scale_mode", "absmax"}},
                                     std::vector<float>(4, 0.0f)),
                  1.0f);
  EXPECT_FLOAT_EQ(layer_stream_scale(CodecId::kQ8_0, {{"scale_mode", "absmax"}}, x), 1.0f);
}

TEST(CodecTraits, EnumSpellings) {
  EXPECT_EQ(k_domain_name(KDomain::kPreRope), "pre_rope");
  EXPECT_EQ(k_domain_name(KDomain::kPostRope), "post_rope");
  EXPECT_EQ(block_rows_name(BlockRows::kPerHead), "per_head");
  EXPECT_EQ(block_rows_name(BlockRows::kPooledHeads), "pooled_heads");
}
