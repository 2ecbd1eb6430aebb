#include "codec/math/pca.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <memory>
#include <limits>
#include <numeric>

#include "base/errors.h"
#include "codec/format/half.h"
#include "codec/math/eigen_gemm.h"
#include "codec/math/eigen_householder.h"
#include "codec/math/jacobi_svd.h"
#include "codec/math/rng.h"
#include "codec/simd/gemm.h"
#include "codec/simd/kakeya.h"

namespace kvwb::codec::kakeya {

namespace {

inline float weight_at(std::span<const float> w, size_t i) noexcept {
  return w.empty() ? 1.0f : w[i];
}

using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;
using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic>;

/// Eigen's f64 packets have two lanes (SSE2 / SSE4.2 baseline): the fused Householder step
/// reproduces that lane split of its row-major gemv; with any other packet size Eigen's own
/// product runs.
constexpr bool kFusedHouseholder = Eigen::internal::packet_traits<double>::size == 2;

/// Eigen's tridiagonalization_inplace(mat, diag, subdiag, hcoeffs, extractQ = true) (Eigen 3.4)
/// with the same expressions and types, except the two element-wise updates, which run on vector
/// lanes with the same per-element operations: the rank-2 update of the trailing block and the
/// outer-product step of the Householder accumulation of Q (simd/kakeya.h).
void tridiagonalize(simd::Path path, MatD& mat, Eigen::VectorXd& diag, Eigen::VectorXd& subdiag,
                    Eigen::VectorXd& hcoeffs) {
  using Eigen::Index;
  const Index n = mat.rows();
  const auto stride = static_cast<size_t>(n);
  // tridiagonalization_inplace(matA, hCoeffs)
  for (Index i = 0; i < n - 1; ++i) {
    const Index rs = n - i - 1;
    double beta, h;
    mat.col(i).tail(rs).makeHouseholderInPlace(h, beta);
    mat.col(i).coeffRef(i + 1) = 1;
    if (path != simd::Path::kScalar && kFusedHouseholder) {
      // Eigen's product: dst = 0, then its symv with alpha = h (its bits; simd/kakeya.h).
      hcoeffs.tail(rs).setZero();
      simd::symv_lower_eigen(path, &mat.coeffRef(i + 1, i + 1), stride, static_cast<size_t>(rs),
                             &mat.coeffRef(i + 1, i), &hcoeffs.coeffRef(i), h);
    } else {
      hcoeffs.tail(n - i - 1).noalias() =
          (mat.bottomRightCorner(rs, rs).selfadjointView<Eigen::Lower>() *
           (Eigen::numext::conj(h) * mat.col(i).tail(rs)));
    }
    hcoeffs.tail(n - i - 1) +=
        (Eigen::numext::conj(h) * -0.5 * (hcoeffs.tail(rs).dot(mat.col(i).tail(rs)))) *
        mat.col(i).tail(n - i - 1);
    // selfadjointView<Lower>().rankUpdate(u, v, -1)
    simd::sym_rank2_lower(path, &mat.coeffRef(i + 1, i + 1), stride, &mat.coeffRef(i + 1, i),
                          &hcoeffs.coeffRef(i), static_cast<size_t>(rs), -1.0);
    mat.col(i).coeffRef(i + 1) = beta;
    hcoeffs.coeffRef(i) = h;
  }
  diag = mat.diagonal().real();
  subdiag = mat.template diagonal<-1>().real();
  // mat = HouseholderSequence(mat, hcoeffs).setLength(n - 1).setShift(1): evalTo, in place.
  thread_local Eigen::VectorXd workspace, lhs;
  workspace.resize(n);
  lhs.resize(n);
  const Index vecs = n - 1;
  const MatD& vectors = mat;
  mat.diagonal().setOnes();
  mat.triangularView<Eigen::StrictlyUpper>().setZero();
  for (Index k = vecs - 1; k >= 0; --k) {
    const Index cs = n - k - 1;
    auto corner = mat.bottomRightCorner(cs, cs);
    const double tau = hcoeffs.coeff(k);
    // corner.applyHouseholderOnTheLeft(essentialVector(k), tau, workspace)
    if (cs == 1) {
      corner *= 1.0 - tau;
    } else if (tau != 0.0 && kFusedHouseholder) {
      // The same steps fused per column (Eigen's gemv lanes reproduced, simd::householder_left).
      const double* essential = &vectors.coeffRef(k + 2, k);
      for (Index r = 0; r < cs - 1; ++r) lhs[r] = tau * essential[r];
      simd::householder_left(path, &corner.coeffRef(0, 0), stride, static_cast<size_t>(cs),
                             essential, lhs.data(), tau);
    } else if (tau != 0.0) {
      const Eigen::Block<const MatD, Eigen::Dynamic, 1> essential(vectors, k + 2, k, n - k - 2, 1);
      Eigen::Map<Eigen::Matrix<double, 1, Eigen::Dynamic>> tmp(workspace.data(), cs);
      Eigen::Block<decltype(corner), Eigen::Dynamic, Eigen::Dynamic> bottom(corner, 1, 0, cs - 1,
                                                                           cs);
      tmp.noalias() = essential.adjoint() * bottom;
      tmp += corner.row(0);
      corner.row(0) -= tau * tmp;
      // bottom.noalias() -= tau * essential * tmp
      for (Index r = 0; r < cs - 1; ++r) lhs[r] = tau * essential.coeff(r);
      simd::outer_sub(path, &bottom.coeffRef(0, 0), stride, static_cast<size_t>(cs - 1),
                      static_cast<size_t>(cs), lhs.data(), workspace.data());
    }
    mat.col(k).tail(n - k - 1).setZero();
  }
  for (Index k = 0; k < n - vecs; ++k) mat.col(k).tail(n - k - 1).setZero();
}

/// One eigenproblem of Eigen::SelfAdjointEigenSolver::compute (Eigen 3.4, eigenvectors on) in
/// three stages: scale + tridiagonalisation, the implicit QR iteration (computeFromTridiagonal_impl
/// and tridiagonal_qr_step) as a state machine of one rotation per step, so that the latency-bound
/// recurrences of several independent problems can be interleaved, and the rotations of Q + sort.
/// Every problem goes through exactly Eigen's operations in Eigen's order; only the instruction
/// stream interleaves them.
struct EigenProblem {
  Eigen::VectorXd diag, subdiag, hcoeffs;
  MatD q;
  double scale = 1.0;
  std::vector<simd::ColumnRotation> rots;
  // QR state: the active block [start, end], the bulge-chase position k and its carried values.
  Eigen::Index n = 0, start = 0, end = 0, iter = 0, k = 0;
  double x = 0.0, z = 0.0, dk = 0.0, ek = 0.0, e_prev = 0.0;
  bool in_sweep = false, done = false, failed = false;
};

/// mat = lower triangle of cov / scale, tridiagonalised (Q formed in q); readies the QR state.
void eigen_prepare(simd::Path path, const Eigen::Map<const MatD>& cov, EigenProblem& pr) {
  const Eigen::Index n = cov.cols();
  pr.n = n;
  pr.diag.resize(n);
  pr.rots.clear();
  pr.in_sweep = false;
  pr.failed = false;
  pr.start = 0;
  pr.end = n - 1;
  pr.iter = 0;
  if (n == 1) {
    pr.q = cov;
    pr.diag(0) = pr.q(0, 0);
    pr.q.setOnes(n, n);
    pr.done = true;
    return;
  }
  pr.done = false;
  MatD& mat = pr.q;
  mat = cov.triangularView<Eigen::Lower>();
  double scale = mat.cwiseAbs().maxCoeff();
  if (scale == 0.0) scale = 1.0;
  mat.triangularView<Eigen::Lower>() /= scale;
  pr.scale = scale;
  pr.subdiag.resize(n - 1);
  pr.hcoeffs.resize(n - 1);
  tridiagonalize(path, mat, pr.diag, pr.subdiag, pr.hcoeffs);
}

/// The part of computeFromTridiagonal_impl's loop before a QR step: deflation, the end of the
/// iteration, and the Wilkinson shift; then the first bulge of the step.
inline void eigen_begin_sweep(EigenProblem& pr) {
  using Eigen::Index;
  constexpr Index max_iterations = 30;  // SelfAdjointEigenSolver::m_maxIterations
  const double considerAsZero = (std::numeric_limits<double>::min)();
  const double precision_inv = 1.0 / Eigen::NumTraits<double>::epsilon();
  double* diag = pr.diag.data();
  double* subdiag = pr.subdiag.data();
  Index end = pr.end, start = pr.start;
  for (Index i = start; i < end; ++i) {
    if (std::abs(subdiag[i]) < considerAsZero) {
      subdiag[i] = 0.0;
    } else {
      const double scaled_subdiag = precision_inv * subdiag[i];
      if (scaled_subdiag * scaled_subdiag <= (std::abs(diag[i]) + std::abs(diag[i + 1])))
        subdiag[i] = 0.0;
    }
  }
  while (end > 0 && subdiag[end - 1] == 0.0) end--;
  pr.end = end;
  if (end <= 0) {
    pr.done = true;
    return;
  }
  pr.iter++;
  if (pr.iter > max_iterations * pr.n) {
    pr.done = true;
    pr.failed = true;
    return;
  }
  start = end - 1;
  while (start > 0 && subdiag[start - 1] != 0) start--;
  pr.start = start;
  // Francis implicit QR step with the Wilkinson shift.
  const double td = (diag[end - 1] - diag[end]) * 0.5;
  const double e = subdiag[end - 1];
  double mu = diag[end];
  if (td == 0.0) {
    mu -= std::abs(e);
  } else if (e != 0.0) {
    const double e2 = Eigen::numext::abs2(e);
    const double h = Eigen::numext::hypot(td, e);
    if (e2 == 0.0)
      mu -= e / ((td + (td > 0.0 ? h : -h)) / e);
    else
      mu -= e2 / (td + (td > 0.0 ? h : -h));
  }
  pr.x = diag[start] - mu;
  pr.z = subdiag[start];
  pr.dk = diag[start];
  pr.ek = subdiag[start];
  pr.k = start;
  pr.in_sweep = pr.z != 0.0;
}

/// The running state of one bulge chase, copied out of its EigenProblem so that the compiler keeps
/// it in registers.
struct Chase {
  double* dg;
  double* sd;
  std::vector<simd::ColumnRotation>* rots;
  Eigen::Index k, start, end;
  double x, z, dk, ek, e_prev;
};

Chase chase_of(EigenProblem& pr) {
  return {pr.diag.data(), pr.subdiag.data(), &pr.rots, pr.k, pr.start, pr.end,
          pr.x,           pr.z,              pr.dk,    pr.ek, pr.e_prev};
}

void keep_chase(EigenProblem& pr, const Chase& ch, bool in_sweep) {
  pr.k = ch.k;
  pr.x = ch.x;
  pr.z = ch.z;
  pr.dk = ch.dk;
  pr.ek = ch.ek;
  pr.e_prev = ch.e_prev;
  pr.in_sweep = in_sweep;
}

/// One rotation of tridiagonal_qr_step's bulge chase (makeGivens inlined; the values the next
/// rotation reads are carried, every store happens in Eigen's order); the rotation is recorded.
/// Returns whether the sweep goes on (Eigen's `k < end && z != 0`).
inline bool chase_step(Chase& ch) {
  double* dg = ch.dg;
  double* sd = ch.sd;
  const Eigen::Index k = ch.k;
  const double z = ch.z, dk = ch.dk, ek = ch.ek;
  double c, s;
  simd::make_givens(ch.x, z, c, s);
  const double dk1 = dg[k + 1];
  const double sdk = s * dk + c * ek;
  const double dkp1 = s * ek + c * dk1;
  dg[k] = c * (c * dk - s * ek) - s * (c * ek - s * dk1);
  ch.dk = s * sdk + c * dkp1;
  dg[k + 1] = ch.dk;
  const double ek_new = c * sdk - s * dkp1;
  sd[k] = ek_new;
  if (k > ch.start) sd[k - 1] = c * ch.e_prev - s * z;
  ch.x = ek_new;
  ch.e_prev = ek_new;
  if (k < ch.end - 1) {
    const double e1 = sd[k + 1];
    ch.z = -s * e1;
    ch.ek = c * e1;
    sd[k + 1] = ch.ek;
  }
  // Q = Q·G: Eigen's applyOnTheRight(k, k+1, rot) rotates by rot.transpose() = (c, −s) and
  // skips the identity.
  const double qs = -s;
  if (!(c == 1.0 && qs == 0.0)) ch.rots->push_back({c, qs, static_cast<uint32_t>(k)});
  ch.k = k + 1;
  return ch.k < ch.end && ch.z != 0.0;
}

/// Runs one problem's QR iteration to the end.
void eigen_qr_solo(EigenProblem& pr) {
  while (!pr.done) {
    if (!pr.in_sweep) {
      eigen_begin_sweep(pr);
      continue;
    }
    Chase ch = chase_of(pr);
    while (chase_step(ch)) {
    }
    keep_chase(pr, ch, false);
  }
}

/// Runs two problems' QR iterations to the end, one rotation of each in turn while both are in a
/// sweep (two independent dependency chains in one instruction stream).
void eigen_qr_pair(EigenProblem& a, EigenProblem& b) {
  for (;;) {
    if (!a.done && !a.in_sweep) eigen_begin_sweep(a);
    if (!b.done && !b.in_sweep) eigen_begin_sweep(b);
    if (a.done) return eigen_qr_solo(b);
    if (b.done) return eigen_qr_solo(a);
    if (!a.in_sweep || !b.in_sweep) continue;
    Chase ca = chase_of(a), cb = chase_of(b);
    bool on_a = true, on_b = true;
    while (on_a && on_b) {
      on_a = chase_step(ca);
      on_b = chase_step(cb);
    }
    keep_chase(a, ca, on_a);
    keep_chase(b, cb, on_b);
  }
}

/// Runs the QR iterations of `count` problems to the end, two at a time.
void eigen_qr(EigenProblem* const* prs, size_t count) {
  size_t i = 0;
  for (; i + 2 <= count; i += 2) eigen_qr_pair(*prs[i], *prs[i + 1]);
  if (i < count) eigen_qr_solo(*prs[i]);
}

/// Applies the recorded rotations to Q (simd::apply_column_rotations: a block of rows at a time,
/// the same operations per element in the same order as Eigen), sorts ascending as Eigen does and
/// scales the eigenvalues back. False when the QR did not converge.
bool eigen_finish(simd::Path path, EigenProblem& pr) {
  using Eigen::Index;
  const Index n = pr.n;
  if (n == 1) return true;
  if (pr.failed) return false;
  MatD& mat = pr.q;
  Eigen::VectorXd& diag = pr.diag;
  simd::apply_column_rotations(path, mat.data(), static_cast<size_t>(n), pr.rots.data(),
                               pr.rots.size());
  for (Index i = 0; i < n - 1; ++i) {
    Index k;
    diag.segment(i, n - i).minCoeff(&k);
    if (k > 0) {
      std::swap(diag[i], diag[k + i]);
      mat.col(i).swap(mat.col(k + i));
    }
  }
  diag *= pr.scale;
  return true;
}

/// Eigen's HouseholderQR<MatF>::compute (Eigen 3.4: householder_qr_inplace_blocked with block
/// size 48, householder_qr_inplace_unblocked per panel, apply_block_householder_on_the_left for
/// the trailing columns) with the same expressions and types, except the outer-product step of
/// each reflector in a panel (bottom -= tau·essential·tmp), which runs on vector lanes with
/// Eigen's per-element operations b(i, j) − tmp(j)·(tau·essential(i)) (simd::outer_sub_f32), and
/// the trailing update, whose triangular products run on lanes in Eigen's order
/// (apply_block_householder_like_eigen; Eigen's own where that declines).
void householder_qr(simd::Path path, MatF& mat, Eigen::VectorXf& hcoeffs) {
  using Eigen::Index;
  const Index rows = mat.rows(), cols = mat.cols(), size = std::min(rows, cols);
  hcoeffs.resize(size);
  thread_local Eigen::VectorXf temp;
  temp.resize(cols);
  float* const temp_data = temp.data();
  const Index block = std::min<Index>(48, size);
  for (Index k = 0; k < size; k += block) {
    const Index bs = std::min(size - k, block), tcols = cols - k - bs, brows = rows - k;
    Eigen::Block<MatF> a11_21 = mat.block(k, k, brows, bs);
    Eigen::Block<Eigen::VectorXf, Eigen::Dynamic, 1> hseg = hcoeffs.segment(k, bs);
    // householder_qr_inplace_unblocked(a11_21, hseg, temp_data)
    const Index psize = std::min(brows, bs);
    for (Index j = 0; j < psize; ++j) {
      const Index rem_rows = brows - j, rem_cols = bs - j - 1;
      float beta;
      a11_21.col(j).tail(rem_rows).makeHouseholderInPlace(hseg.coeffRef(j), beta);
      a11_21.coeffRef(j, j) = beta;
      // corner.applyHouseholderOnTheLeft(essential, tau, temp_data + j + 1)
      // (pointers, not coeffRef: the corner may have no column and the essential no row)
      float* const col_j = a11_21.data() + j * a11_21.outerStride();
      apply_householder_left_like_eigen(path, col_j + a11_21.outerStride() + j, rem_rows, rem_cols,
                                        a11_21.outerStride(), col_j + j + 1, hseg.coeff(j),
                                        temp_data + j + 1);
    }
    if (tcols) {
      Eigen::Block<MatF> a21_22 = mat.block(k, k + bs, brows, tcols);
      if (!kakeya::apply_block_householder_like_eigen(path, a21_22, a11_21, hseg.data(), false))
        Eigen::internal::apply_block_householder_on_the_left(a21_22, a11_21, hseg, false);
    }
  }
}

/// First r columns of the thin QR factor Q of m ([rows, cols], rows >= r). The vector paths
/// factorise with householder_qr (same bits as Eigen's HouseholderQR) and form Q with
/// householder_q_like_eigen (Eigen's blocked applyThisOnTheLeft, same bits), Eigen's own where
/// that declines (fewer than 48 reflectors).
MatF thin_q(simd::Path path, const MatF& m, size_t r) {
  if (path == simd::Path::kScalar) {
    Eigen::HouseholderQR<MatF> qr(m);
    return qr.householderQ() * MatF::Identity(m.rows(), static_cast<Eigen::Index>(r));
  }
  MatF qr = m;
  Eigen::VectorXf h;
  householder_qr(path, qr, h);
  MatF q_thin;
  if (kakeya::householder_q_like_eigen(path, qr, h, static_cast<Eigen::Index>(r), q_thin))
    return q_thin;
  const Eigen::HouseholderSequence<MatF, Eigen::VectorXf> q(qr, h);
  return q * MatF::Identity(m.rows(), static_cast<Eigen::Index>(r));
}

}  // namespace

double weighted_mean(const float* x, size_t n, size_t d, std::span<const float> w, float* mean) {
  std::vector<double> acc(d, 0.0);
  double sw = 0.0;
  const simd::Path path = simd::active_path();
  for (size_t i = 0; i < n; ++i) {
    const double wi = weight_at(w, i);
    if (!(wi > 0.0)) continue;
    sw += wi;
    simd::accumulate_weighted(path, acc.data(), x + i * d, wi, d);
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

void covariance_lower(const double* a, size_t n, size_t d, double* cov, simd::Path path) {
  const auto D = static_cast<Eigen::Index>(d);
  Eigen::Map<MatD> c(cov, D, D);
  if (path != simd::Path::kScalar && d % 4 == 0 && n > 0) {
    // Eigen's depth blocking of this rank update (it decides the summation blocks).
    Eigen::internal::gemm_blocking_space<Eigen::ColMajor, double, double, Eigen::Dynamic,
                                         Eigen::Dynamic, Eigen::Dynamic>
        blocking(D, D, static_cast<Eigen::Index>(n), 1, false);
    simd::cov_lower_rank_update(path, a, n, d, static_cast<size_t>(blocking.kc()), cov);
    return;
  }
  const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>
      am(a, static_cast<Eigen::Index>(n), D);
  c.selfadjointView<Eigen::Lower>().rankUpdate(am.transpose());
}

bool symmetric_eigen(const double* cov, size_t d, double* values, double* vectors,
                     simd::Path path) {
  bool ok = false;
  symmetric_eigen_many(&cov, 1, d, &values, &vectors, &ok, path);
  return ok;
}

void symmetric_eigen_many(const double* const* covs, size_t count, size_t d,
                          double* const* values, double* const* vectors, bool* ok,
                          simd::Path path) {
  const auto D = static_cast<Eigen::Index>(d);
  if (path == simd::Path::kScalar) {
    for (size_t i = 0; i < count; ++i) {
      const Eigen::Map<const MatD> c(covs[i], D, D);
      Eigen::SelfAdjointEigenSolver<MatD> es(c, Eigen::ComputeEigenvectors);
      ok[i] = es.info() == Eigen::Success;
      if (!ok[i]) continue;
      std::copy(es.eigenvalues().data(), es.eigenvalues().data() + D, values[i]);
      std::copy(es.eigenvectors().data(), es.eigenvectors().data() + D * D, vectors[i]);
    }
    return;
  }
  thread_local std::vector<EigenProblem> work;
  if (work.size() < count) work.resize(count);
  std::vector<EigenProblem*> prs(count);
  for (size_t i = 0; i < count; ++i) {
    prs[i] = &work[i];
    eigen_prepare(path, Eigen::Map<const MatD>(covs[i], D, D), work[i]);
  }
  eigen_qr(prs.data(), count);
  for (size_t i = 0; i < count; ++i) {
    ok[i] = eigen_finish(path, work[i]);
    if (!ok[i]) continue;
    std::copy(work[i].diag.data(), work[i].diag.data() + D, values[i]);
    std::copy(work[i].q.data(), work[i].q.data() + D * D, vectors[i]);
  }
}

namespace {

/// §5.3 step 1: the f64 covariance (lower triangle, divided by Σw) of the centred, √w-scaled rows
/// with w > 0, column-major [d, d].
void exact_covariance(const float* x, size_t n, size_t d, std::span<const float> w,
                      const float* mean, simd::Path path, MatD& cov) {
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
      simd::centre_scale(path, dst, x + i * d, mean, sq, d);
      dst += d;
    }
  }
  cov = MatD::Zero(D, D);
  covariance_lower(a.data(), n_pos, d, cov.data(), path);
  // cov /= sw. The strict upper triangle stays 0 (0 / sw = +0 for sw > 0) and is never read, so
  // only the lower triangle is divided.
  if (sw > 0.0)
    for (size_t j = 0; j < d; ++j) simd::divide(path, cov.data() + j * d + j, d - j, sw);
}

/// §5.3 steps 3–5: eigenpairs (ascending from the solver) sorted descending (stable), the cumsum
/// rank, the f32 basis rows.
PcaFit exact_fit_from_eigen(const Eigen::VectorXd& ev, const MatD& vecs, size_t d,
                            const PcaParams& p) {
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
  for (size_t k = 0; k < de; ++k) {
    const auto col = static_cast<Eigen::Index>(order[k]);
    for (size_t j = 0; j < d; ++j)
      fit.basis[k * d + j] = static_cast<float>(vecs(static_cast<Eigen::Index>(j), col));
  }
  return fit;
}

}  // namespace

PcaFit pca_exact(const float* x, size_t n, size_t d, std::span<const float> w, const float* mean,
                 const PcaParams& p) {
  PcaJob job{x, n, w, mean};
  std::vector<std::exception_ptr> errors;
  auto fits = pca_exact_many({&job, 1}, d, p, errors);
  if (errors[0]) std::rethrow_exception(errors[0]);
  return std::move(fits[0]);
}

std::vector<PcaFit> pca_exact_many(std::span<const PcaJob> jobs, size_t d, const PcaParams& p,
                                   std::vector<std::exception_ptr>& errors) {
  const size_t count = jobs.size();
  const auto D = static_cast<Eigen::Index>(d);
  const simd::Path path = simd::active_path();
  std::vector<MatD> covs(count), vecs(count);
  std::vector<Eigen::VectorXd> evs(count);
  std::vector<const double*> cov_ptrs(count);
  std::vector<double*> ev_ptrs(count), vec_ptrs(count);
  for (size_t i = 0; i < count; ++i) {
    exact_covariance(jobs[i].x, jobs[i].n, d, jobs[i].w, jobs[i].mean, path, covs[i]);
    evs[i].resize(D);
    vecs[i].resize(D, D);
    cov_ptrs[i] = covs[i].data();
    ev_ptrs[i] = evs[i].data();
    vec_ptrs[i] = vecs[i].data();
  }
  std::unique_ptr<bool[]> ok(new bool[count]);
  symmetric_eigen_many(cov_ptrs.data(), count, d, ev_ptrs.data(), vec_ptrs.data(), ok.get(),
                       path);
  std::vector<PcaFit> fits(count);
  errors.assign(count, nullptr);
  for (size_t i = 0; i < count; ++i) {
    if (!ok[i]) {
      errors[i] = std::make_exception_ptr(
          InvalidArgument("Kakeya-PCA: the f64 eigensolver did not converge"));
      continue;
    }
    fits[i] = exact_fit_from_eigen(evs[i], vecs[i], d, p);
  }
  return fits;
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
  // The products run on vector lanes where that gives Eigen's bits (eigen_gemm.h), else Eigen.
  const simd::Path path = simd::active_path();
  const ptrdiff_t sn = static_cast<ptrdiff_t>(n), sd = static_cast<ptrdiff_t>(d);
  // dst ([rows, cols] col-major) = a·m (a_t false) or aᵀ·m (a_t true), m col-major [·, cols].
  const auto a_times = [&](MatF& dst, bool a_t, const MatF& m) {
    const Eigen::Index rows = a_t ? D : N, depth = a_t ? N : D;
    dst.resize(rows, m.cols());
    if (gemm_like_eigen(path, static_cast<size_t>(rows), static_cast<size_t>(m.cols()),
                        static_cast<size_t>(depth), a.data(), a_t ? sn : 1, a_t ? 1 : sn,
                        m.data(), 1, static_cast<ptrdiff_t>(m.rows()), dst.data(),
                        static_cast<size_t>(rows)))
      return;
    if (a_t)
      dst.noalias() = a.transpose() * m;
    else
      dst.noalias() = a * m;
  };
  MatF z(D, R);  // D x r
  if (!gemm_like_eigen(path, d, r, n, a.data(), sn, 1, omega.data(), static_cast<ptrdiff_t>(r), 1,
                       z.data(), d))
    z.noalias() = a.transpose() * om;
  MatF y, qy, aty;
  for (size_t it = 0; it < p.rsvd_power_iters; ++it) {
    a_times(y, false, z);  // n x r
    qy = thin_q(path, y, r);
    a_times(aty, true, qy);  // D x r
    z = thin_q(path, aty, r);
  }
  const MatF q = thin_q(path, z, r);  // D x r
  MatF b;
  a_times(b, false, q);  // n x r
  // Eigen's JacobiSVD bits, its rotations on vector lanes where reproduced (jacobi_svd.h).
  Eigen::VectorXf s(std::min(b.rows(), b.cols()));
  MatF v(b.cols(), s.size());  // r x r
  if (!jacobi_svd_thin_v_like_eigen(path, b.data(), static_cast<size_t>(b.rows()),
                                    static_cast<size_t>(b.cols()), static_cast<size_t>(b.rows()),
                                    s.data(), v.data())) {
    Eigen::JacobiSVD<MatF> svd(b, Eigen::ComputeThinV);
    s = svd.singularValues();
    v = svd.matrixV();
  }
  MatF basis_cols(D, v.cols());   // D x r
  if (!gemm_like_eigen(path, d, static_cast<size_t>(v.cols()), static_cast<size_t>(v.rows()),
                       q.data(), 1, sd, v.data(), 1, static_cast<ptrdiff_t>(v.rows()),
                       basis_cols.data(), d))
    basis_cols.noalias() = q * v;
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
