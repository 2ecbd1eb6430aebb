#include "tests/golden/golden_cases.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "base/errors.h"
#include "codec/math/metrics.h"
#include "codec/math/rng.h"

namespace kvwb::golden {

using codec::BlockRows;
using codec::ParamMap;
using codec::Stream;
using codec::Tensor4;

namespace {

constexpr size_t kS = 2, kH = 2, kT = 300;

/// Rows of one stream: per (s, h) the §13.6 generator (rank-24 structure plus noise), times `gain`.
Tensor4 synthetic_rows(size_t d, Stream stream, float gain) {
  Tensor4 x(kS, kH, kT, d);
  const uint64_t base = (stream == Stream::kK ? 1000 : 2000) + d;
  for (size_t s = 0; s < kS; ++s)
    for (size_t h = 0; h < kH; ++h) {
      codec::rng::synthetic(x.row(s, h, 0), kT, d, std::min<size_t>(24, d), 0.05,
                            base + 10 * s + h);
      if (gain != 1.0f)
        for (size_t i = 0; i < kT * d; ++i) x.row(s, h, 0)[i] *= gain;
    }
  return x;
}

/// Positive row weights [S, H, T] in [0.05, 2.05) from the project RNG.
std::vector<float> synthetic_weights(uint64_t seed) {
  std::vector<float> w(kS * kH * kT);
  const uint64_t key = seed ^ codec::rng::kTagTest;
  for (size_t i = 0; i < w.size(); ++i)
    w[i] = static_cast<float>(0.05 + 2.0 * codec::rng::u01c(codec::rng::splitmix(key, i)));
  return w;
}

/// Batch options beyond codec, parameters, D and stream; chainable: Opt().bs(64).pool().
struct Opt {
  uint32_t block_size = 128;
  bool pooled = false;
  bool weights = false;
  bool whiten = false;
  float gain = 1.0f;
  codec::CodecResources resources;
  Opt& bs(uint32_t v) {
    block_size = v;
    return *this;
  }
  Opt& pool() {
    pooled = true;
    return *this;
  }
  Opt& weigh() {
    weights = true;
    return *this;
  }
  Opt& whitened() {
    whiten = true;
    return *this;
  }
  Opt& amplify(float g) {
    gain = g;
    return *this;
  }
};

std::string case_name(const std::string& codec, const ParamMap& p, size_t d, Stream st,
                      const Opt& o, bool block_codec) {
  std::string n = codec;
  if (!p.empty()) {
    n += "[";
    bool first = true;
    for (const auto& [k, v] : p) {
      n += (first ? "" : ",") + k + "=" + v;
      first = false;
    }
    n += "]";
  }
  n += ".D" + std::to_string(d) + (st == Stream::kK ? ".K" : ".V");
  if (o.pooled) n += ".pooled";
  if (block_codec) n += ".bs" + std::to_string(o.block_size);
  if (o.weights) n += ".weights";
  if (o.whiten) n += ".whiten";
  if (!o.resources.centroid_table.empty()) n += ".calibrated";
  if (o.gain != 1.0f) n += ".x" + std::to_string(static_cast<int>(o.gain));
  return n;
}

}  // namespace

void synthetic_whitening(size_t heads, size_t d, uint64_t seed, std::vector<float>& L,
                         std::vector<float>& L_inv) {
  L.assign(heads * d * d, 0.0f);
  L_inv.assign(heads * d * d, 0.0f);
  const uint64_t key = seed ^ codec::rng::kTagTest;
  const double off = 0.5 / std::sqrt(static_cast<double>(d));
  for (size_t h = 0; h < heads; ++h) {
    float* l = L.data() + h * d * d;
    float* li = L_inv.data() + h * d * d;
    for (size_t i = 0; i < d; ++i)
      for (size_t j = 0; j <= i; ++j) {
        const double u = codec::rng::u01c(codec::rng::splitmix(key, (h * d + i) * d + j));
        l[i * d + j] = static_cast<float>(i == j ? 0.75 + 0.5 * u : off * (2.0 * u - 1.0));
      }
    // Columns of L⁻¹ by forward substitution in f64: L · x = e_c.
    std::vector<double> x(d);
    for (size_t c = 0; c < d; ++c) {
      for (size_t i = 0; i < d; ++i) {
        double acc = i == c ? 1.0 : 0.0;
        for (size_t j = 0; j < i; ++j) acc -= static_cast<double>(l[i * d + j]) * x[j];
        x[i] = acc / static_cast<double>(l[i * d + i]);
      }
      for (size_t i = 0; i < d; ++i) li[i * d + c] = static_cast<float>(x[i]);
    }
  }
}

std::vector<Case> synthetic_cases() {
  std::vector<Case> out;
  auto add = [&](const std::string& codec, ParamMap p, size_t d, Stream st, Opt o = {}) {
    const bool block_codec = codec == "kakeya_pca" || codec == "besicovitch";
    const std::string name = case_name(codec, p, d, st, o, block_codec);
    out.push_back({name, [=] {
                     Batch b;
                     b.name = name;
                     b.codec = codec;
                     b.params = p;
                     b.resources = o.resources;
                     b.stream = st;
                     b.block_rows = o.pooled ? BlockRows::kPooledHeads : BlockRows::kPerHead;
                     b.block_size = o.block_size;
                     b.layer = 3;
                     // K of the block codecs is coded pre-RoPE by default (decisions.md #2), and
                     // Q-preconditioning needs pre-RoPE K whatever the codec.
                     if (st == Stream::kK && (block_codec || o.whiten))
                       b.domain_flags = codec::kDomainPreRope;
                     b.rows = synthetic_rows(d, st, o.gain);
                     if (o.weights) b.weights = synthetic_weights(77 + d);
                     if (o.whiten) synthetic_whitening(kH, d, 99 + d, b.L, b.L_inv);
                     return b;
                   }});
  };
  const Stream K = Stream::kK, V = Stream::kV;

  // ---- Kakeya-PCA (codec-kakeya.md) ----
  const std::string kp = "kakeya_pca";
  for (int bw = 1; bw <= 4; ++bw) add(kp, {{"bit_width", std::to_string(bw)}}, 128, K);
  add(kp, {{"bit_width", "2"}}, 64, V);
  add(kp, {{"bit_width", "3"}}, 64, V);
  add(kp, {{"variance_ratio", "0.9"}}, 64, K);
  add(kp, {{"variance_ratio", "1.0"}}, 128, V);
  add(kp, {{"variance_ratio", "1.0"}}, 64, K);
  add(kp, {{"pca_method", "randomized"}}, 128, K);
  add(kp, {{"pca_method", "randomized"}, {"bit_width", "2"}}, 64, V);
  add(kp,
      {{"pca_method", "randomized"},
       {"rsvd_target_rank", "16"},
       {"rsvd_oversample", "4"},
       {"rsvd_power_iters", "1"}},
      128, V);
  add(kp, {{"pca_method", "randomized"}, {"variance_ratio", "1.0"}}, 64, K);
  add(kp, {{"exact_rank_cap", "8"}}, 128, K);
  add(kp, {{"outlier_threshold", "2.0"}}, 128, K);
  add(kp, {{"outlier_threshold", "1.5"}, {"bit_width", "2"}}, 64, V);
  add(kp, {{"share_basis", "true"}}, 128, V);
  add(kp, {{"share_basis", "true"}, {"pca_method", "randomized"}}, 64, V);
  add(kp, {{"skeleton_dtype", "bf16"}}, 128, K);
  add(kp, {{"skeleton_dtype", "fp32"}}, 128, K);
  add(kp, {{"skeleton_dtype", "bf16"}}, 64, V);
  add(kp, {{"k", "4"}}, 128, K);
  add(kp, {{"k", "1"}}, 64, V);
  add(kp, {{"k", "8"}, {"kmeans_max_iter", "3"}}, 64, K);
  add(kp, {{"seed", "12345"}}, 128, V);
  add(kp, {{"weights", "attention"}}, 128, K, Opt().weigh());
  add(kp, {{"weights", "attention"}, {"bit_width", "2"}}, 64, V, Opt().weigh());
  {
    Opt o;
    o.resources.centroid_table = {-1.9f, -1.2f, -0.7f, -0.2f, 0.25f, 0.7f, 1.25f, 2.0f};
    add(kp, {{"bit_width", "3"}}, 64, K, o);
  }
  add(kp, {}, 64, K, Opt().pool());
  add(kp, {{"share_basis", "true"}}, 64, V, Opt().pool());
  add(kp, {}, 128, V, Opt().bs(64));
  add(kp, {}, 64, K, Opt().bs(256));
  add(kp, {}, 64, K, Opt().bs(512));  // T < block_size: the whole unit is hot tail
  add(kp, {}, 128, K, Opt().whitened());
  add(kp, {{"bit_width", "2"}, {"outlier_threshold", "2.5"}}, 64, K, Opt().whitened());

  // ---- Besicovitch (codec-besicovitch.md) ----
  const std::string be = "besicovitch";
  add(be, {}, 64, K);
  add(be, {}, 128, V);
  const ParamMap preset = {{"group_size", "2"},
                           {"direction_bits", "3"},
                           {"magnitude_mode", "quantized"},
                           {"magnitude_bits", "4"},
                           {"subtract_mean", "true"}};
  add(be, preset, 128, K);
  add(be, preset, 64, V);
  add(be, {{"group_size", "3"}}, 96, K);
  add(be, {{"group_size", "3"}, {"magnitude_mode", "quantized"}, {"magnitude_bits", "2"}}, 96, V);
  add(be, {{"group_size", "4"}, {"direction_bits", "8"}}, 128, K);
  add(be, {{"group_size", "8"}, {"direction_bits", "10"}}, 64, V);
  add(be, {{"direction_bits", "1"}}, 64, K);
  for (int mb = 1; mb <= 3; ++mb)
    add(be, {{"magnitude_mode", "quantized"}, {"magnitude_bits", std::to_string(mb)}}, 128, V);
  add(be, {{"subtract_mean", "true"}}, 64, K, Opt().bs(64));
  add(be, preset, 64, K, Opt().bs(64).pool());
  add(be, {}, 128, K, Opt().whitened());

  // ---- TurboQuant (codec-peers.md §1) ----
  for (const char* t : {"turbo2", "turbo3", "turbo4"}) {
    add(t, {}, 128, K);
    add(t, {}, 64, V);
  }
  add("turbo3", {}, 64, K);
  add("turbo3", {}, 128, V);

  // ---- llama.cpp block quantisers (codec-peers.md §2), every Hadamard pre-rotation ----
  for (const char* g : {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"})
    for (const char* rot : {"none", "hadamard64", "hadamard_max"}) {
      add(g, {{"rotate", rot}}, 128, K);
      add(g, {{"rotate", rot}}, 64, V);
    }
  add("q8_0", {}, 64, K, Opt().whitened());

  // ---- KIVI (codec-peers.md §3) ----
  for (const char* bits : {"2", "4"})
    for (const char* group : {"32", "128"})
      for (Stream st : {K, V}) {
        add("kivi", {{"bits", bits}, {"group", group}}, 128, st);
        add("kivi", {{"bits", bits}, {"group", group}}, 64, st);
      }
  add("kivi", {{"residual", "0"}}, 64, K);
  add("kivi", {{"residual", "64"}, {"bits", "4"}}, 128, V);

  // ---- fp8 E4M3 (codec-peers.md §4) ----
  add("fp8_e4m3", {{"scale_mode", "unit"}}, 128, K);
  add("fp8_e4m3", {{"scale_mode", "unit"}}, 64, V);
  add("fp8_e4m3", {{"scale_mode", "absmax"}}, 128, V);
  add("fp8_e4m3", {{"scale_mode", "absmax"}}, 64, K);
  add("fp8_e4m3", {{"scale_mode", "unit"}}, 64, K, Opt().amplify(1000.0f));  // saturates at ±448
  add("fp8_e4m3", {{"scale_mode", "absmax"}}, 64, K, Opt().whitened());

  // ---- bf16 (codec-peers.md §5) ----
  add("bf16", {}, 64, K);
  add("bf16", {}, 128, V);
  return out;
}

Outcome run_units(const Batch& b) {
  const Tensor4& x = b.rows;
  const size_t S = x.s, H = x.h, T = x.t, D = x.d;
  const bool pooled = b.block_rows == BlockRows::kPooledHeads;
  const bool whiten = !b.L.empty();
  auto codec = codec::make_codec(b.codec, b.params, D, b.resources);

  Tensor4 xw;
  if (whiten) {
    xw = Tensor4(S, H, T, D);
    for (size_t s = 0; s < S; ++s)
      for (size_t h = 0; h < H; ++h)
        codec::matmul_rows(x.row(s, h, 0), T, D, b.L.data() + h * D * D, xw.row(s, h, 0));
  }
  float layer_scale = 1.0f;
  auto sm = b.params.find("scale_mode");
  if (b.codec == "fp8_e4m3" && sm != b.params.end() && sm->second == "absmax") {
    float mx = 0;
    for (float v : x.data) mx = std::max(mx, std::fabs(v));
    layer_scale = mx > 0 ? mx / 448.0f : 1.0f;
  }
  const uint8_t flags = b.domain_flags | (whiten ? codec::kDomainWhitened : 0);

  Outcome out;
  out.decoded = Tensor4(S, H, T, D);
  const size_t n_units = pooled ? S : S * H;
  for (size_t u = 0; u < n_units; ++u) {
    const size_t s = pooled ? u : u / H;
    const int head = pooled ? -1 : static_cast<int>(u % H);
    const size_t n = pooled ? T * H : T;
    // Unit rows: per_head (s, h) is contiguous; pooled_heads is token-major (row t·H + h).
    auto gather = [&](const Tensor4& src) {
      std::vector<float> r(n * D);
      for (size_t i = 0; i < n; ++i) {
        const size_t h = head >= 0 ? static_cast<size_t>(head) : i % H;
        const size_t t = head >= 0 ? i : i / H;
        std::memcpy(&r[i * D], src.row(s, h, t), D * sizeof(float));
      }
      return r;
    };
    const std::vector<float> rows = gather(whiten ? xw : x);
    std::vector<float> orig, weights;
    if (whiten) orig = gather(x);
    codec::UnitInput in;
    in.rows = rows.data();
    in.original_rows = whiten ? orig.data() : nullptr;
    in.n = n;
    in.dim = D;
    in.layer_scale = layer_scale;
    if (!b.weights.empty()) {
      weights.resize(n);
      for (size_t i = 0; i < n; ++i) {
        const size_t h = head >= 0 ? static_cast<size_t>(head) : i % H;
        const size_t t = head >= 0 ? i : i / H;
        weights[i] = b.weights[(s * H + h) * T + t];
      }
      in.weights = weights.data();
    }
    in.info.sequence = static_cast<uint32_t>(s);
    in.info.layer = b.layer;
    in.info.kv_head = head >= 0 ? static_cast<uint16_t>(head) : codec::kPooledHead;
    in.info.n_kv_heads = static_cast<uint16_t>(H);
    in.info.stream = b.stream;
    in.info.block_rows = b.block_rows;
    in.info.block_size = b.block_size;
    in.info.domain_flags = flags;
    const codec::EncodedUnit enc = codec->encode(in);
    codec::DecodedUnit dec = codec::decode_container(enc.bytes, b.name);
    if (dec.rows.size() != rows.size())
      throw std::runtime_error(b.name + ": decoded " + std::to_string(dec.rows.size()) +
                               " values, expected " + std::to_string(rows.size()));
    if (whiten) {
      std::vector<float> tmp(D);
      for (size_t r = 0; r < dec.n_block_rows; ++r) {
        const size_t h = head >= 0 ? static_cast<size_t>(head) : r % H;
        codec::matmul_rows(&dec.rows[r * D], 1, D, b.L_inv.data() + h * D * D, tmp.data());
        std::memcpy(&dec.rows[r * D], tmp.data(), D * sizeof(float));
      }
    }
    for (size_t i = 0; i < n; ++i) {
      const size_t h = head >= 0 ? static_cast<size_t>(head) : i % H;
      const size_t t = head >= 0 ? i : i / H;
      std::memcpy(out.decoded.row(s, h, t), &dec.rows[i * D], D * sizeof(float));
    }
    out.containers.insert(out.containers.end(), enc.bytes.begin(), enc.bytes.end());
  }
  return out;
}

Outcome run_executor(const Batch& b, const codec::Executor& executor) {
  codec::BatchRequest req;
  req.codec = {b.codec, b.params, b.resources};
  req.rows = b.rows.data.data();
  req.sequences = b.rows.s;
  req.heads = b.rows.h;
  req.tokens = b.rows.t;
  req.dim = b.rows.d;
  req.row_weights = b.weights.empty() ? nullptr : b.weights.data();
  req.whiten = b.L.empty() ? nullptr : b.L.data();
  req.unwhiten = b.L_inv.empty() ? nullptr : b.L_inv.data();
  req.layer = b.layer;
  req.stream = b.stream;
  req.block_rows = b.block_rows;
  req.block_size = b.block_size;
  req.domain_flags = b.domain_flags;
  codec::BatchResult r = executor.run(req);
  return {std::move(r.containers), std::move(r.decoded)};
}

}  // namespace kvwb::golden
