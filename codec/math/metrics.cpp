#include "codec/math/metrics.h"

#include "codec/math/rng.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <limits>

namespace kvwb::codec {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}

double row_cosine(const float* x, const float* y, size_t d) {
  double xy = 0, xx = 0, yy = 0;
  for (size_t j = 0; j < d; ++j) {
    xy += static_cast<double>(x[j]) * y[j];
    xx += static_cast<double>(x[j]) * x[j];
    yy += static_cast<double>(y[j]) * y[j];
  }
  if (xx == 0 && yy == 0) return 1.0;
  if (xx == 0 || yy == 0) return 0.0;
  return xy / (std::sqrt(xx) * std::sqrt(yy));
}

namespace {
/// One row's sums, each in index order (the same bits as the separate loops of row_cosine).
struct RowSums {
  double e = 0, xx = 0, xy = 0, yy = 0, max_abs = 0;
};

double cosine_of(const RowSums& r) {
  if (r.xx == 0 && r.yy == 0) return 1.0;
  if (r.xx == 0 || r.yy == 0) return 0.0;
  return r.xy / (std::sqrt(r.xx) * std::sqrt(r.yy));
}
}  // namespace

void ErrorSums::add(const float* x, const float* xhat, size_t n, size_t d) {
  // Two rows at a time, all sums of both rows in one pass: independent dependency chains (each
  // keeps its scalar index order, so the result bits are those of a row-by-row loop).
  size_t i = 0;
  for (; i + 2 <= n; i += 2) {
    const float* a0 = x + i * d;
    const float* b0 = xhat + i * d;
    const float* a1 = a0 + d;
    const float* b1 = b0 + d;
    RowSums r0, r1;
    for (size_t j = 0; j < d; ++j) {
      const double x0 = a0[j], y0 = b0[j], x1 = a1[j], y1 = b1[j];
      const double d0 = x0 - y0, d1 = x1 - y1;
      r0.e += d0 * d0;
      r1.e += d1 * d1;
      r0.xx += x0 * x0;
      r1.xx += x1 * x1;
      r0.xy += x0 * y0;
      r1.xy += x1 * y1;
      r0.yy += y0 * y0;
      r1.yy += y1 * y1;
      r0.max_abs = std::max(r0.max_abs, std::fabs(d0));
      r1.max_abs = std::max(r1.max_abs, std::fabs(d1));
    }
    for (const RowSums* r : {&r0, &r1}) {
      sq_err += r->e;
      sq_ref += r->xx;
      cos_sum += cosine_of(*r);
      max_abs = std::max(max_abs, r->max_abs);
    }
  }
  for (; i < n; ++i) {
    const float* a = x + i * d;
    const float* b = xhat + i * d;
    RowSums r;
    for (size_t j = 0; j < d; ++j) {
      const double xa = a[j], yb = b[j];
      const double diff = xa - yb;
      r.e += diff * diff;
      r.xx += xa * xa;
      r.xy += xa * yb;
      r.yy += yb * yb;
      r.max_abs = std::max(r.max_abs, std::fabs(diff));
    }
    sq_err += r.e;
    sq_ref += r.xx;
    cos_sum += cosine_of(r);
    max_abs = std::max(max_abs, r.max_abs);
  }
  rows += n;
  values += n * d;
}

void ErrorSums::add_whitened(const float* xl, const float* xhatl, size_t n, size_t d) {
  for (size_t i = 0; i < n * d; ++i) {
    const double diff = static_cast<double>(xl[i]) - static_cast<double>(xhatl[i]);
    whitened_sq_err += diff * diff;
  }
  has_whitened = true;
}

void ErrorSums::merge(const ErrorSums& o) {
  sq_err += o.sq_err;
  sq_ref += o.sq_ref;
  cos_sum += o.cos_sum;
  max_abs = std::max(max_abs, o.max_abs);
  whitened_sq_err += o.whitened_sq_err;
  rows += o.rows;
  values += o.values;
  has_whitened = has_whitened || o.has_whitened;
}

double ErrorSums::mse() const { return values ? sq_err / static_cast<double>(values) : kNaN; }
double ErrorSums::rel_mse() const { return sq_ref > 0 ? sq_err / sq_ref : kNaN; }
double ErrorSums::snr_db() const {
  const double r = rel_mse();
  return (std::isnan(r) || r <= 0) ? kNaN : -10.0 * std::log10(r);
}
double ErrorSums::cosine() const { return rows ? cos_sum / static_cast<double>(rows) : kNaN; }
double ErrorSums::whitened_mse() const {
  return (has_whitened && values) ? whitened_sq_err / static_cast<double>(values) : kNaN;
}

