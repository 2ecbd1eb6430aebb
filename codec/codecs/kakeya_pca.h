#pragma once
// Kakeya-PCA ("KakeyaTurbo") codec, codec-kakeya.md v1 with decisions.md. The codec class lives in
// kakeya_pca.cpp behind make_codec("kakeya_pca", ...); this header exposes the staged pieces
// (parameters, in-memory codes, the container writer/reader, decode, byte formulas) so that
// tests and tools can check each stage. Shapes are row-major; D = head dimension.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "codec/kernels/lloyd_max.h"
#include "codec/math/pca.h"

namespace kvwb::codec::kakeya {

/// Validated parameters of one Kakeya-PCA stream (§3; block_size/block_rows are run-level and
/// arrive in UnitInfo).
struct Config {
  PcaParams pca;                  // method, clamped vr, cap, RSVD settings, seed
  size_t k = 16;                  // K-means centres requested
  unsigned bit_width = 3;         // b, 1..4
  uint64_t seed = 0xCAFEBABEull;  // all randomness (§4)
  size_t kmeans_max_iter = 32;
  SkeletonDtype skeleton = SkeletonDtype::kFp16;
  bool outliers = false;  // outlier_threshold set
  float outlier_threshold = 0.0f;
  bool share_basis = false;
  bool attention_weights = false;  // weights = attention
  bool calibrated = false;         // table came from CodecResources (stored in the container)
  std::vector<float> table;        // 2^b ascending centroids used on encode and decode
};

/// Nearest-centroid index, bit-identical to quantize_nearest (§5.12: f32 distances, ties to the
/// lower index) for a strictly ascending table (codec/kernels/lloyd_max.h).
using kernels::quantize_fast;

/// Parses and validates a ParamMap for head dimension d. Errors are InvalidArgument naming the
/// parameter; a calibrated table of the wrong length or order is refused as 'centroids'.
Config parse_config(const ParamMap& params, size_t d, const CodecResources& resources);

/// The shared mean and basis of a share_basis unit (§9.3), already rounded to `dtype`.
struct SharedBasis {
  size_t d_eff = 1;
  SkeletonDtype dtype = SkeletonDtype::kFp16;
  std::vector<float> mean;   // [D]
  std::vector<float> basis;  // [d_eff, D]
};

/// The codes of one block (§9.4, §9.5) exactly as the container stores them. Skeleton values
/// are f32 copies of the rounded values (exactly representable in `dtype`).
struct BlockCode {
  size_t d_eff = 1;
  size_t k_eff = 1;
  SkeletonDtype dtype = SkeletonDtype::kFp16;
  bool shared = false;         // mean and basis come from the unit's SharedBasis (then empty here)
  bool outliers = false;       // outlier fields present
  std::vector<float> mean;     // [D] (empty when shared)
  std::vector<float> basis;    // [d_eff, D] (empty when shared)
  std::vector<float> centres;  // [k_eff, d_eff]
  std::vector<uint16_t> seg;   // [n] segment ids < k_eff
  std::vector<uint16_t> t_bits;      // [n] fp16 bits of t_q
  std::vector<uint16_t> norm_bits;   // [n] fp16 bits of the residual norm
  std::vector<uint16_t> idx;         // [n, wht_len] quantiser indices < 2^b
  std::vector<uint32_t> out_offset;  // [n + 1] row i owns entries out_offset[i]..out_offset[i+1)
  std::vector<uint16_t> out_idx;     // outlier coordinate (< wht_len), ascending per row
  std::vector<uint16_t> out_val;     // fp16 bits of the scaled outlier value
  size_t wht_len() const;
};

/// A whole container in memory: header, parameters needed to decode, records and tail.
struct UnitCode {
  ContainerHeader header;  // header_bytes / params_bytes filled when written or read
  uint64_t seed = 0xCAFEBABEull;
  unsigned bit_width = 3;
  SkeletonDtype skeleton = SkeletonDtype::kFp16;
  PcaMethod pca_method = PcaMethod::kExact;
  bool share_basis = false;
  bool outliers = false;
  bool calibrated = false;
  bool attention_weights = false;
  uint16_t k = 16;
  uint16_t kmeans_max_iter = 32;
  float variance_ratio = 0.95f;
  float outlier_threshold = 0.0f;
  uint16_t rsvd_target_rank = 0;  // 0 for exact
  uint16_t rsvd_oversample = 8;
  uint16_t rsvd_power_iters = 2;
  uint16_t exact_rank_cap = 0;  // 0 = none
  std::vector<float> table;     // 2^b: the calibrated table, or the Gaussian one
  std::optional<SharedBasis> shared;
  std::vector<BlockCode> blocks;
  std::vector<uint16_t> tail_bits;  // [n_tail_rows, D] bf16 bits, original domain
};

/// Encodes one unit (§2, §5, §7) into codes. Throws InvalidArgument (shape / weights),
/// NonFiniteInput, Fp16Range (message names block, row where relevant, and field).
/// `stats` (optional) receives d_eff/k_eff per block, outliers, coded_values, residuals.
UnitCode encode_unit(const Config& cfg, const UnitInput& in, EncodeStats* stats);

/// A unit's codes before any block is coded: `header` and every stream parameter the container
/// records (§9.2), taken from `cfg` (shared by the CPU encoder and the CUDA executor).
UnitCode unit_code_for(const Config& cfg, const ContainerHeader& header);

/// Block weights (§5.1) of one block's n attention weights `a` (block index `block` names it in
/// errors): empty when cfg.attention_weights is off (uniform); else w_i = max(a_i / mean(a), 1e-3).
/// Throws NonFiniteInput (a non-finite a_i) or InvalidArgument (a negative a_i, all zero).
std::vector<float> block_weights(const Config& cfg, const float* a, size_t n, size_t block);

/// Writes the KVCB container (§9). Returns the bytes; code.header gets header/params sizes.
std::vector<uint8_t> write_container(UnitCode& code);

/// Reads and validates a Kakeya-PCA container (§9.7). FormatError names `source`, the block,
/// the row and the field.
UnitCode read_container(std::span<const uint8_t> bytes, const std::string& source);

/// Decodes codes (§6): [n_blocks·block_size + n_tail, D] rows; block rows first.
DecodedUnit decode_unit(const UnitCode& code);

/// §9.8 block record bytes (shared = mean and basis live in the shared record).
uint64_t block_bytes(size_t d, size_t n, size_t d_eff, size_t k_eff, unsigned b,
                     SkeletonDtype dtype, bool outliers, uint64_t n_out, bool shared);
/// §9.3 shared-basis record bytes: 4 + e·(D + d_eff·D).
uint64_t shared_record_bytes(size_t d, size_t d_eff, SkeletonDtype dtype);
/// §10.1 reference ("Rust crate") bytes of one block; with shared, the mean/basis are excluded
/// (counted once via reference_shared_bytes).
uint64_t reference_block_bytes(size_t d, size_t n, size_t d_eff, size_t k_eff, unsigned b,
                               SkeletonDtype dtype, uint64_t n_out, bool shared);
/// §10.1 share_basis: e·(D + d_eff·D) once per unit.
uint64_t reference_shared_bytes(size_t d, size_t d_eff, SkeletonDtype dtype);

}  // namespace kvwb::codec::kakeya
