// Kakeya-PCA codec (codec-kakeya.md v1, decisions.md #1, #12, #13).
//
// Byte layout contract — KVCB container version 1.0, codec_id 1. Every multi-byte field is
// little-endian, fields are packed without padding, bit packing is LSB-first (value i occupies
// stream bits i·b … i·b+b−1; stream bit β is bit β mod 8 of byte ⌊β/8⌋; unused high bits of
// the last byte are 0; codec/bitpack.h):
//   [0,48)    common header (codec/container.h, §9.1)
//   [48,80)   parameter block (§9.2): u64 seed | u8 bit_width | u8 skeleton dtype (0 fp16,
//             1 bf16, 2 fp32) | u8 pca_method (0 exact, 1 randomized) | u8 flags (bit 0
//             share_basis, bit 1 outliers, bit 2 calibrated table, bit 3 attention weights) |
//             u16 k | u16 kmeans_max_iter | f32 variance_ratio (clamped) | f32 outlier_threshold
//             (0 when off) | u16 rsvd_target_rank (0 for exact) | u16 rsvd_oversample |
//             u16 rsvd_power_iters | u16 exact_rank_cap (0 none) | f32[2^b] table (flag bit 2)
//   shared-basis record (§9.3; share_basis and n_blocks ≥ 1): u16 d_eff | u8 dtype | u8 0 |
//             mean[D] | basis[d_eff·D] in dtype (e = 2 fp16/bf16, 4 fp32)
//   n_blocks block records (§9.4): u16 d_eff | u16 K_eff | u8 dtype | u8 flags (bit 0 shared
//             mean/basis, bit 1 outlier fields) | u16 0 | mean[D] | basis[d_eff·D] (both absent
//             when shared) | centres[K_eff·d_eff] | segment ids packed at clog2(K_eff) bits |
//             block_size per-vector records (§9.5): fp16 t | fp16 residual norm | indices
//             packed at b bits (wht_len = next_pow2(d_eff) values) | [outlier count: u8 when
//             wht_len ≤ 128 else u16 | count × (u16 index < wht_len ascending, fp16 value)]
//   tail (§9.6): n_tail_rows·D bf16, original (un-whitened) domain
// Reported bytes = container size − header_bytes (§9.8).
#include "codec/codecs/kakeya_pca.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <sstream>

#include "base/errors.h"
#include "codec/codec_factories.h"
#include "codec/format/bitpack.h"
#include "codec/format/byte_io.h"
#include "codec/format/half.h"
#include "codec/kernels/kakeya.h"
#include "codec/kernels/wht.h"
#include "codec/math/eigen_gemm.h"
#include "codec/math/kmeans.h"
#include "codec/math/quantizer.h"
#include "codec/math/rng.h"
#include "codec/math/wht.h"
#include "codec/params.h"
#include "codec/simd/kakeya.h"
#include "codec/simd/rows.h"

