#include "sessions/eval/bootstrap.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "base/errors.h"
#include "codec/math/rng.h"

namespace kvwb::sessions {

bool Interval::defined() const { return std::isfinite(lo) && std::isfinite(hi); }

size_t bootstrap_index(uint64_t seed, size_t resample, size_t i, size_t n) {
  const uint64_t x =
      codec::rng::splitmix(seed ^ kTagBootstrap, static_cast<uint64_t>(resample) * n + i);
  const size_t k = static_cast<size_t>(codec::rng::u01c(x) * static_cast<double>(n));
  return std::min(k, n - 1);
}

double sorted_quantile(const std::vector<double>& v, double q) {
  if (v.empty()) return NAN;
  const double r = std::clamp(q, 0.0, 1.0) * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(r));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  if (v[lo] == v[hi]) return v[lo];  // exact for constant runs (zero-width intervals stay exact)
  return v[lo] + (r - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

namespace {

/// Continued fraction of the regularised incomplete beta function (modified Lentz).
double beta_cf(double a, double b, double x) {
  const double tiny = 1e-300;
  double c = 1, d = 1 - (a + b) * x / (a + 1);
  if (std::fabs(d) < tiny) d = tiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 500; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < 1e-15) break;
  }
  return h;
}

/// I_x(a, b).
double incomplete_beta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double lbt =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  const double bt = std::exp(lbt);
  if (x < (a + 1) / (a + b + 2)) return bt * beta_cf(a, b, x) / a;
  return 1 - bt * beta_cf(b, a, 1 - x) / b;
}

double student_t_cdf(double t, double dof) {
  const double x = dof / (dof + t * t);
  const double tail = 0.5 * incomplete_beta(dof / 2, 0.5, x);  // P(T > |t|)
  return t >= 0 ? 1 - tail : tail;
}

}  // namespace

