#pragma once
// The units of a CUDA executor batch (executor.h unit order) as the CPU executor sees them: their
// UnitInfo and error prefix, their rows, and the CPU re-encode that reports a flagged unit's exact
// error. Private to codec/cuda/ (cuda_executor.cpp, kakeya_executor.cpp); host C++, no CUDA
// headers.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "base/errors.h"
#include "codec/codec.h"
#include "codec/executor.h"
#include "codec/format/tensor.h"

namespace kvwb::codec::cuda {

/// Where unit `u` sits (executor.h unit order), as the CPU executor labels it.
inline UnitInfo unit_info(const BatchRequest& r, size_t u, uint8_t flags) {
  const bool pooled = r.block_rows == BlockRows::kPooledHeads;
  UnitInfo info;
  info.sequence = static_cast<uint32_t>(pooled ? u : u / r.heads);
  info.kv_head = pooled ? kPooledHead : static_cast<uint16_t>(u % r.heads);
  info.layer = r.layer;
  info.n_kv_heads = r.n_kv_heads ? r.n_kv_heads : static_cast<uint16_t>(r.heads);
  info.stream = r.stream;
  info.block_rows = r.block_rows;
  info.block_size = r.block_size;
  info.domain_flags = flags;
  return info;
}

/// "sequence S, layer L, kv head H, stream K|V" (", pooled heads" for a pooled unit): the CPU
/// executor's prefix of a unit's errors.
inline std::string unit_where(const BatchRequest& r, const UnitInfo& info) {
  const bool pooled = r.block_rows == BlockRows::kPooledHeads;
  return "sequence " + std::to_string(info.sequence) + ", layer " + std::to_string(r.layer) +
         (pooled ? std::string(", pooled heads") : ", kv head " + std::to_string(info.kv_head)) +
         ", stream " + (r.stream == Stream::kK ? "K" : "V");
}

/// Row index in [S, H, T] of unit u's row `row` (pooled heads: row = t·H + h).
inline size_t unit_src_row(const BatchRequest& r, size_t u, size_t row) {
  if (r.block_rows != BlockRows::kPooledHeads) return u * r.tokens + row;
  return (u * r.heads + row % r.heads) * r.tokens + row / r.heads;
}

/// The first `n` rows of unit u of [S, H, T, D] x, in unit row order ([n, D]), gathered as the
/// CPU executor does.
inline std::vector<float> unit_rows_of(const float* x, const BatchRequest& r, size_t u, size_t n) {
  std::vector<float> out(n * r.dim);
  for (size_t i = 0; i < n; ++i)
    std::memcpy(&out[i * r.dim], x + unit_src_row(r, u, i) * r.dim, r.dim * sizeof(float));
  return out;
}

/// Encodes `in` with the CPU codec and returns when the CPU accepts it; Fp16Range and
/// NonFiniteInput come back with `where` (unit_where) in front, as from the CPU executor.
inline void cpu_encode_unit_at(const Codec& codec, const UnitInput& in, const std::string& where) {
  try {
    (void)codec.encode(in);
  } catch (const Fp16Range& e) {
    throw Fp16Range(where + ": " + e.what());
  } catch (const NonFiniteInput& e) {
    throw NonFiniteInput(where + ": " + e.what());
  }
}

/// Copies the batch's [S, H, T, D] and its pooled-heads layout into a device job (PeerJob,
/// KakeyaJob).
template <class Job>
void set_job_shape(Job& job, const BatchRequest& r) {
  job.sequences = r.sequences;
  job.heads = r.heads;
  job.tokens = r.tokens;
  job.dim = r.dim;
  job.pooled = r.block_rows == BlockRows::kPooledHeads;
}

/// The device's times of one batch (PeerTimings, KakeyaTimings: milliseconds) into the result.
template <class Timings>
void set_device_times(BatchResult& res, const Timings& t) {
  res.device_h2d_ms = t.h2d_ms;
  res.device_kernel_ms = t.kernel_ms;
  res.device_d2h_ms = t.d2h_ms;
}

/// The batch's decoded rows: `data` ([S, H, T, D] f32) as a Tensor4 of the request's shape.
inline Tensor4 decoded_tensor(const BatchRequest& r, std::vector<float>&& data) {
  Tensor4 out;
  out.s = r.sequences;
  out.h = r.heads;
  out.t = r.tokens;
  out.d = r.dim;
  out.data = std::move(data);
  return out;
}

}  // namespace kvwb::codec::cuda
