// x86 vector kernels (AVX2 + F16C, AVX-512 F/BW/VL/DQ) compiled per function with target
// attributes, so the translation unit and everything it inlines from headers stays baseline
// x86-64; only the functions marked here use the wider instructions, and they run only when
// dispatch.cpp found the CPU features. No FP contraction (the codec library's -ffp-contract=off):
// every lane computes what the scalar kernel computes for that element.
#include "codec/simd/rows.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "codec/kernels/half.h"

#include "codec/simd/x86_targets.h"





















namespace kvwb::codec::simd {

namespace {

using kernels::GgmlFields;
using kernels::GgmlType;
using kernels::kGgmlBlock;

#if KVWB_SIMD_X86


// ---- AVX2 ----

// Software prefetch distance of the batched q8_0 kernels, in floats: the 2 KiB 16 blocks ahead of
// the input (encode) or the output (decode: the lines are fetched before they are written, which
// the hardware prefetcher does not do early enough for a stream of stores). On 2 MiB streams the
// AVX-512 encode ran 5 % and the decode 25 % faster on the 2-core test machine. A prefetch past the
// end of a buffer does not fault.
constexpr size_t kPrefetchFloats = 16 * kGgmlBlock;

// Prefetches the two cache lines of the 32 floats kPrefetchFloats past x. The address is formed as
// an integer: it may lie past the end of the buffer, which a pointer may not.
inline void prefetch_block_ahead(const float* x) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(x) + kPrefetchFloats * sizeof(float);
  _mm_prefetch(reinterpret_cast<const char*>(a), _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(a + 16 * sizeof(float)), _MM_HINT_T0);
}

KVWB_AVX2 inline __m256 abs8(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

// max |x_j| over a block, NaN lanes skipped as the scalar `amax < a ? a : amax` skips them
// (max_ps returns its second operand when either is NaN). Max is exact, so order is free.
KVWB_AVX2 inline float block_amax_avx2(const __m256 v[4]) {
  const __m256 z = _mm256_setzero_ps();
  __m256 m = _mm256_max_ps(_mm256_max_ps(abs8(v[0]), z), _mm256_max_ps(abs8(v[1]), z));
  m = _mm256_max_ps(m, _mm256_max_ps(_mm256_max_ps(abs8(v[2]), z), _mm256_max_ps(abs8(v[3]), z)));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

// roundf (half away from zero), exact: t = trunc(v), v − t is exact for |v| < 2^23 (and 0 above).
KVWB_AVX2 inline __m256 round_away_avx2(__m256 v) {
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 sign = _mm256_and_ps(v, _mm256_set1_ps(-0.0f));
  const __m256 frac = abs8(_mm256_sub_ps(v, t));
  const __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  return _mm256_add_ps(t, _mm256_and_ps(up, _mm256_or_ps(_mm256_set1_ps(1.0f), sign)));
}

KVWB_AVX2 GgmlFields q8_0_quantize_avx2(const float* x, uint8_t* out) {
  GgmlFields f;
  __m256 v[4];
  for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(x + 8 * k);
  const float amax = block_amax_avx2(v);
  f.d = amax / 127.0f;
  const float id = f.d != 0.0f ? 1.0f / f.d : 0.0f;
  const __m256 vid = _mm256_set1_ps(id);
  __m256i c[4];
  for (int k = 0; k < 4; ++k) {
    __m256 r = round_away_avx2(_mm256_mul_ps(v[k], vid));
    r = _mm256_andnot_ps(_mm256_cmp_ps(r, r, _CMP_UNORD_Q), r);  // NaN -> 0
    r = _mm256_min_ps(_mm256_max_ps(r, _mm256_set1_ps(-127.0f)), _mm256_set1_ps(127.0f));
    c[k] = _mm256_cvttps_epi32(r);
  }
  const __m256i p01 = _mm256_packs_epi32(c[0], c[1]);
  const __m256i p23 = _mm256_packs_epi32(c[2], c[3]);
  __m256i b = _mm256_packs_epi16(p01, p23);
  b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 2), b);
  return f;
}

// The first signed value of largest magnitude (kernels signed_absmax): the first lane whose |x|
// equals the exact maximum; +0 when every value is zero (the scalar's initial max).
KVWB_AVX2 inline float block_signed_max_avx2(const float* x, const __m256 v[4], float amax) {
  if (!(amax > 0.0f)) return 0.0f;
  const __m256 a = _mm256_set1_ps(amax);
  uint32_t mask = 0;
  for (int k = 0; k < 4; ++k)
    mask |= static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(abs8(v[k]), a, _CMP_EQ_OQ)))
            << (8 * k);
  return x[__builtin_ctz(mask)];
}

KVWB_AVX2 GgmlFields q4_0_quantize_avx2(const float* x, uint8_t* out) {
  GgmlFields f;
  __m256 v[4];
  for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(x + 8 * k);
  const float amax = block_amax_avx2(v);
  const float max = block_signed_max_avx2(x, v, amax);
  f.d = max / -8.0f;
  const float id = f.d != 0.0f ? 1.0f / f.d : 0.0f;
  const __m256 vid = _mm256_set1_ps(id);
  const __m256 off = _mm256_set1_ps(8.5f);
  const __m256 top1 = _mm256_set1_ps(16.0f);
  __m256i q[4];
  for (int k = 0; k < 4; ++k) {
    const __m256 t = _mm256_add_ps(_mm256_mul_ps(v[k], vid), off);
    const __m256 ge0 = _mm256_cmp_ps(t, _mm256_setzero_ps(), _CMP_GE_OQ);  // false for NaN
    const __m256 hi = _mm256_cmp_ps(t, top1, _CMP_GE_OQ);
    f.clipped += static_cast<uint32_t>(__builtin_popcount(_mm256_movemask_ps(hi)));
    const __m256 tc = _mm256_and_ps(ge0, _mm256_min_ps(t, _mm256_set1_ps(15.0f)));
    q[k] = _mm256_cvttps_epi32(tc);  // trunc of [0, 15]; clipped lanes give 15
  }
  // int16 j = 0..15 and 16..31 in order, then element j | element j+16 << 4.
  const __m256i lo = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[0], q[1]), 0xD8);
  const __m256i hi = _mm256_permute4x64_epi64(_mm256_packs_epi32(q[2], q[3]), 0xD8);
  const __m256i c = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4));
  const __m128i bytes =
      _mm_packus_epi16(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2), bytes);
  return f;
}

KVWB_AVX2 void q8_0_dequantize_avx2(const uint8_t* in, float d, float* x) {
  const __m256 vd = _mm256_set1_ps(d);
  for (int k = 0; k < 4; ++k) {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(in + 2 + 8 * k));
    _mm256_storeu_ps(x + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)), vd));
  }
}

KVWB_AVX2 void q4_0_dequantize_avx2(const uint8_t* in, float d, float* x) {
  const __m256 vd = _mm256_set1_ps(d);
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 2));
  const __m128i m = _mm_set1_epi8(15);
  const __m128i lo = _mm_and_si128(b, m);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), m);
  const __m256i eight = _mm256_set1_epi32(8);
  const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
  for (int k = 0; k < 4; ++k) {
    const __m256i q = _mm256_sub_epi32(_mm256_cvtepu8_epi32(parts[k]), eight);
    _mm256_storeu_ps(x + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(q), vd));
  }
}

