#include "codec/math/calibration.h"

#include <Eigen/Cholesky>
#include <Eigen/Dense>
#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "base/errors.h"

namespace kvwb::codec {

using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

std::vector<std::vector<double>> compute_sigma_q(const Tensor4& q, size_t n_kv_heads) {
  if (n_kv_heads == 0 || q.h % n_kv_heads != 0)
    throw InvalidArgument("Σ_q: query heads " + std::to_string(q.h) + " not a multiple of kv heads " +
                          std::to_string(n_kv_heads));
  const size_t g = q.h / n_kv_heads, d = q.d;
  std::vector<std::vector<double>> out(n_kv_heads);
  for (size_t kh = 0; kh < n_kv_heads; ++kh) {
    MatD acc = MatD::Zero(d, d);
    Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> block(q.t, d);
    for (size_t s = 0; s < q.s; ++s) {
      for (size_t hq = kh * g; hq < (kh + 1) * g; ++hq) {
        const float* base = q.row(s, hq, 0);
        for (size_t t = 0; t < q.t; ++t)
          for (size_t j = 0; j < d; ++j) block(t, j) = base[t * d + j];
        acc.noalias() += block.transpose() * block;
      }
    }
    acc /= static_cast<double>(g * q.s * q.t);
    MatD sym = 0.5 * (acc + acc.transpose());
    out[kh].assign(sym.data(), sym.data() + d * d);
  }
  return out;
}

std::vector<double> symmetric_eigenvalues(const std::vector<double>& m, size_t dim) {
  Eigen::Map<const MatD> a(m.data(), dim, dim);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(Eigen::MatrixXd(a), Eigen::EigenvaluesOnly);
  std::vector<double> ev(es.eigenvalues().data(), es.eigenvalues().data() + dim);
  std::sort(ev.begin(), ev.end(), std::greater<>());
  return ev;
}

size_t effective_dim(const std::vector<double>& eig_desc, double vr) {
  double total = 0;
  for (double v : eig_desc) total += std::max(v, 0.0);
  if (total <= 0) return 1;
  double run = 0;
  for (size_t k = 0; k < eig_desc.size(); ++k) {
    run += std::max(eig_desc[k], 0.0);
    if (run / total >= vr) return k + 1;
  }
  return eig_desc.size();
}

std::vector<double> covariance(const float* rows, size_t n, size_t dim) {
  std::vector<double> mean(dim, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < dim; ++j) mean[j] += rows[i * dim + j];
  for (auto& m : mean) m /= static_cast<double>(std::max<size_t>(n, 1));
  MatD x(n, dim);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < dim; ++j) x(i, j) = rows[i * dim + j] - mean[j];
  MatD c = (x.transpose() * x) / static_cast<double>(std::max<size_t>(n, 1));
  return std::vector<double>(c.data(), c.data() + dim * dim);
}

namespace {
void fill_sigma_diagnostics(WhiteningFactor& f, const MatD& sigma) {
  const size_t d = f.dim;
  f.sigma_trace = sigma.trace();
  f.diag_mean = f.sigma_trace / static_cast<double>(d);
  double off = 0;
  for (size_t i = 0; i < d; ++i)
    for (size_t j = 0; j < d; ++j)
      if (i != j) off = std::max(off, std::fabs(sigma(i, j)));
  f.off_diag_max_abs = off;
  std::vector<double> s(sigma.data(), sigma.data() + d * d);
  const auto ev = symmetric_eigenvalues(s, d);
  f.cond_raw = ev.front() / std::max(ev.back(), 1e-30);
}

/// eig_max, eig_min and cond_reg (= cond_final until a target moves it) of the regularised Σ_q.
void fill_conditioning(WhiteningFactor& f, const MatD& reg) {
  const size_t dim = f.dim;
  std::vector<double> rv(reg.data(), reg.data() + dim * dim);
  const auto ev = symmetric_eigenvalues(rv, dim);
  f.eig_max = ev.front();
  f.eig_min = ev.back();
  f.cond_reg = f.eig_max / std::max(f.eig_min, 1e-30);
  f.cond_final = f.cond_reg;
}

void store_factor(WhiteningFactor& f, const MatD& L64) {
  const size_t d = f.dim;
  MatD Linv = L64.triangularView<Eigen::Lower>().solve(MatD::Identity(d, d));
  f.L.resize(d * d);
  f.L_inv.resize(d * d);
  f.max_abs_L = 0;
  for (size_t i = 0; i < d; ++i) {
    for (size_t j = 0; j < d; ++j) {
      const bool lower = j <= i;
      f.L[i * d + j] = lower ? static_cast<float>(L64(i, j)) : 0.0f;
      f.L_inv[i * d + j] = lower ? static_cast<float>(Linv(i, j)) : 0.0f;
      f.max_abs_L = std::max(f.max_abs_L, static_cast<double>(std::fabs(f.L[i * d + j])));
    }
  }
}
}  // namespace