namespace kvwb::codec::kakeya {

namespace {

using RowMatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapRowF = Eigen::Map<RowMatF>;
using MapConstRowF = Eigen::Map<const RowMatF>;

constexpr const char* kName = "kakeya_pca";
constexpr uint8_t kFlagShare = 1u << 0;
constexpr uint8_t kFlagOutliers = 1u << 1;
constexpr uint8_t kFlagTable = 1u << 2;
constexpr uint8_t kFlagAttention = 1u << 3;
constexpr uint8_t kBlockShared = 1u << 0;
constexpr uint8_t kBlockOutliers = 1u << 1;

const std::vector<ParamSpec>& specs() {
  static const std::vector<ParamSpec> s = {
      {"variance_ratio",
       ParamType::kFloat,
       "0.95",
       0,
       0,
       {},
       "PCA truncation: keep the smallest number of components whose share of the variance "
       "reaches this value (finite; clamped to [0, 1]; >= 1 keeps everything)"},
      {"k", ParamType::kInt, "16", 1, 4096, {}, "K-means centres requested per block"},
      {"bit_width", ParamType::kInt, "3", 1, 4, {}, "bits per residual coordinate (b)"},
      {"seed",
       ParamType::kInt,
       "3405691582",
       0,
       0,
       {},
       "seed of all randomness: WHT signs, first K-means centre, RSVD test matrix (u64; decimal "
       "or 0x hex; default 0xCAFEBABE)"},
      {"kmeans_max_iter", ParamType::kInt, "32", 1, 1000, {}, "Lloyd iterations at most"},
      {"pca_method",
       ParamType::kChoice,
       "exact",
       0,
       0,
       {"exact", "randomized"},
       "exact: f64 covariance + eigensolver; randomized: HMT range finder (RSVD)"},
      {"rsvd_target_rank",
       ParamType::kInt,
       "",
       1,
       4096,
       {},
       "randomized only: target rank k_t (default max(D/2, 8); clamped to D)"},
      {"rsvd_oversample", ParamType::kInt, "8", 0, 4096, {}, "randomized only: oversampling"},
      {"rsvd_power_iters",
       ParamType::kInt,
       "2",
       0,
       1000,
       {},
       "randomized only: power iterations (each re-orthogonalised by QR)"},
      {"exact_rank_cap",
       ParamType::kInt,
       "",
       1,
       4096,
       {},
       "exact only: upper bound on d_eff (1..D; default none)"},
      {"skeleton_dtype",
       ParamType::kChoice,
       "fp16",
       0,
       0,
       {"fp16", "bf16", "fp32"},
       "storage of mean, basis and centres"},
      {"centroids",
       ParamType::kTable,
       "gaussian",
       0,
       0,
       {},
       "residual quantiser: 'gaussian' (Lloyd-Max N(0,1) table) or a calibrated table of 2^b "
       "ascending values (bundle-format.md)"},
      {"outlier_threshold",
       ParamType::kFloat,
       "",
       0,
       65504,
       {},
       "store scaled residual coordinates with |s| > T exactly as fp16 (default: no outliers)"},
      {"share_basis",
       ParamType::kBool,
       "false",
       0,
       0,
       {},
       "one PCA per unit, shared by all its blocks (not streaming-safe; meant for V)"},
      {"weights",
       ParamType::kChoice,
       "uniform",
       0,
       0,
       {"uniform", "attention"},
       "row weights: uniform, or attention mass of each token (needs q_pre)"},
  };
  return s;
}

/// fp16 bits of v for a per-row field; the error names block, row and field.
inline uint16_t f16_row(float v, size_t block, size_t row, const char* field) {
  if (std::isfinite(v) && std::fabs(v) <= kFp16Max) return f32_to_f16_bits(v);
  const std::string f = std::string(field) + " (block " + std::to_string(block) + ", row " +
                        std::to_string(row) + ")";
  return f16_checked(v, f.c_str());
}

std::vector<float> make_signs(uint64_t seed, size_t len) {
  std::vector<float> s(len);
  for (size_t j = 0; j < len; ++j) s[j] = rng::wht_sign(seed, j);
  return s;
}

/// y = H·(S·v) in place with precomputed signs (bit-identical to wht_rotate; the butterflies on
/// the dispatched vector path, simd::wht).
inline void rotate(float* v, size_t n, const float* signs) {
  for (size_t j = 0; j < n; ++j) v[j] *= signs[j];
  simd::wht(simd::active_path(), v, n);
}

/// v = S·(H·y)·(1/n) in place with precomputed signs (bit-identical to wht_unrotate).
inline void unrotate(float* v, size_t n, const float* signs) {
  simd::wht(simd::active_path(), v, n);
  const float inv = 1.0f / static_cast<float>(n);
  for (size_t j = 0; j < n; ++j) v[j] = v[j] * inv * signs[j];
}

}  // namespace

UnitCode unit_code_for(const Config& cfg, const ContainerHeader& header) {
  UnitCode code;
  code.header = header;
  code.seed = cfg.seed;
  code.bit_width = cfg.bit_width;
  code.skeleton = cfg.skeleton;
  code.pca_method = cfg.pca.method;
  code.share_basis = cfg.share_basis;
  code.outliers = cfg.outliers;
  code.calibrated = cfg.calibrated;
  code.attention_weights = cfg.attention_weights;
  code.k = static_cast<uint16_t>(cfg.k);
  code.kmeans_max_iter = static_cast<uint16_t>(cfg.kmeans_max_iter);
  code.variance_ratio = cfg.pca.variance_ratio;
  code.outlier_threshold = cfg.outliers ? cfg.outlier_threshold : 0.0f;
  code.rsvd_target_rank =
      cfg.pca.method == PcaMethod::kRandomized
          ? static_cast<uint16_t>(std::min<size_t>(cfg.pca.rsvd_target_rank, 0xFFFF))
          : 0;
  code.rsvd_oversample = static_cast<uint16_t>(cfg.pca.rsvd_oversample);
  code.rsvd_power_iters = static_cast<uint16_t>(cfg.pca.rsvd_power_iters);
  code.exact_rank_cap = static_cast<uint16_t>(cfg.pca.exact_rank_cap);
  code.table = cfg.table;
  return code;
}

/// Block weights (§5.1): empty = uniform; attention: w_i = max(a_i / mean_block(a), 1e-3).
std::vector<float> block_weights(const Config& cfg, const float* a, size_t n, size_t block) {
  if (!cfg.attention_weights) return {};
  double sum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(a[i]))
      throw NonFiniteInput("Kakeya-PCA: attention weight of block " + std::to_string(block) +
                           ", row " + std::to_string(i) + " is not finite");
    if (a[i] < 0.0f)
      throw InvalidArgument("Kakeya-PCA: attention weight of block " + std::to_string(block) +
                            ", row " + std::to_string(i) + " is negative");
    sum += a[i];
  }
  const double mean = sum / static_cast<double>(n);
  if (!(mean > 0.0))
    throw InvalidArgument("Kakeya-PCA: the attention weights of block " + std::to_string(block) +
                          " are all zero");
  std::vector<float> w(n);
  for (size_t i = 0; i < n; ++i)
    w[i] = std::max(static_cast<float>(static_cast<double>(a[i]) / mean), 1e-3f);
  return w;
}