// Lane-wise max of 8 vectors m[0 … 8) reduced across lanes on integer bits (non-negative float
// bits: the float order; NaN / infinity bits win): lane b of the result is the max of m[b].
KVWB_AVX2 inline __m256i hmax8_u32_avx2(const __m256i m[8]) {
  __m256i t[4], u[2];
  for (int i = 0; i < 4; ++i)  // 128-bit half 0: m[2i], half 1: m[2i+1]
    t[i] = _mm256_max_epu32(_mm256_permute2x128_si256(m[2 * i], m[2 * i + 1], 0x20),
                            _mm256_permute2x128_si256(m[2 * i], m[2 * i + 1], 0x31));
  for (int i = 0; i < 2; ++i)  // dwords 0-1 / 4-5: blocks 4i, 4i+2 (x2); 2-3 / 6-7: 4i+1, 4i+3
    u[i] = _mm256_max_epu32(_mm256_unpacklo_epi64(t[2 * i], t[2 * i + 1]),
                            _mm256_unpackhi_epi64(t[2 * i], t[2 * i + 1]));
  // r holds blocks 0, 2, 4, 6 in dwords 0-3 and 1, 3, 5, 7 in dwords 4-7.
  const __m256i r = _mm256_max_epu32(
      _mm256_castps_si256(_mm256_shuffle_ps(_mm256_castsi256_ps(u[0]), _mm256_castsi256_ps(u[1]), 0x88)),
      _mm256_castps_si256(_mm256_shuffle_ps(_mm256_castsi256_ps(u[0]), _mm256_castsi256_ps(u[1]), 0xDD)));
  return _mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// q8_0 on 8 blocks on the fast path of q8_0_quantize16_fast_avx512 (finite input, every d 0 or
// normal, so no NaN pinning or clamp acts and roundf(v) = trunc(v ± 0.49999997)), with a vector
// absmax on integer bits, vector divisions for d and 1/d, F16C for fp16 d (RNE, the scalar
// conversion for |d| <= 65504), and ggml's pack of 32 codes. Returns 1 when the 8 blocks are
// written, 0 when some value is not finite or some |d| > 65504, -1 when some d is subnormal
// (nothing written).
KVWB_AVX2 int q8_0_quantize8_fast_avx2(const float* x, uint8_t* out) {
  constexpr size_t bb = kernels::ggml_block_bytes(GgmlType::kQ8_0);
  const __m256i abs_mask = _mm256_set1_epi32(0x7FFFFFFF);
  __m256i m[8];
  for (int b = 0; b < 8; ++b) {
    const float* xb = x + 32 * b;
    prefetch_block_ahead(xb);
    const __m256i a01 = _mm256_max_epu32(
        _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb)), abs_mask),
        _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + 8)), abs_mask));
    const __m256i a23 = _mm256_max_epu32(
        _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + 16)), abs_mask),
        _mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + 24)), abs_mask));
    m[b] = _mm256_max_epu32(a01, a23);
  }
  const __m256i amax_bits = hmax8_u32_avx2(m);
  // unsigned amax > 0x7F7FFFFF (non-finite): as signed, the bits are non-negative here
  if (!_mm256_testz_si256(_mm256_cmpgt_epi32(amax_bits, _mm256_set1_epi32(0x7F7FFFFF)),
                          _mm256_set1_epi32(-1)))
    return 0;
  const __m256 d = _mm256_div_ps(_mm256_castsi256_ps(amax_bits), _mm256_set1_ps(127.0f));
  if (_mm256_movemask_ps(_mm256_cmp_ps(d, _mm256_set1_ps(kernels::kFp16Max), _CMP_GT_OQ)) != 0)
    return 0;
  const __m256 nz = _mm256_cmp_ps(d, _mm256_setzero_ps(), _CMP_NEQ_OQ);
  if (_mm256_movemask_ps(_mm256_and_ps(nz, _mm256_cmp_ps(d, _mm256_set1_ps(FLT_MIN), _CMP_LT_OQ))) != 0)
    return -1;
  alignas(32) float id[8];
  _mm256_store_ps(id, _mm256_and_ps(nz, _mm256_div_ps(_mm256_set1_ps(1.0f), d)));
  alignas(16) uint16_t dh[8];
  _mm_store_si128(reinterpret_cast<__m128i*>(dh),
                  _mm256_cvtps_ph(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  const __m256 half = _mm256_set1_ps(0.49999997f), neg_half = _mm256_set1_ps(-0.49999997f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int b = 0; b < 8; ++b) {
    const float* xb = x + 32 * b;
    const __m256 vid = _mm256_set1_ps(id[b]);
    __m256i c[4];
    for (int k = 0; k < 4; ++k) {
      const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(xb + 8 * k), vid);
      c[k] = _mm256_cvttps_epi32(_mm256_add_ps(v, _mm256_blendv_ps(half, neg_half, v)));
    }
    const __m256i q = _mm256_permutevar8x32_epi32(
        _mm256_packs_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3])), order);
    uint8_t* o = out + bb * b;
    std::memcpy(o, &dh[b], 2);  // little-endian host (x86)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 2), q);
  }
  return 1;
}

// Batched q8_0 / q4_0 (ggml_quantize_blocks): the per-block kernels inlined into one loop, the
// non-finite test of check_input fused in (exponent all ones), fp16 d stored with the scalar
// conversion after the range test of peer::f16_field.
template <GgmlType T>
KVWB_AVX2 bool ggml_quantize_blocks_avx2(const float* x, size_t n, uint8_t* out, uint64_t& clipped) {
  constexpr size_t bb = kernels::ggml_block_bytes(T);
  const __m256i e = _mm256_set1_epi32(0x7F800000);
  __m256i bad = _mm256_setzero_si256();
  bool in_range = true;
  uint64_t clip = 0;
  size_t b = 0;
  if constexpr (T == GgmlType::kQ8_0)
    for (; b + 8 <= n; b += 8, x += 8 * kGgmlBlock, out += 8 * bb) {
      const int fast = q8_0_quantize8_fast_avx2(x, out);
      if (fast == 0) return false;
      if (fast > 0) continue;
      for (int k = 0; k < 8; ++k) {  // a subnormal d: the careful per-block kernel
        const GgmlFields f = q8_0_quantize_avx2(x + k * kGgmlBlock, out + k * bb);
        kernels::store_u16(out + k * bb, kernels::f32_to_f16_bits(f.d));
      }
    }
  for (; b < n; ++b, x += kGgmlBlock, out += bb) {
    for (int k = 0; k < 4; ++k) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 8 * k));
      bad = _mm256_or_si256(bad, _mm256_cmpeq_epi32(_mm256_and_si256(v, e), e));
    }
    const GgmlFields f = T == GgmlType::kQ8_0 ? q8_0_quantize_avx2(x, out) : q4_0_quantize_avx2(x, out);
    clip += f.clipped;
    in_range &= std::fabs(f.d) <= kernels::kFp16Max;
    kernels::store_u16(out, kernels::f32_to_f16_bits(f.d));
  }
  clipped += clip;
  return _mm256_testz_si256(bad, bad) && in_range;
}

// Batched dequantisation (ggml_dequantize_blocks); F16C converts d exactly.
template <GgmlType T>
KVWB_AVX2 size_t ggml_dequantize_blocks_avx2(const uint8_t* in, size_t n, float* x) {
  constexpr size_t bb = kernels::ggml_block_bytes(T);
  for (size_t b = 0; b < n; ++b, in += bb, x += kGgmlBlock) {
    const uint16_t h = kernels::load_u16(in);
    if (!kernels::f16_bits_finite(h)) return b;
    const float d = _cvtsh_ss(h);
    if constexpr (T == GgmlType::kQ8_0) {
      prefetch_block_ahead(x);
      q8_0_dequantize_avx2(in, d, x);
    } else {
      q4_0_dequantize_avx2(in, d, x);
    }
  }
  return n;
}

// bf16 of 8 floats (RNE on the low 16 bits, NaN quieted) as 8 u16 in the low 128 bits' lanes.
KVWB_AVX2 inline __m128i bf16_8_avx2(__m256i xi, __m256i& is_inf) {
  const __m256i absx = _mm256_and_si256(xi, _mm256_set1_epi32(0x7FFFFFFF));
  const __m256i nan = _mm256_cmpgt_epi32(absx, _mm256_set1_epi32(0x7F800000));
  const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(xi, 16), _mm256_set1_epi32(1));
  const __m256i r = _mm256_srli_epi32(
      _mm256_add_epi32(xi, _mm256_add_epi32(_mm256_set1_epi32(0x7FFF), odd)), 16);
  const __m256i qn = _mm256_or_si256(_mm256_srli_epi32(xi, 16), _mm256_set1_epi32(0x40));
  const __m256i b = _mm256_blendv_epi8(r, qn, nan);
  // infinity (or NaN): (b & 0x7FFF) >= 0x7F80
  is_inf = _mm256_cmpgt_epi32(_mm256_and_si256(b, _mm256_set1_epi32(0x7FFF)),
                              _mm256_set1_epi32(0x7F7F));
  return _mm_packus_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
}

KVWB_AVX2 size_t f32_to_bf16_avx2(const float* x, size_t n, uint8_t* out) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i inf;
    const __m128i b =
        bf16_8_avx2(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)), inf);
    if (!_mm256_testz_si256(inf, inf)) break;  // the scalar tail finds the exact index
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 * i), b);
  }
  for (; i < n; ++i) {
    const uint16_t b = kernels::f32_to_bf16_bits(x[i]);
    if ((b & 0x7FFFu) >= 0x7F80u) return i;
    kernels::store_u16(out + 2 * i, b);
  }
  return n;
}

