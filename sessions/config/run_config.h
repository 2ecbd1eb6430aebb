#pragma once
// A run configuration: what `kvwb run`, sweeps, sessions and the GUI evaluate. JSON schema in
// docs/run-config.md. Block parameters are run-level (decisions.md #1); each stream (K, V) has its
// own codec and parameters; per-layer overrides replace a stream's settings for one layer.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "codec/traits.h"
#include "sessions/config/enums.h"

namespace kvwb::sessions {

struct StreamConfig {
  std::string codec = "kakeya_pca";
  codec::ParamMap params;      // codec parameters in text form (see codec_params(codec))
  std::optional<codec::KDomain> k_domain;  // K only; none = the codec's default (decisions #2)
  std::string centroids_file;  // kakeya_pca: calibrated Lloyd-Max table (.f32); "" = Gaussian
};

struct LayerOverride {
  int layer = 0;
  std::optional<StreamConfig> k, v;
};

/// Default of RunConfig::attn_sample: query positions per (sequence, q head).
inline constexpr uint32_t kDefaultAttnSample = 256;

struct RunConfig {
  uint32_t block_size = 512;            // 8 .. 65536
  codec::BlockRows block_rows = codec::BlockRows::kPerHead;
  std::vector<int> layers;              // empty = every full-attention layer in the capture
  bool include_sliding = false;         // sliding layers are kept out unless asked
  std::vector<int> boundary;            // boundary_skip_layers: both streams bf16
  StreamConfig k{"kakeya_pca", {}, {}, ""};
  StreamConfig v{"kakeya_pca", {}, {}, ""};
  std::vector<LayerOverride> overrides;
  std::string q_precond;                // "" = off, "capture" = Σ_q from the capture, else safetensors path
  std::vector<int> q_precond_skip_layers;  // user-chosen, merged with the auto skip rule
  bool q_precond_auto_skip = true;
  std::optional<double> target_cond;    // Tikhonov re-regularisation (K§8.5)
  TurboPolicy turbo_policy = TurboPolicy::kNone;
  bool attention_metrics = true;        // computed when the layer has q_pre
  std::optional<double> attn_scale;     // softmax scale; default 1/sqrt(D)
  /// Attention metrics on a deterministic sample of this many query positions per (sequence,
  /// q head) (docs/attention-sampling.md); 0 = "all": the exact metrics of metrics.md §3.2.
  uint32_t attn_sample = kDefaultAttnSample;
  int threads = 0;                      // 0 = all hardware threads (results do not depend on it)
  Backend backend = Backend::kCpu;
};

/// The domain a K stream codes in: its k_domain, else its codec's default (decisions #2).
codec::KDomain resolved_k_domain(const StreamConfig& k);

/// Parses the JSON schema of docs/run-config.md; unknown keys and bad values throw InvalidArgument
/// naming `source` and the key.
RunConfig run_config_from_json(const nlohmann::json& j, const std::string& source);
/// Canonical JSON: every default filled in (codec parameter defaults included), keys sorted.
nlohmann::json run_config_to_json(const RunConfig& c);
/// sha256 of the canonical JSON text (the result-store key together with the capture sha256).
std::string run_config_hash(const RunConfig& c);
/// Parses "0,1,26,27" or "0-3,7" into a sorted unique list; throws InvalidArgument naming `what`
/// for anything else, and for an index or range end >= io::kMaxLayers (checked before expanding).
std::vector<int> parse_layer_list(const std::string& text, const std::string& what);
/// attn_sample from JSON or a flag: "all" (0) or an integer in 1..1048576; else InvalidArgument
/// naming `where`.
uint32_t parse_attn_sample(const nlohmann::json& v, const std::string& where);
/// A layer index from JSON: an integer in 0..io::kMaxLayers-1, else InvalidArgument naming `where`.
int layer_index_from_json(const nlohmann::json& v, const std::string& where);
/// Largest `threads` value accepted (0 = all hardware threads).
inline constexpr int kMaxThreads = 4096;
/// Checks what run_config_from_json / apply_run_options cannot see key by key: every codec
/// parameter against its codec's specification (type, range, choices; codec/params.h), override
/// layers, attn_scale, target_cond and threads. Throws InvalidArgument naming `source` and the key.
void validate_run_config(const RunConfig& c, const std::string& source);

}  // namespace kvwb::sessions
