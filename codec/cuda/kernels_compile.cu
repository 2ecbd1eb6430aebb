// Compile-only proof that every shared kernel of codec/kernels/ is valid device code (C++17, no
// exceptions, no allocation, no host-only calls): each function is called from a trivial
// __global__ kernel. Nothing launches these; the CUDA executor's real kernels include the same
// headers. The target compiles with --fmad=false (kvwb::kernels), as byte-exact kernels must.
#include <cstddef>
#include <cstdint>

#include "codec/kernels/besicovitch.h"
#include "codec/kernels/bitpack.h"
#include "codec/kernels/fp8.h"
#include "codec/kernels/ggml.h"
#include "codec/kernels/half.h"
#include "codec/kernels/hd.h"
#include "codec/kernels/kakeya.h"
#include "codec/kernels/kivi.h"
#include "codec/kernels/lloyd_max.h"
#include "codec/kernels/rng.h"
#include "codec/kernels/turbo.h"
#include "codec/kernels/wht.h"

namespace kvwb::codec::cuda::compile_check {

namespace k = kvwb::codec::kernels;
namespace rng = kvwb::codec::rng;

__global__ void half_kernel(const float* in, uint16_t* h, float* out) {
  const unsigned i = threadIdx.x;
  h[2 * i] = k::f32_to_f16_bits(in[i]);
  h[2 * i + 1] = k::f32_to_bf16_bits(in[i]);
  out[i] = k::f16_bits_to_f32(h[2 * i]) + k::bf16_bits_to_f32(h[2 * i + 1]) +
           (k::f16_bits_finite(h[2 * i]) && k::bf16_bits_finite(h[2 * i + 1]) ? 1.0f : 0.0f) +
           k::bits_f32(k::f32_bits(in[i]));
  uint8_t b[2];
  k::store_u16(b, h[2 * i]);
  h[2 * i] = k::load_u16(b);
}

__global__ void rng_kernel(uint64_t seed, uint64_t* u, double* d, float* f) {
  const unsigned i = threadIdx.x;
  u[i] = rng::splitmix(seed, i) ^ rng::mix64(i);
  d[i] = rng::u01(u[i]) + rng::u01c(u[i]);
  f[i] = rng::normal(seed ^ rng::kTagOmega, i) * rng::wht_sign(seed, i);
}

__global__ void wht_kernel(float* v, const float* signs, uint64_t seed, size_t n, size_t* out) {
  float* row = v + threadIdx.x * n;
  k::wht_pow2(row, n);
  k::wht_rotate_signs(row, n, signs);
  k::wht_unrotate_signs(row, n, signs);
  k::wht_rotate_seed(row, n, seed);
  k::wht_unrotate_seed(row, n, seed);
  out[threadIdx.x] = k::next_pow2(n) + k::clog2(n) + (k::is_pow2(n) ? 1 : 0);
}

__global__ void lloyd_max_kernel(const float* s, uint16_t* a, uint16_t* b, unsigned bits) {
  const k::LloydMaxTable t = k::gaussian_lloyd_max(bits);
  const unsigned i = threadIdx.x;
  a[i] = k::quantize_nearest(s[i], t.value, t.size);
  b[i] = k::quantize_fast(s[i], t.value, t.size);
}

__global__ void bitpack_kernel(const uint16_t* values, size_t count, unsigned bits, uint8_t* bytes,
                               uint16_t* back) {
  uint8_t* dst = bytes + threadIdx.x * k::packed_bytes(count, bits);
  k::pack_bits(values + threadIdx.x * count, count, bits, dst);
  k::unpack_bits(dst, count, bits, back + threadIdx.x * count);
}

__global__ void ggml_kernel(const float* x, uint8_t* blocks, float* y, size_t d, size_t n_rot) {
  const unsigned t = threadIdx.x % 6;
  const auto type = static_cast<k::GgmlType>(t);
  float* row = const_cast<float*>(x) + threadIdx.x * d;
  k::hadamard_chunks_pow2(row, d, n_rot);
  uint8_t* block = blocks + threadIdx.x * 34;
  const k::GgmlFields f = k::ggml_quantize_codes(type, row, block);
  k::ggml_dequantize_codes(type, block, f.d, k::ggml_has_min(type) ? f.m : 0.0f,
                           y + threadIdx.x * k::kGgmlBlock);
  y[threadIdx.x] += static_cast<float>(f.clipped + k::ggml_block_bytes(type)) +
                    static_cast<float>(k::iq4nl_table().value[t]);
}

__global__ void turbo_kernel(const float* x, uint8_t* blocks, float* y, unsigned bits) {
  __shared__ float s1[k::kTurboGroup];
  __shared__ float s2[k::kTurboGroup];
  const k::TurboSigns a = k::turbo_signs_table(1);
  const k::TurboSigns b = k::turbo_signs_table(2);
  for (size_t j = 0; j < k::kTurboGroup; ++j) {
    s1[j] = a.value[j];
    s2[j] = b.value[j];
  }
  const k::TurboTables t = k::turbo_tables(bits);
  float scratch[k::kTurboGroup];
  uint8_t* block = blocks + threadIdx.x * 68;
  const float norm =
      k::turbo_encode_group(t, s1, s2, x + threadIdx.x * k::kTurboGroup, block, scratch);
  k::turbo_decode_group(t, s1, s2, block, norm, y + threadIdx.x * k::kTurboGroup);
}

__global__ void kivi_kernel(const float* x, size_t n, size_t stride, unsigned bits, uint16_t* codes,
                            float* y, uint32_t* clipped) {
  float lo = 0.0f, hi = 0.0f;
  k::kivi_group_range(x, n, stride, lo, hi);
  const float dq = k::f16_bits_to_f32(k::f32_to_f16_bits(k::kivi_delta(lo, hi, bits)));
  const float zq = k::f16_bits_to_f32(k::f32_to_f16_bits(lo));
  clipped[threadIdx.x] = k::kivi_quantize_codes(x, n, stride, bits, dq, zq, codes);
  k::kivi_dequantize_codes(codes, n, stride, dq, zq, y);
  (void)k::kKiviMaxGroup;
}

__global__ void fp8_kernel(const float* x, uint8_t* codes, float* y, float absmax) {
  const unsigned i = threadIdx.x;
  bool sat = false;
  const float scale = k::fp8_absmax_scale(absmax);
  codes[i] = k::f32_to_e4m3(x[i] / scale, &sat);
  y[i] = k::e4m3_to_f32(codes[i]) * scale + (sat ? k::kE4m3Max : 0.0f);
}

__global__ void besicovitch_kernel(const float* x, const float* codebook, size_t m, unsigned g,
                                   float* y) {
  const k::BesiAssignment a = k::besi_assign(x + threadIdx.x * g, g, codebook, m);
  k::besi_decode_group(codebook + static_cast<size_t>(a.id) * g, g, a.alpha, nullptr,
                       y + threadIdx.x * g);
}

__global__ void kakeya_kernel(const float* c, const float* centre, float t_q, size_t d, float* r,
                              float* norm) {
  const float* row = c + threadIdx.x * d;
  norm[threadIdx.x] = k::norm_f32(row, d);
  k::segment_residual(row, d, centre, t_q, r + threadIdx.x * d);
  k::kakeya_row_coefficients(centre, r + threadIdx.x * d, t_q, d, r + threadIdx.x * d);
}

}  // namespace kvwb::codec::cuda::compile_check
