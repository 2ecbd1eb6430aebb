// Kakeya-PCA f64 kernels (kakeya.h). Lanes are independent output elements (covariance rows i,
// rows of the eigenvector matrix); per element the scalar operations of the Eigen code in their
// order, no contraction (-ffp-contract=off), so every path gives the same bits. Compiled per
// function with target attributes like rows.cpp.
#include "codec/simd/kakeya.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "base/errors.h"
#include "codec/kernels/lloyd_max.h"
#include "codec/simd/x86_targets.h"

namespace kvwb::codec::simd {

namespace {

// Rows [r0, r1) of q with the scalar formula (the vector paths' tail).
void rotate_rows_scalar(double* q, size_t n, size_t r0, size_t r1, const ColumnRotation* rot,
                        size_t count) {
  for (size_t t = 0; t < count; ++t) {
    const double c = rot[t].c, s = rot[t].s;
    double* x = q + static_cast<size_t>(rot[t].k) * n;
    double* y = x + n;
    for (size_t i = r0; i < r1; ++i) {
      const double xi = x[i], yi = y[i];
      x[i] = c * xi + s * yi;
      y[i] = c * yi - s * xi;
    }
  }
}

// Rows [j0, size) of column c of the rank-2 update (the vector paths' tail).
inline void rank2_col_scalar(double* col, const double* u, const double* v, size_t j0, size_t j1,
                             double a1, double a2) {
  for (size_t j = j0; j < j1; ++j) col[j] = col[j] + (a1 * v[j] + a2 * u[j]);
}

inline void outer_col_scalar(double* col, size_t i0, size_t rows, const double* l, double t) {
  for (size_t i = i0; i < rows; ++i) col[i] = col[i] - t * l[i];
}

void centre_dots_scalar(const float* u, size_t r0, size_t rows, size_t d, const float* ct,
                        size_t k, size_t c0, float* g) {
  for (size_t r = r0; r < rows; ++r)
    for (size_t c = c0; c < k; ++c) {
      float acc = 0.0f;
      for (size_t j = 0; j < d; ++j) acc = acc + u[r * d + j] * ct[j * k + c];
      g[r * k + c] = acc;
    }
}

void lloyd_max_scalar(const float* buf, size_t j0, size_t n, float scale, const float* table,
                      size_t count, uint16_t* idx, float* s_out) {
  for (size_t j = j0; j < n; ++j) {
    const float s = buf[j] * scale;
    idx[j] = kernels::quantize_fast(s, table, count);
    if (s_out != nullptr) s_out[j] = s;
  }
}

uint32_t argmax_abs_scalar(const float* g, size_t k) {
  uint32_t a = 0;
  float best = std::fabs(g[0]);
  for (size_t c = 1; c < k; ++c) {
    const float x = std::fabs(g[c]);
    if (x > best) {
      best = x;
      a = static_cast<uint32_t>(c);
    }
  }
  return a;
}

#if KVWB_SIMD_X86

// ---- AVX-512 ----

// Per row: the largest |g| over the row, then the first c equal to it (no NaN in the row; a row
// with a NaN takes the scalar scan, whose rule a NaN would otherwise break).
KVWB_AVX512 void argmax_abs_512(const float* g, size_t rows, size_t k, uint32_t* out) {
  const __m512 sign = _mm512_set1_ps(-0.0f);
  const size_t full = k / 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (k % 16)) - 1u);
  for (size_t r = 0; r < rows; ++r) {
    const float* row = g + r * k;
    __m512 mx = _mm512_setzero_ps();
    __mmask16 nan = 0;
    for (size_t q = 0; q < full; ++q) {
      const __m512 a = _mm512_andnot_ps(sign, _mm512_loadu_ps(row + 16 * q));
      nan |= _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
      mx = _mm512_max_ps(mx, a);
    }
    if (tail != 0) {
      const __m512 a = _mm512_andnot_ps(sign, _mm512_maskz_loadu_ps(tail, row + 16 * full));
      nan |= _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q);
      mx = _mm512_max_ps(mx, a);
    }
    if (nan != 0) {
      out[r] = argmax_abs_scalar(row, k);
      continue;
    }
    const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    uint32_t idx = 0;
    for (size_t q = 0;; ++q) {
      const __mmask16 lanes = q < full ? static_cast<__mmask16>(0xFFFF) : tail;
      const __mmask16 eq = _mm512_mask_cmp_ps_mask(
          lanes, _mm512_andnot_ps(sign, _mm512_maskz_loadu_ps(lanes, row + 16 * q)), m,
          _CMP_EQ_OQ);
      if (eq != 0) {
        idx = static_cast<uint32_t>(16 * q) + static_cast<uint32_t>(__builtin_ctz(eq));
        break;
      }
    }
    out[r] = idx;
  }
}

// |s − table[m]| per lane (the table in one register).
KVWB_AVX512 inline __m512 lm_dist(__m512 s, __m512i m, __m512 tv, __m512 sign) {
  return _mm512_andnot_ps(sign, _mm512_sub_ps(s, _mm512_permutexvar_ps(m, tv)));
}

