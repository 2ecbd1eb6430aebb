#include "tests/cuda/metrics_cases.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include "base/errors.h"
#include "codec/format/tensor.h"
#include "codec/math/metrics.h"
#include "codec/math/rng.h"

namespace kvwb::selftest {

namespace {

using codec::AttentionRequest;
using codec::AttentionVariants;
using codec::ErrorSums;
using codec::Tensor4;

/// Tolerances of the device metrics against the CPU's (docs/gpu.md). Reconstruction sums: bit
/// for bit. Attention: relative on every f64 sum; top-1 hits may differ where two logits are
/// within the f32 rounding of the dot products (Eigen's GEMM order vs a sequential dot).
constexpr double kAttnRelTol = 1e-5;
constexpr double kTop1Share = 0.002;  // at most this share of the queries (and at least 1)

/// Rows [S, H, T, D] from the project RNG (codec-kakeya.md §13.6: low rank plus noise).
Tensor4 rng_rows(size_t S, size_t H, size_t T, size_t D, uint64_t seed, uint64_t rank = 24,
                 double noise = 0.05) {
  Tensor4 x(S, H, T, D);
  for (size_t s = 0; s < S; ++s)
    for (size_t h = 0; h < H; ++h)
      codec::rng::synthetic(x.row(s, h, 0), T, D, rank, noise, seed + 10 * s + h);
  return x;
}

/// x + eps · (an independent RNG tensor of the same shape).
Tensor4 perturbed(const Tensor4& x, double eps, uint64_t seed) {
  const Tensor4 n = rng_rows(x.s, x.h, x.t, x.d, seed);
  Tensor4 y = x;
  for (size_t i = 0; i < y.data.size(); ++i)
    y.data[i] = static_cast<float>(y.data[i] + eps * n.data[i]);
  return y;
}

std::string same_bits(const char* what, size_t h, double a, double b) {
  if (std::memcmp(&a, &b, sizeof a) == 0) return "";
  char buf[200];
  std::snprintf(buf, sizeof buf, "head %zu %s: device %.17g, cpu %.17g", h, what, a, b);
  return buf;
}

/// "" when the per-head reconstruction sums are identical (bits and counts).
std::string compare_heads(const std::vector<ErrorSums>& dev, const std::vector<ErrorSums>& cpu) {
  if (dev.size() != cpu.size())
    return "head count: device " + std::to_string(dev.size()) + ", cpu " + std::to_string(cpu.size());
  for (size_t h = 0; h < dev.size(); ++h) {
    for (const auto& w : {same_bits("sq_err", h, dev[h].sq_err, cpu[h].sq_err),
                          same_bits("sq_ref", h, dev[h].sq_ref, cpu[h].sq_ref),
                          same_bits("cos_sum", h, dev[h].cos_sum, cpu[h].cos_sum),
                          same_bits("max_abs", h, dev[h].max_abs, cpu[h].max_abs)})
      if (!w.empty()) return w;
    if (dev[h].rows != cpu[h].rows || dev[h].values != cpu[h].values)
      return "head " + std::to_string(h) + ": row / value counts differ";
    if (dev[h].has_whitened || cpu[h].has_whitened) return "whitened fields set";
  }
  return "";
}

/// The CPU reference of BatchResult::head_errors: ErrorSums::add per (s, h), as the runner did.
std::vector<ErrorSums> cpu_heads(const Tensor4& x, const Tensor4& y) {
  std::vector<ErrorSums> heads(x.h);
  for (size_t h = 0; h < x.h; ++h)
    for (size_t s = 0; s < x.s; ++s) heads[h].add(x.row(s, h, 0), y.row(s, h, 0), x.t, x.d);
  return heads;
}

/// Largest relative difference seen per quantity (printed after each case).
struct AttnDiff {
  double rel = 0;      // max over f64 sums
  int64_t top1 = 0;    // max |Δ hits| over units and variants
  uint64_t queries = 0;
};

double rel_diff(double a, double b) {
  const double m = std::max(std::fabs(a), std::fabs(b));
  return m == 0 ? 0.0 : std::fabs(a - b) / m;
}

/// "" when every unit's sums agree within the tolerances; *diff receives the largest differences.
std::string compare_attention(const std::vector<AttentionVariants>& dev,
                              const std::vector<AttentionVariants>& cpu, AttnDiff* diff) {
  if (dev.size() != cpu.size()) return "unit count differs";
  AttnDiff d;
  for (size_t u = 0; u < dev.size(); ++u) {
    const codec::AttentionSums* a[3] = {&dev[u].both, &dev[u].k_only, &dev[u].v_only};
    const codec::AttentionSums* b[3] = {&cpu[u].both, &cpu[u].k_only, &cpu[u].v_only};
    const char* names[3] = {"both", "k_only", "v_only"};
    for (int i = 0; i < 3; ++i) {
      const std::string where = "unit " + std::to_string(u) + " " + names[i] + ": ";
      if (a[i]->queries != b[i]->queries || a[i]->out_count != b[i]->out_count ||
          a[i]->out_skipped != b[i]->out_skipped)
        return where + "query counts differ (device " + std::to_string(a[i]->queries) + "/" +
               std::to_string(a[i]->out_count) + "/" + std::to_string(a[i]->out_skipped) +
               ", cpu " + std::to_string(b[i]->queries) + "/" + std::to_string(b[i]->out_count) +
               "/" + std::to_string(b[i]->out_skipped) + ")";
      const double av[4] = {a[i]->out_rel_err_sum, a[i]->pooled_err, a[i]->pooled_ref,
                            a[i]->kl_sum};
      const double bv[4] = {b[i]->out_rel_err_sum, b[i]->pooled_err, b[i]->pooled_ref,
                            b[i]->kl_sum};
      const char* qn[4] = {"out_rel_err_sum", "pooled_err", "pooled_ref", "kl_sum"};
      for (int j = 0; j < 4; ++j) {
        const double r = rel_diff(av[j], bv[j]);
        d.rel = std::max(d.rel, r);
        if (r > kAttnRelTol) {
          char buf[240];
          std::snprintf(buf, sizeof buf, "%s%s: device %.12g, cpu %.12g (rel %.2e > %.0e)",
                        where.c_str(), qn[j], av[j], bv[j], r, kAttnRelTol);
          return buf;
        }
      }
      const int64_t dt = static_cast<int64_t>(a[i]->top1_hits) - static_cast<int64_t>(b[i]->top1_hits);
      d.top1 = std::max<int64_t>(d.top1, dt < 0 ? -dt : dt);
      const double allowed = std::max(1.0, kTop1Share * static_cast<double>(b[i]->queries));
      if (static_cast<double>(dt < 0 ? -dt : dt) > allowed)
        return where + "top-1 hits: device " + std::to_string(a[i]->top1_hits) + ", cpu " +
               std::to_string(b[i]->top1_hits) + " of " + std::to_string(b[i]->queries);
    }
    d.queries += cpu[u].both.queries;
  }
  if (diff) *diff = d;
  return "";
}

/// One layer's attention inputs: post-RoPE-like q [S, Hq, T, D], k, v and reconstructions.
struct AttnInputs {
  Tensor4 q, k, v, kh, vh;
  std::vector<std::vector<uint32_t>> samples;
  AttentionRequest req(int window) const {
    AttentionRequest r;
    r.q = q.data.data();
    r.k = k.data.data();
    r.v = v.data.data();
    r.khat = kh.data.data();
    r.vhat = vh.data.data();
    r.sequences = k.s;
    r.q_heads = q.h;
    r.kv_heads = k.h;
    r.tokens = k.t;
    r.dim = k.d;
    r.samples = &samples;
    r.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(k.d)));
    r.window = window;
    return r;
  }
};

