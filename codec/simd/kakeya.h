#pragma once
// Kakeya-PCA f64 kernels behind runtime dispatch (dispatch.h). The vector paths put independent
// output elements in the lanes; every element gets exactly the operations of the Eigen code the
// scalar path runs, in the same order and without contraction, so every path writes the same
// basis bits (docs/decisions-made.md #27, #28).
#include <cmath>
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

/// Eigen 3.4's JacobiRotation<double>::makeGivens(p, q) (no r) inlined, with the same IEEE
/// operations in the same order, so c and s are bit-identical.
inline void make_givens(double p, double q, double& c, double& s) noexcept {
  if (q == 0.0) {
    c = p < 0.0 ? -1.0 : 1.0;
    s = 0.0;
  } else if (p == 0.0) {
    c = 0.0;
    s = q < 0.0 ? 1.0 : -1.0;
  } else if (std::fabs(p) > std::fabs(q)) {
    const double t = q / p;
    double u = std::sqrt(1.0 + t * t);
    if (p < 0.0) u = -u;
    c = 1.0 / u;
    s = -t * c;
  } else {
    const double t = p / q;
    double u = std::sqrt(1.0 + t * t);
    if (q < 0.0) u = -u;
    s = -1.0 / u;
    c = -t * s;
  }
}

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

/// corner.applyHouseholderOnTheLeft(e, tau) of Eigen's HouseholderSequence::evalTo, fused per
/// column: corner column-major (column stride `stride`, cs × cs, cs >= 2), row 0 then the m = cs − 1
/// bottom rows b; e: the m essential entries, l[i] = tau·e[i]. Per column j, Eigen's row-major
/// gemv with 2-lane packets (packet_traits<double>::size == 2, the caller checks):
/// t = 0 + ((Σ_{even r < 2⌊m/2⌋} b[r]·e[r]) + (Σ_{odd r} b[r]·e[r])) [+ b[m−1]·e[m−1] for odd m],
/// each sum in r order from 0; t = t + corner(0, j); corner(0, j) = corner(0, j) − tau·t;
/// b(i, j) = b(i, j) − t·l[i]. Needs a vector path.
void householder_left(Path p, double* corner, size_t stride, size_t cs, const double* e,
                      const double* l, double tau);

/// res += alpha·S·rhs, S = the symmetric matrix whose lower triangle is a (column-major, column
/// stride lda, size × size; the strict upper part is not read), per element exactly as Eigen 3.4's
/// selfadjoint_matrix_vector_product<double, ColMajor, Lower> with 2-lane packets computes it
/// (packet_traits<double>::size == 2, the caller checks): column pairs j < bound = (size − 8) & ~1
/// with t0 = alpha·rhs[j], t1 = alpha·rhs[j+1]; rows i >= j + 2 take res[i] + (a0·t0 + a1·t1)
/// outside and a0·t0 + (a1·t1 + res[i]) inside the packet range, which starts at the first
/// 16-byte-aligned &res[i] (so the result depends on res's address, as Eigen's does); dot
/// products as two even/odd lane sums plus scalar head / tail terms; single columns after bound.
/// Needs a vector path.
void symv_lower_eigen(Path p, const double* a, size_t lda, size_t size, const double* rhs,
                      double* res, double alpha);

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

/// Per row r < rows of g (row-major [rows, k], k >= 1): out[r] = the first c with the largest
/// |g[r·k + c]| (a NaN entry never wins, and a NaN at c = 0 keeps 0), as a strict `>` scan from
/// c = 0 finds it.
void argmax_abs_rows(Path p, const float* g, size_t rows, size_t k, uint32_t* out);

/// acc[j] = acc[j] + w·double(x[j]) for j < d (the weighted-mean accumulation).
void accumulate_weighted(Path p, double* acc, const float* x, double w, size_t d);

/// dst[j] = sq·(double(row[j]) − double(mean[j])) for j < d (one centred, √w-scaled row).
void centre_scale(Path p, double* dst, const float* row, const float* mean, double sq, size_t d);

/// v[i] = v[i] / by for i < n.
void divide(Path p, double* v, size_t n, double by);

/// Per value j < n: s = buf[j]·scale (f32), idx[j] = kernels::quantize_fast(s, table, count),
/// and s_out[j] = s when s_out is not null. count <= 16 (Lloyd-Max tables of b <= 4).
void lloyd_max_scaled(Path p, const float* buf, size_t n, float scale, const float* table,
                      size_t count, uint16_t* idx, float* s_out);

}  // namespace kvwb::codec::simd