KVWB_AVX2 size_t bf16_to_f32_avx2(const uint8_t* in, size_t n, float* out) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i b =
        _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 2 * i)));
    const __m256i e = _mm256_and_si256(b, _mm256_set1_epi32(0x7F80));
    if (!_mm256_testz_si256(_mm256_cmpeq_epi32(e, _mm256_set1_epi32(0x7F80)),
                            _mm256_set1_epi32(-1)))
      break;
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm256_slli_epi32(b, 16));
  }
  for (; i < n; ++i) {
    const uint16_t b = kernels::load_u16(in + 2 * i);
    if ((b & 0x7F80u) == 0x7F80u) return i;
    out[i] = kernels::bf16_bits_to_f32(b);
  }
  return n;
}

KVWB_AVX2 void f16_to_f32_avx2(const uint16_t* in, size_t n, float* out) {
  const __m128i e = _mm_set1_epi16(0x7C00);
  for (size_t i = 0; i < n; i += 8) {
    if (i + 8 <= n) {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
      // F16C is exact on finite values (subnormals included); Inf/NaN runs take the scalar kernel.
      if (_mm_testz_si128(_mm_cmpeq_epi16(_mm_and_si128(h, e), e), _mm_set1_epi16(-1))) {
        _mm256_storeu_ps(out + i, _mm256_cvtph_ps(h));
        continue;
      }
    }
    for (size_t j = i; j < std::min(n, i + 8); ++j) out[j] = kernels::f16_bits_to_f32(in[j]);
  }
}

KVWB_AVX2 size_t first_non_finite_avx2(const float* x, size_t n) {
  const __m256i e = _mm256_set1_epi32(0x7F800000);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    __m256i any = _mm256_setzero_si256();
    for (int k = 0; k < 4; ++k) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i + 8 * k));
      any = _mm256_or_si256(any, _mm256_cmpeq_epi32(_mm256_and_si256(v, e), e));
    }
    if (!_mm256_testz_si256(any, any)) break;
  }
  for (; i < n; ++i)
    if ((kernels::f32_bits(x[i]) & 0x7F800000u) == 0x7F800000u) return i;
  return n;
}

// In-vector butterfly stage: the lower lane a of each pair gets a + b, the upper lane b gets a − b
// (s is x with each pair swapped). Computed as s + (±x) with the sign flipped by xor: the same
// f32 sums bit for bit (IEEE addition commutes and a − b = a + (−b)), one op fewer than a blend of
// both results.
KVWB_AVX2 inline __m256 butterfly_avx2(__m256 x, __m256 s, __m256 upper_sign) {
  return _mm256_add_ps(s, _mm256_xor_ps(x, upper_sign));
}

// H·v stage by stage as kernels::wht_pow2 (n a power of two >= 8): stages h = 1, 2, 4 inside each
// 8-lane vector (the partner comes from a lane permute; lanes of the upper half compute
// partner − own, i.e. a − b with a the lower element), then h >= 8 across vectors.
KVWB_AVX2 void wht_avx2(float* v, size_t n) {
  const __m256 kUpper1 = _mm256_setr_ps(0.0f, -0.0f, 0.0f, -0.0f, 0.0f, -0.0f, 0.0f, -0.0f);
  const __m256 kUpper2 = _mm256_setr_ps(0.0f, 0.0f, -0.0f, -0.0f, 0.0f, 0.0f, -0.0f, -0.0f);
  const __m256 kUpper4 = _mm256_setr_ps(0.0f, 0.0f, 0.0f, 0.0f, -0.0f, -0.0f, -0.0f, -0.0f);
  for (size_t i = 0; i < n; i += 8) {
    __m256 x = _mm256_loadu_ps(v + i);
    __m256 s = _mm256_permute_ps(x, 0xB1);
    x = butterfly_avx2(x, s, kUpper1);
    s = _mm256_permute_ps(x, 0x4E);
    x = butterfly_avx2(x, s, kUpper2);
    s = _mm256_permute2f128_ps(x, x, 0x01);
    x = butterfly_avx2(x, s, kUpper4);
    _mm256_storeu_ps(v + i, x);
  }
  for (size_t h = 8; h < n; h <<= 1)
    for (size_t i0 = 0; i0 < n; i0 += 2 * h)
      for (size_t j = i0; j < i0 + h; j += 8) {
        const __m256 a = _mm256_loadu_ps(v + j);
        const __m256 b = _mm256_loadu_ps(v + j + h);
        _mm256_storeu_ps(v + j, _mm256_add_ps(a, b));
        _mm256_storeu_ps(v + j + h, _mm256_sub_ps(a, b));
      }
}

KVWB_AVX2 inline uint32_t hsum_epi32_avx2(__m256i v) {
  __m128i h = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
  h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xB1));
  return static_cast<uint32_t>(_mm_cvtsi128_si32(h));
}

// wht_avx2 on 128 values held in 16 registers (the same butterflies, no memory round trips).
KVWB_AVX2 inline void wht128_regs_avx2(__m256 r[16]) {
  const __m256 kUpper1 = _mm256_setr_ps(0.0f, -0.0f, 0.0f, -0.0f, 0.0f, -0.0f, 0.0f, -0.0f);
  const __m256 kUpper2 = _mm256_setr_ps(0.0f, 0.0f, -0.0f, -0.0f, 0.0f, 0.0f, -0.0f, -0.0f);
  const __m256 kUpper4 = _mm256_setr_ps(0.0f, 0.0f, 0.0f, 0.0f, -0.0f, -0.0f, -0.0f, -0.0f);
  for (size_t i = 0; i < 16; ++i) {
    __m256 x = r[i];
    __m256 s = _mm256_permute_ps(x, 0xB1);
    x = butterfly_avx2(x, s, kUpper1);
    s = _mm256_permute_ps(x, 0x4E);
    x = butterfly_avx2(x, s, kUpper2);
    s = _mm256_permute2f128_ps(x, x, 0x01);
    r[i] = butterfly_avx2(x, s, kUpper4);
  }
  for (size_t hv = 1; hv < 16; hv <<= 1)
    for (size_t i0 = 0; i0 < 16; i0 += 2 * hv)
      for (size_t j = i0; j < i0 + hv; ++j) {
        const __m256 a = r[j], b = r[j + hv];
        r[j] = _mm256_add_ps(a, b);
        r[j + hv] = _mm256_sub_ps(a, b);
      }
}

// centroid[idx] for 8 lanes of indices < 16 (two 8-entry tables; one when bits <= 3).
KVWB_AVX2 inline __m256 centroid_lookup_avx2(const float* centroid, __m256i idx, unsigned bits) {
  const __m256 lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(centroid), idx);
  if (bits <= 3) return lo;
  const __m256 hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(centroid + 8), idx);
  const __m256i upper = _mm256_cmpgt_epi32(idx, _mm256_set1_epi32(7));
  return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(upper));
}

