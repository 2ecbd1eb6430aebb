#pragma once
// The work-item bodies of the CUDA Kakeya-PCA kernels (kakeya_kernels.cu), as KVWB_HD functions
// that the device kernels call once per thread (or once per thread block, for the cooperative
// stages) and that the host emulation (kakeya_emulate.cpp) calls for every item in turn. C++17.
//
// Two kinds of stage:
//  - item stages (`*_at(i, ...)`): item i is independent of every other item of the launch
//    (mean: one (fit, column); covariance: one (fit, i, j ≤ i); projection, code, decode: one row);
//  - team stages (`*_fit`, `kmeans_block`): one thread block per fit / code block, written against
//    a Team with each(n, f) (items 0..n−1 spread over the team) and sync() (__syncthreads on the
//    device, nothing on the host). Every value is computed by exactly one item in a fixed order,
//    and every serial scan (sort, argmax, valid-row list) is one item, so the results do not
//    depend on the number of threads.
// Sums run in index order; f64 where the spec asks (mean, covariance, eigensolver). Reductions
// differ from the CPU's Eigen GEMMs in the last bits (codec-kakeya.md §12 allows it), so decoded
// values match the CPU within the parity bar, not bit for bit.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "codec/cuda/kakeya_device.h"
#include "codec/cuda/peer_device.h"
#include "codec/kernels/half.h"
#include "codec/kernels/hd.h"
#include "codec/kernels/kakeya.h"
#include "codec/kernels/lloyd_max.h"
#include "codec/kernels/rng.h"
#include "codec/kernels/wht.h"