// 16 values: quantize_fast lane by lane (count centroids below s, nearer of the two neighbours,
// ties walked to the lower index; the table sits in one register, count <= 16).
KVWB_AVX512 void lloyd_max_512(const float* buf, size_t n, float scale, const float* table,
                               size_t count, uint16_t* idx, float* s_out) {
  alignas(64) float padded[16] = {};
  for (size_t m = 0; m < count; ++m) padded[m] = table[m];
  const __m512 tv = _mm512_load_ps(padded);
  const __m512 sc = _mm512_set1_ps(scale);
  const __m512i one = _mm512_set1_epi32(1), zero = _mm512_setzero_si512();
  const __m512i cnt = _mm512_set1_epi32(static_cast<int>(count));
  const __m512i last = _mm512_set1_epi32(static_cast<int>(count) - 1);
  const __m512 sign = _mm512_set1_ps(-0.0f);
  size_t j = 0;
  for (; j + 16 <= n; j += 16) {
    const __m512 s = _mm512_mul_ps(_mm512_loadu_ps(buf + j), sc);
    if (s_out != nullptr) _mm512_storeu_ps(s_out + j, s);
    __m512i below = zero;
    for (size_t m = 0; m < count; ++m) {
      const __mmask16 lt = _mm512_cmp_ps_mask(_mm512_set1_ps(table[m]), s, _CMP_LT_OQ);
      below = _mm512_mask_add_epi32(below, lt, below, one);
    }
    const __mmask16 at_end = _mm512_cmpeq_epi32_mask(below, cnt);
    const __mmask16 at_start = _mm512_cmpeq_epi32_mask(below, zero);
    const __m512i lo = _mm512_max_epi32(_mm512_sub_epi32(below, one), zero);
    const __m512i hi = _mm512_min_epi32(below, last);
    const __mmask16 lo_nearer = _mm512_cmp_ps_mask(lm_dist(s, lo, tv, sign), lm_dist(s, hi, tv, sign), _CMP_LE_OQ);
    // best: 0 | count − 1 (walk) | j − 1 (walk) | j.
    __m512i best = _mm512_mask_blend_epi32(lo_nearer, below, lo);
    best = _mm512_mask_blend_epi32(at_end, best, last);
    best = _mm512_mask_blend_epi32(at_start, best, zero);
    __mmask16 walk = static_cast<__mmask16>((lo_nearer | at_end) & ~at_start);
    while (walk != 0) {
      walk = static_cast<__mmask16>(walk & _mm512_cmpgt_epi32_mask(best, zero));
      if (walk == 0) break;
      const __m512i prev = _mm512_max_epi32(_mm512_sub_epi32(best, one), zero);
      walk = static_cast<__mmask16>(walk & _mm512_cmp_ps_mask(lm_dist(s, prev, tv, sign), lm_dist(s, best, tv, sign), _CMP_EQ_OQ));
      best = _mm512_mask_blend_epi32(walk, best, prev);
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + j), _mm512_cvtepi32_epi16(best));
  }
  lloyd_max_scalar(buf, j, n, scale, table, count, idx, s_out);
}

// Rows [r0, r0 + 4) × 16 centres from c0.
KVWB_AVX512 inline void centre_dots_4x16(const float* u, size_t r0, size_t d, const float* ct,
                                         size_t k, size_t c0, float* g) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  const float* u0 = u + r0 * d;
  for (size_t j = 0; j < d; ++j) {
    const __m512 c = _mm512_loadu_ps(ct + j * k + c0);
    a0 = _mm512_add_ps(a0, _mm512_mul_ps(_mm512_set1_ps(u0[j]), c));
    a1 = _mm512_add_ps(a1, _mm512_mul_ps(_mm512_set1_ps(u0[d + j]), c));
    a2 = _mm512_add_ps(a2, _mm512_mul_ps(_mm512_set1_ps(u0[2 * d + j]), c));
    a3 = _mm512_add_ps(a3, _mm512_mul_ps(_mm512_set1_ps(u0[3 * d + j]), c));
  }
  _mm512_storeu_ps(g + r0 * k + c0, a0);
  _mm512_storeu_ps(g + (r0 + 1) * k + c0, a1);
  _mm512_storeu_ps(g + (r0 + 2) * k + c0, a2);
  _mm512_storeu_ps(g + (r0 + 3) * k + c0, a3);
}

KVWB_AVX512 inline void centre_dots_1x16(const float* u, size_t r, size_t d, const float* ct,
                                         size_t k, size_t c0, float* g) {
  __m512 a = _mm512_setzero_ps();
  for (size_t j = 0; j < d; ++j)
    a = _mm512_add_ps(a, _mm512_mul_ps(_mm512_set1_ps(u[r * d + j]), _mm512_loadu_ps(ct + j * k + c0)));
  _mm512_storeu_ps(g + r * k + c0, a);
}

KVWB_AVX512 inline void centre_dots_1x8_512(const float* u, size_t r, size_t d, const float* ct,
                                            size_t k, size_t c0, float* g) {
  __m256 a = _mm256_setzero_ps();
  for (size_t j = 0; j < d; ++j)
    a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_set1_ps(u[r * d + j]), _mm256_loadu_ps(ct + j * k + c0)));
  _mm256_storeu_ps(g + r * k + c0, a);
}

KVWB_AVX512 void centre_dots_512(const float* u, size_t rows, size_t d, const float* ct, size_t k,
                                 float* g) {
  size_t c0 = 0;
  for (; c0 + 16 <= k; c0 += 16) {
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) centre_dots_4x16(u, r, d, ct, k, c0, g);
    for (; r < rows; ++r) centre_dots_1x16(u, r, d, ct, k, c0, g);
  }
  for (; c0 + 8 <= k; c0 += 8)
    for (size_t r = 0; r < rows; ++r) centre_dots_1x8_512(u, r, d, ct, k, c0, g);
  centre_dots_scalar(u, 0, rows, d, ct, k, c0, g);
}

KVWB_AVX512 void rank2_512(double* m, size_t stride, const double* u, const double* v,
                           size_t size, double alpha) {
  for (size_t c = 0; c < size; ++c) {
    const double a1 = alpha * u[c], a2 = alpha * v[c];
    const __m512d va1 = _mm512_set1_pd(a1), va2 = _mm512_set1_pd(a2);
    double* col = m + c * stride;
    size_t j = c;
    for (; j + 8 <= size; j += 8) {
      const __m512d add = _mm512_add_pd(_mm512_mul_pd(va1, _mm512_loadu_pd(v + j)),
                                        _mm512_mul_pd(va2, _mm512_loadu_pd(u + j)));
      _mm512_storeu_pd(col + j, _mm512_add_pd(_mm512_loadu_pd(col + j), add));
    }
    rank2_col_scalar(col, u, v, j, size, a1, a2);
  }
}

