// Kakeya-PCA vector kernels (codec/simd/kakeya.h) against the scalar path, which runs Eigen's own
// code: covariance rank update, symmetric eigensolver, centre products, the f32 GEMM in Eigen's
// order (codec/math/eigen_gemm.h) and the Lloyd-Max indices
// must be bit-identical on every SIMD path the CPU has (docs/decisions-made.md #28).
#include <gtest/gtest.h>

#include <Eigen/Dense>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "codec/kernels/lloyd_max.h"
#include "codec/math/eigen_gemm.h"
#include "codec/math/eigen_householder.h"
#include "codec/math/kmeans.h"
#include "codec/math/pca.h"
#include "codec/math/quantizer.h"
#include "codec/simd/dispatch.h"
#include "codec/simd/kakeya.h"

namespace {

using kvwb::codec::simd::Path;

std::vector<Path> vector_paths() {
  std::vector<Path> p;
  for (Path q : {Path::kAvx2, Path::kAvx512})
    if (kvwb::codec::simd::cpu_supports(q)) p.push_back(q);
  return p;
}

template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// Rows of a key-like spectrum: a few strong directions, a decaying tail, an offset.
std::vector<double> centred_rows(size_t n, size_t d, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<double> nd;
  std::vector<double> a(n * d);
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < d; ++j) a[i * d + j] = nd(g) * std::pow(0.8, static_cast<double>(j % 17));
  return a;
}

TEST(KakeyaSimd, CovarianceMatchesEigenOnEveryPath) {
  if (vector_paths().empty()) GTEST_SKIP() << "no vector path on this CPU";
  for (size_t d : {4, 8, 12, 64, 68, 128, 6, 130})
    for (size_t n : {1, 3, 8, 9, 100, 512, 777, 1500}) {
      const auto a = centred_rows(n, d, static_cast<uint32_t>(n * 131 + d));
      // A non-zero start: the update adds to the lower triangle and leaves the upper one alone.
      std::vector<double> start(d * d);
      for (size_t i = 0; i < d * d; ++i) start[i] = 0.25 * static_cast<double>(i % 7);
      std::vector<double> ref = start;
      kvwb::codec::kakeya::covariance_lower(a.data(), n, d, ref.data(), Path::kScalar);
      for (Path p : vector_paths()) {
        std::vector<double> got = start;
        kvwb::codec::kakeya::covariance_lower(a.data(), n, d, got.data(), p);
        EXPECT_TRUE(same_bits(ref, got)) << "d=" << d << " n=" << n << " path "
                                         << kvwb::codec::simd::path_name(p);
      }
    }
}

TEST(KakeyaSimd, EigensolverMatchesEigenOnEveryPath) {
  if (vector_paths().empty()) GTEST_SKIP() << "no vector path on this CPU";
  std::mt19937 g(7);
  std::normal_distribution<double> nd;
  int cases = 0;
  for (size_t d : {1, 2, 3, 5, 8, 17, 63, 64, 100, 128})
    for (int kind = 0; kind < 4; ++kind) {
      std::vector<double> cov(d * d, 0.0);
      if (kind == 0 || kind == 1) {  // full rank / rank 3 plus tiny noise
        const size_t n = kind == 0 ? 2 * d + 3 : 3;
        const auto a = centred_rows(n, d, static_cast<uint32_t>(d * 10 + kind));
        kvwb::codec::kakeya::covariance_lower(a.data(), n, d, cov.data(), Path::kScalar);
        if (kind == 1)
          for (size_t j = 0; j < d; ++j) cov[j * d + j] += 1e-12 * std::fabs(nd(g));
      } else if (kind == 2) {  // repeated eigenvalues
        for (size_t j = 0; j < d; ++j) cov[j * d + j] = j % 2 ? 2.0 : 1.0;
      }  // kind 3: the zero matrix
      std::vector<double> rv(d), rq(d * d);
      ASSERT_TRUE(kvwb::codec::kakeya::symmetric_eigen(cov.data(), d, rv.data(), rq.data(),
                                                       Path::kScalar));
      for (Path p : vector_paths()) {
        std::vector<double> v(d), q(d * d);
        ASSERT_TRUE(kvwb::codec::kakeya::symmetric_eigen(cov.data(), d, v.data(), q.data(), p));
        EXPECT_TRUE(same_bits(rv, v)) << "values d=" << d << " kind " << kind;
        EXPECT_TRUE(same_bits(rq, q)) << "vectors d=" << d << " kind " << kind;
        ++cases;
      }
    }
  EXPECT_GT(cases, 0);
}

