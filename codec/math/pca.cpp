#include "codec/math/pca.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "base/errors.h"
#include "codec/format/half.h"
#include "codec/math/rng.h"

namespace kvwb::codec::kakeya {

namespace {

inline float weight_at(std::span<const float> w, size_t i) noexcept {
  return w.empty() ? 1.0f : w[i];
}

using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;
using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic>;

/// First r columns of the thin QR factor Q of m ([rows, cols], rows >= r).
MatF thin_q(const MatF& m, size_t r) {
  Eigen::HouseholderQR<MatF> qr(m);
  return qr.householderQ() * MatF::Identity(m.rows(), static_cast<Eigen::Index>(r));
}

}  // namespace

double weighted_mean(const float* x, size_t n, size_t d, std::span<const float> w, float* mean) {
  std::vector<double> acc(d, 0.0);
  double sw = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const double wi = weight_at(w, i);
    if (!(wi > 0.0)) continue;
    sw += wi;
    const float* row = x + i * d;
    for (size_t j = 0; j < d; ++j) acc[j] += wi * static_cast<double>(row[j]);
  }
  if (!(sw > static_cast<double>(kEps)))
    throw InvalidArgument("Kakeya-PCA: the row weights of a block sum to " + std::to_string(sw) +
                          " (must be > 2^-23)");
  for (size_t j = 0; j < d; ++j) mean[j] = static_cast<float>(acc[j] / sw);
  return sw;
}

size_t cumsum_rank(std::span<const double> lambda, double vr) {
  const size_t count = lambda.size();
  if (count == 0) return 1;
  double total = 0.0;
  for (double l : lambda) total += std::max(l, 0.0);
  if (total <= static_cast<double>(kEps)) return 1;
  if (vr >= 1.0) return count;
  double run = 0.0;
  for (size_t k = 0; k < count; ++k) {
    run += std::max(lambda[k], 0.0);
    if (run / total >= vr) return std::max<size_t>(k + 1, 1);
  }
  return count;
}

PcaFit pca_exact(const float* x, size_t n, size_t d, std::span<const float> w, const float* mean,
                 const PcaParams& p) {
  // Centred, sqrt(w)-scaled rows in f64; only rows with w > 0 take part.
  size_t n_pos = 0;
  double sw = 0.0;
  for (size_t i = 0; i < n; ++i) {
    const float wi = weight_at(w, i);
    if (wi > 0.0f) {
      ++n_pos;
      sw += wi;
    }
  }
  const auto D = static_cast<Eigen::Index>(d);
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> a(
      static_cast<Eigen::Index>(n_pos), D);
  {
    double* dst = a.data();
    for (size_t i = 0; i < n; ++i) {
      const float wi = weight_at(w, i);
      if (!(wi > 0.0f)) continue;
      const double sq = std::sqrt(static_cast<double>(wi));
      const float* row = x + i * d;
      for (size_t j = 0; j < d; ++j)
        dst[j] = sq * (static_cast<double>(row[j]) - static_cast<double>(mean[j]));
      dst += d;
    }
  }
  MatD cov = MatD::Zero(D, D);
  cov.selfadjointView<Eigen::Lower>().rankUpdate(a.transpose());
  if (sw > 0.0) cov /= sw;
  Eigen::SelfAdjointEigenSolver<MatD> es(cov, Eigen::ComputeEigenvectors);
  if (es.info() != Eigen::Success)
    throw InvalidArgument("Kakeya-PCA: the f64 eigensolver did not converge");
  const auto& ev = es.eigenvalues();
  std::vector<size_t> order(d);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t lhs, size_t rhs) {
    return ev(static_cast<Eigen::Index>(lhs)) > ev(static_cast<Eigen::Index>(rhs));
  });
  PcaFit fit;
  fit.eigenvalues.resize(d);
  for (size_t k = 0; k < d; ++k) fit.eigenvalues[k] = ev(static_cast<Eigen::Index>(order[k]));
  size_t de = cumsum_rank(fit.eigenvalues, p.variance_ratio);
  de = std::clamp<size_t>(de, 1, d);
  if (p.exact_rank_cap > 0) de = std::min(de, p.exact_rank_cap);
  fit.d_eff = de;
  fit.basis.resize(de * d);
  const auto& vecs = es.eigenvectors();
  for (size_t k = 0; k < de; ++k) {
    const auto col = static_cast<Eigen::Index>(order[k]);
    for (size_t j = 0; j < d; ++j)
      fit.basis[k * d + j] = static_cast<float>(vecs(static_cast<Eigen::Index>(j), col));
  }
  return fit;
}

size_t rsvd_sketch_width(size_t n, size_t d, const PcaParams& p) noexcept {
  const size_t kt = std::min(p.rsvd_target_rank, d);
  return std::min({kt + p.rsvd_oversample, d, n});
}

std::vector<float> rsvd_omega(size_t n, size_t r, uint64_t seed) {
  std::vector<float> om(n * r);
  const uint64_t key = seed ^ rng::kTagOmega;
  for (size_t i = 0; i < n * r; ++i) om[i] = rng::normal(key, i);
  return om;
}

