// f32 GEMM in Eigen's per-element order (gemm.h). Lanes are output rows; a depth block of B is
// packed per group of 8 (AVX-512) or 4 columns (broadcast per element), A per row panel of 8, 16
// or 32 rows. Per element: acc = 0, then
// acc = acc + a·b in depth order (mul and add separate, no contraction: -ffp-contract=off), then
// c = c + acc, like Eigen's 2pX4 / 2pX1 micro kernels; the rows of its 1p and one-row kernels in
// their split orders (tail_rows). Compiled per function with target attributes like kakeya.cpp.
#include "codec/simd/gemm.h"

#include <algorithm>
#include <vector>

#include "base/errors.h"
#include "codec/simd/x86_targets.h"

namespace kvwb::codec::simd {

namespace {

// One depth block of B, packed per group of g columns: columns [g·t, g·t + g) for g·t + g <= n as
// [kb, g] starting at bp + g·t·kb, each remaining column j as [kb] starting at bp + j·kb.
struct DepthBlock {
  const float* bp;
  size_t n, kb, g;
  bool neg;  // c − acc instead of c + acc (Eigen's c + alpha·acc with alpha = −1)
  size_t full() const { return n / g * g; }
  /// B(l0 + l, j) = bp[at(j) + l·stride(j)].
  size_t at(size_t j) const { return j < full() ? (j - j % g) * kb + j % g : j * kb; }
  size_t stride(size_t j) const { return j < full() ? g : 1; }
  const float* col(size_t j0) const { return bp + at(j0); }
};

// Rows [i0, i0 + rows) of A for the depth block, packed [kb, rows] (contiguous: a strided
// in-place read would alias in L1 for power-of-two leading dimensions).
struct Panel {
  const float* ptr;
  size_t ak;
};

Panel panel_of(const float* a, ptrdiff_t a_rs, ptrdiff_t a_cs, size_t i0, size_t rows, size_t l0,
               size_t kb, std::vector<float>& buf) {
  buf.resize(rows * kb);
  if (a_rs == 1) {
    for (size_t l = 0; l < kb; ++l) {
      const float* src = a + static_cast<ptrdiff_t>(i0) + static_cast<ptrdiff_t>(l0 + l) * a_cs;
      std::copy(src, src + rows, buf.data() + l * rows);
    }
  } else {
    for (size_t r = 0; r < rows; ++r) {
      const float* src =
          a + static_cast<ptrdiff_t>(i0 + r) * a_rs + static_cast<ptrdiff_t>(l0) * a_cs;
      for (size_t l = 0; l < kb; ++l) buf[l * rows + r] = src[static_cast<ptrdiff_t>(l) * a_cs];
    }
  }
  return {buf.data(), rows};
}

void block_scalar(const float* a, ptrdiff_t a_rs, ptrdiff_t a_cs, size_t m, size_t l0,
                  const DepthBlock& db, float* c, size_t ldc) {
  for (size_t j = 0; j < db.n; ++j)
    for (size_t i = 0; i < m; ++i) {
      float acc = 0.0f;
      for (size_t l = 0; l < db.kb; ++l)
        acc = acc + a[static_cast<ptrdiff_t>(i) * a_rs + static_cast<ptrdiff_t>(l0 + l) * a_cs] *
                        db.bp[db.at(j) + l * db.stride(j)];
      c[j * ldc + i] = db.neg ? c[j * ldc + i] - acc : c[j * ldc + i] + acc;
    }
}

// Rows Eigen's gebp gives to its 1p (rows [r2, r1)) and one-row (rows [r1, end)) kernels, per
// element in their exact order. A column is in a 4-column panel when it lies in the first
// cols / 4 · 4 columns of its column block of nc. 1p × 4: k < kb & ~7 alternate C (even k) and
// D (odd k), C = C + D, then the remaining k into C. One row × 4 (Eigen's "swapped" kernel,
// 4 lanes over the columns): k < kb / 4 · 4 into s[k % 4], t = (s0 + s1) + (s2 + s3), then the
// remaining k into t. Every other element (1p × 1, one row × 1): plain depth order.
// Element (i, j) of a tail row, on the scalar path. in_panel: column j is in a 4-column panel.
inline void tail_element(const float* ai, ptrdiff_t a_cs, const float* bj, size_t bs, size_t kb,
                         bool one_packet, bool in_panel, bool neg, float* cij) {
  auto prod = [&](size_t l) { return ai[static_cast<ptrdiff_t>(l) * a_cs] * bj[l * bs]; };
  float acc = 0.0f;
  size_t l = 0;
  if (in_panel && one_packet) {
    float d = 0.0f;
    for (; l < (kb & ~size_t{7}); l += 2) {
      acc = acc + prod(l);
      d = d + prod(l + 1);
    }
    acc = acc + d;
  } else if (in_panel) {
    float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (; l < kb / 4 * 4; l += 4)
      for (size_t q = 0; q < 4; ++q) s[q] = s[q] + prod(l + q);
    acc = (s[0] + s[1]) + (s[2] + s[3]);
  }
  for (; l < kb; ++l) acc = acc + prod(l);
  *cij = neg ? *cij - acc : *cij + acc;
}

#if KVWB_SIMD_X86

// Lane ops of tail_group: 4 columns in an xmm, 8 in a ymm.
struct Lanes4 {
  using V = __m128;
  static constexpr int G = 4;
  KVWB_AVX2 static V zero() { return _mm_setzero_ps(); }
  KVWB_AVX2 static V add(V x, V y) { return _mm_add_ps(x, y); }
  KVWB_AVX2 static V mul(float a, const float* b) {
    return _mm_mul_ps(_mm_set1_ps(a), _mm_loadu_ps(b));
  }
  KVWB_AVX2 static void store(float* o, V x) { _mm_storeu_ps(o, x); }
};
struct Lanes8 {
  using V = __m256;
  static constexpr int G = 8;
  KVWB_AVX2 static V zero() { return _mm256_setzero_ps(); }
  KVWB_AVX2 static V add(V x, V y) { return _mm256_add_ps(x, y); }
  KVWB_AVX2 static V mul(float a, const float* b) {
    return _mm256_mul_ps(_mm256_set1_ps(a), _mm256_loadu_ps(b));
  }
  KVWB_AVX2 static void store(float* o, V x) { _mm256_storeu_ps(o, x); }
};

// tail_element for L::G packed columns of 4-column panels at once: lanes are the columns,
// bg = the group's B packed [kb, G], c0 = element (i, j) of the group's first column.
template <class L>
KVWB_AVX2 void tail_group(const float* ai, ptrdiff_t a_cs, const float* bg, size_t kb,
                          bool one_packet, bool neg, float* c0, size_t ldc) {
  using V = typename L::V;
  constexpr int G = L::G;
  V acc = L::zero();
  size_t l = 0;
  if (one_packet) {
    V d = L::zero();
    for (; l < (kb & ~size_t{7}); l += 2) {
      acc = L::add(acc, L::mul(ai[static_cast<ptrdiff_t>(l) * a_cs], bg + l * G));
      d = L::add(d, L::mul(ai[static_cast<ptrdiff_t>(l + 1) * a_cs], bg + (l + 1) * G));
    }
    acc = L::add(acc, d);
  } else {
    V s0 = L::zero(), s1 = L::zero(), s2 = L::zero(), s3 = L::zero();
    for (; l < kb / 4 * 4; l += 4) {
      s0 = L::add(s0, L::mul(ai[static_cast<ptrdiff_t>(l) * a_cs], bg + l * G));
      s1 = L::add(s1, L::mul(ai[static_cast<ptrdiff_t>(l + 1) * a_cs], bg + (l + 1) * G));
      s2 = L::add(s2, L::mul(ai[static_cast<ptrdiff_t>(l + 2) * a_cs], bg + (l + 2) * G));
      s3 = L::add(s3, L::mul(ai[static_cast<ptrdiff_t>(l + 3) * a_cs], bg + (l + 3) * G));
    }
    acc = L::add(L::add(s0, s1), L::add(s2, s3));
  }
  for (; l < kb; ++l) acc = L::add(acc, L::mul(ai[static_cast<ptrdiff_t>(l) * a_cs], bg + l * G));
  float out[G];
  L::store(out, acc);
  for (size_t q = 0; q < static_cast<size_t>(G); ++q)
    c0[q * ldc] = neg ? c0[q * ldc] - out[q] : c0[q * ldc] + out[q];
}

#endif  // KVWB_SIMD_X86

// Rows Eigen's gebp gives to its 1p (rows [r2, r1)) and one-row (rows [r1, end)) kernels, per
// element in their exact order. A column is in a 4-column panel when it lies in the first
// cols / 4 · 4 columns of its column block of nc. 1p × 4: k < kb & ~7 alternate C (even k) and
// D (odd k), C = C + D, then the remaining k into C. One row × 4 (Eigen's "swapped" kernel,
// 4 lanes over the columns): k < kb / 4 · 4 into s[k % 4], t = (s0 + s1) + (s2 + s3), then the
// remaining k into t. Every other element (1p × 1, one row × 1): plain depth order. On a vector
// path, packed groups of db.g panel columns run on lanes over the columns.
void tail_rows(Path p, const float* a, ptrdiff_t a_rs, ptrdiff_t a_cs, size_t r2, size_t r1,
               size_t end, size_t l0, const DepthBlock& db, size_t nc, float* c, size_t ldc) {
  const size_t kb = db.kb;
  for (size_t j2 = 0; j2 < db.n; j2 += nc) {
    const size_t cols = std::min(nc, db.n - j2), full = j2 + cols / 4 * 4;
    for (size_t j = j2; j < j2 + cols;) {
      const bool group =
          p != Path::kScalar && j % db.g == 0 && j + db.g <= std::min(full, db.full());
      for (size_t i = r2; i < end; ++i) {
        const float* ai = a + static_cast<ptrdiff_t>(i) * a_rs + static_cast<ptrdiff_t>(l0) * a_cs;
#if KVWB_SIMD_X86
        if (group) {
          if (db.g == 8)
            tail_group<Lanes8>(ai, a_cs, db.bp + db.at(j), kb, i < r1, db.neg, c + j * ldc + i,
                               ldc);
          else
            tail_group<Lanes4>(ai, a_cs, db.bp + db.at(j), kb, i < r1, db.neg, c + j * ldc + i,
                               ldc);
          continue;
        }
#endif
        tail_element(ai, a_cs, db.bp + db.at(j), db.stride(j), kb, i < r1, j < full, db.neg,
                     c + j * ldc + i);
      }
      j += group ? db.g : 1;
    }
  }
}

inline void outer_col_f32(float* col, size_t i0, size_t rows, const float* l, float t) {
  for (size_t i = i0; i < rows; ++i) col[i] = col[i] - t * l[i];
}

#if KVWB_SIMD_X86

KVWB_AVX512 void outer_f32_512(float* b, size_t stride, size_t rows, size_t cols, const float* l,
                               const float* tmp) {
  for (size_t j = 0; j < cols; ++j) {
    const __m512 t = _mm512_set1_ps(tmp[j]);
    float* col = b + j * stride;
    size_t i = 0;
    for (; i + 16 <= rows; i += 16)
      _mm512_storeu_ps(col + i, _mm512_sub_ps(_mm512_loadu_ps(col + i),
                                              _mm512_mul_ps(t, _mm512_loadu_ps(l + i))));
    outer_col_f32(col, i, rows, l, tmp[j]);
  }
}

KVWB_AVX2 void outer_f32_256(float* b, size_t stride, size_t rows, size_t cols, const float* l,
                             const float* tmp) {
  for (size_t j = 0; j < cols; ++j) {
    const __m256 t = _mm256_set1_ps(tmp[j]);
    float* col = b + j * stride;
    size_t i = 0;
    for (; i + 8 <= rows; i += 8)
      _mm256_storeu_ps(col + i, _mm256_sub_ps(_mm256_loadu_ps(col + i),
                                              _mm256_mul_ps(t, _mm256_loadu_ps(l + i))));
    outer_col_f32(col, i, rows, l, tmp[j]);
  }
}

// ---- AVX-512: tiles of NV × 16 rows and NC columns ----

template <int NV, int NC>
KVWB_AVX512 inline void tile_512(const Panel& pa, const DepthBlock& db, size_t j0, float* c,
                                 size_t ldc) {
  __m512 acc[NV][NC];
  for (int v = 0; v < NV; ++v)
    for (int q = 0; q < NC; ++q) acc[v][q] = _mm512_setzero_ps();
  const float* ap = pa.ptr;
  const float* bp = db.col(j0);
  for (size_t l = 0; l < db.kb; ++l, ap += pa.ak, bp += NC) {
    __m512 va[NV];
    for (int v = 0; v < NV; ++v) va[v] = _mm512_loadu_ps(ap + 16 * v);
    for (int q = 0; q < NC; ++q) {
      const __m512 vb = _mm512_set1_ps(bp[q]);
      for (int v = 0; v < NV; ++v) acc[v][q] = _mm512_add_ps(acc[v][q], _mm512_mul_ps(va[v], vb));
    }
  }
  for (int q = 0; q < NC; ++q)
    for (int v = 0; v < NV; ++v) {
      float* dst = c + (j0 + static_cast<size_t>(q)) * ldc + 16 * v;
      const __m512 cv = _mm512_loadu_ps(dst);
      _mm512_storeu_ps(dst, db.neg ? _mm512_sub_ps(cv, acc[v][q]) : _mm512_add_ps(cv, acc[v][q]));
    }
}

// 8 rows (one ymm per column).
template <int NC>
KVWB_AVX512 inline void tile8_512(const Panel& pa, const DepthBlock& db, size_t j0, float* c,
                                  size_t ldc) {
  __m256 acc[NC];
  for (int q = 0; q < NC; ++q) acc[q] = _mm256_setzero_ps();
  const float* ap = pa.ptr;
  const float* bp = db.col(j0);
  for (size_t l = 0; l < db.kb; ++l, ap += pa.ak, bp += NC) {
    const __m256 va = _mm256_loadu_ps(ap);
    for (int q = 0; q < NC; ++q)
      acc[q] = _mm256_add_ps(acc[q], _mm256_mul_ps(va, _mm256_set1_ps(bp[q])));
  }
  for (int q = 0; q < NC; ++q) {
    float* dst = c + (j0 + static_cast<size_t>(q)) * ldc;
    const __m256 cv = _mm256_loadu_ps(dst);
    _mm256_storeu_ps(dst, db.neg ? _mm256_sub_ps(cv, acc[q]) : _mm256_add_ps(cv, acc[q]));
  }
}

template <int NV>
KVWB_AVX512 void panel_512(const Panel& pa, const DepthBlock& db, float* c, size_t ldc) {
  size_t j = 0;
  for (; j < db.full(); j += 8) tile_512<NV, 8>(pa, db, j, c, ldc);
  for (; j < db.n; ++j) tile_512<NV, 1>(pa, db, j, c, ldc);
}

// 32-row panels while a panel of the depth block fits in L1 (kb <= 256), 16-row panels beyond.
KVWB_AVX512 void block_512(const float* a, ptrdiff_t a_rs, ptrdiff_t a_cs, size_t m, size_t l0,
                           const DepthBlock& db, float* c, size_t ldc, std::vector<float>& buf) {
  size_t i = 0;
  if (db.kb <= 256)
    for (; i + 32 <= m; i += 32)
      panel_512<2>(panel_of(a, a_rs, a_cs, i, 32, l0, db.kb, buf), db, c + i, ldc);
  for (; i + 16 <= m; i += 16)
    panel_512<1>(panel_of(a, a_rs, a_cs, i, 16, l0, db.kb, buf), db, c + i, ldc);
  for (; i + 8 <= m; i += 8) {
    const Panel pa = panel_of(a, a_rs, a_cs, i, 8, l0, db.kb, buf);
    size_t j = 0;
    for (; j < db.full(); j += 8) tile8_512<8>(pa, db, j, c + i, ldc);
    for (; j < db.n; ++j) tile8_512<1>(pa, db, j, c + i, ldc);
  }
}

// ---- AVX2: tiles of NV × 8 rows and NC columns ----

template <int NV, int NC>
KVWB_AVX2 inline void tile_256(const Panel& pa, const DepthBlock& db, size_t j0, float* c,
                               size_t ldc) {
  __m256 acc[NV][NC];
  for (int v = 0; v < NV; ++v)
    for (int q = 0; q < NC; ++q) acc[v][q] = _mm256_setzero_ps();
  const float* ap = pa.ptr;
  const float* bp = db.col(j0);
  for (size_t l = 0; l < db.kb; ++l, ap += pa.ak, bp += NC) {
    __m256 va[NV];
    for (int v = 0; v < NV; ++v) va[v] = _mm256_loadu_ps(ap + 8 * v);
    for (int q = 0; q < NC; ++q) {
      const __m256 vb = _mm256_set1_ps(bp[q]);
      for (int v = 0; v < NV; ++v) acc[v][q] = _mm256_add_ps(acc[v][q], _mm256_mul_ps(va[v], vb));
    }
  }
  for (int q = 0; q < NC; ++q)
    for (int v = 0; v < NV; ++v) {
      float* dst = c + (j0 + static_cast<size_t>(q)) * ldc + 8 * v;
      const __m256 cv = _mm256_loadu_ps(dst);
      _mm256_storeu_ps(dst, db.neg ? _mm256_sub_ps(cv, acc[v][q]) : _mm256_add_ps(cv, acc[v][q]));
    }
}

template <int NV>
KVWB_AVX2 void panel_256(const Panel& pa, const DepthBlock& db, float* c, size_t ldc) {
  size_t j = 0;
  for (; j < db.full(); j += 4) tile_256<NV, 4>(pa, db, j, c, ldc);
  for (; j < db.n; ++j) tile_256<NV, 1>(pa, db, j, c, ldc);
}

KVWB_AVX2 void block_256(const float* a, ptrdiff_t a_rs, ptrdiff_t a_cs, size_t m, size_t l0,
                         const DepthBlock& db, float* c, size_t ldc, std::vector<float>& buf) {
  size_t i = 0;
  for (; i + 16 <= m; i += 16)
    panel_256<2>(panel_of(a, a_rs, a_cs, i, 16, l0, db.kb, buf), db, c + i, ldc);
  for (; i + 8 <= m; i += 8)
    panel_256<1>(panel_of(a, a_rs, a_cs, i, 8, l0, db.kb, buf), db, c + i, ldc);
}

#endif  // KVWB_SIMD_X86

// gemm_eigen_order without zeroing c first; neg: c − acc per depth block (alpha = −1).
void gemm_core(Path p, size_t m, size_t n, size_t k, size_t kc, size_t mc, size_t nc, bool neg,
               const float* a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float* b, ptrdiff_t b_rs,
               ptrdiff_t b_cs, float* c, size_t ldc) {
  thread_local std::vector<float> bp, buf;
  for (size_t l0 = 0; l0 < k; l0 += kc) {
    const size_t kb = std::min(kc, k - l0);
    bp.resize(kb * n);
    const DepthBlock db{bp.data(), n, kb, p == Path::kAvx512 ? size_t{8} : size_t{4}, neg};
    for (size_t j = 0; j < n; ++j) {
      float* dst = bp.data() + db.at(j);
      const size_t st = db.stride(j);
      const float* src = b + static_cast<ptrdiff_t>(j) * b_cs + static_cast<ptrdiff_t>(l0) * b_rs;
      for (size_t l = 0; l < kb; ++l) dst[l * st] = src[static_cast<ptrdiff_t>(l) * b_rs];
    }
    for (size_t i2 = 0; i2 < m; i2 += mc) {
      // Eigen's gebp on the row block [i2, i2 + rows): 2p rows [i2, r2), 1p rows [r2, r1),
      // single rows [r1, i2 + rows).
      const size_t rows = std::min(mc, m - i2);
      const size_t r2 = i2 + rows / 8 * 8, r1 = r2 + (rows - rows / 8 * 8) / 4 * 4;
      const float* ab = a + static_cast<ptrdiff_t>(i2) * a_rs;
      bool done = false;
#if KVWB_SIMD_X86
      if (p == Path::kAvx512) {
        block_512(ab, a_rs, a_cs, r2 - i2, l0, db, c + i2, ldc, buf);
        done = true;
      } else if (p == Path::kAvx2) {
        block_256(ab, a_rs, a_cs, r2 - i2, l0, db, c + i2, ldc, buf);
        done = true;
      }
#else
      (void)p;
#endif
      if (!done) block_scalar(ab, a_rs, a_cs, r2 - i2, l0, db, c + i2, ldc);
      if (r2 < i2 + rows) tail_rows(p, a, a_rs, a_cs, r2, r1, i2 + rows, l0, db, nc, c, ldc);
    }
  }
}

}  // namespace

void gemm_eigen_order(Path p, size_t m, size_t n, size_t k, size_t kc, size_t mc, size_t nc,
                      const float* a, ptrdiff_t a_rs, ptrdiff_t a_cs, const float* b,
                      ptrdiff_t b_rs, ptrdiff_t b_cs, float* c, size_t ldc) {
  if (kc == 0 || mc == 0 || nc == 0 || ldc < m)
    throw InvalidArgument("gemm_eigen_order: needs kc, mc, nc > 0 and ldc >= m");
  for (size_t j = 0; j < n; ++j) std::fill(c + j * ldc, c + j * ldc + m, 0.0f);
  gemm_core(p, m, n, k, kc, mc, nc, false, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc);
}

void gebp_eigen_order(Path p, size_t m, size_t n, size_t k, float alpha, const float* a,
                      ptrdiff_t a_rs, ptrdiff_t a_cs, const float* b, ptrdiff_t b_rs,
                      ptrdiff_t b_cs, float* c, size_t ldc) {
  if (alpha != 1.0f && alpha != -1.0f)
    throw InvalidArgument("gebp_eigen_order: alpha must be 1 or -1");
  if (m == 0 || n == 0 || k == 0) return;
  if (ldc < m) throw InvalidArgument("gebp_eigen_order: needs ldc >= m");
  // One depth block, row block and column block: c + alpha·acc = c ± acc (exact).
  gemm_core(p, m, n, k, k, m, n, alpha < 0.0f, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc);
}

void trmm_eigen_order(Path p, bool lower, bool unit, size_t rows_in, size_t cols, size_t depth_in,
                      size_t kc_in, size_t mc_in, float alpha, const float* a, ptrdiff_t a_rs,
                      ptrdiff_t a_cs, const float* b, ptrdiff_t b_rs, ptrdiff_t b_cs, float* c,
                      size_t ldc) {
  if (rows_in == 0 || cols == 0 || depth_in == 0) return;
  if (kc_in == 0 || mc_in == 0) throw InvalidArgument("trmm_eigen_order: needs kc, mc > 0");
  using I = ptrdiff_t;
  constexpr I kSmallPanel = 16;  // 2·max(mr, nr) for a triangular lhs
  const I diag = static_cast<I>(std::min(rows_in, depth_in));
  const I rows = lower ? static_cast<I>(rows_in) : diag;
  const I depth = lower ? diag : static_cast<I>(depth_in);
  const I kc = static_cast<I>(kc_in), mc = std::min(rows, static_cast<I>(mc_in));
  const I panel = std::min(kSmallPanel, std::min(kc, mc));
  auto A = [&](I i, I l) { return a + i * a_rs + l * a_cs; };
  auto B = [&](I l) { return b + l * b_rs; };
  auto C = [&](I i) { return c + i; };
  // Eigen's triangularBuffer: zero off the triangle, the diagonal 1 (unit) or A's.
  float buf[kSmallPanel * kSmallPanel] = {};
  for (I q = 0; q < kSmallPanel; ++q) buf[q * kSmallPanel + q] = 1.0f;
  for (I k2 = lower ? depth : 0; lower ? k2 > 0 : k2 < depth; k2 = lower ? k2 - kc : k2 + kc) {
    I akc = std::min(lower ? k2 : depth - k2, kc);
    const I ak2 = lower ? k2 - akc : k2;
    if (!lower && k2 < rows && k2 + akc > rows) {
      akc = rows - k2;
      k2 = k2 + akc - kc;
    }
    if (lower || ak2 < rows) {
      for (I k1 = 0; k1 < akc; k1 += panel) {
        const I apw = std::min(akc - k1, panel);
        const I target = lower ? akc - k1 - apw : k1;
        const I sb = ak2 + k1;
        for (I k = 0; k < apw; ++k) {
          if (!unit) buf[k * kSmallPanel + k] = *A(sb + k, sb + k);
          for (I i = lower ? k + 1 : 0; lower ? i < apw : i < k; ++i)
            buf[k * kSmallPanel + i] = *A(sb + i, sb + k);
        }
        gebp_eigen_order(p, static_cast<size_t>(apw), cols, static_cast<size_t>(apw), alpha, buf, 1,
                         kSmallPanel, B(sb), b_rs, b_cs, C(sb), ldc);
        if (target > 0) {
          const I st = lower ? ak2 + k1 + apw : ak2;
          gebp_eigen_order(p, static_cast<size_t>(target), cols, static_cast<size_t>(apw), alpha,
                           A(st, sb), a_rs, a_cs, B(sb), b_rs, b_cs, C(st), ldc);
        }
      }
    }
    const I start = lower ? k2 : 0, end = lower ? rows : std::min(ak2, rows);
    for (I i2 = start; i2 < end; i2 += mc) {
      const I amc = std::min(i2 + mc, end) - i2;
      gebp_eigen_order(p, static_cast<size_t>(amc), cols, static_cast<size_t>(akc), alpha,
                       A(i2, ak2), a_rs, a_cs, B(ak2), b_rs, b_cs, C(i2), ldc);
    }
  }
}

void outer_sub_f32(Path p, float* b, size_t stride, size_t rows, size_t cols, const float* l,
                   const float* tmp) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512) return outer_f32_512(b, stride, rows, cols, l, tmp);
  if (p == Path::kAvx2) return outer_f32_256(b, stride, rows, cols, l, tmp);
#else
  (void)p;
#endif
  for (size_t j = 0; j < cols; ++j) outer_col_f32(b + j * stride, 0, rows, l, tmp[j]);
}

}  // namespace kvwb::codec::simd
