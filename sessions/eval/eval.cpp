#include "sessions/eval/eval.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <set>

#include "codec/math/calibration.h"
#include "base/errors.h"
#include "codec/math/rope.h"
#include "io/capture.h"
#include "sessions/run/calibration_io.h"

namespace kvwb::sessions {

using codec::Tensor4;
using nlohmann::json;

namespace {

/// Copies head-major taps [H, n, D] of sequence s into t [S, H, n, D].
void put_taps(Tensor4& t, size_t s, const std::vector<float>& taps) {
  std::copy(taps.begin(), taps.end(), t.row(s, 0, 0));
}

struct Score {
  double nll_sum = 0;
  size_t n = 0;
};

/// Log-softmax of one row in f64.
void log_softmax(const float* r, size_t V, std::vector<double>& out) {
  out.resize(V);
  double mx = r[0];
  for (size_t j = 1; j < V; ++j) mx = std::max(mx, static_cast<double>(r[j]));
  double s = 0;
  for (size_t j = 0; j < V; ++j) s += std::exp(static_cast<double>(r[j]) - mx);
  const double lse = mx + std::log(s);
  for (size_t j = 0; j < V; ++j) out[j] = static_cast<double>(r[j]) - lse;
}

size_t argmax_low(const float* r, size_t V) {
  size_t best = 0;
  for (size_t j = 1; j < V; ++j)
    if (r[j] > r[best]) best = j;
  return best;
}

double mean_of(const std::vector<double>& v) {
  return v.empty() ? NAN : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

double std_of(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  const double m = mean_of(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

}  // namespace

// ---- capture ---------------------------------------------------------------------------------

std::vector<int32_t> cut_sequences(const std::vector<int32_t>& text_tokens, int bos, int sequences, int tokens) {
  if (sequences < 1 || tokens < 2) throw InvalidArgument("sequences must be >= 1 and tokens per sequence >= 2");
  const size_t per = static_cast<size_t>(tokens) - 1;
  const size_t need = static_cast<size_t>(sequences) * per;
  if (text_tokens.size() < need)
    throw InvalidArgument("the text holds " + std::to_string(text_tokens.size()) + " tokens; " +
                          std::to_string(sequences) + " sequences of BOS + " + std::to_string(per) +
                          " text tokens need " + std::to_string(need));
  std::vector<int32_t> out;
  out.reserve(static_cast<size_t>(sequences) * static_cast<size_t>(tokens));
  for (int s = 0; s < sequences; ++s) {
    out.push_back(bos);
    out.insert(out.end(), text_tokens.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(s) * per),
               text_tokens.begin() + static_cast<std::ptrdiff_t>((static_cast<size_t>(s) + 1) * per));
  }
  return out;
}

io::CaptureInfo model_capture_info(const model::LlamaConfig& c, int sequences, int tokens) {
  io::CaptureInfo info;
  info.path = "<model " + c.name + ">";
  info.model_name = c.name;
  info.num_layers = c.num_layers;
  info.num_query_heads = c.num_heads;
  info.num_kv_heads = c.num_kv_heads;
  info.head_dim = c.head_dim;
  info.rope_style = c.rope_style;
  info.rope_theta = c.rope_theta;
  info.rotary_dim = c.rotary_dim == 0 ? c.head_dim : c.rotary_dim;
  info.qk_norm = c.qk_norm;
  info.source_dtype = c.source_dtype;
  info.sequences = sequences;
  info.tokens = tokens;
  info.has_tokens = true;
  info.has_positions = true;
  for (int l = 0; l < c.num_layers; ++l) {
    io::LayerInfo li;
    li.layer = l;
    li.has_k_pre = li.has_k = li.has_v = li.has_q_pre = true;
    li.dtype_k_pre = li.dtype_k = li.dtype_v = li.dtype_q_pre = "float32";
    info.layers.push_back(li);
  }
  return info;
}

ModelCaptureResult write_model_capture(const model::LlamaModel& m, const std::vector<int32_t>& text_tokens,
                                       const ModelCaptureOptions& opt, const std::string& out_path, JobControl* job) {
  const auto& c = m.config();
  const std::vector<int32_t> grid = cut_sequences(text_tokens, c.bos_id, opt.sequences, opt.tokens);
  const size_t S = static_cast<size_t>(opt.sequences), T = static_cast<size_t>(opt.tokens);
  const size_t D = static_cast<size_t>(c.head_dim), Hq = static_cast<size_t>(c.num_heads),
               Hkv = static_cast<size_t>(c.num_kv_heads), NL = static_cast<size_t>(c.num_layers);
  std::vector<Tensor4> kpre(NL, Tensor4(S, Hkv, T, D)), kpost = kpre, v = kpre, qpre(NL, Tensor4(S, Hq, T, D));
  ModelCaptureResult res;
  double total = 0;
  for (size_t s = 0; s < S; ++s) {
    if (job && job->cancel.load()) throw Cancelled("capture cancelled");
    if (job && job->progress) job->progress(s, S, "sequence " + std::to_string(s));
    const std::span<const int32_t> seq(grid.data() + s * T, T);
    model::KvCache cache = m.new_cache();
    model::ForwardTaps taps;
    const std::vector<float> logits = m.forward(seq, cache, true, &taps);
    const auto nll = model::token_nll(std::span<const float>(logits.data(), (T - 1) * static_cast<size_t>(c.vocab_size)),
                                      seq.subspan(1), c.vocab_size);
    const double sum = std::accumulate(nll.begin(), nll.end(), 0.0);
    total += sum;
    res.nll_per_sequence.push_back(sum / static_cast<double>(T - 1));
    for (size_t l = 0; l < NL; ++l) {
      put_taps(kpre[l], s, taps.k_pre[l]);
      put_taps(v[l], s, taps.v[l]);
      put_taps(qpre[l], s, taps.q_pre[l]);
      for (size_t h = 0; h < Hkv; ++h) std::copy(cache.k[l][h].begin(), cache.k[l][h].end(), kpost[l].row(s, h, 0));
    }
  }
  res.predictions = S * (T - 1);
  res.nll = total / static_cast<double>(res.predictions);

  io::CaptureInfo info = model_capture_info(c, opt.sequences, opt.tokens);
  if (!opt.model_name.empty()) info.model_name = opt.model_name;
  info.text_source = opt.text_source;
  io::CaptureWriter w(out_path, info, io::CaptureWriteOptions{opt.float16, opt.gzip_level});
  w.write_tokens(grid);
  std::vector<int32_t> pos(S * T);
  for (size_t i = 0; i < pos.size(); ++i) pos[i] = static_cast<int32_t>(i % T);
  w.write_positions(pos);
  for (size_t l = 0; l < NL; ++l) {
    const int li = static_cast<int>(l);
    w.write_layer(li, io::TensorKind::kKPre, kpre[l]);
    w.write_layer(li, io::TensorKind::kK, kpost[l]);
    w.write_layer(li, io::TensorKind::kV, v[l]);
    w.write_layer(li, io::TensorKind::kQPre, qpre[l]);
    w.set_layer_attention(li, "full");
  }
  w.commit();
  if (job && job->progress) job->progress(S, S, "written");
  return res;
}

// ---- evaluation ------------------------------------------------------------------------------

std::string ppl_strict_verdict(double abs_delta_ppl_pct, double top1_pct) {
  if (!std::isfinite(abs_delta_ppl_pct) || !std::isfinite(top1_pct)) return "REJECT";
  if (abs_delta_ppl_pct <= 1.0 && top1_pct >= 95.0) return "ACCEPT";
  if (abs_delta_ppl_pct <= 3.0 && top1_pct >= 85.0) return "MARGINAL";
  return "REJECT";
}

std::string seed_hex(uint64_t seed) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llX", static_cast<unsigned long long>(seed));
  return b;
}

EvalAggregate aggregate_passages(const std::vector<PassageResult>& passages, const BootstrapOptions& boot) {
  EvalAggregate a;
  std::vector<double> dppl, top1, kl;
  double sum_ref = 0, sum_alt = 0, sum_exact = 0, scored = 0;
  for (const auto& p : passages) {
    dppl.push_back(p.delta_ppl);
    top1.push_back(p.top1);
    kl.push_back(p.kl);
    sum_ref += p.nll_ref * p.scored;
    sum_alt += p.nll_alt * p.scored;
    sum_exact += p.nll_exact * p.scored;
    scored += p.scored;
  }
  a.delta_ppl = mean_of(dppl);
  a.delta_ppl_std = std_of(dppl);
  a.top1 = mean_of(top1);
  a.top1_std = std_of(top1);
  a.kl = mean_of(kl);
  a.kl_std = std_of(kl);
  const auto ci = paired_bootstrap_means({dppl, top1, kl}, boot);
  a.delta_ppl_ci = ci[0];
  a.abs_delta_ppl_ci = abs_interval(ci[0]);
  a.top1_ci = ci[1];
  a.kl_ci = ci[2];
  a.ppl_ref_pooled = std::exp(sum_ref / scored);
  a.ppl_alt_pooled = std::exp(sum_alt / scored);
  a.ppl_exact_pooled = std::exp(sum_exact / scored);
  a.verdict_point = ppl_strict_verdict(std::fabs(a.delta_ppl), a.top1);
  const IntervalVerdict v = ppl_strict_interval_verdict(a.delta_ppl, a.delta_ppl_ci, a.top1, a.top1_ci, passages.size());
  a.verdict = v.verdict;
  a.verdict_possible = v.possible;
  a.passages_needed = v.passages_needed;
  a.verdict_reason = v.reason;
  a.provisional = passages.size() < 4;
  return a;
}

Evaluator::Evaluator(const model::LlamaModel& m, const std::vector<int32_t>& text_tokens, const EvalOptions& opt)
    : m_(m) {
  const auto& c = m.config();
  N_ = opt.continuation;
  if (N_ < 2) throw InvalidArgument("--continuation must be >= 2 (N−1 positions are scored), got " + std::to_string(N_));
  C_ = opt.context;
  if (C_ == 0) C_ = c.max_position > 0 ? std::min(2048, c.max_position - N_) : 2048;
  if (C_ < 2)
    throw InvalidArgument("--context must be >= 2 (BOS + at least one text token), got " + std::to_string(C_) +
                          (opt.context == 0 ? " from the model's max_position " + std::to_string(c.max_position) +
                                                  " minus the continuation"
                                            : ""));
  const size_t per = static_cast<size_t>(C_ + N_ - 1);
  slots_ = static_cast<int>(std::min<size_t>(text_tokens.size() / per, static_cast<size_t>(1) << 30));
  if (opt.passages < 0) throw InvalidArgument("--passages must be >= 0 (0 = as many as the text holds, up to " +
                                              std::to_string(kDefaultMaxPassages) + ")");
  P_ = opt.passages == 0 ? std::min(slots_, kDefaultMaxPassages) : opt.passages;
  if (P_ < 1 || P_ > slots_)
    throw InvalidArgument("the text holds " + std::to_string(text_tokens.size()) + " tokens, i.e. " +
                          std::to_string(slots_) + " passages of BOS + " + std::to_string(C_ - 1) + " context + " +
                          std::to_string(N_) + " continuation tokens; " +
                          (opt.passages == 0 ? std::string("at least 1 passage needs ") + std::to_string(per) + " tokens"
                                             : std::to_string(P_) + " passages need " +
                                                   std::to_string(per * static_cast<size_t>(P_)) + " tokens"));
  if (opt.selection != "spread" && opt.selection != "first")
    throw InvalidArgument("passage selection must be spread or first, got '" + opt.selection + "'");
  selection_ = opt.selection;
  boot_ = opt.bootstrap;
  if (boot_.resamples < 100)
    throw InvalidArgument("--resamples must be >= 100, got " + std::to_string(boot_.resamples));
  const auto t0 = std::chrono::steady_clock::now();
  info_ = model_capture_info(c, P_, C_);
  const size_t P = static_cast<size_t>(P_), C = static_cast<size_t>(C_), D = static_cast<size_t>(c.head_dim);
  const size_t Hq = static_cast<size_t>(c.num_heads), Hkv = static_cast<size_t>(c.num_kv_heads);
  const size_t NL = static_cast<size_t>(c.num_layers);
  k_pre_.assign(NL, Tensor4(P, Hkv, C, D));
  v_ = k_pre_;
  q_pre_.assign(NL, Tensor4(P, Hq, C, D));
  positions_.resize(P * C);
  for (size_t i = 0; i < positions_.size(); ++i) positions_[i] = static_cast<int32_t>(i % C);
  for (size_t p = 0; p < P; ++p) {
    const size_t slot = selection_ == "first" ? p : p * static_cast<size_t>(slots_) / P;
    slot_.push_back(static_cast<int>(slot));
    const size_t first = slot * per;
    first_.push_back(first);
    std::vector<int32_t> ctx{c.bos_id};
    ctx.insert(ctx.end(), text_tokens.begin() + static_cast<std::ptrdiff_t>(first),
               text_tokens.begin() + static_cast<std::ptrdiff_t>(first + C - 1));
    std::vector<int32_t> cont(text_tokens.begin() + static_cast<std::ptrdiff_t>(first + C - 1),
                              text_tokens.begin() + static_cast<std::ptrdiff_t>(first + per));
    model::KvCache cache = m.new_cache();
    model::ForwardTaps taps;
    m.forward(ctx, cache, false, &taps);
    for (size_t l = 0; l < NL; ++l) {
      put_taps(k_pre_[l], p, taps.k_pre[l]);
      put_taps(v_[l], p, taps.v[l]);
      put_taps(q_pre_[l], p, taps.q_pre[l]);
    }
    context_.push_back(std::move(ctx));
    cont_.push_back(std::move(cont));
    exact_.push_back(Pass{continue_pass(std::move(cache), p)});
  }
  // The reference: the bf16 serving cache, through the same round-trip path as every configuration.
  RunConfig ref;
  ref.k = StreamConfig{"bf16", {}, "", ""};
  ref.v = StreamConfig{"bf16", {}, "", ""};
  const Whitening none;
  for (size_t l = 0; l < NL; ++l) {
    LayerRoundTrip rt = roundtrip_layer(info_, ref, none, static_cast<int>(l), k_pre_[l], v_[l], positions_);
    k_ref_.push_back(std::move(rt.k_pre_hat));
    v_ref_.push_back(std::move(rt.v_hat));
  }
  std::vector<const Tensor4*> kr, vr;
  for (size_t l = 0; l < NL; ++l) {
    kr.push_back(&k_ref_[l]);
    vr.push_back(&v_ref_[l]);
  }
  for (size_t p = 0; p < P; ++p) ref_.push_back(Pass{continue_pass(cache_from(kr, vr, p), p)});
  prefill_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

model::KvCache Evaluator::cache_from(const std::vector<const Tensor4*>& k_pre_hat,
                                     const std::vector<const Tensor4*>& v_hat, size_t passage) const {
  model::KvCache cache = m_.new_cache();
  const codec::RopeParams rope = m_.config().rope();
  const size_t C = static_cast<size_t>(C_);
  for (size_t l = 0; l < k_pre_hat.size(); ++l) {
    const Tensor4& k = *k_pre_hat[l];
    const Tensor4& v = *v_hat[l];
    for (size_t h = 0; h < k.h; ++h) {
      std::vector<float> rows(k.row(passage, h, 0), k.row(passage, h, 0) + C * k.d);
      if (rope.style != codec::RopeStyle::kNone)
        codec::apply_rope(rows.data(), C, positions_.data() + passage * C, rope, false);
      cache.k[l][h] = std::move(rows);
      cache.v[l][h].assign(v.row(passage, h, 0), v.row(passage, h, 0) + C * v.d);
    }
  }
  cache.length = C;
  return cache;
}

std::vector<float> Evaluator::continue_pass(model::KvCache cache, size_t passage) const {
  return m_.forward(cont_[passage], cache, true, nullptr);
}

EvalResult Evaluator::evaluate(const RunConfig& cfg, JobControl* job) const {
  const auto t0 = std::chrono::steady_clock::now();
  const auto& c = m_.config();
  const size_t NL = static_cast<size_t>(c.num_layers), V = static_cast<size_t>(c.vocab_size);
  const size_t D = static_cast<size_t>(c.head_dim);
  EvalResult r;
  r.config = run_config_to_json(cfg);
  r.config_hash = run_config_hash(cfg);
  r.context = C_;
  r.continuation = N_;
  r.passages_available = slots_;
  r.selection = selection_;
  r.bootstrap = boot_;
  r.prefill_seconds = prefill_seconds_;
  for (int l : cfg.layers)
    if (l < 0 || l >= c.num_layers)
      throw InvalidArgument("layer " + std::to_string(l) + " is not in the model (" + std::to_string(c.num_layers) +
                            " layers)");
  for (int l : cfg.boundary)
    if (l < 0 || l >= c.num_layers)
      throw InvalidArgument("boundary layer " + std::to_string(l) + " is not in the model (" +
                            std::to_string(c.num_layers) + " layers)");
  std::vector<int> layers = cfg.layers;
  if (layers.empty())
    for (int l = 0; l < c.num_layers; ++l) layers.push_back(l);
  else
    r.warnings.push_back("layers outside --layers keep the reference (bf16) cache");
  if (!cfg.q_precond.empty()) {
    auto dom = [](const StreamConfig& s) { return s.k_domain.empty() ? default_k_domain(s.codec) : s.k_domain; };
    if (dom(cfg.k) == "post_rope")
      throw InvalidArgument("Q-preconditioning needs k_domain pre_rope, but the K codec " + cfg.k.codec +
                            " works post-RoPE");
  }
  // Q-preconditioning factors: Σ_q from the prefill queries, or a safetensors file.
  Whitening wh;
  if (cfg.q_precond == "capture") {
    r.in_sample = true;
    for (size_t l = 0; l < NL; ++l) {
      const auto sig = codec::compute_sigma_q(q_pre_[l], static_cast<size_t>(c.num_kv_heads));
      auto& fs = wh.factors[static_cast<int>(l)];
      for (size_t h = 0; h < sig.size(); ++h)
        fs.push_back(codec::factor_sigma_q(sig[h], D, codec::kDefaultRidge, cfg.target_cond,
                                           "layer " + std::to_string(l) + ", kv head " + std::to_string(h)));
    }
  } else if (!cfg.q_precond.empty()) {
    wh.factors = load_whitening_file(cfg.q_precond, c.num_kv_heads, c.head_dim);
  }
  if (!wh.factors.empty()) {
    std::map<int, double> mx;
    for (const auto& [l, fs] : wh.factors) {
      double m = 0;
      for (const auto& f : fs) m = std::max(m, f.max_abs_L);
      mx[l] = m;
    }
    wh.rule = codec::skip_rule(mx);
    if (cfg.q_precond_auto_skip)
      for (const auto& [l, s] : wh.rule.skip)
        if (s) wh.skipped.insert(l);
    for (int l : cfg.q_precond_skip_layers) wh.skipped.insert(l);
  }
  // Round trip of every layer of the run; the rest keep the reference cache.
  std::vector<Tensor4> k_hat(NL), v_hat(NL);
  std::vector<const Tensor4*> kp(NL), vp(NL);
  for (size_t l = 0; l < NL; ++l) {
    kp[l] = &k_ref_[l];
    vp[l] = &v_ref_[l];
  }
  size_t step = 0;
  uint64_t tail = 0;
  const size_t total = layers.size() + static_cast<size_t>(P_);
  for (int l : layers) {
    if (job && job->cancel.load()) throw Cancelled("eval cancelled");
    if (job && job->progress) job->progress(step++, total, "round trip layer " + std::to_string(l));
    const size_t li = static_cast<size_t>(l);
    LayerRoundTrip rt = roundtrip_layer(info_, cfg, wh, l, k_pre_[li], v_[li], positions_);
    r.aggregate.bytes += rt.k.bytes + rt.v.bytes;
    r.aggregate.bf16_bytes += rt.k.bf16_bytes + rt.v.bf16_bytes;
    tail += rt.k.tail_bytes + rt.v.tail_bytes;
    k_hat[li] = std::move(rt.k_pre_hat);
    v_hat[li] = std::move(rt.v_hat);
    kp[li] = &k_hat[li];
    vp[li] = &v_hat[li];
  }
  r.aggregate.ratio_vs_bf16 =
      r.aggregate.bytes ? static_cast<double>(r.aggregate.bf16_bytes) / static_cast<double>(r.aggregate.bytes) : NAN;
  if (r.aggregate.bytes > 0 && tail == r.aggregate.bytes)
    r.warnings.push_back("nothing was compressed: the prefill of " + std::to_string(C_) +
                         " tokens is shorter than block_size " + std::to_string(cfg.block_size) +
                         ", so every token stays in the bf16 hot tail; use --block-size <= " + std::to_string(C_));
  // Teacher-forced continuation on the reconstructed cache; score positions 0 … N−2.
  std::vector<double> lr, la, le;
  for (size_t p = 0; p < static_cast<size_t>(P_); ++p) {
    if (job && job->cancel.load()) throw Cancelled("eval cancelled");
    if (job && job->progress) job->progress(step++, total, "passage " + std::to_string(p));
    const std::vector<float> alt = continue_pass(cache_from(kp, vp, p), p);
    const std::vector<float>& ref = ref_[p].logits;
    const std::vector<float>& ex = exact_[p].logits;
    PassageResult pr;
    pr.index = static_cast<int>(p);
    pr.slot = slot_[p];
    pr.first_text_token = first_[p];
    pr.scored = N_ - 1;
    double nr = 0, na = 0, ne = 0, klsum = 0;
    int hits = 0;
    for (size_t i = 0; i + 1 < static_cast<size_t>(N_); ++i) {
      const size_t tgt = static_cast<size_t>(cont_[p][i + 1]);
      log_softmax(ref.data() + i * V, V, lr);
      log_softmax(alt.data() + i * V, V, la);
      log_softmax(ex.data() + i * V, V, le);
      nr -= lr[tgt];
      na -= la[tgt];
      ne -= le[tgt];
      double k = 0;
      for (size_t j = 0; j < V; ++j) {
        const double pj = std::exp(lr[j]);
        if (pj > 0) k += pj * (lr[j] - la[j]);
      }
      klsum += k;
      if (argmax_low(ref.data() + i * V, V) == argmax_low(alt.data() + i * V, V)) ++hits;
    }
    const double n = static_cast<double>(pr.scored);
    pr.nll_ref = nr / n;
    pr.nll_alt = na / n;
    pr.nll_exact = ne / n;
    pr.ppl_ref = std::exp(pr.nll_ref);
    pr.ppl_alt = std::exp(pr.nll_alt);
    pr.ppl_exact = std::exp(pr.nll_exact);
    pr.delta_ppl = (pr.ppl_alt - pr.ppl_ref) / pr.ppl_ref * 100.0;
    pr.top1 = 100.0 * hits / n;
    pr.kl = klsum / n;
    r.passages.push_back(pr);
  }
  const uint64_t bytes = r.aggregate.bytes, bf16 = r.aggregate.bf16_bytes;
  const double ratio = r.aggregate.ratio_vs_bf16;
  r.aggregate = aggregate_passages(r.passages, boot_);
  r.aggregate.bytes = bytes;
  r.aggregate.bf16_bytes = bf16;
  r.aggregate.ratio_vs_bf16 = ratio;
  if (r.in_sample) r.warnings.push_back("in-sample: Σ_q was calibrated on the evaluated prefill queries");
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.seconds_per_passage = r.seconds / static_cast<double>(P_);
  return r;
}

json interval_json(const Interval& x) {
  if (!x.defined()) return nullptr;
  return json::array({x.lo, x.hi});
}

json bootstrap_json(const BootstrapOptions& b) {
  return {{"method", "paired bootstrap over passages, expanded percentile interval of the mean"},
          {"resamples", b.resamples},
          {"seed", seed_hex(b.seed)},
          {"level", b.level}};
}

json eval_result_to_json(const EvalResult& r) {
  const EvalAggregate& a = r.aggregate;
  json passages = json::array();
  for (const auto& p : r.passages)
    passages.push_back({{"index", p.index},
                        {"slot", p.slot},
                        {"first_text_token", p.first_text_token},
                        {"scored", p.scored},
                        {"nll_ref", num(p.nll_ref)},
                        {"nll_alt", num(p.nll_alt)},
                        {"nll_exact", num(p.nll_exact)},
                        {"ppl_ref", num(p.ppl_ref)},
                        {"ppl_alt", num(p.ppl_alt)},
                        {"ppl_exact", num(p.ppl_exact)},
                        {"delta_ppl", num(p.delta_ppl)},
                        {"top1", num(p.top1)},
                        {"kl", num(p.kl)}});
  json j = {{"config", r.config},
            {"config_hash", r.config_hash},
            {"protocol",
             {{"context", r.context},
              {"continuation", r.continuation},
              {"passages", r.passages.size()},
              {"passages_available", r.passages_available},
              {"selection", r.selection},
              {"reference_cache", "bf16 serving cache (bf16 passthrough round trip, K post-RoPE)"},
              {"units", {{"delta_ppl", "percent"}, {"top1", "percent"}, {"kl", "nats"}}}}},
            {"bootstrap", bootstrap_json(r.bootstrap)},
            {"aggregate",
             {{"delta_ppl", num(a.delta_ppl)},
              {"delta_ppl_std", num(a.delta_ppl_std)},
              {"delta_ppl_ci", interval_json(a.delta_ppl_ci)},
              {"abs_delta_ppl", num(std::fabs(a.delta_ppl))},
              {"abs_delta_ppl_ci", interval_json(a.abs_delta_ppl_ci)},
              {"top1", num(a.top1)},
              {"top1_std", num(a.top1_std)},
              {"top1_ci", interval_json(a.top1_ci)},
              {"kl", num(a.kl)},
              {"kl_std", num(a.kl_std)},
              {"kl_ci", interval_json(a.kl_ci)},
              {"ppl_ref_pooled", num(a.ppl_ref_pooled)},
              {"ppl_alt_pooled", num(a.ppl_alt_pooled)},
              {"ppl_exact_pooled", num(a.ppl_exact_pooled)},
              {"verdict", a.verdict},
              {"verdict_possible", a.verdict_possible},
              {"passages_needed", a.passages_needed ? json(*a.passages_needed) : json(nullptr)},
              {"verdict_reason", a.verdict_reason},
              {"verdict_point", a.verdict_point},
              {"ladder", a.ladder},
              {"provisional", a.provisional},
              {"bytes", a.bytes},
              {"bf16_bytes", a.bf16_bytes},
              {"ratio_vs_bf16", num(a.ratio_vs_bf16)}}},
            {"passages", passages},
            {"in_sample", r.in_sample},
            {"warnings", r.warnings},
            {"seconds", r.seconds},
            {"seconds_per_passage", r.seconds_per_passage},
            {"prefill_seconds", r.prefill_seconds}};
  return j;
}

// ---- proxy versus truth -------------------------------------------------------------------

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size() || a.size() < 2) return NAN;
  auto ranks = [](const std::vector<double>& x) {
    std::vector<size_t> idx(x.size());
    std::iota(idx.begin(), idx.end(), 0);
    std::stable_sort(idx.begin(), idx.end(), [&](size_t i, size_t j) { return x[i] < x[j]; });
    std::vector<double> r(x.size());
    for (size_t i = 0; i < idx.size();) {
      size_t j = i;
      while (j + 1 < idx.size() && x[idx[j + 1]] == x[idx[i]]) ++j;
      const double avg = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
      for (size_t k = i; k <= j; ++k) r[idx[k]] = avg;
      i = j + 1;
    }
    return r;
  };
  const auto ra = ranks(a), rb = ranks(b);
  const double ma = mean_of(ra), mb = mean_of(rb);
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) * (ra[i] - ma);
    sbb += (rb[i] - mb) * (rb[i] - mb);
  }
  if (saa == 0 || sbb == 0) return NAN;
  return sab / std::sqrt(saa * sbb);
}