/// Random inputs; `sample` = 0: every position (metrics.md §3.2), else that many per (s, hq).
AttnInputs attn_inputs(size_t S, size_t Hq, size_t H, size_t T, size_t D, size_t sample,
                       uint64_t seed, double eps) {
  AttnInputs in;
  in.q = rng_rows(S, Hq, T, D, seed);
  in.k = rng_rows(S, H, T, D, seed + 1000);
  in.v = rng_rows(S, H, T, D, seed + 2000);
  in.kh = perturbed(in.k, eps, seed + 3000);
  in.vh = perturbed(in.v, eps, seed + 4000);
  // Sharper attention than unit-variance rows give (logits of a few units).
  for (auto& x : in.q.data) x *= 3.0f;
  for (size_t s = 0; s < S; ++s)
    for (size_t hq = 0; hq < Hq; ++hq)
      in.samples.push_back(codec::attention_query_sample(T, sample, s, hq));
  return in;
}

std::string attention_case(const codec::Executor& ex, const AttnInputs& in, int window,
                           const char* label) {
  const AttentionRequest r = in.req(window);
  const auto cpu = codec::attention_on_cpu(r, 0);
  const auto dev = ex.attention(r);
  AttnDiff d;
  const std::string why = compare_attention(dev.units, cpu.units, &d);
  if (why.empty())
    std::printf("     %s: %llu queries, max rel diff %.2e, max |top-1 hits diff| %lld\n", label,
                static_cast<unsigned long long>(d.queries), d.rel, static_cast<long long>(d.top1));
  return why;
}

}  // namespace

