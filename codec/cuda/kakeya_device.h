#pragma once
// Host-side interface of the CUDA Kakeya-PCA kernels (kakeya_kernels.cu); plain C++ so the
// executor never sees CUDA headers. One call runs every block of one (layer, stream) batch
// (codec-kakeya.md §5, §6, §7): weighted mean and f64 covariance per fit, one-block-per-matrix
// cyclic Jacobi (f64), sort / cumsum d_eff / sign rule / skeleton rounding, projection, axial
// K-means (one thread block per code block), segments + t + residual + WHT + scale + Lloyd-Max +
// outliers per row, and the decode of every row from those codes — upload once, one stream, one
// host synchronisation. A "fit" is one PCA: a block, or a whole unit with share_basis.
// With `host_fits` (pca_method=randomized, §5.4) the fits come from the host (the CPU codec's own
// range finder, so its bits are the CPU's) and the mean / covariance / Jacobi stages are skipped.
//
// The codes come back as arrays (KakeyaOutputs), exactly the fields the container stores; the
// executor (kakeya_executor.cpp) turns them into kakeya::UnitCode and serialises them with the CPU
// codec's own writer, so the framing cannot drift. The hot tail (bf16 passthrough) is done on the
// host during assembly.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace kvwb::codec::cuda {

/// Largest head dimension the Kakeya kernels take (per-thread residual buffers are sized for it).
inline constexpr size_t kKakeyaMaxDim = 256;

/// One batch as the Kakeya kernels see it. Units as in PeerJob (per_head: S·H units of T rows;
/// pooled: S units of T·H rows, row ρ = t·H + h); every unit has `blocks_per_unit` full blocks of
/// `block_size` rows; coded row index = unit · blocks_per_unit · block_size + unit row.
struct KakeyaJob {
  size_t sequences = 0, heads = 0, tokens = 0, dim = 0;  // S, H, T, D
  bool pooled = false;
  size_t block_size = 512;
  size_t blocks_per_unit = 0;  // floor(unit rows / block_size), ≥ 1
  // Codec parameters (kakeya::Config, validated).
  double variance_ratio = 0.95;
  size_t rank_cap = 0;  // 0 = none
  size_t k = 16;
  size_t kmeans_max_iter = 32;
  uint64_t seed = 0xCAFEBABEull;
  unsigned bits = 3;
  std::vector<float> table;  // 2^bits ascending centroids
  uint8_t dtype = 0;         // SkeletonDtype: 0 fp16, 1 bf16, 2 fp32
  bool outliers = false;
  float outlier_threshold = 0.0f;
  bool share_basis = false;
  bool collect_residuals = false;
  /// Per coded row weights (normalised per block as the CPU codec does), or empty = all ones.
  std::vector<float> weights;
  /// Fits computed on the host (randomized PCA): when set, fit_d_eff [F], fit_mean [F, D] and
  /// fit_basis [F, D, D] (rows < d_eff, rest 0), already sign-fixed and rounded to the skeleton
  /// dtype, replace the device's mean, covariance and eigensolver stages.
  bool host_fits = false;
  std::vector<uint16_t> fit_d_eff;
  std::vector<float> fit_mean, fit_basis;
};

/// Device timings of one batch, milliseconds (CUDA events on the batch's stream).
struct KakeyaTimings {
  double h2d_ms = 0, kernel_ms = 0, d2h_ms = 0;
};

/// Everything one batch produced. F = fits (units with share_basis, else blocks), B = blocks,
/// R = B·block_size coded rows, W = next_pow2(D) (row stride of the per-row code arrays).
struct KakeyaOutputs {
  std::vector<uint32_t> flags;  // per unit: kFlag* of peer_device.h
  std::vector<uint16_t> d_eff;  // [F]
  std::vector<float> mean;      // [F, D] rounded to the skeleton dtype
  std::vector<float> basis;     // [F, D, D]: rows < d_eff hold the rounded basis
  std::vector<uint16_t> k_eff;  // [B]
  std::vector<float> centres;   // [B, kmax, D]: rows < k_eff, entries < d_eff, rounded
  size_t kmax = 0;              // min(k, block_size)
  std::vector<uint16_t> seg, t_bits, norm_bits, out_count;  // [R]
  std::vector<uint16_t> idx, out_idx, out_val;              // [R, W]
  std::vector<float> residuals;  // [R, W] scaled residuals (collect_residuals only)
  std::vector<float> decoded;    // [S, H, T, D]: block rows decoded (coded domain), tail 0
  KakeyaTimings timings;
};

/// Runs a batch's kernels on the host, every work item in turn, through the same bodies as the
/// device (kakeya_kernels.cuh). No CUDA call; for tests (ExecutorOptions::emulate_device).
void emulate_kakeya_batch(const KakeyaJob& job, const float* rows, KakeyaOutputs& out);

/// A device, a stream and buffers reused from batch to batch (they grow to the largest batch).
/// Not thread-safe: the executor serialises access.
class KakeyaWorkspace {
 public:
  /// Selects device `device` and creates the stream; throws CudaError when that fails.
  explicit KakeyaWorkspace(int device = 0);
  ~KakeyaWorkspace();
  KakeyaWorkspace(const KakeyaWorkspace&) = delete;
  KakeyaWorkspace& operator=(const KakeyaWorkspace&) = delete;

  /// Runs one batch; `rows` is [S, H, T, D] f32 on the host. Throws CudaError on a CUDA failure.
  void run(const KakeyaJob& job, const float* rows, KakeyaOutputs& out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvwb::codec::cuda
