#pragma once
// The per-work-item bodies of the CUDA peer kernels (peer_kernels.cu): work item i of each kernel
// as a KVWB_HD function, so the device kernels and the host emulation (peer_emulate.cpp, which
// runs every item in a loop) execute the same code. Atomics are the only difference: device
// atomics there, plain updates on the (single-threaded) host. Layouts are those of the CPU codecs
// (codec/codecs/*.cpp) and peer_device.h.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "codec/cuda/peer_device.h"
#include "codec/kernels/bitpack.h"
#include "codec/kernels/fp8.h"
#include "codec/kernels/ggml.h"
#include "codec/kernels/half.h"
#include "codec/kernels/hd.h"
#include "codec/kernels/kivi.h"
#include "codec/kernels/turbo.h"

namespace kvwb::codec::cuda::peer {

namespace k = kvwb::codec::kernels;

/// Largest ggml work chunk (the Hadamard chunk, or one 32-value block without rotation).
inline constexpr size_t kMaxGgmlChunk = kMaxGgmlChunkValues;

KVWB_HD inline void flag_or(uint32_t* p, uint32_t v) {
#if defined(__CUDA_ARCH__)
  atomicOr(p, v);
#else
  *p |= v;
#endif
}
KVWB_HD inline void count_add(unsigned long long* p, unsigned long long v) {
#if defined(__CUDA_ARCH__)
  atomicAdd(p, v);
#else
  *p += v;
#endif
}
KVWB_HD inline bool finite_f32(float v) { return (k::f32_bits(v) & 0x7F800000u) != 0x7F800000u; }

/// Shape of a batch as the kernels need it (passed by value).
struct Shape {
  size_t S, H, T, D;
  bool pooled;
  size_t units, unit_rows, unit_payload;
};

/// Row index in [S, H, T] of unit u's row r (see PeerJob).
KVWB_HD inline size_t src_row(const Shape& sh, size_t u, size_t r) {
  if (!sh.pooled) return u * sh.T + r;
  const size_t h = r % sh.H, t = r / sh.H;
  return (u * sh.H + h) * sh.T + t;
}

KVWB_HD inline bool fp16_ok(float v) { return std::fabs(v) <= k::kFp16Max; }

// ---- turbo2/3/4 --------------------------------------------------------------------------------

struct TurboParams {
  k::TurboSigns s1, s2;
  k::TurboTables t;
  size_t groups;  // ceil(D / 128)
};

/// Work item i of turbo encode: x and y are 128 floats of scratch (shared memory on the device).
KVWB_HD inline void turbo_encode_at(size_t i, const Shape& sh, const TurboParams& p,
                                    const float* __restrict__ rows, uint8_t* __restrict__ payload,
                                    uint32_t* flags, float* x, float* y) {
  if (i >= sh.units * sh.unit_rows * p.groups) return;
  const size_t g = i % p.groups, r = (i / p.groups) % sh.unit_rows, u = i / (p.groups * sh.unit_rows);
  const float* src = rows + src_row(sh, u, r) * sh.D + g * k::kTurboGroup;
  const size_t cnt = sh.D - g * k::kTurboGroup < k::kTurboGroup ? sh.D - g * k::kTurboGroup
                                                                 : k::kTurboGroup;
  bool finite = true;
  for (size_t j = 0; j < k::kTurboGroup; ++j) {
    x[j] = j < cnt ? src[j] : 0.0f;
    finite = finite && finite_f32(x[j]);
  }
  if (!finite) flag_or(&flags[u], kFlagNonFinite);
  uint8_t* block = payload + u * sh.unit_payload + (r * p.groups + g) * p.t.block_bytes;
  const float norm = k::turbo_encode_group(p.t, p.s1.value, p.s2.value, x, block, y);
  if (!fp16_ok(norm)) flag_or(&flags[u], kFlagFp16Range);
  k::store_u16(block, k::f32_to_f16_bits(norm));
}

KVWB_HD inline void turbo_decode_at(size_t i, const Shape& sh, const TurboParams& p, const uint8_t* __restrict__ payload,
                             float* __restrict__ out) {
  if (i >= sh.units * sh.unit_rows * p.groups) return;
  const size_t g = i % p.groups, r = (i / p.groups) % sh.unit_rows, u = i / (p.groups * sh.unit_rows);
  const uint8_t* block = payload + u * sh.unit_payload + (r * p.groups + g) * p.t.block_bytes;
  float x[k::kTurboGroup];
  k::turbo_decode_group(p.t, p.s1.value, p.s2.value, block, k::f16_bits_to_f32(k::load_u16(block)),
                        x);
  float* dst = out + src_row(sh, u, r) * sh.D + g * k::kTurboGroup;
  const size_t cnt = sh.D - g * k::kTurboGroup < k::kTurboGroup ? sh.D - g * k::kTurboGroup
                                                                 : k::kTurboGroup;
  for (size_t j = 0; j < cnt; ++j) dst[j] = x[j];
}

// ---- ggml block quantisers ---------------------------------------------------------------------

struct GgmlParams {
  k::GgmlType type;
  size_t block_bytes;
  size_t chunk;   // values per thread: n_rot, or 32 without rotation
  size_t n_rot;   // 0: no rotation
  size_t chunks;  // D / chunk
};

KVWB_HD inline void ggml_encode_at(size_t i, const Shape& sh, const GgmlParams& p, const float* __restrict__ rows,
                            uint8_t* __restrict__ payload, uint32_t* flags,
                            unsigned long long* clipped) {
  if (i >= sh.units * sh.unit_rows * p.chunks) return;
  const size_t c = i % p.chunks, r = (i / p.chunks) % sh.unit_rows, u = i / (p.chunks * sh.unit_rows);
  const float* src = rows + src_row(sh, u, r) * sh.D + c * p.chunk;
  float x[kMaxGgmlChunk];
  bool finite = true;
  for (size_t j = 0; j < p.chunk; ++j) {
    x[j] = src[j];
    finite = finite && finite_f32(x[j]);
  }
  if (!finite) flag_or(&flags[u], kFlagNonFinite);
  if (p.n_rot != 0) k::hadamard_chunks_pow2(x, p.chunk, p.n_rot);
  const size_t blocks_per_row = sh.D / k::kGgmlBlock;
  const size_t blocks = p.chunk / k::kGgmlBlock;
  uint8_t* out = payload + u * sh.unit_payload +
                 (r * blocks_per_row + c * blocks) * p.block_bytes;
  unsigned long long clip = 0;
  bool range_ok = true;
  for (size_t b = 0; b < blocks; ++b, out += p.block_bytes) {
    const k::GgmlFields f = k::ggml_quantize_codes(p.type, x + b * k::kGgmlBlock, out);
    clip += f.clipped;
    range_ok = range_ok && fp16_ok(f.d);
    k::store_u16(out, k::f32_to_f16_bits(f.d));
    if (f.has_m) {
      range_ok = range_ok && fp16_ok(f.m);
      k::store_u16(out + 2, k::f32_to_f16_bits(f.m));
    }
  }
  if (!range_ok) flag_or(&flags[u], kFlagFp16Range);
  if (clip) count_add(&clipped[u], clip);
}

KVWB_HD inline void ggml_decode_at(size_t i, const Shape& sh, const GgmlParams& p, const uint8_t* __restrict__ payload,
                            float* __restrict__ out) {
  if (i >= sh.units * sh.unit_rows * p.chunks) return;
  const size_t c = i % p.chunks, r = (i / p.chunks) % sh.unit_rows, u = i / (p.chunks * sh.unit_rows);
  const size_t blocks_per_row = sh.D / k::kGgmlBlock;
  const size_t blocks = p.chunk / k::kGgmlBlock;
  const uint8_t* in = payload + u * sh.unit_payload +
                      (r * blocks_per_row + c * blocks) * p.block_bytes;
  float x[kMaxGgmlChunk];
  const bool has_m = k::ggml_has_min(p.type);
  for (size_t b = 0; b < blocks; ++b, in += p.block_bytes) {
    const float d = k::f16_bits_to_f32(k::load_u16(in));
    const float m = has_m ? k::f16_bits_to_f32(k::load_u16(in + 2)) : 0.0f;
    k::ggml_dequantize_codes(p.type, in, d, m, x + b * k::kGgmlBlock);
  }
  if (p.n_rot != 0) k::hadamard_chunks_pow2(x, p.chunk, p.n_rot);
  float* dst = out + src_row(sh, u, r) * sh.D + c * p.chunk;
  for (size_t j = 0; j < p.chunk; ++j) dst[j] = x[j];
}

// ---- KIVI (per_head units only) -----------------------------------------------------------------

struct KiviParams {
  bool k_stream;
  unsigned bits;
  size_t group;        // values per group (G for K, G_V for V)
  size_t groups;       // groups per unit
  size_t quant_rows;   // quantised prefix rows
  size_t group_bytes;  // packed codes + 4
  size_t quant_bytes;  // groups · group_bytes
};

// The first value and the stride of group gi of a unit (layout of codec/codecs/kivi.cpp).
KVWB_HD inline size_t kivi_group_start(const Shape& sh, const KiviParams& p, size_t gi,
                                          size_t& stride) {
  if (p.k_stream) {
    const size_t n_tok_groups = p.quant_rows / p.group;
    const size_t j = gi / n_tok_groups, a = gi % n_tok_groups;
    stride = sh.D;
    return a * p.group * sh.D + j;
  }
  const size_t per_row = sh.D / p.group;
  const size_t t = gi / per_row, c = gi % per_row;
  stride = 1;
  return t * sh.D + c * p.group;
}

KVWB_HD inline void kivi_encode_groups_at(size_t i, const Shape& sh, const KiviParams& p, const float* __restrict__ rows,
                                   uint8_t* __restrict__ payload, uint32_t* flags,
                                   unsigned long long* clipped) {
  if (i >= sh.units * p.groups) return;
  const size_t gi = i % p.groups, u = i / p.groups;
  size_t stride = 1;
  const float* x = rows + u * sh.T * sh.D + kivi_group_start(sh, p, gi, stride);
  bool finite = true;
  for (size_t j = 0; j < p.group; ++j) finite = finite && finite_f32(x[j * stride]);
  if (!finite) flag_or(&flags[u], kFlagNonFinite);
  float lo = 0.0f, hi = 0.0f;
  k::kivi_group_range(x, p.group, stride, lo, hi);
  const float delta = k::kivi_delta(lo, hi, p.bits);
  if (!fp16_ok(delta) || !fp16_ok(lo)) flag_or(&flags[u], kFlagFp16Range);
  const uint16_t dq = k::f32_to_f16_bits(delta), zq = k::f32_to_f16_bits(lo);
  uint16_t codes[k::kKiviMaxGroup];
  const uint32_t clip = k::kivi_quantize_codes(x, p.group, stride, p.bits, k::f16_bits_to_f32(dq),
                                               k::f16_bits_to_f32(zq), codes);
  uint8_t* out = payload + u * sh.unit_payload + gi * p.group_bytes;
  k::pack_bits(codes, p.group, p.bits, out);
  const size_t cb = k::packed_bytes(p.group, p.bits);
  k::store_u16(out + cb, dq);
  k::store_u16(out + cb + 2, zq);
  if (clip) count_add(&clipped[u], clip);
}

KVWB_HD inline void kivi_encode_tail_at(size_t i, const Shape& sh, const KiviParams& p, const float* __restrict__ rows,
                                 uint8_t* __restrict__ payload, uint32_t* flags) {
  const size_t tail = (sh.T - p.quant_rows) * sh.D;
  if (i >= sh.units * tail) return;
  const size_t e = i % tail, u = i / tail;
  const float v = rows[u * sh.T * sh.D + p.quant_rows * sh.D + e];
  if (!finite_f32(v)) flag_or(&flags[u], kFlagNonFinite);
  if (!fp16_ok(v)) flag_or(&flags[u], kFlagFp16Range);
  k::store_u16(payload + u * sh.unit_payload + p.quant_bytes + 2 * e, k::f32_to_f16_bits(v));
}

KVWB_HD inline void kivi_decode_groups_at(size_t i, const Shape& sh, const KiviParams& p, const uint8_t* __restrict__ payload,
                                   float* __restrict__ out) {
  if (i >= sh.units * p.groups) return;
  const size_t gi = i % p.groups, u = i / p.groups;
  size_t stride = 1;
  float* x = out + u * sh.T * sh.D + kivi_group_start(sh, p, gi, stride);
  const uint8_t* in = payload + u * sh.unit_payload + gi * p.group_bytes;
  const size_t cb = k::packed_bytes(p.group, p.bits);
  uint16_t codes[k::kKiviMaxGroup];
  k::unpack_bits(in, p.group, p.bits, codes);
  k::kivi_dequantize_codes(codes, p.group, stride, k::f16_bits_to_f32(k::load_u16(in + cb)),
                           k::f16_bits_to_f32(k::load_u16(in + cb + 2)), x);
}

KVWB_HD inline void kivi_decode_tail_at(size_t i, const Shape& sh, const KiviParams& p, const uint8_t* __restrict__ payload,
                                 float* __restrict__ out) {
  const size_t tail = (sh.T - p.quant_rows) * sh.D;
  if (i >= sh.units * tail) return;
  const size_t e = i % tail, u = i / tail;
  out[u * sh.T * sh.D + p.quant_rows * sh.D + e] =
      k::f16_bits_to_f32(k::load_u16(payload + u * sh.unit_payload + p.quant_bytes + 2 * e));
}

// ---- fp8_e4m3 and bf16: one value per thread -----------------------------------------------------

/// The batch scale: a scale fixed by the host (> 0), else absmax from the device, else 1.
KVWB_HD inline float fp8_scale(float fixed, bool absmax, const unsigned int* absmax_bits_ptr) {
  if (fixed > 0.0f) return fixed;
  return absmax ? k::fp8_absmax_scale(k::bits_f32(*absmax_bits_ptr)) : 1.0f;
}

KVWB_HD inline void fp8_encode_at(size_t i, const Shape& sh, float fixed, bool absmax, const unsigned int* amax,
                           const float* __restrict__ rows, uint8_t* __restrict__ payload,
                           uint32_t* flags, unsigned long long* clipped) {
  const size_t n = sh.unit_rows * sh.D;
  if (i >= sh.units * n) return;
  const size_t e = i % n, u = i / n, r = e / sh.D, j = e % sh.D;
  const float v = rows[src_row(sh, u, r) * sh.D + j];
  if (!finite_f32(v)) flag_or(&flags[u], kFlagNonFinite);
  bool sat = false;
  payload[u * sh.unit_payload + e] = k::f32_to_e4m3(v / fp8_scale(fixed, absmax, amax), &sat);
  if (sat) count_add(&clipped[u], 1);
}

KVWB_HD inline void fp8_decode_at(size_t i, const Shape& sh, float fixed, bool absmax, const unsigned int* amax,
                           const uint8_t* __restrict__ payload, float* __restrict__ out) {
  const size_t n = sh.unit_rows * sh.D;
  if (i >= sh.units * n) return;
  const size_t e = i % n, u = i / n, r = e / sh.D, j = e % sh.D;
  out[src_row(sh, u, r) * sh.D + j] =
      k::e4m3_to_f32(payload[u * sh.unit_payload + e]) * fp8_scale(fixed, absmax, amax);
}

KVWB_HD inline void bf16_encode_at(size_t i, const Shape& sh, const float* __restrict__ rows, uint8_t* __restrict__ payload,
                            uint32_t* flags) {
  const size_t n = sh.unit_rows * sh.D;
  if (i >= sh.units * n) return;
  const size_t e = i % n, u = i / n, r = e / sh.D, j = e % sh.D;
  const float v = rows[src_row(sh, u, r) * sh.D + j];
  if (!finite_f32(v)) flag_or(&flags[u], kFlagNonFinite);
  const uint16_t b = k::f32_to_bf16_bits(v);
  if ((b & 0x7FFFu) >= 0x7F80u) flag_or(&flags[u], kFlagBf16Range);
  k::store_u16(payload + u * sh.unit_payload + 2 * e, b);
}

KVWB_HD inline void bf16_decode_at(size_t i, const Shape& sh, const uint8_t* __restrict__ payload, float* __restrict__ out) {
  const size_t n = sh.unit_rows * sh.D;
  if (i >= sh.units * n) return;
  const size_t e = i % n, u = i / n, r = e / sh.D, j = e % sh.D;
  out[src_row(sh, u, r) * sh.D + j] =
      k::bf16_bits_to_f32(k::load_u16(payload + u * sh.unit_payload + 2 * e));
}

// ---- host-side set-up shared by the device run and the emulation ------------------------------

inline Shape make_shape(const PeerJob& job) {
  Shape sh{};
  sh.S = job.sequences;
  sh.H = job.heads;
  sh.T = job.tokens;
  sh.D = job.dim;
  sh.pooled = job.pooled;
  sh.units = job.pooled ? sh.S : sh.S * sh.H;
  sh.unit_rows = job.pooled ? sh.T * sh.H : sh.T;
  sh.unit_payload = job.unit_payload;
  return sh;
}

inline TurboParams make_turbo_params(const PeerJob& job, const Shape& sh) {
  TurboParams p{};
  p.s1 = k::turbo_signs_table(1);
  p.s2 = k::turbo_signs_table(2);
  p.t = k::turbo_tables(job.bits);
  p.groups = (sh.D + k::kTurboGroup - 1) / k::kTurboGroup;
  return p;
}

/// The executor has checked n_rot <= kMaxGgmlChunk and that it divides D.
inline GgmlParams make_ggml_params(const PeerJob& job, const Shape& sh) {
  GgmlParams p{};
  p.type = static_cast<k::GgmlType>(job.ggml_type);
  p.block_bytes = k::ggml_block_bytes(p.type);
  p.n_rot = job.n_rot;
  p.chunk = job.n_rot ? job.n_rot : k::kGgmlBlock;
  p.chunks = sh.D / p.chunk;
  return p;
}

inline KiviParams make_kivi_params(const PeerJob& job) {
  KiviParams p{};
  p.k_stream = job.kivi_k;
  p.bits = job.bits;
  p.group = job.kivi_group;
  p.quant_rows = job.kivi_quant_rows;
  p.group_bytes = job.kivi_group_bytes;
  p.quant_bytes = job.kivi_quant_bytes;
  p.groups = p.group_bytes ? p.quant_bytes / p.group_bytes : 0;
  return p;
}

}  // namespace kvwb::codec::cuda::peer
