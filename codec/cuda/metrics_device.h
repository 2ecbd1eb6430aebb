#pragma once
// Host-side interface of the CUDA metric kernels (metrics_kernels.cu): the reconstruction sums of
// a (layer, stream) batch per kv head and the attention metrics of a layer (metrics.md §1, §3),
// computed on the device; plain C++ so the executor never sees CUDA headers. The per-work-item
// bodies live in metrics_kernels.cuh; metrics_emulate.cpp runs the same bodies on the host.
//
// Reconstruction: one thread per row computes that row's squared error, energy, cosine and max
// |error| exactly as ErrorSums::add (same f64 operations in the same order, no contraction), and
// one block per kv head adds its rows in the CPU's order (sequence, then token): the sums equal
// the CPU's bit for bit. Attention: one block per sampled query; f32 logits (sequential dot over
// D), f64 softmax, f64 outputs; the per-query values come back and the host adds them per
// (sequence, kv head) in the CPU's order. Differs from the CPU's Eigen GEMMs in summation order
// and in the device's exp/log (tolerance: docs/gpu.md).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace kvwb::codec::cuda {

/// A batch of rows x, x̂ [S, H, T, D] f32 whose per-head reconstruction sums are wanted.
struct ErrorJob {
  size_t sequences = 0, heads = 0, tokens = 0, dim = 0;  // S, H, T, D
};

/// Reconstruction sums of one kv head over its S·T rows (the f64 fields of ErrorSums).
struct HeadErr {
  double sq_err = 0, sq_ref = 0, cos_sum = 0, max_abs = 0;
};

/// One sampled query of an attention job: (s, hq) of the query head, (s, h) of its kv head,
/// position p.
struct QueryRef {
  uint32_t sq = 0;   // s·Hq + hq
  uint32_t skv = 0;  // s·H + h
  uint32_t p = 0;    // query position (< T)
};

/// One layer's attention metrics as the device sees it.
struct AttnJob {
  size_t sequences = 0, q_heads = 0, kv_heads = 0, tokens = 0, dim = 0;  // S, Hq, H, T, D
  float scale = 1.0f;
  int window = 0;  // > 0: sliding window
};

/// Per-query results (metrics.md §3.3) before aggregation.
struct QueryOut {
  double o_sq = 0;       // ‖o‖²
  double err_both = 0;   // ‖o − ô‖², K and V compressed
  double err_k = 0;      // K only
  double err_v = 0;      // V only
  double kl = 0;         // KL(π‖π̂), clamped at 0
  uint32_t top1 = 0;     // 1 when the argmaxes agree
  uint32_t pad = 0;
};

/// Device timings of one metric call, milliseconds (CUDA events on the workspace's stream).
struct MetricTimings {
  double h2d_ms = 0, kernel_ms = 0, d2h_ms = 0;
};

/// Threads per block of the attention kernel (and of its host emulation: the per-thread
/// partials are reduced in the same tree order).
inline constexpr unsigned kAttnThreads = 128;
/// Threads per block of the per-head reconstruction reduction.
inline constexpr unsigned kHeadThreads = 256;

/// The reconstruction kernels on the host, one work item after another (tests without a device).
void emulate_head_errors(const ErrorJob& job, const float* x, const float* xhat,
                         std::vector<HeadErr>& out);

/// The attention kernel on the host, one query and one thread index after another.
void emulate_attention(const AttnJob& job, const std::vector<QueryRef>& queries, const float* q,
                       const float* k, const float* v, const float* khat, const float* vhat,
                       std::vector<QueryOut>& out);

/// A device stream and the buffers of the largest metric job seen so far, reused. Not
/// thread-safe: the executor serialises access.
class MetricsWorkspace {
 public:
  /// Selects device `device` and creates the stream; throws CudaError when that fails.
  explicit MetricsWorkspace(int device = 0);
  ~MetricsWorkspace();
  MetricsWorkspace(const MetricsWorkspace&) = delete;
  MetricsWorkspace& operator=(const MetricsWorkspace&) = delete;

  /// Per-head reconstruction sums of host rows x, x̂ [S, H, T, D]; one host synchronisation.
  void head_errors(const ErrorJob& job, const float* x, const float* xhat,
                   std::vector<HeadErr>& out, MetricTimings& t);

  /// Per-query attention results of host arrays q [S, Hq, T, D], k, v, khat, vhat [S, H, T, D];
  /// one host synchronisation.
  void attention(const AttnJob& job, const std::vector<QueryRef>& queries, const float* q,
                 const float* k, const float* v, const float* khat, const float* vhat,
                 std::vector<QueryOut>& out, MetricTimings& t);

  /// Bytes of device memory the workspace holds now.
  size_t device_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvwb::codec::cuda
