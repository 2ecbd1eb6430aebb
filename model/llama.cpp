#include "model/llama.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>

#include "base/errors.h"
#include "io/limits.h"

namespace kvwb::model {

namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMap = Eigen::Map<const RowMat>;

ConstMap as_map(const Matrix& m) { return ConstMap(m.data.data(), m.rows, m.cols); }

void check_matrix(const Matrix& m, int rows, int cols, const std::string& what, const std::string& source) {
  if (m.rows != rows || m.cols != cols || m.data.size() != static_cast<size_t>(rows) * static_cast<size_t>(cols))
    throw FormatError(source + ": tensor " + what + " has shape [" + std::to_string(m.rows) + ", " +
                      std::to_string(m.cols) + "], expected [" + std::to_string(rows) + ", " + std::to_string(cols) +
                      "]");
}

void check_vector(const std::vector<float>& v, int n, const std::string& what, const std::string& source) {
  if (v.size() != static_cast<size_t>(n))
    throw FormatError(source + ": tensor " + what + " has " + std::to_string(v.size()) + " values, expected " +
                      std::to_string(n));
}

/// RMSNorm of each row of x [n, d] in place: x·w / sqrt(mean(x²) + eps), sum of squares in f64.
void rms_norm_rows(float* x, size_t n, size_t d, const float* w, double eps) {
  for (size_t i = 0; i < n; ++i) {
    float* r = x + i * d;
    double ss = 0;
    for (size_t j = 0; j < d; ++j) ss += static_cast<double>(r[j]) * r[j];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(d) + eps));
    for (size_t j = 0; j < d; ++j) r[j] = (r[j] * inv) * w[j];
  }
}

}  // namespace

void LlamaConfig::validate(const std::string& source) const {
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) throw InvalidArgument(source + ": model configuration: " + what);
  };
  // Sane limits (io/limits.h) before anything is sized by them.
  need(hidden_size > 0 && hidden_size <= kMaxHiddenSize, "hidden_size must be in 1.." + std::to_string(kMaxHiddenSize));
  need(num_layers > 0 && num_layers <= io::kMaxLayers, "num_layers must be in 1.." + std::to_string(io::kMaxLayers));
  need(num_heads > 0 && num_kv_heads > 0 && num_heads <= io::kMaxHeads && num_kv_heads <= io::kMaxHeads,
       "num_heads and num_kv_heads must be in 1.." + std::to_string(io::kMaxHeads));
  need(head_dim <= io::kMaxHeadDim, "head_dim must be <= " + std::to_string(io::kMaxHeadDim));
  need(intermediate_size <= kMaxIntermediateSize,
       "intermediate_size must be <= " + std::to_string(kMaxIntermediateSize));
  need(vocab_size <= kMaxVocabSize, "vocab_size must be <= " + std::to_string(kMaxVocabSize));
  need(max_position >= 0, "max_position must be >= 0 (0 = unknown)");
  need(bos_id >= 0 && bos_id < vocab_size, "bos_token_id must be a token of the vocabulary");
  need(num_heads % num_kv_heads == 0, "num_heads (" + std::to_string(num_heads) +
                                          ") must be a multiple of num_kv_heads (" + std::to_string(num_kv_heads) + ")");
  need(head_dim > 0, "head_dim must be > 0");
  need(intermediate_size > 0, "intermediate_size must be > 0");
  need(vocab_size > 0, "vocab_size must be > 0");
  need(rms_norm_eps > 0 && std::isfinite(rms_norm_eps), "rms_norm_eps must be a positive number");
  if (rope_style != codec::RopeStyle::kNone) {
    need(rope_theta > 0 && std::isfinite(rope_theta), "rope_theta must be a positive number");
    const int r = rotary_dim == 0 ? head_dim : rotary_dim;
    need(r >= 2 && r <= head_dim && r % 2 == 0,
         "rotary_dim (" + std::to_string(r) + ") must be even and in 2..head_dim (" + std::to_string(head_dim) + ")");
  }
}