// Everything after the norm for one group: y = (H(x·inv ⊙ s1)/√128) ⊙ s2, the indices, the codes
// (block bytes 2 …) and the squared centroids cc[128] that r2 sums.
KVWB_AVX2 void turbo_codes_avx2(const kernels::TurboTables& t, const float* s1, const float* s2,
                                const float* x, float inv, uint8_t* block, float* cc) {
  constexpr size_t G = kernels::kTurboGroup;
  const float inv_sqrt128 = 0.08838834764831845f;
  const __m256 vinv = _mm256_set1_ps(inv);
  __m256 r[16];
  for (size_t i = 0; i < 16; ++i)
    r[i] = _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * i), vinv), _mm256_loadu_ps(s1 + 8 * i));
  wht128_regs_avx2(r);
  const __m256 vs = _mm256_set1_ps(inv_sqrt128);
  const size_t n_mid = (size_t{1} << t.bits) - 1;
  alignas(32) int32_t idx[G];
  for (size_t j = 0; j < G; j += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_mul_ps(r[j / 8], vs), _mm256_loadu_ps(s2 + j));
    __m256i cnt = _mm256_setzero_si256();
    for (size_t k = 0; k < n_mid; ++k)  // count of midpoints m with y >= m (all-ones = −1)
      cnt = _mm256_sub_epi32(cnt, _mm256_castps_si256(_mm256_cmp_ps(
                                      v, _mm256_set1_ps(t.midpoint[k]), _CMP_GE_OQ)));
    _mm256_store_si256(reinterpret_cast<__m256i*>(idx + j), cnt);
    const __m256 c = centroid_lookup_avx2(t.centroid, cnt, t.bits);
    _mm256_store_ps(cc + j, _mm256_mul_ps(c, c));
  }
  // Packing (§1.5), 8 indices j = 8i + k at a time: field k of a LE u16 (2-bit) or u32 (4-bit),
  // the fields disjoint so a horizontal sum is their OR; bit 2 of a 3-bit index via movemask.
  uint8_t* p = block + 2;
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i sh2 = _mm256_add_epi32(lane, lane);
  for (size_t i = 0; i < G / 8; ++i) {
    const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(idx + 8 * i));
    if (t.bits == 4) {
      const uint32_t w = hsum_epi32_avx2(_mm256_sllv_epi32(v, _mm256_add_epi32(sh2, sh2)));
      std::memcpy(p + 2 + 4 * i, &w, 4);  // little-endian host (x86)
      continue;
    }
    const uint32_t w =
        hsum_epi32_avx2(_mm256_sllv_epi32(_mm256_and_si256(v, _mm256_set1_epi32(3)), sh2));
    p[2 * i] = static_cast<uint8_t>(w);
    p[2 * i + 1] = static_cast<uint8_t>(w >> 8);
    if (t.bits == 3)
      p[32 + i] = static_cast<uint8_t>(
          _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 29))));
  }
  if (t.bits == 4) {
    p[0] = 0;  // rnorm, reserved
    p[1] = 0;
  }
}

KVWB_AVX2 float turbo_encode_avx2(const kernels::TurboTables& t, const float* s1,
                                  const float* s2, const float* x, uint8_t* block, float* y) {
  constexpr size_t G = kernels::kTurboGroup;
  float ss = 0.0f;
  for (size_t j = 0; j < G; ++j) ss += x[j] * x[j];  // index order, as the scalar kernel
  const float g = std::sqrt(ss);
  const float inv = g > 1e-10f ? 1.0f / g : 0.0f;
  alignas(32) float cc[G];
  (void)y;  // scratch of the scalar kernel; y stays in registers here
  turbo_codes_avx2(t, s1, s2, x, inv, block, cc);
  float r2 = 0.0f;
  for (size_t j = 0; j < G; ++j) r2 += cc[j];  // index order
  const float r = std::sqrt(r2);
  return r > 1e-10f ? g / r : g;
}

// turbo_codes_avx2 with the per-value work after the WHT on 16 lanes: midpoint counts as masked
// adds, the centroid lookup as one permute (16-entry table), the bit fields from the index bytes
// (2-bit: b0 | b1 << 2 | b2 << 4 | b3 << 6 per 4 indices by two multiply-adds; 4-bit: b0 | b1 << 4)
// and the 3-bit index's top bits as a mask. Same values per lane, same bytes.
KVWB_AVX512 void turbo_codes_avx512(const kernels::TurboTables& t, const float* s1,
                                    const float* s2, const float* x, float inv,
                                    uint8_t* block, float* cc) {
  const float inv_sqrt128 = 0.08838834764831845f;
  const __m256 vinv = _mm256_set1_ps(inv);
  __m256 r[16];
  for (size_t i = 0; i < 16; ++i)
    r[i] = _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * i), vinv), _mm256_loadu_ps(s1 + 8 * i));
  wht128_regs_avx2(r);
  const __m512 vs = _mm512_set1_ps(inv_sqrt128);
  const __m512 cent = _mm512_loadu_ps(t.centroid);  // 16 entries (zero past 2^bits)
  const size_t n_mid = (size_t{1} << t.bits) - 1;
  const __m512i one = _mm512_set1_epi32(1);
  uint8_t* p = block + 2;
  for (size_t i = 0; i < 8; ++i) {  // values j = 16i … 16i + 15
    const __m512 y = _mm512_insertf32x8(_mm512_castps256_ps512(r[2 * i]), r[2 * i + 1], 1);
    const __m512 v = _mm512_mul_ps(_mm512_mul_ps(y, vs), _mm512_loadu_ps(s2 + 16 * i));
    __m512i cnt = _mm512_setzero_si512();
    for (size_t k = 0; k < n_mid; ++k)  // count of midpoints m with y >= m
      cnt = _mm512_mask_add_epi32(
          cnt, _mm512_cmp_ps_mask(v, _mm512_set1_ps(t.midpoint[k]), _CMP_GE_OQ), cnt, one);
    const __m512 c = _mm512_permutexvar_ps(cnt, cent);
    _mm512_storeu_ps(cc + 16 * i, _mm512_mul_ps(c, c));
    const __m128i b = _mm512_cvtepi32_epi8(cnt);  // 16 index bytes
    if (t.bits == 4) {
      const __m128i w = _mm_maddubs_epi16(b, _mm_set1_epi16(0x1001));  // b0 + 16 b1
      _mm_storel_epi64(reinterpret_cast<__m128i*>(p + 2 + 8 * i), _mm_packus_epi16(w, w));
      continue;
    }
    const __m128i lo2 = _mm_and_si128(b, _mm_set1_epi8(3));
    const __m128i w16 = _mm_maddubs_epi16(lo2, _mm_set1_epi16(0x0401));  // b0 + 4 b1
    const __m128i w32 = _mm_madd_epi16(w16, _mm_set1_epi32(0x00100001));  // + 16 (b2 + 4 b3)
    const __m128i w8 = _mm_packus_epi16(_mm_packus_epi32(w32, w32), w32);
    const uint32_t q = static_cast<uint32_t>(_mm_cvtsi128_si32(w8));
    std::memcpy(p + 4 * i, &q, 4);  // little-endian host (x86)
    if (t.bits == 3) {
      const uint16_t top = _mm512_test_epi32_mask(cnt, _mm512_set1_epi32(4));
      p[32 + 2 * i] = static_cast<uint8_t>(top);
      p[32 + 2 * i + 1] = static_cast<uint8_t>(top >> 8);
    }
  }
  if (t.bits == 4) {
    p[0] = 0;  // rnorm, reserved
    p[1] = 0;
  }
}

// Eight consecutive groups: the two norms of each are still index-order sums, but the eight
// independent chains run interleaved (one chain per group, so the same additions in the same order).
KVWB_AVX2 void turbo_encode8_avx2(const kernels::TurboTables& t, const float* s1, const float* s2,
                                  const float* x, uint8_t* blocks, float* norms, bool wide) {
  constexpr size_t G = kernels::kTurboGroup;
  // Lane g = group g: the same mul and add per lane, in index order j.
  const __m256i rows = _mm256_setr_epi32(0, 128, 256, 384, 512, 640, 768, 896);
  __m256 acc = _mm256_setzero_ps();
  for (size_t j = 0; j < G; ++j) {
    const __m256 v = _mm256_i32gather_ps(x + j, rows, 4);
    acc = _mm256_add_ps(acc, _mm256_mul_ps(v, v));
  }
  alignas(32) float ss[8];
  _mm256_store_ps(ss, acc);
  alignas(32) float cc[8][G];
  float gn[8];
  for (size_t g = 0; g < 8; ++g) {
    gn[g] = std::sqrt(ss[g]);
    const float inv = gn[g] > 1e-10f ? 1.0f / gn[g] : 0.0f;
    if (wide)
      turbo_codes_avx512(t, s1, s2, x + g * G, inv, blocks + g * t.block_bytes, cc[g]);
    else
      turbo_codes_avx2(t, s1, s2, x + g * G, inv, blocks + g * t.block_bytes, cc[g]);
  }
  __m256 acc2 = _mm256_setzero_ps();
  for (size_t j = 0; j < G; ++j)
    acc2 = _mm256_add_ps(acc2, _mm256_i32gather_ps(&cc[0][j], rows, 4));
  alignas(32) float r2[8];
  _mm256_store_ps(r2, acc2);
  for (size_t g = 0; g < 8; ++g) {
    const float r = std::sqrt(r2[g]);
    norms[g] = r > 1e-10f ? gn[g] / r : gn[g];
  }
}

