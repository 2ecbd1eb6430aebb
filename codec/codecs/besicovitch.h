#pragma once
// Besicovitch product codec, specification version 1 (codec-besicovitch.md).
//
// Every head vector (length D) is cut into G = D/g groups of g consecutive coordinates; each group
// is stored as a direction index into a fixed codebook of M = 2^db lines through the origin plus a
// signed magnitude along that line (fp16, or a Gaussian Lloyd-Max index with one fp16 scale per
// vector). Optionally a per-block fp16 column mean is subtracted first. Every row is coded (no hot
// tail); the final partial block keeps its own mean.
//
// Per-vector code (§6), bytes_per_vector = ceil(G·db/8) + (2G | ceil(G·mb/8) + 2):
//   direction ids, G values packed LSB-first at db bits
//   f16 mode:       G magnitudes, fp16 LE
//   quantized mode: G Lloyd-Max indices packed at mb bits, then the scale s as fp16 LE
// Container: KVCB (codec_id 2) with an 8-byte parameter block; see docs/container-besicovitch.md.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "codec/codec.h"
#include "codec/kernels/besicovitch.h"

namespace kvwb::codec {

/// How magnitudes are stored (container parameter block offset 50).
enum class BesiMagnitude : uint8_t { kF16 = 0, kQuantized = 1 };

/// Codec settings of codec-besicovitch.md §1. block_size / block_rows are run-level
/// (decisions.md #1) and come from UnitInfo.
struct BesiConfig {
  unsigned group_size = 2;      // g, 2..8, D mod g == 0
  unsigned direction_bits = 6;  // db, 1..10; M = 2^db directions
  BesiMagnitude magnitude = BesiMagnitude::kF16;
  unsigned magnitude_bits = 4;  // mb, 1..4; used in quantized mode only
  bool subtract_mean = false;   // per-block fp16 column mean
};

/// Direction codebook of §3 for (g, db): M = 2^db unit vectors as an [M, g] row-major f32 array
/// (entry i at [i·g, i·g + g)). g = 2: half circle; g = 3: Fibonacci upper hemisphere; g >= 4:
/// seeded normals (key TAG_BESI ^ (256·g + db)) with antipodal folding. Computed once per
/// (g, db) in f64, rounded to f32, cached for the life of the program (thread-safe).
/// Throws InvalidArgument for g outside 2..8 or db outside 1..10.
std::span<const float> besicovitch_codebook(unsigned g, unsigned db);

/// Direction and signed magnitude of one group (§4 steps 1-2): id = argmax_i |<x, d_i>|
/// (ascending scan, strict >, from best = 0 value 0), alpha = <x, d_id> (f32, index order).
using kernels::BesiAssignment;

/// Assigns one group of `g` f32 coordinates against `codebook` ([M, g], from besicovitch_codebook).
BesiAssignment besicovitch_assign(const float* group, unsigned g, std::span<const float> codebook);

/// Bytes of one per-vector code for head dimension D (§6): ceil(G·db/8) + (2G | ceil(G·mb/8) + 2).
size_t besicovitch_bytes_per_vector(const BesiConfig& config, size_t head_dim);

/// Lloyd-Max levels a quantized magnitude can actually reach, since |u| <= 1 (§4 table):
/// mb = 1: 2, 2: 4, 3: 4, 4: 8. Throws InvalidArgument for mb outside 1..4.
unsigned besicovitch_reachable_levels(unsigned magnitude_bits);

/// Encodes one vector `x` (length head_dim, mean already subtracted) and appends exactly
/// besicovitch_bytes_per_vector() bytes to `out`. Throws Fp16Range when a magnitude (f16 mode) or
/// the scale (quantized mode) exceeds 65504, NonFiniteInput for non-finite input.
void besicovitch_encode_vector(const float* x, size_t head_dim, const BesiConfig& config,
                               std::vector<uint8_t>& out);

/// Decodes one per-vector code into `out` (length head_dim):
/// out[k·g + j] = mean[k·g + j] + α̂_k · d_{id_k}[j], f32. `mean` may be null (zeros).
void besicovitch_decode_vector(const uint8_t* code, size_t head_dim, const BesiConfig& config,
                               const float* mean, float* out);

/// The Besicovitch codec (codec id 2). Thread-safe: encode/decode are const and share only the
/// immutable cached codebook.
class BesicovitchCodec final : public Codec {
 public:
  /// Throws InvalidArgument for out-of-range settings and Unsupported when head_dim mod g != 0.
  BesicovitchCodec(const BesiConfig& config, size_t head_dim);
  /// A codec that only decodes (any head_dim; the container names g). encode() throws Unsupported
  /// when head_dim mod g != 0. Used by decode_container, which builds codecs with default params.
  static BesicovitchCodec decoder_only(size_t head_dim);
  CodecId id() const override { return CodecId::kBesicovitch; }
  /// Encodes every row of the unit: ceil(N / block_size) block records, the last one partial.
  EncodedUnit encode(const UnitInput& in) const override;
  /// Decodes a besicovitch container; the parameters come from its parameter block only.
  DecodedUnit decode(std::span<const uint8_t> bytes, const std::string& source) const override;
  const BesiConfig& config() const { return config_; }

 private:
  BesicovitchCodec(const BesiConfig& config, size_t head_dim, bool check_divisible);
  BesiConfig config_;
  size_t head_dim_;
};

}  // namespace kvwb::codec