namespace kvwb::codec::cuda::kak {

namespace k = kvwb::codec::kernels;

/// f32 machine epsilon 2^-23 (the spec's ε).
inline constexpr float kEps = 1.1920929e-7f;
/// Jacobi sweeps at most (quadratic convergence needs about 10 for D = 128).
inline constexpr int kMaxSweeps = 60;
/// Largest residual length (next_pow2 of the largest D).
inline constexpr size_t kMaxWl = kKakeyaMaxDim;

KVWB_HD inline void flag_or(uint32_t* p, uint32_t v) {
#if defined(__CUDA_ARCH__)
  atomicOr(p, v);
#else
  *p |= v;
#endif
}
KVWB_HD inline bool finite32(float v) { return (k::f32_bits(v) & 0x7F800000u) != 0x7F800000u; }
KVWB_HD inline bool finite64(double v) { return v == v && v - v == 0.0; }

/// The team every cooperative stage runs on: the host's runs items one after another.
struct HostTeam {
  template <class F>
  KVWB_HD void each(size_t n, F&& f) const {
    for (size_t i = 0; i < n; ++i) f(i);
  }
  KVWB_HD void sync() const {}
};

/// Shape of a batch (passed by value). Coded row index ci = unit·nb·bs + unit row.
struct KShape {
  size_t S, H, T, D;
  bool pooled, shared;
  size_t units, unit_rows, bs, nb;
  size_t blocks;      // units · nb
  size_t fits;        // shared ? units : blocks
  size_t fit_rows;    // shared ? nb·bs : bs
  size_t coded_rows;  // blocks · bs
  size_t wmax;        // next_pow2(D): row stride of the code arrays
  size_t kmax;        // min(k, bs): centre slots per block
};

/// Codec parameters (passed by value).
struct KParams {
  double vr;
  size_t cap, k, max_iter;
  uint64_t seed;
  unsigned bits, tsize;
  float table[16];
  uint8_t dtype;  // 0 fp16, 1 bf16, 2 fp32
  bool outliers, collect, weighted;
  float threshold;
};

/// Device (or emulation) arrays of one batch.
struct KBuffers {
  const float* rows;    // [S, H, T, D]
  const float* w;       // [coded rows] or null (all ones)
  float* mean_raw;      // [F, D] f32 mean before rounding (the PCA fit uses it)
  double* sw;           // [F] Σ w
  double* a;            // [F, D, D] covariance, diagonalised in place by Jacobi
  double* v;            // [F, D, D] eigenvectors (columns)
  double* rot;          // [F, pairs, 2] (c, s) of the current round
  uint32_t* order;      // [F, D] eigenpair order, descending
  uint32_t* jflag;      // [F] "a rotation happened in this sweep"
  uint16_t* d_eff;      // [F]
  float* mean;          // [F, D] rounded
  float* basis;         // [F, D, D] rounded rows < d_eff
  float* coef;          // [R, D] PCA coefficients (entries < d_eff)
  float* cnorm;         // [R] ‖coef‖ (f32, index order)
  uint32_t* valid;      // [B, bs] valid rows of a block, ascending
  float* dir;           // [R, D] unit directions, by valid position
  float* maxcos;        // [R]
  uint32_t* cur;        // [R]
  uint32_t* prev;       // [R]
  float* sgn;           // [R] σ_i · w_i of the current assignment
  float* cen;           // [B, kmax, D] centres
  float* vsum;          // [B, kmax, D]
  double* wsum;         // [B, kmax]
  uint32_t* kscal;      // [B, 4]: n_valid, pick, changed, (unused)
  uint16_t* k_eff;      // [B]
  uint16_t* seg;        // [R]
  uint16_t* t_bits;     // [R]
  uint16_t* norm_bits;  // [R]
  uint16_t* out_count;  // [R]
  uint16_t* idx;        // [R, W]
  uint16_t* out_idx;    // [R, W]
  uint16_t* out_val;    // [R, W]
  float* resid;         // [R, W] or null
  float* dec;           // [S, H, T, D]
  uint32_t* flags;      // [units]
};

/// Row index in [S, H, T] of unit u's row r.
KVWB_HD inline size_t src_row(const KShape& sh, size_t u, size_t r) {
  if (!sh.pooled) return u * sh.T + r;
  return (u * sh.H + r % sh.H) * sh.T + r / sh.H;
}
KVWB_HD inline size_t unit_of_fit(const KShape& sh, size_t f) { return sh.shared ? f : f / sh.nb; }
/// First unit row of fit f.
KVWB_HD inline size_t row0_of_fit(const KShape& sh, size_t f) {
  return sh.shared ? 0 : (f % sh.nb) * sh.bs;
}
KVWB_HD inline size_t fit_of_block(const KShape& sh, size_t blk) {
  return sh.shared ? blk / sh.nb : blk;
}
KVWB_HD inline float weight(const KBuffers& b, size_t ci) { return b.w ? b.w[ci] : 1.0f; }

/// rnd_dtype (§0): the value the skeleton stores; flags the unit when it cannot be stored.
KVWB_HD inline float round_dtype(float v, uint8_t dtype, uint32_t* flag) {
  if (!finite32(v)) {
    flag_or(flag, kFlagNonFinite);
    return 0.0f;
  }
  if (dtype == 0) {
    if (!(std::fabs(v) <= k::kFp16Max)) {
      flag_or(flag, kFlagFp16Range);
      return 0.0f;
    }
    return k::f16_bits_to_f32(k::f32_to_f16_bits(v));
  }
  if (dtype == 1) {
    const uint16_t h = k::f32_to_bf16_bits(v);
    if ((h & 0x7FFFu) == 0x7F80u) {
      flag_or(flag, kFlagBf16Range);
      return 0.0f;
    }
    return k::bf16_bits_to_f32(h);
  }
  return v;
}

/// fp16 bits of a per-row field (t, residual norm, outlier value); flags the unit when out of
/// range.
KVWB_HD inline uint16_t f16_field(float v, uint32_t* flag) {
  if (!finite32(v)) {
    flag_or(flag, kFlagNonFinite);
    return 0;
  }
  if (!(std::fabs(v) <= k::kFp16Max)) {
    flag_or(flag, kFlagFp16Range);
    return 0;
  }
  return k::f32_to_f16_bits(v);
}

/// f32 dot product of a[0..n) and b[0..n) in index order.
KVWB_HD inline float dot32(const float* a, const float* b, size_t n) {
  float s = 0.0f;
  for (size_t j = 0; j < n; ++j) s += a[j] * b[j];
  return s;
}

// ---- §5.2 weighted mean: item (fit, column) ----------------------------------------------------

KVWB_HD inline void mean_at(size_t i, const KShape& sh, const KBuffers& b) {
  if (i >= sh.fits * sh.D) return;
  const size_t f = i / sh.D, j = i % sh.D;
  const size_t u = unit_of_fit(sh, f), r0 = row0_of_fit(sh, f);
  double acc = 0.0, sw = 0.0;
  for (size_t r = r0; r < r0 + sh.fit_rows; ++r) {
    const double wi = weight(b, u * sh.nb * sh.bs + r);
    if (!(wi > 0.0)) continue;
    sw += wi;
    acc += wi * static_cast<double>(b.rows[src_row(sh, u, r) * sh.D + j]);
  }
  b.mean_raw[f * sh.D + j] = static_cast<float>(acc / sw);
  if (j == 0) b.sw[f] = sw;
}

// ---- §5.3.1 covariance (f64): item (fit, i, j ≤ i); also sets V = I ----------------------------

KVWB_HD inline void cov_at(size_t i, const KShape& sh, const KBuffers& b) {
  const size_t P = sh.D * (sh.D + 1) / 2;
  if (i >= sh.fits * P) return;
  const size_t f = i / P, p = i % P;
  size_t r = static_cast<size_t>((std::sqrt(8.0 * static_cast<double>(p) + 1.0) - 1.0) / 2.0);
  while (r * (r + 1) / 2 > p) --r;
  while ((r + 1) * (r + 2) / 2 <= p) ++r;
  const size_t c = p - r * (r + 1) / 2;  // c ≤ r
  const size_t u = unit_of_fit(sh, f), r0 = row0_of_fit(sh, f), D = sh.D;
  const double mr = b.mean_raw[f * D + r], mc = b.mean_raw[f * D + c];
  double acc = 0.0;
  for (size_t q = r0; q < r0 + sh.fit_rows; ++q) {
    const float wi = weight(b, u * sh.nb * sh.bs + q);
    if (!(wi > 0.0f)) continue;
    const double sq = std::sqrt(static_cast<double>(wi));
    const float* x = b.rows + src_row(sh, u, q) * D;
    acc += (sq * (static_cast<double>(x[r]) - mr)) * (sq * (static_cast<double>(x[c]) - mc));
  }
  const double sw = b.sw[f];
  const double val = sw > 0.0 ? acc / sw : acc;
  double* A = b.a + f * D * D;
  double* V = b.v + f * D * D;
  A[r * D + c] = val;
  A[c * D + r] = val;
  V[r * D + c] = r == c ? 1.0 : 0.0;
  V[c * D + r] = r == c ? 1.0 : 0.0;
}

// ---- §5.3.2 eigendecomposition: cyclic Jacobi, one team per fit --------------------------------

/// Pair `pair` of round `round` of the round-robin (circle) ordering of m (even) indices: every
/// round pairs all indices disjointly, every pair meets once per sweep of m − 1 rounds.
KVWB_HD inline void jacobi_pair(size_t m, size_t round, size_t pair, size_t* p, size_t* q) {
  auto e = [&](size_t t) { return (t + round) % (m - 1) + 1; };
  size_t x, y;
  if (pair == 0) {
    x = 0;
    y = e(0);
  } else {
    x = e(pair);
    y = e(m - 1 - pair);
  }
  *p = x < y ? x : y;
  *q = x < y ? y : x;
}

/// Diagonalises fit f's covariance in place (A → diag λ, V → eigenvectors as columns), rotating
/// m/2 disjoint pairs per round (Brent–Luk ordering), until a sweep rotates nothing.
template <class Team>
KVWB_HD void jacobi_fit(const Team& team, size_t f, const KShape& sh, const KBuffers& b) {
  const size_t D = sh.D;
  const size_t m = D + (D & 1u) < 2 ? 2 : D + (D & 1u);
  const size_t pairs = m / 2;
  double* A = b.a + f * D * D;
  double* V = b.v + f * D * D;
  double* rot = b.rot + f * pairs * 2;
  volatile uint32_t* flag = b.jflag + f;
  for (int sweep = 0; sweep < kMaxSweeps; ++sweep) {
    team.each(1, [&](size_t) { *flag = 0; });
    team.sync();
    for (size_t round = 0; round + 1 < m; ++round) {
      team.each(pairs, [&](size_t pr) {
        size_t p, q;
        jacobi_pair(m, round, pr, &p, &q);
        double c = 1.0, s = 0.0;
        if (q < D) {
          const double apq = A[p * D + q];
          if (apq != 0.0 && finite64(apq)) {
            const double app = A[p * D + p], aqq = A[q * D + q];
            const double g = 100.0 * std::fabs(apq);
            if (std::fabs(app) + g == std::fabs(app) && std::fabs(aqq) + g == std::fabs(aqq)) {
              A[p * D + q] = 0.0;  // negligible against both diagonal entries
              A[q * D + p] = 0.0;
            } else {
              const double h = aqq - app;
              double t;
              if (std::fabs(h) + g == std::fabs(h)) {
                t = apq / h;
              } else {
                const double theta = 0.5 * h / apq;
                t = 1.0 / (std::fabs(theta) + std::sqrt(1.0 + theta * theta));
                if (theta < 0.0) t = -t;
              }
              c = 1.0 / std::sqrt(t * t + 1.0);
              s = t * c;
              *flag = 1;
            }
          }
        }
        rot[2 * pr] = c;
        rot[2 * pr + 1] = s;
      });
      team.sync();
      // Rows p, q of A: row p ← c·row p − s·row q, row q ← s·row p + c·row q.
      team.each(pairs * D, [&](size_t it) {
        const size_t pr = it / D, col = it % D;
        const double s = rot[2 * pr + 1];
        if (s == 0.0) return;
        const double c = rot[2 * pr];
        size_t p, q;
        jacobi_pair(m, round, pr, &p, &q);
        const double xp = A[p * D + col], xq = A[q * D + col];
        A[p * D + col] = c * xp - s * xq;
        A[q * D + col] = s * xp + c * xq;
      });
      team.sync();
      // Columns p, q of A and of V.
      team.each(pairs * D, [&](size_t it) {
        const size_t pr = it / D, row = it % D;
        const double s = rot[2 * pr + 1];
        if (s == 0.0) return;
        const double c = rot[2 * pr];
        size_t p, q;
        jacobi_pair(m, round, pr, &p, &q);
        const double xp = A[row * D + p], xq = A[row * D + q];
        A[row * D + p] = c * xp - s * xq;
        A[row * D + q] = s * xp + c * xq;
        const double vp = V[row * D + p], vq = V[row * D + q];
        V[row * D + p] = c * vp - s * vq;
        V[row * D + q] = s * vp + c * vq;
      });
      team.sync();
      team.each(pairs, [&](size_t pr) {
        if (rot[2 * pr + 1] == 0.0) return;
        size_t p, q;
        jacobi_pair(m, round, pr, &p, &q);
        A[p * D + q] = 0.0;  // annihilated by construction
        A[q * D + p] = 0.0;
      });
      team.sync();
    }
    const bool done = *flag == 0;
    team.sync();
    if (done) break;
  }
}

/// §5.3 steps 2–5 and §5.5 for fit f: stable descending sort, cumsum d_eff (vr, cap), basis rows
/// (f32, sign rule), skeleton rounding of mean and basis.
template <class Team>
KVWB_HD void finalize_fit(const Team& team, size_t f, const KShape& sh, const KParams& p,
                          const KBuffers& b) {
  const size_t D = sh.D;
  const double* A = b.a + f * D * D;
  const double* V = b.v + f * D * D;
  uint32_t* order = b.order + f * D;
  uint32_t* flag = b.flags + unit_of_fit(sh, f);
  team.each(1, [&](size_t) {
    for (size_t i = 0; i < D; ++i) order[i] = static_cast<uint32_t>(i);
    for (size_t i = 1; i < D; ++i) {  // insertion sort: stable, descending
      const uint32_t x = order[i];
      size_t j = i;
      while (j > 0 && A[order[j - 1] * D + order[j - 1]] < A[x * D + x]) {
        order[j] = order[j - 1];
        --j;
      }
      order[j] = x;
    }
    // Cumsum rule (pca.cpp cumsum_rank), then clamp and cap.
    double total = 0.0;
    for (size_t i = 0; i < D; ++i) {
      const double l = A[order[i] * D + order[i]];
      total += l > 0.0 ? l : 0.0;
    }
    size_t de = D;
    if (total <= static_cast<double>(kEps)) {
      de = 1;
    } else if (!(p.vr >= 1.0)) {
      double run = 0.0;
      for (size_t i = 0; i < D; ++i) {
        const double l = A[order[i] * D + order[i]];
        run += l > 0.0 ? l : 0.0;
        if (run / total >= p.vr) {
          de = i + 1;
          break;
        }
      }
    }
    if (de < 1) de = 1;
    if (de > D) de = D;
    if (p.cap > 0 && de > p.cap) de = p.cap;
    b.d_eff[f] = static_cast<uint16_t>(de);
  });
  team.sync();
  const size_t de = b.d_eff[f];
  float* basis = b.basis + f * D * D;
  team.each(de, [&](size_t kk) {
    float* row = basis + kk * D;
    const uint32_t col = order[kk];
    size_t best = 0;
    float best_abs = -1.0f;
    for (size_t j = 0; j < D; ++j) {
      row[j] = static_cast<float>(V[j * D + col]);
      const float a = std::fabs(row[j]);
      if (a > best_abs) {
        best_abs = a;
        best = j;
      }
    }
    const bool neg = row[best] < 0.0f;
    for (size_t j = 0; j < D; ++j) row[j] = round_dtype(neg ? -row[j] : row[j], p.dtype, flag);
  });
  team.each(
      D, [&](size_t j) { b.mean[f * D + j] = round_dtype(b.mean_raw[f * D + j], p.dtype, flag); });
}

// ---- §5.6 projection: item = coded row ---------------------------------------------------------

KVWB_HD inline void project_at(size_t ci, const KShape& sh, const KBuffers& b) {
  if (ci >= sh.coded_rows) return;
  const size_t blk = ci / sh.bs, u = blk / sh.nb, r = ci - u * sh.nb * sh.bs;
  const size_t f = fit_of_block(sh, blk), D = sh.D, de = b.d_eff[f];
  const float* x = b.rows + src_row(sh, u, r) * D;
  const float* mean = b.mean + f * D;
  const float* U = b.basis + f * D * D;
  float* c = b.coef + ci * D;
  for (size_t kk = 0; kk < de; ++kk) {
    float s = 0.0f;
    for (size_t j = 0; j < D; ++j) s += (x[j] - mean[j]) * U[kk * D + j];
    c[kk] = s;
  }
  b.cnorm[ci] = k::norm_f32(c, de);
}

// ---- §5.7 axial spherical K-means: one team per code block -------------------------------------

/// The first of k entries of |⟨u, C_c⟩| that is largest (strict >); *g_out gets the signed value.
KVWB_HD inline uint32_t argmax_abs_dot(const float* u, const float* cen, size_t k_eff, size_t de,
                                       size_t stride, float* g_out) {
  uint32_t a = 0;
  float g0 = dot32(u, cen, de);
  float best = std::fabs(g0);
  float ga = g0;
  for (size_t c = 1; c < k_eff; ++c) {
    const float g = dot32(u, cen + c * stride, de);
    if (std::fabs(g) > best) {
      best = std::fabs(g);
      a = static_cast<uint32_t>(c);
      ga = g;
    }
  }
  *g_out = ga;
  return a;
}

template <class Team>
KVWB_HD void kmeans_block(const Team& team, size_t blk, const KShape& sh, const KParams& p,
                          const KBuffers& b) {
  const size_t D = sh.D, bs = sh.bs, f = fit_of_block(sh, blk), de = b.d_eff[f];
  const size_t base = blk * bs;  // first coded row / valid slot of the block
  uint32_t* valid = b.valid + base;
  volatile uint32_t* sc = b.kscal + blk * 4;  // n_valid, pick, changed
  float* cen = b.cen + blk * sh.kmax * D;
  uint32_t* flag = b.flags + blk / sh.nb;
  team.each(1, [&](size_t) {
    uint32_t nv = 0;
    for (size_t i = 0; i < bs; ++i)
      if (weight(b, base + i) > 0.0f && b.cnorm[base + i] > kEps)
        valid[nv++] = static_cast<uint32_t>(i);
    sc[0] = nv;
  });
  team.sync();
  const size_t nv = sc[0];
  if (nv == 0) {  // all-zero block: K_eff = 1, centre e_0
    team.each(de, [&](size_t j) { cen[j] = j == 0 ? 1.0f : 0.0f; });
    team.each(1, [&](size_t) { b.k_eff[blk] = 1; });
    return;
  }
  const size_t ke = p.k < nv ? p.k : nv;
  float* dir = b.dir + base * D;
  team.each(nv * de, [&](size_t it) {
    const size_t r = it / de, j = it % de;
    const size_t ci = base + valid[r];
    dir[r * D + j] = b.coef[ci * D + j] / b.cnorm[ci];
  });
  team.each(nv, [&](size_t r) {
    b.maxcos[base + r] = -INFINITY;
    b.sgn[base + r] = weight(b, base + valid[r]);
    b.prev[base + r] = 0;
  });
  team.each(1, [&](size_t) {
    sc[1] = static_cast<uint32_t>(rng::splitmix(p.seed ^ rng::kTagKmeans, blk % sh.nb) % nv);
  });
  team.sync();
  // Farthest-first initialisation, signed cosine.
  for (size_t c = 0; c < ke; ++c) {
    const size_t pick = sc[1];
    team.each(de, [&](size_t j) { cen[c * D + j] = dir[pick * D + j]; });
    team.sync();
    if (c + 1 == ke) break;
    team.each(nv, [&](size_t r) {
      const float cs = dot32(dir + r * D, cen + c * D, de);
      float& mc = b.maxcos[base + r];
      mc = mc < cs ? cs : mc;
    });
    team.sync();
    team.each(1, [&](size_t) {
      size_t best = 0;
      float best_dist = 0.0f;
      for (size_t r = 0; r < nv; ++r) {
        const float dist = 1.0f - b.maxcos[base + r];
        if (r == 0 || dist > best_dist) {
          best_dist = dist;
          best = r;
        }
      }
      sc[1] = static_cast<uint32_t>(best);
    });
    team.sync();
  }
  // Lloyd loop: absolute-cosine assignment, signed weighted update.
  for (size_t it = 0; it < p.max_iter; ++it) {
    team.each(1, [&](size_t) { sc[2] = 0; });
    team.sync();
    team.each(nv, [&](size_t r) {
      float g;
      const uint32_t a = argmax_abs_dot(dir + r * D, cen, ke, de, D, &g);
      b.cur[base + r] = a;
      b.sgn[base + r] = weight(b, base + valid[r]) * (g < 0.0f ? -1.0f : 1.0f);
      if (a != b.prev[base + r]) sc[2] = 1;
    });
    team.sync();
    const bool changed = sc[2] != 0;
    team.sync();
    if (!changed) break;
    float* vs = b.vsum + blk * sh.kmax * D;
    double* ws = b.wsum + blk * sh.kmax;
    team.each(ke * de, [&](size_t i2) {
      const size_t c = i2 / de, j = i2 % de;
      float s = 0.0f;
      for (size_t r = 0; r < nv; ++r)
        if (b.cur[base + r] == c) s += b.sgn[base + r] * dir[r * D + j];
      vs[c * D + j] = s;
    });
    team.each(ke, [&](size_t c) {
      double s = 0.0;
      for (size_t r = 0; r < nv; ++r)
        if (b.cur[base + r] == c) s += weight(b, base + valid[r]);
      ws[c] = s;
    });
    team.sync();
    team.each(ke, [&](size_t c) {
      const float nrm = k::norm_f32(vs + c * D, de);
      if (ws[c] > static_cast<double>(kEps) && nrm > kEps)
        for (size_t j = 0; j < de; ++j) cen[c * D + j] = vs[c * D + j] / nrm;
    });
    team.each(nv, [&](size_t r) { b.prev[base + r] = b.cur[base + r]; });
    team.sync();
  }
  team.each(ke * de, [&](size_t i2) {
    const size_t c = i2 / de, j = i2 % de;
    cen[c * D + j] = round_dtype(cen[c * D + j], p.dtype, flag);
  });
  team.each(1, [&](size_t) { b.k_eff[blk] = static_cast<uint16_t>(ke); });
}

// ---- §5.8–5.12 per-row code: item = coded row --------------------------------------------------

KVWB_HD inline void code_at(size_t ci, const KShape& sh, const KParams& p, const KBuffers& b) {
  if (ci >= sh.coded_rows) return;
  const size_t blk = ci / sh.bs, u = blk / sh.nb, D = sh.D, W = sh.wmax;
  const size_t f = fit_of_block(sh, blk), de = b.d_eff[f], ke = b.k_eff[blk];
  const size_t wl = k::next_pow2(de);
  const float* c = b.coef + ci * D;
  const float* cen = b.cen + blk * sh.kmax * D;
  uint32_t* flag = b.flags + u;
  float buf[kMaxWl];
  for (size_t j = 0; j < wl; ++j) buf[j] = 0.0f;
  uint16_t tb = 0, seg = 0;
  if (b.cnorm[ci] > kEps) {
    float t;
    const uint32_t a = argmax_abs_dot(c, cen, ke, de, D, &t);
    seg = static_cast<uint16_t>(a);
    tb = f16_field(t, flag);
    k::segment_residual(c, de, cen + static_cast<size_t>(a) * D, k::f16_bits_to_f32(tb), buf);
  }
  b.seg[ci] = seg;
  b.t_bits[ci] = tb;
  const float rho = k::norm_f32(buf, de);
  k::wht_rotate_seed(buf, wl, p.seed);
  float scale = 1.0f;
  uint16_t nb = 0;
  if (rho > kEps) {
    scale = 1.0f / rho;
    nb = f16_field(rho, flag);
  }
  b.norm_bits[ci] = nb;
  uint16_t* idx = b.idx + ci * W;
  uint16_t cnt = 0;
  for (size_t j = 0; j < wl; ++j) {
    const float s = buf[j] * scale;
    idx[j] = k::quantize_fast(s, p.table, p.tsize);
    if (p.outliers && std::fabs(s) > p.threshold) {
      b.out_idx[ci * W + cnt] = static_cast<uint16_t>(j);
      b.out_val[ci * W + cnt] = f16_field(s, flag);
      ++cnt;
    }
    if (p.collect) b.resid[ci * W + j] = s;
  }
  b.out_count[ci] = cnt;
}

// ---- §6 decode: item = coded row, from the codes just written ----------------------------------

KVWB_HD inline void decode_at(size_t ci, const KShape& sh, const KParams& p, const KBuffers& b) {
  if (ci >= sh.coded_rows) return;
  const size_t blk = ci / sh.bs, u = blk / sh.nb, r = ci - u * sh.nb * sh.bs, D = sh.D;
  const size_t W = sh.wmax, f = fit_of_block(sh, blk), de = b.d_eff[f];
  const size_t wl = k::next_pow2(de);
  float q[kMaxWl];
  const uint16_t* idx = b.idx + ci * W;
  for (size_t j = 0; j < wl; ++j) q[j] = p.table[idx[j]];
  for (size_t o = 0; o < b.out_count[ci]; ++o)
    q[b.out_idx[ci * W + o]] = k::f16_bits_to_f32(b.out_val[ci * W + o]);
  const float nq = k::f16_bits_to_f32(b.norm_bits[ci]);
  for (size_t j = 0; j < wl; ++j) q[j] *= nq;
  k::wht_unrotate_seed(q, wl, p.seed);
  const float tq = k::f16_bits_to_f32(b.t_bits[ci]);
  k::kakeya_row_coefficients(b.cen + (blk * sh.kmax + b.seg[ci]) * D, q, tq, de, q);
  const float* U = b.basis + f * D * D;
  const float* mean = b.mean + f * D;
  float* out = b.dec + src_row(sh, u, r) * D;
  for (size_t j = 0; j < D; ++j) {
    float s = 0.0f;
    for (size_t kk = 0; kk < de; ++kk) s += q[kk] * U[kk * D + j];
    out[j] = s + mean[j];
  }
}

}  // namespace kvwb::codec::cuda::kak

