// Besicovitch group kernels (besi.h): lanes are groups; per lane the f32 operations of the scalar
// kernels in their order (dot = (0 + x0·d0) + x1·d1, strict > against the running |best|, first
// strictly smaller distance wins), no contraction (-ffp-contract=off), so all paths agree bit for
// bit. Compiled per function with target attributes like rows.cpp.
#include "codec/simd/besi.h"

#include <cmath>

#include "codec/kernels/besicovitch.h"
#include "codec/kernels/lloyd_max.h"

#include "codec/simd/x86_targets.h"

namespace kvwb::codec::simd {

namespace {

// Groups [k0, groups) with the scalar kernel (the reference and the vector paths' tail).
float assign_g2_scalar(const float* x, const float* mean, size_t k0, size_t groups,
                      const float* codebook, size_t m, uint16_t* ids, float* alphas) {
  float amax = 0.0f;
  for (size_t k = k0; k < groups; ++k) {
    const kernels::BesiAssignment a = kernels::besi_assign_centred(
        x + 2 * k, mean != nullptr ? mean + 2 * k : nullptr, 2, codebook, m);
    ids[k] = a.id;
    alphas[k] = a.alpha;
    const float abs_alpha = std::fabs(a.alpha);
    amax = amax < abs_alpha ? abs_alpha : amax;
  }
  return amax;
}

void quantize_scalar(const float* alphas, size_t k0, size_t n, float s, const float* table,
                     size_t count, uint16_t* out) {
  for (size_t k = k0; k < n; ++k)
    out[k] = kernels::besi_magnitude_index(alphas[k], s, table, count);
}

void decode_g2_scalar(const uint16_t* ids, const float* alphas, size_t k0, size_t groups,
                      const float* codebook, const float* mean, float* out) {
  for (size_t k = k0; k < groups; ++k)
    kernels::besi_decode_group(codebook + 2 * static_cast<size_t>(ids[k]), 2, alphas[k],
                               mean != nullptr ? mean + 2 * k : nullptr, out + 2 * k);
}

#if KVWB_SIMD_X86


// ---- AVX2: 8 groups per step ----

KVWB_AVX2 inline __m256 abs8(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

KVWB_AVX2 void store_u16x8(__m256i v, uint16_t* out) {
  const __m128i p = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), p);
}

KVWB_AVX2 float assign_g2_avx2(const float* x, const float* mean, size_t groups,
                              const float* codebook, size_t m, uint16_t* ids, float* alphas) {
  __m256 vmax = _mm256_setzero_ps();
  size_t k = 0;
  for (; k + 8 <= groups; k += 8) {
    __m256 a = _mm256_loadu_ps(x + 2 * k);
    __m256 b = _mm256_loadu_ps(x + 2 * k + 8);
    if (mean != nullptr) {
      a = _mm256_sub_ps(a, _mm256_loadu_ps(mean + 2 * k));
      b = _mm256_sub_ps(b, _mm256_loadu_ps(mean + 2 * k + 8));
    }
    // [a0 a2 b0 b2 | a4 a6 b4 b6] -> [a0 a2 a4 a6 b0 b2 b4 b6] (group order).
    const __m256 x0 = _mm256_castpd_ps(
        _mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
    const __m256 x1 = _mm256_castpd_ps(
        _mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
    __m256 best_abs = _mm256_setzero_ps();
    __m256 best_alpha = _mm256_setzero_ps();
    __m256 best_id = _mm256_setzero_ps();  // int32 ids carried as float bits
    for (size_t i = 0; i < m; ++i) {
      __m256 dot = _mm256_add_ps(_mm256_setzero_ps(),
                                 _mm256_mul_ps(x0, _mm256_set1_ps(codebook[2 * i])));
      dot = _mm256_add_ps(dot, _mm256_mul_ps(x1, _mm256_set1_ps(codebook[2 * i + 1])));
      const __m256 ad = abs8(dot);
      const __m256 gt = _mm256_cmp_ps(ad, best_abs, _CMP_GT_OQ);
      best_abs = _mm256_blendv_ps(best_abs, ad, gt);
      best_alpha = _mm256_blendv_ps(best_alpha, dot, gt);
      best_id = _mm256_blendv_ps(
          best_id, _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(i))), gt);
    }
    store_u16x8(_mm256_castps_si256(best_id), ids + k);
    _mm256_storeu_ps(alphas + k, best_alpha);
    vmax = _mm256_max_ps(vmax, best_abs);  // best_abs = |best_alpha|, never NaN: max is exact
  }
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  const float head = _mm_cvtss_f32(h);
  const float tail = assign_g2_scalar(x, mean, k, groups, codebook, m, ids, alphas);
  return head < tail ? tail : head;
}

KVWB_AVX2 void quantize_avx2(const float* alphas, size_t n, float s, const float* table,
                             size_t count, uint16_t* out) {
  const __m256 vs = _mm256_set1_ps(s);
  size_t k = 0;
  for (; k + 8 <= n; k += 8) {
    const __m256 v = _mm256_div_ps(_mm256_loadu_ps(alphas + k), vs);
    __m256 best_d = abs8(_mm256_sub_ps(v, _mm256_set1_ps(table[0])));
    __m256 best = _mm256_setzero_ps();
    for (size_t c = 1; c < count; ++c) {
      const __m256 d = abs8(_mm256_sub_ps(v, _mm256_set1_ps(table[c])));
      const __m256 lt = _mm256_cmp_ps(d, best_d, _CMP_LT_OQ);
      best_d = _mm256_blendv_ps(best_d, d, lt);
      best = _mm256_blendv_ps(best, _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(c))),
                              lt);
    }
    store_u16x8(_mm256_castps_si256(best), out + k);
  }
  quantize_scalar(alphas, k, n, s, table, count, out);
}