namespace {

/// A block's §5.2 mean and §5.3 exact fit computed ahead of its encoding (several blocks'
/// eigensolves interleaved, pca_exact_many), or the exception computing them threw (rethrown at
/// that block).
struct BlockPrefit {
  std::vector<float> mean;
  PcaFit fit;
  std::exception_ptr error;
};

/// Blocks per pca_exact_many call: their QR recurrences run pairwise interleaved (eigen_qr_pair).
constexpr size_t kPrefitGroup = 2;

/// Means and exact fits of blocks [b0, b0 + count) of bs rows each (weights: w_all or empty).
std::vector<BlockPrefit> prefit_blocks(const Config& cfg, const float* rows, size_t bs, size_t d,
                                       const std::vector<float>& w_all, size_t b0, size_t count) {
  std::vector<BlockPrefit> pre(count);
  std::vector<PcaJob> jobs;
  std::vector<size_t> job_block;
  for (size_t i = 0; i < count; ++i) {
    std::span<const float> w;
    if (cfg.attention_weights) w = std::span<const float>(w_all).subspan((b0 + i) * bs, bs);
    pre[i].mean.resize(d);
    try {
      weighted_mean(rows + (b0 + i) * bs * d, bs, d, w, pre[i].mean.data());
    } catch (...) {
      pre[i].error = std::current_exception();
      continue;
    }
    jobs.push_back({rows + (b0 + i) * bs * d, bs, w, pre[i].mean.data()});
    job_block.push_back(i);
  }
  std::vector<std::exception_ptr> errors;
  std::vector<PcaFit> fits = pca_exact_many(jobs, d, cfg.pca, errors);
  for (size_t j = 0; j < jobs.size(); ++j) {
    BlockPrefit& p = pre[job_block[j]];
    if (errors[j])
      p.error = errors[j];
    else
      p.fit = std::move(fits[j]);
  }
  return pre;
}

/// Encodes one block (§5.2–5.12). x: [n, D]; w: [n] or empty. `prefit`: its mean and fit when
/// computed ahead (prefit_blocks), else null.
BlockCode encode_block(const Config& cfg, const float* x, size_t n, size_t d,
                       std::span<const float> w, size_t block, const SharedBasis* shared,
                       std::span<const float> omega, const float* signs, EncodeStats* stats,
                       bool collect_residuals, BlockPrefit* prefit) {
  BlockCode bc;
  bc.dtype = cfg.skeleton;
  bc.outliers = cfg.outliers;
  std::vector<float> mean_own, basis_own;
  const float* mean = nullptr;
  const float* basis = nullptr;
  if (shared) {
    bc.shared = true;
    bc.d_eff = shared->d_eff;
    mean = shared->mean.data();
    basis = shared->basis.data();
  } else {
    PcaFit fit;
    if (prefit) {
      if (prefit->error) std::rethrow_exception(prefit->error);
      mean_own = std::move(prefit->mean);
      fit = std::move(prefit->fit);
    } else {
      mean_own.resize(d);
      weighted_mean(x, n, d, w, mean_own.data());
      fit = pca_fit(x, n, d, w, mean_own.data(), cfg.pca, omega);
    }
    canonicalize_signs(fit.basis.data(), fit.d_eff, d);
    const std::string where = "block " + std::to_string(block) + " ";
    round_to_dtype(mean_own.data(), d, cfg.skeleton, where + "mean");
    round_to_dtype(fit.basis.data(), fit.basis.size(), cfg.skeleton, where + "basis");
    bc.d_eff = fit.d_eff;
    basis_own = std::move(fit.basis);
    mean = mean_own.data();
    basis = basis_own.data();
  }
  const size_t de = bc.d_eff;
  const auto N = static_cast<Eigen::Index>(n);
  const auto D = static_cast<Eigen::Index>(d);
  const auto DE = static_cast<Eigen::Index>(de);
  // §5.6 projection on the rounded skeleton.
  RowMatF xc = MapConstRowF(x, N, D);
  xc.rowwise() -= Eigen::Map<const Eigen::RowVectorXf>(mean, D);
  RowMatF coeffs(N, DE);
  // Eigen computes the row-major product transposed: coeffsᵀ [de, n] = basis · xcᵀ.
  if (!kakeya::gemm_like_eigen(simd::active_path(), de, n, d, basis, static_cast<ptrdiff_t>(d), 1,
                               xc.data(), 1, static_cast<ptrdiff_t>(d), coeffs.data(), de))
    coeffs.noalias() = xc * MapConstRowF(basis, DE, D).transpose();
  // §5.7 K-means, rounded centres.
  KmeansFit km =
      fit_axial_kmeans(coeffs.data(), n, de, w, cfg.k, cfg.kmeans_max_iter, cfg.seed, block);
  round_to_dtype(km.centres.data(), km.centres.size(), cfg.skeleton,
                 "block " + std::to_string(block) + " centres");
  bc.k_eff = km.k_eff;
  bc.centres = std::move(km.centres);
  // §5.8 segments and t.
  std::vector<uint32_t> seg(n);
  std::vector<float> t(n);
  assign_segments(coeffs.data(), n, de, bc.centres.data(), bc.k_eff, seg.data(), t.data());
  // §5.8–5.12 per row.
  const size_t wl = next_pow2(de);
  const std::span<const float> table(cfg.table);
  bc.seg.resize(n);
  bc.t_bits.resize(n);
  bc.norm_bits.resize(n);
  bc.idx.resize(n * wl);
  bc.out_offset.assign(n + 1, 0);
  std::vector<float> buf(wl);
  const simd::Path path = simd::active_path();
  float* res_out = nullptr;
  if (stats && collect_residuals) {
    const size_t old = stats->scaled_residuals.size();
    stats->scaled_residuals.resize(old + n * wl);
    res_out = stats->scaled_residuals.data() + old;
  }
  for (size_t i = 0; i < n; ++i) {
    const float* c = coeffs.data() + i * de;
    std::fill(buf.begin(), buf.end(), 0.0f);
    uint16_t tb = 0;
    if (norm_f32(c, de) > kEps) {
      tb = f16_row(t[i], block, i, "t");
      const float tq = f16_bits_to_f32(tb);
      segment_residual(c, de, bc.centres.data() + static_cast<size_t>(seg[i]) * de, tq, buf.data());
      bc.seg[i] = static_cast<uint16_t>(seg[i]);
    } else {
      bc.seg[i] = 0;
    }
    bc.t_bits[i] = tb;
    const float rho = norm_f32(buf.data(), de);
    rotate(buf.data(), wl, signs);
    float scale = 1.0f;
    uint16_t nb = 0;
    if (rho > kEps) {
      scale = 1.0f / rho;
      nb = f16_row(rho, block, i, "residual norm");
    }
    bc.norm_bits[i] = nb;
    uint16_t* idx = bc.idx.data() + i * wl;
    simd::lloyd_max_scaled(path, buf.data(), wl, scale, table.data(), table.size(), idx,
                           res_out ? res_out + i * wl : nullptr);
    if (cfg.outliers)
      for (size_t j = 0; j < wl; ++j) {
        const float s = buf[j] * scale;
        if (std::fabs(s) > cfg.outlier_threshold) {
          bc.out_idx.push_back(static_cast<uint16_t>(j));
          bc.out_val.push_back(f16_row(s, block, i, "outlier value"));
        }
      }
    bc.out_offset[i + 1] = static_cast<uint32_t>(bc.out_idx.size());
  }
  if (stats) {
    stats->d_eff.push_back(static_cast<uint16_t>(de));
    stats->k_eff.push_back(static_cast<uint16_t>(bc.k_eff));
    stats->outliers += bc.out_idx.size();
    stats->coded_values += n * wl;
  }
  if (!shared) {
    bc.mean = std::move(mean_own);
    bc.basis = std::move(basis_own);
  }
  return bc;
}

/// Decodes one block (§6) into out ([n, D]).
void decode_block(const BlockCode& bc, const float* mean, const float* basis, size_t d, size_t n,
                  std::span<const float> table, const float* signs, float* out) {
  const size_t de = bc.d_eff;
  const size_t wl = bc.wht_len();
  const auto N = static_cast<Eigen::Index>(n);
  const auto D = static_cast<Eigen::Index>(d);
  const auto DE = static_cast<Eigen::Index>(de);
  RowMatF chat(N, DE);
  std::vector<float> q(wl);
  for (size_t i = 0; i < n; ++i) {
    const uint16_t* idx = bc.idx.data() + i * wl;
    for (size_t j = 0; j < wl; ++j) q[j] = table[idx[j]];
    for (uint32_t o = bc.out_offset[i]; o < bc.out_offset[i + 1]; ++o)
      q[bc.out_idx[o]] = f16_bits_to_f32(bc.out_val[o]);
    const float nq = f16_bits_to_f32(bc.norm_bits[i]);
    for (size_t j = 0; j < wl; ++j) q[j] *= nq;
    unrotate(q.data(), wl, signs);
    const float tq = f16_bits_to_f32(bc.t_bits[i]);
    kernels::kakeya_row_coefficients(bc.centres.data() + static_cast<size_t>(bc.seg[i]) * de,
                                     q.data(), tq, de, chat.data() + i * de);
  }
  MapRowF o(out, N, D);
  // Eigen computes the row-major product transposed: oᵀ [d, n] = basisᵀ · chatᵀ.
  if (!kakeya::gemm_like_eigen(simd::active_path(), d, n, de, basis, 1, static_cast<ptrdiff_t>(d),
                               chat.data(), 1, static_cast<ptrdiff_t>(de), out, d))
    o.noalias() = chat * MapConstRowF(basis, DE, D);
  o.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(mean, D);
}

void check_finite_rows(const float* rows, size_t r0, size_t r1, size_t d, const char* what) {
  // Vector scan first; the loop below only runs to name the first bad value.
  if (r1 <= r0 ||
      simd::first_non_finite(simd::active_path(), rows + r0 * d, (r1 - r0) * d) == (r1 - r0) * d)
    return;
  for (size_t i = r0; i < r1; ++i)
    for (size_t j = 0; j < d; ++j)
      if (!std::isfinite(rows[i * d + j])) {
        std::ostringstream os;
        os << "Kakeya-PCA: " << what << " row " << i << ", column " << j << " is not finite ("
           << rows[i * d + j] << ")";
        throw NonFiniteInput(os.str());
      }
}

}  // namespace

