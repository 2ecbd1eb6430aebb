#pragma once
// The per-work-item bodies of the CUDA Besicovitch kernels (besi_kernels.cu), as KVWB_HD functions
// the device kernels call once per thread and the host emulation (besi_emulate.cpp) calls for every
// item in turn. The math is codec/kernels/besicovitch.h (the CPU codec's own functions), so the
// payload bytes and decoded values equal the CPU's. A batch runs four passes:
//   1. besi_block_at   one item per (unit, block, column): the block record's u32 n_rows and, with
//                      subtract_mean, the column's f64 mean → f32 → fp16 (stored, and kept as f32);
//   2. besi_assign_at  one item per (unit, row, group): direction id and signed magnitude;
//   3. besi_pack_at    one item per (unit, row): max |α|, fp16 magnitudes or the scale and
//                      Lloyd-Max indices, the packed per-vector code;
//   4. besi_decode_at  one item per (unit, row, group): decoded from the payload bytes alone.
// Unit payload (docs/container-besicovitch.md, without header and parameter block): n_blocks block
// records [u32 n_rows][D fp16 mean, with subtract_mean][n_rows codes of bpv bytes]; every record
// but the last holds block_size rows, so block b starts at b · record_bytes.
#include <cstddef>
#include <cstdint>

#include "codec/cuda/peer_device.h"
#include "codec/cuda/peer_kernels.cuh"
#include "codec/kernels/besicovitch.h"
#include "codec/kernels/bitpack.h"
#include "codec/kernels/half.h"
#include "codec/kernels/hd.h"
#include "codec/kernels/lloyd_max.h"