KVWB_AVX2 void decode_g2_avx2(const uint16_t* ids, const float* alphas, size_t groups,
                              const float* codebook, const float* mean, float* out) {
  size_t k = 0;
  for (; k + 8 <= groups; k += 8) {
    const __m256i i0 = _mm256_slli_epi32(
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(ids + k))), 1);
    const __m256 d0 = _mm256_i32gather_ps(codebook, i0, 4);
    const __m256 d1 = _mm256_i32gather_ps(codebook + 1, i0, 4);
    const __m256 al = _mm256_loadu_ps(alphas + k);
    const __m256 p0 = _mm256_mul_ps(al, d0);  // groups k … k+7, coordinate 0
    const __m256 p1 = _mm256_mul_ps(al, d1);
    // interleave to [g0c0 g0c1 … g3c0 g3c1 | g4c0 … g7c1]
    const __m256 lo = _mm256_unpacklo_ps(p0, p1);  // g0 g1 | g4 g5
    const __m256 hi = _mm256_unpackhi_ps(p0, p1);  // g2 g3 | g6 g7
    const __m256 o0 = _mm256_permute2f128_ps(lo, hi, 0x20);
    const __m256 o1 = _mm256_permute2f128_ps(lo, hi, 0x31);
    const __m256 m0 = mean != nullptr ? _mm256_loadu_ps(mean + 2 * k) : _mm256_setzero_ps();
    const __m256 m1 = mean != nullptr ? _mm256_loadu_ps(mean + 2 * k + 8) : _mm256_setzero_ps();
    _mm256_storeu_ps(out + 2 * k, _mm256_add_ps(m0, o0));
    _mm256_storeu_ps(out + 2 * k + 8, _mm256_add_ps(m1, o1));
  }
  decode_g2_scalar(ids, alphas, k, groups, codebook, mean, out);
}

// ---- AVX-512: 16 groups per step ----

KVWB_AVX512 float assign_g2_avx512(const float* x, const float* mean, size_t groups,
                                  const float* codebook, size_t m, uint16_t* ids,
                                  float* alphas) {
  const __m512i even =
      _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512 sign = _mm512_set1_ps(-0.0f);
  __m512 vmax = _mm512_setzero_ps();
  size_t k = 0;
  for (; k + 16 <= groups; k += 16) {
    __m512 a = _mm512_loadu_ps(x + 2 * k);
    __m512 b = _mm512_loadu_ps(x + 2 * k + 16);
    if (mean != nullptr) {
      a = _mm512_sub_ps(a, _mm512_loadu_ps(mean + 2 * k));
      b = _mm512_sub_ps(b, _mm512_loadu_ps(mean + 2 * k + 16));
    }
    const __m512 x0 = _mm512_permutex2var_ps(a, even, b);
    const __m512 x1 = _mm512_permutex2var_ps(a, odd, b);
    __m512 best_abs = _mm512_setzero_ps();
    __m512 best_alpha = _mm512_setzero_ps();
    __m512i best_id = _mm512_setzero_si512();
    for (size_t i = 0; i < m; ++i) {
      __m512 dot = _mm512_add_ps(_mm512_setzero_ps(),
                                 _mm512_mul_ps(x0, _mm512_set1_ps(codebook[2 * i])));
      dot = _mm512_add_ps(dot, _mm512_mul_ps(x1, _mm512_set1_ps(codebook[2 * i + 1])));
      const __m512 ad = _mm512_andnot_ps(sign, dot);
      const __mmask16 gt = _mm512_cmp_ps_mask(ad, best_abs, _CMP_GT_OQ);
      best_abs = _mm512_mask_mov_ps(best_abs, gt, ad);
      best_alpha = _mm512_mask_mov_ps(best_alpha, gt, dot);
      best_id = _mm512_mask_mov_epi32(best_id, gt, _mm512_set1_epi32(static_cast<int>(i)));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(ids + k), _mm512_cvtepi32_epi16(best_id));
    _mm512_storeu_ps(alphas + k, best_alpha);
    vmax = _mm512_max_ps(vmax, best_abs);  // best_abs = |best_alpha|, never NaN: max is exact
  }
  const float head = _mm512_reduce_max_ps(vmax);
  const float tail = assign_g2_scalar(x, mean, k, groups, codebook, m, ids, alphas);
  return head < tail ? tail : head;
}

