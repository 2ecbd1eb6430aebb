#include "codec/math/eigen_gemm.h"

#include <Eigen/Dense>

#include "codec/simd/gemm.h"

namespace kvwb::codec::kakeya {

bool gemm_like_eigen(simd::Path path, size_t m, size_t n, size_t k, const float* a, ptrdiff_t a_rs,
                     ptrdiff_t a_cs, const float* b, ptrdiff_t b_rs, ptrdiff_t b_cs, float* c,
                     size_t ldc) {
#ifdef EIGEN_HAS_SINGLE_INSTRUCTION_MADD
  // Eigen's micro kernels would fuse multiply and add (a build with FMA): not our order.
  return false;
#endif
  // The order proven here is that of the 2p × 4 register block of the baseline build (SSE:
  // LhsProgress 4, mr = 8 rows, nr = 4 columns); another build's kernels are not assumed.
  using Traits = Eigen::internal::gebp_traits<float, float>;
  constexpr size_t mr = Traits::mr;
  if (Traits::mr != 2 * Traits::LhsProgress || Traits::nr != 4 || mr % 8 != 0) return false;
  if (path == simd::Path::kScalar || m < 2 || n < 2 || k == 0 || m + n + k < 20 || m % mr != 0)
    return false;
  // generic_product_impl<…, GemmProduct>::scaleAndAddTo: blocking(dst.rows(), dst.cols(),
  // depth, 1, true) of a dynamic destination. A row-major destination (Transpose) gives the same
  // computeProductBlockingSizes(kc, mc, nc) call as the column-major view used here.
  Eigen::internal::gemm_blocking_space<Eigen::ColMajor, float, float, Eigen::Dynamic,
                                       Eigen::Dynamic, Eigen::Dynamic>
      blocking(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(n),
               static_cast<Eigen::Index>(k), 1, true);
  const auto mc = static_cast<size_t>(blocking.mc());
  const auto kc = static_cast<size_t>(blocking.kc());
  if (kc == 0 || (mc < m && mc % mr != 0)) return false;
  simd::gemm_eigen_order(path, m, n, k, kc, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc);
  return true;
}

}  // namespace kvwb::codec::kakeya