ProxyTruthResult proxy_truth(const Evaluator& ev, const std::string& capture_path,
                             const std::vector<std::pair<std::string, RunConfig>>& cells, JobControl* job) {
  ProxyTruthResult res;
  res.capture = capture_path;
  res.context = ev.context();
  res.continuation = ev.continuation();
  res.passages = ev.passages();
  RunOptions ro;
  ro.compute_sha256 = false;
  for (size_t i = 0; i < cells.size(); ++i) {
    if (job && job->cancel.load()) throw Cancelled("proxy-truth cancelled after " + std::to_string(i) + " cells");
    if (job && job->progress) job->progress(i, cells.size(), cells[i].first);
    ProxyTruthCell cell;
    cell.label = cells[i].first;
    cell.config = cells[i].second;
    try {
      const RunResult rr = run_config(capture_path, cell.config, ro);
      if (rr.failed) {
        cell.failed = true;
        for (const auto& l : rr.layers)
          for (const auto* s : {&l.k, &l.v})
            if (s->failed && cell.error.empty()) cell.error = s->error_code + ": " + s->error_message;
      } else {
        codec::ErrorSums k;
        double out = 0, kl = 0;
        size_t na = 0;
        for (const auto& l : rr.layers) {
          k.merge(l.k.err);
          if (l.has_attn) {
            out += l.attn.out_rel_err();
            kl += l.attn.kl();
            ++na;
          }
        }
        cell.k_rel_mse = k.rel_mse();
        cell.attn_out_err = na ? out / static_cast<double>(na) : NAN;
        cell.attn_kl = na ? kl / static_cast<double>(na) : NAN;
        cell.ratio = rr.ratio_vs_bf16();
        const EvalResult er = ev.evaluate(cell.config);
        cell.delta_ppl = er.aggregate.delta_ppl;
        cell.delta_ppl_ci = er.aggregate.delta_ppl_ci;
        cell.top1 = er.aggregate.top1;
        cell.kl = er.aggregate.kl;
        for (const auto& p : er.passages) cell.passage_delta_ppl.push_back(p.delta_ppl);
      }
    } catch (const Cancelled&) {
      throw;
    } catch (const Error& e) {
      cell.failed = true;
      cell.error = e.code() + ": " + e.what();
    }
    res.cells.push_back(std::move(cell));
  }
  proxy_truth_intervals(res, ev.bootstrap());
  return res;
}

