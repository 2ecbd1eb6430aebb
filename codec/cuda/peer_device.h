#pragma once
// Host-side interface of the CUDA peer kernels (peer_kernels.cu); plain C++ so the executor
// (cuda_executor.cpp) never sees CUDA headers. One call runs one (layer, stream) batch of a
// deterministic codec on the device: upload the rows once, encode every unit's payload, decode
// every payload back into [S, H, T, D], download — all on the workspace's one CUDA stream with a
// single host synchronisation at the end. Device memory holds one batch at a time.
//
// The payload of unit u is bytes [u·unit_payload, (u+1)·unit_payload) of PeerOutputs::payload and
// is exactly the codec's native payload (the container without header and parameter block); the
// executor adds the header the CPU codec writes. Kernels call the codec/kernels/ functions, so the
// bytes equal the CPU's (built with --fmad=false, as the kernels' CMake target requires).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace kvwb::codec::cuda {

/// Which family of kernels a job runs.
enum class PeerKind : uint8_t { kTurbo, kGgml, kKivi, kFp8, kBf16, kBesi };

/// Per-unit error flags raised by the device (the executor reproduces the exact message with the
/// CPU reference encoder of the lowest flagged unit; the device result is discarded).
inline constexpr uint32_t kFlagNonFinite = 1u << 0;  // a non-finite input value
inline constexpr uint32_t kFlagFp16Range = 1u << 1;  // an fp16 field with |v| > 65504
inline constexpr uint32_t kFlagBf16Range = 1u << 2;  // a bf16 value that rounds to infinity

/// Besicovitch settings of a PeerJob (codec-besicovitch.md §1, container §6.1). The codebook is
/// the CPU codec's own (besicovitch_codebook: [2^db, g] f32, alive for the process).
struct BesiJob {
  unsigned g = 2, db = 6;
  unsigned mb = 0;  // 0: f16 magnitudes; 1..4: quantized
  bool subtract_mean = false;
  size_t block_size = 512;
  const float* codebook = nullptr;
};

/// One batch as the device sees it. Units: per_head S·H units of T rows ((s, h) contiguous in
/// [S, H, T, D]); pooled S units of T·H rows, unit row ρ = t·H + h.
struct PeerJob {
  PeerKind kind = PeerKind::kBf16;
  size_t sequences = 0, heads = 0, tokens = 0, dim = 0;  // S, H, T, D
  bool pooled = false;
  size_t unit_payload = 0;  // payload bytes of every unit (all units have the same row count)
  // turbo: index bits 2 | 3 | 4.  kivi: 2 | 4.
  unsigned bits = 0;
  // ggml: GgmlType as integer and the Hadamard chunk (0 = no rotation).
  int ggml_type = 0;
  size_t n_rot = 0;
  // kivi (per_head only): K per-channel groups (true) or V per-token groups.
  bool kivi_k = true;
  size_t kivi_group = 0;        // G (K: tokens per group) or G_V (V: channels per group)
  size_t kivi_quant_rows = 0;   // quantised prefix rows per unit
  size_t kivi_group_bytes = 0;  // packed codes + fp16 Δ + fp16 z
  size_t kivi_quant_bytes = 0;  // all groups of a unit
  // fp8: scale = max|x|/448 over the batch (absmax) or 1.
  bool fp8_absmax = false;
  float fp8_fixed_scale = 0.0f;  // > 0: use this scale (the host computed it, e.g. when whitening)
  // besicovitch (besi_kernels.cuh): parameters as in the container's parameter block.
  BesiJob besi;
};

/// Device timings of one batch, milliseconds (CUDA events on the batch's stream).
struct PeerTimings {
  double h2d_ms = 0;     // rows host → device
  double kernel_ms = 0;  // encode + decode kernels
  double d2h_ms = 0;     // payload + decoded rows + flags device → host
};

/// Everything a batch produced on the device.
struct PeerOutputs {
  std::vector<uint8_t> payload;    // units · unit_payload bytes
  std::vector<float> decoded;      // [S, H, T, D] f32
  std::vector<uint32_t> flags;     // per unit, kFlag*
  std::vector<uint64_t> clipped;   // per unit: codes clipped / saturated
  float layer_scale = 1.0f;        // fp8: the batch scale used; 1 otherwise
  PeerTimings timings;
};

/// Runs a batch's kernels on the host, one work item after another (the same item bodies as the
/// device, peer_kernels.cuh), with no CUDA call: a CPU-only check of the executor's layouts,
/// indexing and container assembly. Slow; for tests (ExecutorOptions::emulate_device).
void emulate_peer_batch(const PeerJob& job, const float* rows, PeerOutputs& out);

/// Largest ggml Hadamard chunk the kernels take (values per thread).
inline constexpr size_t kMaxGgmlChunkValues = 512;

/// A device, a stream, and the buffers of the largest batch seen so far (device and pinned host),
/// reused from batch to batch. Not thread-safe: the executor serialises access.
class PeerWorkspace {
 public:
  /// Selects device `device` and creates the stream; throws CudaError when that fails.
  explicit PeerWorkspace(int device = 0);
  ~PeerWorkspace();
  PeerWorkspace(const PeerWorkspace&) = delete;
  PeerWorkspace& operator=(const PeerWorkspace&) = delete;

  /// Runs one batch. `rows` is [S, H, T, D] f32 on the host. Throws CudaError on a CUDA failure.
  void run(const PeerJob& job, const float* rows, PeerOutputs& out);

  /// Bytes of device memory the workspace holds now.
  size_t device_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvwb::codec::cuda
