#pragma once
// Model in the loop (docs/model-in-the-loop.md, metrics.md §8–§9): captures written by running a
// model, and the end-to-end protocol — prefill C tokens, round-trip every layer's cache through a
// configuration with roundtrip_layer() (boundary layers, Q-preconditioning, asymmetric K/V, hot
// tail exactly as `kvwb run`), teacher-force N continuation tokens, compare with the reference
// pass: Δppl (relative, %), top-1 agreement (%), mean KL (nats), ppl-strict-v1 verdict.
//
// Reference cache: the bf16 serving cache, i.e. the prefill K and V round-tripped through the bf16
// passthrough codec (K in its default post-RoPE domain) by the same path. A bf16/bf16 configuration
// therefore reproduces the reference bit for bit (Δppl = 0, top-1 = 100 %, KL = 0 exactly). The
// f32 cache (no rounding) is evaluated too and reported as ppl_exact.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "model/llama.h"
#include "sessions/config/run_config.h"
#include "sessions/eval/bootstrap.h"
#include "sessions/run/runner.h"

namespace kvwb::sessions {

// ---- capture from a model ------------------------------------------------------------------

struct ModelCaptureOptions {
  int sequences = 16;       // S
  int tokens = 256;         // T per sequence: BOS + T−1 consecutive text tokens
  bool float16 = true;      // store float16 (else float32)
  int gzip_level = 4;
  std::string text_source;  // root attribute text_source
  std::string model_name;   // "" = the model's name
};

struct ModelCaptureResult {
  double nll = 0;        // mean NLL (nats/token) over the S·(T−1) next-token predictions
  size_t predictions = 0;
  std::vector<double> nll_per_sequence;
};

/// Cuts `text_tokens` into S sequences (sequence s = BOS + text tokens s·(T−1) … s·(T−1)+T−2),
/// runs the model on each and writes k_pre, k, v, q_pre, tokens and positions to `out_path`
/// (io::CaptureWriter, atomic). Throws InvalidArgument when the text is too short.
ModelCaptureResult write_model_capture(const model::LlamaModel& m, const std::vector<int32_t>& text_tokens,
                                       const ModelCaptureOptions& opt, const std::string& out_path,
                                       JobControl* job = nullptr);

/// The S×T token grid of write_model_capture ([S*T] row-major).
std::vector<int32_t> cut_sequences(const std::vector<int32_t>& text_tokens, int bos, int sequences, int tokens);

/// CaptureInfo describing the model (root attributes; every layer full attention with all four
/// tensors) — what roundtrip_layer() and the capture writer need.
io::CaptureInfo model_capture_info(const model::LlamaConfig& c, int sequences, int tokens);

// ---- end-to-end evaluation --------------------------------------------------------------------

/// Passages evaluated by default: every passage the text holds, up to this many.
inline constexpr int kDefaultMaxPassages = 64;

struct EvalOptions {
  int context = 0;        // C prefill tokens incl. BOS; 0 = min(2048, max_position − N) (2048 if unknown)
  int continuation = 64;  // N teacher-forced tokens; N−1 predictions are scored
  /// P; 0 = as many as the text holds, at most kDefaultMaxPassages. The text is cut into
  /// non-overlapping slots of C+N−1 tokens (slot s starts at text token s·(C+N−1)); passage p is
  /// BOS + slot σ(p).
  int passages = 0;
  /// Which slots: "spread" (σ(p) = ⌊p·slots/P⌋, evenly over the whole text) or "first" (σ(p) = p).
  std::string selection = "spread";
  BootstrapOptions bootstrap;  // intervals of the aggregate (paired over passages)
};

struct PassageResult {
  int index = 0;
  int slot = 0;  // which slot of the text (see EvalOptions::passages)
  size_t first_text_token = 0;
  int scored = 0;
  double nll_ref = 0, nll_alt = 0, nll_exact = 0;  // mean NLL (nats/token)
  double ppl_ref = 0, ppl_alt = 0, ppl_exact = 0;
  double delta_ppl = 0;  // (ppl_alt − ppl_ref)/ppl_ref, percent
  double top1 = 0;       // percent of scored positions with equal argmax
  double kl = 0;         // mean KL(p_ref ‖ p_alt), nats
};

struct EvalAggregate {
  double delta_ppl = 0, delta_ppl_std = 0;  // mean signed Δppl (percent) and its sample std
  double top1 = 0, top1_std = 0;            // percent
  double kl = 0, kl_std = 0;                // nats
  /// 95 % (BootstrapOptions::level) paired-bootstrap intervals of the means above; |Δppl|'s is
  /// the image of Δppl's under |·| (abs_interval). Undefined (NaN) with one passage.
  Interval delta_ppl_ci, abs_delta_ppl_ci, top1_ci, kl_ci;
  double ppl_ref_pooled = 0, ppl_alt_pooled = 0, ppl_exact_pooled = 0;
  std::string verdict;        // interval verdict: ACCEPT | MARGINAL | REJECT | INCONCLUSIVE
  std::vector<std::string> verdict_possible;  // verdicts the intervals allow
  std::optional<long long> passages_needed;   // INCONCLUSIVE: estimated passages for a decisive verdict
  std::string verdict_reason;
  std::string verdict_point;  // ppl-strict-v1 on the point estimates alone (ACCEPT | MARGINAL | REJECT)
  std::string ladder = "ppl-strict-v1";
  bool provisional = false;  // fewer than 4 passages
  uint64_t bytes = 0, bf16_bytes = 0;  // compressed prefill cache bytes vs bf16 over the run's layers
  double ratio_vs_bf16 = 0;
};

struct EvalResult {
  nlohmann::json config;  // canonical run configuration
  std::string config_hash;
  int context = 0, continuation = 0;
  int passages_available = 0;  // slots the text holds
  std::string selection;       // "spread" | "first"
  BootstrapOptions bootstrap;
  std::vector<PassageResult> passages;
  EvalAggregate aggregate;
  bool in_sample = false;  // Σ_q calibrated on the evaluated prefill (metrics.md §0)
  std::vector<std::string> warnings;
  double seconds = 0;              // this evaluation (round trip + continuation passes)
  double seconds_per_passage = 0;  // seconds / passages
  double prefill_seconds = 0;      // the Evaluator's one-off prefill and reference passes (all passages)
};

/// ppl-strict-v1 (metrics.md §8) on |Δppl| (percent) and top-1 (percent).
std::string ppl_strict_verdict(double abs_delta_ppl_pct, double top1_pct);

/// The aggregate of per-passage results: means, sample standard deviations, paired-bootstrap
/// intervals (`boot`), pooled perplexities (NLLs weighted by scored tokens), the interval verdict
/// and the point verdict. Bytes are left at zero.
EvalAggregate aggregate_passages(const std::vector<PassageResult>& passages, const BootstrapOptions& boot);

/// "0xCAFEBABE": how seeds are written in JSON (u64 exceeds JSON's exact integers).
std::string seed_hex(uint64_t seed);

/// Prefills every passage once (reference and exact caches, reference logits); evaluate() then
/// costs one round trip and one continuation pass per passage.
class Evaluator {
 public:
  /// Throws InvalidArgument when the text holds fewer than P·(C+N−1) tokens or C, N are invalid.
  Evaluator(const model::LlamaModel& m, const std::vector<int32_t>& text_tokens, const EvalOptions& opt);
  /// Runs one configuration. Codec failures (Fp16Range, …) and bad configurations throw.
  EvalResult evaluate(const RunConfig& cfg, JobControl* job = nullptr) const;
  int context() const noexcept { return C_; }
  int continuation() const noexcept { return N_; }
  /// Passages evaluated (the resolved EvalOptions::passages) and slots the text holds.
  int passages() const noexcept { return P_; }
  int passages_available() const noexcept { return slots_; }
  const std::string& selection() const noexcept { return selection_; }
  const BootstrapOptions& bootstrap() const noexcept { return boot_; }
  /// Seconds the constructor spent (prefill, exact and reference passes of every passage).
  double prefill_seconds() const noexcept { return prefill_seconds_; }

