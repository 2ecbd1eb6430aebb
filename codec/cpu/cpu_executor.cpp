#include "codec/cpu/cpu_executor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "base/errors.h"
#include "base/thread_pool.h"
#include "codec/math/metrics.h"

namespace kvwb::codec::cpu {

namespace {

/// Rows of one unit. per_head (s, h) is contiguous in [S, H, T, D]; pooled_heads interleaves the
/// heads token-major (unit row ρ = t·H + h).
struct UnitPlace {
  size_t s = 0;
  int head = -1;  // -1: pooled
};

const float* row_of(const float* x, size_t H, size_t T, size_t D, size_t s, size_t h, size_t t) {
  return x + ((s * H + h) * T + t) * D;
}

void gather(const float* x, size_t H, size_t T, size_t D, UnitPlace u, std::vector<float>& out) {
  if (u.head >= 0) {
    const float* src = row_of(x, H, T, D, u.s, static_cast<size_t>(u.head), 0);
    out.assign(src, src + T * D);
    return;
  }
  out.resize(T * H * D);
  for (size_t t = 0; t < T; ++t)
    for (size_t h = 0; h < H; ++h)
      std::memcpy(&out[(t * H + h) * D], row_of(x, H, T, D, u.s, h, t), D * sizeof(float));
}

void scatter(Tensor4& x, UnitPlace u, const float* rows) {
  const size_t D = x.d, T = x.t;
  if (u.head >= 0) {
    std::memcpy(x.row(u.s, static_cast<size_t>(u.head), 0), rows, T * D * sizeof(float));
    return;
  }
  for (size_t t = 0; t < T; ++t)
    for (size_t h = 0; h < x.h; ++h)
      std::memcpy(x.row(u.s, h, t), &rows[(t * x.h + h) * D], D * sizeof(float));
}

}  // namespace

BatchResult CpuExecutor::run(const BatchRequest& req, const std::atomic<bool>* cancel) const {
  check_batch_request(req);
  const size_t S = req.sequences, H = req.heads, T = req.tokens, D = req.dim;
  const bool pooled = req.block_rows == BlockRows::kPooledHeads;
  const bool whiten = req.whiten != nullptr;
  const std::string stream_name = req.stream == Stream::kK ? "K" : "V";
  const auto codec = make_codec(req.codec.name, req.codec.params, D, req.codec.resources);

  BatchResult res;
  // Whitened copy of the rows (rows · L_h per (s, h), T rows at a time) and its max |value|.
  std::vector<float> xw;
  if (whiten) res.max_abs_whitened = whiten_batch(req, xw);
  const float* coded = whiten ? xw.data() : req.rows;
  res.layer_scale = codec->layer_scale(req.rows, S * H * T * D);
  const uint8_t flags = req.domain_flags | (whiten ? kDomainWhitened : 0);

  std::vector<UnitPlace> units;
  for (size_t s = 0; s < S; ++s) {
    if (pooled)
      units.push_back({s, -1});
    else
      for (size_t h = 0; h < H; ++h) units.push_back({s, static_cast<int>(h)});
  }
  std::vector<EncodedUnit> enc(units.size());
  std::vector<uint64_t> block_rows(units.size());
  res.decoded = Tensor4(S, H, T, D);
  parallel_for(
      units.size(), threads_,
      [&](size_t ui) {
        const UnitPlace u = units[ui];
        // A per-head unit is contiguous in [S, H, T, D]: the codec reads it in place; pooled
        // units are gathered token-major.
        std::vector<float> rows, orig, weights;
        UnitInput in;
        if (u.head >= 0) {
          const size_t h = static_cast<size_t>(u.head);
          in.rows = row_of(coded, H, T, D, u.s, h, 0);
          in.original_rows = whiten ? row_of(req.rows, H, T, D, u.s, h, 0) : nullptr;
          in.n = T;
        } else {
          gather(coded, H, T, D, u, rows);
          if (whiten) gather(req.rows, H, T, D, u, orig);
          in.rows = rows.data();
          in.original_rows = whiten ? orig.data() : nullptr;
          in.n = rows.size() / D;
        }
        in.dim = D;
        in.layer_scale = res.layer_scale;
        in.collect_residuals = req.collect_residuals;
        if (req.row_weights) {
          weights.resize(in.n);
          for (size_t r = 0; r < in.n; ++r) {
            const size_t h = u.head >= 0 ? static_cast<size_t>(u.head) : r % H;
            const size_t t = u.head >= 0 ? r : r / H;
            weights[r] = req.row_weights[(u.s * H + h) * T + t];
          }
          in.weights = weights.data();
        }
        in.info.sequence = static_cast<uint32_t>(u.s);
        in.info.layer = req.layer;
        in.info.kv_head = u.head >= 0 ? static_cast<uint16_t>(u.head) : kPooledHead;
        in.info.n_kv_heads = req.n_kv_heads ? req.n_kv_heads : static_cast<uint16_t>(H);
        in.info.stream = req.stream;
        in.info.block_rows = req.block_rows;
        in.info.block_size = req.block_size;
        in.info.domain_flags = flags;
        const std::string where =
            "sequence " + std::to_string(u.s) + ", layer " + std::to_string(req.layer) +
            (u.head >= 0 ? ", kv head " + std::to_string(u.head) : ", pooled heads") + ", stream " +
            stream_name;
        try {
          enc[ui] = codec->encode(in);
          // Decode from the serialized bytes only: what is measured is what a reader would get.
          DecodedUnit dec = decode_container(enc[ui].bytes, where);
          if (dec.rows.size() != in.n * D)
            throw FormatError(where + ": decoded " + std::to_string(dec.rows.size() / D) +
                              " rows, expected " + std::to_string(in.n));
          if (whiten) {
            // Un-whiten the coded rows (K̂ = K̂̃·L⁻¹); the tail is already in the original domain.
            std::vector<float> tmp(D);
            for (size_t r = 0; r < dec.n_block_rows; ++r) {
              const size_t h = u.head >= 0 ? static_cast<size_t>(u.head) : r % H;
              matmul_rows(&dec.rows[r * D], 1, D, req.unwhiten + h * D * D, tmp.data());
              std::memcpy(&dec.rows[r * D], tmp.data(), D * sizeof(float));
            }
          }
          block_rows[ui] = dec.n_block_rows;
          scatter(res.decoded, u, dec.rows.data());
        } catch (const Fp16Range& e) {
          throw Fp16Range(where + ": " + e.what());
        } catch (const NonFiniteInput& e) {
          throw NonFiniteInput(where + ": " + e.what());
        }
      },
      cancel);
  if (cancel && cancel->load()) throw Cancelled("run cancelled");

  uint64_t total = 0;
  for (const auto& e : enc) total += e.bytes.size();
  res.containers.reserve(total);
  res.units.resize(units.size());
  for (size_t ui = 0; ui < units.size(); ++ui) {
    EncodedUnit& e = enc[ui];
    UnitRecord& r = res.units[ui];
    r.sequence = static_cast<uint32_t>(units[ui].s);
    r.kv_head = units[ui].head >= 0 ? static_cast<uint16_t>(units[ui].head) : kPooledHead;
    r.offset = res.containers.size();
    r.size = e.bytes.size();
    r.header_bytes = e.header_bytes;
    r.reported_bytes = e.reported_bytes;
    r.reference_bytes = e.reference_bytes;
    r.tail_bytes = e.tail_bytes;
    r.codec_rows = e.codec_rows;
    r.n_block_rows = block_rows[ui];
    res.containers.insert(res.containers.end(), e.bytes.begin(), e.bytes.end());
    std::vector<uint8_t>().swap(e.bytes);  // keep one copy of the bytes at a time
    res.reported_bytes += e.reported_bytes;
    res.reference_bytes += e.reference_bytes;
    res.tail_bytes += e.tail_bytes;
    EncodeStats& st = res.stats;
    st.d_eff.insert(st.d_eff.end(), e.stats.d_eff.begin(), e.stats.d_eff.end());
    st.k_eff.insert(st.k_eff.end(), e.stats.k_eff.begin(), e.stats.k_eff.end());
    st.outliers += e.stats.outliers;
    st.clipped += e.stats.clipped;
    st.coded_values += e.stats.coded_values;
    if (req.collect_residuals)
      st.scaled_residuals.insert(st.scaled_residuals.end(), e.stats.scaled_residuals.begin(),
                                 e.stats.scaled_residuals.end());
  }
  res.per_layer_stream_bytes = codec->per_layer_stream_bytes();
  if (req.measure) res.head_errors = head_error_sums(req.rows, res.decoded.data.data(), S, H, T, D, threads_);
  return res;
}

}  // namespace kvwb::codec::cpu