// Several eigenproblems solved together (their QR iterations interleaved pairwise) give each one
// exactly Eigen's result alone: batches mixing full rank, rank 3, repeated and zero spectra (one
// problem done long before its partner), odd batch sizes, D not a multiple of 8.
TEST(KakeyaSimd, InterleavedEigensolvesMatchEigenOneByOne) {
  for (size_t d : {1, 2, 7, 64, 100}) {
    std::vector<std::vector<double>> covs;
    for (int kind = 0; kind < 5; ++kind) {
      std::vector<double> cov(d * d, 0.0);
      if (kind == 0 || kind == 1 || kind == 4) {
        const size_t n = kind == 1 ? 3 : 2 * d + 3 + static_cast<size_t>(kind);
        const auto a = centred_rows(n, d, static_cast<uint32_t>(d * 17 + kind));
        kvwb::codec::kakeya::covariance_lower(a.data(), n, d, cov.data(), Path::kScalar);
      } else if (kind == 2) {
        for (size_t j = 0; j < d; ++j) cov[j * d + j] = j % 3 ? 2.0 : 1.0;
      }  // kind 3: the zero matrix
      covs.push_back(cov);
    }
    for (Path p : {Path::kScalar, Path::kAvx2, Path::kAvx512}) {
      if (!kvwb::codec::simd::cpu_supports(p)) continue;
      for (size_t count = 1; count <= covs.size(); ++count) {
        std::vector<const double*> in;
        std::vector<std::vector<double>> vals(count, std::vector<double>(d)),
            vecs(count, std::vector<double>(d * d));
        std::vector<double*> vp, qp;
        for (size_t i = 0; i < count; ++i) {
          in.push_back(covs[(i + count) % covs.size()].data());
          vp.push_back(vals[i].data());
          qp.push_back(vecs[i].data());
        }
        std::unique_ptr<bool[]> ok(new bool[count]);
        kvwb::codec::kakeya::symmetric_eigen_many(in.data(), count, d, vp.data(), qp.data(),
                                                  ok.get(), p);
        for (size_t i = 0; i < count; ++i) {
          std::vector<double> rv(d), rq(d * d);
          ASSERT_TRUE(kvwb::codec::kakeya::symmetric_eigen(in[i], d, rv.data(), rq.data(),
                                                           Path::kScalar));
          ASSERT_TRUE(ok[i]);
          EXPECT_TRUE(same_bits(rv, vals[i])) << "values d=" << d << " count " << count << " #" << i;
          EXPECT_TRUE(same_bits(rq, vecs[i])) << "vectors d=" << d << " count " << count << " #" << i;
        }
      }
    }
  }
}

TEST(KakeyaSimd, CentreProductsMatchEigenOnEveryPath) {
  if (vector_paths().empty()) GTEST_SKIP() << "no vector path on this CPU";
  std::mt19937 g(11);
  std::normal_distribution<float> nd;
  for (size_t rows : {1, 2, 5, 17, 512})
    for (size_t d : {1, 3, 8, 30, 64, 128})
      for (size_t k : {1, 4, 8, 12, 16, 24, 32}) {
        std::vector<float> u(rows * d), cen(k * d);
        for (auto& x : u) x = nd(g);
        for (auto& x : cen) x = nd(g);
        std::vector<float> ref(rows * k);
        kvwb::codec::kakeya::centre_products(u.data(), rows, d, cen.data(), k, ref.data(),
                                             Path::kScalar);
        for (Path p : vector_paths()) {
          std::vector<float> got(rows * k);
          kvwb::codec::kakeya::centre_products(u.data(), rows, d, cen.data(), k, got.data(), p);
          EXPECT_TRUE(same_bits(ref, got)) << "rows=" << rows << " d=" << d << " k=" << k;
        }
      }
}

