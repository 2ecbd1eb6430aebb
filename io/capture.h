#pragma once
// Capture files (`.kvc.h5`, capture-format.md version 1): validated reader with lazy per-layer and
// per-(layer, head) reads, and an atomic writer (chunked [1,1,T',D], optional gzip + shuffle).
// Every validation failure throws kvwb::FormatError (or IoError for file-system problems) whose
// message names the file, the path inside it and what was expected.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "codec/math/rope.h"
#include "codec/format/tensor.h"

namespace kvwb::io {

enum class TensorKind { kKPre, kK, kV, kQPre };
/// Dataset name inside a layer group: "k_pre", "k", "v", "q_pre".
const char* tensor_kind_name(TensorKind k) noexcept;

struct LayerInfo {
  int layer = 0;
  bool has_k_pre = false, has_k = false, has_v = false, has_q_pre = false;
  std::string attention = "full";  // "full" or "sliding"
  int sliding_window = 0;          // tokens, when sliding
  std::string dtype_k_pre, dtype_k, dtype_v, dtype_q_pre;  // "float16" / "float32" / "" if absent
};

struct CaptureInfo {
  std::string path;
  int version = 1;
  std::string model_name;
  int num_layers = 0;
  int num_query_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  codec::RopeStyle rope_style = codec::RopeStyle::kHalfSplit;
  double rope_theta = 10000.0;
  int rotary_dim = 0;  // R (defaults to head_dim when the attribute is absent)
  bool qk_norm = false;
  std::string source_dtype;  // optional attribute ("" when absent)
  std::string text_source;   // optional attribute
  int sequences = 0;         // S
  int tokens = 0;            // T
  bool has_tokens = false;
  bool has_positions = false;
  std::vector<LayerInfo> layers;  // present layers, ascending by index

  const LayerInfo* layer(int l) const noexcept;
  codec::RopeParams rope() const noexcept;
};

struct ReadOptions {
  bool check_finite = true;  // a NaN/Inf in the loaded slice throws FormatError naming file/path/index
};

class CaptureReader {
 public:
  /// Opens and validates the root attributes and every layer's dataset shapes/dtypes
  /// (metadata only; no tensor data is read).
  explicit CaptureReader(const std::string& path);
  ~CaptureReader();
  CaptureReader(const CaptureReader&) = delete;
  CaptureReader& operator=(const CaptureReader&) = delete;

  const CaptureInfo& info() const noexcept;
  /// Whether the layer stores that dataset (as stored, no derivation).
  bool has(int layer, TensorKind kind) const noexcept;
  /// One stored dataset of a layer as f32 [S, H, T, D]; H is H_q for q_pre, H_kv otherwise.
  codec::Tensor4 read(int layer, TensorKind kind, const ReadOptions& opt = {}) const;
  /// One head of a stored dataset as f32 [S, 1, T, D], reading only that hyperslab.
  codec::Tensor4 read_head(int layer, TensorKind kind, int head, const ReadOptions& opt = {}) const;
  /// Pre-RoPE keys: stored k_pre, or inverse RoPE of stored k (then *derived = true).
  codec::Tensor4 k_pre(int layer, bool* derived = nullptr) const;
  /// Post-RoPE keys: stored k, or forward RoPE of stored k_pre (then *derived = true).
  codec::Tensor4 k_post(int layer, bool* derived = nullptr) const;
  /// RoPE positions [S*T] (row-major [S, T]); 0..T-1 per sequence when /positions is absent.
  const std::vector<int32_t>& positions() const noexcept;
  /// Token ids [S*T], empty when /tokens is absent.
  std::vector<int32_t> tokens() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct CaptureWriteOptions {
  bool float16 = true;  // store tensors as float16 (values beyond ±65504 are an Fp16Range error)
  int gzip_level = 4;   // 0 = no compression; 1..9 gzip with shuffle
};

/// Writes a capture to `path` atomically: everything goes to a temporary file in the same folder,
/// renamed over `path` by commit(). Destroying an uncommitted writer removes the temporary file.
class CaptureWriter {
 public:
  /// Root attributes come from `info` (model_name, num_layers, heads, head_dim, rope_*, qk_norm,
  /// source_dtype, text_source, sequences, tokens); info.layers is ignored.
  CaptureWriter(const std::string& path, const CaptureInfo& info, const CaptureWriteOptions& opt = {});
  ~CaptureWriter();
  CaptureWriter(const CaptureWriter&) = delete;
  CaptureWriter& operator=(const CaptureWriter&) = delete;
  void write_tokens(const std::vector<int32_t>& tokens);        // [S*T]
  void write_positions(const std::vector<int32_t>& positions);  // [S*T]
  /// Writes /layers/<l>/<kind>; t must be [S, H, T, D] with H matching the kind.
  void write_layer(int layer, TensorKind kind, const codec::Tensor4& t);
  /// Sets the layer group's attention attributes (default full).
  void set_layer_attention(int layer, const std::string& attention, int sliding_window = 0);
  /// Closes the file and renames it into place.
  void commit();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvwb::io