codec::RopeParams LlamaConfig::rope() const noexcept {
  codec::RopeParams p;
  p.style = rope_style;
  p.theta = rope_theta;
  p.rotary_dim = static_cast<uint32_t>(rotary_dim == 0 ? head_dim : rotary_dim);
  p.head_dim = static_cast<uint32_t>(head_dim);
  return p;
}

LlamaModel::LlamaModel(LlamaConfig config, LlamaWeights weights, const std::string& source)
    : cfg_(std::move(config)), w_(std::move(weights)) {
  cfg_.validate(source);
  const int h = cfg_.hidden_size, d = cfg_.head_dim, qd = cfg_.num_heads * d, kd = cfg_.num_kv_heads * d;
  const int inter = cfg_.intermediate_size, voc = cfg_.vocab_size;
  check_matrix(w_.embed, voc, h, "embed_tokens", source);
  if (cfg_.tie_embeddings) {
    if (!w_.lm_head.data.empty()) check_matrix(w_.lm_head, voc, h, "lm_head", source);
  } else {
    check_matrix(w_.lm_head, voc, h, "lm_head", source);
  }
  check_vector(w_.final_norm, h, "norm", source);
  if (w_.layers.size() != static_cast<size_t>(cfg_.num_layers))
    throw FormatError(source + ": " + std::to_string(w_.layers.size()) + " layers of weights, configuration says " +
                      std::to_string(cfg_.num_layers));
  for (int l = 0; l < cfg_.num_layers; ++l) {
    const auto& L = w_.layers[static_cast<size_t>(l)];
    const std::string p = "layers." + std::to_string(l) + ".";
    check_matrix(L.wq, qd, h, p + "q_proj", source);
    check_matrix(L.wk, kd, h, p + "k_proj", source);
    check_matrix(L.wv, kd, h, p + "v_proj", source);
    check_matrix(L.wo, h, qd, p + "o_proj", source);
    check_matrix(L.w_gate, inter, h, p + "gate_proj", source);
    check_matrix(L.w_up, inter, h, p + "up_proj", source);
    check_matrix(L.w_down, h, inter, p + "down_proj", source);
    check_vector(L.attn_norm, h, p + "input_layernorm", source);
    check_vector(L.ffn_norm, h, p + "post_attention_layernorm", source);
    if (cfg_.attention_bias) {
      check_vector(L.bq, qd, p + "q_proj.bias", source);
      check_vector(L.bk, kd, p + "k_proj.bias", source);
      check_vector(L.bv, kd, p + "v_proj.bias", source);
    }
    if (cfg_.qk_norm) {
      check_vector(L.q_norm, d, p + "q_norm", source);
      check_vector(L.k_norm, d, p + "k_norm", source);
    }
  }
}

KvCache LlamaModel::new_cache() const {
  KvCache c;
  c.k.assign(static_cast<size_t>(cfg_.num_layers), std::vector<std::vector<float>>(static_cast<size_t>(cfg_.num_kv_heads)));
  c.v = c.k;
  return c;
}