void proxy_truth_intervals(ProxyTruthResult& res, const BootstrapOptions& boot) {
  res.bootstrap = boot;
  std::vector<const ProxyTruthCell*> ok;
  for (const auto& c : res.cells)
    if (!c.failed && std::isfinite(c.delta_ppl)) ok.push_back(&c);
  const char* names[] = {"k_rel_mse", "attn_out_err", "attn_kl"};
  auto proxy = [](const ProxyTruthCell& c, int k) { return k == 0 ? c.k_rel_mse : k == 1 ? c.attn_out_err : c.attn_kl; };
  std::vector<double> dp;
  std::vector<std::vector<double>> px(3);
  for (const auto* c : ok) {
    dp.push_back(std::fabs(c->delta_ppl));
    for (int k = 0; k < 3; ++k) px[k].push_back(proxy(*c, k));
  }
  res.n = dp.size();
  res.rho_k_rel_mse = spearman(px[0], dp);
  res.rho_attn_out_err = spearman(px[1], dp);
  res.rho_attn_kl = spearman(px[2], dp);
  const double point[] = {res.rho_k_rel_mse, res.rho_attn_out_err, res.rho_attn_kl};
  res.rhos.clear();
  res.pairs.clear();
  for (int k = 0; k < 3; ++k) res.rhos.push_back({names[k], point[k], Interval{NAN, NAN}});
  for (int a = 0; a < 3; ++a)
    for (int b = a + 1; b < 3; ++b) res.pairs.push_back({names[a], names[b], point[a] - point[b], Interval{NAN, NAN}, false});
  res.replicates_used = 0;
  const size_t n = ok.size();
  size_t P = n ? ok.front()->passage_delta_ppl.size() : 0;
  for (const auto* c : ok)
    if (c->passage_delta_ppl.size() != P) P = 0;  // mixed protocols: resample cells only
  if (n < 3) return;
  const size_t B = static_cast<size_t>(std::max(boot.resamples, 1));
  std::vector<std::vector<double>> rho(3), diff(res.pairs.size());
  std::vector<size_t> ci(n), pi(P);
  std::vector<double> d(n);
  std::vector<std::vector<double>> x(3, std::vector<double>(n));
  for (size_t b = 0; b < B; ++b) {
    for (size_t i = 0; i < n; ++i) ci[i] = bootstrap_index(boot.seed, b, i, n);
    for (size_t j = 0; j < P; ++j) pi[j] = bootstrap_index(boot.seed ^ kTagPassages, b, j, P);
    for (size_t i = 0; i < n; ++i) {
      const ProxyTruthCell& c = *ok[ci[i]];
      if (P) {
        double s = 0;
        for (size_t j : pi) s += c.passage_delta_ppl[j];
        d[i] = std::fabs(s / static_cast<double>(P));
      } else {
        d[i] = std::fabs(c.delta_ppl);
      }
      for (int k = 0; k < 3; ++k) x[k][i] = proxy(c, k);
    }
    double r[3];
    bool good = true;
    for (int k = 0; k < 3; ++k) {
      r[k] = spearman(x[k], d);
      good = good && std::isfinite(r[k]);
    }
    if (!good) continue;
    for (int k = 0; k < 3; ++k) rho[k].push_back(r[k]);
    size_t pidx = 0;
    for (int a = 0; a < 3; ++a)
      for (int bb = a + 1; bb < 3; ++bb) diff[pidx++].push_back(r[a] - r[bb]);
  }
  res.replicates_used = rho[0].size();
  if (res.replicates_used < 2) return;
  const double alpha = 1 - boot.level;
  for (int k = 0; k < 3; ++k) {
    std::sort(rho[k].begin(), rho[k].end());
    res.rhos[static_cast<size_t>(k)].ci = {sorted_quantile(rho[k], alpha / 2), sorted_quantile(rho[k], 1 - alpha / 2)};
  }
  for (size_t p = 0; p < diff.size(); ++p) {
    std::sort(diff[p].begin(), diff[p].end());
    res.pairs[p].ci = {sorted_quantile(diff[p], alpha / 2), sorted_quantile(diff[p], 1 - alpha / 2)};
    res.pairs[p].distinguishable = res.pairs[p].ci.lo > 0 || res.pairs[p].ci.hi < 0;
  }
}

