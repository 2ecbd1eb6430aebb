#pragma once
// The execution seam (architecture.md): an Executor encodes and decodes a whole (layer, stream)
// batch — every sequence, kv head and block of one layer's K or V — in one call, and returns every
// unit's KVCB container, the decoded rows and the encode statistics. The runner (and through it
// sweeps, evaluation and the GUI) runs codecs only through this interface; backends sit behind
// make_executor(), whose translation unit (executor_factory.cpp) is the only place that knows
// whether CUDA was compiled.
//
// A batch is plain data: host arrays in a fixed layout plus the codec by name, parameters and
// calibrated tables. Nothing calls back into the caller per unit, so a device backend can copy the
// batch once and launch over all its blocks; results are written by unit index, so they never
// depend on the number of threads (or streams) a backend uses. The bytes of every container equal
// the CPU reference's (tests/golden holds the oracle).
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/errors.h"
#include "codec/codec.h"
#include "codec/format/tensor.h"
#include "codec/math/metrics.h"

namespace kvwb::codec {

/// A codec as a backend builds it: registry name, parameters (text form), calibrated tables.
struct CodecSpec {
  std::string name;
  ParamMap params;
  CodecResources resources;
};

/// One (layer, stream) batch. Units (codec-kakeya.md §2): per_head gives S·H units ordered
/// sequence-major then kv head, each the T rows of one (s, h); pooled_heads gives S units, each
/// the T·H rows of one sequence interleaved token-major (row t·H + h).
struct BatchRequest {
  CodecSpec codec;
  const float* rows = nullptr;  // [S, H, T, D] f32 row-major, the stream's rows (un-whitened)
  size_t sequences = 0;         // S
  size_t heads = 0;             // H (kv heads)
  size_t tokens = 0;            // T
  size_t dim = 0;               // D
  const float* row_weights = nullptr;  // [S, H, T] f32 (codecs that take row weights) or null
  /// Q-preconditioning (codec-kakeya.md §8): [H, D, D] row-major L per kv head. When set the
  /// codec codes rows·L_h (hot-tail rows stay un-whitened) and the decoded coded rows are mapped
  /// back with `unwhiten` ([H, D, D] L⁻¹ per kv head, required with `whiten`).
  const float* whiten = nullptr;
  const float* unwhiten = nullptr;
  uint32_t layer = 0;
  uint16_t n_kv_heads = 0;  // container field n_kv_heads; 0 means H
  Stream stream = Stream::kK;
  BlockRows block_rows = BlockRows::kPerHead;
  uint32_t block_size = 512;
  uint8_t domain_flags = 0;  // container domain_flags; kDomainWhitened is added when whitening
  bool collect_residuals = false;  // Kakeya: fill stats.scaled_residuals
  /// Reconstruction metrics (metrics.md §1) of the batch where the decoded rows are: the backend
  /// fills BatchResult::head_errors (the runner sets it; golden tests and benchmarks leave it off).
  bool measure = false;
};

/// Checks the shape and pointers of a request every backend needs (before any work): a non-empty
/// [S, H, T, D], rows given, whitening with both L and L⁻¹, at most 65535 kv heads. Throws
/// InvalidArgument naming the layer and stream.
inline void check_batch_request(const BatchRequest& r) {
  const std::string what = "executor: layer " + std::to_string(r.layer) + " stream " +
                           (r.stream == Stream::kK ? "K" : "V");
  if (r.sequences == 0 || r.heads == 0 || r.tokens == 0 || r.dim == 0)
    throw InvalidArgument(what + ": empty batch [S, H, T, D] = [" + std::to_string(r.sequences) +
                          ", " + std::to_string(r.heads) + ", " + std::to_string(r.tokens) + ", " +
                          std::to_string(r.dim) + "]");
  if (!r.rows) throw InvalidArgument(what + ": no rows");
  if ((r.whiten == nullptr) != (r.unwhiten == nullptr))
    throw InvalidArgument(what + ": whitening needs both L and L⁻¹");
  if (r.heads > 0xFFFF) throw InvalidArgument(what + ": more than 65535 kv heads");
}

/// Q-preconditioning of a whole batch on the host (every backend codes the same bits): fills
/// `xw` [S, H, T, D] with rows · L_h per (s, h), T rows at a time, and returns max |value| of it.
/// Needs req.whiten; defined in codec/executor.cpp.
double whiten_batch(const BatchRequest& req, std::vector<float>& xw);

/// Where one unit's container lies in BatchResult::containers, and its byte accounting.
struct UnitRecord {
  uint32_t sequence = 0;
  uint16_t kv_head = 0;          // kPooledHead for a pooled_heads unit
  uint64_t offset = 0;           // first byte in BatchResult::containers
  uint64_t size = 0;             // container bytes, header included
  uint64_t header_bytes = 0;     // 48 + params_bytes (not counted)
  uint64_t reported_bytes = 0;   // what the spec counts (K§9.8, Besicovitch §6.1, peers' native)
  uint64_t reference_bytes = 0;  // reference accounting (K§10.1); = reported for peers
  uint64_t tail_bytes = 0;       // hot tail / KIVI fp16 window bytes inside reported_bytes
  uint64_t codec_rows = 0;       // rows coded by the codec proper
  uint64_t n_block_rows = 0;     // decoded rows that came from coded blocks (the whitened ones)
};

/// Everything one batch produced.
struct BatchResult {
  std::vector<uint8_t> containers;  // every unit's KVCB container, unit order, concatenated
  std::vector<UnitRecord> units;    // unit order
  Tensor4 decoded;                  // [S, H, T, D] f32 decoded from the bytes alone, un-whitened
  uint64_t reported_bytes = 0;      // Σ units (per_layer_stream_bytes not included)
  uint64_t reference_bytes = 0;
  uint64_t tail_bytes = 0;
  uint64_t per_layer_stream_bytes = 0;  // added once per (layer, stream), e.g. fp8's f32 scale
  EncodeStats stats;         // merged in unit order: d_eff / k_eff per block, outliers, clipped...
  float layer_scale = 1.0f;  // the per-(layer, stream) scale the codec chose (Codec::layer_scale)
  double max_abs_whitened = 0;  // max |rows·L| before encoding (reported, never saturated)
  /// Device backends: milliseconds of this batch on the device (CUDA events on its stream):
  /// rows host → device, the encode + decode kernels, results device → host. 0 on the CPU.
  double device_h2d_ms = 0, device_kernel_ms = 0, device_d2h_ms = 0;
  /// With BatchRequest::measure: per kv head h (H entries), the ErrorSums of the request's rows
  /// against `decoded` over that head's S·T rows, added sequence by sequence, token by token (as
  /// ErrorSums::add over s = 0 … S−1). The whitened-domain fields are never filled here. Empty
  /// without `measure`. The CPU computes them with ErrorSums::add itself (bit for bit the CPU
  /// metrics); a device backend within the tolerance of docs/gpu.md.
  std::vector<ErrorSums> head_errors;
  /// Device backends: milliseconds of the metric kernels of this batch (0 on the CPU).
  double device_metrics_ms = 0;