size_t BlockCode::wht_len() const { return next_pow2(d_eff); }

Config parse_config(const ParamMap& params, size_t d, const CodecResources& resources) {
  ParamReader pr(kName, specs(), params);
  Config c;
  const double vr = pr.get_float("variance_ratio");
  c.pca.variance_ratio = static_cast<float>(std::clamp(vr, 0.0, 1.0));
  c.k = static_cast<size_t>(pr.get_int("k"));
  c.bit_width = static_cast<unsigned>(pr.get_int("bit_width"));
  c.seed = static_cast<uint64_t>(pr.get_int("seed"));
  c.pca.seed = c.seed;
  c.kmeans_max_iter = static_cast<size_t>(pr.get_int("kmeans_max_iter"));
  c.pca.method =
      pr.get_string("pca_method") == "randomized" ? PcaMethod::kRandomized : PcaMethod::kExact;
  c.pca.rsvd_target_rank = pr.has("rsvd_target_rank")
                               ? static_cast<size_t>(pr.get_int("rsvd_target_rank"))
                               : std::max<size_t>(d / 2, 8);
  c.pca.rsvd_oversample = static_cast<size_t>(pr.get_int("rsvd_oversample"));
  c.pca.rsvd_power_iters = static_cast<size_t>(pr.get_int("rsvd_power_iters"));
  if (pr.has("exact_rank_cap")) {
    const long long cap = pr.get_int("exact_rank_cap");
    if (static_cast<size_t>(cap) > d)
      pr.fail("exact_rank_cap",
              "must be in [1, D = " + std::to_string(d) + "], got " + std::to_string(cap));
    c.pca.exact_rank_cap = static_cast<size_t>(cap);
  }
  const std::string dt = pr.get_string("skeleton_dtype");
  c.skeleton = dt == "bf16" ? SkeletonDtype::kBf16
                            : (dt == "fp32" ? SkeletonDtype::kFp32 : SkeletonDtype::kFp16);
  const std::string cent = pr.get_string("centroids");
  if (!resources.centroid_table.empty()) {
    const std::string what = "codec kakeya_pca: parameter 'centroids'";
    validate_table(resources.centroid_table, c.bit_width, what.c_str());
    c.table = resources.centroid_table;
    c.calibrated = true;
  } else {
    if (cent != "gaussian")
      pr.fail("centroids", "names calibrated table '" + cent +
                               "' but no table values were supplied (load the bundle first)");
    const auto g = gaussian_table(c.bit_width);
    c.table.assign(g.begin(), g.end());
  }
  if (pr.has("outlier_threshold")) {
    c.outliers = true;
    c.outlier_threshold = static_cast<float>(pr.get_float("outlier_threshold"));
  }
  c.share_basis = pr.get_bool("share_basis");
  c.attention_weights = pr.get_string("weights") == "attention";
  return c;
}

