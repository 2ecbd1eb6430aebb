#include "codec/math/eigen_householder.h"

#include <algorithm>

#include "codec/math/eigen_gemm.h"
#include "codec/simd/gemm.h"

namespace kvwb::codec::kakeya {

namespace {

using Eigen::Index;

// The build's kernels are those simd::trmm_eigen_order reproduces: gemm_like_eigen's gebp, and
// triangular products with diagonal panels of 16.
bool reproducible(simd::Path path) {
  using Trmm =
      Eigen::internal::product_triangular_matrix_matrix<float, Index, Eigen::Upper, true,
                                                        Eigen::ColMajor, false, Eigen::ColMajor,
                                                        false, Eigen::ColMajor, 1>;
  return eigen_gebp_reproduced() && static_cast<int>(Trmm::SmallPanelWidth) == 16 &&
         path != simd::Path::kScalar;
}

// triangular_product_impl's blocking: gemm_blocking_space<ColMajor, …, KcFactor 4> built from
// the striped sizes, not l3.
struct TrmmBlocking {
  size_t kc, mc;
};
TrmmBlocking trmm_blocking(Index rows, Index cols, Index depth) {
  Eigen::internal::gemm_blocking_space<Eigen::ColMajor, float, float, Eigen::Dynamic,
                                       Eigen::Dynamic, Eigen::Dynamic, 4>
      blocking(rows, cols, depth, 1, false);
  return {static_cast<size_t>(blocking.kc()), static_cast<size_t>(blocking.mc())};
}

// dst (+)= alpha·tri(A)·B for a triangular lhs, striped sizes as triangular_product_impl.
void trmm(simd::Path path, bool lower, bool unit, Index lrows, Index lcols, Index cols, float alpha,
          const float* a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float* b, ptrdiff_t b_cs, float* c,
          size_t ldc) {
  const Index rows = lower ? lrows : std::min(lrows, lcols);
  const Index depth = lower ? std::min(lcols, lrows) : lcols;
  const TrmmBlocking bl = trmm_blocking(rows, cols, depth);
  simd::trmm_eigen_order(path, lower, unit, static_cast<size_t>(rows), static_cast<size_t>(cols),
                         static_cast<size_t>(depth), bl.kc, bl.mc, alpha, a, a_rs, a_cs, b, 1, b_cs,
                         c, ldc);
}

}  // namespace

void apply_householder_left_like_eigen(simd::Path path, float* corner, Index rows, Index cols,
                                       Index ld, const float* essential, float tau,
                                       float* workspace) {
  Eigen::Map<Eigen::MatrixXf, 0, Eigen::OuterStride<>> c(corner, rows, cols,
                                                         Eigen::OuterStride<>(ld));
  if (rows == 1) {
    c *= 1.0f - tau;
    return;
  }
  if (tau == 0.0f) return;
  const Eigen::Map<const Eigen::VectorXf> e(essential, rows - 1);
  Eigen::Map<Eigen::RowVectorXf> tmp(workspace, cols);
  auto bottom = c.bottomRows(rows - 1);
  tmp.noalias() = e.adjoint() * bottom;
  tmp += c.row(0);
  c.row(0) -= tau * tmp;
  // bottom.noalias() −= tau · essential · tmp: (tau · essential) evaluated first.
  thread_local Eigen::VectorXf lhs;
  lhs.resize(rows - 1);
  for (Index i = 0; i < rows - 1; ++i) lhs[i] = tau * e.coeff(i);
  if (cols > 0)
    simd::outer_sub_f32(path, corner + 1, static_cast<size_t>(ld), static_cast<size_t>(rows - 1),
                        static_cast<size_t>(cols), lhs.data(), tmp.data());
}

bool apply_block_householder_like_eigen(simd::Path path, Eigen::Block<Eigen::MatrixXf> mat,
                                        const Eigen::Block<Eigen::MatrixXf>& vectors,
                                        const float* hcoeffs, bool forward) {
  if (!reproducible(path) || vectors.rows() != mat.rows() || vectors.cols() > vectors.rows())
    return false;
  const Index nb = vectors.cols(), rows = vectors.rows(), cols = mat.cols();
  if (nb == 0 || cols == 0 || rows == 0) return true;
  thread_local Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> t;
  thread_local Eigen::MatrixXf tmp, tmp2;
  t.resize(nb, nb);
  const Eigen::Map<const Eigen::VectorXf> h(hcoeffs, nb);
  Eigen::internal::make_block_householder_triangular_factor(t, vectors, h);
  const float* v = vectors.data();
  const auto ldv = static_cast<ptrdiff_t>(vectors.outerStride());
  const auto ldm = static_cast<size_t>(mat.outerStride());
  // tmp = V.adjoint() * mat: UnitUpper lhs [nb, rows].
  tmp.setZero(nb, cols);
  trmm(path, false, true, nb, rows, cols, 1.0f, v, ldv, 1, mat.data(), static_cast<ptrdiff_t>(ldm),
       tmp.data(), static_cast<size_t>(nb));
  // tmp = T.triangularView<Upper>() * tmp (forward) or its adjoint (Lower) * tmp, via a zeroed
  // temporary (the assignment aliases).
  tmp2.setZero(nb, cols);
  const auto n = static_cast<ptrdiff_t>(nb);
  if (forward)
    trmm(path, false, false, nb, nb, cols, 1.0f, t.data(), n, 1, tmp.data(), n, tmp2.data(),
         static_cast<size_t>(nb));
  else
    trmm(path, true, false, nb, nb, cols, 1.0f, t.data(), 1, n, tmp.data(), n, tmp2.data(),
         static_cast<size_t>(nb));
  // mat.noalias() -= V * tmp: UnitLower lhs [rows, nb], alpha −1.
  trmm(path, true, true, rows, nb, cols, -1.0f, v, 1, ldv, tmp2.data(), n, mat.data(), ldm);
  return true;
}

bool householder_q_like_eigen(simd::Path path, const Eigen::MatrixXf& qr, const Eigen::VectorXf& h,
                              Index cols, Eigen::MatrixXf& dst) {
  constexpr Index kBlockSize = 48;  // HouseholderSequence's BlockSize
  const Index length = std::min(qr.rows(), qr.cols()), rows = qr.rows();
  if (!reproducible(path) || length < kBlockSize || cols <= 1 || h.size() < length) return false;
  dst = Eigen::MatrixXf::Identity(rows, cols);
  auto& vecs = const_cast<Eigen::MatrixXf&>(qr);
  const Index block = length < 2 * kBlockSize ? (length + 1) / 2 : kBlockSize;
  for (Index i = 0; i < length; i += block) {
    const Index end = length - i, k = std::max<Index>(0, end - block), bs = end - k;
    const Eigen::Block<Eigen::MatrixXf> sub_vecs(vecs, k, k, rows - k, bs);
    if (!apply_block_householder_like_eigen(path, dst.block(k, 0, rows - k, cols), sub_vecs,
                                            h.data() + k, true))
      return false;
  }
  return true;
}

}  // namespace kvwb::codec::kakeya
