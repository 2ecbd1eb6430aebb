#pragma once
// Kakeya-PCA f64 kernels behind runtime dispatch (dispatch.h). The vector paths put independent
// output elements in the lanes; every element gets exactly the operations of the Eigen code the
// scalar path runs, in the same order and without contraction, so every path writes the same
// basis bits (docs/decisions-made.md #27, #28).
#include <cstddef>
#include <cstdint>

#include "codec/simd/dispatch.h"

namespace kvwb::codec::simd {

/// Lower triangle (i >= j) of cov += aᵀa, cov column-major [d, d] (cov[j·d + i]), a row-major
/// [n, d] f64. Each element is summed the way Eigen's rank update (gebp 2pX4 micro kernel) sums
/// it when d % 4 == 0: over k in blocks of `kc` rows, acc = ((0 + a_k0i·a_k0j) + …) in row order
/// within a block, then cov += acc; the strict upper triangle is left as it is. Needs a vector
/// path (not kScalar), d % 4 == 0 and kc > 0.
void cov_lower_rank_update(Path p, const double* a, size_t n, size_t d, size_t kc, double* cov);

/// One plane rotation of columns k and k + 1: x ← c·x + s·y, y ← c·y − s·x.
struct ColumnRotation {
  double c, s;
  uint32_t k;
};

/// Applies `count` rotations in order to q (column-major [n, n]), as Eigen's
/// apply_rotation_in_the_plane does element by element (each row of q evolves independently, so
/// rows are processed in blocks that stay in L1).
void apply_column_rotations(Path p, double* q, size_t n, const ColumnRotation* rot, size_t count);

}  // namespace kvwb::codec::simd

namespace kvwb::codec::simd {

/// Eigen's selfadjoint rank-2 update (lower) of the tridiagonalisation, element by element:
/// for column c < size, rows j >= c of m (column-major, column stride `stride`):
/// m(j, c) = m(j, c) + ((alpha·u[c])·v[j] + (alpha·v[c])·u[j]).
void sym_rank2_lower(Path p, double* m, size_t stride, const double* u, const double* v,
                     size_t size, double alpha);

/// The outer-product step of Eigen's applyHouseholderOnTheLeft: for column j < cols of b
/// (column-major, stride `stride`, `rows` rows): b(i, j) = b(i, j) − tmp[j]·l[i].
void outer_sub(Path p, double* b, size_t stride, size_t rows, size_t cols, const double* l,
               const double* tmp);

}  // namespace kvwb::codec::simd

namespace kvwb::codec::simd {

/// g[r·k + c] = Σ_j u[r·d + j] · ct[j·k + c], summed in j order from 0 (f32, no contraction):
/// Eigen's product u·cenᵀ into a row-major [rows, k] result when its 2pX4 / 2pX1 micro kernels
/// cover every element, i.e. k % 8 == 0, rows >= 2, rows + k + d >= 20 and d <= the depth block
/// kc (the caller checks). ct is the transposed centre matrix [d, k]. Needs k % 8 == 0.
void centre_dots(Path p, const float* u, size_t rows, size_t d, const float* ct, size_t k,
                 float* g);

}  // namespace kvwb::codec::simd

namespace kvwb::codec::simd {

/// Per value j < n: s = buf[j]·scale (f32), idx[j] = kernels::quantize_fast(s, table, count),
/// and s_out[j] = s when s_out is not null. count <= 16 (Lloyd-Max tables of b <= 4).
void lloyd_max_scaled(Path p, const float* buf, size_t n, float scale, const float* table,
                      size_t count, uint16_t* idx, float* s_out);

}  // namespace kvwb::codec::simd
