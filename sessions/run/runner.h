#pragma once
// The runner: evaluates one RunConfig on one capture, layer by layer (one layer in memory at a
// time), every (sequence, layer, kv head | pooled, stream) unit on a thread pool, encoding to the
// real container bytes and decoding from them. Numbers and bytes do not depend on the thread
// count. CLI and GUI call this same function (metrics live in the core, never in a front end).
#include <atomic>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/job.h"
#include "codec/executor.h"
#include "codec/format/tensor.h"
#include "codec/math/calibration.h"
#include "codec/math/metrics.h"
#include "io/capture.h"
#include "sessions/config/layer_plan.h"
#include "sessions/config/run_config.h"
#include "sessions/run/result_cache.h"
#include "sessions/run/whitening.h"

namespace kvwb::sessions {

struct StreamResult {
  std::string codec;         // codec actually used ("bf16" for boundary layers)
  std::optional<codec::KDomain> k_domain;  // K: the domain it was coded in; none for V
  bool failed = false;
  std::string error_code;    // e.g. FP16_RANGE when failed
  std::string error_message;
  uint64_t bytes = 0;            // container bytes (K§9.8 / peers' native) incl. hot tail + per-layer consts
  uint64_t reference_bytes = 0;  // reference accounting (K§10.1) incl. tail
  uint64_t tail_bytes = 0;       // hot tail / KIVI fp16 window bytes inside `bytes`
  uint64_t bf16_bytes = 0;       // 2 bytes per value of the stream
  uint64_t values = 0;
  codec::ErrorSums err;                 // pooled over sequences and heads, cache rows
  std::vector<codec::ErrorSums> heads;  // per kv head
  codec::AttentionSums attn;            // attention metrics with only this stream compressed
  bool has_attn = false;
  double max_abs_whitened = 0;          // K: max |K·L| before encoding (reported, never saturated)
  std::vector<uint16_t> d_eff;          // Kakeya: per block, all units
  uint64_t outliers = 0, clipped = 0, coded_values = 0;
  std::vector<float> scaled_residuals;  // Kakeya: when RunOptions::collect_residuals
};

struct LayerResult {
  int layer = 0;
  bool boundary = false;
  bool whitened = false;       // Q-preconditioning applied to K in this layer
  bool q_skip = false;         // Σ_q skip rule (auto or user) excluded it
  bool has_q = false;
  StreamResult k, v;
  codec::AttentionSums attn;   // both streams compressed
  std::vector<codec::AttentionSums> attn_heads;  // per kv head, both compressed
  bool has_attn = false;
};

struct RunResult {
  nlohmann::json config;  // canonical configuration
  std::string config_hash;
  std::string capture_file;
  std::string capture_sha256;
  Backend backend = Backend::kCpu;  // the backend that ran (cpu or cuda)
  bool failed = false;    // some layer-stream failed (its metrics are absent)
  std::vector<LayerResult> layers;
  uint64_t total_bytes = 0, bf16_bytes = 0, tail_bytes = 0, reference_bytes = 0;
  double seconds = 0;
  std::vector<std::string> warnings;
  std::map<int, double> skip_m;  // Σ_q skip rule: layer -> m_l
  double skip_median = 0;
  /// Work accounting (not part of the result JSON): layers whose results all came from the
  /// result cache, and (layer, stream) units that went through the executor.
  size_t layers_from_cache = 0;
  size_t executor_streams = 0;

  double ratio_vs_bf16() const;
};

struct RunOptions {
  std::string dump_decoded;       // write a capture with the reconstructed tensors ("" = off)
  bool collect_residuals = false; // keep Kakeya scaled residuals (distribution view, outlier rates)
  bool compute_sha256 = true;
  /// Per-(layer, stream) results are reused from and stored into this cache (result_cache.h);
  /// null = every layer is computed. Ignored with dump_decoded (reconstructions are not cached).
  ResultCache* cache = nullptr;
  /// Without a cache: the folder whose capture-sha256/ memo (io::sha256_file_memo) gives or
  /// remembers the capture's digest; "" = the whole file is hashed. A digest is not a result, so
  /// `--no-cache` still uses it (docs/decisions-made.md). With a cache, its folder is used.
  std::string digest_memo_dir;
  /// Runs the codecs on this executor instead of make_executor(cfg.backend) (tests count calls).
  const codec::Executor* executor = nullptr;
};

/// The default configuration on a capture of `tokens` tokens per sequence, the one of the GUI
/// and of `kvwb run` / `export-bundle` without a chosen block size: RunConfig{} fitted by
/// fit_block_size. On tiny1m (T = 256) it equals `kvwb run --block-size 256`.
RunConfig workbench_default_config(int tokens);

/// Fits a block size nobody chose to the capture (issue 13 item 8): when a stream of some layer
/// uses a block codec and cfg.block_size > tokens (every row would stay in the bf16 hot tail,
/// ratio 1.0), lowers it to the largest power of two <= tokens (at least 8). Returns the sentence
/// that says so ("block_size lowered from 512 to 256: ..."), or "" when nothing changed.
std::string fit_block_size(RunConfig& cfg, const io::CaptureInfo& info);

/// Round-trips the K and V of one layer held in memory exactly as run_config does for a capture
/// layer: `plan` (plan_layer of `cfg`: boundary, per-stream codecs, turbo policy, overrides),
/// Q-preconditioning with `wh`, hot tail. k_pre, v: [S, H_kv, T, D]; positions [S*T] for RoPE when
/// the K codec works post-RoPE. Returns pre-RoPE reconstructed keys and values. Codec failures
/// throw (Fp16Range...). The codecs run on `executor`, or on make_executor(cfg.backend) when it is
/// null.
struct LayerRoundTrip {
  codec::Tensor4 k_pre_hat, v_hat;
  StreamResult k, v;
};
LayerRoundTrip roundtrip_layer(const io::CaptureInfo& info, const RunConfig& cfg,
                               const Whitening& wh, const LayerPlan& plan,
                               const codec::Tensor4& k_pre, const codec::Tensor4& v,
                               const std::vector<int32_t>& positions, const codec::Executor* executor = nullptr);

/// Runs a configuration. Throws InvalidArgument/Unsupported for bad configurations (before any
/// encoding), IoError/FormatError for bad input, Cancelled when `job.cancel` is set (finished
/// layers are kept in `partial` when given). Per-(layer, stream) codec failures such as
/// FP16_RANGE do not throw: they mark that stream failed.
RunResult run_config(const std::string& capture_path, const RunConfig& cfg, const RunOptions& opt,
                     JobControl* job = nullptr, RunResult* partial = nullptr);

/// The result JSON of decisions.md #8.
nlohmann::json run_result_to_json(const RunResult& r);
/// One CSV row per (layer, stream) with every metric.
std::string run_result_to_csv(const RunResult& r);

}  // namespace kvwb::sessions
