#pragma once
// The one codec interface (architecture.md): a codec is a specification (ParamSpec list), state
// (CodecResources: calibrated tables handed in as plain arrays) and execution (encode one unit of
// rows into a KVCB container, decode a container back to rows). Every codec — Kakeya-PCA,
// Besicovitch and the peers — writes the container (decisions.md #6), so the runner, the CLI and
// the GUI treat them alike. Decode reads nothing but the bytes.
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codec/format/container.h"

namespace kvwb::codec {

enum class ParamType { kInt, kFloat, kBool, kChoice, kTable };

/// One user-facing codec parameter: enough for the CLI and the GUI to build a form and validate.
struct ParamSpec {
  std::string name;           // key in ParamMap, e.g. "bit_width"
  ParamType type = ParamType::kInt;
  std::string default_value;  // textual default; "" means "none" (optional parameter unset)
  double min = 0.0;           // inclusive range for kInt / kFloat
  double max = 0.0;
  std::vector<std::string> choices;  // kChoice values; kBool is "true"/"false"
  std::string help;
};

/// Parameter values by name, in text form (as on the command line or in run-config JSON).
using ParamMap = std::map<std::string, std::string>;

/// Calibration state a codec needs, fitted elsewhere and handed over as plain arrays.
struct CodecResources {
  std::vector<float> centroid_table;  // calibrated Lloyd-Max table, 2^b ascending f32; empty = Gaussian
};

/// Where one unit (codec-kakeya.md §2) sits; block parameters are run-level (decisions.md #1).
struct UnitInfo {
  uint32_t sequence = 0;
  uint32_t layer = 0;
  uint16_t kv_head = 0;  // kPooledHead for pooled_heads
  uint16_t n_kv_heads = 1;
  Stream stream = Stream::kK;
  BlockRows block_rows = BlockRows::kPerHead;
  uint32_t block_size = 512;
  uint8_t domain_flags = 0;  // container domain_flags (whitened / pre-RoPE / derived)
};

/// The container header of a unit placed by `u` (codec-kakeya.md §2): the codec, head_dim, the
/// unit's placement and domain flags, and the block layout (`block_size` rows per block,
/// `n_blocks` blocks, `n_tail_rows` rows after them).
inline ContainerHeader unit_header(CodecId id, size_t head_dim, const UnitInfo& u,
                                   uint64_t block_size, uint64_t n_blocks, uint64_t n_tail_rows) {
  ContainerHeader h;
  h.codec_id = id;
  h.head_dim = static_cast<uint16_t>(head_dim);
  h.stream = u.stream;
  h.block_rows = u.block_rows;
  h.sequence = u.sequence;
  h.layer = u.layer;
  h.kv_head = u.kv_head;
  h.n_kv_heads = u.n_kv_heads;
  h.block_size = static_cast<uint32_t>(block_size);
  h.n_blocks = static_cast<uint32_t>(n_blocks);
  h.n_tail_rows = static_cast<uint32_t>(n_tail_rows);
  h.domain_flags = u.domain_flags;
  return h;
}

/// One unit to encode. All row arrays are [n, dim] row-major f32.
struct UnitInput {
  const float* rows = nullptr;           // what the codec codes (K·L when Q-preconditioned)
  const float* original_rows = nullptr;  // un-whitened rows for Kakeya's hot tail; null = rows
  const float* weights = nullptr;        // [n] row weights (Kakeya weights=attention); null = all 1
  size_t n = 0;
  size_t dim = 0;
  UnitInfo info;
  float layer_scale = 1.0f;  // fp8_e4m3: the per-(layer, stream) scale (Codec::layer_scale)
  bool collect_residuals = false;  // Kakeya: fill EncodeStats::scaled_residuals
};

/// Diagnostics of one encode (never needed to decode).
struct EncodeStats {
  std::vector<uint16_t> d_eff;  // Kakeya: per block
  std::vector<uint16_t> k_eff;  // Kakeya: per block
  uint64_t outliers = 0;        // Kakeya outlier entries stored
  uint64_t clipped = 0;         // values saturated/clipped (fp8 ±448, q4_0 code 15, LM end cells)
  uint64_t coded_values = 0;    // denominator for `clipped` / outlier rates
  std::vector<float> scaled_residuals;  // Kakeya scaled post-WHT residual s (when requested)
};

struct EncodedUnit {
  std::vector<uint8_t> bytes;    // the whole KVCB container
  uint64_t header_bytes = 0;     // 48 + params_bytes (not counted)
  uint64_t reported_bytes = 0;   // what the spec counts: K§9.8, Besicovitch §6.1, peers' native bytes
  uint64_t reference_bytes = 0;  // reference accounting (K§10.1) for comparison; = reported for peers
  uint64_t tail_bytes = 0;       // hot tail / KIVI fp16 window bytes included in reported_bytes
  uint64_t codec_rows = 0;       // rows coded by the codec proper (excludes tail / fp16 window)
  EncodeStats stats;
};

struct DecodedUnit {
  ContainerHeader header;
  std::vector<float> rows;  // [n, D]: coded rows in the coded domain, then tail rows (original domain)
  size_t n_block_rows = 0;  // leading rows that came from coded blocks (the runner un-whitens these)
};

class Codec {
 public:
  virtual ~Codec() = default;
  virtual CodecId id() const = 0;
  std::string_view name() const { return codec_name(id()); }
  /// Encodes one unit into a KVCB container. Throws Fp16Range / NonFiniteInput / Unsupported.
  virtual EncodedUnit encode(const UnitInput& in) const = 0;
  /// Decodes a container of this codec; reads nothing but the bytes. `source` names them in errors.
  virtual DecodedUnit decode(std::span<const uint8_t> bytes, const std::string& source) const = 0;
  /// Bytes added once per (layer, stream), e.g. fp8_e4m3's f32 scale. Counted in totals.
  virtual uint64_t per_layer_stream_bytes() const { return 0; }
  /// The per-(layer, stream) scale this codec codes a batch with, from all `count` values of the
  /// batch (un-whitened, [S, H, T, D]): fp8_e4m3 absmax gives max|x| / 448 (1 when all are 0);
  /// 1 for codecs without such a scale. The executor hands it to every unit (UnitInput::layer_scale).
  virtual float layer_scale(const float* values, size_t count) const { return 1.0f; }
};

/// All codec names, in container-id order.
std::vector<std::string> codec_names();
/// Parameter descriptions of a codec; throws InvalidArgument for an unknown name.
const std::vector<ParamSpec>& codec_params(std::string_view name);
/// Builds a codec. Unknown or out-of-range parameters throw InvalidArgument naming the parameter;
/// combinations the codec cannot run (e.g. D not a multiple of 32 for q8_0) throw Unsupported.
std::unique_ptr<Codec> make_codec(std::string_view name, const ParamMap& params, size_t head_dim,
                                  const CodecResources& resources = {});
/// Decodes any KVCB container by dispatching on its codec id.
DecodedUnit decode_container(std::span<const uint8_t> bytes, const std::string& source);

}  // namespace kvwb::codec