KVWB_AVX512 void outer_512(double* b, size_t stride, size_t rows, size_t cols, const double* l,
                           const double* tmp) {
  for (size_t j = 0; j < cols; ++j) {
    const __m512d t = _mm512_set1_pd(tmp[j]);
    double* col = b + j * stride;
    size_t i = 0;
    for (; i + 8 <= rows; i += 8)
      _mm512_storeu_pd(col + i, _mm512_sub_pd(_mm512_loadu_pd(col + i),
                                              _mm512_mul_pd(t, _mm512_loadu_pd(l + i))));
    outer_col_scalar(col, i, rows, l, tmp[j]);
  }
}

// The packet part of P column pairs of Eigen's symv, fused: for rows i in [r0, r1) (r1 − r0 even)
// and q = 0 … P−1 in order, x[i] = c[2q][i]·t0[q] + (c[2q+1][i]·t1[q] + x[i]). Rows are
// independent; x is stored once per row.
template <int P>
KVWB_AVX512 void symv_axpy_512(double* x, const double* const* c, const double* t0,
                               const double* t1, size_t r0, size_t r1) {
  __m512d v0[P], v1[P];
  for (int q = 0; q < P; ++q) {
    v0[q] = _mm512_set1_pd(t0[q]);
    v1[q] = _mm512_set1_pd(t1[q]);
  }
  size_t i = r0;
  for (; i + 8 <= r1; i += 8) {
    __m512d xv = _mm512_loadu_pd(x + i);
    for (int q = 0; q < P; ++q)
      xv =
          _mm512_add_pd(_mm512_mul_pd(_mm512_loadu_pd(c[2 * q] + i), v0[q]),
                        _mm512_add_pd(_mm512_mul_pd(_mm512_loadu_pd(c[2 * q + 1] + i), v1[q]), xv));
    _mm512_storeu_pd(x + i, xv);
  }
  for (; i < r1; i += 2) {  // plain narrow stores: a masked store would block store forwarding
    __m128d xv = _mm_loadu_pd(x + i);
    for (int q = 0; q < P; ++q)
      xv = _mm_add_pd(
          _mm_mul_pd(_mm_loadu_pd(c[2 * q] + i), _mm512_castpd512_pd128(v0[q])),
          _mm_add_pd(_mm_mul_pd(_mm_loadu_pd(c[2 * q + 1] + i), _mm512_castpd512_pd128(v1[q])),
                     xv));
    _mm_storeu_pd(x + i, xv);
  }
}

// Tile rows [i0, i0 + 8W) × columns [j0, j0 + 4) of the lower triangle, depth rows [k0, k1).
template <int W>
KVWB_AVX512 void cov_tile_512(const double* a, size_t d, size_t k0, size_t k1, size_t i0,
                              size_t j0, double* cov) {
  __m512d acc[W][4];
  for (int w = 0; w < W; ++w)
    for (int c = 0; c < 4; ++c) acc[w][c] = _mm512_setzero_pd();
  for (size_t k = k0; k < k1; ++k) {
    const double* row = a + k * d;
    __m512d v[W];
    for (int w = 0; w < W; ++w) v[w] = _mm512_loadu_pd(row + i0 + 8 * w);
    for (int c = 0; c < 4; ++c) {
      const __m512d b = _mm512_set1_pd(row[j0 + c]);
      for (int w = 0; w < W; ++w) acc[w][c] = _mm512_add_pd(acc[w][c], _mm512_mul_pd(v[w], b));
    }
  }
  for (int c = 0; c < 4; ++c)
    for (int w = 0; w < W; ++w) {
      double* r = cov + (j0 + c) * d + i0 + 8 * w;
      _mm512_storeu_pd(r, _mm512_add_pd(_mm512_loadu_pd(r), acc[w][c]));
    }
}

// Same for 4 rows (one ymm per column).
KVWB_AVX512 void cov_tile4_512(const double* a, size_t d, size_t k0, size_t k1, size_t i0,
                               size_t j0, double* cov) {
  __m256d acc[4];
  for (int c = 0; c < 4; ++c) acc[c] = _mm256_setzero_pd();
  for (size_t k = k0; k < k1; ++k) {
    const double* row = a + k * d;
    const __m256d v = _mm256_loadu_pd(row + i0);
    for (int c = 0; c < 4; ++c)
      acc[c] = _mm256_add_pd(acc[c], _mm256_mul_pd(v, _mm256_set1_pd(row[j0 + c])));
  }
  for (int c = 0; c < 4; ++c) {
    double* r = cov + (j0 + c) * d + i0;
    _mm256_storeu_pd(r, _mm256_add_pd(_mm256_loadu_pd(r), acc[c]));
  }
}

KVWB_AVX512 void cov_block_512(const double* a, size_t d, size_t k0, size_t k1, double* cov) {
  for (size_t j0 = 0; j0 < d; j0 += 4) {
    size_t i = j0;
    for (; i + 32 <= d; i += 32) cov_tile_512<4>(a, d, k0, k1, i, j0, cov);
    for (; i + 16 <= d; i += 16) cov_tile_512<2>(a, d, k0, k1, i, j0, cov);
    for (; i + 8 <= d; i += 8) cov_tile_512<1>(a, d, k0, k1, i, j0, cov);
    for (; i + 4 <= d; i += 4) cov_tile4_512(a, d, k0, k1, i, j0, cov);
  }
}