WhiteningFactor factor_sigma_q(const std::vector<double>& sigma, size_t dim, double ridge,
                               std::optional<double> target_cond, const std::string& what) {
  if (sigma.size() != dim * dim) throw InvalidArgument(what + ": Σ_q has the wrong size");
  for (double v : sigma)
    if (!std::isfinite(v)) throw NonFiniteInput(what + ": Σ_q has a non-finite entry");
  WhiteningFactor f;
  f.dim = dim;
  f.sigma = sigma;
  MatD s = Eigen::Map<const MatD>(sigma.data(), dim, dim);
  s = 0.5 * (s + s.transpose());
  fill_sigma_diagnostics(f, s);
  MatD reg = s + ridge * f.diag_mean * MatD::Identity(dim, dim);
  fill_conditioning(f, reg);
  MatD fin = reg;
  if (target_cond) {
    const double c = *target_cond;
    if (!(c > 1.0)) throw InvalidArgument(what + ": target_cond must be > 1");
    const double lmin = std::max(f.eig_min, 0.0);
    const double lam = std::max(0.0, (f.eig_max - c * c * lmin) / (c * c - 1.0));
    f.tikhonov_lambda = lam;
    fin += lam * MatD::Identity(dim, dim);
    f.cond_final = (f.eig_max + lam) / std::max(lmin + lam, 1e-30);
  }
  Eigen::LLT<MatD> llt(fin);
  if (llt.info() != Eigen::Success || !(f.diag_mean > 0))
    throw InvalidArgument(what + ": Σ_q + ridge is not positive definite (Cholesky failed; "
                                 "all-zero or degenerate queries?)");
  store_factor(f, llt.matrixL());
  return f;
}