void cpu_metric_cases(const CaseRunner& run_case) {
  run_case("cpu.metrics.seam_reconstruction", [] {
    const auto cpu = codec::make_executor("cpu", {0});
    const Tensor4 x = rng_rows(2, 3, 96, 64, 4242);
    codec::BatchRequest r;
    r.codec.name = "turbo3";
    r.rows = x.data.data();
    r.sequences = x.s;
    r.heads = x.h;
    r.tokens = x.t;
    r.dim = x.d;
    r.block_size = 32;
    if (!cpu->run(r).head_errors.empty()) return std::string("head_errors filled without measure");
    r.measure = true;
    const auto res = cpu->run(r);
    return compare_heads(res.head_errors, cpu_heads(x, res.decoded));
  });
  run_case("cpu.metrics.seam_attention", [] {
    const auto cpu = codec::make_executor("cpu", {2});
    const AttnInputs in = attn_inputs(2, 4, 2, 80, 32, 0, 777, 0.05);
    const AttentionRequest r = in.req(0);
    const auto units = cpu->attention(r).units;
    for (size_t u = 0; u < units.size(); ++u) {
      AttentionVariants want;
      const size_t s = u / 2, h = u % 2;
      for (size_t hq = 2 * h; hq < 2 * h + 2; ++hq)
        codec::accumulate_attention(in.q.row(s, hq, 0), in.k.row(s, h, 0), in.v.row(s, h, 0),
                                    in.kh.row(s, h, 0), in.vh.row(s, h, 0), in.k.t, in.k.d,
                                    in.samples[s * 4 + hq], r.scale, 0, want);
      const codec::AttentionSums* a[3] = {&units[u].both, &units[u].k_only, &units[u].v_only};
      const codec::AttentionSums* b[3] = {&want.both, &want.k_only, &want.v_only};
      for (int i = 0; i < 3; ++i)
        if (std::memcmp(&a[i]->out_rel_err_sum, &b[i]->out_rel_err_sum, sizeof(double)) != 0 ||
            std::memcmp(&a[i]->kl_sum, &b[i]->kl_sum, sizeof(double)) != 0 ||
            std::memcmp(&a[i]->pooled_err, &b[i]->pooled_err, sizeof(double)) != 0 ||
            a[i]->top1_hits != b[i]->top1_hits || a[i]->queries != b[i]->queries)
          return "unit " + std::to_string(u) + ": executor attention differs from accumulate_attention";
    }
    return std::string();
  });
}