// The first-largest-|g| index of every row (K-means assignment) against the strict `>` scan, with
// ties, ±0, all-zero rows, NaN and ±inf entries, k across and off the lane widths.
TEST(KakeyaSimd, ArgmaxAbsMatchesTheScalarScan) {
  std::mt19937 g(5);
  std::normal_distribution<float> nd;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  int checked = 0;
  for (size_t k : {1, 2, 3, 7, 8, 9, 15, 16, 17, 24, 31, 32, 33, 40}) {
    const size_t rows = 64;
    std::vector<float> m(rows * k);
    for (size_t r = 0; r < rows; ++r) {
      float* row = m.data() + r * k;
      for (size_t c = 0; c < k; ++c) row[c] = nd(g);
      const size_t a = r % k, b = (r * 7 + 3) % k;
      switch (r % 8) {
        case 1: row[b] = -row[a]; break;  // a tie in |g| with the opposite sign
        case 2: for (size_t c = 0; c < k; ++c) row[c] = (c % 2) ? 0.0f : -0.0f; break;
        case 3: row[b] = nan; break;
        case 4: row[0] = nan; break;
        case 5: row[b] = -inf; row[a] = inf; break;
        case 6: for (size_t c = 0; c < k; ++c) row[c] = c % 3 ? 0.5f : -0.5f; break;
        default: break;
      }
    }
    std::vector<uint32_t> ref(rows);
    for (size_t r = 0; r < rows; ++r) {
      const float* row = m.data() + r * k;
      uint32_t a = 0;
      float best = std::fabs(row[0]);
      for (size_t c = 1; c < k; ++c)
        if (std::fabs(row[c]) > best) {
          best = std::fabs(row[c]);
          a = static_cast<uint32_t>(c);
        }
      ref[r] = a;
    }
    for (Path p : {Path::kScalar, Path::kAvx2, Path::kAvx512}) {
      if (!kvwb::codec::simd::cpu_supports(p)) continue;
      std::vector<uint32_t> got(rows, 999);
      kvwb::codec::simd::argmax_abs_rows(p, m.data(), rows, k, got.data());
      EXPECT_EQ(ref, got) << "k=" << k << " path " << kvwb::codec::simd::path_name(p);
      ++checked;
    }
  }
  EXPECT_GT(checked, 0);
}

// The fused Householder step of the Q accumulation (simd::householder_left) against Eigen's
// applyHouseholderOnTheLeft on a strided corner, bit for bit: odd and even heights, fewer and more
// than 8 columns, tiny and huge entries.
TEST(KakeyaSimd, HouseholderLeftMatchesEigen) {
  if (vector_paths().empty()) GTEST_SKIP() << "no vector path on this CPU";
  std::mt19937 g(21);
  std::normal_distribution<double> nd;
  int cases = 0;
  for (Eigen::Index cs : {2, 3, 4, 5, 8, 9, 10, 16, 17, 33, 64, 127}) {
    const Eigen::Index stride = cs + 3;
    Eigen::MatrixXd start(stride, cs);
    for (Eigen::Index j = 0; j < cs; ++j)
      for (Eigen::Index i = 0; i < stride; ++i)
        start(i, j) = nd(g) * std::pow(10.0, static_cast<double>((i + 3 * j) % 7) - 3.0);
    Eigen::VectorXd ess(cs - 1);
    for (Eigen::Index i = 0; i < cs - 1; ++i) ess(i) = nd(g);
    if (cs > 4) ess(1) = -0.0;
    const double tau = 1.37;
    Eigen::MatrixXd ref = start;
    std::vector<double> work(static_cast<size_t>(cs));
    ref.block(0, 0, cs, cs).applyHouseholderOnTheLeft(ess, tau, work.data());
    std::vector<double> l(static_cast<size_t>(cs - 1));
    for (Eigen::Index i = 0; i < cs - 1; ++i) l[static_cast<size_t>(i)] = tau * ess(i);
    for (Path p : vector_paths()) {
      Eigen::MatrixXd got = start;
      kvwb::codec::simd::householder_left(p, got.data(), static_cast<size_t>(stride),
                                          static_cast<size_t>(cs), ess.data(), l.data(), tau);
      EXPECT_EQ(0, std::memcmp(ref.data(), got.data(), sizeof(double) * static_cast<size_t>(ref.size())))
          << "cs=" << cs << " path " << kvwb::codec::simd::path_name(p);
      ++cases;
    }
  }
  EXPECT_GT(cases, 0);
}