// Rows [r0, r0 + 8W). A run of rotations on consecutive columns (k, k+1), (k+1, k+2), … (one QR
// sweep) keeps the shared column in registers instead of storing and reloading it.
template <int W>
KVWB_AVX512 void rotate_rows_512(double* q, size_t n, size_t r0, const ColumnRotation* rot,
                                 size_t count) {
  size_t t = 0;
  while (t < count) {
    size_t k = rot[t].k;
    double* x = q + k * n + r0;
    __m512d xv[W], yv[W];
    for (int w = 0; w < W; ++w) xv[w] = _mm512_loadu_pd(x + 8 * w);
    for (;;) {
      const __m512d c = _mm512_set1_pd(rot[t].c), s = _mm512_set1_pd(rot[t].s);
      double* y = q + (k + 1) * n + r0;
      for (int w = 0; w < W; ++w) yv[w] = _mm512_loadu_pd(y + 8 * w);
      for (int w = 0; w < W; ++w) {
        const __m512d xn = _mm512_add_pd(_mm512_mul_pd(c, xv[w]), _mm512_mul_pd(s, yv[w]));
        yv[w] = _mm512_sub_pd(_mm512_mul_pd(c, yv[w]), _mm512_mul_pd(s, xv[w]));
        _mm512_storeu_pd(q + k * n + r0 + 8 * w, xn);
      }
      ++t;
      if (t == count || rot[t].k != k + 1) break;
      ++k;
      for (int w = 0; w < W; ++w) xv[w] = yv[w];
    }
    for (int w = 0; w < W; ++w) _mm512_storeu_pd(q + (k + 1) * n + r0 + 8 * w, yv[w]);
  }
}

KVWB_AVX512 void accumulate_weighted_512(double* acc, const float* x, double w, size_t d) {
  const __m512d wv = _mm512_set1_pd(w);
  size_t j = 0;
  for (; j + 8 <= d; j += 8)
    _mm512_storeu_pd(acc + j, _mm512_add_pd(_mm512_loadu_pd(acc + j),
                                            _mm512_mul_pd(wv, _mm512_cvtps_pd(_mm256_loadu_ps(x + j)))));
  for (; j < d; ++j) acc[j] = acc[j] + w * static_cast<double>(x[j]);
}

KVWB_AVX512 void centre_scale_512(double* dst, const float* row, const float* mean, double sq,
                                  size_t d) {
  const __m512d sv = _mm512_set1_pd(sq);
  size_t j = 0;
  for (; j + 8 <= d; j += 8)
    _mm512_storeu_pd(dst + j, _mm512_mul_pd(sv, _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(row + j)),
                                                              _mm512_cvtps_pd(_mm256_loadu_ps(mean + j)))));
  for (; j < d; ++j)
    dst[j] = sq * (static_cast<double>(row[j]) - static_cast<double>(mean[j]));
}

KVWB_AVX512 void divide_512(double* v, size_t n, double by) {
  const __m512d b = _mm512_set1_pd(by);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm512_storeu_pd(v + i, _mm512_div_pd(_mm512_loadu_pd(v + i), b));
  for (; i < n; ++i) v[i] = v[i] / by;
}

KVWB_AVX512 void rotate_512(double* q, size_t n, const ColumnRotation* rot, size_t count) {
  size_t r = 0;
  for (; r + 64 <= n; r += 64) rotate_rows_512<8>(q, n, r, rot, count);
  for (; r + 32 <= n; r += 32) rotate_rows_512<4>(q, n, r, rot, count);
  for (; r + 16 <= n; r += 16) rotate_rows_512<2>(q, n, r, rot, count);
  for (; r + 8 <= n; r += 8) rotate_rows_512<1>(q, n, r, rot, count);
  rotate_rows_scalar(q, n, r, n, rot, count);
}

// ---- AVX2 ----

KVWB_AVX2 void outer_256(double* b, size_t stride, size_t rows, size_t cols, const double* l,
                         const double* tmp);

// symv_axpy_512 with ymm lanes.
template <int P>
KVWB_AVX2 void symv_axpy_256(double* x, const double* const* c, const double* t0, const double* t1,
                             size_t r0, size_t r1) {
  size_t i = r0;
  for (; i + 4 <= r1; i += 4) {
    __m256d xv = _mm256_loadu_pd(x + i);
    for (int q = 0; q < P; ++q)
      xv = _mm256_add_pd(
          _mm256_mul_pd(_mm256_loadu_pd(c[2 * q] + i), _mm256_set1_pd(t0[q])),
          _mm256_add_pd(_mm256_mul_pd(_mm256_loadu_pd(c[2 * q + 1] + i), _mm256_set1_pd(t1[q])),
                        xv));
    _mm256_storeu_pd(x + i, xv);
  }
  for (; i < r1; i += 2) {
    __m128d xv = _mm_loadu_pd(x + i);
    for (int q = 0; q < P; ++q)
      xv = _mm_add_pd(
          _mm_mul_pd(_mm_loadu_pd(c[2 * q] + i), _mm_set1_pd(t0[q])),
          _mm_add_pd(_mm_mul_pd(_mm_loadu_pd(c[2 * q + 1] + i), _mm_set1_pd(t1[q])), xv));
    _mm_storeu_pd(x + i, xv);
  }
}

