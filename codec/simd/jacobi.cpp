// Plane rotations in Eigen's per-element order (jacobi.h). Every element is independent: the
// vector paths only change how many elements one instruction handles, never an element's
// operations or their operand order (mul and add separate, -ffp-contract=off).
#include "codec/simd/jacobi.h"

#include "codec/simd/x86_targets.h"

namespace kvwb::codec::simd {

namespace {

// Eigen's scalar form (apply_rotation_in_the_plane_selector, non-vectorized path).
inline void rot_scalar(float* x, float* y, float c, float s) {
  const float xi = *x, yi = *y;
  *x = c * xi + s * yi;
  *y = -s * xi + c * yi;
}

// Eigen's packet form, one element: padd(pmul(c, x), pmul(s, y)), psub(pmul(c, y), pmul(s, x)).
inline void rot_packet_form(float* x, float* y, float c, float s) {
  const float xi = *x, yi = *y;
  *x = c * xi + s * yi;
  *y = c * yi - s * xi;
}

#if KVWB_SIMD_X86
KVWB_AVX512 void body_512(float* x, float* y, size_t n, float c, float s) {
  const __m512 vc = _mm512_set1_ps(c), vs = _mm512_set1_ps(s);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 xi = _mm512_loadu_ps(x + i), yi = _mm512_loadu_ps(y + i);
    _mm512_storeu_ps(x + i, _mm512_add_ps(_mm512_mul_ps(vc, xi), _mm512_mul_ps(vs, yi)));
    _mm512_storeu_ps(y + i, _mm512_sub_ps(_mm512_mul_ps(vc, yi), _mm512_mul_ps(vs, xi)));
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    const __m512 xi = _mm512_maskz_loadu_ps(m, x + i), yi = _mm512_maskz_loadu_ps(m, y + i);
    _mm512_mask_storeu_ps(x + i, m, _mm512_add_ps(_mm512_mul_ps(vc, xi), _mm512_mul_ps(vs, yi)));
    _mm512_mask_storeu_ps(y + i, m, _mm512_sub_ps(_mm512_mul_ps(vc, yi), _mm512_mul_ps(vs, xi)));
  }
}

KVWB_AVX2 void body_256(float* x, float* y, size_t n, float c, float s) {
  const __m256 vc = _mm256_set1_ps(c), vs = _mm256_set1_ps(s);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 xi = _mm256_loadu_ps(x + i), yi = _mm256_loadu_ps(y + i);
    _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_mul_ps(vc, xi), _mm256_mul_ps(vs, yi)));
    _mm256_storeu_ps(y + i, _mm256_sub_ps(_mm256_mul_ps(vc, yi), _mm256_mul_ps(vs, xi)));
  }
  for (; i < n; ++i) rot_packet_form(x + i, y + i, c, s);
}

// Strided x and y: gathered 16 elements at a time (a stride of 1 is a plain load), Eigen's
// scalar form on lanes, scattered back.
KVWB_AVX512 void strided_512(float* x, size_t incx, float* y, size_t incy, size_t n, float c,
                             float s) {
  const __m512 vc = _mm512_set1_ps(c), vs = _mm512_set1_ps(s), vns = _mm512_set1_ps(-s);
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i ix = _mm512_mullo_epi32(lane, _mm512_set1_epi32(static_cast<int>(incx)));
  const __m512i iy = _mm512_mullo_epi32(lane, _mm512_set1_epi32(static_cast<int>(incy)));
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    float* xp = x + i * incx;
    float* yp = y + i * incy;
    const __m512 xi = incx == 1 ? _mm512_loadu_ps(xp) : _mm512_i32gather_ps(ix, xp, 4);
    const __m512 yi = incy == 1 ? _mm512_loadu_ps(yp) : _mm512_i32gather_ps(iy, yp, 4);
    const __m512 xo = _mm512_add_ps(_mm512_mul_ps(vc, xi), _mm512_mul_ps(vs, yi));
    const __m512 yo = _mm512_add_ps(_mm512_mul_ps(vns, xi), _mm512_mul_ps(vc, yi));
    if (incx == 1)
      _mm512_storeu_ps(xp, xo);
    else
      _mm512_i32scatter_ps(xp, ix, xo, 4);
    if (incy == 1)
      _mm512_storeu_ps(yp, yo);
    else
      _mm512_i32scatter_ps(yp, iy, yo, 4);
  }
  for (; i < n; ++i) rot_scalar(x + i * incx, y + i * incy, c, s);
}
#endif

}  // namespace

void rotate_contiguous_f32(Path p, float* x, float* y, size_t n, size_t head, size_t body, float c,
                           float s) {
  for (size_t i = 0; i < head; ++i) rot_scalar(x + i, y + i, c, s);
#if KVWB_SIMD_X86
  if (p == Path::kAvx512)
    body_512(x + head, y + head, body - head, c, s);
  else if (p == Path::kAvx2)
    body_256(x + head, y + head, body - head, c, s);
  else
#else
  (void)p;
#endif
    for (size_t i = head; i < body; ++i) rot_packet_form(x + i, y + i, c, s);
  for (size_t i = body; i < n; ++i) rot_scalar(x + i, y + i, c, s);
}

void rotate_strided_f32(Path p, float* x, size_t incx, float* y, size_t incy, size_t n, float c,
                        float s) {
#if KVWB_SIMD_X86
  // 32-bit gather offsets: 15·inc elements of 4 bytes stay below 2^31.
  if (p == Path::kAvx512 && incx < (size_t{1} << 24) && incy < (size_t{1} << 24))
    return strided_512(x, incx, y, incy, n, c, s);
#else
  (void)p;
#endif
  for (size_t i = 0; i < n; ++i) rot_scalar(x + i * incx, y + i * incy, c, s);
}

void rotate_element_f32(float* x, float* y, float c, float s, bool packet_form) {
  if (packet_form)
    rot_packet_form(x, y, c, s);
  else
    rot_scalar(x, y, c, s);
}

}  // namespace kvwb::codec::simd
