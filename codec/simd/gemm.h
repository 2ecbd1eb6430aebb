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

/// The outer-product step of Eigen's applyHouseholderOnTheLeft (f32): for column j < cols of b
/// (column-major, column stride `stride`, `rows` rows): b(i, j) = b(i, j) − tmp[j]·l[i].
void outer_sub_f32(Path p, float* b, size_t stride, size_t rows, size_t cols, const float* l,
                   const float* tmp);

}  // namespace kvwb::codec::simd