KVWB_AVX2 void turbo_decode_avx2(const kernels::TurboTables& t, const float* s1, const float* s2,
                                 const uint8_t* block, float norm, float* x) {
  constexpr size_t G = kernels::kTurboGroup;
  const float inv_sqrt128 = 0.08838834764831845f;
  const uint8_t* p = block + 2;
  // Lane k of 8 indices j = 8i + k: 2-bit field k of the u16 p[2i] | p[2i+1] << 8 (2-, 3-bit),
  // bit k of p[32 + i] (3-bit), or 4-bit field k of the LE u32 at p[2 + 4i] (4-bit).
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i sh2 = _mm256_add_epi32(lane, lane);
  const __m256i sh4 = _mm256_add_epi32(sh2, sh2);
  const __m256 vn = _mm256_set1_ps(norm);
  __m256 r[16];
  for (size_t i = 0; i < G / 8; ++i) {
    __m256i q;
    if (t.bits == 4) {
      uint32_t w;
      std::memcpy(&w, p + 2 + 4 * i, 4);
      q = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(static_cast<int>(w)), sh4),
                           _mm256_set1_epi32(15));
    } else {
      const int w = p[2 * i] | (p[2 * i + 1] << 8);
      q = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(w), sh2), _mm256_set1_epi32(3));
      if (t.bits == 3) {
        const __m256i hb = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(p[32 + i]), lane),
                                            _mm256_set1_epi32(1));
        q = _mm256_or_si256(q, _mm256_slli_epi32(hb, 2));
      }
    }
    const __m256 c = centroid_lookup_avx2(t.centroid, q, t.bits);
    r[i] = _mm256_mul_ps(_mm256_mul_ps(c, vn), _mm256_loadu_ps(s2 + 8 * i));
  }
  wht128_regs_avx2(r);
  const __m256 vs = _mm256_set1_ps(inv_sqrt128);
  for (size_t i = 0; i < 16; ++i)
    _mm256_storeu_ps(x + 8 * i, _mm256_mul_ps(_mm256_mul_ps(r[i], vs), _mm256_loadu_ps(s1 + 8 * i)));
}

// turbo_decode_avx2 with the index unpacking and centroid lookup on 16 lanes (values j = 16i …
// 16i + 15: 2-bit field k of the LE u32 at p[4i], plus bit k of the LE u16 at p[32 + 2i] for
// 3-bit, or 4-bit field k of the two LE u32 at p[2 + 8i]); same values per lane.
KVWB_AVX512 void turbo_decode_avx512(const kernels::TurboTables& t, const float* s1,
                                     const float* s2, const uint8_t* block, float norm, float* x) {
  const float inv_sqrt128 = 0.08838834764831845f;
  const uint8_t* p = block + 2;
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i sh2 = _mm512_add_epi32(lane, lane);
  const __m512i sh4 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
  const __m512 cent = _mm512_loadu_ps(t.centroid);  // 16 entries (zero past 2^bits)
  const __m512 vn = _mm512_set1_ps(norm);
  __m256 r[16];
  for (size_t i = 0; i < 8; ++i) {
    __m512i q;
    if (t.bits == 4) {
      uint32_t w[2];
      std::memcpy(w, p + 2 + 8 * i, 8);
      const __m512i both = _mm512_inserti32x8(
          _mm512_castsi256_si512(_mm256_set1_epi32(static_cast<int>(w[0]))),
          _mm256_set1_epi32(static_cast<int>(w[1])), 1);
      q = _mm512_and_si512(_mm512_srlv_epi32(both, sh4), _mm512_set1_epi32(15));
    } else {
      uint32_t w;
      std::memcpy(&w, p + 4 * i, 4);
      q = _mm512_and_si512(_mm512_srlv_epi32(_mm512_set1_epi32(static_cast<int>(w)), sh2),
                           _mm512_set1_epi32(3));
      if (t.bits == 3) {
        const __mmask16 top = static_cast<__mmask16>(p[32 + 2 * i] | (p[32 + 2 * i + 1] << 8));
        q = _mm512_mask_or_epi32(q, top, q, _mm512_set1_epi32(4));
      }
    }
    const __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_permutexvar_ps(q, cent), vn),
                                   _mm512_loadu_ps(s2 + 16 * i));
    r[2 * i] = _mm512_castps512_ps256(v);
    r[2 * i + 1] = _mm512_extractf32x8_ps(v, 1);
  }
  wht128_regs_avx2(r);
  const __m256 vs = _mm256_set1_ps(inv_sqrt128);
  for (size_t i = 0; i < 16; ++i)
    _mm256_storeu_ps(x + 8 * i, _mm256_mul_ps(_mm256_mul_ps(r[i], vs), _mm256_loadu_ps(s1 + 8 * i)));
}

// ---- AVX-512 (one block = two 16-lane vectors) ----

KVWB_AVX512 inline float block_amax_avx512(__m512 v0, __m512 v1) {
  const __m512 z = _mm512_setzero_ps();
  const __m512 m = _mm512_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), z),
                                 _mm512_max_ps(_mm512_abs_ps(v1), z));
  return _mm512_reduce_max_ps(m);  // exact; no NaN left
}

KVWB_AVX512 inline __m512 round_away_avx512(__m512 v) {
  const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m512 frac = _mm512_abs_ps(_mm512_sub_ps(v, t));
  const __mmask16 up = _mm512_cmp_ps_mask(frac, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
  const __m512 one = _mm512_or_ps(_mm512_set1_ps(1.0f), _mm512_and_ps(v, _mm512_set1_ps(-0.0f)));
  return _mm512_mask_add_ps(t, up, t, one);
}

KVWB_AVX512 GgmlFields q8_0_quantize_avx512(const float* x, uint8_t* out) {
  GgmlFields f;
  const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
  f.d = block_amax_avx512(v0, v1) / 127.0f;
  const float id = f.d != 0.0f ? 1.0f / f.d : 0.0f;
  const __m512 vid = _mm512_set1_ps(id);
  const __m512 vv[2] = {v0, v1};
  for (int k = 0; k < 2; ++k) {
    __m512 r = round_away_avx512(_mm512_mul_ps(vv[k], vid));
    const __mmask16 ok = _mm512_cmp_ps_mask(r, r, _CMP_ORD_Q);  // NaN -> 0
    r = _mm512_maskz_mov_ps(ok, r);
    r = _mm512_min_ps(_mm512_max_ps(r, _mm512_set1_ps(-127.0f)), _mm512_set1_ps(127.0f));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2 + 16 * k),
                     _mm512_cvtsepi32_epi8(_mm512_cvttps_epi32(r)));
  }
  return f;
}

KVWB_AVX512 GgmlFields q4_0_quantize_avx512(const float* x, uint8_t* out) {
  GgmlFields f;
  const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
  const float amax = block_amax_avx512(v0, v1);
  float max = 0.0f;
  if (amax > 0.0f) {
    const __m512 a = _mm512_set1_ps(amax);
    const uint32_t mask =
        static_cast<uint32_t>(_mm512_cmp_ps_mask(_mm512_abs_ps(v0), a, _CMP_EQ_OQ)) |
        (static_cast<uint32_t>(_mm512_cmp_ps_mask(_mm512_abs_ps(v1), a, _CMP_EQ_OQ)) << 16);
    max = x[__builtin_ctz(mask)];
  }
  f.d = max / -8.0f;
  const float id = f.d != 0.0f ? 1.0f / f.d : 0.0f;
  const __m512 vid = _mm512_set1_ps(id);
  __m512i q[2];
  const __m512 vv[2] = {v0, v1};
  for (int k = 0; k < 2; ++k) {
    const __m512 t = _mm512_add_ps(_mm512_mul_ps(vv[k], vid), _mm512_set1_ps(8.5f));
    const __mmask16 ge0 = _mm512_cmp_ps_mask(t, _mm512_setzero_ps(), _CMP_GE_OQ);
    const __mmask16 hi = _mm512_cmp_ps_mask(t, _mm512_set1_ps(16.0f), _CMP_GE_OQ);
    f.clipped += static_cast<uint32_t>(__builtin_popcount(hi));
    q[k] = _mm512_cvttps_epi32(_mm512_maskz_min_ps(ge0, t, _mm512_set1_ps(15.0f)));
  }
  const __m512i c = _mm512_or_si512(q[0], _mm512_slli_epi32(q[1], 4));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 2), _mm512_cvtepi32_epi8(c));
  return f;
}