// symv_lower_eigen (kakeya.h): Eigen 3.4's selfadjoint_matrix_vector_product<double, ColMajor,
// Lower> with 2-lane packets. Column pairs go in groups of P <= 4: first their dot products
// (Eigen's two packet lanes per column and its scalar head / tail terms; one ymm per pair holds
// [p2 even, p2 odd, p3 even, p3 odd], the pairs' chains interleaved), then per pair in Eigen's
// order the diagonal terms, the axpy of rows >= j + 2 and the dot results. The dot products read
// only a and rhs, so computing them first changes no operation. `off`: Eigen's
// first_default_aligned(&res[j + 2], ·) for Packet2d (1 when that address is not 16-byte
// aligned), the same for every pair since j + 2 is even; the packet range ends at the same row
// for every pair too.
template <int P, bool kWide>
KVWB_AVX2 void symv_group_256(const double* a, size_t lda, size_t size, const double* rhs,
                              double* res, double alpha, size_t g, size_t off) {
  double d2[P], d3[P];
  {
    __m256d acc[P];
    double s2[P], s3[P];
#pragma GCC unroll 4
    for (int q = 0; q < P; ++q) {
      const size_t j = g + 2 * static_cast<size_t>(q);
      const double* a0 = a + j * lda;
      acc[q] = _mm256_setzero_pd();
      s2[q] = 0.0 + a0[j + 1] * rhs[j + 1];
      s3[q] = 0.0;
      if (off) {
        s2[q] = s2[q] + a0[j + 2] * rhs[j + 2];
        s3[q] = s3[q] + a0[lda + j + 2] * rhs[j + 2];
      }
    }
    const size_t as0 = g + 2 + off;
    const size_t ae = as0 + ((size - as0) / 2) * 2;  // > as0 + 2P: pairs end before size - 8
    const double* c0 = a + g * lda;
    // Rows where only the first pairs have started (pair q starts at as0 + 2q).
#pragma GCC unroll 4
    for (int r = 0; r + 1 < P; ++r) {
      const size_t i = as0 + 2 * static_cast<size_t>(r);
      const __m256d b = _mm256_broadcast_pd(reinterpret_cast<const __m128d*>(rhs + i));
#pragma GCC unroll 4
      for (int q = 0; q <= r; ++q) {
        const double* a0 = c0 + 2 * static_cast<size_t>(q) * lda;
        acc[q] = _mm256_add_pd(_mm256_mul_pd(_mm256_loadu2_m128d(a0 + lda + i, a0 + i), b), acc[q]);
      }
    }
    for (size_t i = as0 + 2 * (P - 1); i < ae; i += 2) {
      const __m256d b = _mm256_broadcast_pd(reinterpret_cast<const __m128d*>(rhs + i));
#pragma GCC unroll 4
      for (int q = 0; q < P; ++q) {
        const double* a0 = c0 + 2 * static_cast<size_t>(q) * lda;
        acc[q] = _mm256_add_pd(_mm256_mul_pd(_mm256_loadu2_m128d(a0 + lda + i, a0 + i), b), acc[q]);
      }
    }
#pragma GCC unroll 4
    for (int q = 0; q < P; ++q) {
      const double* a0 = c0 + 2 * static_cast<size_t>(q) * lda;
      if (ae < size) {
        s2[q] = s2[q] + a0[ae] * rhs[ae];
        s3[q] = s3[q] + a0[lda + ae] * rhs[ae];
      }
      alignas(32) double l[4];
      _mm256_store_pd(l, acc[q]);
      d2[q] = s2[q] + (l[0] + l[1]);
      d3[q] = s3[q] + (l[2] + l[3]);
    }
  }
  // Then the updates of res, per element in Eigen's order. Rows from r_common on are in every
  // pair's packet range: all P axpys fused in one pass. The rows before (each pair's diagonal,
  // head and first packet rows) go pair by pair as Eigen orders them.
  double t0[P], t1[P];
  const double* col[2 * P];
  for (int q = 0; q < P; ++q) {
    const size_t j = g + 2 * static_cast<size_t>(q);
    t0[q] = alpha * rhs[j];
    t1[q] = alpha * rhs[j + 1];
    col[2 * q] = a + j * lda;
    col[2 * q + 1] = col[2 * q] + lda;
  }
  const size_t r_common = g + 2 * P + off;
  const size_t ae = r_common + ((size - r_common) / 2) * 2;
  for (int q = 0; q < P; ++q) {
    const size_t j = g + 2 * static_cast<size_t>(q);
    const double* a0 = col[2 * q];
    const double* a1 = col[2 * q + 1];
    res[j] += a0[j] * t0[q];
    res[j + 1] += a1[j + 1] * t1[q];
    res[j + 1] += a0[j + 1] * t0[q];
    size_t i = j + 2;
    if (off) {
      res[i] += a0[i] * t0[q] + a1[i] * t1[q];
      ++i;
    }
    for (; i < r_common; ++i) res[i] = a0[i] * t0[q] + (a1[i] * t1[q] + res[i]);
  }
  if (kWide)
    symv_axpy_512<P>(res, col, t0, t1, r_common, ae);
  else
    symv_axpy_256<P>(res, col, t0, t1, r_common, ae);
  if (ae < size)
    for (int q = 0; q < P; ++q) res[ae] += col[2 * q][ae] * t0[q] + col[2 * q + 1][ae] * t1[q];
  for (int q = 0; q < P; ++q) {
    const size_t j = g + 2 * static_cast<size_t>(q);
    res[j] += alpha * d2[q];
    res[j + 1] += alpha * d3[q];
  }
}

template <bool kWide>
KVWB_AVX2 void symv_256(const double* a, size_t lda, size_t size, const double* rhs, double* res,
                        double alpha) {
  const size_t bound = (size > 8 ? size - 8 : 0) & ~size_t{1};
  const size_t off = (reinterpret_cast<uintptr_t>(res) / sizeof(double)) & 1u;
  size_t g = 0;
  for (; g + 8 <= bound; g += 8) symv_group_256<4, kWide>(a, lda, size, rhs, res, alpha, g, off);
  switch ((bound - g) / 2) {
    case 3:
      symv_group_256<3, kWide>(a, lda, size, rhs, res, alpha, g, off);
      break;
    case 2:
      symv_group_256<2, kWide>(a, lda, size, rhs, res, alpha, g, off);
      break;
    case 1:
      symv_group_256<1, kWide>(a, lda, size, rhs, res, alpha, g, off);
      break;
    default:
      break;
  }
  for (size_t j = bound; j < size; ++j) {
    const double* a0 = a + j * lda;
    const double t1 = alpha * rhs[j];
    double t2 = 0.0;
    res[j] += a0[j] * t1;
    for (size_t i = j + 1; i < size; ++i) {
      res[i] += a0[i] * t1;
      t2 += a0[i] * rhs[i];
    }
    res[j] += alpha * t2;
  }
}

// One column of householder_left from its two packet lanes `even`, `odd` (r < r_end done).
inline double hh_column_t(double* col, size_t m, size_t r_end, const double* e, double even,
                          double odd, double tau) {
  double cc = even + odd;
  if (r_end < m) cc = cc + col[1 + r_end] * e[r_end];
  double t = 0.0 + cc;
  t = t + col[0];
  col[0] = col[0] - tau * t;
  return t;
}