KVWB_AVX512 void quantize_avx512(const float* alphas, size_t n, float s, const float* table,
                                 size_t count, uint16_t* out) {
  const __m512 vs = _mm512_set1_ps(s);
  const __m512 sign = _mm512_set1_ps(-0.0f);
  size_t k = 0;
  for (; k + 16 <= n; k += 16) {
    const __m512 v = _mm512_div_ps(_mm512_loadu_ps(alphas + k), vs);
    __m512 best_d = _mm512_andnot_ps(sign, _mm512_sub_ps(v, _mm512_set1_ps(table[0])));
    __m512i best = _mm512_setzero_si512();
    for (size_t c = 1; c < count; ++c) {
      const __m512 d = _mm512_andnot_ps(sign, _mm512_sub_ps(v, _mm512_set1_ps(table[c])));
      const __mmask16 lt = _mm512_cmp_ps_mask(d, best_d, _CMP_LT_OQ);
      best_d = _mm512_mask_mov_ps(best_d, lt, d);
      best = _mm512_mask_mov_epi32(best, lt, _mm512_set1_epi32(static_cast<int>(c)));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k), _mm512_cvtepi32_epi16(best));
  }
  quantize_scalar(alphas, k, n, s, table, count, out);
}

KVWB_AVX512 void decode_g2_avx512(const uint16_t* ids, const float* alphas, size_t groups,
                                  const float* codebook, size_t m, const float* mean, float* out) {
  const __m512i lo_idx =
      _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi_idx = _mm512_add_epi32(lo_idx, _mm512_set1_epi32(8));
  // Up to 8 lines (16 floats) the codebook is one register: permutes instead of gathers.
  __m512 cb = _mm512_setzero_ps();
  if (m <= 8) cb = _mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << (2 * m)) - 1u), codebook);
  size_t k = 0;
  for (; k + 16 <= groups; k += 16) {
    const __m512i i0 = _mm512_slli_epi32(
        _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(ids + k))), 1);
    const __m512i i1 = _mm512_add_epi32(i0, _mm512_set1_epi32(1));
    __m512 d0, d1;
    if (m <= 8) {
      d0 = _mm512_permutexvar_ps(i0, cb);
      d1 = _mm512_permutexvar_ps(i1, cb);
    } else {
      d0 = _mm512_i32gather_ps(i0, codebook, 4);
      d1 = _mm512_i32gather_ps(i1, codebook, 4);
    }
    const __m512 al = _mm512_loadu_ps(alphas + k);
    const __m512 p0 = _mm512_mul_ps(al, d0);
    const __m512 p1 = _mm512_mul_ps(al, d1);
    const __m512 o0 = _mm512_permutex2var_ps(p0, lo_idx, p1);  // groups k … k+7
    const __m512 o1 = _mm512_permutex2var_ps(p0, hi_idx, p1);  // groups k+8 … k+15
    const __m512 m0 = mean != nullptr ? _mm512_loadu_ps(mean + 2 * k) : _mm512_setzero_ps();
    const __m512 m1 = mean != nullptr ? _mm512_loadu_ps(mean + 2 * k + 16) : _mm512_setzero_ps();
    _mm512_storeu_ps(out + 2 * k, _mm512_add_ps(m0, o0));
    _mm512_storeu_ps(out + 2 * k + 16, _mm512_add_ps(m1, o1));
  }
  decode_g2_scalar(ids, alphas, k, groups, codebook, mean, out);
}

#endif  // KVWB_SIMD_X86

}  // namespace

float besi_assign_g2(Path p, const float* x, const float* mean, size_t groups,
                     const float* codebook, size_t m, uint16_t* ids, float* alphas) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512) return assign_g2_avx512(x, mean, groups, codebook, m, ids, alphas);
  if (p == Path::kAvx2) return assign_g2_avx2(x, mean, groups, codebook, m, ids, alphas);
#endif
  (void)p;
  return assign_g2_scalar(x, mean, 0, groups, codebook, m, ids, alphas);
}

void besi_quantize(Path p, const float* alphas, size_t n, float s, const float* table,
                   size_t count, uint16_t* out) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512) return quantize_avx512(alphas, n, s, table, count, out);
  if (p == Path::kAvx2) return quantize_avx2(alphas, n, s, table, count, out);
#endif
  (void)p;
  quantize_scalar(alphas, 0, n, s, table, count, out);
}

void besi_decode_g2(Path p, const uint16_t* ids, const float* alphas, size_t groups,
                    const float* codebook, size_t m, const float* mean, float* out) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512) return decode_g2_avx512(ids, alphas, groups, codebook, m, mean, out);
  if (p == Path::kAvx2) return decode_g2_avx2(ids, alphas, groups, codebook, mean, out);
#endif
  (void)p, (void)m;
  decode_g2_scalar(ids, alphas, 0, groups, codebook, mean, out);
}

}  // namespace kvwb::codec::simd
