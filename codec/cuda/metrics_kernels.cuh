#pragma once
// The per-work-item bodies of the CUDA metric kernels (metrics_kernels.cu), as KVWB_HD functions
// so the device kernels and the host emulation (metrics_emulate.cpp) run the same code. C++17.
//
// Reconstruction (metrics.md §1): row_error() is ErrorSums::add + row_cosine for one row (same f64
// operations in the same order; built without contraction, so the same bits), head_add() adds one
// row to a head's sums in the CPU's order.
//
// Attention (metrics.md §3.3), one block of kAttnThreads threads per sampled query, four phases
// separated by barriers; each phase is a per-thread body (thread tid of nt handles keys
// t0 + tid, t0 + tid + nt, … or dims tid, tid + nt, …) and ends in a fixed-order tree reduction of
// the per-thread partials (tree_sum / tree_argmax), so the device and the emulation add in the
// same order:
//   1. logits z_t = a·⟨q, k_t⟩, ẑ_t = a·⟨q, k̂_t⟩ in f32 (sequential dot over D); max and argmax
//      (lowest t on ties) of each;
//   2. e_t = exp(z_t − max z) in f64 and their sum, likewise ê_t;
//   3. π_t = e_t / Σe, π̂_t likewise (stored), KL(π‖π̂) with ln π̂_t = ẑ_t − logsumexp(ẑ);
//   4. per dimension o = Σ π_t v_t, and π̂·V, π·V̂, π̂·V̂ (f64, ascending t); ‖o‖² and the three
//      ‖o − ô‖².
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "codec/cuda/metrics_device.h"
#include "codec/kernels/hd.h"

