#include "codec/cuda/metrics_host.h"

#include <cmath>

namespace kvwb::codec::cuda {

std::vector<ErrorSums> device_head_errors(MetricsWorkspace* ws, const BatchRequest& req,
                                          const float* decoded, double* device_ms) {
  ErrorJob job;
  job.sequences = req.sequences;
  job.heads = req.heads;
  job.tokens = req.tokens;
  job.dim = req.dim;
  std::vector<HeadErr> per_head;
  MetricTimings t;
  if (ws)
    ws->head_errors(job, req.rows, decoded, per_head, t);
  else
    emulate_head_errors(job, req.rows, decoded, per_head);
  if (device_ms) *device_ms = t.h2d_ms + t.kernel_ms + t.d2h_ms;
  std::vector<ErrorSums> out(req.heads);
  for (size_t h = 0; h < req.heads; ++h) {
    out[h].sq_err = per_head[h].sq_err;
    out[h].sq_ref = per_head[h].sq_ref;
    out[h].cos_sum = per_head[h].cos_sum;
    out[h].max_abs = per_head[h].max_abs;
    out[h].rows = req.sequences * req.tokens;
    out[h].values = req.sequences * req.tokens * req.dim;
  }
  return out;
}

std::vector<QueryRef> attention_query_list(const AttentionRequest& req) {
  const size_t S = req.sequences, Hq = req.q_heads, H = req.kv_heads, g = Hq / H;
  std::vector<QueryRef> out;
  for (size_t s = 0; s < S; ++s)
    for (size_t h = 0; h < H; ++h)
      for (size_t hq = h * g; hq < (h + 1) * g; ++hq)
        for (uint32_t p : (*req.samples)[s * Hq + hq])
          out.push_back({static_cast<uint32_t>(s * Hq + hq), static_cast<uint32_t>(s * H + h), p});
  return out;
}

namespace {
/// add_output_error of codec/math/metrics.cpp for one query.
void add_output(double on, double en, AttentionSums& out) {
  if (on > 0) {
    out.out_rel_err_sum += std::sqrt(en / on);
    ++out.out_count;
  } else {
    ++out.out_skipped;
  }
  out.pooled_err += en;
  out.pooled_ref += on;
  ++out.queries;
}
}  // namespace

std::vector<AttentionVariants> fold_attention(const AttentionRequest& req,
                                              const std::vector<QueryOut>& per_query) {
  const std::vector<QueryRef> refs = attention_query_list(req);
  std::vector<AttentionVariants> units(req.sequences * req.kv_heads);
  for (size_t i = 0; i < refs.size() && i < per_query.size(); ++i) {
    const QueryOut& r = per_query[i];
    AttentionVariants& u = units[refs[i].skv];
    add_output(r.o_sq, r.err_both, u.both);
    add_output(r.o_sq, r.err_k, u.k_only);
    add_output(r.o_sq, r.err_v, u.v_only);
    u.both.kl_sum += r.kl;
    u.k_only.kl_sum += r.kl;
    u.both.top1_hits += r.top1;
    u.k_only.top1_hits += r.top1;
    u.v_only.top1_hits += 1;
  }
  return units;
}

AttentionResult device_attention(MetricsWorkspace* ws, const AttentionRequest& req) {
  check_attention_request(req);
  AttnJob job;
  job.sequences = req.sequences;
  job.q_heads = req.q_heads;
  job.kv_heads = req.kv_heads;
  job.tokens = req.tokens;
  job.dim = req.dim;
  job.scale = req.scale;
  job.window = req.window;
  const std::vector<QueryRef> refs = attention_query_list(req);
  std::vector<QueryOut> per_query;
  MetricTimings t;
  if (ws)
    ws->attention(job, refs, req.q, req.k, req.v, req.khat, req.vhat, per_query, t);
  else
    emulate_attention(job, refs, req.q, req.k, req.v, req.khat, req.vhat, per_query);
  AttentionResult out;
  out.units = fold_attention(req, per_query);
  out.device_h2d_ms = t.h2d_ms;
  out.device_kernel_ms = t.kernel_ms;
  out.device_d2h_ms = t.d2h_ms;
  return out;
}

}  // namespace kvwb::codec::cuda
