#pragma once
// Blocked Householder products with the bits of Eigen 3.4 (f32, column-major), their triangular
// products on vector lanes in Eigen's per-element order (docs/decisions-made.md #38); the caller
// runs Eigen itself where these decline.
#include <Eigen/Dense>

#include "codec/simd/dispatch.h"

namespace kvwb::codec::kakeya {

/// corner.applyHouseholderOnTheLeft(essential, tau, workspace) of Eigen 3.4 on a column-major f32
/// block ([rows, cols], column stride ld; essential: rows − 1 entries; workspace: cols floats),
/// with Eigen's expressions and types, except the outer-product step bottom −= tau·essential·tmp,
/// which runs on vector lanes with Eigen's per-element operations b(i, j) − tmp(j)·(tau·e(i))
/// (simd::outer_sub_f32; any path).
void apply_householder_left_like_eigen(simd::Path path, float* corner, Eigen::Index rows,
                                       Eigen::Index cols, Eigen::Index ld, const float* essential,
                                       float tau, float* workspace);

/// mat = H·mat exactly as Eigen::internal::apply_block_householder_on_the_left(mat, vectors,
/// hcoeffs, forward): vectors [rows, nb] hold the unit-lower reflectors, hcoeffs[nb] their
/// coefficients; T from Eigen's make_block_householder_triangular_factor, the three triangular
/// products (Vᵀ·mat, T·tmp or Tᵀ·tmp, mat −= V·tmp) through simd::trmm_eigen_order with Eigen's
/// blocking. Returns false (nothing written) on the scalar path or when the build's gebp kernels
/// are not the reproduced SSE ones (gemm_like_eigen's conditions).
bool apply_block_householder_like_eigen(simd::Path path, Eigen::Block<Eigen::MatrixXf> mat,
                                        const Eigen::Block<Eigen::MatrixXf>& vectors,
                                        const float* hcoeffs, bool forward);

/// dst = HouseholderSequence(qr, h) · Identity(qr.rows(), cols) exactly as Eigen 3.4 computes it
/// (HouseholderSequence::applyThisOnTheLeft, blocked; the identity is not square so the full
/// width of dst is updated). Declines (returns false, dst untouched) where Eigen would not block
/// (min(qr.rows(), qr.cols()) < 48 or cols < 2) or apply_block_householder_like_eigen declines.
bool householder_q_like_eigen(simd::Path path, const Eigen::MatrixXf& qr, const Eigen::VectorXf& h,
                              Eigen::Index cols, Eigen::MatrixXf& dst);

}  // namespace kvwb::codec::kakeya