namespace kvwb::codec::cuda::peer {

/// Besicovitch layout of a batch (passed by value to the kernels).
struct BesiParams {
  unsigned g, db;
  unsigned mb;             // 0: f16 magnitudes; 1..4: quantized
  bool mean;               // subtract_mean
  size_t groups;           // G = D / g
  size_t lines;            // codebook lines M = 2^db
  size_t block_size;       // rows per block record (the last may hold fewer)
  size_t n_blocks;         // block records per unit
  size_t id_bytes;         // packed direction ids per code
  size_t bpv;              // bytes per vector code
  size_t mean_bytes;       // 2·D with subtract_mean, else 0
  size_t record_bytes;     // 4 + mean_bytes + block_size · bpv
  k::LloydMaxTable table;  // Gaussian Lloyd-Max table at mb bits (size 0 in f16 mode)
};

/// Value `index` of a stream packed LSB-first at `bits` bits (kernels::unpack_bits' value, reading
/// only the bytes that hold it).
KVWB_HD inline uint16_t besi_unpack_at(const uint8_t* in, size_t index, unsigned bits) {
  const size_t bitpos = index * bits;
  const unsigned shift = static_cast<unsigned>(bitpos & 7);
  const unsigned nbytes = (shift + bits + 7) / 8;  // 1..3
  const uint8_t* p = in + (bitpos >> 3);
  uint32_t word = 0;
  for (unsigned b = 0; b < nbytes; ++b) word |= static_cast<uint32_t>(p[b]) << (8 * b);
  const uint32_t mask = bits >= 16 ? 0xFFFFu : ((1u << bits) - 1u);
  return static_cast<uint16_t>((word >> shift) & mask);
}

/// The code of unit u's row r in the payload.
KVWB_HD inline size_t besi_code_offset(const Shape& sh, const BesiParams& p, size_t u, size_t r) {
  return u * sh.unit_payload + (r / p.block_size) * p.record_bytes + 4 + p.mean_bytes +
         (r % p.block_size) * p.bpv;
}

/// Pass 1, item i < units · n_blocks · (mean ? D : 1). `means` is [units, n_blocks, D] f32 (the
/// fp16-rounded means the encoder subtracts); unused without subtract_mean.
KVWB_HD inline void besi_block_at(size_t i, const Shape& sh, const BesiParams& p,
                                  const float* __restrict__ rows, uint8_t* __restrict__ payload,
                                  float* __restrict__ means, uint32_t* flags) {
  const size_t cols = p.mean ? sh.D : 1;
  if (i >= sh.units * p.n_blocks * cols) return;
  const size_t j = i % cols, b = (i / cols) % p.n_blocks, u = i / (cols * p.n_blocks);
  const size_t r0 = b * p.block_size;
  const size_t n = sh.unit_rows - r0 < p.block_size ? sh.unit_rows - r0 : p.block_size;
  uint8_t* rec = payload + u * sh.unit_payload + b * p.record_bytes;
  if (j == 0) {
    const uint32_t n32 = static_cast<uint32_t>(n);
    k::store_u16(rec, static_cast<uint16_t>(n32 & 0xFFFFu));
    k::store_u16(rec + 2, static_cast<uint16_t>(n32 >> 16));
  }
  if (!p.mean) return;
  double sum = 0.0;  // column j summed in row order (the CPU's f64 accumulator)
  for (size_t t = 0; t < n; ++t)
    sum += static_cast<double>(rows[src_row(sh, u, r0 + t) * sh.D + j]);
  const float mu = k::besi_mean_value(sum, n);
  if (!fp16_ok(mu)) flag_or(&flags[u], kFlagFp16Range);  // NaN only from non-finite input
  const uint16_t h = k::f32_to_f16_bits(mu);
  k::store_u16(rec + 4 + 2 * j, h);
  means[(u * p.n_blocks + b) * sh.D + j] = k::f16_bits_to_f32(h);
}

/// Pass 2, item i < units · unit_rows · G: ids[i], alphas[i] ([units, unit_rows, G]). `g` is p.g
/// (a literal at the call site lets the compiler unroll the group loops). `codebook` [M, g].
KVWB_HD inline void besi_assign_at(size_t i, const Shape& sh, const BesiParams& p, unsigned g,
                                   const float* codebook, const float* __restrict__ rows,
                                   const float* __restrict__ means, uint16_t* __restrict__ ids,
                                   float* __restrict__ alphas, uint32_t* flags) {
  if (i >= sh.units * sh.unit_rows * p.groups) return;
  const size_t kg = i % p.groups, r = (i / p.groups) % sh.unit_rows,
               u = i / (p.groups * sh.unit_rows);
  const float* x = rows + src_row(sh, u, r) * sh.D + kg * g;
  bool finite = true;
  for (unsigned j = 0; j < g; ++j) finite = finite && finite_f32(x[j]);
  if (!finite) flag_or(&flags[u], kFlagNonFinite);
  const float* mean =
      p.mean ? means + (u * p.n_blocks + r / p.block_size) * sh.D + kg * g : nullptr;
  const k::BesiAssignment a = k::besi_assign_centred(x, mean, g, codebook, p.lines);
  ids[i] = a.id;
  alphas[i] = a.alpha;
}

/// Pass 3, item i < units · unit_rows (row i of [units, unit_rows]): writes the row's code.
/// `mags` is [units, unit_rows, G] scratch for the Lloyd-Max indices (quantized mode).
KVWB_HD inline void besi_pack_at(size_t i, const Shape& sh, const BesiParams& p,
                                 const uint16_t* __restrict__ ids, const float* __restrict__ alphas,
                                 uint16_t* __restrict__ mags, uint8_t* __restrict__ payload,
                                 uint32_t* flags) {
  if (i >= sh.units * sh.unit_rows) return;
  const size_t r = i % sh.unit_rows, u = i / sh.unit_rows;
  const float* al = alphas + i * p.groups;
  float amax = 0.0f;  // alphas are never NaN (a NaN dot product is never chosen)
  for (size_t kg = 0; kg < p.groups; ++kg) {
    const float a = al[kg] < 0.0f ? -al[kg] : al[kg];
    amax = amax < a ? a : amax;
  }
  if (!finite_f32(amax)) {  // a dot product overflowed f32: the CPU's FP16_RANGE
    flag_or(&flags[u], kFlagFp16Range);
    return;
  }
  uint8_t* code = payload + besi_code_offset(sh, p, u, r);
  k::pack_bits(ids + i * p.groups, p.groups, p.db, code);
  if (p.mb == 0) {
    bool ok = true;
    for (size_t kg = 0; kg < p.groups; ++kg) {
      ok = ok && fp16_ok(al[kg]);
      k::store_u16(code + p.id_bytes + 2 * kg, k::f32_to_f16_bits(al[kg]));
    }
    if (!ok) flag_or(&flags[u], kFlagFp16Range);
    return;
  }
  const float s = k::besi_scale(amax);
  if (!fp16_ok(s)) flag_or(&flags[u], kFlagFp16Range);
  uint16_t* m = mags + i * p.groups;
  for (size_t kg = 0; kg < p.groups; ++kg)
    m[kg] = k::besi_magnitude_index(al[kg], s, p.table.value, p.table.size);
  k::pack_bits(m, p.groups, p.mb, code + p.id_bytes);
  k::store_u16(code + p.bpv - 2, k::f32_to_f16_bits(s));
}

/// Pass 4, item i < units · unit_rows · G: group kg of unit u's row r decoded from the payload
/// into out [S, H, T, D]. `g` and `codebook` as in besi_assign_at.
KVWB_HD inline void besi_decode_at(size_t i, const Shape& sh, const BesiParams& p, unsigned g,
                                   const float* codebook, const uint8_t* __restrict__ payload,
                                   float* __restrict__ out) {
  if (i >= sh.units * sh.unit_rows * p.groups) return;
  const size_t kg = i % p.groups, r = (i / p.groups) % sh.unit_rows,
               u = i / (p.groups * sh.unit_rows);
  const uint8_t* rec = payload + u * sh.unit_payload + (r / p.block_size) * p.record_bytes;
  const uint8_t* code = payload + besi_code_offset(sh, p, u, r);
  const uint16_t id = besi_unpack_at(code, kg, p.db);
  float alpha;
  if (p.mb == 0) {
    alpha = k::f16_bits_to_f32(k::load_u16(code + p.id_bytes + 2 * kg));
  } else {
    const uint16_t m = besi_unpack_at(code + p.id_bytes, kg, p.mb);
    alpha = k::besi_dequantize(p.table.value[m], k::f16_bits_to_f32(k::load_u16(code + p.bpv - 2)));
  }
  float mean[k::kBesiMaxGroup];
  if (p.mean)
    for (unsigned j = 0; j < g; ++j)
      mean[j] = k::f16_bits_to_f32(k::load_u16(rec + 4 + 2 * (kg * g + j)));
  k::besi_decode_group(codebook + static_cast<size_t>(id) * g, g, alpha, p.mean ? mean : nullptr,
                       out + src_row(sh, u, r) * sh.D + kg * g);
}

// ---- host-side set-up shared by the device run and the emulation ------------------------------

inline BesiParams make_besi_params(const PeerJob& job, const Shape& sh) {
  BesiParams p{};
  p.g = job.besi.g;
  p.db = job.besi.db;
  p.mb = job.besi.mb;
  p.mean = job.besi.subtract_mean;
  p.groups = sh.D / p.g;
  p.lines = size_t{1} << p.db;
  p.block_size = job.besi.block_size;
  p.n_blocks = (sh.unit_rows + p.block_size - 1) / p.block_size;
  p.id_bytes = k::packed_bytes(p.groups, p.db);
  p.bpv = p.id_bytes + (p.mb == 0 ? 2 * p.groups : k::packed_bytes(p.groups, p.mb) + 2);
  p.mean_bytes = p.mean ? 2 * sh.D : 0;
  p.record_bytes = 4 + p.mean_bytes + p.block_size * p.bpv;
  p.table = k::gaussian_lloyd_max(p.mb);
  return p;
}

/// Runs a Besicovitch batch's four passes on the host, item by item (emulate_peer_batch's case).
/// `payload` (units · unit_payload bytes), `decoded` ([S, H, T, D]) and `flags` (units) are the
/// outputs, as on the device.
void emulate_besi_batch(const PeerJob& job, const Shape& sh, const float* rows, uint8_t* payload,
                        float* decoded, uint32_t* flags);

}  // namespace kvwb::codec::cuda::peer

#if defined(__CUDACC__)
namespace kvwb::codec::cuda {

/// Besicovitch device scratch of a PeerWorkspace (besi_kernels.cu): codebook, means, ids, α,
/// Lloyd-Max indices; buffers grow to the largest batch and are reused.
struct BesiDeviceState;
BesiDeviceState* besi_state_create();
void besi_state_destroy(BesiDeviceState* s);
/// Device bytes the scratch holds (0 for null).
size_t besi_state_bytes(const BesiDeviceState* s);

/// Enqueues a Besicovitch batch's four kernels on `stream`: d_rows [S, H, T, D] in, the payload
/// (units · unit_payload bytes), d_dec [S, H, T, D] and d_flags (cleared by the caller) out.
/// Throws CudaError when an allocation or the codebook upload fails.
void launch_besi(BesiDeviceState& s, const PeerJob& job, const peer::Shape& sh, const float* d_rows,
                 uint8_t* d_pay, float* d_dec, uint32_t* d_flags, cudaStream_t stream);

}  // namespace kvwb::codec::cuda
#endif
