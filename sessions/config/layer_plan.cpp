#include "sessions/config/layer_plan.h"

#include <algorithm>
#include <string>

#include "base/errors.h"

namespace kvwb::sessions {

namespace {

using codec::CodecId;

/// Gives `sc` the codec `id` unless it already has it; a replaced stream keeps only an explicit
/// K domain, as post-RoPE (the fork's types are post-RoPE codecs).
void set_codec(StreamConfig& sc, CodecId id) {
  if (codec::codec_id_from_name(sc.codec) == id) return;
  sc = StreamConfig{std::string(codec::codec_name(id)),
                    {},
                    sc.k_domain ? std::optional(codec::KDomain::kPostRope) : std::nullopt,
                    ""};
}

bool is_turbo(const StreamConfig& sc) { return codec::codec_traits(sc.codec).turbo; }

/// codec-peers.md §1.7 on the run-level streams of layer l of an n-layer model.
void apply_turbo_policy(TurboPolicy policy, const io::CaptureInfo& info, int l, StreamConfig& k,
                        StreamConfig& v) {
  if (policy == TurboPolicy::kNone) return;
  const int n = info.num_layers;
  // Step 1: auto-asymmetric K upgrade.
  if (is_turbo(k) && k.codec == v.codec && info.num_kv_heads > 0 &&
      info.num_query_heads / info.num_kv_heads >= 6)
    set_codec(k, CodecId::kQ8_0);
  // Step 2: the layer-adaptive mode, with the possibly upgraded K type.
  TurboPolicy mode = policy;
  if (policy == TurboPolicy::kForkAuto)
    mode = codec::codec_id_from_name(v.codec) == CodecId::kTurbo2 && n >= 8 ? TurboPolicy::kMode7
                                                                            : TurboPolicy::kNone;
  if (n < 8) return;
  const bool edge2 = l < 2 || l >= n - 2;
  switch (mode) {
    case TurboPolicy::kMode1:
      if (is_turbo(k) && (l < 4 || l >= n - 4)) {
        set_codec(k, CodecId::kQ8_0);
        set_codec(v, CodecId::kQ8_0);
      }
      break;
    case TurboPolicy::kMode2:
      if (is_turbo(k) && l >= n - 8) {
        set_codec(k, CodecId::kQ8_0);
        set_codec(v, CodecId::kQ8_0);
      }
      break;
    case TurboPolicy::kMode5:
      if (is_turbo(v)) set_codec(v, edge2 ? CodecId::kTurbo4 : CodecId::kTurbo2);
      break;
    case TurboPolicy::kMode6:
      if (is_turbo(v)) set_codec(v, l >= n - 8 ? CodecId::kTurbo4 : CodecId::kTurbo2);
      break;
    case TurboPolicy::kMode7:
      if (is_turbo(v)) set_codec(v, edge2 ? CodecId::kQ8_0 : CodecId::kTurbo2);
      break;
    case TurboPolicy::kNone:
    case TurboPolicy::kForkAuto:
      break;
  }
}

StreamPlan stream_plan(StreamConfig sc, const RunConfig& cfg) {
  StreamPlan p;
  p.codec = codec::codec_id_from_name(sc.codec);
  const codec::CodecTraits& t = codec::codec_traits(p.codec);
  p.pooled = t.block_codec && cfg.block_rows == codec::BlockRows::kPooledHeads;
  const auto w = sc.params.find("weights");
  p.attention_weights = t.row_weights && w != sc.params.end() && w->second == "attention";
  p.config = std::move(sc);
  return p;
}

}  // namespace

LayerPlan plan_layer(const io::CaptureInfo& info, const RunConfig& cfg, int layer) {
  LayerPlan lp;
  lp.layer = layer;
  const io::LayerInfo* li = info.layer(layer);
  lp.sliding = li && li->attention == "sliding";
  lp.boundary = std::find(cfg.boundary.begin(), cfg.boundary.end(), layer) != cfg.boundary.end();
  if (lp.boundary) {
    const StreamConfig bf16{std::string(codec::codec_name(CodecId::kBf16)), {}, {}, ""};
    lp.k = stream_plan(bf16, cfg);
    lp.v = stream_plan(bf16, cfg);
    lp.k_domain = codec::KDomain::kPreRope;
    return lp;
  }
  StreamConfig k = cfg.k, v = cfg.v;
  apply_turbo_policy(cfg.turbo_policy, info, layer, k, v);
  for (const auto& o : cfg.overrides) {
    if (o.layer != layer) continue;
    if (o.k) k = *o.k;
    if (o.v) v = *o.v;
  }
  lp.k_domain = resolved_k_domain(k);
  lp.k = stream_plan(std::move(k), cfg);
  lp.v = stream_plan(std::move(v), cfg);
  return lp;
}

std::vector<LayerPlan> plan_layers(const io::CaptureInfo& info, const RunConfig& cfg) {
  std::vector<int> layers;
  if (!cfg.layers.empty()) {
    for (int l : cfg.layers) {
      if (!info.layer(l))
        throw InvalidArgument("layer " + std::to_string(l) + " is not in the capture " + info.path);
      layers.push_back(l);
    }
  } else {
    for (const auto& li : info.layers)
      if (li.attention != "sliding" || cfg.include_sliding) layers.push_back(li.layer);
  }
  for (int b : cfg.boundary)
    if (!info.layer(b))
      throw InvalidArgument("boundary layer " + std::to_string(b) + " is not in the capture " +
                            info.path);
  std::vector<LayerPlan> out;
  out.reserve(layers.size());
  for (int l : layers) out.push_back(plan_layer(info, cfg, l));
  return out;
}

}  // namespace kvwb::sessions
