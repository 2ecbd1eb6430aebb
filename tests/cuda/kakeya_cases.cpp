// Kakeya-PCA cases of gpu_selftest (kakeya_cases.h). Parity bar (codec-kakeya.md §12): decoded
// relative L2 ≤ 1e-3 against the CPU executor per (layer, stream), at most max(1, n/128) rows per
// block with a different segment id, identical d_eff and K_eff; plus identical framing (header and
// parameter block bytes, block count, tail), the device's own containers decoding to the device's
// decoded rows, and the figures (rel L2, segment-id differences, byte identity) printed per case.
#include "tests/cuda/kakeya_cases.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "base/errors.h"
#include "codec/codecs/kakeya_pca.h"
#include "codec/math/rng.h"

namespace kvwb::selftest {

namespace {

using codec::BatchRequest;
using codec::BatchResult;
using codec::Executor;
using codec::ParamMap;
using codec::Stream;
using codec::Tensor4;

/// [S, H, T, D] rows of synthetic(T, D, rank, noise) (§13.6) per (s, h).
Tensor4 synthetic_rows(size_t S, size_t H, size_t T, size_t D, size_t rank, double noise,
                       uint64_t seed) {
  Tensor4 x(S, H, T, D);
  for (size_t s = 0; s < S; ++s)
    for (size_t h = 0; h < H; ++h)
      codec::rng::synthetic(x.row(s, h, 0), T, D, rank, noise, seed + 100 * s + h);
  return x;
}

/// Key-like rows: per-channel offsets with two massive channels, 16 latent factors with an
/// exponentially decaying spectrum, small noise, and a spike every 37th row (project RNG normals).
Tensor4 real_like_rows(size_t S, size_t H, size_t T, size_t D, uint64_t seed) {
  Tensor4 x(S, H, T, D);
  const uint64_t key = seed ^ codec::rng::kTagTest;
  constexpr size_t kFactors = 16;
  std::vector<float> mix(D * kFactors), mu(D);
  for (size_t j = 0; j < D; ++j) {
    mu[j] = 0.3f * codec::rng::normal(key, 7 * j);
    for (size_t m = 0; m < kFactors; ++m)
      mix[j * kFactors + m] = codec::rng::normal(key, 100000 + j * kFactors + m) *
                              std::pow(0.7f, static_cast<float>(m));
  }
  mu[3] = 8.0f;
  mu[D / 2 + 1] = -6.0f;
  uint64_t idx = 1000000;
  for (size_t s = 0; s < S; ++s)
    for (size_t h = 0; h < H; ++h)
      for (size_t t = 0; t < T; ++t) {
        float z[kFactors];
        for (auto& v : z) v = codec::rng::normal(key, idx++);
        float* row = x.row(s, h, t);
        for (size_t j = 0; j < D; ++j) {
          float v = mu[j] + 0.02f * codec::rng::normal(key, idx++);
          for (size_t m = 0; m < kFactors; ++m) v += mix[j * kFactors + m] * z[m];
          row[j] = v;
        }
        if (t % 37 == 5) row[(t + h) % D] += 5.0f;
      }
  return x;
}

BatchRequest make_request(const ParamMap& params, const Tensor4& x, Stream st, uint32_t block_size,
                          bool pooled) {
  BatchRequest r;
  r.codec.name = "kakeya_pca";
  r.codec.params = params;
  r.rows = x.data.data();
  r.sequences = x.s;
  r.heads = x.h;
  r.tokens = x.t;
  r.dim = x.d;
  r.layer = 5;
  r.stream = st;
  r.block_size = block_size;
  r.block_rows = pooled ? codec::BlockRows::kPooledHeads : codec::BlockRows::kPerHead;
  return r;
}

/// Place of unit u's row r in [S, H, T] (executor.h unit order).
size_t place(const BatchRequest& r, size_t u, size_t row) {
  if (r.block_rows != codec::BlockRows::kPooledHeads) return u * r.tokens + row;
  return (u * r.heads + row % r.heads) * r.tokens + row / r.heads;
}

double rel_l2(const std::vector<float>& ref, const std::vector<float>& got) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = static_cast<double>(ref[i]) - got[i];
    num += d * d;
    den += static_cast<double>(ref[i]) * ref[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

/// The parity bar between a CPU and a CUDA result of the same request; prints the figures.
std::string parity(const std::string& name, const BatchRequest& req, const BatchResult& c,
                   const BatchResult& g) {
  if (c.units.size() != g.units.size()) return "unit counts differ";
  if (c.decoded.data.size() != g.decoded.data.size()) return "decoded sizes differ";
  for (float v : g.decoded.data)
    if (!std::isfinite(v)) return "device decoded a non-finite value";
  if (c.stats.d_eff != g.stats.d_eff) return "d_eff per block differs from the CPU's";
  if (c.stats.k_eff != g.stats.k_eff) return "K_eff per block differs from the CPU's";
  if (c.tail_bytes != g.tail_bytes) return "tail bytes differ";
  if (c.stats.coded_values != g.stats.coded_values) return "coded_values differ";
  if (req.collect_residuals && c.stats.scaled_residuals.size() != g.stats.scaled_residuals.size())
    return "scaled residual counts differ";
  const double rl2 = rel_l2(c.decoded.data, g.decoded.data);
  size_t same_size = 0, identical = 0, seg_max = 0, seg_total = 0, blocks = 0;
  size_t bytes_equal = 0, bytes_total = 0;
  const size_t limit = std::max<size_t>(1, req.block_size / 128);
  for (size_t u = 0; u < c.units.size(); ++u) {
    const auto& uc = c.units[u];
    const auto& ug = g.units[u];
    if (uc.header_bytes != ug.header_bytes || uc.codec_rows != ug.codec_rows ||
        uc.n_block_rows != ug.n_block_rows || uc.tail_bytes != ug.tail_bytes ||
        uc.sequence != ug.sequence || uc.kv_head != ug.kv_head)
      return "unit record " + std::to_string(u) + " differs in framing";
    const auto bc = c.container(u);
    const auto bg = g.container(u);
    if (!std::equal(bc.begin(), bc.begin() + static_cast<std::ptrdiff_t>(uc.header_bytes),
                    bg.begin()))
      return "unit " + std::to_string(u) + ": header / parameter block bytes differ";
    if (bc.size() == bg.size()) {
      ++same_size;
      if (std::equal(bc.begin(), bc.end(), bg.begin())) ++identical;
    }
    for (size_t i = 0; i < std::min(bc.size(), bg.size()); ++i) bytes_equal += bc[i] == bg[i];
    bytes_total += std::max(bc.size(), bg.size());
    const auto kc = codec::kakeya::read_container(bc, "cpu unit " + std::to_string(u));
    const auto kg = codec::kakeya::read_container(bg, "cuda unit " + std::to_string(u));
    if (kc.blocks.size() != kg.blocks.size()) return "block counts differ";
    if (kc.tail_bits != kg.tail_bits) return "unit " + std::to_string(u) + ": tail bits differ";
    for (size_t b = 0; b < kc.blocks.size(); ++b) {
      size_t diff = 0;
      for (size_t i = 0; i < kc.blocks[b].seg.size(); ++i)
        diff += kc.blocks[b].seg[i] != kg.blocks[b].seg[i];
      seg_max = std::max(seg_max, diff);
      seg_total += diff;
      ++blocks;
      if (diff > limit)
        return "unit " + std::to_string(u) + " block " + std::to_string(b) + ": " +
               std::to_string(diff) + " rows with a different segment id (bar " +
               std::to_string(limit) + ")";
    }
    if (!req.whiten) {  // the device's containers decode to the device's decoded rows
      const auto dec = codec::decode_container(bg, "cuda unit " + std::to_string(u));
      std::vector<float> mine(dec.rows.size());
      const size_t D = req.dim;
      for (size_t r = 0; r < dec.rows.size() / D; ++r)
        std::memcpy(&mine[r * D], g.decoded.data.data() + place(req, u, r) * D, D * sizeof(float));
      const double self = rel_l2(dec.rows, mine);
      if (self > 1e-5)
        return "unit " + std::to_string(u) + ": the device's container decodes " +
               std::to_string(self) + " (rel L2) away from the device's decoded rows";
    }
  }
  std::printf(
      "     %s: rel L2 %.3g; segment ids differing: max %zu per block (bar %zu), %zu over %zu "
      "blocks; containers: %zu/%zu units same size, %zu/%zu byte-identical, %.4f%% of bytes "
      "equal\n",
      name.c_str(), rl2, seg_max, limit, seg_total, blocks, same_size, c.units.size(), identical,
      c.units.size(), bytes_total ? 100.0 * bytes_equal / bytes_total : 100.0);
  if (!(rl2 <= 1e-3)) return "decoded relative L2 " + std::to_string(rl2) + " > 1e-3";
  return "";
}

std::string error_code_of(const std::function<void()>& f, std::string* message) {
  try {
    f();
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.code();
  } catch (const std::exception& e) {
    if (message) *message = e.what();
    return "std::exception";
  }
  return "";
}

}  // namespace

std::string kakeya_parity(const std::string& name, const BatchRequest& req, const BatchResult& cpu,
                          const BatchResult& dev) {
  return parity(name, req, cpu, dev);
}

std::string kakeya_golden_parity(const golden::Batch& b, const Executor& dev, const Executor& cpu,
                                 const std::string& name) {
  BatchRequest r;
  r.codec.name = b.codec;
  r.codec.params = b.params;
  r.codec.resources = b.resources;
  r.rows = b.rows.data.data();
  r.sequences = b.rows.s;
  r.heads = b.rows.h;
  r.tokens = b.rows.t;
  r.dim = b.rows.d;
  r.row_weights = b.weights.empty() ? nullptr : b.weights.data();
  r.whiten = b.L.empty() ? nullptr : b.L.data();
  r.unwhiten = b.L_inv.empty() ? nullptr : b.L_inv.data();
  r.layer = b.layer;
  r.stream = b.stream;
  r.block_rows = b.block_rows;
  r.block_size = b.block_size;
  r.domain_flags = b.domain_flags;
  // pca_method=randomized too: its fits run on the host with the CPU's code (same bits).
  return parity(name, r, cpu.run(r), dev.run(r));
}

void kakeya_cases(const Executor& dev, const Executor& cpu, const std::string& prefix, bool full,
                  const CaseRunner& run_case) {
  const std::string pre = prefix + "kakeya.";
  auto parity_case = [&](const std::string& name, const Tensor4& x, const ParamMap& p, Stream st,
                         uint32_t bs, bool pooled, const float* weights = nullptr,
                         bool residuals = false) {
    run_case(pre + name, [&]() -> std::string {
      BatchRequest req = make_request(p, x, st, bs, pooled);
      req.row_weights = weights;
      req.collect_residuals = residuals;
      return parity(pre + name, req, cpu.run(req), dev.run(req));
    });
  };
  // Small shapes (the emulation runs everywhere): D 64 and 128, per_head and pooled_heads, hot
  // tails, b = 2/3/4, share_basis, outliers, fp16 / bf16 / fp32 skeleton, row weights.
  const Tensor4 a = synthetic_rows(1, 2, 300, 64, 8, 0.05, 11);
  parity_case("d64_per_head_b3_tail", a, {{"bit_width", "3"}}, Stream::kK, 128, false);
  parity_case("d64_pooled_b2_share_basis", a,
              {{"bit_width", "2"}, {"share_basis", "true"}, {"k", "8"}}, Stream::kV, 128, true);
  parity_case("d64_per_head_b4_outliers_bf16", a,
              {{"bit_width", "4"}, {"outlier_threshold", "1.5"}, {"skeleton_dtype", "bf16"}},
              Stream::kK, 128, false, nullptr, true);
  const Tensor4 b128 = synthetic_rows(1, 1, 300, 128, 12, 0.05, 23);
  parity_case("d128_per_head_b3_outliers_fp32", b128,
              {{"bit_width", "3"},
               {"outlier_threshold", "2.0"},
               {"skeleton_dtype", "fp32"},
               {"variance_ratio", "0.9"}},
              Stream::kK, 256, false);
  {
    const Tensor4 w = synthetic_rows(1, 2, 256, 64, 6, 0.1, 37);
    std::vector<float> weights(2 * 256);
    const uint64_t key = 99 ^ codec::rng::kTagTest;
    for (size_t i = 0; i < weights.size(); ++i)
      weights[i] = static_cast<float>(codec::rng::u01(codec::rng::splitmix(key, i)));
    parity_case("d64_attention_weights_share_basis", w,
                {{"weights", "attention"}, {"share_basis", "true"}, {"exact_rank_cap", "12"}},
                Stream::kK, 128, false, weights.data());
    parity_case("d64_pooled_attention_weights", w, {{"weights", "attention"}, {"bit_width", "2"}},
                Stream::kK, 128, true, weights.data());
  }
  const Tensor4 real = real_like_rows(1, 2, 256, 64, 5);
  parity_case("real_like_k_b3_outliers", real, {{"bit_width", "3"}, {"outlier_threshold", "2.0"}},
              Stream::kK, 128, false);
  parity_case("real_like_v_b2_share_basis", real, {{"bit_width", "2"}, {"share_basis", "true"}},
              Stream::kV, 128, false);
  run_case(pre + "whitened", [&]() -> std::string {
    // Q-preconditioning: L = I + small strictly-lower part per head, L⁻¹ by substitution.
    const size_t D = 64, H = 2;
    std::vector<float> L(H * D * D, 0.0f), Li(H * D * D, 0.0f);
    for (size_t h = 0; h < H; ++h) {
      float* l = &L[h * D * D];
      for (size_t i = 0; i < D; ++i) {
        l[i * D + i] = 1.0f + 0.5f * static_cast<float>(i % 3);
        for (size_t j = 0; j < i; ++j) l[i * D + j] = 0.05f * codec::rng::normal(77 + h, i * D + j);
      }
      double* tmp = new double[D * D]();
      for (size_t c = 0; c < D; ++c)  // solve L·X = I column by column (forward substitution)
        for (size_t i = 0; i < D; ++i) {
          double s = i == c ? 1.0 : 0.0;
          for (size_t j = 0; j < i; ++j) s -= l[i * D + j] * tmp[j * D + c];
          tmp[i * D + c] = s / l[i * D + i];
        }
      for (size_t i = 0; i < D * D; ++i) Li[h * D * D + i] = static_cast<float>(tmp[i]);
      delete[] tmp;
    }
    BatchRequest req = make_request({{"bit_width", "3"}}, a, Stream::kK, 128, false);
    req.whiten = L.data();
    req.unwhiten = Li.data();
    return parity(pre + "whitened", req, cpu.run(req), dev.run(req));
  });
  run_case(pre + "deterministic", [&]() -> std::string {
    const BatchRequest req =
        make_request({{"outlier_threshold", "2.0"}}, a, Stream::kK, 128, false);
    const BatchResult r1 = dev.run(req), r2 = dev.run(req);
    if (r1.containers != r2.containers) return "two runs gave different container bytes";
    if (r1.decoded.data != r2.decoded.data) return "two runs gave different decoded rows";
    return "";
  });
  run_case(pre + "all_tail", [&]() -> std::string {
    // Fewer rows than a block: only the bf16 tail, identical bytes.
    const BatchRequest req = make_request({}, a, Stream::kV, 512, false);
    const BatchResult c = cpu.run(req), g = dev.run(req);
    if (c.containers != g.containers) return "containers differ";
    if (c.decoded.data != g.decoded.data) return "decoded rows differ";
    return "";
  });
  run_case(pre + "zero_block", [&]() -> std::string {
    // An all-zero unit: d_eff = 1, K_eff = 1, centre e_0, output exactly 0 (§13.7).
    const Tensor4 z(1, 1, 128, 64);
    const BatchRequest req = make_request({}, z, Stream::kK, 64, false);
    const BatchResult c = cpu.run(req), g = dev.run(req);
    if (c.containers != g.containers) return "containers differ";
    for (float v : g.decoded.data)
      if (v != 0.0f) return "decoded a non-zero value";
    return "";
  });
  auto same_error = [&](const std::string& name, const Tensor4& x, const ParamMap& p) {
    run_case(pre + name, [&]() -> std::string {
      std::string m_cpu, m_dev;
      const BatchRequest req = make_request(p, x, Stream::kK, 128, false);
      const std::string c_cpu = error_code_of([&] { (void)cpu.run(req); }, &m_cpu);
      const std::string c_dev = error_code_of([&] { (void)dev.run(req); }, &m_dev);
      if (c_cpu.empty()) return "the CPU accepted the bad input";
      if (c_cpu != c_dev || m_cpu != m_dev)
        return "cpu " + c_cpu + " '" + m_cpu + "' vs cuda " + c_dev + " '" + m_dev + "'";
      return "";
    });
  };
  {
    Tensor4 bad = a;
    bad.row(0, 1, 40)[7] = std::nanf("");
    same_error("error_non_finite", bad, {});
    Tensor4 tail_bad = a;
    tail_bad.row(0, 1, 290)[3] = INFINITY;
    same_error("error_non_finite_tail", tail_bad, {});
    Tensor4 big = a;
    big.row(0, 1, 130)[9] = 3.0e7f;  // the block mean leaves the fp16 range
    same_error("error_fp16_range", big, {});
  }
  // pca_method=randomized: the range finder runs on the host with the CPU codec's own code (Ω from
  // the project RNG, Eigen QR/SVD), so mean, basis and d_eff are the CPU's bits; every later stage
  // runs on the device. Per-block and shared fits, weights, pooled rows, a flat-tail spectrum.
  parity_case("randomized_d64_per_head_b3", a, {{"pca_method", "randomized"}}, Stream::kK, 128,
              false);
  parity_case("randomized_d64_pooled_share_basis_b2", a,
              {{"pca_method", "randomized"}, {"share_basis", "true"}, {"bit_width", "2"}},
              Stream::kV, 128, true);
  parity_case("randomized_d128_flat_tail_outliers", b128,
              {{"pca_method", "randomized"},
               {"rsvd_target_rank", "24"},
               {"rsvd_power_iters", "1"},
               {"outlier_threshold", "2.0"}},
              Stream::kK, 256, false);
  parity_case("randomized_real_like_k_b3", real, {{"pca_method", "randomized"}}, Stream::kK, 128,
              false);
  run_case(pre + "randomized_attention_weights", [&]() -> std::string {
    const Tensor4 w = synthetic_rows(1, 2, 256, 64, 6, 0.1, 37);
    std::vector<float> weights(2 * 256);
    const uint64_t key = 99 ^ codec::rng::kTagTest;
    for (size_t i = 0; i < weights.size(); ++i)
      weights[i] = static_cast<float>(codec::rng::u01(codec::rng::splitmix(key, i)));
    BatchRequest req = make_request({{"pca_method", "randomized"}, {"weights", "attention"}}, w,
                                    Stream::kK, 128, false);
    req.row_weights = weights.data();
    return parity(pre + "randomized_attention_weights", req, cpu.run(req), dev.run(req));
  });
  {
    Tensor4 big = a;
    big.row(0, 1, 130)[9] = 3.0e7f;  // the host fit's mean leaves the fp16 range
    same_error("error_fp16_range_randomized", big, {{"pca_method", "randomized"}});
  }
  run_case(pre + "unsupported_head_dim", [&]() -> std::string {
    std::string msg;
    const Tensor4 wide(1, 1, 64, 320);
    const BatchRequest req = make_request({}, wide, Stream::kK, 32, false);
    const std::string code = error_code_of([&] { (void)dev.run(req); }, &msg);
    if (code != "UNSUPPORTED") return "expected UNSUPPORTED, got '" + code + "': " + msg;
    if (msg.find("320") == std::string::npos || msg.find("cuda") == std::string::npos)
      return "message does not name the head dimension and the backend: " + msg;
    return "";
  });
  if (full) {
    // One layer of the DeepSeek-R1-Distill-1.5B shape, the benchmark configuration.
    const Tensor4 k = synthetic_rows(1, 2, 2048, 128, 24, 0.05, 7013);
    const Tensor4 v = synthetic_rows(1, 2, 2048, 128, 24, 0.05, 8013);
    parity_case("parity_1p5b_layer_k_b3", k, {{"bit_width", "3"}}, Stream::kK, 512, false);
    parity_case("parity_1p5b_layer_v_b2", v, {{"bit_width", "2"}}, Stream::kV, 512, false);
  }
}

}  // namespace kvwb::selftest