// The tridiagonalisation's symv (simd::symv_lower_eigen) against Eigen's selfadjointView<Lower>
// product, bit for bit: sizes across the pair / single-column bound and the 4-pair groups, res at
// both 16-byte parities (Eigen's packet range depends on res's address), res zero and non-zero,
// stale values in the strict upper triangle (never read).
TEST(KakeyaSimd, SymvMatchesEigenSelfadjointProduct) {
  if (vector_paths().empty()) GTEST_SKIP() << "no vector path on this CPU";
  std::mt19937 g(33);
  std::normal_distribution<double> nd;
  int cases = 0;
  for (Eigen::Index size : {1,  2,  3,  7,  8,  9,  10, 11,  12,  16,  17,  18,
                            19, 25, 26, 33, 63, 64, 65, 100, 126, 127, 128, 130}) {
    const Eigen::Index lda = size + 5;
    Eigen::MatrixXd a(lda, size);
    for (Eigen::Index j = 0; j < size; ++j)
      for (Eigen::Index i = 0; i < lda; ++i)
        a(i, j) = nd(g) * std::pow(10.0, static_cast<double>((i + 2 * j) % 5) - 2.0);
    Eigen::VectorXd v(size);
    for (Eigen::Index i = 0; i < size; ++i) v(i) = nd(g);
    if (size > 3) v(2) = -0.0;
    const double alpha = -1.73;
    for (size_t shift : {0u, 1u})
      for (bool zero : {true, false}) {
        // res lives at an 8-byte shift of a 64-byte-aligned buffer.
        std::vector<double> buf(static_cast<size_t>(size) + 16);
        double* base = buf.data();
        while (reinterpret_cast<uintptr_t>(base) % 64 != 0) ++base;
        double* ref_ptr = base + shift;
        Eigen::Map<Eigen::VectorXd> ref(ref_ptr, size);
        Eigen::VectorXd start(size);
        for (Eigen::Index i = 0; i < size; ++i) start(i) = zero ? 0.0 : nd(g);
        ref = start;
        const auto block = a.topLeftCorner(size, size);
        ref.noalias() += block.selfadjointView<Eigen::Lower>() * (alpha * v);
        const Eigen::VectorXd want = ref;
        for (Path p : vector_paths()) {
          Eigen::Map<Eigen::VectorXd> got(ref_ptr, size);
          got = start;
          kvwb::codec::simd::symv_lower_eigen(p, a.data(), static_cast<size_t>(lda),
                                              static_cast<size_t>(size), v.data(), got.data(),
                                              alpha);
          EXPECT_EQ(
              0, std::memcmp(want.data(), got.data(), sizeof(double) * static_cast<size_t>(size)))
              << "size=" << size << " shift=" << shift << " zero=" << zero << " path "
              << kvwb::codec::simd::path_name(p);
          ++cases;
        }
      }
  }
  EXPECT_GT(cases, 0);
}

// makeGivens inlined (simd::make_givens) against Eigen's JacobiRotation<double>::makeGivens, bit
// for bit: signs, zeros, |p| = |q|, subnormals, huge ratios, ±inf and NaN.
TEST(KakeyaSimd, MakeGivensMatchesEigen) {
  std::mt19937 g(9);
  std::normal_distribution<double> nd;
  std::vector<double> vals = {0.0, -0.0, 1.0, -1.0, 2.0, -3.0, 1e-310, -1e-310, 1e300, -1e300,
                              5e-324, std::numeric_limits<double>::infinity(),
                              -std::numeric_limits<double>::infinity(),
                              std::numeric_limits<double>::quiet_NaN()};
  for (int i = 0; i < 200; ++i) vals.push_back(nd(g) * std::pow(10.0, (i % 9) - 4));
  size_t cases = 0;
  for (double p : vals)
    for (double q : vals) {
      Eigen::JacobiRotation<double> ref;
      ref.makeGivens(p, q);
      double c = 7.0, s = 7.0;
      kvwb::codec::simd::make_givens(p, q, c, s);
      const double rc = ref.c(), rs = ref.s();
      ASSERT_EQ(0, std::memcmp(&rc, &c, sizeof c)) << "p=" << p << " q=" << q;
      ASSERT_EQ(0, std::memcmp(&rs, &s, sizeof s)) << "p=" << p << " q=" << q;
      ++cases;
    }
  EXPECT_EQ(cases, vals.size() * vals.size());
}