void device_metric_cases(const codec::Executor& ex, const std::string& prefix,
                         const CaseRunner& run_case, bool small) {
  const auto cpu = codec::make_executor("cpu", {0});
  auto request = [](const Tensor4& x, const char* codec) {
    codec::BatchRequest r;
    r.codec.name = codec;
    r.rows = x.data.data();
    r.sequences = x.s;
    r.heads = x.h;
    r.tokens = x.t;
    r.dim = x.d;
    r.measure = true;
    return r;
  };
  // The reconstruction sums of a batch through `ex` (BatchRequest::measure) against ErrorSums of
  // the rows and the batch's own decoded rows, and against the CPU executor's head_errors.
  auto reconstruction = [&](const Tensor4& x, const char* codec) -> std::string {
    const codec::BatchRequest r = request(x, codec);
    const codec::BatchResult res = ex.run(r);
    std::string why = compare_heads(res.head_errors, cpu_heads(x, res.decoded));
    if (!why.empty()) return why;
    return compare_heads(res.head_errors, cpu->run(r).head_errors);
  };

  run_case(prefix + "reconstruction_random", [&] {
    // bf16 keeps zero rows zero (cosine 1) and rounds a row of the smallest subnormal to zero
    // (exactly one of x, x̂ zero: cosine 0).
    Tensor4 x = perturbed(rng_rows(3, 2, 77, 48, 1234), 0.03, 99);
    std::fill_n(x.row(1, 0, 5), x.d, 0.0f);
    std::fill_n(x.row(2, 1, 0), x.d, 1.4e-45f);
    const Tensor4 y = cpu->run(request(x, "bf16")).decoded;
    for (size_t j = 0; j < y.d; ++j)
      if (y.row(2, 1, 0)[j] != 0.0f) return std::string("bf16 kept a subnormal: the case is moot");
    return reconstruction(x, "bf16");
  });
  run_case(prefix + "attention_sliding_sampled", [&] {
    const AttnInputs in = attn_inputs(2, 6, 3, 300, 32, 37, 6060, 0.1);
    return attention_case(ex, in, 48, "sliding window 48, 37 sampled positions");
  });
  if (small) return;
  run_case(prefix + "reconstruction_1p5b_layer", [&] {
    // A layer of the 1.5B shape (2 kv heads × 2048 tokens × D 128) through turbo3 and q4_0.
    const Tensor4 x = rng_rows(1, 2, 2048, 128, 700013);
    for (const char* c : {"turbo3", "q4_0"}) {
      const std::string why = reconstruction(x, c);
      if (!why.empty()) return std::string(c) + ": " + why;
    }
    return std::string();
  });
  run_case(prefix + "attention_causal_all_queries", [&] {
    AttnInputs in = attn_inputs(2, 4, 2, 160, 64, 0, 5150, 0.05);
    // A kv head whose values are all zero: every output is 0, its queries are skipped and counted.
    std::fill_n(in.v.row(1, 0, 0), in.v.t * in.v.d, 0.0f);
    return attention_case(ex, in, 0, "causal, every position");
  });
  run_case(prefix + "attention_1p5b_layer", [&] {
    // 1.5B-like layer (D 128, GQA g = 6 as 12 q heads over 2 kv heads; 1024 tokens to keep the
    // emulation short), keys and values through turbo3, 64 sampled queries per (s, hq).
    AttnInputs in = attn_inputs(1, 12, 2, 1024, 128, 64, 880000, 0.0);
    for (Tensor4* t : {&in.k, &in.v}) (t == &in.k ? in.kh : in.vh) = cpu->run(request(*t, "turbo3")).decoded;
    return attention_case(ex, in, 0, "1.5B-like layer, turbo3 K and V, 64 sampled");
  });
  run_case(prefix + "attention_cancelled_and_malformed", [&]() -> std::string {
    const AttnInputs in = attn_inputs(1, 2, 1, 64, 32, 0, 4711, 0.05);
    AttentionRequest r = in.req(0);
    std::atomic<bool> cancel{true};
    const auto res = ex.attention(r, &cancel);
    if (res.units.size() != 1 || res.units[0].both.queries != 0)
      return "a cancelled request computed queries";
    r.q_heads = 3;
    try {
      (void)ex.attention(r);
    } catch (const InvalidArgument&) {
      return "";
    }
    return "3 query heads over 1 kv head with 2 samples was accepted";
  });
}

