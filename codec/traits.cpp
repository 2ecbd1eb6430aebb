#include "codec/traits.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "base/errors.h"
#include "codec/codecs/fp8.h"

namespace kvwb::codec {

namespace {

constexpr size_t kCodecCount = static_cast<size_t>(CodecId::kBf16);

CodecTraits make(CodecId id, std::string_view display, std::string_view family) {
  CodecTraits t;
  t.id = id;
  t.name = codec_name(id);
  t.display_name = display;
  t.family = family;
  return t;
}

/// The table, indexed by container codec id − 1.
const std::array<CodecTraits, kCodecCount>& table() {
  static const std::array<CodecTraits, kCodecCount> t = [] {
    std::array<CodecTraits, kCodecCount> a;
    auto at = [&](CodecId id) -> CodecTraits& { return a[static_cast<size_t>(id) - 1]; };
    at(CodecId::kKakeyaPca) = make(CodecId::kKakeyaPca, "Kakeya-PCA", "Kakeya-PCA");
    at(CodecId::kKakeyaPca).block_codec = true;
    at(CodecId::kKakeyaPca).default_k_domain = KDomain::kPreRope;
    at(CodecId::kKakeyaPca).row_weights = true;
    at(CodecId::kKakeyaPca).centroid_table = true;
    at(CodecId::kKakeyaPca).scaled_residuals = true;
    at(CodecId::kBesicovitch) = make(CodecId::kBesicovitch, "Besicovitch", "Besicovitch");
    at(CodecId::kBesicovitch).block_codec = true;
    at(CodecId::kBesicovitch).default_k_domain = KDomain::kPreRope;
    at(CodecId::kTurbo2) = make(CodecId::kTurbo2, "TurboQuant 2-bit", "TurboQuant");
    at(CodecId::kTurbo3) = make(CodecId::kTurbo3, "TurboQuant 3-bit", "TurboQuant");
    at(CodecId::kTurbo4) = make(CodecId::kTurbo4, "TurboQuant 4-bit", "TurboQuant");
    for (CodecId id : {CodecId::kTurbo2, CodecId::kTurbo3, CodecId::kTurbo4}) at(id).turbo = true;
    at(CodecId::kQ8_0) = make(CodecId::kQ8_0, "ggml q8_0", "ggml quants");
    at(CodecId::kQ4_0) = make(CodecId::kQ4_0, "ggml q4_0", "ggml quants");
    at(CodecId::kQ4_1) = make(CodecId::kQ4_1, "ggml q4_1", "ggml quants");
    at(CodecId::kQ5_0) = make(CodecId::kQ5_0, "ggml q5_0", "ggml quants");
    at(CodecId::kQ5_1) = make(CodecId::kQ5_1, "ggml q5_1", "ggml quants");
    at(CodecId::kIq4Nl) = make(CodecId::kIq4Nl, "ggml iq4_nl", "ggml quants");
    at(CodecId::kKivi) = make(CodecId::kKivi, "KIVI", "KIVI");
    at(CodecId::kFp8E4m3) = make(CodecId::kFp8E4m3, "FP8 E4M3", "FP8 E4M3");
    at(CodecId::kFp8E4m3).layer_scale = true;
    at(CodecId::kBf16) = make(CodecId::kBf16, "bf16", "bf16");
    at(CodecId::kBf16).reference = true;
    return a;
  }();
  return t;
}

}  // namespace

std::string_view k_domain_name(KDomain d) noexcept {
  return d == KDomain::kPreRope ? "pre_rope" : "post_rope";
}

std::string_view block_rows_name(BlockRows b) noexcept {
  return b == BlockRows::kPooledHeads ? "pooled_heads" : "per_head";
}

const CodecTraits& codec_traits(CodecId id) {
  const auto i = static_cast<size_t>(id);
  if (i < 1 || i > kCodecCount) throw InvalidArgument("unknown codec id " + std::to_string(i));
  return table()[i - 1];
}

const CodecTraits& codec_traits(std::string_view name) {
  return codec_traits(codec_id_from_name(name));
}

std::optional<CodecId> find_codec_id(std::string_view name) noexcept {
  for (const CodecTraits& t : table())
    if (t.name == name) return t.id;
  return std::nullopt;
}

float layer_stream_scale(CodecId id, const ParamMap& params, std::span<const float> values) {
  if (!codec_traits(id).layer_scale) return 1.0f;
  const auto mode = params.find("scale_mode");
  if (mode == params.end() || mode->second != "absmax") return 1.0f;
  float mx = 0;
  for (float v : values) mx = std::max(mx, std::fabs(v));
  return fp8_absmax_scale(mx);
}

}  // namespace kvwb::codec
