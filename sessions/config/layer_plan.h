#pragma once
// The layer plan: the one place that decides which layers a run covers and with which K and V
// settings each of them runs. The runner, the boundary planner, the bundle and calibration
// exports and the end-to-end evaluation all read it, so they cannot disagree.
//
// A layer's streams, in order of precedence (codec-peers.md §1.7, docs/run-config.md):
//   boundary layer (cfg.boundary)  → both streams bf16, K pre-RoPE;
//   per-layer override             → replaces that stream's settings;
//   turbo_policy                   → may change the codec of either stream per layer;
//   run-level k / v                → otherwise.
#include <vector>

#include "codec/traits.h"
#include "io/capture.h"
#include "sessions/config/run_config.h"

namespace kvwb::sessions {

/// One stream (K or V) of one layer as it runs.
struct StreamPlan {
  StreamConfig config;  // its settings (bf16 passthrough in a boundary layer)
  codec::CodecId codec = codec::CodecId::kBf16;  // of config.codec
  bool pooled = false;  // units pool the kv heads (block codec and block_rows = pooled_heads)
  bool attention_weights =
      false;  // rows weighted by attention mass (a row-weight codec, weights=attention)
  /// The codec's traits.
  const codec::CodecTraits& traits() const { return codec::codec_traits(codec); }
};

/// One layer of a run.
struct LayerPlan {
  int layer = 0;
  bool boundary = false;  // kept in bf16 (boundary_skip_layers)
  bool sliding =
      false;  // sliding-window attention (in scope through include_sliding or cfg.layers)
  codec::KDomain k_domain =
      codec::KDomain::kPreRope;  // K is coded in it; pre-RoPE in boundary layers
  StreamPlan k, v;
  /// k or v.
  const StreamPlan& stream(bool is_k) const { return is_k ? k : v; }
};

/// The layers in scope, in run order: cfg.layers as listed, or every captured full-attention
/// layer in capture order (sliding ones too with include_sliding), each with its resolved streams.
/// Throws InvalidArgument naming the capture when a layer of cfg.layers or cfg.boundary is not in
/// it, and for an unknown codec name.
std::vector<LayerPlan> plan_layers(const io::CaptureInfo& info, const RunConfig& cfg);

/// The plan of one layer of `info`, in scope or not (the turbo policy reads info's num_layers and
/// head counts). Throws InvalidArgument for an unknown codec name.
LayerPlan plan_layer(const io::CaptureInfo& info, const RunConfig& cfg, int layer);

}  // namespace kvwb::sessions