WhiteningFactor factor_from_imported(const std::vector<float>& L, const std::vector<float>& L_inv,
                                     const std::vector<float>* sigma, size_t dim, const std::string& what) {
  if (dim == 0) throw FormatError(what + ": L / L⁻¹ are 0x0; expected D x D with D >= 1");
  if (L.size() != dim * dim || L_inv.size() != dim * dim)
    throw FormatError(what + ": L / L⁻¹ must be " + std::to_string(dim) + "x" + std::to_string(dim));
  WhiteningFactor f;
  f.dim = dim;
  f.L = L;
  f.L_inv = L_inv;
  // L must be exactly lower triangular. An L⁻¹ computed by a general inverse (as the reference's
  // own artefacts are) carries rounding noise above the diagonal: entries up to
  // kInvUpperNoise · max|L⁻¹| are accepted and set to exactly 0; larger ones are an error.
  constexpr double kInvUpperNoise = 1e-6;
  double inv_max = 0;
  for (float x : L_inv) inv_max = std::max(inv_max, static_cast<double>(std::fabs(x)));
  MatD L64(dim, dim);
  for (size_t i = 0; i < dim; ++i) {
    for (size_t j = 0; j < dim; ++j) {
      const double v = L[i * dim + j];
      const double vi = L_inv[i * dim + j];
      const std::string at = "[" + std::to_string(i) + "][" + std::to_string(j) + "]";
      if (!std::isfinite(v) || !std::isfinite(vi)) throw FormatError(what + ": non-finite entry at " + at);
      if (j > i && v != 0.0) throw FormatError(what + ": L is not lower triangular at " + at);
      if (j > i && std::fabs(vi) > kInvUpperNoise * inv_max)
        throw FormatError(what + ": L⁻¹ is not lower triangular at " + at + " (value " + std::to_string(vi) + ")");
      if (j > i) f.L_inv[i * dim + j] = 0.0f;
      L64(i, j) = v;
      f.max_abs_L = std::max(f.max_abs_L, std::fabs(v));
    }
    if (!(L64(i, i) > 0)) throw FormatError(what + ": L has a non-positive diagonal at " + std::to_string(i));
  }
  // L⁻¹ must be the inverse of L: a stale or foreign inverse would silently degrade whitening.
  MatD Li64(dim, dim);
  for (size_t i = 0; i < dim * dim; ++i) Li64.data()[i] = f.L_inv[i];
  const MatD prod = L64 * Li64 - MatD::Identity(dim, dim);
  Eigen::Index pi = 0, pj = 0;
  const double inv_err = prod.cwiseAbs().maxCoeff(&pi, &pj);
  if (!(inv_err <= kImportedFactorTolerance)) {
    char b[200];
    std::snprintf(b, sizeof b, ": L⁻¹ is not the inverse of L: max|L·L⁻¹ − I| = %.3g at [%ld][%ld]; expected <= %.0e",
                  inv_err, static_cast<long>(pi), static_cast<long>(pj), kImportedFactorTolerance);
    throw FormatError(what + b);
  }
  MatD reg = L64 * L64.transpose();
  if (sigma && sigma->size() == dim * dim) {
    // L·Lᵀ = Σ_q + c·I with c >= 0 (ridge, Tikhonov); anything else means L was not factored from Σ_q.
    MatD diff(dim, dim);
    double smax = 0;
    for (size_t i = 0; i < dim * dim; ++i) {
      const double sv = (*sigma)[i];
      if (!std::isfinite(sv)) throw FormatError(what + ": Σ_q has a non-finite entry at index " + std::to_string(i));
      diff.data()[i] = reg.data()[i] - sv;
      smax = std::max(smax, std::fabs(sv));
    }
    const double c = diff.diagonal().mean();
    const double dev = (diff - c * MatD::Identity(dim, dim)).cwiseAbs().maxCoeff(&pi, &pj);
    const double scale = std::max(smax, 1e-30);
    if (!(dev <= kImportedFactorTolerance * scale) || c < -kImportedFactorTolerance * scale) {
      char b[260];
      std::snprintf(b, sizeof b,
                    ": L·Lᵀ is not Σ_q plus a ridge: max|L·Lᵀ − Σ_q − c·I| = %.3g at [%ld][%ld] with c = %.3g "
                    "(relative %.3g to max|Σ_q| %.3g); expected <= %.0e and c >= 0",
                    dev, static_cast<long>(pi), static_cast<long>(pj), c, dev / scale, smax,
                    kImportedFactorTolerance);
      throw FormatError(what + b);
    }
  }
  fill_conditioning(f, reg);
  if (sigma) {
    if (sigma->size() != dim * dim) throw FormatError(what + ": Σ_q has the wrong size");
    f.sigma.assign(sigma->begin(), sigma->end());
    MatD s(dim, dim);
    for (size_t i = 0; i < dim * dim; ++i) s.data()[i] = (*sigma)[i];
    fill_sigma_diagnostics(f, s);
  }
  return f;
}

SkipRule skip_rule(const std::map<int, double>& m) {
  SkipRule r;
  r.m = m;
  if (m.empty()) return r;
  std::vector<double> v;
  for (const auto& [l, x] : m) v.push_back(x);
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  r.median = (n % 2) ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  for (const auto& [l, x] : m) r.skip[l] = x > kSkipRuleFactor * r.median;
  return r;
}

}  // namespace kvwb::codec