KVWB_AVX512 void q8_0_dequantize_avx512(const uint8_t* in, float d, float* x) {
  const __m512 vd = _mm512_set1_ps(d);
  for (int k = 0; k < 2; ++k) {
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 2 + 16 * k));
    _mm512_storeu_ps(x + 16 * k, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b)), vd));
  }
}

KVWB_AVX512 void q4_0_dequantize_avx512(const uint8_t* in, float d, float* x) {
  const __m512 vd = _mm512_set1_ps(d);
  const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 2)));
  const __m512i m = _mm512_set1_epi32(15), eight = _mm512_set1_epi32(8);
  const __m512i lo = _mm512_sub_epi32(_mm512_and_si512(b, m), eight);
  const __m512i hi = _mm512_sub_epi32(_mm512_srli_epi32(b, 4), eight);
  _mm512_storeu_ps(x, _mm512_mul_ps(_mm512_cvtepi32_ps(lo), vd));
  _mm512_storeu_ps(x + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(hi), vd));
}

constexpr int kNonFiniteClass = 0x01 | 0x08 | 0x10 | 0x80;  // fpclass: QNaN, +inf, -inf, SNaN

// Lane-wise max of 16 vectors m[0 … 15] reduced across lanes: lane b of the result is the max of
// m[b]'s 16 lanes (a transposing tree of 15 shuffle pairs instead of 16 separate reductions).
// Max is exact, so the order of the tree does not matter.
KVWB_AVX512 inline __m512 hmax16_avx512(const __m512 m[16]) {
  __m512 t[8], u[4], w[2];
  for (int i = 0; i < 8; ++i)  // lanes 0-7: m[2i], 8-15: m[2i+1]
    t[i] = _mm512_max_ps(_mm512_shuffle_f32x4(m[2 * i], m[2 * i + 1], 0x44),
                         _mm512_shuffle_f32x4(m[2 * i], m[2 * i + 1], 0xEE));
  for (int i = 0; i < 4; ++i)  // 4 lanes each of blocks 4i … 4i+3
    u[i] = _mm512_max_ps(_mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], 0x88),
                         _mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], 0xDD));
  for (int i = 0; i < 2; ++i)  // 128-bit lane q: block 8i+q twice, block 8i+q+4 twice
    w[i] = _mm512_max_ps(_mm512_shuffle_ps(u[2 * i], u[2 * i + 1], 0x44),
                         _mm512_shuffle_ps(u[2 * i], u[2 * i + 1], 0xEE));
  // lane 4q + k: block q + 4k; the 4 × 4 transpose puts block b in lane b.
  const __m512 r = _mm512_max_ps(_mm512_shuffle_ps(w[0], w[1], 0x88), _mm512_shuffle_ps(w[0], w[1], 0xDD));
  return _mm512_permutexvar_ps(
      _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), r);
}

// q8_0 on 16 blocks at once: amax of each block via hmax16, d = amax / 127 and 1 / d as one vector
// division each (IEEE, the same bits as the scalar divisions), fp16 d by VCVTPS2PH (RNE with
// subnormals, equal to kernels::f32_to_f16_bits on every |v| <= 65504 — checked exhaustively).
// Returns false on a non-finite input or a d beyond the fp16 range.
KVWB_AVX512 bool q8_0_quantize16_avx512(const float* x, uint8_t* out) {
  constexpr size_t bb = kernels::ggml_block_bytes(GgmlType::kQ8_0);
  __m512 m[16];
  __mmask16 bad = 0;
  for (int b = 0; b < 16; ++b) {
    const __m512 v0 = _mm512_loadu_ps(x + 32 * b), v1 = _mm512_loadu_ps(x + 32 * b + 16);
    bad |= _mm512_fpclass_ps_mask(v0, kNonFiniteClass) | _mm512_fpclass_ps_mask(v1, kNonFiniteClass);
    m[b] = _mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1));
  }
  const __m512 d = _mm512_div_ps(hmax16_avx512(m), _mm512_set1_ps(127.0f));
  const __mmask16 nz = _mm512_cmp_ps_mask(d, _mm512_setzero_ps(), _CMP_NEQ_UQ);
  bad |= _mm512_cmp_ps_mask(d, _mm512_set1_ps(kernels::kFp16Max), _CMP_NLE_UQ);
  alignas(64) float id[16];
  _mm512_store_ps(id, _mm512_maskz_div_ps(nz, _mm512_set1_ps(1.0f), d));
  alignas(32) uint16_t dh[16];
  _mm256_store_si256(reinterpret_cast<__m256i*>(dh),
                     _mm512_cvtps_ph(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (int b = 0; b < 16; ++b) {
    uint8_t* o = out + bb * b;
    kernels::store_u16(o, dh[b]);
    const __m512 vid = _mm512_set1_ps(id[b]);
    for (int k = 0; k < 2; ++k) {
      __m512 r = round_away_avx512(_mm512_mul_ps(_mm512_loadu_ps(x + 32 * b + 16 * k), vid));
      r = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(r, r, _CMP_ORD_Q), r);  // NaN -> 0
      r = _mm512_min_ps(_mm512_max_ps(r, _mm512_set1_ps(-127.0f)), _mm512_set1_ps(127.0f));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 2 + 16 * k),
                       _mm512_cvtsepi32_epi8(_mm512_cvttps_epi32(r)));
    }
  }
  return bad == 0;
}

// _mm512_shuffle_ps on integer lanes.
template <int kImm>
KVWB_AVX512 inline __m512i shuf_ps_i32(__m512i a, __m512i b) {
  return _mm512_castps_si512(_mm512_shuffle_ps(_mm512_castsi512_ps(a), _mm512_castsi512_ps(b), kImm));
}

// The q8_0 codes of 16 values p[0 … 16) at 1/d = id on the fast path (q8_0_quantize16_fast_avx512):
// trunc(v + (±0.49999997 with v's sign)) of v = p·id, as int32 lanes.
KVWB_AVX512 inline __m512i q8_0_codes16_avx512(const float* p, float id) {
  const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(p), _mm512_set1_ps(id));
  // (v & sign) | 0.49999997
  const __m512 h = _mm512_castsi512_ps(_mm512_ternarylogic_epi32(
      _mm512_castps_si512(v), _mm512_set1_epi32(static_cast<int>(0x80000000u)),
      _mm512_set1_epi32(0x3EFFFFFF), 0xEA));
  return _mm512_cvttps_epi32(_mm512_add_ps(v, h));
}


// hmax16_avx512 on the bit patterns of non-negative floats as unsigned integers: the same maximum
// for finite values (their order is the integer order), and NaN / ±infinity bits (above
// 0x7F7FFFFF) always win, so a block's result is non-finite exactly when one of its values is.
KVWB_AVX512 inline __m512i hmax16_u32_avx512(const __m512i m[16]) {
  __m512i t[8], u[4], w[2];
  for (int i = 0; i < 8; ++i)
    t[i] = _mm512_max_epu32(_mm512_shuffle_i32x4(m[2 * i], m[2 * i + 1], 0x44),
                            _mm512_shuffle_i32x4(m[2 * i], m[2 * i + 1], 0xEE));
  for (int i = 0; i < 4; ++i)
    u[i] = _mm512_max_epu32(_mm512_shuffle_i32x4(t[2 * i], t[2 * i + 1], 0x88),
                            _mm512_shuffle_i32x4(t[2 * i], t[2 * i + 1], 0xDD));
  for (int i = 0; i < 2; ++i)
    w[i] = _mm512_max_epu32(shuf_ps_i32<0x44>(u[2 * i], u[2 * i + 1]), shuf_ps_i32<0xEE>(u[2 * i], u[2 * i + 1]));
  const __m512i r = _mm512_max_epu32(shuf_ps_i32<0x88>(w[0], w[1]), shuf_ps_i32<0xDD>(w[0], w[1]));
  return _mm512_permutexvar_epi32(
      _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), r);
}