// householder_left: 8 columns at a time (4 ymm, each two columns × two packet lanes), then the
// rank-1 update of those columns while they are in L1.
template <bool kWide>
KVWB_AVX2 void hh_left_256(double* corner, size_t stride, size_t cs, const double* e,
                           const double* l, double tau) {
  const size_t m = cs - 1;
  const size_t r_end = m & ~size_t{1};
  size_t j = 0;
  alignas(32) double lanes[16];
  double t[8];
  for (; j + 8 <= cs; j += 8) {
    double* c0 = corner + j * stride;
    __m256d acc[4];
    for (int q = 0; q < 4; ++q) acc[q] = _mm256_setzero_pd();
    for (size_t r = 0; r < r_end; r += 2) {
      const __m256d ev = _mm256_broadcast_pd(reinterpret_cast<const __m128d*>(e + r));
      for (int q = 0; q < 4; ++q) {
        const double* a = c0 + (2 * q) * stride + 1 + r;
        acc[q] = _mm256_add_pd(acc[q], _mm256_mul_pd(_mm256_loadu2_m128d(a + stride, a), ev));
      }
    }
    for (int q = 0; q < 4; ++q) _mm256_store_pd(lanes + 4 * q, acc[q]);
    for (size_t c = 0; c < 8; ++c)
      t[c] = hh_column_t(c0 + c * stride, m, r_end, e, lanes[2 * c], lanes[2 * c + 1], tau);
    if (kWide)
      outer_512(c0 + 1, stride, m, 8, l, t);
    else
      outer_256(c0 + 1, stride, m, 8, l, t);
  }
  for (; j < cs; ++j) {
    double* col = corner + j * stride;
    double even = 0.0, odd = 0.0;
    for (size_t r = 0; r < r_end; r += 2) {
      even = even + col[1 + r] * e[r];
      odd = odd + col[2 + r] * e[r + 1];
    }
    t[0] = hh_column_t(col, m, r_end, e, even, odd, tau);
    if (kWide)
      outer_512(col + 1, stride, m, 1, l, t);
    else
      outer_256(col + 1, stride, m, 1, l, t);
  }
}

KVWB_AVX2 void argmax_abs_256(const float* g, size_t rows, size_t k, uint32_t* out) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const size_t full = k / 8;
  for (size_t r = 0; r < rows; ++r) {
    const float* row = g + r * k;
    __m256 mx = _mm256_setzero_ps();
    int nan = 0;
    for (size_t q = 0; q < full; ++q) {
      const __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(row + 8 * q));
      nan |= _mm256_movemask_ps(_mm256_cmp_ps(a, a, _CMP_UNORD_Q));
      mx = _mm256_max_ps(mx, a);
    }
    float m = 0.0f;
    if (full > 0) {
      __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
      h = _mm_max_ps(h, _mm_movehl_ps(h, h));
      h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
      m = _mm_cvtss_f32(h);
    }
    for (size_t c = 8 * full; c < k; ++c) {
      const float a = std::fabs(row[c]);
      if (a != a) nan = 1;
      m = a > m ? a : m;
    }
    if (nan != 0) {
      out[r] = argmax_abs_scalar(row, k);
      continue;
    }
    const __m256 mv = _mm256_set1_ps(m);
    size_t c = 0;
    for (; c + 8 <= k; c += 8) {
      const int eq = _mm256_movemask_ps(
          _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(row + c)), mv, _CMP_EQ_OQ));
      if (eq != 0) {
        c += static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(eq)));
        break;
      }
    }
    if (c >= 8 * full)
      for (; c < k && std::fabs(row[c]) != m; ++c) {
      }
    out[r] = static_cast<uint32_t>(c);
  }
}

KVWB_AVX2 void centre_dots_256(const float* u, size_t rows, size_t d, const float* ct, size_t k,
                               float* g) {
  size_t c0 = 0;
  for (; c0 + 8 <= k; c0 += 8) {
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
      __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
      const float* u0 = u + r * d;
      for (size_t j = 0; j < d; ++j) {
        const __m256 c = _mm256_loadu_ps(ct + j * k + c0);
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_set1_ps(u0[j]), c));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(_mm256_set1_ps(u0[d + j]), c));
        a2 = _mm256_add_ps(a2, _mm256_mul_ps(_mm256_set1_ps(u0[2 * d + j]), c));
        a3 = _mm256_add_ps(a3, _mm256_mul_ps(_mm256_set1_ps(u0[3 * d + j]), c));
      }
      _mm256_storeu_ps(g + r * k + c0, a0);
      _mm256_storeu_ps(g + (r + 1) * k + c0, a1);
      _mm256_storeu_ps(g + (r + 2) * k + c0, a2);
      _mm256_storeu_ps(g + (r + 3) * k + c0, a3);
    }
    for (; r < rows; ++r) {
      __m256 a = _mm256_setzero_ps();
      for (size_t j = 0; j < d; ++j)
        a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_set1_ps(u[r * d + j]), _mm256_loadu_ps(ct + j * k + c0)));
      _mm256_storeu_ps(g + r * k + c0, a);
    }
  }
  centre_dots_scalar(u, 0, rows, d, ct, k, c0, g);
}

KVWB_AVX2 void rank2_256(double* m, size_t stride, const double* u, const double* v, size_t size,
                         double alpha) {
  for (size_t c = 0; c < size; ++c) {
    const double a1 = alpha * u[c], a2 = alpha * v[c];
    const __m256d va1 = _mm256_set1_pd(a1), va2 = _mm256_set1_pd(a2);
    double* col = m + c * stride;
    size_t j = c;
    for (; j + 4 <= size; j += 4) {
      const __m256d add = _mm256_add_pd(_mm256_mul_pd(va1, _mm256_loadu_pd(v + j)),
                                        _mm256_mul_pd(va2, _mm256_loadu_pd(u + j)));
      _mm256_storeu_pd(col + j, _mm256_add_pd(_mm256_loadu_pd(col + j), add));
    }
    rank2_col_scalar(col, u, v, j, size, a1, a2);
  }
}