// The weighted-mean accumulation, the centred √w-scaled rows and the covariance division on lanes
// against their scalar formulas, bit for bit, across and off the lane widths.
TEST(KakeyaSimd, ElementwiseF64KernelsMatchTheScalarFormulas) {
  std::mt19937 g(13);
  std::normal_distribution<float> nd;
  for (size_t d : {1, 3, 4, 7, 8, 9, 17, 64, 100, 130}) {
    std::vector<float> x(d), mean(d);
    for (auto& v : x) v = 5.0f * nd(g);
    for (auto& v : mean) v = nd(g);
    x[0] = 1e-30f;
    std::vector<double> acc0(d);
    for (size_t j = 0; j < d; ++j) acc0[j] = 0.1 * static_cast<double>(j) - 1.0;
    const double w = 0.7310000000000001, sq = std::sqrt(w), by = 3.3;
    std::vector<double> ref_acc = acc0, ref_row(d), ref_div = acc0;
    for (size_t j = 0; j < d; ++j) {
      ref_acc[j] = ref_acc[j] + w * static_cast<double>(x[j]);
      ref_row[j] = sq * (static_cast<double>(x[j]) - static_cast<double>(mean[j]));
      ref_div[j] = ref_div[j] / by;
    }
    for (Path p : {Path::kScalar, Path::kAvx2, Path::kAvx512}) {
      if (!kvwb::codec::simd::cpu_supports(p)) continue;
      std::vector<double> acc = acc0, row(d), div = acc0;
      kvwb::codec::simd::accumulate_weighted(p, acc.data(), x.data(), w, d);
      kvwb::codec::simd::centre_scale(p, row.data(), x.data(), mean.data(), sq, d);
      kvwb::codec::simd::divide(p, div.data(), d, by);
      EXPECT_TRUE(same_bits(ref_acc, acc)) << "d=" << d;
      EXPECT_TRUE(same_bits(ref_row, row)) << "d=" << d;
      EXPECT_TRUE(same_bits(ref_div, div)) << "d=" << d;
    }
  }
}