// q8_0 on 16 blocks with fewer vector operations than q8_0_quantize16_avx512, for the common case
// where every value is finite and every d is 0 or a normal float (|d| >= FLT_MIN). Then 1/d is
// finite and |x·(1/d)| <= 127·(1 + 2^-22) < 127.5, so the scalar kernel's NaN pinning and ±127
// clamp never act, and its roundf(v) equals trunc(v + copysign(0.49999997, v)) (checked
// exhaustively for every float |v| <= 200). The absmax runs on integer bits (the finite test comes
// with it), and two blocks' codes are packed with two saturating packs and one permute.
// Returns 1 when the 16 blocks are written, 0 when some value is not finite or some |d| > 65504
// (the caller raises), -1 when some d is subnormal (nothing written; q8_0_quantize16_avx512 then
// codes the 16 blocks).
KVWB_AVX512 int q8_0_quantize16_fast_avx512(const float* x, uint8_t* out) {
  constexpr size_t bb = kernels::ggml_block_bytes(GgmlType::kQ8_0);
  const __m512i abs_mask = _mm512_set1_epi32(0x7FFFFFFF);
  __m512i m[16];
  for (int b = 0; b < 16; ++b) {
    prefetch_block_ahead(x + 32 * b);
    m[b] = _mm512_max_epu32(_mm512_and_si512(_mm512_loadu_si512(x + 32 * b), abs_mask),
                            _mm512_and_si512(_mm512_loadu_si512(x + 32 * b + 16), abs_mask));
  }
  const __m512i amax_bits = hmax16_u32_avx512(m);
  if (_mm512_cmpgt_epu32_mask(amax_bits, _mm512_set1_epi32(0x7F7FFFFF)) != 0) return 0;
  const __m512 d = _mm512_div_ps(_mm512_castsi512_ps(amax_bits), _mm512_set1_ps(127.0f));
  if (_mm512_cmp_ps_mask(d, _mm512_set1_ps(kernels::kFp16Max), _CMP_GT_OQ) != 0) return 0;
  const __mmask16 nz = _mm512_cmp_ps_mask(d, _mm512_setzero_ps(), _CMP_NEQ_OQ);
  if ((_mm512_cmp_ps_mask(d, _mm512_set1_ps(FLT_MIN), _CMP_LT_OQ) & nz) != 0) return -1;
  alignas(64) float id[16];
  _mm512_store_ps(id, _mm512_maskz_div_ps(nz, _mm512_set1_ps(1.0f), d));
  alignas(32) uint16_t dh[16];
  _mm256_store_si256(reinterpret_cast<__m256i*>(dh),
                     _mm512_cvtps_ph(d, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  // lane order after packs_epi32 + packs_epi16 of (c0, c1) and (c2, c3): dword 4L + g holds
  // c_g[4L … 4L+3]; this permute puts c0, c1, c2, c3 in order.
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  for (int b = 0; b < 16; b += 2) {
    const float* xb = x + 32 * b;
    const __m512i c0 = q8_0_codes16_avx512(xb, id[b]), c1 = q8_0_codes16_avx512(xb + 16, id[b]);
    const __m512i c2 = q8_0_codes16_avx512(xb + 32, id[b + 1]);
    const __m512i c3 = q8_0_codes16_avx512(xb + 48, id[b + 1]);
    const __m512i q = _mm512_permutexvar_epi32(
        order, _mm512_packs_epi16(_mm512_packs_epi32(c0, c1), _mm512_packs_epi32(c2, c3)));
    uint8_t* o = out + bb * b;
    std::memcpy(o, &dh[b], 2);  // little-endian host (x86)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + 2), _mm512_castsi512_si256(q));
    std::memcpy(o + bb, &dh[b + 1], 2);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + bb + 2), _mm512_extracti64x4_epi64(q, 1));
  }
  return 1;
}

template <GgmlType T>
KVWB_AVX512 bool ggml_quantize_blocks_avx512(const float* x, size_t n, uint8_t* out,
                                             uint64_t& clipped) {
  constexpr size_t bb = kernels::ggml_block_bytes(T);
  constexpr int kNonFinite = kNonFiniteClass;
  __mmask16 bad = 0;
  bool in_range = true;
  uint64_t clip = 0;
  size_t b = 0;
  if constexpr (T == GgmlType::kQ8_0)
    for (; b + 16 <= n; b += 16, x += 16 * kGgmlBlock, out += 16 * bb) {
      const int fast = q8_0_quantize16_fast_avx512(x, out);
      if (fast == 0) return false;
      if (fast < 0) in_range &= q8_0_quantize16_avx512(x, out);
    }
  for (; b < n; ++b, x += kGgmlBlock, out += bb) {
    bad |= _mm512_fpclass_ps_mask(_mm512_loadu_ps(x), kNonFinite) |
           _mm512_fpclass_ps_mask(_mm512_loadu_ps(x + 16), kNonFinite);
    const GgmlFields f =
        T == GgmlType::kQ8_0 ? q8_0_quantize_avx512(x, out) : q4_0_quantize_avx512(x, out);
    clip += f.clipped;
    in_range &= std::fabs(f.d) <= kernels::kFp16Max;
    kernels::store_u16(out, kernels::f32_to_f16_bits(f.d));
  }
  clipped += clip;
  return bad == 0 && in_range;
}

// q8_0 decode of 16 blocks: the 16 fp16 d converted and finite-tested as one vector, then per
// block two sign-extends, conversions and multiplies (each lane the scalar q·d). Returns false,
// writing nothing, when some d is not finite.
KVWB_AVX512 bool q8_0_dequantize16_avx512(const uint8_t* in, float* x) {
  constexpr size_t bb = kernels::ggml_block_bytes(GgmlType::kQ8_0);
  alignas(32) uint16_t dh[16];
  for (int b = 0; b < 16; ++b) std::memcpy(&dh[b], in + bb * b, 2);  // little-endian host (x86)
  const __m256i h = _mm256_load_si256(reinterpret_cast<const __m256i*>(dh));
  const __m256i e = _mm256_set1_epi16(0x7C00);
  if (_mm256_cmpeq_epi16_mask(_mm256_and_si256(h, e), e) != 0) return false;
  alignas(64) float d[16];
  _mm512_store_ps(d, _mm512_cvtph_ps(h));
  for (int b = 0; b < 16; ++b) {
    prefetch_block_ahead(x + 32 * b);
    const uint8_t* q = in + bb * b + 2;
    const __m512 vd = _mm512_set1_ps(d[b]);
    for (int k = 0; k < 2; ++k) {
      const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + 16 * k));
      _mm512_storeu_ps(x + 32 * b + 16 * k,
                       _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(c)), vd));
    }
  }
  return true;
}

template <GgmlType T>
KVWB_AVX512 size_t ggml_dequantize_blocks_avx512(const uint8_t* in, size_t n, float* x) {
  constexpr size_t bb = kernels::ggml_block_bytes(T);
  size_t b = 0;
  if constexpr (T == GgmlType::kQ8_0)
    for (; b + 16 <= n; b += 16, in += 16 * bb, x += 16 * kGgmlBlock) {
      if (!q8_0_dequantize16_avx512(in, x)) break;  // the per-block loop stops at the bad d
    }
  for (; b < n; ++b, in += bb, x += kGgmlBlock) {
    const uint16_t h = kernels::load_u16(in);
    if (!kernels::f16_bits_finite(h)) return b;
    const float d = _cvtsh_ss(h);
    if constexpr (T == GgmlType::kQ8_0)
      q8_0_dequantize_avx512(in, d, x);
    else
      q4_0_dequantize_avx512(in, d, x);
  }
  return n;
}

KVWB_AVX512 size_t f32_to_bf16_avx512(const float* x, size_t n, uint8_t* out) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i xi = _mm512_loadu_si512(x + i);
    const __m512i absx = _mm512_and_si512(xi, _mm512_set1_epi32(0x7FFFFFFF));
    const __mmask16 nan = _mm512_cmpgt_epi32_mask(absx, _mm512_set1_epi32(0x7F800000));
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(xi, 16), _mm512_set1_epi32(1));
    __m512i b = _mm512_srli_epi32(
        _mm512_add_epi32(xi, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), odd)), 16);
    b = _mm512_mask_or_epi32(b, nan, _mm512_srli_epi32(xi, 16), _mm512_set1_epi32(0x40));
    const __mmask16 inf = _mm512_cmpgt_epi32_mask(_mm512_and_si512(b, _mm512_set1_epi32(0x7FFF)),
                                                  _mm512_set1_epi32(0x7F7F));
    if (inf != 0) break;
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 2 * i), _mm512_cvtepi32_epi16(b));
  }
  return i + f32_to_bf16_avx2(x + i, n - i, out + 2 * i);
}

