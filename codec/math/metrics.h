#pragma once
// Reconstruction and attention-aware error metrics (metrics.md §1, §3). All sums in f64. A metric
// whose denominator is zero is undefined: its accessor returns NaN, which reports show as n/a.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace kvwb::codec {

/// Pooled reconstruction-error sums over a set of rows; merge() pools scopes.
struct ErrorSums {
  double sq_err = 0;     // Σ‖x − x̂‖²
  double sq_ref = 0;     // Σ‖x‖²
  double cos_sum = 0;    // Σ per-row cosine
  double max_abs = 0;    // max |x − x̂|
  double whitened_sq_err = 0;  // Σ‖(x − x̂)·L‖² (K with Σ_q), when has_whitened
  uint64_t rows = 0;
  uint64_t values = 0;
  bool has_whitened = false;

  /// Adds rows x, x̂ [n, d] row-major f32.
  void add(const float* x, const float* xhat, size_t n, size_t d);
  /// Adds whitened error of rows already multiplied by L ([n, d] each).
  void add_whitened(const float* xl, const float* xhatl, size_t n, size_t d);
  void merge(const ErrorSums& o);
  double mse() const;            // Σ‖e‖²/(N·D)
  double rel_mse() const;        // Σ‖e‖²/Σ‖x‖²
  double snr_db() const;         // −10·log10(rel_mse)
  double cosine() const;         // mean per-row cosine
  double whitened_mse() const;   // Σ‖e·L‖²/(N·D)
};

/// Per-row cosine with metrics.md §1 conventions (1 if both zero, 0 if exactly one is).
double row_cosine(const float* x, const float* y, size_t d);

/// Attention-aware sums (metrics.md §3) for one layer; merge() pools.
struct AttentionSums {
  double out_rel_err_sum = 0;  // Σ over queries of ‖o − ô‖/‖o‖
  uint64_t out_count = 0;      // queries in out_rel_err_sum
  uint64_t out_skipped = 0;    // queries with ‖o‖ = 0
  double pooled_err = 0;       // Σ‖o − ô‖²
  double pooled_ref = 0;       // Σ‖o‖²
  double kl_sum = 0;
  uint64_t top1_hits = 0;
  uint64_t queries = 0;

  void merge(const AttentionSums& o);
  double out_rel_err() const;      // mean per-query relative output error
  double out_rel_err_pooled() const;  // sqrt(Σ‖o−ô‖²/Σ‖o‖²)
  double kl() const;               // mean KL(π‖π̂)
  double top1() const;             // mean top-1 agreement
};

/// Query sample P of metrics.md §3.2 for T tokens.
std::vector<uint32_t> attention_query_sample(size_t T);
/// The sampled query positions of one (sequence, q head) (docs/attention-sampling.md): `n`
/// distinct positions of 0..T-1, ascending, drawn by a partial Fisher-Yates shuffle with the
/// project RNG (splitmix(kDefaultSeed ^ "ATTN_SMP" ^ mix64(sequence·2^20 + q_head), i)), the same
/// for every layer and configuration so that comparisons are paired. n = 0, or n at least the
/// size of attention_query_sample(T), gives attention_query_sample(T) (the exact metrics).
std::vector<uint32_t> attention_query_sample(size_t T, size_t n, uint64_t sequence, uint64_t q_head);

/// Attention metrics for one (sequence, query head): q [T, D] post-RoPE queries; k, v the
/// reference post-RoPE keys/values [T, D] of its kv head; khat, vhat the reconstructions [T, D].
/// Causal mask (window > 0: sliding window of that many tokens). `scale` is the softmax scale.
/// Accumulates three variants: both streams compressed, only K compressed (exact V), only V
/// compressed (exact K; its KL is 0 and top-1 is 1 by construction).
struct AttentionVariants {
  AttentionSums both, k_only, v_only;
};
void accumulate_attention(const float* q, const float* k, const float* v, const float* khat,
                          const float* vhat, size_t T, size_t D, const std::vector<uint32_t>& sample,
                          float scale, int window, AttentionVariants& out);

/// Key importance a_t of codec-kakeya.md §5.1 for one (sequence, query head): adds
/// Σ_{p ∈ sample, p ≥ t} π(p, t) to a[t] (a has T entries), with the exact softmax of q·kᵀ.
void accumulate_key_attention_mass(const float* q, const float* k, size_t T, size_t D,
                                   const std::vector<uint32_t>& sample, float scale, int window,
                                   std::vector<double>& a);

/// out = rows · M for rows [n, d] and M [d, d] row-major f32 (whitening / un-whitening).
void matmul_rows(const float* rows, size_t n, size_t d, const float* m, float* out);

/// Excess kurtosis m4/m2² − 3 of a sample (metrics.md §6.1), f64; NaN when m2 = 0.
double excess_kurtosis(const float* v, size_t n, size_t stride = 1);

}  // namespace kvwb::codec