// gemm_like_eigen against Eigen's own product `dst.noalias() = lhs * rhs` compiled here: every
// layout (column-/row-major operands, a row-major destination), depths across Eigen's depth block
// kc, result rows a multiple of 8 (lanes) or not (declined: Eigen runs), 1…40 columns.
TEST(KakeyaSimd, GemmMatchesEigenProductOnEveryPath) {
  if (vector_paths().empty()) GTEST_SKIP() << "no vector path on this CPU";
  using CM = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;
  using RM = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Eigen::Index;
  std::mt19937 g(29);
  std::normal_distribution<float> nd;
  std::uniform_int_distribution<int> ex(-6, 6);
  // Rows of every Eigen kernel: 2p (multiples of 8), 1p (+4..7) and one-row (+1..3) remainders,
  // in one row block or several (mc < m), columns 1..40 in one column block or several (nc < n).
  size_t on_lanes = 0, declined = 0, multi_block = 0, odd_rows = 0, multi_mc = 0, multi_nc = 0;
  for (size_t m : {8, 16, 24, 40, 136, 512, 2, 3, 4, 5, 7, 12, 13, 17, 27, 30, 61, 203})
    for (size_t k : {1, 2, 7, 16, 33, 128, 512, 700, 1100, 2500})
      for (size_t n = 1; n <= 40; ++n) {
        const bool wide = n <= 5 || n == 8 || n == 13 || n == 16 || n == 17 || n == 40;
        if (m * n * k > (wide ? 2'000'000u : 150'000u)) continue;
        std::vector<float> av(m * k), bv(k * n);
        for (auto& x : av) x = std::ldexp(nd(g), ex(g));
        for (auto& x : bv) x = std::ldexp(nd(g), ex(g));
        const auto M = static_cast<Index>(m), N = static_cast<Index>(n), K = static_cast<Index>(k);
        const bool expect_lanes = m >= 2 && n >= 2 && m + n + k >= 20;
        Eigen::internal::gemm_blocking_space<Eigen::ColMajor, float, float, Eigen::Dynamic,
                                             Eigen::Dynamic, Eigen::Dynamic>
            blocking(M, N, K, 1, true);
        // layout bit 0: A row-major, bit 1: B row-major; layout 4: row-major destination.
        for (int layout = 0; layout < 5; ++layout) {
          const bool a_row = layout == 1 || layout == 3, b_row = layout == 2 || layout == 3;
          std::vector<float> ref(m * n);
          if (layout == 4) {
            // dst [n, m] row-major = Bᵀ·Aᵀ (A, B column-major); its memory is (A·B) column-major.
            Eigen::Map<RM> dst(ref.data(), N, M);
            dst.noalias() = Eigen::Map<const RM>(bv.data(), N, K) * Eigen::Map<const RM>(av.data(), K, M);
          } else {
            Eigen::Map<CM> dst(ref.data(), M, N);
            if (a_row && b_row)
              dst.noalias() = Eigen::Map<const RM>(av.data(), M, K) * Eigen::Map<const RM>(bv.data(), K, N);
            else if (a_row)
              dst.noalias() = Eigen::Map<const RM>(av.data(), M, K) * Eigen::Map<const CM>(bv.data(), K, N);
            else if (b_row)
              dst.noalias() = Eigen::Map<const CM>(av.data(), M, K) * Eigen::Map<const RM>(bv.data(), K, N);
            else
              dst.noalias() = Eigen::Map<const CM>(av.data(), M, K) * Eigen::Map<const CM>(bv.data(), K, N);
          }
          const auto a_rs = static_cast<ptrdiff_t>(a_row ? k : 1), a_cs = static_cast<ptrdiff_t>(a_row ? 1 : m);
          const auto b_rs = static_cast<ptrdiff_t>(b_row ? n : 1), b_cs = static_cast<ptrdiff_t>(b_row ? 1 : k);
          for (Path p : vector_paths()) {
            std::vector<float> got(m * n, -1.0f);
            const bool ran = kvwb::codec::kakeya::gemm_like_eigen(p, m, n, k, av.data(), a_rs, a_cs,
                                                                  bv.data(), b_rs, b_cs, got.data(), m);
            EXPECT_EQ(ran, expect_lanes) << "m=" << m << " n=" << n << " k=" << k;
            if (!ran) {
              ++declined;
              continue;
            }
            ++on_lanes;
            if (static_cast<size_t>(blocking.kc()) < k) ++multi_block;
            if (m % 8 != 0) ++odd_rows;
            if (static_cast<size_t>(blocking.mc()) < m) ++multi_mc;
            if (static_cast<size_t>(blocking.nc()) < n) ++multi_nc;
            EXPECT_TRUE(same_bits(ref, got)) << kvwb::codec::simd::path_name(p) << " m=" << m
                                             << " n=" << n << " k=" << k << " layout=" << layout;
          }
        }
      }
  EXPECT_GT(on_lanes, 0u);
  EXPECT_GT(declined, 0u);
  EXPECT_GT(multi_block, 0u) << "no case crossed Eigen's depth block kc";
  EXPECT_GT(odd_rows, 0u) << "no case ran Eigen's 1p / one-row kernels";
  EXPECT_GT(multi_mc, 0u) << "no case crossed Eigen's row block mc";
  EXPECT_GT(multi_nc, 0u) << "no case crossed Eigen's column block nc";
}

// Reflectors [rows, nb] and coefficients: random (kind 0), or those of Eigen's HouseholderQR of a
// random (kind 1) or rank-deficient (kind 2: repeated and zero columns) matrix.
void reflectors(Eigen::MatrixXf& v, Eigen::VectorXf& h, int kind, std::mt19937& g) {
  std::normal_distribution<float> nd;
  for (Eigen::Index j = 0; j < v.cols(); ++j)
    for (Eigen::Index i = 0; i < v.rows(); ++i) v(i, j) = nd(g);
  if (kind == 0) {
    std::uniform_real_distribution<float> u(1.0f, 2.0f);
    for (auto& x : h) x = u(g);
    return;
  }
  if (kind == 2)
    for (Eigen::Index j = 1; j < v.cols(); j += 2) {
      if (j % 3 == 0) v.col(j).setZero();
      else v.col(j) = v.col(j - 1) * 0.5f;
    }
  Eigen::HouseholderQR<Eigen::MatrixXf> qr(v);
  v = qr.matrixQR();
  h = qr.hCoeffs();
}

// apply_block_householder_like_eigen against Eigen::internal::apply_block_householder_on_the_left
// with the same types: tall and D-sized blocks, 1…100 reflectors, 1…100 columns, both directions,
// depths across the triangular products' depth block kc and row blocks across mc.
TEST(KakeyaSimd, BlockHouseholderMatchesEigenOnEveryPath) {
  if (vector_paths().empty()) GTEST_SKIP() << "no vector path on this CPU";
  using Eigen::Index;
  using Eigen::MatrixXf;
  std::mt19937 g(31);
  std::normal_distribution<float> nd;
  size_t cases = 0, multi_kc = 0;
  for (Index rows : {1, 2, 3, 5, 8, 13, 17, 31, 48, 49, 64, 100, 128, 200, 333, 512, 600})
    for (Index nb : {1, 2, 3, 7, 8, 9, 15, 16, 17, 24, 33, 36, 47, 48, 49, 64, 72, 100})
      for (Index cols : {1, 2, 3, 4, 5, 7, 13, 31, 72, 100}) {
        if (nb > rows || rows * nb * cols > 3'000'000) continue;
        const int kind = static_cast<int>((rows + nb + cols) % 3);
        MatrixXf v(rows, nb);
        Eigen::VectorXf h(nb);
        reflectors(v, h, kind, g);
        MatrixXf mat(rows + 3, cols + 2);
        for (Index j = 0; j < mat.cols(); ++j)
          for (Index i = 0; i < mat.rows(); ++i) mat(i, j) = nd(g);
        Eigen::internal::gemm_blocking_space<Eigen::ColMajor, float, float, Eigen::Dynamic,
                                             Eigen::Dynamic, Eigen::Dynamic, 4>
            bl(nb, cols, rows, 1, false);
        if (bl.kc() < rows) ++multi_kc;
        for (bool forward : {false, true}) {
          MatrixXf ref = mat;
          Eigen::Block<MatrixXf> rb = ref.block(1, 2, rows, cols);
          const Eigen::Block<MatrixXf> vb = v.block(0, 0, rows, nb);
          Eigen::internal::apply_block_householder_on_the_left(rb, vb, h, forward);
          for (Path p : vector_paths()) {
            MatrixXf got = mat;
            ASSERT_TRUE(kvwb::codec::kakeya::apply_block_householder_like_eigen(
                p, got.block(1, 2, rows, cols), vb, h.data(), forward));
            ++cases;
            EXPECT_EQ(std::memcmp(ref.data(), got.data(), sizeof(float) * ref.size()), 0)
                << kvwb::codec::simd::path_name(p) << " rows=" << rows << " nb=" << nb
                << " cols=" << cols << " forward=" << forward << " kind=" << kind;
          }
        }
      }
  RecordProperty("cases", static_cast<int>(cases));
  EXPECT_GT(cases, 1000u);
  EXPECT_GT(multi_kc, 0u) << "no case crossed the triangular product's depth block kc";
  MatrixXf m(8, 3), v(8, 3);
  Eigen::VectorXf h(3);
  EXPECT_FALSE(kvwb::codec::kakeya::apply_block_householder_like_eigen(
      Path::kScalar, m.block(0, 0, 8, 3), v.block(0, 0, 8, 3), h.data(), true));
}

// householder_q_like_eigen against `HouseholderSequence(qr, h) * Identity(rows, r)` (thin Q, the
// blocked applyThisOnTheLeft): 48…128 reflectors (two blocks of (r + 1) / 2 below 96, blocks of 48
// from 96), tall and square, random and rank-deficient; fewer than 48 reflectors decline.
TEST(KakeyaSimd, ThinHouseholderQMatchesEigenOnEveryPath) {
  if (vector_paths().empty()) GTEST_SKIP() << "no vector path on this CPU";
  using Eigen::Index;
  using Eigen::MatrixXf;
  std::mt19937 g(37);
  size_t cases = 0, declined = 0;
  for (Index r : {2, 20, 47, 48, 49, 72, 95, 96, 97, 100, 128})
    for (Index rows : {Index{0}, Index{128}, Index{512}, Index{600}}) {
      const Index n = rows == 0 ? r : rows;
      if (n < r) continue;
      for (int kind : {1, 2}) {
        MatrixXf qr(n, r);
        Eigen::VectorXf h(r);
        reflectors(qr, h, kind, g);
        const Eigen::HouseholderSequence<MatrixXf, Eigen::VectorXf> q(qr, h);
        const MatrixXf ref = q * MatrixXf::Identity(n, r);
        for (Path p : vector_paths()) {
          MatrixXf got;
          const bool ran = kvwb::codec::kakeya::householder_q_like_eigen(p, qr, h, r, got);
          EXPECT_EQ(ran, r >= 48) << "r=" << r;
          if (!ran) {
            ++declined;
            continue;
          }
          ++cases;
          ASSERT_EQ(got.rows(), ref.rows());
          ASSERT_EQ(got.cols(), ref.cols());
          EXPECT_EQ(std::memcmp(ref.data(), got.data(), sizeof(float) * ref.size()), 0)
              << kvwb::codec::simd::path_name(p) << " rows=" << n << " r=" << r << " kind=" << kind;
        }
      }
    }
  RecordProperty("cases", static_cast<int>(cases));
  EXPECT_GT(cases, 20u);
  EXPECT_GT(declined, 0u);
}

TEST(KakeyaSimd, LloydMaxIndicesMatchTheScalarRule) {
  std::mt19937 g(3);
  std::normal_distribution<float> nd;
  std::vector<std::vector<float>> tables;
  for (unsigned b = 1; b <= 4; ++b) {
    const auto t = kvwb::codec::gaussian_table(b);
    tables.emplace_back(t.begin(), t.end());
  }
  tables.push_back({-3.0f, -0.5f, 0.25f, 4.0f});  // calibrated-style, asymmetric
  for (const auto& t : tables) {
    std::vector<float> buf(133);
    for (size_t j = 0; j < buf.size(); ++j) {
      switch (j % 7) {
        case 0: buf[j] = 0.5f * (t[j % t.size()] + t[(j + 1) % t.size()]); break;  // midpoint
        case 1: buf[j] = t[j % t.size()]; break;                                    // centroid
        case 2: buf[j] = (j % 2) ? 0.0f : -0.0f; break;
        case 3: buf[j] = 1e30f * ((j % 2) ? 1.0f : -1.0f); break;
        default: buf[j] = 3.0f * nd(g);
      }
    }
    for (size_t n : {1, 15, 16, 17, 64, 128, 133})
      for (float scale : {1.0f, 0.37f}) {
        std::vector<uint16_t> ref(n);
        std::vector<float> ref_s(n);
        for (size_t j = 0; j < n; ++j) {
          ref_s[j] = buf[j] * scale;
          ref[j] = kvwb::codec::kernels::quantize_fast(ref_s[j], t.data(), t.size());
        }
        for (Path p : {Path::kScalar, Path::kAvx2, Path::kAvx512}) {
          if (!kvwb::codec::simd::cpu_supports(p)) continue;
          std::vector<uint16_t> idx(n);
          std::vector<float> s(n);
          kvwb::codec::simd::lloyd_max_scaled(p, buf.data(), n, scale, t.data(), t.size(),
                                              idx.data(), s.data());
          EXPECT_TRUE(same_bits(ref, idx)) << "n=" << n << " table size " << t.size();
          EXPECT_TRUE(same_bits(ref_s, s));
        }
      }
  }
}

}  // namespace