void AttentionSums::merge(const AttentionSums& o) {
  out_rel_err_sum += o.out_rel_err_sum;
  out_count += o.out_count;
  out_skipped += o.out_skipped;
  pooled_err += o.pooled_err;
  pooled_ref += o.pooled_ref;
  kl_sum += o.kl_sum;
  top1_hits += o.top1_hits;
  queries += o.queries;
}

double AttentionSums::out_rel_err() const {
  return out_count ? out_rel_err_sum / static_cast<double>(out_count) : kNaN;
}
double AttentionSums::out_rel_err_pooled() const {
  return pooled_ref > 0 ? std::sqrt(pooled_err / pooled_ref) : kNaN;
}
double AttentionSums::kl() const { return queries ? kl_sum / static_cast<double>(queries) : kNaN; }
double AttentionSums::top1() const {
  return queries ? static_cast<double>(top1_hits) / static_cast<double>(queries) : kNaN;
}

std::vector<uint32_t> attention_query_sample(size_t T) {
  std::vector<uint32_t> p;
  if (T <= 2048) {
    p.resize(T);
    for (size_t i = 0; i < T; ++i) p[i] = static_cast<uint32_t>(i);
  } else {
    p.resize(2048);
    for (size_t i = 0; i < 2048; ++i) p[i] = static_cast<uint32_t>((i + 1) * T / 2048 - 1);
  }
  return p;
}

std::vector<uint32_t> attention_query_sample(size_t T, size_t n, uint64_t sequence, uint64_t q_head) {
  std::vector<uint32_t> all = attention_query_sample(T);
  if (n == 0 || n >= all.size()) return all;
  constexpr uint64_t kTagAttnSample = 0x4154544E5F534D50ull;  // "ATTN_SMP"
  const uint64_t key = rng::kDefaultSeed ^ kTagAttnSample ^ rng::mix64((sequence << 20) + q_head);
  for (size_t i = 0; i < n; ++i) {
    const size_t j = i + static_cast<size_t>(rng::splitmix(key, i) % (all.size() - i));
    std::swap(all[i], all[j]);
  }
  all.resize(n);
  std::sort(all.begin(), all.end());
  return all;
}