double student_t_quantile(double p, double dof) {
  if (!(p > 0 && p < 1) || !(dof > 0)) return NAN;
  if (p == 0.5) return 0;
  if (p < 0.5) return -student_t_quantile(1 - p, dof);
  double lo = 0, hi = 1;
  while (student_t_cdf(hi, dof) < p && hi < 1e12) hi *= 2;
  for (int i = 0; i < 200 && hi - lo > 1e-12 * std::max(1.0, hi); ++i) {
    const double mid = 0.5 * (lo + hi);
    (student_t_cdf(mid, dof) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

double expanded_alpha(size_t n, double level) {
  const double alpha = 1 - level;
  if (n < 2) return alpha;
  const double nn = static_cast<double>(n);
  const double t = student_t_quantile(1 - alpha / 2, nn - 1);
  const double z = std::sqrt(nn / (nn - 1)) * t;
  return std::erfc(z / std::sqrt(2.0));  // 2·Φ(−z)
}

std::vector<Interval> paired_bootstrap_means(const std::vector<std::vector<double>>& columns,
                                             const BootstrapOptions& opt) {
  if (opt.resamples < 100)
    throw InvalidArgument("bootstrap: resamples must be >= 100, got " +
                          std::to_string(opt.resamples));
  if (!(opt.level > 0 && opt.level < 1))
    throw InvalidArgument("bootstrap: level must be in (0, 1), got " + std::to_string(opt.level));
  std::vector<Interval> out(columns.size(), Interval{NAN, NAN});
  if (columns.empty()) return out;
  const size_t n = columns.front().size();
  for (const auto& c : columns)
    if (c.size() != n) throw InvalidArgument("bootstrap: columns of different lengths");
  if (n < 2) return out;
  const size_t B = static_cast<size_t>(opt.resamples);
  std::vector<std::vector<double>> means(columns.size(), std::vector<double>(B));
  std::vector<size_t> idx(n);
  for (size_t b = 0; b < B; ++b) {
    for (size_t i = 0; i < n; ++i) idx[i] = bootstrap_index(opt.seed, b, i, n);
    for (size_t c = 0; c < columns.size(); ++c) {
      double s = 0;
      for (size_t i : idx) s += columns[c][i];
      means[c][b] = s / static_cast<double>(n);
    }
  }
  const double a = expanded_alpha(n, opt.level);
  for (size_t c = 0; c < columns.size(); ++c) {
    std::sort(means[c].begin(), means[c].end());
    out[c] = Interval{sorted_quantile(means[c], a / 2), sorted_quantile(means[c], 1 - a / 2)};
  }
  return out;
}

Interval abs_interval(const Interval& x) {
  if (!x.defined()) return x;
  const double a = std::fabs(x.lo), b = std::fabs(x.hi);
  if (x.lo <= 0 && x.hi >= 0) return {0.0, std::max(a, b)};
  return {std::min(a, b), std::max(a, b)};
}

namespace {

const char* kBands[] = {"ACCEPT", "MARGINAL", "REJECT"};

/// ppl-strict-v1 band: 0 ACCEPT, 1 MARGINAL, 2 REJECT.
int band(double abs_dppl, double top1) {
  if (!std::isfinite(abs_dppl) || !std::isfinite(top1)) return 2;
  if (abs_dppl <= 1.0 && top1 >= 95.0) return 0;
  if (abs_dppl <= 3.0 && top1 >= 85.0) return 1;
  return 2;
}

/// (best, worst) bands of the intervals.
std::pair<int, int> bands(const Interval& dppl, const Interval& top1) {
  const Interval a = abs_interval(dppl);
  return {band(a.lo, top1.hi), band(a.hi, top1.lo)};
}

/// Intervals shrunk by f = √(n/n′) around their estimates.
Interval scaled(double x, const Interval& ci, double f) {
  return {x - (x - ci.lo) * f, x + (ci.hi - x) * f};
}

}  // namespace

IntervalVerdict ppl_strict_interval_verdict(double dppl, const Interval& dppl_ci, double top1,
                                            const Interval& top1_ci, size_t n) {
  IntervalVerdict v;
  if (n < 2 || !dppl_ci.defined() || !top1_ci.defined()) {
    v.verdict = "INCONCLUSIVE";
    v.possible = {"ACCEPT", "MARGINAL", "REJECT"};
    v.reason =
        n < 2 ? "one passage gives no variance estimate: evaluate at least 2 (better 20 or more)"
              : "the interval is undefined (non-finite per-passage values)";
    return v;
  }
  const auto [best, worst] = bands(dppl_ci, top1_ci);
  for (int b = best; b <= worst; ++b) v.possible.push_back(kBands[b]);
  if (best == worst) {
    v.verdict = kBands[best];
    v.reason =
        best == 0
            ? "the whole interval is inside the ACCEPT thresholds (|Δppl| ≤ 1 %, top-1 ≥ 95 %)"
        : best == 1
            ? "the whole interval is inside the MARGINAL thresholds (|Δppl| ≤ 3 %, top-1 ≥ 85 %) "
              "and outside ACCEPT's"
            : "even the interval's best case is outside the MARGINAL thresholds (|Δppl| ≤ 3 %, "
              "top-1 ≥ 85 %)";
    return v;
  }
  v.verdict = "INCONCLUSIVE";
  // Candidate passage counts: where each threshold the intervals straddle leaves its interval.
  const double nn = static_cast<double>(n);
  std::vector<double> cand;
  auto add = [&](double x, const Interval& ci, double t) {
    if (!(ci.lo <= t && t <= ci.hi) || x == t) return;
    const double side = t > x ? ci.hi - x : x - ci.lo;
    const double f = std::fabs(x - t) / side;  // the side must shrink below this factor
    if (!(f > 0)) return;
    const double need = std::floor(nn / (f * f)) + 1;
    if (std::isfinite(need) && need < 1e15) cand.push_back(std::max(need, nn));
  };
  for (double t : {-3.0, -1.0, 1.0, 3.0}) add(dppl, dppl_ci, t);
  for (double t : {85.0, 95.0}) add(top1, top1_ci, t);
  std::sort(cand.begin(), cand.end());
  for (double c : cand) {
    const double f = std::sqrt(nn / c);
    const auto [b, w] = bands(scaled(dppl, dppl_ci, f), scaled(top1, top1_ci, f));
    if (b == w) {
      v.passages_needed = static_cast<long long>(c);
      break;
    }
  }
  std::string spans = v.possible.front();
  for (size_t i = 1; i < v.possible.size(); ++i)
    spans += (i + 1 == v.possible.size() ? " and " : ", ") + v.possible[i];
  v.reason = "the interval spans " + spans;
  if (v.passages_needed)
    v.reason += "; about " + std::to_string(*v.passages_needed) +
                " passages would decide it (estimated from the per-passage variance)";
  else
    v.reason +=
        "; an estimate sits on a threshold, so no number of passages is predicted to decide it";
  return v;
}

}  // namespace kvwb::sessions
