#include "codec/math/kmeans.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>

#include "codec/math/pca.h"
#include "codec/math/rng.h"
#include "codec/simd/kakeya.h"

namespace kvwb::codec::kakeya {

namespace {
using RowMatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MapConstRowF = Eigen::Map<const RowMatF>;

/// g = u · cenᵀ ([rows, k] row-major, u [rows, d], cen [k, d]) on vector lanes when Eigen's GEMM
/// sums every element in plain index order (simd::centre_dots); false = the caller runs Eigen.
bool centre_products_fast(const float* u, size_t rows, size_t d, const float* cen, size_t k,
                          float* g, simd::Path path = simd::active_path()) {
  if (path == simd::Path::kScalar || k % 8 != 0 || rows < 2 || rows + k + d < 20 || d == 0)
    return false;
  Eigen::internal::gemm_blocking_space<Eigen::RowMajor, float, float, Eigen::Dynamic,
                                       Eigen::Dynamic, Eigen::Dynamic>
      blocking(static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(k),
               static_cast<Eigen::Index>(d), 1, true);
  if (static_cast<size_t>(blocking.kc()) < d) return false;
  thread_local std::vector<float> ct;
  ct.resize(d * k);
  for (size_t c = 0; c < k; ++c)
    for (size_t j = 0; j < d; ++j) ct[j * k + c] = cen[c * d + j];
  simd::centre_dots(path, u, rows, d, ct.data(), k, g);
  return true;
}
}  // namespace

size_t kmeans_first_index(uint64_t seed, uint64_t block_index, size_t n_valid) noexcept {
  if (n_valid == 0) return 0;
  return static_cast<size_t>(rng::splitmix(seed ^ rng::kTagKmeans, block_index) % n_valid);
}

KmeansFit fit_axial_kmeans(const float* coeffs, size_t n, size_t d, std::span<const float> w,
                           size_t k, size_t max_iter, uint64_t seed, uint64_t block_index) {
  KmeansFit fit;
  // 1. Valid rows, 3. their directions.
  std::vector<size_t> valid;
  valid.reserve(n);
  std::vector<float> norms(n);
  for (size_t i = 0; i < n; ++i) {
    const float wi = w.empty() ? 1.0f : w[i];
    norms[i] = norm_f32(coeffs + i * d, d);
    if (wi > 0.0f && norms[i] > kEps) valid.push_back(i);
  }
  const size_t nv = valid.size();
  fit.n_valid = nv;
  fit.k_eff = std::min(k, std::max<size_t>(nv, 1));
  const auto D = static_cast<Eigen::Index>(d);
  if (nv == 0) {  // 2. all-zero block or every row equal to the mean
    fit.k_eff = 1;
    fit.centres.assign(d, 0.0f);
    fit.centres[0] = 1.0f;
    return fit;
  }
  const size_t ke = fit.k_eff;
  const auto NV = static_cast<Eigen::Index>(nv);
  const auto KE = static_cast<Eigen::Index>(ke);
  RowMatF u(NV, D);
  std::vector<float> wv(nv);
  for (size_t r = 0; r < nv; ++r) {
    const size_t i = valid[r];
    const float* c = coeffs + i * d;
    for (size_t j = 0; j < d; ++j)
      u(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(j)) = c[j] / norms[i];
    wv[r] = w.empty() ? 1.0f : w[i];
  }
  // 4. Farthest-first initialisation with the signed cosine (f32).
  RowMatF cen(KE, D);
  size_t pick = kmeans_first_index(seed, block_index, nv);
  std::vector<float> maxcos(nv, -std::numeric_limits<float>::infinity());
  Eigen::VectorXf cosv(NV);
  for (size_t c = 0; c < ke; ++c) {
    cen.row(static_cast<Eigen::Index>(c)) = u.row(static_cast<Eigen::Index>(pick));
    if (c + 1 == ke) break;
    cosv.noalias() = u * cen.row(static_cast<Eigen::Index>(c)).transpose();
    size_t best = 0;
    float best_dist = 0.0f;
    for (size_t r = 0; r < nv; ++r) {
      maxcos[r] = std::max(maxcos[r], cosv(static_cast<Eigen::Index>(r)));
      const float dist = 1.0f - maxcos[r];
      if (r == 0 || dist > best_dist) {
        best_dist = dist;
        best = r;
      }
    }
    pick = best;
  }
  // 5. Lloyd loop.
  std::vector<uint32_t> prev(nv, 0), cur(nv, 0);
  RowMatF g(NV, KE);
  RowMatF v(KE, D);
  std::vector<double> wsum(ke);
  const simd::Path path = simd::active_path();
  for (size_t it = 0; it < max_iter; ++it) {
    if (!centre_products_fast(u.data(), nv, d, cen.data(), ke, g.data()))
      g.noalias() = u * cen.transpose();
    simd::argmax_abs_rows(path, g.data(), nv, ke, cur.data());
    const bool changed = cur != prev;
    fit.iterations = it + 1;
    if (!changed) break;
    v.setZero();
    std::fill(wsum.begin(), wsum.end(), 0.0);
    for (size_t r = 0; r < nv; ++r) {
      const uint32_t a = cur[r];
      const float sigma = g(static_cast<Eigen::Index>(r), a) < 0.0f ? -1.0f : 1.0f;
      const float ws = wv[r] * sigma;
      float* vr = v.data() + static_cast<size_t>(a) * d;
      const float* ur = u.data() + r * d;
      for (size_t j = 0; j < d; ++j) vr[j] += ws * ur[j];
      wsum[a] += wv[r];
    }
    for (size_t c = 0; c < ke; ++c) {
      const float nrm = norm_f32(v.data() + c * d, d);
      if (wsum[c] > static_cast<double>(kEps) && nrm > kEps)
        cen.row(static_cast<Eigen::Index>(c)) = v.row(static_cast<Eigen::Index>(c)) / nrm;
    }
    std::swap(prev, cur);
  }
  fit.centres.assign(cen.data(), cen.data() + ke * d);
  return fit;
}

void centre_products(const float* u, size_t rows, size_t d, const float* cen, size_t k, float* g,
                     simd::Path path) {
  if (rows == 0 || k == 0) return;
  if (centre_products_fast(u, rows, d, cen, k, g, path)) return;
  Eigen::Map<RowMatF> gm(g, static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(k));
  gm.noalias() = MapConstRowF(u, static_cast<Eigen::Index>(rows), static_cast<Eigen::Index>(d)) *
                 MapConstRowF(cen, static_cast<Eigen::Index>(k), static_cast<Eigen::Index>(d))
                     .transpose();
}

void assign_segments(const float* coeffs, size_t n, size_t d, const float* centres, size_t k_eff,
                     uint32_t* seg, float* t) {
  if (n == 0) return;
  const auto N = static_cast<Eigen::Index>(n);
  const auto D = static_cast<Eigen::Index>(d);
  const auto KE = static_cast<Eigen::Index>(k_eff);
  const MapConstRowF c(coeffs, N, D);
  const MapConstRowF cen(centres, KE, D);
  thread_local RowMatF g;
  g.resize(N, KE);
  // noalias: Eigen then writes the row-major result directly (as the former `const RowMatF g =
  // c * cenᵀ` did); a plain assignment would go through a column-major temporary, whose GEMM
  // sums some elements in another order.
  if (!centre_products_fast(coeffs, n, d, centres, k_eff, g.data()))
    g.noalias() = c * cen.transpose();
  simd::argmax_abs_rows(simd::active_path(), g.data(), n, k_eff, seg);
  for (size_t i = 0; i < n; ++i) {
    if (!(norm_f32(coeffs + i * d, d) > kEps)) {
      seg[i] = 0;
      t[i] = 0.0f;
      continue;
    }
    t[i] = g.data()[i * k_eff + seg[i]];
  }
}

}  // namespace kvwb::codec::kakeya
