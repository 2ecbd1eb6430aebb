#pragma once
// Eigen 3.4's JacobiSVD<MatrixXf> (ColPivHouseholderQR preconditioner) with ComputeThinV, its
// plane rotations on vector lanes (codec/simd/jacobi.h) and everything else as Eigen does it, so
// the singular values and V carry Eigen's bits (docs/decisions-made.md #38).
#include <cstddef>

#include "codec/simd/dispatch.h"

namespace kvwb::codec::kakeya {

/// Singular values s [cols] (descending) and thin V (column-major [cols, cols]) of the
/// column-major matrix a ([rows, cols], column stride lda >= rows), bit for bit what
/// `Eigen::JacobiSVD<Eigen::MatrixXf>(a, Eigen::ComputeThinV)` gives. Runs and returns true only
/// when `path` is a vector path, rows >= cols >= 1 and every entry of a is finite; returns false
/// (nothing written) otherwise, and the caller runs Eigen (its R^T preconditioner for
/// rows < cols, its InvalidInput flag for non-finite input).
bool jacobi_svd_thin_v_like_eigen(simd::Path path, const float* a, size_t rows, size_t cols,
                                  size_t lda, float* s, float* v);

}  // namespace kvwb::codec::kakeya
