// JacobiSVD::compute of Eigen 3.4 (SVD/JacobiSVD.h) for real f32, ComputeThinV, rows >= cols,
// written out step by step: the scaling by max |a|, the ColPivHouseholderQR preconditioner (Eigen's
// own class), the sweep with its threshold tests, real_2x2_jacobi_svd (Eigen's own function), the
// sign fix and the sort. Only the rotations of the work matrix and of V run on our kernels, which
// give every element Eigen's operations (codec/simd/jacobi.h).
#include "codec/math/jacobi_svd.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "codec/math/eigen_householder.h"
#include "codec/simd/jacobi.h"

namespace kvwb::codec::kakeya {

namespace {

using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;
using VecF = Eigen::Matrix<float, Eigen::Dynamic, 1>;

// Eigen's applyOnTheRight(p, q, j) on a column-major matrix is apply_rotation_in_the_plane(col p,
// col q, j.transpose()) on its vectorizable path: the elements [head, body) in packet form, the
// others in scalar form, head decided by the alignment of col q (first_default_aligned, one SSE
// packet of 4 floats per step). The same split here, so every element gets Eigen's form.
struct ColumnSplit {
  Eigen::Index head, body;
  bool packet_form(Eigen::Index i) const { return i >= head && i < body; }
};

ColumnSplit split_of(const float* col_q, Eigen::Index n) {
  constexpr Eigen::Index kPacket = Eigen::internal::packet_traits<float>::size;
  const Eigen::Index head = Eigen::internal::first_default_aligned(col_q, n);
  return {head, head + ((n - head) / kPacket) * kPacket};
}

void rotate_columns(simd::Path path, MatF& m, Eigen::Index p, Eigen::Index q, float c, float s) {
  float* y = m.col(q).data();
  const ColumnSplit sp = split_of(y, m.rows());
  simd::rotate_contiguous_f32(path, m.col(p).data(), y, static_cast<size_t>(m.rows()),
                              static_cast<size_t>(sp.head), static_cast<size_t>(sp.body), c, s);
}

// ColPivHouseholderQR<MatF>::computeInPlace of Eigen 3.4 on qr ([rows, cols], rows > cols) with
// the same expressions and types (column norms and their downdate / recompute rule, pivot
// choice, makeHouseholderInPlace), applyHouseholderOnTheLeft through
// apply_householder_left_like_eigen (its outer-product step on lanes). Returns the column
// permutation as Eigen builds it from the transpositions.
Eigen::PermutationMatrix<Eigen::Dynamic, Eigen::Dynamic, int> colpiv_qr(simd::Path path, MatF& qr) {
  using Eigen::Index;
  const Index rows = qr.rows(), cols = qr.cols(), size = std::min(rows, cols);
  Eigen::Matrix<float, 1, Eigen::Dynamic> temp(cols);
  Eigen::Matrix<int, 1, Eigen::Dynamic> transpositions(cols);
  VecF norms_updated(cols), norms_direct(cols);
  for (Index k = 0; k < cols; ++k) {
    norms_direct.coeffRef(k) = qr.col(k).norm();
    norms_updated.coeffRef(k) = norms_direct.coeffRef(k);
  }
  const float norm_downdate_threshold = std::sqrt(Eigen::NumTraits<float>::epsilon());
  for (Index k = 0; k < size; ++k) {
    Index biggest;
    norms_updated.tail(cols - k).maxCoeff(&biggest);
    biggest += k;
    transpositions.coeffRef(k) = static_cast<int>(biggest);
    if (k != biggest) {
      qr.col(k).swap(qr.col(biggest));
      std::swap(norms_updated.coeffRef(k), norms_updated.coeffRef(biggest));
      std::swap(norms_direct.coeffRef(k), norms_direct.coeffRef(biggest));
    }
    float beta, tau;
    qr.col(k).tail(rows - k).makeHouseholderInPlace(tau, beta);
    qr.coeffRef(k, k) = beta;
    // bottomRightCorner(rows − k, cols − k − 1).applyHouseholderOnTheLeft(essential, tau, temp + k
    // + 1)
    // (pointers, not coeffRef: the corner may have no column)
    float* const col_k = qr.data() + k * qr.outerStride();
    apply_householder_left_like_eigen(path, col_k + qr.outerStride() + k, rows - k, cols - k - 1,
                                      qr.outerStride(), col_k + k + 1, tau, temp.data() + k + 1);
    for (Index j = k + 1; j < cols; ++j) {
      if (norms_updated.coeffRef(j) != 0.0f) {
        float t = std::abs(qr.coeffRef(k, j)) / norms_updated.coeffRef(j);
        t = (1.0f + t) * (1.0f - t);
        t = t < 0.0f ? 0.0f : t;
        const float t2 =
            t * Eigen::numext::abs2<float>(norms_updated.coeffRef(j) / norms_direct.coeffRef(j));
        if (t2 <= norm_downdate_threshold) {
          norms_direct.coeffRef(j) = qr.col(j).tail(rows - k - 1).norm();
          norms_updated.coeffRef(j) = norms_direct.coeffRef(j);
        } else {
          norms_updated.coeffRef(j) *= std::sqrt(t);
        }
      }
    }
  }
  Eigen::PermutationMatrix<Eigen::Dynamic, Eigen::Dynamic, int> perm;
  perm.setIdentity(static_cast<int>(cols));
  for (int k = 0; k < static_cast<int>(size); ++k)
    perm.applyTranspositionOnTheRight(k, transpositions.coeff(k));
  return perm;
}

}  // namespace

bool jacobi_svd_thin_v_like_eigen(simd::Path path, const float* a, size_t rows, size_t cols,
                                  size_t lda, float* s, float* v) {
  // The vectorizable rotation path reproduced above is Eigen's SSE one (4-float packets).
  if (Eigen::internal::packet_traits<float>::size != 4 ||
      !Eigen::internal::packet_traits<float>::Vectorizable)
    return false;
  if (path == simd::Path::kScalar || cols == 0 || rows < cols || lda < rows) return false;
  using Eigen::Index;
  const Eigen::Map<const MatF, 0, Eigen::OuterStride<>> matrix(
      a, static_cast<Index>(rows), static_cast<Index>(cols),
      Eigen::OuterStride<>(static_cast<Index>(lda)));
  const Index diag = static_cast<Index>(cols);
  const float precision = 2.0f * Eigen::NumTraits<float>::epsilon();
  const float consider_as_zero = (std::numeric_limits<float>::min)();

  float scale = matrix.cwiseAbs().template maxCoeff<Eigen::PropagateNaN>();
  if (!(Eigen::numext::isfinite)(scale)) return false;  // Eigen: InvalidInput
  if (scale == 0.0f) scale = 1.0f;

  // Step 1, the R-SVD step (qr_preconditioner_impl<…, PreconditionIfMoreRowsThanCols>).
  MatF work(diag, diag);
  MatF mat_v;
  if (rows != cols) {
    MatF qr = matrix / scale;
    const auto perm = colpiv_qr(path, qr);
    work = qr.block(0, 0, diag, diag).template triangularView<Eigen::Upper>();
    mat_v.resize(diag, diag);
    mat_v = perm;
  } else {
    work = matrix.block(0, 0, diag, diag) / scale;
    mat_v.setIdentity(diag, diag);
  }

  // Step 2, the sweeps. Row p of the work matrix, rotated at every step of its batch
  // (q = 0 … p−1), is kept in the contiguous buffer row_p during the batch and written back after
  // it; the column rotations give its two elements (p, p), (p, q) the form Eigen gives them, and
  // what they compute into the stale row p of `work` is overwritten by the write-back.
  float max_diag_entry = work.cwiseAbs().diagonal().maxCoeff();
  const size_t n = static_cast<size_t>(diag), ld = static_cast<size_t>(work.outerStride());
  std::vector<float> row_p(n);
  bool finished = false;
  while (!finished) {
    finished = true;
    for (Index p = 1; p < diag; ++p) {
      for (Index j = 0; j < diag; ++j) row_p[static_cast<size_t>(j)] = work.coeff(p, j);
      float& w_pp = row_p[static_cast<size_t>(p)];
      for (Index q = 0; q < p; ++q) {
        float& w_pq = row_p[static_cast<size_t>(q)];
        const float threshold =
            Eigen::numext::maxi<float>(consider_as_zero, precision * max_diag_entry);
        if (std::abs(w_pq) > threshold || std::abs(work.coeff(q, p)) > threshold) {
          finished = false;
          // svd_precondition_2x2_block_to_be_real is a no-op returning true for real scalars;
          // real_2x2_jacobi_svd reads the 2x2 block (p, q) only.
          Eigen::Matrix2f block;
          block << w_pp, w_pq, work.coeff(q, p), work.coeff(q, q);
          Eigen::JacobiRotation<float> j_left, j_right;
          Eigen::internal::real_2x2_jacobi_svd(block, 0, 1, &j_left, &j_right);
          // applyOnTheLeft(p, q, j_left): rows p, q in Eigen's scalar form.
          if (!(j_left.c() == 1.0f && j_left.s() == 0.0f))
            simd::rotate_strided_f32(path, row_p.data(), 1, &work.coeffRef(q, 0), ld, n, j_left.c(),
                                     j_left.s());
          // applyOnTheRight(p, q, j_right) on the work matrix and on V: j_right.transpose().
          const float c = j_right.c(), s = -j_right.s();
          if (!(c == 1.0f && s == 0.0f)) {
            rotate_columns(path, work, p, q, c, s);
            const ColumnSplit sp = split_of(work.col(q).data(), diag);
            simd::rotate_element_f32(&w_pp, &w_pq, c, s, sp.packet_form(p));
            rotate_columns(path, mat_v, p, q, c, s);
          }
          max_diag_entry = Eigen::numext::maxi<float>(
              max_diag_entry,
              Eigen::numext::maxi<float>(std::abs(w_pp), std::abs(work.coeff(q, q))));
        }
      }
      for (Index j = 0; j < diag; ++j) work.coeffRef(p, j) = row_p[static_cast<size_t>(j)];
    }
  }

  // Step 3, |diagonal| (U is not computed, so no sign is moved), then the scale.
  VecF sv(diag);
  for (Index i = 0; i < diag; ++i) sv.coeffRef(i) = std::abs(work.coeff(i, i));
  sv *= scale;

  // Step 4, the sort.
  for (Index i = 0; i < diag; i++) {
    Index pos;
    const float max_remaining = sv.tail(diag - i).maxCoeff(&pos);
    if (max_remaining == 0.0f) break;
    if (pos) {
      pos += i;
      std::swap(sv.coeffRef(i), sv.coeffRef(pos));
      mat_v.col(pos).swap(mat_v.col(i));
    }
  }
  Eigen::Map<VecF>(s, diag) = sv;
  Eigen::Map<MatF>(v, diag, diag) = mat_v;
  return true;
}

}  // namespace kvwb::codec::kakeya