std::vector<float> LlamaModel::forward(std::span<const int32_t> tokens, KvCache& cache, bool logits,
                                       ForwardTaps* taps) const {
  const size_t n = tokens.size();
  const size_t H = static_cast<size_t>(cfg_.hidden_size), D = static_cast<size_t>(cfg_.head_dim);
  const size_t Hq = static_cast<size_t>(cfg_.num_heads), Hkv = static_cast<size_t>(cfg_.num_kv_heads);
  const size_t g = Hq / Hkv, V = static_cast<size_t>(cfg_.vocab_size);
  if (cache.k.size() != static_cast<size_t>(cfg_.num_layers)) cache = new_cache();
  if (n == 0) return {};
  const size_t p0 = cache.length;
  const size_t L = p0 + n;  // keys visible to the last query
  const codec::RopeParams rope = cfg_.rope();
  std::vector<int32_t> pos(n);
  for (size_t i = 0; i < n; ++i) pos[i] = static_cast<int32_t>(p0 + i);

  RowMat x(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(H));
  const ConstMap emb = as_map(w_.embed);
  for (size_t i = 0; i < n; ++i) {
    const int32_t t = tokens[i];
    if (t < 0 || static_cast<size_t>(t) >= V)
      throw InvalidArgument("token id " + std::to_string(t) + " at index " + std::to_string(i) +
                            " is outside the vocabulary of " + std::to_string(V));
    x.row(static_cast<Eigen::Index>(i)) = emb.row(t);
  }
  if (taps) {
    taps->q_pre.assign(static_cast<size_t>(cfg_.num_layers), {});
    taps->k_pre.assign(static_cast<size_t>(cfg_.num_layers), {});
    taps->v.assign(static_cast<size_t>(cfg_.num_layers), {});
  }
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(D)));
  RowMat xn, q, k, v, attn(static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(Hq * D));
  std::vector<float> rows;
  for (int l = 0; l < cfg_.num_layers; ++l) {
    const LayerWeights& W = w_.layers[static_cast<size_t>(l)];
    xn = x;
    rms_norm_rows(xn.data(), n, H, W.attn_norm.data(), cfg_.rms_norm_eps);
    q = xn * as_map(W.wq).transpose();
    k = xn * as_map(W.wk).transpose();
    v = xn * as_map(W.wv).transpose();
    if (cfg_.attention_bias) {
      q.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(W.bq.data(), static_cast<Eigen::Index>(W.bq.size()));
      k.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(W.bk.data(), static_cast<Eigen::Index>(W.bk.size()));
      v.rowwise() += Eigen::Map<const Eigen::RowVectorXf>(W.bv.data(), static_cast<Eigen::Index>(W.bv.size()));
    }
    if (cfg_.qk_norm) {
      rms_norm_rows(q.data(), n * Hq, D, W.q_norm.data(), cfg_.rms_norm_eps);
      rms_norm_rows(k.data(), n * Hkv, D, W.k_norm.data(), cfg_.rms_norm_eps);
    }
    // Head-major copies [H, n, D]: taps before RoPE, then RoPE per head.
    auto head_major = [&](const RowMat& m, size_t heads) {
      std::vector<float> out(heads * n * D);
      for (size_t h = 0; h < heads; ++h)
        for (size_t i = 0; i < n; ++i)
          std::copy_n(m.data() + i * heads * D + h * D, D, out.data() + (h * n + i) * D);
      return out;
    };
    std::vector<float> qh = head_major(q, Hq), kh = head_major(k, Hkv), vh = head_major(v, Hkv);
    if (taps) {
      taps->q_pre[static_cast<size_t>(l)] = qh;
      taps->k_pre[static_cast<size_t>(l)] = kh;
      taps->v[static_cast<size_t>(l)] = vh;
    }
    if (rope.style != codec::RopeStyle::kNone) {
      for (size_t h = 0; h < Hq; ++h) codec::apply_rope(qh.data() + h * n * D, n, pos.data(), rope, false);
      for (size_t h = 0; h < Hkv; ++h) codec::apply_rope(kh.data() + h * n * D, n, pos.data(), rope, false);
    }
    auto& ck = cache.k[static_cast<size_t>(l)];
    auto& cv = cache.v[static_cast<size_t>(l)];
    for (size_t h = 0; h < Hkv; ++h) {
      if (ck[h].size() != p0 * D || cv[h].size() != p0 * D)
        throw InvalidArgument("KV cache layer " + std::to_string(l) + " head " + std::to_string(h) + " holds " +
                              std::to_string(ck[h].size() / D) + " rows, expected " + std::to_string(p0));
      ck[h].insert(ck[h].end(), kh.begin() + static_cast<std::ptrdiff_t>(h * n * D),
                   kh.begin() + static_cast<std::ptrdiff_t>((h + 1) * n * D));
      cv[h].insert(cv[h].end(), vh.begin() + static_cast<std::ptrdiff_t>(h * n * D),
                   vh.begin() + static_cast<std::ptrdiff_t>((h + 1) * n * D));
    }
    // Causal attention: query i (position p0+i) sees keys 0 … p0+i.
    for (size_t hq = 0; hq < Hq; ++hq) {
      const size_t h = hq / g;
      Eigen::Map<const RowMat> Q(qh.data() + hq * n * D, static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(D));
      Eigen::Map<const RowMat> K(ck[h].data(), static_cast<Eigen::Index>(L), static_cast<Eigen::Index>(D));
      Eigen::Map<const RowMat> Vm(cv[h].data(), static_cast<Eigen::Index>(L), static_cast<Eigen::Index>(D));
      RowMat s = (Q * K.transpose()) * scale;
      for (size_t i = 0; i < n; ++i) {
        const Eigen::Index vis = static_cast<Eigen::Index>(p0 + i + 1);
        auto r = s.row(static_cast<Eigen::Index>(i));
        const float mx = r.head(vis).maxCoeff();
        double sum = 0;
        for (Eigen::Index t = 0; t < vis; ++t) {
          const float e = std::exp(r(t) - mx);
          r(t) = e;
          sum += e;
        }
        const float inv = static_cast<float>(1.0 / sum);
        r.head(vis) *= inv;
        if (vis < static_cast<Eigen::Index>(L)) r.tail(static_cast<Eigen::Index>(L) - vis).setZero();
      }
      attn.block(0, static_cast<Eigen::Index>(hq * D), static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(D)) =
          s * Vm;
    }
    x += attn * as_map(W.wo).transpose();
    xn = x;
    rms_norm_rows(xn.data(), n, H, W.ffn_norm.data(), cfg_.rms_norm_eps);
    RowMat gate = xn * as_map(W.w_gate).transpose();
    const RowMat up = xn * as_map(W.w_up).transpose();
    gate = gate.unaryExpr([](float a) { return a / (1.0f + std::exp(-a)); }).cwiseProduct(up);
    x += gate * as_map(W.w_down).transpose();
  }
  cache.length = L;
  if (!logits) return {};
  rms_norm_rows(x.data(), n, H, w_.final_norm.data(), cfg_.rms_norm_eps);
  const Matrix& head = w_.lm_head.data.empty() ? w_.embed : w_.lm_head;
  std::vector<float> out(n * V);
  Eigen::Map<RowMat>(out.data(), static_cast<Eigen::Index>(n), static_cast<Eigen::Index>(V)) =
      x * as_map(head).transpose();
  return out;
}

std::vector<double> token_nll(std::span<const float> logits, std::span<const int32_t> targets, int vocab) {
  const size_t V = static_cast<size_t>(vocab);
  if (logits.size() != targets.size() * V)
    throw InvalidArgument("token_nll: " + std::to_string(logits.size()) + " logits for " +
                          std::to_string(targets.size()) + " targets of vocabulary " + std::to_string(vocab));
  std::vector<double> out(targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    const float* r = logits.data() + i * V;
    if (targets[i] < 0 || static_cast<size_t>(targets[i]) >= V)
      throw InvalidArgument("token_nll: target " + std::to_string(targets[i]) + " outside the vocabulary");
    double mx = r[0];
    for (size_t j = 1; j < V; ++j) mx = std::max(mx, static_cast<double>(r[j]));
    double s = 0;
    for (size_t j = 0; j < V; ++j) s += std::exp(static_cast<double>(r[j]) - mx);
    out[i] = -(static_cast<double>(r[targets[i]]) - mx - std::log(s));
  }
  return out;
}

}  // namespace kvwb::model
