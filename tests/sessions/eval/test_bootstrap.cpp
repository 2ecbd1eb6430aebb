// End-to-end intervals: the paired bootstrap over passages (coverage on synthetic per-passage
// losses with a known variance), the interval verdict's outcomes and its passages-needed
// estimate, the aggregate of per-passage results, and the bootstrap of Spearman's ρ in
// proxy-truth.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "base/errors.h"
#include "codec/math/rng.h"
#include "sessions/eval/bootstrap.h"
#include "sessions/eval/eval.h"

namespace kvwb::sessions {
namespace {

/// n draws of N(mu, sigma²) under `seed` (the project's normal numbers).
std::vector<double> normal_sample(size_t n, double mu, double sigma, uint64_t seed) {
  std::vector<double> x(n);
  for (size_t i = 0; i < n; ++i)
    x[i] = mu + sigma * codec::rng::normal(seed ^ codec::rng::kTagTest, i);
  return x;
}

/// Fraction of `trials` samples whose 95 % interval of the mean holds the true mean.
double coverage(size_t n, int trials, int resamples, bool exponential) {
  int hit = 0;
  BootstrapOptions o;
  o.resamples = resamples;
  for (int t = 0; t < trials; ++t) {
    const uint64_t seed = 1000 + static_cast<uint64_t>(t);
    std::vector<double> x;
    double mu = 0.7;
    if (exponential) {  // skewed like per-passage KL: Exp(1) scaled, mean 0.02
      mu = 0.02;
      for (size_t i = 0; i < n; ++i)
        x.push_back(
            -mu * std::log(codec::rng::u01(codec::rng::splitmix(seed ^ codec::rng::kTagTest, i))));
    } else {
      x = normal_sample(n, mu, 2.0, seed);  // like per-passage Δppl: mean 0.7 %, sd 2 %
    }
    o.seed = 77 + static_cast<uint64_t>(t);
    const Interval ci = paired_bootstrap_means({x}, o)[0];
    if (ci.lo <= mu && mu <= ci.hi) ++hit;
  }
  return static_cast<double>(hit) / trials;
}

TEST(Bootstrap, CoverageOfTheMeanIsCloseTo95PercentOnGaussianLosses) {
  // 2000 samples: the binomial standard error of a 95 % coverage is 0.5 %.
  const double c32 = coverage(32, 2000, 1000, false);
  std::printf("coverage n=32: %.4f\n", c32);
  EXPECT_GT(c32, 0.935) << c32;
  EXPECT_LT(c32, 0.965) << c32;
  // Small samples: the expanded percentile interval keeps the coverage (a plain percentile
  // interval covers about 80 % at n = 5; this one about 91 %, its discreteness caps it).
  const double c5 = coverage(5, 2000, 1000, false);
  std::printf("coverage n=5: %.4f\n", c5);
  EXPECT_GT(c5, 0.90) << c5;
  EXPECT_LT(c5, 0.975) << c5;
}

TEST(Bootstrap, CoverageOnSkewedLossesStaysNear95Percent) {
  const double c = coverage(32, 1000, 1000, true);
  std::printf("coverage skewed n=32: %.4f\n", c);
  EXPECT_GT(c, 0.90) << c;
  EXPECT_LT(c, 0.97) << c;
}

TEST(Bootstrap, DeterministicPairedAndExactForConstantColumns) {
  const auto x = normal_sample(20, 0, 1, 5), y = normal_sample(20, 3, 0.1, 6);
  BootstrapOptions o;
  const auto a = paired_bootstrap_means({x, y}, o), b = paired_bootstrap_means({x, y}, o);
  EXPECT_EQ(a[0].lo, b[0].lo);
  EXPECT_EQ(a[1].hi, b[1].hi);
  o.seed = 12345;
  const auto c = paired_bootstrap_means({x, y}, o);
  EXPECT_NE(a[0].lo, c[0].lo);
  // Paired: the interval of a column does not depend on the other columns.
  EXPECT_EQ(paired_bootstrap_means({x}, BootstrapOptions{})[0].lo, a[0].lo);
  // Zero variance (bf16 against its own reference): a zero-width interval at the exact value.
  const auto z =
      paired_bootstrap_means({std::vector<double>(40, 0.0), std::vector<double>(40, 100.0)}, o);
  EXPECT_EQ(z[0].lo, 0.0);
  EXPECT_EQ(z[0].hi, 0.0);
  EXPECT_EQ(z[1].lo, 100.0);
  EXPECT_EQ(z[1].hi, 100.0);
  // One passage: no interval.
  EXPECT_FALSE(paired_bootstrap_means({{1.0}}, o)[0].defined());
  EXPECT_THROW(paired_bootstrap_means({{1.0, 2.0}, {1.0}}, o), InvalidArgument);
  o.resamples = 10;
  EXPECT_THROW(paired_bootstrap_means({{1.0, 2.0}}, o), InvalidArgument);
  // Indices are uniform enough: every index of 0..6 is drawn.
  std::vector<int> seen(7, 0);
  for (size_t b = 0; b < 50; ++b)
    for (size_t i = 0; i < 7; ++i) ++seen[bootstrap_index(1, b, i, 7)];
  for (int s : seen) EXPECT_GT(s, 20);
}

TEST(Bootstrap, StudentTAndExpansion) {
  EXPECT_NEAR(student_t_quantile(0.975, 3), 3.182446, 1e-5);
  EXPECT_NEAR(student_t_quantile(0.975, 31), 2.039513, 1e-5);
  EXPECT_NEAR(student_t_quantile(0.975, 1e6), 1.959966, 1e-4);
  EXPECT_NEAR(student_t_quantile(0.025, 10), -2.228139, 1e-5);
  // α' shrinks the tails for small n and tends to α.
  EXPECT_LT(expanded_alpha(4, 0.95), 0.01);
  EXPECT_NEAR(expanded_alpha(10000, 0.95), 0.05, 1e-3);
}

TEST(Bootstrap, AbsInterval) {
  EXPECT_EQ(abs_interval({-1, 2}).lo, 0.0);
  EXPECT_EQ(abs_interval({-1, 2}).hi, 2.0);
  EXPECT_EQ(abs_interval({-3, -1}).lo, 1.0);
  EXPECT_EQ(abs_interval({-3, -1}).hi, 3.0);
  EXPECT_EQ(abs_interval({0.5, 0.7}).lo, 0.5);
}

TEST(IntervalVerdict, ThreeOutcomesAndMarginal) {
  // ACCEPT: the worst case (|Δppl| upper 0.9, top-1 lower 96) is inside ACCEPT's thresholds.
  auto v = ppl_strict_interval_verdict(0.2, {-0.5, 0.9}, 98, {96, 99}, 64);
  EXPECT_EQ(v.verdict, "ACCEPT");
  EXPECT_EQ(v.possible, std::vector<std::string>{"ACCEPT"});
  EXPECT_FALSE(v.passages_needed);
  // REJECT: even the best case (|Δppl| lower 3.5) is outside MARGINAL.
  v = ppl_strict_interval_verdict(-5, {-7, -3.5}, 97, {95, 99}, 64);
  EXPECT_EQ(v.verdict, "REJECT");
  // MARGINAL, decisively: the whole interval between the thresholds.
  v = ppl_strict_interval_verdict(2, {1.5, 2.5}, 97, {96, 98}, 64);
  EXPECT_EQ(v.verdict, "MARGINAL");
  // INCONCLUSIVE: the point estimate is ACCEPT, but the interval reaches past 1 %.
  v = ppl_strict_interval_verdict(0.5, {-0.2, 1.4}, 98, {97, 99}, 32);
  EXPECT_EQ(v.verdict, "INCONCLUSIVE");
  EXPECT_EQ(v.possible, (std::vector<std::string>{"ACCEPT", "MARGINAL"}));
  ASSERT_TRUE(v.passages_needed);
  // Upper side 0.9 must shrink below 0.5: n' > 32·(0.9/0.5)² = 103.68 → 104.
  EXPECT_EQ(*v.passages_needed, 104);
  EXPECT_NE(v.reason.find("104 passages"), std::string::npos);
  // Straddling both thresholds of top-1 and |Δppl|: the largest requirement wins.
  v = ppl_strict_interval_verdict(2.0, {0.5, 3.5}, 90, {80, 96}, 10);
  EXPECT_EQ(v.verdict, "INCONCLUSIVE");
  EXPECT_EQ(v.possible, (std::vector<std::string>{"ACCEPT", "MARGINAL", "REJECT"}));
  ASSERT_TRUE(v.passages_needed);
  // Δppl: 1 needs 10·(1.5/1)² → 23.5, 3 needs 10·(1.5/1)² → 23.5; top-1: 85 needs 10·(10/5)² = 40
  // → 41.
  EXPECT_EQ(*v.passages_needed, 41);
  // An estimate exactly on a threshold: no number of passages decides it.
  v = ppl_strict_interval_verdict(1.0, {0.5, 1.5}, 98, {97, 99}, 16);
  EXPECT_EQ(v.verdict, "INCONCLUSIVE");
  EXPECT_FALSE(v.passages_needed);
  // One passage: no interval, no verdict.
  v = ppl_strict_interval_verdict(0.0, {NAN, NAN}, 100, {NAN, NAN}, 1);
  EXPECT_EQ(v.verdict, "INCONCLUSIVE");
  EXPECT_EQ(v.possible.size(), 3u);
}

PassageResult passage(double dppl, double top1, double kl) {
  PassageResult p;
  p.scored = 63;
  p.nll_ref = 1.5;
  p.nll_alt = std::log(std::exp(1.5) * (1 + dppl / 100));
  p.nll_exact = 1.5;
  p.delta_ppl = dppl;
  p.top1 = top1;
  p.kl = kl;
  return p;
}

TEST(IntervalVerdict, AggregateOfPassages) {
  // bf16 against its own reference: zeros everywhere, a zero-width interval, ACCEPT.
  std::vector<PassageResult> same(8, passage(0, 100, 0));
  EvalAggregate a = aggregate_passages(same, BootstrapOptions{});
  EXPECT_EQ(a.delta_ppl, 0.0);
  EXPECT_EQ(a.delta_ppl_ci.lo, 0.0);
  EXPECT_EQ(a.delta_ppl_ci.hi, 0.0);
  EXPECT_EQ(a.top1_ci.lo, 100.0);
  EXPECT_EQ(a.kl_ci.hi, 0.0);
  EXPECT_EQ(a.verdict, "ACCEPT");
  EXPECT_EQ(a.verdict_point, "ACCEPT");
  EXPECT_FALSE(a.provisional);
  // Noisy passages around +0.6 %: the point verdict says ACCEPT, the interval does not.
  std::vector<PassageResult> noisy;
  const auto d = normal_sample(24, 0.6, 2.5, 9);
  for (double x : d) noisy.push_back(passage(x, 98, 0.002));
  a = aggregate_passages(noisy, BootstrapOptions{});
  EXPECT_LT(a.delta_ppl_ci.lo, a.delta_ppl);
  EXPECT_GT(a.delta_ppl_ci.hi, a.delta_ppl);
  EXPECT_EQ(a.abs_delta_ppl_ci.lo, a.delta_ppl_ci.lo <= 0 ? 0.0 : a.delta_ppl_ci.lo);
  EXPECT_EQ(a.verdict, "INCONCLUSIVE");
  ASSERT_TRUE(a.passages_needed);
  EXPECT_GT(*a.passages_needed, 24);
  EXPECT_NEAR(a.ppl_ref_pooled, std::exp(1.5), 1e-9);
}

/// proxy-truth cells whose proxies rank |Δppl| perfectly (k_rel_mse) or not at all (attn_kl).
TEST(ProxyTruthIntervals, PerfectProxyIsDistinguishableFromNoise) {
  ProxyTruthResult r;
  for (int i = 0; i < 20; ++i) {
    ProxyTruthCell c;
    c.delta_ppl = 0.5 * i + 0.1;
    for (int p = 0; p < 8; ++p) c.passage_delta_ppl.push_back(c.delta_ppl + 0.01 * (p - 3.5));
    c.k_rel_mse = 1e-3 * (i + 1);                                                    // perfect
    c.attn_out_err = 1e-3 * (i + 1) + (i % 3 == 0 ? 0.004 : 0.0);                    // good
    c.attn_kl = codec::rng::u01(codec::rng::splitmix(3, static_cast<uint64_t>(i)));  // noise
    r.cells.push_back(c);
  }
  proxy_truth_intervals(r, BootstrapOptions{});
  EXPECT_EQ(r.n, 20u);
  EXPECT_DOUBLE_EQ(r.rho_k_rel_mse, 1.0);
  ASSERT_EQ(r.rhos.size(), 3u);
  EXPECT_EQ(r.rhos[0].ci.lo, 1.0);  // every resample keeps the perfect order
  EXPECT_GT(r.replicates_used, 1900u);
  EXPECT_LT(r.rhos[2].ci.lo, 0.3);
  ASSERT_EQ(r.pairs.size(), 3u);
  EXPECT_EQ(r.pairs[1].a, "k_rel_mse");
  EXPECT_EQ(r.pairs[1].b, "attn_kl");
  EXPECT_TRUE(r.pairs[1].distinguishable);
  const auto j = proxy_truth_to_json(r);
  EXPECT_TRUE(j["spearman_intervals"]["rho"]["attn_kl"]["ci"].is_array());
  EXPECT_EQ(j["spearman_intervals"]["bootstrap"]["seed"], "0xCAFEBABE");
}

}  // namespace
}  // namespace kvwb::sessions
