// Our JacobiSVD (codec/math/jacobi_svd.h) against Eigen 3.4's JacobiSVD<MatrixXf> with
// ComputeThinV: singular values and V bit for bit (memcmp) under every vector path this CPU has,
// over tall and square shapes, rank-deficient, repeated-singular-value, zero, tiny, huge and
// badly column-scaled matrices and key-like sketches; the plane-rotation kernels against Eigen's
// applyOnTheLeft / applyOnTheRight directly.
#include <gtest/gtest.h>

#include <Eigen/Dense>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "codec/math/jacobi_svd.h"
#include "codec/simd/dispatch.h"
#include "codec/simd/jacobi.h"

namespace {

using kvwb::codec::simd::Path;
using MatF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;

std::vector<Path> vector_paths() {
  std::vector<Path> p;
  for (Path q : {Path::kAvx2, Path::kAvx512})
    if (kvwb::codec::simd::cpu_supports(q)) p.push_back(q);
  return p;
}

MatF gaussian(Eigen::Index rows, Eigen::Index cols, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> nd;
  MatF a(rows, cols);
  for (Eigen::Index j = 0; j < cols; ++j)
    for (Eigen::Index i = 0; i < rows; ++i) a(i, j) = nd(g);
  return a;
}

// Like the randomized PCA's B = A·Q: a few strong directions, a decaying tail, heavy outliers.
MatF sketch_like(Eigen::Index rows, Eigen::Index cols, uint32_t seed) {
  MatF a = gaussian(rows, cols, seed);
  for (Eigen::Index j = 0; j < cols; ++j) a.col(j) *= std::pow(0.85f, static_cast<float>(j));
  std::mt19937 g(seed + 7);
  for (int k = 0; k < 5; ++k)
    a(static_cast<Eigen::Index>(g() % static_cast<uint32_t>(rows)),
      static_cast<Eigen::Index>(g() % static_cast<uint32_t>(cols))) *= 40.0f;
  return a;
}

// Counts the vector paths on which ours equals Eigen bit for bit; adds a failure naming `what`.
void expect_eigen_bits(const MatF& a, const std::string& what) {
  const Eigen::JacobiSVD<MatF> ref(a, Eigen::ComputeThinV);
  const size_t rows = static_cast<size_t>(a.rows()), cols = static_cast<size_t>(a.cols());
  for (Path p : vector_paths()) {
    std::vector<float> s(cols, -1.0f), v(cols * cols, -1.0f);
    ASSERT_TRUE(kvwb::codec::kakeya::jacobi_svd_thin_v_like_eigen(p, a.data(), rows, cols, rows,
                                                                  s.data(), v.data()))
        << what;
    ASSERT_EQ(ref.singularValues().size(), static_cast<Eigen::Index>(cols)) << what;
    ASSERT_EQ(ref.matrixV().size(), static_cast<Eigen::Index>(cols * cols)) << what;
    EXPECT_EQ(std::memcmp(s.data(), ref.singularValues().data(), cols * sizeof(float)), 0)
        << what << " singular values, path " << kvwb::codec::simd::path_name(p);
    EXPECT_EQ(std::memcmp(v.data(), ref.matrixV().data(), cols * cols * sizeof(float)), 0)
        << what << " V, path " << kvwb::codec::simd::path_name(p);
  }
}

std::string shape(const char* kind, Eigen::Index r, Eigen::Index c) {
  return std::string(kind) + " " + std::to_string(r) + "x" + std::to_string(c);
}

TEST(JacobiSvd, GaussianShapesMatchEigenBits) {
  if (vector_paths().empty()) GTEST_SKIP() << "no vector path on this CPU";
  const Eigen::Index shapes[][2] = {{1, 1},     {2, 1},    {2, 2},    {3, 2},     {5, 5},
                                    {7, 3},     {17, 17},  {33, 9},   {64, 64},   {100, 13},
                                    {71, 71},   {128, 72}, {512, 72}, {600, 100}, {300, 1},
                                    {100, 100}, {250, 37}};
  uint32_t seed = 1;
  for (const auto& sh : shapes)
    expect_eigen_bits(gaussian(sh[0], sh[1], seed++), shape("gaussian", sh[0], sh[1]));
}

TEST(JacobiSvd, SketchLikeMatricesMatchEigenBits) {
  if (vector_paths().empty()) GTEST_SKIP() << "no vector path on this CPU";
  for (uint32_t seed = 11; seed < 15; ++seed)
    expect_eigen_bits(sketch_like(512, 72, seed), "sketch");
  expect_eigen_bits(sketch_like(96, 72, 3), "sketch 96x72");
  expect_eigen_bits(sketch_like(40, 24, 4), "sketch 40x24");
}

TEST(JacobiSvd, DegenerateMatricesMatchEigenBits) {
  if (vector_paths().empty()) GTEST_SKIP() << "no vector path on this CPU";
  expect_eigen_bits(MatF::Zero(50, 20), "zero 50x20");
  expect_eigen_bits(MatF::Zero(9, 9), "zero 9x9");
  // Rank 3 and rank 1 products.
  expect_eigen_bits(gaussian(120, 3, 5) * gaussian(3, 40, 6), "rank 3 120x40");
  expect_eigen_bits(gaussian(64, 1, 7) * gaussian(1, 64, 8), "rank 1 64x64");
  // Repeated singular values: orthonormal columns times diag(2, 2, 2, 1, 1, 0.5, ...).
  const Eigen::HouseholderQR<MatF> qr(gaussian(80, 30, 9));
  const MatF q = qr.householderQ() * MatF::Identity(80, 30);
  Eigen::VectorXf d(30);
  for (Eigen::Index i = 0; i < 30; ++i) d(i) = i < 10 ? 2.0f : (i < 20 ? 1.0f : 0.5f);
  expect_eigen_bits(
      q * d.asDiagonal() * Eigen::HouseholderQR<MatF>(gaussian(30, 30, 10)).householderQ(),
      "repeated singular values 80x30");
  expect_eigen_bits(MatF::Identity(12, 12), "identity 12x12");
  // Identical columns and a zero column.
  MatF dup = gaussian(60, 10, 11);
  dup.col(3) = dup.col(1);
  dup.col(7).setZero();
  expect_eigen_bits(dup, "duplicate and zero columns 60x10");
}

TEST(JacobiSvd, ExtremeMagnitudesMatchEigenBits) {
  if (vector_paths().empty()) GTEST_SKIP() << "no vector path on this CPU";
  expect_eigen_bits(gaussian(90, 20, 21) * 1e-30f, "tiny 1e-30");
  expect_eigen_bits(gaussian(90, 20, 22) * 1e-42f, "subnormal 1e-42");
  expect_eigen_bits(gaussian(90, 20, 23) * 1e30f, "huge 1e30");
  expect_eigen_bits(gaussian(30, 30, 24) * 3e37f, "near max 30x30");
  MatF scaled = gaussian(200, 40, 25);
  for (Eigen::Index j = 0; j < 40; ++j)
    scaled.col(j) *= std::pow(10.0f, static_cast<float>(j % 9) - 4.0f);
  expect_eigen_bits(scaled, "columns 1e-4..1e4 200x40");
  MatF mixed = gaussian(70, 16, 26);
  mixed.row(5) *= 1e20f;
  mixed.col(2) *= 1e-25f;
  expect_eigen_bits(mixed, "one huge row, one tiny column 70x16");
}

TEST(JacobiSvd, LeavesWhatItDoesNotReproduceToEigen) {
  std::vector<float> s(8), v(64);
  const MatF wide = gaussian(4, 8, 31);
  for (Path p : {Path::kScalar, Path::kAvx2, Path::kAvx512}) {
    // rows < cols: Eigen's R^T preconditioner is not reproduced.
    EXPECT_FALSE(kvwb::codec::kakeya::jacobi_svd_thin_v_like_eigen(p, wide.data(), 4, 8, 4,
                                                                   s.data(), v.data()));
    MatF bad = gaussian(10, 8, 32);
    bad(3, 4) = std::numeric_limits<float>::quiet_NaN();
    EXPECT_FALSE(kvwb::codec::kakeya::jacobi_svd_thin_v_like_eigen(p, bad.data(), 10, 8, 10,
                                                                   s.data(), v.data()));
    bad(3, 4) = std::numeric_limits<float>::infinity();
    EXPECT_FALSE(kvwb::codec::kakeya::jacobi_svd_thin_v_like_eigen(p, bad.data(), 10, 8, 10,
                                                                   s.data(), v.data()));
  }
  // The scalar path is Eigen itself (the golden test compares the vector paths with it).
  const MatF ok = gaussian(10, 8, 33);
  EXPECT_FALSE(kvwb::codec::kakeya::jacobi_svd_thin_v_like_eigen(Path::kScalar, ok.data(), 10, 8,
                                                                 10, s.data(), v.data()));
}

TEST(JacobiSvd, RotationKernelsMatchEigenApplyOnTheLeftAndRight) {
  std::mt19937 g(41);
  std::uniform_real_distribution<float> ud(-1.0f, 1.0f);
  for (Eigen::Index n : {1, 3, 4, 5, 16, 17, 31, 72, 101}) {
    const MatF a0 = gaussian(n, n, static_cast<uint32_t>(n));
    const Eigen::Index p = n - 1, q = n / 2;
    if (p == q) continue;
    const Eigen::JacobiRotation<float> j(ud(g), ud(g));
    MatF left_ref = a0, right_ref = a0;
    left_ref.applyOnTheLeft(p, q, j);
    right_ref.applyOnTheRight(p, q, j);
    for (Path path : {Path::kScalar, Path::kAvx2, Path::kAvx512}) {
      if (!kvwb::codec::simd::cpu_supports(path)) continue;
      MatF left = a0, right = a0;
      const size_t un = static_cast<size_t>(n);
      kvwb::codec::simd::rotate_strided_f32(path, &left(p, 0), un, &left(q, 0), un, un, j.c(),
                                            j.s());
      // Row p kept in a contiguous buffer, row q strided (how the sweep runs it).
      MatF mixed = a0;
      std::vector<float> row_p(un);
      for (size_t c = 0; c < un; ++c) row_p[c] = mixed(p, static_cast<Eigen::Index>(c));
      kvwb::codec::simd::rotate_strided_f32(path, row_p.data(), 1, &mixed(q, 0), un, un, j.c(),
                                            j.s());
      for (size_t c = 0; c < un; ++c) mixed(p, static_cast<Eigen::Index>(c)) = row_p[c];
      EXPECT_EQ(std::memcmp(mixed.data(), left_ref.data(), sizeof(float) * un * un), 0)
          << "left, contiguous row p, n=" << n << " " << kvwb::codec::simd::path_name(path);
      const Eigen::Index head = Eigen::internal::first_default_aligned(right.col(q).data(), n);
      const Eigen::Index body = head + (n - head) / 4 * 4;
      kvwb::codec::simd::rotate_contiguous_f32(path, right.col(p).data(), right.col(q).data(),
                                               static_cast<size_t>(n), static_cast<size_t>(head),
                                               static_cast<size_t>(body), j.c(), -j.s());
      EXPECT_EQ(
          std::memcmp(left.data(), left_ref.data(), sizeof(float) * static_cast<size_t>(n * n)), 0)
          << "left n=" << n << " " << kvwb::codec::simd::path_name(path);
      EXPECT_EQ(
          std::memcmp(right.data(), right_ref.data(), sizeof(float) * static_cast<size_t>(n * n)),
          0)
          << "right n=" << n << " " << kvwb::codec::simd::path_name(path);
    }
  }
}

}  // namespace
