#pragma once
// A small, exact Llama-family decoder forward pass on the CPU (f32, Eigen inside the .cpp only):
// RMSNorm, RoPE (half_split or interleaved, partial rotary, θ) exactly as capture-format.md,
// grouped-query attention over a KV cache, SwiGLU MLP, tied or untied output head, optional
// q/k bias (Qwen2) and per-head q/k RMSNorm (Qwen3). Docs: docs/model-in-the-loop.md.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "codec/math/rope.h"

namespace kvwb::model {

/// Architecture settings. Sizes are counts; head_dim D; rotary_dim R (0 = D).
/// Limits of a model configuration beyond those of io/limits.h (layers, heads, head_dim).
inline constexpr int kMaxHiddenSize = 65536;
inline constexpr int kMaxIntermediateSize = 1 << 20;
inline constexpr int kMaxVocabSize = 1 << 24;

struct LlamaConfig {
  std::string name;          // model name written into captures (e.g. "shibatch/tiny1m")
  std::string architecture;  // free text: "llama", "qwen2", "qwen3", "llama2.c", ...
  int hidden_size = 0;
  int num_layers = 0;
  int num_heads = 0;     // H_q
  int num_kv_heads = 0;  // H_kv (H_q % H_kv == 0)
  int head_dim = 0;
  int intermediate_size = 0;
  int vocab_size = 0;
  int max_position = 0;  // trained context in tokens (0 = unknown)
  double rms_norm_eps = 1e-6;
  codec::RopeStyle rope_style = codec::RopeStyle::kHalfSplit;
  double rope_theta = 10000.0;
  int rotary_dim = 0;
  bool tie_embeddings = false;
  bool attention_bias = false;  // q/k/v projections carry a bias
  bool qk_norm = false;         // per-head RMSNorm of q and k before RoPE
  int bos_id = 1;
  int eos_id = 2;
  std::string source_dtype = "float32";  // dtype of the stored weights

  /// Throws InvalidArgument naming `source` and the field for a value out of range (the limits
  /// above and io/limits.h included); the loaders report it as FormatError of the file.
  void validate(const std::string& source) const;
  /// RoPE parameters of the attention heads.
  codec::RopeParams rope() const noexcept;
};

/// A row-major f32 matrix [rows, cols] (a Linear weight is [out, in], as in PyTorch).
struct Matrix {
  int rows = 0, cols = 0;
  std::vector<float> data;
};

struct LayerWeights {
  Matrix wq, wk, wv, wo;            // [H_q·D, hidden], [H_kv·D, hidden] ×2, [hidden, H_q·D]
  std::vector<float> bq, bk, bv;    // biases [H_q·D], [H_kv·D], [H_kv·D] (empty without bias)
  Matrix w_gate, w_up, w_down;      // [I, hidden], [I, hidden], [hidden, I]
  std::vector<float> attn_norm;     // [hidden]
  std::vector<float> ffn_norm;      // [hidden]
  std::vector<float> q_norm, k_norm;  // [D] each when qk_norm
};

struct LlamaWeights {
  Matrix embed;                    // [vocab, hidden]
  std::vector<LayerWeights> layers;
  std::vector<float> final_norm;   // [hidden]
  Matrix lm_head;                  // [vocab, hidden]; empty when tied to `embed`
};

/// The KV cache as an inference engine holds it: per layer and kv head, `length` rows of D floats
/// (keys post-RoPE), row i at position i.
struct KvCache {
  size_t length = 0;
  std::vector<std::vector<std::vector<float>>> k, v;  // [layer][kv head] -> [length, D]
};

/// Per-layer tensors of the tokens of one forward call, head-major [H, n, D] per layer.
struct ForwardTaps {
  std::vector<std::vector<float>> q_pre;  // [layer] -> [H_q, n, D], after q_norm, before RoPE
  std::vector<std::vector<float>> k_pre;  // [layer] -> [H_kv, n, D], after k_norm, before RoPE
  std::vector<std::vector<float>> v;      // [layer] -> [H_kv, n, D]
};

class LlamaModel {
 public:
  /// Validates every weight shape against the configuration (FormatError naming the tensor).
  LlamaModel(LlamaConfig config, LlamaWeights weights, const std::string& source);

  const LlamaConfig& config() const noexcept { return cfg_; }
  /// An empty cache with the model's layer and head layout.
  KvCache new_cache() const;

  /// Runs `tokens` at positions cache.length … cache.length+n−1, appending their keys and values
  /// to `cache`. Returns the logits [n, vocab] row-major when `logits` is true (else empty).
  /// Fills `taps` when given. Throws InvalidArgument for a token id outside the vocabulary.
  std::vector<float> forward(std::span<const int32_t> tokens, KvCache& cache, bool logits = true,
                             ForwardTaps* taps = nullptr) const;

 private:
  LlamaConfig cfg_;
  LlamaWeights w_;
};

/// Mean negative log-likelihood pieces of next-token prediction: for logits [n, vocab] and
/// targets [n], the f64 log-softmax NLL of each row (natural log).
std::vector<double> token_nll(std::span<const float> logits, std::span<const int32_t> targets, int vocab);

}  // namespace kvwb::model