KVWB_AVX2 void outer_256(double* b, size_t stride, size_t rows, size_t cols, const double* l,
                         const double* tmp) {
  for (size_t j = 0; j < cols; ++j) {
    const __m256d t = _mm256_set1_pd(tmp[j]);
    double* col = b + j * stride;
    size_t i = 0;
    for (; i + 4 <= rows; i += 4)
      _mm256_storeu_pd(col + i, _mm256_sub_pd(_mm256_loadu_pd(col + i),
                                              _mm256_mul_pd(t, _mm256_loadu_pd(l + i))));
    outer_col_scalar(col, i, rows, l, tmp[j]);
  }
}

template <int W>
KVWB_AVX2 void cov_tile_256(const double* a, size_t d, size_t k0, size_t k1, size_t i0,
                            size_t j0, double* cov) {
  __m256d acc[W][4];
  for (int w = 0; w < W; ++w)
    for (int c = 0; c < 4; ++c) acc[w][c] = _mm256_setzero_pd();
  for (size_t k = k0; k < k1; ++k) {
    const double* row = a + k * d;
    __m256d v[W];
    for (int w = 0; w < W; ++w) v[w] = _mm256_loadu_pd(row + i0 + 4 * w);
    for (int c = 0; c < 4; ++c) {
      const __m256d b = _mm256_set1_pd(row[j0 + c]);
      for (int w = 0; w < W; ++w) acc[w][c] = _mm256_add_pd(acc[w][c], _mm256_mul_pd(v[w], b));
    }
  }
  for (int c = 0; c < 4; ++c)
    for (int w = 0; w < W; ++w) {
      double* r = cov + (j0 + c) * d + i0 + 4 * w;
      _mm256_storeu_pd(r, _mm256_add_pd(_mm256_loadu_pd(r), acc[w][c]));
    }
}

KVWB_AVX2 void cov_block_256(const double* a, size_t d, size_t k0, size_t k1, double* cov) {
  for (size_t j0 = 0; j0 < d; j0 += 4) {
    size_t i = j0;
    for (; i + 8 <= d; i += 8) cov_tile_256<2>(a, d, k0, k1, i, j0, cov);
    for (; i + 4 <= d; i += 4) cov_tile_256<1>(a, d, k0, k1, i, j0, cov);
  }
}

template <int W>
KVWB_AVX2 void rotate_rows_256(double* q, size_t n, size_t r0, const ColumnRotation* rot,
                               size_t count) {
  size_t t = 0;
  while (t < count) {
    size_t k = rot[t].k;
    __m256d xv[W], yv[W];
    for (int w = 0; w < W; ++w) xv[w] = _mm256_loadu_pd(q + k * n + r0 + 4 * w);
    for (;;) {
      const __m256d c = _mm256_set1_pd(rot[t].c), s = _mm256_set1_pd(rot[t].s);
      double* y = q + (k + 1) * n + r0;
      for (int w = 0; w < W; ++w) yv[w] = _mm256_loadu_pd(y + 4 * w);
      for (int w = 0; w < W; ++w) {
        const __m256d xn = _mm256_add_pd(_mm256_mul_pd(c, xv[w]), _mm256_mul_pd(s, yv[w]));
        yv[w] = _mm256_sub_pd(_mm256_mul_pd(c, yv[w]), _mm256_mul_pd(s, xv[w]));
        _mm256_storeu_pd(q + k * n + r0 + 4 * w, xn);
      }
      ++t;
      if (t == count || rot[t].k != k + 1) break;
      ++k;
      for (int w = 0; w < W; ++w) xv[w] = yv[w];
    }
    for (int w = 0; w < W; ++w) _mm256_storeu_pd(q + (k + 1) * n + r0 + 4 * w, yv[w]);
  }
}

KVWB_AVX2 void accumulate_weighted_256(double* acc, const float* x, double w, size_t d) {
  const __m256d wv = _mm256_set1_pd(w);
  size_t j = 0;
  for (; j + 4 <= d; j += 4)
    _mm256_storeu_pd(acc + j, _mm256_add_pd(_mm256_loadu_pd(acc + j),
                                            _mm256_mul_pd(wv, _mm256_cvtps_pd(_mm_loadu_ps(x + j)))));
  for (; j < d; ++j) acc[j] = acc[j] + w * static_cast<double>(x[j]);
}

KVWB_AVX2 void centre_scale_256(double* dst, const float* row, const float* mean, double sq,
                                size_t d) {
  const __m256d sv = _mm256_set1_pd(sq);
  size_t j = 0;
  for (; j + 4 <= d; j += 4)
    _mm256_storeu_pd(dst + j, _mm256_mul_pd(sv, _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(row + j)),
                                                              _mm256_cvtps_pd(_mm_loadu_ps(mean + j)))));
  for (; j < d; ++j)
    dst[j] = sq * (static_cast<double>(row[j]) - static_cast<double>(mean[j]));
}

KVWB_AVX2 void divide_256(double* v, size_t n, double by) {
  const __m256d b = _mm256_set1_pd(by);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) _mm256_storeu_pd(v + i, _mm256_div_pd(_mm256_loadu_pd(v + i), b));
  for (; i < n; ++i) v[i] = v[i] / by;
}

KVWB_AVX2 void rotate_256(double* q, size_t n, const ColumnRotation* rot, size_t count) {
  size_t r = 0;
  for (; r + 24 <= n; r += 24) rotate_rows_256<6>(q, n, r, rot, count);
  for (; r + 16 <= n; r += 16) rotate_rows_256<4>(q, n, r, rot, count);
  for (; r + 8 <= n; r += 8) rotate_rows_256<2>(q, n, r, rot, count);
  for (; r + 4 <= n; r += 4) rotate_rows_256<1>(q, n, r, rot, count);
  rotate_rows_scalar(q, n, r, n, rot, count);
}

#endif  // KVWB_SIMD_X86

}  // namespace