PcaFit pca_randomized(const float* x, size_t n, size_t d, std::span<const float> w,
                      const float* mean, const PcaParams& p, std::span<const float> omega) {
  const size_t kt = std::max<size_t>(std::min(p.rsvd_target_rank, d), 1);
  const size_t r = std::max<size_t>(rsvd_sketch_width(n, d, p), 1);
  const auto N = static_cast<Eigen::Index>(n);
  const auto D = static_cast<Eigen::Index>(d);
  const auto R = static_cast<Eigen::Index>(r);
  double sw = 0.0;
  MatF a(N, D);
  for (size_t i = 0; i < n; ++i) {
    const float wi = std::max(weight_at(w, i), 0.0f);
    sw += wi;
    const float sq = std::sqrt(wi);
    const float* row = x + i * d;
    for (size_t j = 0; j < d; ++j)
      a(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = sq * (row[j] - mean[j]);
  }
  std::vector<float> own;
  if (omega.size() != n * r) {
    own = rsvd_omega(n, r, p.seed);
    omega = own;
  }
  const Eigen::Map<const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> om(
      omega.data(), N, R);
  MatF z = a.transpose() * om;  // D x r
  for (size_t it = 0; it < p.rsvd_power_iters; ++it) {
    const MatF y = a * z;  // n x r
    const MatF qy = thin_q(y, r);
    const MatF aty = a.transpose() * qy;  // D x r
    z = thin_q(aty, r);
  }
  const MatF q = thin_q(z, r);  // D x r
  const MatF b = a * q;         // n x r
  Eigen::JacobiSVD<MatF> svd(b, Eigen::ComputeThinV);
  const auto& s = svd.singularValues();
  const MatF basis_cols = q * svd.matrixV();  // D x r
  PcaFit fit;
  fit.eigenvalues.resize(r);
  for (size_t k = 0; k < r; ++k) {
    const double sk = s(static_cast<Eigen::Index>(k));
    fit.eigenvalues[k] = sw > 0.0 ? sk * sk / sw : 0.0;
  }
  size_t de = cumsum_rank(fit.eigenvalues, p.variance_ratio);
  de = std::clamp<size_t>(de, 1, std::min(kt, r));
  fit.d_eff = de;
  fit.basis.resize(de * d);
  for (size_t k = 0; k < de; ++k)
    for (size_t j = 0; j < d; ++j)
      fit.basis[k * d + j] = basis_cols(static_cast<Eigen::Index>(j), static_cast<Eigen::Index>(k));
  return fit;
}

PcaFit pca_fit(const float* x, size_t n, size_t d, std::span<const float> w, const float* mean,
               const PcaParams& p, std::span<const float> omega) {
  return p.method == PcaMethod::kExact ? pca_exact(x, n, d, w, mean, p)
                                       : pca_randomized(x, n, d, w, mean, p, omega);
}

void canonicalize_signs(float* basis, size_t rows, size_t d) {
  for (size_t k = 0; k < rows; ++k) {
    float* row = basis + k * d;
    size_t best = 0;
    float best_abs = -1.0f;
    for (size_t j = 0; j < d; ++j) {
      const float a = std::fabs(row[j]);
      if (a > best_abs) {
        best_abs = a;
        best = j;
      }
    }
    if (row[best] < 0.0f)
      for (size_t j = 0; j < d; ++j) row[j] = -row[j];
  }
}

void round_to_dtype(float* v, size_t count, SkeletonDtype dtype, const std::string& what) {
  switch (dtype) {
    case SkeletonDtype::kFp32:
      for (size_t i = 0; i < count; ++i)
        if (!std::isfinite(v[i]))
          throw NonFiniteInput("non-finite value in field '" + what + "' (index " +
                               std::to_string(i) + ")");
      return;
    case SkeletonDtype::kFp16:
      for (size_t i = 0; i < count; ++i) {
        if (std::isfinite(v[i]) && std::fabs(v[i]) <= kFp16Max) {
          v[i] = round_f16(v[i]);
        } else {
          const std::string field = what + "[" + std::to_string(i) + "]";
          v[i] = f16_bits_to_f32(f16_checked(v[i], field.c_str()));
        }
      }
      return;
    case SkeletonDtype::kBf16:
      for (size_t i = 0; i < count; ++i) {
        const uint16_t b = f32_to_bf16_bits(v[i]);
        if (!std::isfinite(v[i]) || (b & 0x7FFFu) == 0x7F80u) {
          const std::string field = what + "[" + std::to_string(i) + "]";
          bf16_checked(v[i], field.c_str());  // throws
        }
        v[i] = bf16_bits_to_f32(b);
      }
      return;
  }
}

uint32_t dtype_bits(float v, SkeletonDtype dtype) noexcept {
  switch (dtype) {
    case SkeletonDtype::kFp16:
      return f32_to_f16_bits(v);
    case SkeletonDtype::kBf16:
      return f32_to_bf16_bits(v);
    case SkeletonDtype::kFp32:
      break;
  }
  uint32_t b;
  std::memcpy(&b, &v, 4);
  return b;
}

float dtype_value(uint32_t bits, SkeletonDtype dtype) noexcept {
  switch (dtype) {
    case SkeletonDtype::kFp16:
      return f16_bits_to_f32(static_cast<uint16_t>(bits));
    case SkeletonDtype::kBf16:
      return bf16_bits_to_f32(static_cast<uint16_t>(bits));
    case SkeletonDtype::kFp32:
      break;
  }
  float v;
  std::memcpy(&v, &bits, 4);
  return v;
}

}  // namespace kvwb::codec::kakeya
