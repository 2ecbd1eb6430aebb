#pragma once
// Kakeya-PCA stages 5.7–5.8 (codec-kakeya.md): axial spherical K-means on the directions of the
// PCA coefficient rows, and the per-row segment id / scalar t / residual. All arrays row-major f32.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "codec/kernels/kakeya.h"
#include "codec/simd/dispatch.h"

namespace kvwb::codec::kakeya {

/// Euclidean norm of v[0..d) accumulated in f32 in index order.
using kernels::norm_f32;

/// §4.4: splitmix(seed ^ TAG_KMEANS, block_index) mod n_valid (index into the valid-row list).
size_t kmeans_first_index(uint64_t seed, uint64_t block_index, size_t n_valid) noexcept;

/// g = u · cenᵀ ([rows, k] row-major; u [rows, d], cen [k, d]) with the bits of Eigen's f32 GEMM
/// on every SIMD path: the vector paths run only where Eigen sums each element in plain index
/// order (k % 8 == 0, its 2pX4 / 2pX1 micro kernels, one depth block), otherwise Eigen runs.
void centre_products(const float* u, size_t rows, size_t d, const float* cen, size_t k, float* g,
                     simd::Path path = simd::active_path());

/// Result of fit_axial_kmeans.
struct KmeansFit {
  size_t k_eff = 1;
  std::vector<float> centres;  // [k_eff, d] row-major, unit rows (f32, before skeleton rounding)
  size_t n_valid = 0;          // rows with w > 0 and ‖c‖ > ε
  size_t iterations = 0;       // Lloyd iterations run (assignment passes)
};

/// §5.7: axial spherical K-means on coeffs ([n, d]) with weights w ([n], empty = ones).
/// K_eff = min(k, max(n_valid, 1)); n_valid = 0 gives the single centre e_0. Farthest-first
/// initialisation from kmeans_first_index(seed, block_index, n_valid) with the signed cosine
/// (f32), then at most max_iter Lloyd passes with absolute-cosine assignment (previous
/// assignment starts all zero), signed weighted update; an empty or cancelled cluster keeps
/// its old centre.
KmeansFit fit_axial_kmeans(const float* coeffs, size_t n, size_t d, std::span<const float> w,
                           size_t k, size_t max_iter, uint64_t seed, uint64_t block_index);

/// §5.8 for all n rows of coeffs ([n, d]) against centres ([k_eff, d], already rounded):
/// ‖c‖ ≤ ε → seg 0, t 0; otherwise seg = argmax_k |⟨c, C_k⟩| (strict >, first wins) and
/// t = ⟨c, C_seg⟩ (signed, f32, unrounded). Writes seg[n] and t[n].
void assign_segments(const float* coeffs, size_t n, size_t d, const float* centres, size_t k_eff,
                     uint32_t* seg, float* t);

/// r = c − t_q · centre over d entries (f32).
using kernels::segment_residual;

}  // namespace kvwb::codec::kakeya
