#pragma once
// The CUDA executor: the deterministic codecs (turbo2/3/4, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl,
// kivi, fp8_e4m3, bf16) and besicovitch (every option) encoded and decoded on the device, one
// (layer, stream) batch per call on one CUDA stream with one host synchronisation, device memory
// bounded by one batch. Containers are byte-identical to the CPU executor's: the payload comes from
// the device kernels (the same codec/kernels/ functions), the header and parameter block from the
// CPU codec itself.
//
// besicovitch runs on the device with the CPU's bytes too. kakeya_pca runs through
// kakeya_executor.cpp: its own kernels, containers written by the CPU codec's writer, decoded
// values within the parity bar of codec-kakeya.md §12 (not bit for bit); with
// pca_method=randomized the per-fit range finder (mean, basis, d_eff) runs on the host with the
// CPU codec's own code and every later stage on the device. head_dim > 256 throws Unsupported
// naming the codec and the backend; nothing falls back to the CPU. Q-preconditioning (whiten / unwhiten) runs on the host
// with the CPU's matmul_rows, so its bits are the CPU's. An input the CPU would refuse (non-finite
// value, fp16 field out of range) is flagged by the device, and the CPU reference encoder of the
// lowest flagged unit raises the exact error the CPU executor raises; no device result is kept.
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "codec/executor.h"

namespace kvwb::codec::cuda {

class PeerWorkspace;
class MetricsWorkspace;
class KakeyaWorkspace;

/// Codec names the CUDA executor runs, in container-id order.
std::vector<std::string> device_codecs();

/// Whether `codec` runs on the CUDA executor.
bool runs_on_device(std::string_view codec);

/// Why the CUDA executor refuses `codec` with `params` on rows of `head_dim` values ("" = it runs
/// it; head_dim 0 = not known, the batch checks Kakeya's D ≤ 256 again). See codec/executor.h
/// backend_refusal.
std::string device_refusal(std::string_view codec, const ParamMap& params, size_t head_dim = 0);

class CudaExecutor final : public Executor {
 public:
  /// Uses device `device`; throws CudaError when it cannot be selected. With `emulate` the kernels
  /// run on the host (emulate_peer_batch) and no device is touched.
  explicit CudaExecutor(int device = 0, bool emulate = false);
  ~CudaExecutor() override;
  std::string_view name() const override { return "cuda"; }
  BatchResult run(const BatchRequest& request,
                  const std::atomic<bool>* cancel = nullptr) const override;
  /// The attention metrics on the device (metrics_host.h); a cancel before the start returns
  /// empty sums, as the CPU executor does.
  AttentionResult attention(const AttentionRequest& request,
                            const std::atomic<bool>* cancel = nullptr) const override;

 private:
  std::unique_ptr<PeerWorkspace> workspace_;  // null when emulating
  std::unique_ptr<MetricsWorkspace> metrics_;  // null when emulating
  std::unique_ptr<KakeyaWorkspace> kakeya_;    // null when emulating
  mutable std::mutex mutex_;  // one batch at a time on the workspace
};

}  // namespace kvwb::codec::cuda