json proxy_truth_to_json(const ProxyTruthResult& r) {
  json cells = json::array();
  for (const auto& c : r.cells) {
    json j = {{"label", c.label}, {"config", run_config_to_json(c.config)}, {"failed", c.failed}};
    if (c.failed) {
      j["error"] = c.error;
    } else {
      j["k_rel_mse"] = num(c.k_rel_mse);
      j["attn_out_err"] = num(c.attn_out_err);
      j["attn_kl"] = num(c.attn_kl);
      j["ratio_vs_bf16"] = num(c.ratio);
      j["delta_ppl"] = num(c.delta_ppl);
      j["delta_ppl_ci"] = interval_json(c.delta_ppl_ci);
      j["abs_delta_ppl"] = num(std::fabs(c.delta_ppl));
      j["top1"] = num(c.top1);
      j["kl"] = num(c.kl);
    }
    cells.push_back(j);
  }
  json rhos = json::object(), pairs = json::array();
  for (const auto& x : r.rhos) rhos[x.proxy] = {{"rho", num(x.rho)}, {"ci", interval_json(x.ci)}};
  for (const auto& p : r.pairs)
    pairs.push_back({{"a", p.a},
                     {"b", p.b},
                     {"rho_difference", num(p.diff)},
                     {"ci", interval_json(p.ci)},
                     {"distinguishable", p.distinguishable}});
  return {{"capture", r.capture},
          {"protocol", {{"context", r.context}, {"continuation", r.continuation}, {"passages", r.passages}}},
          {"cells", cells},
          {"spearman_vs_abs_delta_ppl",
           {{"k_rel_mse", num(r.rho_k_rel_mse)},
            {"attn_out_err", num(r.rho_attn_out_err)},
            {"attn_kl", num(r.rho_attn_kl)},
            {"n", r.n}}},
          {"spearman_intervals",
           {{"bootstrap", bootstrap_json(r.bootstrap)},
            {"resampled", "cells and passages"},
            {"interval", "percentile"},
            {"replicates_used", r.replicates_used},
            {"rho", rhos},
            {"pairs", pairs}}}};
}

}  // namespace kvwb::sessions