 private:
  struct Pass {
    std::vector<float> logits;  // [N, V]
  };
  /// A cache for one passage from pre-RoPE keys and values per layer ([P, H_kv, C, D] each).
  model::KvCache cache_from(const std::vector<const codec::Tensor4*>& k_pre_hat,
                            const std::vector<const codec::Tensor4*>& v_hat, size_t passage) const;
  std::vector<float> continue_pass(model::KvCache cache, size_t passage) const;

  const model::LlamaModel& m_;
  int C_ = 0, N_ = 0, P_ = 0, slots_ = 0;
  std::string selection_;
  BootstrapOptions boot_;
  double prefill_seconds_ = 0;
  std::vector<int> slot_;                             // per passage
  io::CaptureInfo info_;
  std::vector<std::vector<int32_t>> context_, cont_;  // per passage
  std::vector<size_t> first_;
  std::vector<codec::Tensor4> k_pre_, v_, q_pre_;     // per layer [P, H, C, D] (f32 prefill)
  std::vector<codec::Tensor4> k_ref_, v_ref_;         // per layer: reference (bf16 cache) pre-RoPE
  std::vector<int32_t> positions_;                    // [P*C]
  std::vector<Pass> ref_, exact_;
};

nlohmann::json eval_result_to_json(const EvalResult& r);
/// [lo, hi], or null when undefined.
nlohmann::json interval_json(const Interval& x);
/// {method, resamples, seed ("0x…"), level}: recorded with every interval.
nlohmann::json bootstrap_json(const BootstrapOptions& b);

// ---- proxy versus truth ------------------------------------------------------------------------

struct ProxyTruthCell {
  std::string label;
  RunConfig config;
  bool failed = false;
  std::string error;
  double k_rel_mse = 0;      // K relative MSE pooled over the run's layers (cache rows)
  double attn_out_err = 0;   // attention-output relative error, mean over layers (both streams)
  double attn_kl = 0;        // attention KL, mean over layers (both streams)
  double ratio = 0;          // bytes ratio vs bf16 (run_config)
  double delta_ppl = 0, top1 = 0, kl = 0;  // eval aggregate
  Interval delta_ppl_ci;                   // eval aggregate's interval
  std::vector<double> passage_delta_ppl;   // per passage (the bootstrap of ρ resamples them)
};

/// Spearman's ρ of one proxy with |Δppl| and its bootstrap interval.
struct ProxyRho {
  std::string proxy;  // k_rel_mse | attn_out_err | attn_kl
  double rho = 0;
  Interval ci;
};

/// Whether two proxies rank configurations differently well: ρ_a − ρ_b with its interval.
struct ProxyPair {
  std::string a, b;
  double diff = 0;
  Interval ci;
  bool distinguishable = false;  // the interval excludes 0
};

struct ProxyTruthResult {
  std::vector<ProxyTruthCell> cells;
  std::string capture;
  int context = 0, continuation = 0, passages = 0;
  /// Spearman rank correlation of each proxy with |Δppl| over the cells that did not fail.
  double rho_k_rel_mse = 0, rho_attn_out_err = 0, rho_attn_kl = 0;
  size_t n = 0;
  /// Bootstrap over cells and passages (both resampled in every replicate): ρ intervals and the
  /// pairwise differences. Replicates whose ranks are constant are left out (`replicates_used`).
  std::vector<ProxyRho> rhos;
  std::vector<ProxyPair> pairs;
  BootstrapOptions bootstrap;
  size_t replicates_used = 0;
};

/// The bootstrap part of proxy_truth on finished cells: fills rhos, pairs, replicates_used and the
/// point ρ values. Replicate b draws n cells (bootstrap_index(seed, b, ·, n)) and P passages
/// (bootstrap_index(seed XOR TAG_PASSAGES, b, ·, P)); a cell's |Δppl| is the absolute mean of its
/// per-passage Δppl over the drawn passages. Percentile intervals at `boot.level`.
void proxy_truth_intervals(ProxyTruthResult& r, const BootstrapOptions& boot);

/// Spearman's ρ with average ranks for ties; NaN when fewer than 2 values or a constant input.
double spearman(const std::vector<double>& a, const std::vector<double>& b);

/// Evaluates every cell with run_config on `capture_path` (proxies) and with `ev` (Δppl).
ProxyTruthResult proxy_truth(const Evaluator& ev, const std::string& capture_path,
                             const std::vector<std::pair<std::string, RunConfig>>& cells, JobControl* job = nullptr);

nlohmann::json proxy_truth_to_json(const ProxyTruthResult& r);

}  // namespace kvwb::sessions
