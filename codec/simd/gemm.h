#pragma once
// f32 matrix product in Eigen's summation order on vector lanes (docs/decisions-made.md #38).
// Lanes are independent output elements; every element gets the operations Eigen 3.4's GEMM gives
// it: the 2pX4 / 2pX1 micro kernels' plain depth order and the 1p / one-row kernels' split orders
// (codec/math/eigen_gemm.h checks the build), so every path writes the same bits as Eigen.
#include <cstddef>

#include "codec/simd/dispatch.h"

namespace kvwb::codec::simd {

/// c (column-major [m, n], column stride ldc) = A·B with A(i, l) = a[i·a_rs + l·a_cs] ([m, k]) and
/// B(l, j) = b[l·b_rs + j·b_cs] ([k, n]), per element exactly as Eigen 3.4's gebp kernel (SSE,
/// mr = 8, nr = 4, no FMA) sums it with depth block kc, row block mc and column block nc: c = 0;
/// per depth block c = c + acc, acc summed in the order of the kernel that owns the element (the
/// 2p rows of each row block in plain depth order on lanes; the 1p and one-row kernels' rows in
/// their split orders, see gemm.cpp). kc, mc, nc > 0; any path (kScalar without lanes).
void gemm_eigen_order(Path p, size_t m, size_t n, size_t k, size_t kc, size_t mc, size_t nc,
                      const float* a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float* b,
                      ptrdiff_t b_rs, ptrdiff_t b_cs, float* c, size_t ldc);

/// c (column-major [m, n], column stride ldc) = c + alpha·(A·B) with the operations of ONE call of
/// Eigen 3.4's gebp kernel on m rows, n columns and depth k (gemm_eigen_order with kc = k, mc = m,
/// nc = n: acc summed in the order of the kernel that owns the element, then c + alpha·acc).
/// alpha must be 1 or −1 (exact scaling). A, B as in gemm_eigen_order; m, n, k >= 1.
void gebp_eigen_order(Path p, size_t m, size_t n, size_t k, float alpha, const float* a,
                      ptrdiff_t a_rs, ptrdiff_t a_cs, const float* b, ptrdiff_t b_rs,
                      ptrdiff_t b_cs, float* c, size_t ldc);

/// c (column-major [rows, cols], column stride ldc) += alpha·(tri(A)·B) exactly as Eigen 3.4's
/// product_triangular_matrix_matrix<…, LhsIsTriangular = true, …, ColMajor result> computes it:
/// A(i, l) = a[i·a_rs + l·a_cs] is [rows_in, depth_in]; tri(A) its lower (lower = true) or upper
/// triangle, with a unit diagonal when unit; B(l, j) = b[l·b_rs + j·b_cs] is [depth_in, cols]. kc
/// and mc are Eigen's blocking.kc() and blocking.mc() for the product. Per depth block of kc the
/// diagonal block runs in panels of 16 copied into a zero-filled buffer (one gebp call each), the
/// trapezoid beside a panel as one gebp call, the dense part in row blocks of mc (one gebp call
/// each); every gebp call as gebp_eigen_order. alpha is 1 or −1.
void trmm_eigen_order(Path p, bool lower, bool unit, size_t rows_in, size_t cols, size_t depth_in,
                      size_t kc, size_t mc, float alpha, const float* a, ptrdiff_t a_rs,
                      ptrdiff_t a_cs, const float* b, ptrdiff_t b_rs, ptrdiff_t b_cs, float* c,
                      size_t ldc);

/// The outer-product step of Eigen's applyHouseholderOnTheLeft (f32): for column j < cols of b
/// (column-major, column stride `stride`, `rows` rows): b(i, j) = b(i, j) − tmp[j]·l[i].
void outer_sub_f32(Path p, float* b, size_t stride, size_t rows, size_t cols, const float* l,
                   const float* tmp);

}  // namespace kvwb::codec::simd