UnitCode encode_unit(const Config& cfg, const UnitInput& in, EncodeStats* stats) {
  const size_t d = in.dim;
  const size_t n_rows = in.n;
  const size_t bs = in.info.block_size;
  if (d == 0 || d > 0xFFFF)
    throw InvalidArgument("Kakeya-PCA: head dimension " + std::to_string(d) + " out of range");
  if (bs == 0) throw InvalidArgument("Kakeya-PCA: block_size must be >= 1");
  if (n_rows > 0 && in.rows == nullptr) throw InvalidArgument("Kakeya-PCA: no input rows");
  if (cfg.attention_weights && in.weights == nullptr)
    throw InvalidArgument(
        "codec kakeya_pca: parameter 'weights' is 'attention' but no attention weights were given "
        "(the capture needs q_pre)");
  const size_t nb = n_rows / bs;
  const size_t nt = n_rows - nb * bs;
  const size_t nbr = nb * bs;
  check_finite_rows(in.rows, 0, in.original_rows ? nbr : n_rows, d, "input");
  const float* tail_src = in.original_rows ? in.original_rows : in.rows;
  if (in.original_rows) check_finite_rows(in.original_rows, nbr, n_rows, d, "input (original)");

  UnitCode code = unit_code_for(cfg, unit_header(CodecId::kKakeyaPca, d, in.info, bs, nb, nt));

  // Weights of every block (attention: normalised per block).
  std::vector<float> w_all;
  if (cfg.attention_weights) {
    w_all.resize(nbr);
    for (size_t b = 0; b < nb; ++b) {
      const auto wb = block_weights(cfg, in.weights + b * bs, bs, b);
      std::copy(wb.begin(), wb.end(), w_all.begin() + static_cast<std::ptrdiff_t>(b * bs));
    }
  }
  const std::vector<float> signs = make_signs(cfg.seed, next_pow2(d));
  std::vector<float> omega;
  if (cfg.share_basis && nb >= 1) {
    SharedBasis sh;
    sh.dtype = cfg.skeleton;
    sh.mean.resize(d);
    const std::span<const float> w(w_all);
    weighted_mean(in.rows, nbr, d, w, sh.mean.data());
    PcaFit fit = pca_fit(in.rows, nbr, d, w, sh.mean.data(), cfg.pca);
    canonicalize_signs(fit.basis.data(), fit.d_eff, d);
    round_to_dtype(sh.mean.data(), d, cfg.skeleton, "shared mean");
    round_to_dtype(fit.basis.data(), fit.basis.size(), cfg.skeleton, "shared basis");
    sh.d_eff = fit.d_eff;
    sh.basis = std::move(fit.basis);
    code.shared = std::move(sh);
  } else if (cfg.pca.method == PcaMethod::kRandomized && nb >= 1) {
    omega = rsvd_omega(bs, rsvd_sketch_width(bs, d, cfg.pca), cfg.seed);
  }
  code.blocks.reserve(nb);
  const bool prefit = !code.shared && cfg.pca.method == PcaMethod::kExact;
  std::vector<BlockPrefit> pre;
  for (size_t b = 0; b < nb; ++b) {
    std::span<const float> w;
    if (cfg.attention_weights) w = std::span<const float>(w_all).subspan(b * bs, bs);
    if (prefit && b % kPrefitGroup == 0)
      pre = prefit_blocks(cfg, in.rows, bs, d, w_all, b, std::min(kPrefitGroup, nb - b));
    code.blocks.push_back(encode_block(
        cfg, in.rows + b * bs * d, bs, d, w, b, code.shared ? &*code.shared : nullptr, omega,
        signs.data(), stats, in.collect_residuals, prefit ? &pre[b % kPrefitGroup] : nullptr));
  }
  code.tail_bits.resize(nt * d);
  for (size_t i = 0; i < nt; ++i)
    for (size_t j = 0; j < d; ++j) {
      const float v = tail_src[(nbr + i) * d + j];
      const uint16_t b = f32_to_bf16_bits(v);
      if ((b & 0x7FFFu) == 0x7F80u) {
        const std::string f =
            "tail row " + std::to_string(nbr + i) + ", column " + std::to_string(j);
        bf16_checked(v, f.c_str());
      }
      code.tail_bits[i * d + j] = b;
    }
  return code;
}

uint64_t block_bytes(size_t d, size_t n, size_t d_eff, size_t k_eff, unsigned b,
                     SkeletonDtype dtype, bool outliers, uint64_t n_out, bool shared) {
  const uint64_t e = dtype_bytes(dtype);
  const uint64_t wl = next_pow2(d_eff);
  uint64_t bytes = 8 + e * ((shared ? 0 : d + d_eff * d) + k_eff * d_eff) +
                   packed_bytes(n, clog2(k_eff)) + n * (4 + packed_bytes(wl, b));
  if (outliers) bytes += n * (wl <= 128 ? 1 : 2) + 4 * n_out;
  return bytes;
}

uint64_t shared_record_bytes(size_t d, size_t d_eff, SkeletonDtype dtype) {
  return 4 + dtype_bytes(dtype) * (d + d_eff * d);
}

uint64_t reference_block_bytes(size_t d, size_t n, size_t d_eff, size_t k_eff, unsigned b,
                               SkeletonDtype dtype, uint64_t n_out, bool shared) {
  const uint64_t e = dtype_bytes(dtype);
  const uint64_t wl = next_pow2(d_eff);
  return e * ((shared ? 0 : d + d_eff * d) + k_eff * d_eff) + n * (10 + packed_bytes(wl, b)) +
         4 * n_out;
}

uint64_t reference_shared_bytes(size_t d, size_t d_eff, SkeletonDtype dtype) {
  return dtype_bytes(dtype) * (d + d_eff * d);
}

