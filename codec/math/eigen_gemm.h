#pragma once
// f32 matrix products with the bits of Eigen 3.4's dense GEMM (`dst.noalias() = lhs * rhs`), on
// vector lanes where Eigen's summation order is provably plain index order per depth block
// (docs/decisions-made.md #38); the caller evaluates the Eigen expression otherwise.
#include <cstddef>

#include "codec/simd/dispatch.h"

namespace kvwb::codec::kakeya {

/// Whether this build's Eigen f32 GEMM kernels are the ones simd::gemm_eigen_order reproduces:
/// the SSE gebp (LhsProgress 4, mr = 8, nr = 4, no half / quarter packets) without fused
/// multiply-add. Every lane product here declines (Eigen runs) when false.
bool eigen_gebp_reproduced();

/// c (column-major [m, n], column stride ldc) = A·B, A(i, l) = a[i·a_rs + l·a_cs] ([m, k]),
/// B(l, j) = b[l·b_rs + j·b_cs] ([k, n]), as Eigen's GEMM computes it. m, n, k are the dimensions
/// Eigen's column-major GEMM sees: for a row-major destination Eigen computes the transposed
/// product (m = dst.cols(), A = rhsᵀ, B = lhsᵀ). Runs simd::gemm_eigen_order and returns true only
/// when `path` is a vector path, the build's gebp kernels are the SSE ones reproduced there
/// (mr = 8, nr = 4, no FMA) and Eigen runs its GEMM: m, n >= 2 (else GEMV), m + n + k >= 20 (else
/// the lazy coefficient product). Every row is reproduced: the 2p rows of each row block on lanes,
/// the 1p and one-row kernels' rows in their split orders; the blocks kc, mc, nc are read from
/// Eigen's blocking object built as the product builds it. Returns false (nothing written)
/// otherwise.
bool gemm_like_eigen(simd::Path path, size_t m, size_t n, size_t k, const float* a, ptrdiff_t a_rs,
                     ptrdiff_t a_cs, const float* b, ptrdiff_t b_rs, ptrdiff_t b_cs, float* c,
                     size_t ldc);

}  // namespace kvwb::codec::kakeya
