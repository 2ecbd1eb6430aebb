#pragma once
// Confidence intervals for end-to-end metrics (docs/model-in-the-loop.md, "Intervals"): a paired
// bootstrap over passages — every resample draws passage indices once and recomputes every
// metric's mean on the same passages, so reference and compressed stay paired — and the
// interval-aware ppl-strict-v1 verdict with the number of passages a decisive verdict needs.
//
// Resampling is deterministic: index i of resample b is ⌊u·n⌋ with u = u01c(splitmix(seed XOR
// TAG_BOOT, b·n + i)) (the project RNG, codec-kakeya.md §4), so the same seed gives the same
// interval on every machine and thread count.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kvwb::sessions {

/// Tag of the bootstrap's random stream: ASCII "BOOTSTRP".
inline constexpr uint64_t kTagBootstrap = 0x424F4F5453545250ull;
/// Tag of the passage stream when cells and passages are resampled together: ASCII "PASSAGES".
inline constexpr uint64_t kTagPassages = 0x5041535341474553ull;
/// Default resampling seed (the project's default seed).
inline constexpr uint64_t kDefaultBootstrapSeed = 0xCAFEBABEull;
/// Default number of resamples.
inline constexpr int kDefaultBootstrapResamples = 2000;

struct BootstrapOptions {
  int resamples = kDefaultBootstrapResamples;  // B >= 100
  uint64_t seed = kDefaultBootstrapSeed;
  double level = 0.95;  // two-sided coverage
};

/// A two-sided interval; NaN bounds when undefined (fewer than 2 samples).
struct Interval {
  double lo = 0, hi = 0;
  bool defined() const;
};

/// Index i (0 ≤ i < n) of bootstrap resample b: deterministic, uniform on 0 … n−1.
size_t bootstrap_index(uint64_t seed, size_t resample, size_t i, size_t n);

/// Linear interpolation between order statistics at rank q·(m−1) (0-based) of a sorted sample.
double sorted_quantile(const std::vector<double>& sorted, double q);

/// Two-sided quantile of Student's t with `dof` degrees of freedom: t with P(T ≤ t) = p.
double student_t_quantile(double p, double dof);

/// The tail probability the percentile interval of a mean uses so that it is not too narrow
/// for small n (Hesterberg's expanded percentile interval): α' = 2·Φ(−√(n/(n−1))·t_{1−α/2, n−1}).
/// Tends to 1 − level as n grows.
double expanded_alpha(size_t n, double level);

/// Paired bootstrap of the means of several per-passage columns (each of the same length n):
/// one set of resampled indices per resample, shared by every column. Returns one expanded
/// percentile interval per column; undefined intervals when n < 2. Throws InvalidArgument for
/// columns of different lengths or resamples < 100.
std::vector<Interval> paired_bootstrap_means(const std::vector<std::vector<double>>& columns,
                                             const BootstrapOptions& opt);

/// The interval of |μ| implied by an interval [lo, hi] of μ: [0, max(|lo|, |hi|)] when it holds
/// 0, else [min(|lo|, |hi|), max(|lo|, |hi|)].
Interval abs_interval(const Interval& x);

/// The ppl-strict-v1 verdict with intervals (metrics.md §8 thresholds). Worst case = (upper bound
/// of |Δppl|, lower bound of top-1), best case = (lower bound of |Δppl|, upper bound of top-1):
/// when both give the same verdict it is decisive (ACCEPT only when even the worst case is inside
/// the ACCEPT thresholds; REJECT only when even the best case is outside MARGINAL's); otherwise
/// INCONCLUSIVE with the verdicts still possible and an estimate of the passages that would decide.
struct IntervalVerdict {
  std::string verdict;                // ACCEPT | MARGINAL | REJECT | INCONCLUSIVE
  std::vector<std::string> possible;  // verdicts compatible with the intervals, best first
  std::optional<long long>
      passages_needed;  // INCONCLUSIVE: estimated passages for a decisive verdict
  std::string reason;   // one sentence for reports
};

/// `dppl` and `top1` are the means (percent), `dppl_ci` and `top1_ci` their intervals, `n` the
/// passages. The passages needed assume each interval side shrinks as √(n/n′) around the same
/// estimate (the per-passage variance stays what was observed): the smallest n′ ≥ n at which the
/// scaled intervals give a decisive verdict, or none when an estimate sits exactly on a threshold.
IntervalVerdict ppl_strict_interval_verdict(double dppl, const Interval& dppl_ci, double top1,
                                            const Interval& top1_ci, size_t n);

}  // namespace kvwb::sessions