  /// The container of unit `u`.
  std::span<const uint8_t> container(size_t u) const {
    return std::span<const uint8_t>(containers).subspan(units[u].offset, units[u].size);
  }
};

/// The reconstruction sums of BatchResult::head_errors on the CPU: per kv head h, ErrorSums::add
/// of rows (s, h, ·) against decoded (s, h, ·) for s = 0 … S−1, heads on `threads` threads
/// (0 = all; the result does not depend on it). rows, decoded: [S, H, T, D] f32.
std::vector<ErrorSums> head_error_sums(const float* rows, const float* decoded, size_t S, size_t H,
                                       size_t T, size_t D, int threads = 0);

/// The attention metrics of one layer (metrics.md §3), the second seam entry point: everything a
/// backend needs to compute them where the decoded rows are. Plain host arrays; the query sample
/// is chosen by the caller (docs/attention-sampling.md) and is part of the request.
struct AttentionRequest {
  const float* q = nullptr;     // [S, Hq, T, D] post-RoPE queries
  const float* k = nullptr;     // [S, H, T, D] reference post-RoPE keys
  const float* v = nullptr;     // [S, H, T, D] reference values
  const float* khat = nullptr;  // [S, H, T, D] decoded post-RoPE keys
  const float* vhat = nullptr;  // [S, H, T, D] decoded values
  size_t sequences = 0, q_heads = 0, kv_heads = 0, tokens = 0, dim = 0;  // S, Hq, H, T, D
  /// [S·Hq] ascending query positions (< T) of (s, hq) at index s·Hq + hq.
  const std::vector<std::vector<uint32_t>>* samples = nullptr;
  float scale = 1.0f;  // softmax scale a
  int window = 0;      // > 0: sliding window of that many keys, else causal
  uint32_t layer = 0;  // for messages
};

/// Checks an attention request (shapes, pointers, Hq a multiple of H, every sample ascending and
/// below T) before any work; throws InvalidArgument naming the layer.
void check_attention_request(const AttentionRequest& r);

/// What the attention entry point returns.
struct AttentionResult {
  /// [S·H]: unit (s, h) holds accumulate_attention over its query heads hq = h·g … h·g + g − 1
  /// in that order (g = Hq / H), each over its sample in order.
  std::vector<AttentionVariants> units;
  /// Device backends: milliseconds (CUDA events): inputs host → device, kernels, results back.
  double device_h2d_ms = 0, device_kernel_ms = 0, device_d2h_ms = 0;
};

/// The CPU attention metrics (accumulate_attention per unit on `threads` threads; the result does
/// not depend on the thread count). On cancel, units not started stay zero and it returns early.
AttentionResult attention_on_cpu(const AttentionRequest& r, int threads,
                                 const std::atomic<bool>* cancel = nullptr);

/// An execution backend.
class Executor {
 public:
  virtual ~Executor() = default;
  /// "cpu" or "cuda".
  virtual std::string_view name() const = 0;
  /// Encodes every unit of the batch, decodes each container from its bytes alone, and returns
  /// them. Throws InvalidArgument / Unsupported for a request it cannot run (before any work),
  /// Fp16Range / NonFiniteInput naming the unit ("sequence s, layer l, kv head h, stream K: ...";
  /// the lowest failing unit wins), Cancelled when *cancel becomes true.
  virtual BatchResult run(const BatchRequest& request,
                          const std::atomic<bool>* cancel = nullptr) const = 0;
  /// The attention metrics of one layer. Default: attention_on_cpu on all threads (so an
  /// executor without its own implementation gives the CPU numbers); a cancel returns early with
  /// incomplete sums, the caller checks the flag.
  virtual AttentionResult attention(const AttentionRequest& request,
                                    const std::atomic<bool>* cancel = nullptr) const {
    return attention_on_cpu(request, 0, cancel);
  }
};

/// Settings of an executor.
struct ExecutorOptions {
  int threads = 0;  // CPU worker threads (0 = all hardware threads); results never depend on it
  /// cuda only, for tests: run the CUDA executor with its kernels emulated on the host (the same
  /// per-thread code, one work item after another; no device needed, slow). Checks the executor's
  /// layouts and container assembly where no GPU is at hand.
  bool emulate_device = false;
};

/// Builds the executor of `backend`: "cpu", "cuda" or "auto". "cuda" throws Unavailable with the
/// reason while no CUDA executor can run codecs in this build on this machine; "auto" takes CUDA
/// when it can and otherwise the CPU, writing why into *note (when given). Other names throw
/// InvalidArgument.
std::unique_ptr<Executor> make_executor(std::string_view backend,
                                        const ExecutorOptions& options = {},
                                        std::string* note = nullptr);

/// The backend make_executor(requested) would use ("cpu" or "cuda"), with the same errors and
/// the same *note, without building it.
std::string resolve_executor(std::string_view requested, std::string* note = nullptr);

/// One device of a backend.
struct DeviceDescription {
  std::string name;
  uint64_t total_memory = 0, free_memory = 0;  // bytes
  int cc_major = 0, cc_minor = 0;
  int driver_version = 0, runtime_version = 0;
};

/// One execution backend as this binary knows it.
struct BackendDescription {
  std::string name;          // "cpu" or "cuda"
  bool compiled = false;     // built into this binary
  bool available = false;    // usable now (cuda: a device is present)
  bool runs_codecs = false;  // the codec pipeline executes on it
  std::string detail;        // why not available / what it is
  std::vector<std::string> codecs;  // codec names it executes (cpu: all; cuda: the device codecs)
  std::string simd_path;     // cpu: the SIMD dispatch path in use (scalar, avx2, avx512); else ""
  std::vector<DeviceDescription> devices;
};

/// Why backend `backend` ("cpu" or "cuda") cannot run codec `codec` with `params` on rows of
/// `head_dim` values (0: not known yet) in this build, or "" when it can, e.g. "codec foo does not
/// run on cuda in this build" or Kakeya's head-dimension limit on the device.
std::string backend_refusal(std::string_view backend, const std::string& codec,
                            const ParamMap& params, size_t head_dim = 0);

/// Every backend this binary knows, compiled or not (device query included).
std::vector<BackendDescription> describe_backends();

/// Device-to-device copy bandwidth of the CUDA device in GB/s (bytes read + written per second,
/// best of `reps` copies of `bytes`), the yardstick of the memory-bound device kernels; 0 when
/// CUDA is not compiled or no device is present.
double device_copy_bandwidth_gbs(size_t bytes, int reps);

}  // namespace kvwb::codec
