// The execution seam (codec/executor.h): the factory, the CPU executor's batch layout, errors,
// cancellation and thread-count independence. Byte-for-byte agreement with the unit-by-unit codec
// over every codec is tests/golden.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "base/errors.h"
#include "codec/executor.h"
#include "codec/format/container.h"
#include "codec/format/half.h"
#include "codec/math/rng.h"

using namespace kvwb;
using namespace kvwb::codec;

namespace {

constexpr size_t kS = 2, kH = 3, kT = 70, kD = 64;

std::vector<float> batch_rows(uint64_t seed) {
  std::vector<float> x(kS * kH * kT * kD);
  for (size_t u = 0; u < kS * kH; ++u)
    rng::synthetic(x.data() + u * kT * kD, kT, kD, 16, 0.05, seed + u);
  return x;
}

BatchRequest request(const std::vector<float>& rows, const std::string& codec,
                     ParamMap params = {}) {
  BatchRequest r;
  r.codec = {codec, std::move(params), {}};
  r.rows = rows.data();
  r.sequences = kS;
  r.heads = kH;
  r.tokens = kT;
  r.dim = kD;
  r.layer = 3;
  r.stream = Stream::kK;
  r.block_size = 32;
  return r;
}

}  // namespace

TEST(ExecutorFactory, CpuAutoCudaAndUnknown) {
  EXPECT_EQ(make_executor("cpu")->name(), "cpu");
  EXPECT_EQ(resolve_executor("cpu"), "cpu");
  // No backend but the CPU runs codecs in this build: auto takes the CPU and says why, cuda is
  // refused with the reason, and anything else is a usage error.
  std::string note;
  EXPECT_EQ(make_executor("auto", {}, &note)->name(), "cpu");
  EXPECT_NE(note.find("backend auto fell back to cpu: "), std::string::npos) << note;
  EXPECT_THROW(make_executor("cuda"), Unavailable);
  try {
    make_executor("cuda");
  } catch (const Unavailable& e) {
    EXPECT_NE(std::string(e.what()).find("backend 'cuda' cannot run: "), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(make_executor("gpu"), InvalidArgument);
  const auto backends = describe_backends();
  ASSERT_EQ(backends.size(), 2u);
  EXPECT_EQ(backends[0].name, "cpu");
  EXPECT_TRUE(backends[0].runs_codecs);
  EXPECT_EQ(backends[0].codecs, codec_names());
  EXPECT_EQ(backends[1].name, "cuda");
  // runs_codecs: the CUDA kernels are part of the build (true exactly when CUDA was compiled);
  // they list the deterministic codecs, Besicovitch and Kakeya-PCA.
  EXPECT_EQ(backends[1].runs_codecs, backends[1].compiled);
  if (backends[1].compiled) {
    const auto& c = backends[1].codecs;
    for (const char* name : {"kakeya_pca", "turbo2", "turbo3", "turbo4", "q8_0", "q4_0", "q4_1",
                             "q5_0", "q5_1", "iq4_nl", "kivi", "fp8_e4m3", "bf16", "besicovitch"})
      EXPECT_NE(std::find(c.begin(), c.end(), name), c.end()) << name;
    // What `auto` consults per stream: every Kakeya option runs on the device (randomized PCA
    // fits on the host); a codec without kernels stays on the CPU, with the reason.
    EXPECT_EQ(backend_refusal("cuda", "kakeya_pca", {}), "");
    EXPECT_EQ(backend_refusal("cuda", "kakeya_pca", {{"pca_method", "randomized"}}), "");
    EXPECT_EQ(backend_refusal("cuda", "besicovitch", {}), "");
    EXPECT_EQ(backend_refusal("cuda", "kakeya_pca", {}, 256), "");
    EXPECT_NE(backend_refusal("cuda", "kakeya_pca", {}, 320).find("head_dim 320"), std::string::npos);
    EXPECT_NE(backend_refusal("cuda", "no_such_codec", {}).find("no_such_codec"), std::string::npos);
  } else {
    EXPECT_TRUE(backends[1].codecs.empty());
  }
  EXPECT_FALSE(backends[1].detail.empty());
  EXPECT_EQ(backend_refusal("cpu", "kakeya_pca", {{"pca_method", "randomized"}}), "");
}

TEST(CpuExecutor, UnitLayoutAndAccounting) {
  const auto rows = batch_rows(11);
  BatchRequest req = request(rows, "kakeya_pca", {{"bit_width", "2"}});
  req.domain_flags = kDomainPreRope;
  const BatchResult r = make_executor("cpu", {2})->run(req);
  ASSERT_EQ(r.units.size(), kS * kH);
  uint64_t offset = 0, reported = 0;
  for (size_t u = 0; u < r.units.size(); ++u) {
    const UnitRecord& rec = r.units[u];
    EXPECT_EQ(rec.offset, offset);
    EXPECT_EQ(rec.sequence, u / kH);
    EXPECT_EQ(rec.kv_head, u % kH);
    EXPECT_EQ(rec.n_block_rows, 64u);  // two blocks of 32 rows; 6 rows of hot tail
    const ContainerHeader h = read_container_header(r.container(u), "unit", nullptr);
    EXPECT_EQ(h.sequence, rec.sequence);
    EXPECT_EQ(h.kv_head, rec.kv_head);
    EXPECT_EQ(h.layer, 3u);
    EXPECT_EQ(h.n_kv_heads, kH);
    EXPECT_EQ(h.n_blocks, 2u);
    EXPECT_EQ(h.n_tail_rows, 6u);
    EXPECT_EQ(h.domain_flags, kDomainPreRope);
    EXPECT_EQ(rec.size, rec.header_bytes + rec.reported_bytes);  // K§9.8: file size minus header
    offset += rec.size;
    reported += rec.reported_bytes;
  }
  EXPECT_EQ(offset, r.containers.size());
  EXPECT_EQ(reported, r.reported_bytes);
  EXPECT_EQ(r.stats.d_eff.size(), kS * kH * 2);  // per block, unit order
  ASSERT_EQ(r.decoded.size(), rows.size());
  // The hot tail comes back as bf16 of the input.
  const float* tail_in = rows.data() + 64 * kD;
  const float* tail_out = r.decoded.data.data() + 64 * kD;
  for (size_t i = 0; i < 6 * kD; ++i)
    EXPECT_NEAR(tail_out[i], tail_in[i], std::fabs(tail_in[i]) / 128 + 1e-30);
}

TEST(CpuExecutor, PooledHeadsInterleaveTokenMajor) {
  const auto rows = batch_rows(12);
  BatchRequest req = request(rows, "bf16");
  req.block_rows = BlockRows::kPooledHeads;
  const BatchResult r = make_executor("cpu", {1})->run(req);
  ASSERT_EQ(r.units.size(), kS);
  EXPECT_EQ(r.units[1].kv_head, kPooledHead);
  // bf16 keeps token order: unit row ρ = t·H + h is (s, h, t).
  const auto c = r.container(1);
  const size_t hb = r.units[1].header_bytes;
  const size_t t = 5, h = 2, rho = t * kH + h;
  const uint16_t first =
      static_cast<uint16_t>(c[hb + rho * kD * 2] | (c[hb + rho * kD * 2 + 1] << 8));
  const float want = rows[((1 * kH + h) * kT + t) * kD];
  EXPECT_EQ(first, f32_to_bf16_bits(want));
  EXPECT_EQ(r.decoded.row(1, h, t)[0], bf16_bits_to_f32(first));
}

TEST(CpuExecutor, SameBytesForAnyThreadCount) {
  const auto rows = batch_rows(13);
  std::vector<float> weights(kS * kH * kT);
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = 0.1f + static_cast<float>(i % 7);
  std::vector<float> L(kH * kD * kD, 0.0f), L_inv(kH * kD * kD, 0.0f);
  for (size_t h = 0; h < kH; ++h)
    for (size_t i = 0; i < kD; ++i) {
      L[(h * kD + i) * kD + i] = 2.0f;
      L_inv[(h * kD + i) * kD + i] = 0.5f;
    }
  for (const char* codec : {"kakeya_pca", "besicovitch", "turbo3", "kivi"}) {
    BatchRequest req = request(
        rows, codec,
        std::string(codec) == "kakeya_pca" ? ParamMap{{"weights", "attention"}} : ParamMap{});
    req.row_weights = weights.data();
    req.whiten = L.data();
    req.unwhiten = L_inv.data();
    req.collect_residuals = true;
    const BatchResult one = make_executor("cpu", {1})->run(req);
    for (int threads : {2, 5}) {
      const BatchResult many = make_executor("cpu", {threads})->run(req);
      EXPECT_EQ(one.containers, many.containers) << codec << " threads " << threads;
      EXPECT_EQ(one.decoded.data, many.decoded.data) << codec << " threads " << threads;
      EXPECT_EQ(one.stats.scaled_residuals, many.stats.scaled_residuals) << codec;
      EXPECT_EQ(one.stats.d_eff, many.stats.d_eff) << codec;
    }
    EXPECT_DOUBLE_EQ(one.max_abs_whitened, [&] {
      float mx = 0;
      for (float v : rows) mx = std::max(mx, std::fabs(2.0f * v));
      return static_cast<double>(mx);
    }());
  }
}

TEST(CpuExecutor, Fp8AbsmaxScaleComesFromTheCodec) {
  auto rows = batch_rows(14);
  rows[123] = -7.5f;  // the batch's largest magnitude
  const BatchResult r =
      make_executor("cpu")->run(request(rows, "fp8_e4m3", {{"scale_mode", "absmax"}}));
  EXPECT_FLOAT_EQ(r.layer_scale, 7.5f / 448.0f);
  EXPECT_EQ(r.per_layer_stream_bytes, 4u);
  // Every unit's parameter block holds the same scale.
  for (size_t u = 0; u < r.units.size(); ++u) {
    std::span<const uint8_t> params;
    read_container_header(r.container(u), "unit", &params);
    float scale = 0;
    std::memcpy(&scale, params.data(), 4);
    EXPECT_EQ(scale, r.layer_scale);
  }
  const BatchResult unit = make_executor("cpu")->run(request(rows, "fp8_e4m3"));
  EXPECT_EQ(unit.layer_scale, 1.0f);
}

TEST(CpuExecutor, ErrorsNameTheLowestFailingUnit) {
  auto rows = batch_rows(15);
  rows[((1 * kH + 2) * kT + 9) * kD + 4] = std::numeric_limits<float>::quiet_NaN();  // (s 1, h 2)
  rows[((1 * kH + 1) * kT + 3) * kD] = std::numeric_limits<float>::infinity();       // (s 1, h 1)
  for (int threads : {1, 4}) {
    try {
      make_executor("cpu", {threads})->run(request(rows, "q8_0"));
      FAIL() << "non-finite input was accepted";
    } catch (const NonFiniteInput& e) {
      EXPECT_EQ(std::string(e.what()).rfind("sequence 1, layer 3, kv head 1, stream K: ", 0), 0u)
          << e.what();
    }
  }
  auto big = batch_rows(16);
  big[5] = 1e7f;  // beyond fp16: the q8_0 scale d = 1e7/127 of that block does not fit
  try {
    make_executor("cpu")->run(request(big, "q8_0"));
    FAIL() << "a scale beyond fp16 was accepted";
  } catch (const Fp16Range& e) {
    EXPECT_EQ(std::string(e.what()).rfind("sequence 0, layer 3, kv head 0, stream K: ", 0), 0u)
        << e.what();
  }
}

TEST(CpuExecutor, RefusesMalformedRequestsAndCancels) {
  const auto rows = batch_rows(17);
  BatchRequest empty = request(rows, "bf16");
  empty.tokens = 0;
  EXPECT_THROW(make_executor("cpu")->run(empty), InvalidArgument);
  BatchRequest half = request(rows, "bf16");
  half.whiten = rows.data();
  EXPECT_THROW(make_executor("cpu")->run(half), InvalidArgument);
  EXPECT_THROW(make_executor("cpu")->run(request(rows, "q8_0", {{"rotate", "sideways"}})),
               InvalidArgument);
  std::atomic<bool> cancel{true};
  EXPECT_THROW(make_executor("cpu")->run(request(rows, "bf16"), &cancel), Cancelled);
}

// The metric seam (docs/gpu.md "Metrics on the device"): on the CPU executor it is the CPU metric
// code itself, bit for bit, whatever the thread count.
TEST(CpuExecutor, MetricSeamIsTheCpuMetricCode) {
  const std::vector<float> x = batch_rows(515);
  BatchRequest r = request(x, "q4_0");
  EXPECT_TRUE(make_executor("cpu", {2})->run(r).head_errors.empty());
  r.measure = true;
  for (int threads : {1, 3}) {
    const BatchResult res = make_executor("cpu", {threads})->run(r);
    ASSERT_EQ(res.head_errors.size(), kH);
    for (size_t h = 0; h < kH; ++h) {
      ErrorSums want;
      for (size_t s = 0; s < kS; ++s)
        want.add(&x[(s * kH + h) * kT * kD], res.decoded.row(s, h, 0), kT, kD);
      EXPECT_EQ(std::memcmp(&res.head_errors[h].sq_err, &want.sq_err, sizeof(double)), 0);
      EXPECT_EQ(std::memcmp(&res.head_errors[h].sq_ref, &want.sq_ref, sizeof(double)), 0);
      EXPECT_EQ(std::memcmp(&res.head_errors[h].cos_sum, &want.cos_sum, sizeof(double)), 0);
      EXPECT_EQ(res.head_errors[h].max_abs, want.max_abs);
      EXPECT_EQ(res.head_errors[h].rows, kS * kT);
      EXPECT_GT(res.head_errors[h].sq_err, 0.0);
    }
  }
  // Attention: 2 sequences, 6 query heads over 3 kv heads, every position and a sliding window.
  const size_t Hq = 6;
  std::vector<float> q(kS * Hq * kT * kD), xh = make_executor("cpu", {2})->run(r).decoded.data;
  for (size_t u = 0; u < kS * Hq; ++u)
    rng::synthetic(q.data() + u * kT * kD, kT, kD, 16, 0.05, 9000 + u);
  std::vector<std::vector<uint32_t>> samples;
  for (size_t s = 0; s < kS; ++s)
    for (size_t hq = 0; hq < Hq; ++hq) samples.push_back(attention_query_sample(kT, 20, s, hq));
  AttentionRequest a;
  a.q = q.data();
  a.k = a.v = x.data();
  a.khat = a.vhat = xh.data();
  a.sequences = kS;
  a.q_heads = Hq;
  a.kv_heads = kH;
  a.tokens = kT;
  a.dim = kD;
  a.samples = &samples;
  a.scale = 0.125f;
  a.window = 16;
  const auto units = make_executor("cpu", {3})->attention(a).units;
  ASSERT_EQ(units.size(), kS * kH);
  for (size_t s = 0; s < kS; ++s)
    for (size_t h = 0; h < kH; ++h) {
      AttentionVariants want;
      for (size_t hq = 2 * h; hq < 2 * h + 2; ++hq)
        accumulate_attention(&q[(s * Hq + hq) * kT * kD], &x[(s * kH + h) * kT * kD],
                             &x[(s * kH + h) * kT * kD], &xh[(s * kH + h) * kT * kD],
                             &xh[(s * kH + h) * kT * kD], kT, kD, samples[s * Hq + hq], 0.125f, 16,
                             want);
      const AttentionVariants& got = units[s * kH + h];
      EXPECT_EQ(got.both.queries, 40u);
      EXPECT_EQ(std::memcmp(&got.both.kl_sum, &want.both.kl_sum, sizeof(double)), 0);
      EXPECT_EQ(std::memcmp(&got.k_only.out_rel_err_sum, &want.k_only.out_rel_err_sum, sizeof(double)), 0);
      EXPECT_EQ(std::memcmp(&got.v_only.pooled_err, &want.v_only.pooled_err, sizeof(double)), 0);
      EXPECT_EQ(got.both.top1_hits, want.both.top1_hits);
    }
  // Malformed requests are refused before any work.
  auto bad = [&](auto edit) {
    AttentionRequest b = a;
    std::vector<std::vector<uint32_t>> smp = samples;
    b.samples = &smp;
    edit(b, smp);
    EXPECT_THROW((void)make_executor("cpu", {1})->attention(b), InvalidArgument);
  };
  bad([](AttentionRequest& b, auto&) { b.q_heads = 4; });
  bad([](AttentionRequest& b, auto&) { b.khat = nullptr; });
  bad([](AttentionRequest&, auto& smp) { smp[3].push_back(kT); });
  bad([](AttentionRequest&, auto& smp) { std::swap(smp[1][0], smp[1][1]); });
  bad([](AttentionRequest&, auto& smp) { smp.pop_back(); });
}