namespace {
using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
/// Queries per GEMM chunk: bounds memory at chunk × T doubles. The sample is ascending, so a chunk's
/// last query bounds the key positions it can see (causal mask): smaller chunks skip more of the
/// masked right part of the score and P·V products (about 3/8 of the work at 4 chunks).
constexpr size_t kQueryChunk = 64;

/// Softmax rows (f64, max subtracted) of logits Z [c, T] for queries p = sample[q0 + i] under the
/// causal / sliding mask; masked entries are 0. lse receives the log-sum-exp of each row.
void masked_softmax(const MatF& Z, const std::vector<uint32_t>& sample, size_t q0, int window, MatD& pi,
                    std::vector<double>& lse) {
  const size_t c = static_cast<size_t>(Z.rows()), T = static_cast<size_t>(Z.cols());
  pi.setZero(c, T);
  lse.assign(c, 0.0);
  for (size_t i = 0; i < c; ++i) {
    const size_t p = sample[q0 + i];
    const size_t t0 = window > 0 && p + 1 > static_cast<size_t>(window) ? p + 1 - window : 0;
    double mz = -INFINITY;
    for (size_t t = t0; t <= p; ++t) mz = std::max(mz, static_cast<double>(Z(i, t)));
    double s = 0;
    for (size_t t = t0; t <= p; ++t) {
      const double e = std::exp(static_cast<double>(Z(i, t)) - mz);
      pi(i, t) = e;
      s += e;
    }
    for (size_t t = t0; t <= p; ++t) pi(i, t) /= s;
    lse[i] = mz + std::log(s);
  }
}

void add_output_error(const MatD& O, const MatD& Oh, AttentionSums& out) {
  for (Eigen::Index i = 0; i < O.rows(); ++i) {
    const double on = O.row(i).squaredNorm();
    const double en = (O.row(i) - Oh.row(i)).squaredNorm();
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
}
}  // namespace

void accumulate_attention(const float* q, const float* k, const float* v, const float* khat,
                          const float* vhat, size_t T, size_t D, const std::vector<uint32_t>& sample,
                          float scale, int window, AttentionVariants& out) {
  Eigen::Map<const MatF> K(k, T, D), Kh(khat, T, D);
  const MatD V = Eigen::Map<const MatF>(v, T, D).cast<double>();
  const MatD Vh = Eigen::Map<const MatF>(vhat, T, D).cast<double>();
  MatD pi, pih;
  std::vector<double> lse, lseh;
  for (size_t q0 = 0; q0 < sample.size(); q0 += kQueryChunk) {
    const size_t c = std::min(kQueryChunk, sample.size() - q0);
    const Eigen::Index seen = static_cast<Eigen::Index>(sample[q0 + c - 1]) + 1;  // keys 0..last query
    MatF qs(c, D);
    for (size_t i = 0; i < c; ++i)
      for (size_t j = 0; j < D; ++j) qs(i, j) = q[static_cast<size_t>(sample[q0 + i]) * D + j];
    const MatF Z = (qs * K.topRows(seen).transpose()) * scale;  // [c, seen] f32 logits
    const MatF Zh = (qs * Kh.topRows(seen).transpose()) * scale;
    masked_softmax(Z, sample, q0, window, pi, lse);
    masked_softmax(Zh, sample, q0, window, pih, lseh);
    const auto Vs = V.topRows(seen), Vhs = Vh.topRows(seen);
    const MatD O = pi * Vs, Ok = pih * Vs, Ov = pi * Vhs, Ob = pih * Vhs;
    add_output_error(O, Ob, out.both);
    add_output_error(O, Ok, out.k_only);
    add_output_error(O, Ov, out.v_only);
    for (size_t i = 0; i < c; ++i) {
      const size_t p = sample[q0 + i];
      const size_t t0 = window > 0 && p + 1 > static_cast<size_t>(window) ? p + 1 - window : 0;
      double kl = 0;
      size_t am = t0, amh = t0;
      for (size_t t = t0; t <= p; ++t) {
        if (pi(i, t) > 0)
          kl += pi(i, t) * ((static_cast<double>(Z(i, t)) - lse[i]) - (static_cast<double>(Zh(i, t)) - lseh[i]));
        if (Z(i, t) > Z(i, am)) am = t;
        if (Zh(i, t) > Zh(i, amh)) amh = t;
      }
      kl = std::max(kl, 0.0);  // ≥ 0 mathematically; clamps f64 rounding of ~1e-17
      out.both.kl_sum += kl;
      out.k_only.kl_sum += kl;
      const uint64_t hit = am == amh ? 1 : 0;
      out.both.top1_hits += hit;
      out.k_only.top1_hits += hit;
      out.v_only.top1_hits += 1;
    }
  }
}

void accumulate_key_attention_mass(const float* q, const float* k, size_t T, size_t D,
                                   const std::vector<uint32_t>& sample, float scale, int window,
                                   std::vector<double>& a) {
  Eigen::Map<const MatF> K(k, T, D);
  MatD pi;
  std::vector<double> lse;
  for (size_t q0 = 0; q0 < sample.size(); q0 += kQueryChunk) {
    const size_t c = std::min(kQueryChunk, sample.size() - q0);
    MatF qs(c, D);
    for (size_t i = 0; i < c; ++i)
      for (size_t j = 0; j < D; ++j) qs(i, j) = q[static_cast<size_t>(sample[q0 + i]) * D + j];
    const MatF Z = (qs * K.transpose()) * scale;
    masked_softmax(Z, sample, q0, window, pi, lse);
    for (size_t i = 0; i < c; ++i)
      for (size_t t = 0; t < T; ++t) a[t] += pi(i, t);
  }
}

void matmul_rows(const float* rows, size_t n, size_t d, const float* m, float* out) {
  Eigen::Map<const MatF> X(rows, n, d), M(m, d, d);
  Eigen::Map<MatF> Y(out, n, d);
  Y.noalias() = X * M;
}

double excess_kurtosis(const float* v, size_t n, size_t stride) {
  if (n == 0) return kNaN;
  double mean = 0;
  for (size_t i = 0; i < n; ++i) mean += v[i * stride];
  mean /= static_cast<double>(n);
  double m2 = 0, m4 = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = v[i * stride] - mean;
    const double d2 = d * d;
    m2 += d2;
    m4 += d2 * d2;
  }
  m2 /= static_cast<double>(n);
  m4 /= static_cast<double>(n);
  if (m2 == 0) return kNaN;
  return m4 / (m2 * m2) - 3.0;
}

}  // namespace kvwb::codec