std::vector<MetricTiming> metric_bench(size_t layers, const codec::Executor* device) {
  std::vector<MetricTiming> out;
  const size_t S = 1, Hq = 12, H = 2, T = 2048, D = 128;
  const auto cpu = codec::make_executor("cpu", {0});
  // One layer's inputs, reused for every layer (the metrics do not depend on the layer index).
  AttnInputs in = attn_inputs(S, Hq, H, T, D, 256, 990000, 0.0);
  for (Tensor4* t : {&in.k, &in.v}) {
    codec::BatchRequest r;
    r.codec.name = "turbo3";
    r.rows = t->data.data();
    r.sequences = S;
    r.heads = H;
    r.tokens = T;
    r.dim = D;
    (t == &in.k ? in.kh : in.vh) = cpu->run(r).decoded;
  }
  const AttentionRequest ar = in.req(0);
  codec::BatchRequest rk;
  rk.rows = in.k.data.data();
  rk.sequences = S;
  rk.heads = H;
  rk.tokens = T;
  rk.dim = D;
  auto time_cpu = [&](int threads) {
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t l = 0; l < layers; ++l) {
      (void)codec::head_error_sums(in.k.data.data(), in.kh.data.data(), S, H, T, D, threads);
      (void)codec::head_error_sums(in.v.data.data(), in.vh.data.data(), S, H, T, D, threads);
      (void)codec::attention_on_cpu(ar, threads);
    }
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const std::string shape = std::to_string(layers) +
                            " layers: K, V reconstruction sums + attention (12 q heads, 256 sampled)";
  const double c1 = time_cpu(1), cn = time_cpu(0);
  out.push_back({"metrics.cpu_1_thread.wall", c1, shape});
  out.push_back({"metrics.cpu_" + std::to_string(hw) + "_threads.wall", cn, ""});
  std::printf("bench: metrics cpu 1 thread %.1f ms, %u threads %.1f ms (%s)\n", c1, hw, cn,
              shape.c_str());
  if (!device) return out;
  double rec_ms = 0, att_h2d = 0, att_k = 0, att_d2h = 0, wall = 0;
  for (int rep = 0; rep < 2; ++rep) {  // the first pass warms up (allocations, module load)
    rec_ms = att_h2d = att_k = att_d2h = wall = 0;
    for (size_t l = 0; l < layers; ++l) {
      for (const Tensor4* x : {&in.k, &in.v}) {
        codec::BatchRequest r = rk;
        r.rows = x->data.data();
        r.codec.name = "turbo3";
        r.measure = true;
        rec_ms += device->run(r).device_metrics_ms;
      }
      const auto t0 = std::chrono::steady_clock::now();
      const auto a = device->attention(ar);
      wall += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      att_h2d += a.device_h2d_ms;
      att_k += a.device_kernel_ms;
      att_d2h += a.device_d2h_ms;
    }
  }
  out.push_back({"metrics.cuda.reconstruction", rec_ms, "h2d + kernels + d2h, K and V, all layers"});
  out.push_back({"metrics.cuda.attention_kernel", att_k, "attention kernel, all layers"});
  out.push_back({"metrics.cuda.attention_h2d", att_h2d, "q, k, v, k^, v^ host->device"});
  out.push_back({"metrics.cuda.attention_d2h", att_d2h, "per-query results device->host"});
  out.push_back({"metrics.cuda.attention_wall", wall, "attention() calls incl. host folding"});
  const double dev_total = rec_ms + wall;
  std::printf(
      "bench: metrics cuda reconstruction %.2f ms, attention kernel %.2f ms (h2d %.2f ms, d2h "
      "%.2f ms, wall %.1f ms); %.0fx the 1-thread CPU, %.1fx the %u-thread CPU\n",
      rec_ms, att_k, att_h2d, att_d2h, wall, c1 / std::max(dev_total, 1e-9),
      cn / std::max(dev_total, 1e-9), hw);
  return out;
}

}  // namespace kvwb::selftest
