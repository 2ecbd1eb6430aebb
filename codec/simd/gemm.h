#pragma once
// f32 matrix product in Eigen's summation order on vector lanes (docs/decisions-made.md #38).
// Lanes are independent output elements; every element gets the operations Eigen 3.4's GEMM gives
// it when its 2pX4 / 2pX1 micro kernels cover the whole result (codec/math/eigen_gemm.h checks
// that), so every path writes the same bits as Eigen.
#include <cstddef>

#include "codec/simd/dispatch.h"

namespace kvwb::codec::simd {

/// c (column-major [m, n], column stride ldc) = A·B with A(i, l) = a[i·a_rs + l·a_cs] ([m, k]) and
/// B(l, j) = b[l·b_rs + j·b_cs] ([k, n]). Per element, exactly: c = 0; for each depth block
/// [l0, min(l0 + kc, k)): acc = 0, acc = acc + A(i, l)·B(l, j) for l in order (product and sum
/// rounded separately); c = c + acc. Needs m % 8 == 0 and kc > 0; any path (kScalar runs the same
/// order without lanes).
void gemm_eigen_order(Path p, size_t m, size_t n, size_t k, size_t kc, const float* a,
                      ptrdiff_t a_rs, ptrdiff_t a_cs, const float* b, ptrdiff_t b_rs,
                      ptrdiff_t b_cs, float* c, size_t ldc);

/// The outer-product step of Eigen's applyHouseholderOnTheLeft (f32): for column j < cols of b
/// (column-major, column stride `stride`, `rows` rows): b(i, j) = b(i, j) − tmp[j]·l[i].
void outer_sub_f32(Path p, float* b, size_t stride, size_t rows, size_t cols, const float* l,
                   const float* tmp);

}  // namespace kvwb::codec::simd
