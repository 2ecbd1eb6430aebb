#include "codec/math/eigen_gemm.h"

#include <Eigen/Dense>
#include <algorithm>

#include "codec/simd/gemm.h"

namespace kvwb::codec::kakeya {

bool eigen_gebp_reproduced() {
#ifdef EIGEN_HAS_SINGLE_INSTRUCTION_MADD
  // Eigen's micro kernels would fuse multiply and add (a build with FMA): not our order.
  return false;
#endif
  // The orders proven here are those of the baseline build's kernels (SSE: LhsProgress 4, mr = 8
  // rows, nr = 4 columns, no half or quarter packets, the 4-lane "swapped" one-row kernel);
  // another build's kernels are not assumed.
  using Traits = Eigen::internal::gebp_traits<float, float>;
  using HalfTraits =
      Eigen::internal::gebp_traits<float, float, false, false, Eigen::Architecture::Target,
                                   Eigen::internal::GEBPPacketHalf>;
  return Traits::LhsProgress == 4 && Traits::mr == 8 && Traits::nr == 4 &&
         static_cast<int>(HalfTraits::LhsProgress) == 4;
}

bool gemm_like_eigen(simd::Path path, size_t m, size_t n, size_t k, const float* a, ptrdiff_t a_rs,
                     ptrdiff_t a_cs, const float* b, ptrdiff_t b_rs, ptrdiff_t b_cs, float* c,
                     size_t ldc) {
  if (!eigen_gebp_reproduced()) return false;
  if (path == simd::Path::kScalar || m < 2 || n < 2 || k == 0 || m + n + k < 20) return false;
  // generic_product_impl<…, GemmProduct>::scaleAndAddTo: blocking(dst.rows(), dst.cols(),
  // depth, 1, true) of a dynamic destination. A row-major destination (Transpose) gives the same
  // computeProductBlockingSizes(kc, mc, nc) call as the column-major view used here.
  Eigen::internal::gemm_blocking_space<Eigen::ColMajor, float, float, Eigen::Dynamic,
                                       Eigen::Dynamic, Eigen::Dynamic>
      blocking(static_cast<Eigen::Index>(m), static_cast<Eigen::Index>(n),
               static_cast<Eigen::Index>(k), 1, true);
  // gemm_functor: mc = min(rows, blocking.mc()), nc = min(cols, blocking.nc()).
  const size_t mc = std::min(m, static_cast<size_t>(blocking.mc()));
  const size_t nc = std::min(n, static_cast<size_t>(blocking.nc()));
  const auto kc = static_cast<size_t>(blocking.kc());
  if (kc == 0 || mc == 0 || nc == 0) return false;
  simd::gemm_eigen_order(path, m, n, k, kc, mc, nc, a, a_rs, a_cs, b, b_rs, b_cs, c, ldc);
  return true;
}

}  // namespace kvwb::codec::kakeya
