// Host emulation of the metric kernels (metrics_kernels.cu): every work item of every kernel, in
// order, on one thread, through the item bodies of metrics_kernels.cuh, with the same tree order
// of the per-thread partials (kAttnThreads entries). No CUDA call: the CPU-only self-test checks
// the device metric code against the CPU metrics (codec/math/metrics.cpp) without a device.
#include <cmath>
#include <vector>

#include "codec/cuda/metrics_device.h"
#include "codec/cuda/metrics_kernels.cuh"

namespace kvwb::codec::cuda {

void emulate_head_errors(const ErrorJob& job, const float* x, const float* xhat,
                         std::vector<HeadErr>& out) {
  using namespace metrics;
  const size_t rows = job.sequences * job.heads * job.tokens;
  std::vector<RowErr> per_row(rows);
  for (size_t i = 0; i < rows; ++i) row_error_at(i, job, x, xhat, per_row.data());
  out.assign(job.heads, {});
  const size_t n = job.sequences * job.tokens;
  for (size_t h = 0; h < job.heads; ++h)
    for (size_t r = 0; r < n; ++r) head_add(out[h], per_row[head_row(job, h, r)]);
}

void emulate_attention(const AttnJob& job, const std::vector<QueryRef>& queries, const float* q,
                       const float* k, const float* v, const float* khat, const float* vhat,
                       std::vector<QueryOut>& out) {
  using namespace metrics;
  constexpr unsigned nt = kAttnThreads;
  const size_t T = job.tokens;
  std::vector<float> z(T), zh(T), mz(nt), mzh(nt);
  std::vector<double> pi(T), pih(T), s(nt), sh(nt), kl(nt), on(nt), eb(nt), ek(nt), ev(nt);
  std::vector<uint32_t> am(nt), amh(nt);
  const AttnScratch sc{mz.data(), mzh.data(), am.data(), amh.data(), s.data(), sh.data(),
                       kl.data(), on.data(), eb.data(), ek.data(), ev.data()};
  auto tree_sum = [&](double* a) {
    for (unsigned half = nt / 2; half > 0; half /= 2)
      for (unsigned tid = 0; tid < half; ++tid) tree_sum_step(a, tid, half);
  };
  out.assign(queries.size(), {});
  for (size_t qi = 0; qi < queries.size(); ++qi) {
    const QueryView w = query_view(job, queries[qi], q, k, v, khat, vhat);
    for (unsigned tid = 0; tid < nt; ++tid) attn_logits_at(tid, nt, w, z.data(), zh.data(), sc);
    for (unsigned half = nt / 2; half > 0; half /= 2)
      for (unsigned tid = 0; tid < half; ++tid) {
        tree_argmax_step(sc.mz, sc.am, tid, half);
        tree_argmax_step(sc.mzh, sc.amh, tid, half);
      }
    const double m = sc.mz[0], mh = sc.mzh[0];
    for (unsigned tid = 0; tid < nt; ++tid)
      attn_exp_at(tid, nt, w, z.data(), zh.data(), m, mh, pi.data(), pih.data(), sc);
    tree_sum(sc.s);
    tree_sum(sc.sh);
    const double s0 = sc.s[0], sh0 = sc.sh[0];
    const double lse = attn_lse(m, s0), lseh = attn_lse(mh, sh0);
    for (unsigned tid = 0; tid < nt; ++tid)
      attn_kl_at(tid, nt, w, z.data(), zh.data(), s0, sh0, lse, lseh, pi.data(), pih.data(), sc);
    tree_sum(sc.kl);
    for (unsigned tid = 0; tid < nt; ++tid) attn_out_at(tid, nt, w, pi.data(), pih.data(), sc);
    tree_sum(sc.on);
    tree_sum(sc.eb);
    tree_sum(sc.ek);
    tree_sum(sc.ev);
    out[qi] = attn_result(sc);
  }
}

}  // namespace kvwb::codec::cuda