namespace kvwb::codec::cuda::kak {

/// The shape of a job.
inline KShape make_shape(const KakeyaJob& j) {
  KShape sh{};
  sh.S = j.sequences;
  sh.H = j.heads;
  sh.T = j.tokens;
  sh.D = j.dim;
  sh.pooled = j.pooled;
  sh.shared = j.share_basis;
  sh.units = j.pooled ? j.sequences : j.sequences * j.heads;
  sh.unit_rows = j.pooled ? j.tokens * j.heads : j.tokens;
  sh.bs = j.block_size;
  sh.nb = j.blocks_per_unit;
  sh.blocks = sh.units * sh.nb;
  sh.fits = sh.shared ? sh.units : sh.blocks;
  sh.fit_rows = sh.shared ? sh.nb * sh.bs : sh.bs;
  sh.coded_rows = sh.blocks * sh.bs;
  sh.wmax = k::next_pow2(j.dim);
  sh.kmax = j.k < j.block_size ? j.k : j.block_size;
  return sh;
}

/// The parameters of a job.
inline KParams make_params(const KakeyaJob& j) {
  KParams p{};
  p.vr = j.variance_ratio;
  p.cap = j.rank_cap;
  p.k = j.k;
  p.max_iter = j.kmeans_max_iter;
  p.seed = j.seed;
  p.bits = j.bits;
  p.tsize = static_cast<unsigned>(j.table.size());
  for (size_t i = 0; i < j.table.size() && i < 16; ++i) p.table[i] = j.table[i];
  p.dtype = j.dtype;
  p.outliers = j.outliers;
  p.threshold = j.outlier_threshold;
  p.collect = j.collect_residuals;
  p.weighted = !j.weights.empty();
  return p;
}

/// Rounds in the cyclic Jacobi ordering: pairs per round for D.
inline size_t jacobi_pairs(size_t d) { return (d + (d & 1u) < 2 ? 2 : d + (d & 1u)) / 2; }

}  // namespace kvwb::codec::cuda::kak