std::vector<uint8_t> write_container(UnitCode& code) {
  const size_t d = code.header.head_dim;
  const size_t n = code.header.block_size;
  std::vector<uint8_t> params;
  {
    ByteWriter w(params);
    w.u64(code.seed);
    w.u8(static_cast<uint8_t>(code.bit_width));
    w.u8(static_cast<uint8_t>(code.skeleton));
    w.u8(static_cast<uint8_t>(code.pca_method));
    uint8_t flags = 0;
    if (code.share_basis) flags |= kFlagShare;
    if (code.outliers) flags |= kFlagOutliers;
    if (code.calibrated) flags |= kFlagTable;
    if (code.attention_weights) flags |= kFlagAttention;
    w.u8(flags);
    w.u16(code.k);
    w.u16(code.kmeans_max_iter);
    w.f32(code.variance_ratio);
    w.f32(code.outliers ? code.outlier_threshold : 0.0f);
    w.u16(code.rsvd_target_rank);
    w.u16(code.rsvd_oversample);
    w.u16(code.rsvd_power_iters);
    w.u16(code.exact_rank_cap);
    if (code.calibrated)
      for (float v : code.table) w.f32(v);
  }
  uint64_t total = kCommonHeaderBytes + params.size() + 2 * code.tail_bits.size();
  if (code.shared) total += shared_record_bytes(d, code.shared->d_eff, code.shared->dtype);
  for (const auto& bc : code.blocks)
    total += block_bytes(d, n, bc.d_eff, bc.k_eff, code.bit_width, bc.dtype, bc.outliers,
                         bc.out_idx.size(), bc.shared);
  std::vector<uint8_t> out;
  out.reserve(total);
  code.header.codec_id = CodecId::kKakeyaPca;
  code.header.n_blocks = static_cast<uint32_t>(code.blocks.size());
  code.header.n_tail_rows = static_cast<uint32_t>(d ? code.tail_bits.size() / d : 0);
  write_container_header(code.header, params, out);
  code.header.params_bytes = static_cast<uint32_t>(params.size());
  code.header.header_bytes = static_cast<uint16_t>(kCommonHeaderBytes + params.size());
  ByteWriter w(out);
  auto put_values = [&](const std::vector<float>& v, SkeletonDtype dt) {
    for (float x : v) {
      const uint32_t bits = dtype_bits(x, dt);
      if (dt == SkeletonDtype::kFp32)
        w.u32(bits);
      else
        w.u16(static_cast<uint16_t>(bits));
    }
  };
  if (code.shared && !code.blocks.empty()) {
    w.u16(static_cast<uint16_t>(code.shared->d_eff));
    w.u8(static_cast<uint8_t>(code.shared->dtype));
    w.u8(0);
    put_values(code.shared->mean, code.shared->dtype);
    put_values(code.shared->basis, code.shared->dtype);
  }
  std::vector<uint16_t> scratch;
  for (const auto& bc : code.blocks) {
    const size_t wl = bc.wht_len();
    w.u16(static_cast<uint16_t>(bc.d_eff));
    w.u16(static_cast<uint16_t>(bc.k_eff));
    w.u8(static_cast<uint8_t>(bc.dtype));
    w.u8(static_cast<uint8_t>((bc.shared ? kBlockShared : 0) | (bc.outliers ? kBlockOutliers : 0)));
    w.u16(0);
    if (!bc.shared) {
      put_values(bc.mean, bc.dtype);
      put_values(bc.basis, bc.dtype);
    }
    put_values(bc.centres, bc.dtype);
    const unsigned sb = clog2(bc.k_eff);
    if (sb > 0) pack_bits(bc.seg, sb, out);
    for (size_t i = 0; i < n; ++i) {
      w.u16(bc.t_bits[i]);
      w.u16(bc.norm_bits[i]);
      pack_bits(std::span<const uint16_t>(bc.idx.data() + i * wl, wl), code.bit_width, out);
      if (bc.outliers) {
        const uint32_t o0 = bc.out_offset[i], o1 = bc.out_offset[i + 1];
        if (wl <= 128)
          w.u8(static_cast<uint8_t>(o1 - o0));
        else
          w.u16(static_cast<uint16_t>(o1 - o0));
        for (uint32_t o = o0; o < o1; ++o) {
          w.u16(bc.out_idx[o]);
          w.u16(bc.out_val[o]);
        }
      }
    }
  }
  for (uint16_t b : code.tail_bits) w.u16(b);
  return out;
}

namespace {

bool f16_finite(uint16_t b) { return (b & 0x7C00u) != 0x7C00u; }

bool dtype_finite(uint32_t bits, SkeletonDtype dt) {
  switch (dt) {
    case SkeletonDtype::kFp16:
      return f16_finite(static_cast<uint16_t>(bits));
    case SkeletonDtype::kBf16:
      return (bits & 0x7F80u) != 0x7F80u;
    case SkeletonDtype::kFp32:
      break;
  }
  return (bits & 0x7F800000u) != 0x7F800000u;
}

/// Reader of the container body with block / row / field context in every error.
class BodyReader {
 public:
  BodyReader(std::span<const uint8_t> bytes, const std::string& source) : r_(bytes, source) {}
  ByteReader& raw() { return r_; }
  void at(long long block, long long row) {
    block_ = block;
    row_ = row;
  }
  [[noreturn]] void fail(const std::string& field, const std::string& msg) const {
    std::string where;
    if (block_ >= 0) where += "block " + std::to_string(block_) + ", ";
    if (block_ == -2) where += "shared-basis record, ";
    if (block_ == -3) where += "tail section, ";
    if (row_ >= 0) where += "row " + std::to_string(row_) + ", ";
    r_.fail(where + "field '" + field + "': " + msg);
  }
  void need(uint64_t n, const std::string& field) const {
    if (n > r_.remaining())
      fail(field, "truncated: needs " + std::to_string(n) + " bytes, " +
                      std::to_string(r_.remaining()) + " left");
  }
  const uint8_t* take(uint64_t n, const std::string& field) {
    need(n, field);
    return r_.take(static_cast<size_t>(n), field.c_str());
  }
  uint8_t u8(const char* f) { return *take(1, f); }
  uint16_t u16(const char* f) {
    uint16_t v;
    std::memcpy(&v, take(2, f), 2);
    return v;
  }
  std::vector<float> values(size_t count, SkeletonDtype dt, const char* field) {
    const size_t e = dtype_bytes(dt);
    const uint8_t* p = take(static_cast<uint64_t>(count) * e, field);
    std::vector<float> v(count);
    if (dt == SkeletonDtype::kFp16) {  // the default skeleton: one check pass, then F16C lanes
      half_.resize(count);
      std::memcpy(half_.data(), p, count * sizeof(uint16_t));  // little-endian host
      for (size_t i = 0; i < count; ++i)
        if (!f16_finite(half_[i])) fail(field, "value " + std::to_string(i) + " is not finite");
      simd::f16_to_f32_row(simd::active_path(), half_.data(), count, v.data());
      return v;
    }
    for (size_t i = 0; i < count; ++i) {
      uint32_t bits = 0;
      std::memcpy(&bits, p + i * e, e);
      if (!dtype_finite(bits, dt)) fail(field, "value " + std::to_string(i) + " is not finite");
      v[i] = dtype_value(bits, dt);
    }
    return v;
  }

 private:
  ByteReader r_;
  long long block_ = -1;
  long long row_ = -1;
  std::vector<uint16_t> half_;  // fp16 skeleton values of the field being read
};

}  // namespace