KVWB_AVX512 size_t bf16_to_f32_avx512(const uint8_t* in, size_t n, float* out) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i b =
        _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(in + 2 * i)));
    const __m512i e = _mm512_and_si512(b, _mm512_set1_epi32(0x7F80));
    if (_mm512_cmpeq_epi32_mask(e, _mm512_set1_epi32(0x7F80)) != 0) break;
    _mm512_storeu_si512(out + i, _mm512_slli_epi32(b, 16));
  }
  return i + bf16_to_f32_avx2(in + 2 * i, n - i, out + i);
}

KVWB_AVX512 size_t first_non_finite_avx512(const float* x, size_t n) {
  const __m512i e = _mm512_set1_epi32(0x7F800000);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __mmask16 any = 0;
    for (int k = 0; k < 4; ++k)
      any |= _mm512_cmpeq_epi32_mask(_mm512_and_si512(_mm512_loadu_si512(x + i + 16 * k), e), e);
    if (any != 0) break;
  }
  return i + first_non_finite_avx2(x + i, n - i);
}

#endif  // KVWB_SIMD_X86

}  // namespace

GgmlFields ggml_quantize(Path p, GgmlType t, const float* x, uint8_t* out) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512) {
    if (t == GgmlType::kQ8_0) return q8_0_quantize_avx512(x, out);
    if (t == GgmlType::kQ4_0) return q4_0_quantize_avx512(x, out);
  } else if (p == Path::kAvx2) {
    if (t == GgmlType::kQ8_0) return q8_0_quantize_avx2(x, out);
    if (t == GgmlType::kQ4_0) return q4_0_quantize_avx2(x, out);
  }
#endif
  (void)p;
  return kernels::ggml_quantize_codes(t, x, out);
}

void ggml_dequantize(Path p, GgmlType t, const uint8_t* in, float d, float m, float* x) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512) {
    if (t == GgmlType::kQ8_0) return q8_0_dequantize_avx512(in, d, x);
    if (t == GgmlType::kQ4_0) return q4_0_dequantize_avx512(in, d, x);
  } else if (p == Path::kAvx2) {
    if (t == GgmlType::kQ8_0) return q8_0_dequantize_avx2(in, d, x);
    if (t == GgmlType::kQ4_0) return q4_0_dequantize_avx2(in, d, x);
  }
#endif
  (void)p;
  kernels::ggml_dequantize_codes(t, in, d, m, x);
}

bool ggml_quantize_blocks(Path p, GgmlType t, const float* x, size_t n, uint8_t* out,
                          uint64_t& clipped) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512) {
    if (t == GgmlType::kQ8_0) return ggml_quantize_blocks_avx512<GgmlType::kQ8_0>(x, n, out, clipped);
    if (t == GgmlType::kQ4_0) return ggml_quantize_blocks_avx512<GgmlType::kQ4_0>(x, n, out, clipped);
  } else if (p == Path::kAvx2) {
    if (t == GgmlType::kQ8_0) return ggml_quantize_blocks_avx2<GgmlType::kQ8_0>(x, n, out, clipped);
    if (t == GgmlType::kQ4_0) return ggml_quantize_blocks_avx2<GgmlType::kQ4_0>(x, n, out, clipped);
  }
#endif
  (void)p, (void)t, (void)x, (void)n, (void)out, (void)clipped;
  return false;
}

size_t ggml_dequantize_blocks(Path p, GgmlType t, const uint8_t* in, size_t n, float* x) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512) {
    if (t == GgmlType::kQ8_0) return ggml_dequantize_blocks_avx512<GgmlType::kQ8_0>(in, n, x);
    if (t == GgmlType::kQ4_0) return ggml_dequantize_blocks_avx512<GgmlType::kQ4_0>(in, n, x);
  } else if (p == Path::kAvx2) {
    if (t == GgmlType::kQ8_0) return ggml_dequantize_blocks_avx2<GgmlType::kQ8_0>(in, n, x);
    if (t == GgmlType::kQ4_0) return ggml_dequantize_blocks_avx2<GgmlType::kQ4_0>(in, n, x);
  }
#endif
  const size_t bb = kernels::ggml_block_bytes(t);
  const bool has_m = kernels::ggml_has_min(t);
  for (size_t b = 0; b < n; ++b, in += bb, x += kGgmlBlock) {
    const uint16_t hd = kernels::load_u16(in);
    const uint16_t hm = has_m ? kernels::load_u16(in + 2) : uint16_t{0};
    if (!kernels::f16_bits_finite(hd) || !kernels::f16_bits_finite(hm)) return b;
    ggml_dequantize(p, t, in, kernels::f16_bits_to_f32(hd), kernels::f16_bits_to_f32(hm), x);
  }
  return n;
}

size_t f32_to_bf16_row(Path p, const float* x, size_t n, uint8_t* out) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512) return f32_to_bf16_avx512(x, n, out);
  if (p == Path::kAvx2) return f32_to_bf16_avx2(x, n, out);
#endif
  (void)p;
  for (size_t i = 0; i < n; ++i) {
    const uint16_t b = kernels::f32_to_bf16_bits(x[i]);
    if ((b & 0x7FFFu) >= 0x7F80u) return i;
    kernels::store_u16(out + 2 * i, b);
  }
  return n;
}

void wht(Path p, float* v, size_t n) {
#if KVWB_SIMD_X86
  if (p != Path::kScalar && n >= 8) return wht_avx2(v, n);
#endif
  (void)p;
  kernels::wht_pow2(v, n);
}

void hadamard_chunks(Path p, float* v, size_t d, size_t n_rot) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(n_rot));
  for (size_t c = 0; c < d; c += n_rot) {
    wht(p, v + c, n_rot);
    for (size_t j = c; j < c + n_rot; ++j) v[j] *= scale;
  }
}

float turbo_encode_group(Path p, const kernels::TurboTables& t, const float* s1, const float* s2,
                         const float* x, uint8_t* block, float* y) {
#if KVWB_SIMD_X86
  if (p != Path::kScalar) return turbo_encode_avx2(t, s1, s2, x, block, y);
#endif
  (void)p;
  return kernels::turbo_encode_group(t, s1, s2, x, block, y);
}

void turbo_encode_groups(Path p, const kernels::TurboTables& t, const float* s1, const float* s2,
                         const float* x, size_t count, uint8_t* blocks, float* norms) {
  constexpr size_t G = kernels::kTurboGroup;
  size_t i = 0;
#if KVWB_SIMD_X86
  if (p != Path::kScalar)
    for (; i + 8 <= count; i += 8)
      turbo_encode8_avx2(t, s1, s2, x + i * G, blocks + i * t.block_bytes, norms + i,
                         p == Path::kAvx512);
#endif
  float y[G];
  for (; i < count; ++i)
    norms[i] = turbo_encode_group(p, t, s1, s2, x + i * G, blocks + i * t.block_bytes, y);
}

void turbo_decode_group(Path p, const kernels::TurboTables& t, const float* s1, const float* s2,
                        const uint8_t* block, float norm, float* x) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512) return turbo_decode_avx512(t, s1, s2, block, norm, x);
  if (p == Path::kAvx2) return turbo_decode_avx2(t, s1, s2, block, norm, x);
#endif
  (void)p;
  kernels::turbo_decode_group(t, s1, s2, block, norm, x);
}

size_t first_non_finite(Path p, const float* x, size_t n) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512) return first_non_finite_avx512(x, n);
  if (p == Path::kAvx2) return first_non_finite_avx2(x, n);
#endif
  (void)p;
  for (size_t i = 0; i < n; ++i)
    if ((kernels::f32_bits(x[i]) & 0x7F800000u) == 0x7F800000u) return i;
  return n;
}

void f16_to_f32_row(Path p, const uint16_t* in, size_t n, float* out) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512 || p == Path::kAvx2) return f16_to_f32_avx2(in, n, out);
#endif
  (void)p;
  for (size_t i = 0; i < n; ++i) out[i] = kernels::f16_bits_to_f32(in[i]);
}

size_t bf16_to_f32_row(Path p, const uint8_t* in, size_t n, float* out) {
#if KVWB_SIMD_X86
  if (p == Path::kAvx512) return bf16_to_f32_avx512(in, n, out);
  if (p == Path::kAvx2) return bf16_to_f32_avx2(in, n, out);
#endif
  (void)p;
  for (size_t i = 0; i < n; ++i) {
    const uint16_t b = kernels::load_u16(in + 2 * i);
    if ((b & 0x7F80u) == 0x7F80u) return i;
    out[i] = kernels::bf16_bits_to_f32(b);
  }
  return n;
}

}  // namespace kvwb::codec::simd
