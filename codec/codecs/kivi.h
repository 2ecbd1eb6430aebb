#pragma once
// KIVI-style asymmetric min-max integer quantisation (codec-peers.md §3): keys per channel,
// values per token, in groups, with the most recent tokens kept as an fp16 residual window.
// Works per (sequence, layer, kv head, stream); built through
// make_codec("kivi", {{"bits", "2"}, {"group", "32"}, {"residual", "128"}}, D).
#include <cstddef>
#include <cstdint>

#include "codec/format/container.h"

namespace kvwb::codec {

/// How one KIVI stream of T tokens is split and what it costs (§3.1, §3.2, §3.5).
struct KiviLayout {
  uint64_t quant_rows = 0;   // T_K (K) or T_V (V): tokens in the quantised prefix
  uint64_t tail_rows = 0;    // T − quant_rows: the fp16 residual window
  uint64_t groups = 0;       // number of quantised groups
  size_t group_values = 0;   // values per group: G (K) or G_V = min(G, D) (V)
  size_t group_bytes = 0;    // ceil(group_values·b/8) + 4
  uint64_t quant_bytes = 0;  // groups · group_bytes
  uint64_t tail_bytes = 0;   // tail_rows · D · 2
  uint64_t total_bytes() const { return quant_bytes + tail_bytes; }
};

/// Layout of one stream: T tokens, head dimension D, b bits, group G, residual R (R mod G = 0).
/// Throws Unsupported when D mod G_V != 0 (V).
KiviLayout kivi_layout(Stream stream, uint64_t tokens, size_t head_dim, unsigned bits, size_t group,
                       uint64_t residual);

/// Quantises one group of `n` values x[0], x[stride], …, x[(n−1)·stride] (§3.3) into `out`
/// (ceil(n·b/8) + 4 bytes: codes LSB-first, fp16 Δ_q, fp16 z_q). Returns how many codes the
/// clamp to [0, 2^b − 1] changed. Throws Fp16Range when Δ or the minimum exceeds 65504.
uint32_t kivi_quantize_group(const float* x, size_t n, size_t stride, unsigned bits, uint8_t* out);
/// Decodes one group into x[0], x[stride], …: x̂ = z_q + q·Δ_q.
void kivi_dequantize_group(const uint8_t* in, size_t n, size_t stride, unsigned bits, float* x);

}  // namespace kvwb::codec
