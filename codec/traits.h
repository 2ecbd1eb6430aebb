#pragma once
// What the rest of the program may know about a codec, in one table: front ends, the runner, the
// layer plan, bundles and views ask codec_traits() instead of comparing codec names (a check in
// tests/layering forbids such comparisons outside codec/). Also the names of the two enums the
// run configuration shares with the container: the K domain and block_rows.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "codec/codec.h"

namespace kvwb::codec {

/// Domain K is coded in (decisions.md #2). V has no domain.
enum class KDomain : uint8_t { kPreRope = 0, kPostRope = 1 };

/// "pre_rope" | "post_rope".
std::string_view k_domain_name(KDomain d) noexcept;
/// "per_head" | "pooled_heads".
std::string_view block_rows_name(BlockRows b) noexcept;

/// Fixed properties of one codec.
struct CodecTraits {
  CodecId id = CodecId::kKakeyaPca;
  std::string_view name;          // registry name, e.g. "turbo3"
  std::string_view display_name;  // for people, e.g. "TurboQuant 3-bit"
  std::string_view family;        // legend group, e.g. "TurboQuant", "ggml quants"
  /// Block-based (kakeya_pca, besicovitch): the run-level block_size and block_rows apply
  /// (decisions.md #1); every other codec codes per head in token order.
  bool block_codec = false;
  /// K domain when the configuration names none (decisions.md #2).
  KDomain default_k_domain = KDomain::kPostRope;
  /// Reads per-row weights (UnitInput::weights) when its parameters ask for them
  /// (weights=attention).
  bool row_weights = false;
  /// Codes with one scale per (layer, stream) chosen from all of its values
  /// (UnitInput::layer_scale).
  bool layer_scale = false;
  /// Uses a Lloyd-Max centroid table (CodecResources::centroid_table, a `centroids_file`, the
  /// tables of a calibration bundle) of 2^bit_width entries.
  bool centroid_table = false;
  /// Reports the scaled residuals s (EncodeStats::scaled_residuals): outlier rates, histograms.
  bool scaled_residuals = false;
  /// A TurboQuant type: the layer policies of codec-peers.md §1.7 (turbo_policy) act on it.
  bool turbo = false;
  /// The uncompressed bf16 reference (what boundary layers keep), not a compression family.
  bool reference = false;
};

/// Traits of a codec id; throws InvalidArgument for an id outside the registry.
const CodecTraits& codec_traits(CodecId id);
/// Traits of a registry name; throws InvalidArgument naming it and listing every codec name.
const CodecTraits& codec_traits(std::string_view name);
/// The id of a registry name, or nothing (for names read from files that may hold anything).
std::optional<CodecId> find_codec_id(std::string_view name) noexcept;

/// The per-(layer, stream) scale a codec with CodecTraits::layer_scale codes `values` (all values
/// of the layer-stream) with: fp8_e4m3 scale_mode=absmax gives max|x| / 448 (1 when all are 0);
/// every other codec and mode gives 1. `params` are the stream's codec parameters.
float layer_stream_scale(CodecId id, const ParamMap& params, std::span<const float> values);

}  // namespace kvwb::codec