void cov_lower_rank_update(Path p, const double* a, size_t n, size_t d, size_t kc, double* cov) {
  if (p == Path::kScalar || d % 4 != 0 || kc == 0)
    throw InvalidArgument("cov_lower_rank_update: needs a vector path, D % 4 == 0 and kc > 0");
#if KVWB_SIMD_X86
  // The diagonal tiles also sum the strict upper entries of their 4 × 4 corner; the rank update
  // leaves the upper triangle as it is, so those entries are put back afterwards.
  std::vector<double> upper;
  upper.reserve(d / 4 * 6);
  for (size_t j0 = 0; j0 < d; j0 += 4)
    for (size_t j = j0 + 1; j < j0 + 4; ++j)
      for (size_t i = j0; i < j; ++i) upper.push_back(cov[j * d + i]);
  for (size_t k0 = 0; k0 < n; k0 += kc) {
    const size_t k1 = k0 + kc < n ? k0 + kc : n;
    if (p == Path::kAvx512)
      cov_block_512(a, d, k0, k1, cov);
    else
      cov_block_256(a, d, k0, k1, cov);
  }
  size_t u = 0;
  for (size_t j0 = 0; j0 < d; j0 += 4)
    for (size_t j = j0 + 1; j < j0 + 4; ++j)
      for (size_t i = j0; i < j; ++i) cov[j * d + i] = upper[u++];
#else
  (void)a, (void)n, (void)cov;
#endif
}

void apply_column_rotations(Path p, double* q, size_t n, const ColumnRotation* rot, size_t count) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512) return rotate_512(q, n, rot, count);
  if (p == Path::kAvx2) return rotate_256(q, n, rot, count);
#else
  (void)p;
#endif
  rotate_rows_scalar(q, n, 0, n, rot, count);
}

void argmax_abs_rows(Path p, const float* g, size_t rows, size_t k, uint32_t* out) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512) return argmax_abs_512(g, rows, k, out);
  if (p == Path::kAvx2) return argmax_abs_256(g, rows, k, out);
#else
  (void)p;
#endif
  for (size_t r = 0; r < rows; ++r) out[r] = argmax_abs_scalar(g + r * k, k);
}

void accumulate_weighted(Path p, double* acc, const float* x, double w, size_t d) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512) return accumulate_weighted_512(acc, x, w, d);
  if (p == Path::kAvx2) return accumulate_weighted_256(acc, x, w, d);
#else
  (void)p;
#endif
  for (size_t j = 0; j < d; ++j) acc[j] = acc[j] + w * static_cast<double>(x[j]);
}

void centre_scale(Path p, double* dst, const float* row, const float* mean, double sq, size_t d) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512) return centre_scale_512(dst, row, mean, sq, d);
  if (p == Path::kAvx2) return centre_scale_256(dst, row, mean, sq, d);
#else
  (void)p;
#endif
  for (size_t j = 0; j < d; ++j)
    dst[j] = sq * (static_cast<double>(row[j]) - static_cast<double>(mean[j]));
}

void divide(Path p, double* v, size_t n, double by) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512) return divide_512(v, n, by);
  if (p == Path::kAvx2) return divide_256(v, n, by);
#else
  (void)p;
#endif
  for (size_t i = 0; i < n; ++i) v[i] = v[i] / by;
}

void householder_left(Path p, double* corner, size_t stride, size_t cs, const double* e,
                      const double* l, double tau) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512) return hh_left_256<true>(corner, stride, cs, e, l, tau);
  if (p == Path::kAvx2) return hh_left_256<false>(corner, stride, cs, e, l, tau);
#else
  (void)corner, (void)stride, (void)cs, (void)e, (void)l, (void)tau;
#endif
  (void)p;
  throw InvalidArgument("householder_left: needs a vector path");
}

void symv_lower_eigen(Path p, const double* a, size_t lda, size_t size, const double* rhs,
                      double* res, double alpha) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512) return symv_256<true>(a, lda, size, rhs, res, alpha);
  if (p == Path::kAvx2) return symv_256<false>(a, lda, size, rhs, res, alpha);
#else
  (void)a, (void)lda, (void)size, (void)rhs, (void)res, (void)alpha;
#endif
  (void)p;
  throw InvalidArgument("symv_lower_eigen: needs a vector path");
}

void lloyd_max_scaled(Path p, const float* buf, size_t n, float scale, const float* table,
                      size_t count, uint16_t* idx, float* s_out) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512 && count <= 16) return lloyd_max_512(buf, n, scale, table, count, idx, s_out);
#else
  (void)p;
#endif
  lloyd_max_scalar(buf, 0, n, scale, table, count, idx, s_out);
}

void centre_dots(Path p, const float* u, size_t rows, size_t d, const float* ct, size_t k,
                 float* g) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512) return centre_dots_512(u, rows, d, ct, k, g);
  if (p == Path::kAvx2) return centre_dots_256(u, rows, d, ct, k, g);
#else
  (void)p;
#endif
  centre_dots_scalar(u, 0, rows, d, ct, k, 0, g);
}

void sym_rank2_lower(Path p, double* m, size_t stride, const double* u, const double* v,
                     size_t size, double alpha) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512) return rank2_512(m, stride, u, v, size, alpha);
  if (p == Path::kAvx2) return rank2_256(m, stride, u, v, size, alpha);
#else
  (void)p;
#endif
  for (size_t c = 0; c < size; ++c)
    rank2_col_scalar(m + c * stride, u, v, c, size, alpha * u[c], alpha * v[c]);
}

void outer_sub(Path p, double* b, size_t stride, size_t rows, size_t cols, const double* l,
               const double* tmp) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512) return outer_512(b, stride, rows, cols, l, tmp);
  if (p == Path::kAvx2) return outer_256(b, stride, rows, cols, l, tmp);
#else
  (void)p;
#endif
  for (size_t j = 0; j < cols; ++j) outer_col_scalar(b + j * stride, 0, rows, l, tmp[j]);
}

}  // namespace kvwb::codec::simd