UnitCode read_container(std::span<const uint8_t> bytes, const std::string& source) {
  std::span<const uint8_t> pspan;
  UnitCode code;
  code.header = read_container_header(bytes, source, &pspan);
  const ContainerHeader& h = code.header;
  if (h.codec_id != CodecId::kKakeyaPca)
    throw FormatError(source + ": codec id " + std::to_string(static_cast<int>(h.codec_id)) +
                      " is not kakeya_pca (1)");
  const size_t d = h.head_dim;
  {
    ByteReader p(pspan, source + " (parameter block)");
    code.seed = p.u64("seed");
    code.bit_width = p.u8("bit_width");
    if (code.bit_width < 1 || code.bit_width > 4)
      p.fail("bit_width " + std::to_string(code.bit_width) + " is not in 1..4");
    const uint8_t dt = p.u8("skeleton_dtype");
    if (dt > 2) p.fail("skeleton_dtype " + std::to_string(dt) + " is not 0, 1 or 2");
    code.skeleton = static_cast<SkeletonDtype>(dt);
    const uint8_t pm = p.u8("pca_method");
    if (pm > 1) p.fail("pca_method " + std::to_string(pm) + " is not 0 or 1");
    code.pca_method = static_cast<PcaMethod>(pm);
    const uint8_t flags = p.u8("flags");
    if (flags & 0xF0u) p.fail("flags 0x" + std::to_string(flags) + " has unknown bits set");
    code.share_basis = flags & kFlagShare;
    code.outliers = flags & kFlagOutliers;
    code.calibrated = flags & kFlagTable;
    code.attention_weights = flags & kFlagAttention;
    const size_t want = 32 + (code.calibrated ? 4u << code.bit_width : 0u);
    if (h.params_bytes != want)
      throw FormatError(source + ": params_bytes " + std::to_string(h.params_bytes) +
                        " is inconsistent with the flags (expected " + std::to_string(want) + ")");
    code.k = p.u16("k");
    code.kmeans_max_iter = p.u16("kmeans_max_iter");
    code.variance_ratio = p.f32("variance_ratio");
    code.outlier_threshold = p.f32("outlier_threshold");
    code.rsvd_target_rank = p.u16("rsvd_target_rank");
    code.rsvd_oversample = p.u16("rsvd_oversample");
    code.rsvd_power_iters = p.u16("rsvd_power_iters");
    code.exact_rank_cap = p.u16("exact_rank_cap");
    if (code.calibrated) {
      code.table.resize(size_t{1} << code.bit_width);
      for (size_t i = 0; i < code.table.size(); ++i) {
        code.table[i] = p.f32("calibrated table");
        if (!std::isfinite(code.table[i]) || (i > 0 && !(code.table[i] > code.table[i - 1])))
          p.fail("calibrated table value " + std::to_string(i) +
                 " is not finite or not strictly ascending");
      }
    } else {
      const auto g = gaussian_table(code.bit_width);
      code.table.assign(g.begin(), g.end());
    }
  }
  BodyReader r(bytes, source);
  r.raw().take(h.header_bytes, "header");
  const size_t n = h.block_size;
  const size_t nb = h.n_blocks;
  if (nb > 0) {
    if (n == 0) r.fail("block_size", "is 0 with " + std::to_string(nb) + " blocks");
    if (n > r.raw().remaining() / 4 || nb > r.raw().remaining() / (8 + 4 * n))
      r.fail("n_blocks", std::to_string(nb) + " blocks of " + std::to_string(n) +
                             " rows cannot fit in the " + std::to_string(r.raw().remaining()) +
                             " bytes left (truncated file?)");
  }
  if (code.share_basis && nb >= 1) {
    r.at(-2, -1);
    SharedBasis sh;
    sh.d_eff = r.u16("d_eff");
    if (sh.d_eff < 1 || sh.d_eff > d)
      r.fail("d_eff", std::to_string(sh.d_eff) + " is not in [1, D = " + std::to_string(d) + "]");
    const uint8_t dt = r.u8("dtype");
    if (dt > 2) r.fail("dtype", std::to_string(dt) + " is not 0, 1 or 2");
    sh.dtype = static_cast<SkeletonDtype>(dt);
    r.u8("reserved");
    sh.mean = r.values(d, sh.dtype, "mean");
    sh.basis = r.values(sh.d_eff * d, sh.dtype, "basis");
    code.shared = std::move(sh);
  }
  code.blocks.resize(nb);
  std::vector<uint16_t> tmp;
  for (size_t b = 0; b < nb; ++b) {
    BlockCode& bc = code.blocks[b];
    r.at(static_cast<long long>(b), -1);
    bc.d_eff = r.u16("d_eff");
    if (bc.d_eff < 1 || bc.d_eff > d)
      r.fail("d_eff", std::to_string(bc.d_eff) + " is not in [1, D = " + std::to_string(d) + "]");
    bc.k_eff = r.u16("K_eff");
    if (bc.k_eff < 1) r.fail("K_eff", "is 0 (must be >= 1)");
    const uint8_t dt = r.u8("dtype");
    if (dt > 2) r.fail("dtype", std::to_string(dt) + " is not 0, 1 or 2");
    bc.dtype = static_cast<SkeletonDtype>(dt);
    const uint8_t fl = r.u8("flags");
    if (fl & ~(kBlockShared | kBlockOutliers))
      r.fail("flags", "unknown bits set (" + std::to_string(fl) + ")");
    bc.shared = fl & kBlockShared;
    bc.outliers = fl & kBlockOutliers;
    if (bc.shared != code.share_basis)
      r.fail("flags", bc.shared ? "says shared basis but the container has no shared record"
                                : "lacks the shared-basis bit of a share_basis container");
    if (bc.outliers != code.outliers)
      r.fail("flags", "outlier bit disagrees with the parameter block");
    if (bc.shared && bc.d_eff != code.shared->d_eff)
      r.fail("d_eff", std::to_string(bc.d_eff) + " differs from the shared record's " +
                          std::to_string(code.shared->d_eff));
    r.u16("reserved");
    if (!bc.shared) {
      bc.mean = r.values(d, bc.dtype, "mean");
      bc.basis = r.values(bc.d_eff * d, bc.dtype, "basis");
    }
    bc.centres = r.values(bc.k_eff * bc.d_eff, bc.dtype, "centres");
    const unsigned sb = clog2(bc.k_eff);
    bc.seg.assign(n, 0);
    if (sb > 0) {
      const uint8_t* p = r.take(packed_bytes(n, sb), "segment ids");
      unpack_bits(p, n, sb, bc.seg.data());
      for (size_t i = 0; i < n; ++i)
        if (bc.seg[i] >= bc.k_eff) {
          r.at(static_cast<long long>(b), static_cast<long long>(i));
          r.fail("segment id", std::to_string(bc.seg[i]) + " >= K_eff " + std::to_string(bc.k_eff));
        }
    }
    const size_t wl = bc.wht_len();
    const size_t ib = packed_bytes(wl, code.bit_width);
    r.need(static_cast<uint64_t>(n) * (4 + ib), "per-vector records");
    bc.t_bits.resize(n);
    bc.norm_bits.resize(n);
    bc.idx.resize(n * wl);
    bc.out_offset.assign(n + 1, 0);
    for (size_t i = 0; i < n; ++i) {
      r.at(static_cast<long long>(b), static_cast<long long>(i));
      bc.t_bits[i] = r.u16("t");
      if (!f16_finite(bc.t_bits[i])) r.fail("t", "is not finite");
      bc.norm_bits[i] = r.u16("residual norm");
      if (!f16_finite(bc.norm_bits[i])) r.fail("residual norm", "is not finite");
      unpack_bits(r.take(ib, "residual indices"), wl, code.bit_width, bc.idx.data() + i * wl);
      if (bc.outliers) {
        const size_t cnt = wl <= 128 ? r.u8("outlier count") : r.u16("outlier count");
        if (cnt > wl)
          r.fail("outlier count", std::to_string(cnt) + " > wht_len " + std::to_string(wl));
        const uint8_t* p = r.take(4 * cnt, "outlier entries");
        for (size_t o = 0; o < cnt; ++o) {
          uint16_t j, v;
          std::memcpy(&j, p + 4 * o, 2);
          std::memcpy(&v, p + 4 * o + 2, 2);
          if (j >= wl)
            r.fail("outlier index", std::to_string(j) + " >= wht_len " + std::to_string(wl));
          if (o > 0 && j <= bc.out_idx.back())
            r.fail("outlier index", "indices are not strictly ascending");
          if (!f16_finite(v)) r.fail("outlier value", "is not finite");
          bc.out_idx.push_back(j);
          bc.out_val.push_back(v);
        }
      }
      bc.out_offset[i + 1] = static_cast<uint32_t>(bc.out_idx.size());
    }
  }
  r.at(-3, -1);
  const uint64_t tail_vals = static_cast<uint64_t>(h.n_tail_rows) * d;
  const uint8_t* tp = r.take(2 * tail_vals, "tail");
  code.tail_bits.resize(tail_vals);
  for (uint64_t i = 0; i < tail_vals; ++i) {
    std::memcpy(&code.tail_bits[i], tp + 2 * i, 2);
    if ((code.tail_bits[i] & 0x7F80u) == 0x7F80u) {
      r.at(-3, static_cast<long long>(i / d));
      r.fail("tail value", "is not finite");
    }
  }
  if (r.raw().remaining() != 0)
    r.fail("end of file", std::to_string(r.raw().remaining()) + " trailing bytes after the tail");
  return code;
}

