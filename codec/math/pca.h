#pragma once
// Kakeya-PCA stages 5.2–5.5 (codec-kakeya.md): weighted mean, exact PCA (f64), randomized SVD
// (f32, Halko–Martinsson–Tropp with QR re-orthogonalisation), the cumsum truncation rule, the
// basis sign convention and skeleton rounding. Pure functions on row-major arrays; no codec state.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <span>
#include <string>
#include <vector>

#include "codec/simd/dispatch.h"

namespace kvwb::codec::kakeya {

/// f32 machine epsilon 2^-23, the threshold of every "> ε" test of the spec.
inline constexpr float kEps = 1.1920929e-7f;

/// Storage dtype of mean, basis and centres (§3 skeleton_dtype; container code in §9.2).
enum class SkeletonDtype : uint8_t { kFp16 = 0, kBf16 = 1, kFp32 = 2 };

/// Bytes per stored skeleton value: 2 for fp16 / bf16, 4 for fp32.
constexpr size_t dtype_bytes(SkeletonDtype d) noexcept { return d == SkeletonDtype::kFp32 ? 4 : 2; }

enum class PcaMethod : uint8_t { kExact = 0, kRandomized = 1 };

/// PCA settings of one stream (§3). vr is already clamped to [0, 1].
struct PcaParams {
  PcaMethod method = PcaMethod::kExact;
  float variance_ratio = 0.95f;
  size_t exact_rank_cap = 0;    // 0 = none; exact only
  size_t rsvd_target_rank = 8;  // k_t before clamping to D
  size_t rsvd_oversample = 8;
  size_t rsvd_power_iters = 2;
  uint64_t seed = 0xCAFEBABEull;  // Ω key is seed ^ TAG_OMEGA
};

/// Result of a PCA fit, before skeleton rounding.
struct PcaFit {
  size_t d_eff = 1;
  std::vector<float> basis;         // [d_eff, D] row-major, row k = component k (f32, unit rows)
  std::vector<double> eigenvalues;  // all eigenvalues considered, descending (D exact, r RSVD)
};

/// §5.2: μ = Σ w_i x_i / Σ w_i over rows with w_i > 0, accumulated in f64, rounded to f32.
/// x: [n, D] row-major f32; w: [n] (empty span = all ones). Writes D floats to `mean`.
/// Throws InvalidArgument when Σ w_i ≤ ε. Returns Σ w_i (f64).
double weighted_mean(const float* x, size_t n, size_t d, std::span<const float> w, float* mean);

/// The cumsum rule (§5.3 step 4, decisions.md #12): `lambda` descending, count values.
/// total = Σ max(λ, 0); total ≤ ε → 1; vr ≥ 1 → count; otherwise the smallest k+1 with
/// (Σ_{m≤k} λ⁺_m)/total ≥ vr (f64 running sum), `count` when never met. Result in [1, count].
size_t cumsum_rank(std::span<const double> lambda, double vr);

/// §5.3 step 1 before the division by Σw: cov += aᵀa for a [n, d] row-major f64 (the centred,
/// √w-scaled rows), cov column-major [d, d] (lower triangle written, upper left as it is), with the
/// bits of Eigen's selfadjoint rank update on every SIMD path (the vector paths sum each element
/// in Eigen's order, simd/kakeya.h).
void covariance_lower(const double* a, size_t n, size_t d, double* cov,
                      simd::Path path = simd::active_path());

/// §5.3 step 2: Eigen::SelfAdjointEigenSolver (Eigen 3.4) of the lower triangle of cov
/// (column-major [d, d]): eigenvalues ascending into values [d], eigenvectors as the columns of
/// vectors (column-major [d, d]). The vector paths run the same algorithm with the same per-element
/// arithmetic (bit-identical results); false when the QR iteration did not converge.
bool symmetric_eigen(const double* cov, size_t d, double* values, double* vectors,
                     simd::Path path = simd::active_path());

/// symmetric_eigen of `count` matrices of the same size at once (covs[i] → values[i], vectors[i],
/// ok[i]); on the vector paths their QR iterations are interleaved (independent latency-bound
/// recurrences overlap), each result bit-identical to symmetric_eigen of that matrix alone.
void symmetric_eigen_many(const double* const* covs, size_t count, size_t d,
                          double* const* values, double* const* vectors, bool* ok,
                          simd::Path path = simd::active_path());

/// §5.3: exact PCA of x ([n, D] f32) with weights w (empty = ones) about the f32 `mean` (D).
/// Covariance and eigensolver in f64; eigenpairs sorted descending (stable); basis rows f32.
PcaFit pca_exact(const float* x, size_t n, size_t d, std::span<const float> w, const float* mean,
                 const PcaParams& p);

/// One block of pca_exact_many: rows x [n, D], weights w (empty = ones), its f32 mean.
struct PcaJob {
  const float* x = nullptr;
  size_t n = 0;
  std::span<const float> w;
  const float* mean = nullptr;
};

/// pca_exact of several blocks (same D) at once: their eigensolves run interleaved
/// (symmetric_eigen_many). fits[i] is pca_exact of job i; where that would throw, errors[i] holds
/// the exception instead (resized to jobs.size(); null = fits[i] valid).
std::vector<PcaFit> pca_exact_many(std::span<const PcaJob> jobs, size_t d, const PcaParams& p,
                                   std::vector<std::exception_ptr>& errors);

/// §5.4 sketch width r = min(min(k_t, D) + oversample, D, n).
size_t rsvd_sketch_width(size_t n, size_t d, const PcaParams& p) noexcept;

/// §4.4 RSVD test matrix Ω: [n, r] row-major f32, Ω[i][j] = normal(seed ^ TAG_OMEGA, i·r + j).
std::vector<float> rsvd_omega(size_t n, size_t r, uint64_t seed);

/// §5.4: randomized PCA in f32 (cut-off sums in f64). `omega` is rsvd_omega(n, r, p.seed) when
/// the caller has it (all blocks of a unit share it); empty = computed here. d_eff is clamped to
/// [1, min(k_t, r)] (a block with n < k_t has only r sketch directions).
PcaFit pca_randomized(const float* x, size_t n, size_t d, std::span<const float> w,
                      const float* mean, const PcaParams& p, std::span<const float> omega = {});

/// Dispatches on p.method.
PcaFit pca_fit(const float* x, size_t n, size_t d, std::span<const float> w, const float* mean,
               const PcaParams& p, std::span<const float> omega = {});

/// §5.5 sign convention: each row of `basis` ([rows, D]) is negated when needed so that its
/// entry of largest magnitude (lowest index on ties) is positive.
void canonicalize_signs(float* basis, size_t rows, size_t d);

/// rnd_dtype (§0) in place for `count` values. fp16: |v| > 65504 throws Fp16Range and bf16
/// overflow throws Fp16Range, naming `what` (e.g. "block 3 mean"); non-finite throws
/// NonFiniteInput. fp32 leaves the values unchanged.
void round_to_dtype(float* v, size_t count, SkeletonDtype dtype, const std::string& what);

/// Round-trip of one already-rounded value to its storage bits (2 or 4 bytes, little-endian).
uint32_t dtype_bits(float v, SkeletonDtype dtype) noexcept;
/// Inverse of dtype_bits.
float dtype_value(uint32_t bits, SkeletonDtype dtype) noexcept;

}  // namespace kvwb::codec::kakeya
