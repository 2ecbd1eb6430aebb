#pragma once
// Q-preconditioning calibration (codec-kakeya.md §8, metrics.md §5): Σ_q per (layer, kv head)
// from pre-RoPE queries, ridge-regularised Cholesky factor L and L⁻¹, optional Tikhonov
// re-regularisation, diagnostics and the skip rule. All math in f64; L and L⁻¹ are then rounded to
// f32, which is what whitening uses and what bundles store.
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "codec/format/tensor.h"

namespace kvwb::codec {

inline constexpr double kDefaultRidge = 1e-3;

/// Σ_q of every kv head of one layer (K§8.1): q_pre [S, H_q, T, D]; GQA group of kv head h is
/// query heads h·g .. h·g+g-1. Returns n_kv_heads row-major D×D f64 matrices, symmetrised.
std::vector<std::vector<double>> compute_sigma_q(const Tensor4& q_pre, size_t n_kv_heads);

/// The factor of one (layer, kv head) and its diagnostics.
struct WhiteningFactor {
  size_t dim = 0;
  std::vector<float> L;      // [D, D] row-major f32, lower triangular, L·Lᵀ = Σ_fin
  std::vector<float> L_inv;  // [D, D] row-major f32, lower triangular
  std::vector<double> sigma; // unregularised Σ_q [D, D] (may be empty when imported without it)
  double sigma_trace = 0;    // tr(Σ_q)
  double diag_mean = 0;      // mean(diag Σ_q)
  double off_diag_max_abs = 0;
  double eig_min = 0, eig_max = 0;  // of Σ_reg
  double cond_reg = 0;       // cond(Σ_reg) = eig_max / max(eig_min, 1e-30)
  double cond_raw = 0;       // cond(Σ_q)
  double cond_final = 0;     // cond(Σ_fin) (equals cond_reg without Tikhonov)
  double tikhonov_lambda = 0;
  double max_abs_L = 0;      // largest |L| entry (f32 L)
};

/// Factors one Σ_q (K§8.2, §8.5). `what` names the pair ("layer 3, kv head 1") in errors; a
/// non-positive-definite Σ_reg throws InvalidArgument naming it; non-finite Σ throws NonFiniteInput.
WhiteningFactor factor_sigma_q(const std::vector<double>& sigma, size_t dim, double ridge,
                               std::optional<double> target_cond, const std::string& what);

/// Tolerance of the consistency checks of imported factors (factor_from_imported): max|L·L⁻¹ − I|,
/// and max|L·Lᵀ − Σ_q − c·I| / max|Σ_q| for the ridge/Tikhonov shift c ≥ 0 when Σ_q is present.
inline constexpr double kImportedFactorTolerance = 1e-3;

/// Builds a factor from imported f32 L and L⁻¹ (e.g. a bundle's safetensors); Σ_q optional.
/// Diagnostics are computed from L·Lᵀ. Throws FormatError when `dim` is 0, L is not exactly lower
/// triangular with a positive diagonal, L⁻¹ has an entry above the diagonal larger than
/// 1e-6·max|L⁻¹| (smaller ones, the rounding noise of a general inverse, are set to 0), L⁻¹ is not
/// the inverse of L, or L·Lᵀ is not Σ_q plus a non-negative multiple of I (the ridge and Tikhonov
/// terms), each beyond kImportedFactorTolerance; named by `what`.
WhiteningFactor factor_from_imported(const std::vector<float>& L, const std::vector<float>& L_inv,
                                     const std::vector<float>* sigma, size_t dim, const std::string& what);

/// Threshold factor of the skip rule: a layer is auto-skipped when m_l > kSkipRuleFactor·median.
inline constexpr double kSkipRuleFactor = 2.0;

/// Skip rule (K§8.4, decisions #4): m_l = max |L| over a layer's heads; median over the layers
/// (mean of the two middle values when even); auto-skip when m_l > kSkipRuleFactor·median.
struct SkipRule {
  std::map<int, double> m;   // layer -> m_l
  double median = 0;
  std::map<int, bool> skip;  // layer -> auto-skipped
};
SkipRule skip_rule(const std::map<int, double>& max_abs_L_per_layer);

/// Eigenvalues (descending, f64) of a symmetric D×D matrix given row-major in f64.
std::vector<double> symmetric_eigenvalues(const std::vector<double>& m, size_t dim);

/// d_eff(vr) by the cumsum rule (metrics.md §4): smallest k whose cumulative fraction of the
/// clamped eigenvalues is >= vr; 1 when the total is 0.
size_t effective_dim(const std::vector<double>& eig_desc, double vr);

/// Centred covariance (1/N)Σ(x-x̄)ᵀ(x-x̄) in f64 of rows [n, D] (metrics.md §4).
std::vector<double> covariance(const float* rows, size_t n, size_t dim);

}  // namespace kvwb::codec