namespace kvwb::codec::cuda::metrics {

// ---- reconstruction -------------------------------------------------------------------------

/// One row's contribution to ErrorSums (metrics.md §1).
struct RowErr {
  double sq_err, sq_ref, cos, max_abs;
};

/// ErrorSums::add and row_cosine of one row a, b [d]: the same operations in the same order.
KVWB_HD inline RowErr row_error(const float* a, const float* b, size_t d) {
  double e = 0, r = 0, m = 0, xy = 0, yy = 0;
  for (size_t j = 0; j < d; ++j) {
    const double diff = static_cast<double>(a[j]) - static_cast<double>(b[j]);
    e += diff * diff;
    r += static_cast<double>(a[j]) * a[j];
    const double ad = std::fabs(diff);
    m = m < ad ? ad : m;  // std::max(m, ad)
    xy += static_cast<double>(a[j]) * b[j];
    yy += static_cast<double>(b[j]) * b[j];
  }
  double c;
  if (r == 0 && yy == 0)
    c = 1.0;
  else if (r == 0 || yy == 0)
    c = 0.0;
  else
    c = xy / (std::sqrt(r) * std::sqrt(yy));
  return {e, r, c, m};
}

/// Work item i of the row kernel: row i of [S, H, T] (i < S·H·T).
KVWB_HD inline void row_error_at(size_t i, const ErrorJob& job, const float* __restrict__ x,
                                 const float* __restrict__ xhat, RowErr* __restrict__ out) {
  if (i >= job.sequences * job.heads * job.tokens) return;
  out[i] = row_error(x + i * job.dim, xhat + i * job.dim, job.dim);
}

/// Row r (0 … S·T−1, sequence-major) of kv head h, as an index into [S, H, T].
KVWB_HD inline size_t head_row(const ErrorJob& job, size_t h, size_t r) {
  const size_t s = r / job.tokens, t = r % job.tokens;
  return (s * job.heads + h) * job.tokens + t;
}

/// Adds one row to a head's sums exactly as ErrorSums::add does.
KVWB_HD inline void head_add(HeadErr& acc, const RowErr& row) {
  acc.sq_err += row.sq_err;
  acc.sq_ref += row.sq_ref;
  acc.cos_sum += row.cos;
  acc.max_abs = acc.max_abs < row.max_abs ? row.max_abs : acc.max_abs;
}

// ---- attention ------------------------------------------------------------------------------

/// Keys a query at position p sees: t0 … p.
KVWB_HD inline size_t attn_first_key(size_t p, int window) {
  return window > 0 && p + 1 > static_cast<size_t>(window) ? p + 1 - static_cast<size_t>(window)
                                                           : 0;
}

/// The arrays of one query (pointers into the job's inputs).
struct QueryView {
  const float *q, *k, *v, *kh, *vh;  // q [D]; k, v, kh, vh [T, D] of its kv head
  size_t p, t0, D;
  float scale;
};

KVWB_HD inline QueryView query_view(const AttnJob& job, const QueryRef& ref, const float* q,
                                    const float* k, const float* v, const float* kh,
                                    const float* vh) {
  const size_t T = job.tokens, D = job.dim;
  QueryView w;
  w.q = q + (static_cast<size_t>(ref.sq) * T + ref.p) * D;
  const size_t base = static_cast<size_t>(ref.skv) * T * D;
  w.k = k + base;
  w.v = v + base;
  w.kh = kh + base;
  w.vh = vh + base;
  w.p = ref.p;
  w.t0 = attn_first_key(ref.p, job.window);
  w.D = D;
  w.scale = job.scale;
  return w;
}

/// Per-thread partials of phases 1–4 (each a shared-memory array of nt entries on the device).
struct AttnScratch {
  float *mz, *mzh;         // phase 1: max logit
  uint32_t *am, *amh;      // phase 1: its lowest index
  double *s, *sh;          // phase 2: Σ exp
  double *kl;              // phase 3
  double *on, *eb, *ek, *ev;  // phase 4
};

/// Phase 1, thread tid of nt: logits into z, zh (indexed by t), local max / argmax.
KVWB_HD inline void attn_logits_at(unsigned tid, unsigned nt, const QueryView& w,
                                   float* __restrict__ z, float* __restrict__ zh,
                                   const AttnScratch& sc) {
  float m = -INFINITY, mh = -INFINITY;
  uint32_t a = 0xFFFFFFFFu, ah = 0xFFFFFFFFu;
  for (size_t t = w.t0 + tid; t <= w.p; t += nt) {
    const float* kt = w.k + t * w.D;
    const float* kht = w.kh + t * w.D;
    float d = 0.0f, dh = 0.0f;
    for (size_t j = 0; j < w.D; ++j) {
      d += w.q[j] * kt[j];
      dh += w.q[j] * kht[j];
    }
    const float zt = d * w.scale, zht = dh * w.scale;
    z[t] = zt;
    zh[t] = zht;
    if (zt > m || a == 0xFFFFFFFFu) {
      m = zt;
      a = static_cast<uint32_t>(t);
    }
    if (zht > mh || ah == 0xFFFFFFFFu) {
      mh = zht;
      ah = static_cast<uint32_t>(t);
    }
  }
  sc.mz[tid] = m;
  sc.mzh[tid] = mh;
  sc.am[tid] = a;
  sc.amh[tid] = ah;
}

/// One tree step of the (max, lowest index) reduction: entry tid takes entry tid + half when that
/// one is larger, or equal with a lower index (an empty entry has index 0xFFFFFFFF).
KVWB_HD inline void tree_argmax_step(float* m, uint32_t* a, unsigned tid, unsigned half) {
  if (tid >= half) return;
  const unsigned o = tid + half;
  if (a[o] == 0xFFFFFFFFu) return;
  if (a[tid] == 0xFFFFFFFFu || m[o] > m[tid] || (m[o] == m[tid] && a[o] < a[tid])) {
    m[tid] = m[o];
    a[tid] = a[o];
  }
}

/// One tree step of a sum: entry tid adds entry tid + half.
KVWB_HD inline void tree_sum_step(double* x, unsigned tid, unsigned half) {
  if (tid < half) x[tid] += x[tid + half];
}

/// Phase 2: e_t = exp(z_t − mz) into pi, likewise pih; per-thread sums.
KVWB_HD inline void attn_exp_at(unsigned tid, unsigned nt, const QueryView& w, const float* z,
                                const float* zh, double mz, double mzh, double* __restrict__ pi,
                                double* __restrict__ pih, const AttnScratch& sc) {
  double s = 0, sh = 0;
  for (size_t t = w.t0 + tid; t <= w.p; t += nt) {
    const double e = std::exp(static_cast<double>(z[t]) - mz);
    const double eh = std::exp(static_cast<double>(zh[t]) - mzh);
    pi[t] = e;
    pih[t] = eh;
    s += e;
    sh += eh;
  }
  sc.s[tid] = s;
  sc.sh[tid] = sh;
}

/// logsumexp of a softmax row from its max and its Σ exp(z − max), as the CPU's masked_softmax.
KVWB_HD inline double attn_lse(double m, double s) { return m + std::log(s); }

/// Phase 3: normalise π, π̂ in place; per-thread KL terms (lse = mz + ln Σe).
KVWB_HD inline void attn_kl_at(unsigned tid, unsigned nt, const QueryView& w, const float* z,
                               const float* zh, double s, double sh, double lse, double lseh,
                               double* __restrict__ pi, double* __restrict__ pih,
                               const AttnScratch& sc) {
  double kl = 0;
  for (size_t t = w.t0 + tid; t <= w.p; t += nt) {
    const double p = pi[t] / s, ph = pih[t] / sh;
    pi[t] = p;
    pih[t] = ph;
    if (p > 0)
      kl += p * ((static_cast<double>(z[t]) - lse) - (static_cast<double>(zh[t]) - lseh));
  }
  sc.kl[tid] = kl;
}

/// Phase 4: output dimensions tid, tid + nt, …: o, π̂·V, π·V̂, π̂·V̂ and the squared norms.
KVWB_HD inline void attn_out_at(unsigned tid, unsigned nt, const QueryView& w, const double* pi,
                                const double* pih, const AttnScratch& sc) {
  double on = 0, eb = 0, ek = 0, ev = 0;
  for (size_t d = tid; d < w.D; d += nt) {
    double o = 0, ok = 0, ov = 0, ob = 0;
    for (size_t t = w.t0; t <= w.p; ++t) {
      const double vt = w.v[t * w.D + d], vht = w.vh[t * w.D + d];
      o += pi[t] * vt;
      ok += pih[t] * vt;
      ov += pi[t] * vht;
      ob += pih[t] * vht;
    }
    on += o * o;
    eb += (o - ob) * (o - ob);
    ek += (o - ok) * (o - ok);
    ev += (o - ov) * (o - ov);
  }
  sc.on[tid] = on;
  sc.eb[tid] = eb;
  sc.ek[tid] = ek;
  sc.ev[tid] = ev;
}

/// The query's result from the reduced partials (entry 0 of each).
KVWB_HD inline QueryOut attn_result(const AttnScratch& sc) {
  QueryOut r;
  r.o_sq = sc.on[0];
  r.err_both = sc.eb[0];
  r.err_k = sc.ek[0];
  r.err_v = sc.ev[0];
  r.kl = sc.kl[0] > 0 ? sc.kl[0] : 0.0;  // ≥ 0 mathematically (as the CPU clamps)
  r.top1 = sc.am[0] == sc.amh[0] ? 1u : 0u;
  return r;
}

}  // namespace kvwb::codec::cuda::metrics