DecodedUnit decode_unit(const UnitCode& code) {
  DecodedUnit out;
  out.header = code.header;
  const size_t d = code.header.head_dim;
  const size_t n = code.header.block_size;
  const size_t nb = code.blocks.size();
  const size_t nt = d ? code.tail_bits.size() / d : 0;
  out.n_block_rows = nb * n;
  out.rows.resize((nb * n + nt) * d);
  const std::vector<float> signs = make_signs(code.seed, next_pow2(d));
  for (size_t b = 0; b < nb; ++b) {
    const BlockCode& bc = code.blocks[b];
    const float* mean = bc.shared ? code.shared->mean.data() : bc.mean.data();
    const float* basis = bc.shared ? code.shared->basis.data() : bc.basis.data();
    decode_block(bc, mean, basis, d, n, code.table, signs.data(), out.rows.data() + b * n * d);
  }
  float* tail = out.rows.data() + nb * n * d;
  for (size_t i = 0; i < code.tail_bits.size(); ++i) tail[i] = bf16_bits_to_f32(code.tail_bits[i]);
  return out;
}

namespace {

class KakeyaPcaCodec final : public Codec {
 public:
  KakeyaPcaCodec(Config cfg, size_t d) : cfg_(std::move(cfg)), d_(d) {}
  CodecId id() const override { return CodecId::kKakeyaPca; }

  EncodedUnit encode(const UnitInput& in) const override {
    if (in.dim != d_)
      throw InvalidArgument("Kakeya-PCA: input rows have dimension " + std::to_string(in.dim) +
                            ", the codec was built for D = " + std::to_string(d_));
    EncodedUnit e;
    UnitCode code = encode_unit(cfg_, in, &e.stats);
    e.bytes = write_container(code);
    e.header_bytes = code.header.header_bytes;
    e.reported_bytes = e.bytes.size() - e.header_bytes;
    e.tail_bytes = 2ull * code.tail_bits.size();
    e.codec_rows = static_cast<uint64_t>(code.blocks.size()) * code.header.block_size;
    uint64_t ref = e.tail_bytes;
    if (code.shared) ref += reference_shared_bytes(d_, code.shared->d_eff, code.shared->dtype);
    for (const auto& bc : code.blocks)
      ref += reference_block_bytes(d_, code.header.block_size, bc.d_eff, bc.k_eff, cfg_.bit_width,
                                   bc.dtype, bc.out_idx.size(), bc.shared);
    e.reference_bytes = ref;
    return e;
  }

  DecodedUnit decode(std::span<const uint8_t> bytes, const std::string& source) const override {
    return decode_unit(read_container(bytes, source));
  }

 private:
  Config cfg_;
  size_t d_;
};

}  // namespace

}  // namespace kvwb::codec::kakeya

namespace kvwb::codec::detail {

const std::vector<ParamSpec>& kakeya_params() { return kakeya::specs(); }

std::unique_ptr<Codec> make_kakeya(const ParamMap& p, size_t head_dim, const CodecResources& r) {
  return std::make_unique<kakeya::KakeyaPcaCodec>(kakeya::parse_config(p, head_dim, r), head_dim);
}

}  // namespace kvwb::codec::detail
