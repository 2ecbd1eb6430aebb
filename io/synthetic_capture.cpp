// The synthetic demo capture.
//
// How the data is made (all randomness from the project RNG, codec/rng.h; every stream has its own
// key derived from the seed, the layer, the head and a stream tag, so the result does not depend on
// evaluation order). Per layer l and KV head h, with D = head_dim, r = D/4 and a layer scale
// c_l = 0.8 + 0.4·l/(L-1):
//   keys before RoPE   k_pre[t] = μ + Σ_i σ_i z_i[t] u_i + 0.08·c_l·ε + heavy-tailed channels
//     u_1..u_r   an orthonormal basis (Gram-Schmidt of Gaussian vectors): the dominant subspace;
//     σ_i        2.5·c_l·i^(-0.8), a decaying spectrum (low-rank, anisotropic);
//     z_i[t]     AR(1) factors over tokens (ρ = 0.95 for the first r/8, 0.6 for the rest), so
//                nearby tokens have similar keys;
//     μ          a mean with 4 large channels (±1.5..3.5·c_l), as real keys have;
//     ε          isotropic N(0, 1) noise on all D dims;
//     2 channels carry extra Student-t (3 degrees of freedom) noise, scale 1.2·c_l, clipped at
//                ±12·c_l: heavy-tailed outlier channels.
//   attention sink     token 0 of every sequence: k_pre[0] = μ + 6·‖typical row‖·s, with s a unit
//                vector in the lowest-frequency RoPE pairs, so the sink survives rotation.
//   keys after RoPE    k = RoPE(k_pre), half_split, θ = 10000, positions 0..T-1 (codec/rope.h).
//   values             v[t] = W (λ ∘ x[t]) + 0.05·ε with W a Gaussian D×D mixing matrix / √D,
//                λ_i = 0.6·i^(-0.25) (much flatter than the keys: close to isotropic), x ~ N(0, I);
//                the sink token's value is scaled by 0.2 (sinks carry little value).
//   queries (q_pre)    per query head g of the GQA group of h: q[t] = a_g·s + Σ_i 1.2·i^(-0.5)
//                y_i[t] u_i + 0.1·ε with y_i[t] = 0.5 z_i[t] + 0.87 N(0,1): the queries live in the
//                keys' principal subspace and correlate with nearby keys (local attention), and
//                a_g ∈ [0.5, 1.5) points them at the sink.
//   tokens             BOS (1) then uniform ids in 3..511; positions 0..T-1.
// Everything is stored as float16, chunked, uncompressed; all values stay far below 65504.
#include "io/synthetic_capture.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <numeric>
#include <vector>

#include "base/errors.h"
#include "codec/math/rope.h"
#include "codec/format/tensor.h"
#include "io/capture.h"

namespace kvwb::io {

namespace {

namespace rng = codec::rng;

constexpr uint64_t kTagDemo = 0x44454D4F5F4B5643ull;  // "DEMO_KVC"
constexpr double kRopeTheta = 10000.0;

enum Stream : uint64_t {
  kBasis = 1,
  kMean,
  kHeavyPick,
  kSinkDir,
  kKeyLatent,
  kKeyNoise,
  kKeyHeavy,
  kValueMix,
  kValueLatent,
  kValueNoise,
  kQueryLatent,
  kQueryNoise,
  kQuerySink,
  kTokens
};

/// Key of one random stream: seed, layer, head and stream tag mixed through SplitMix64.
uint64_t stream_key(uint64_t seed, int layer, int head, Stream s) {
  uint64_t k = rng::mix64(seed ^ kTagDemo);
  k = rng::mix64(k + static_cast<uint64_t>(layer) * rng::kGamma);
  k = rng::mix64(k + static_cast<uint64_t>(head + 1) * 0xD1B54A32D192ED03ull);
  return rng::mix64(k + static_cast<uint64_t>(s));
}

/// Sequential draws from one counter-based stream.
struct Draws {
  uint64_t key;
  uint64_t i = 0;
  explicit Draws(uint64_t k) : key(k) {}
  float normal() { return rng::normal(key, i++); }
  double uniform() { return rng::u01c(rng::splitmix(key, i++)); }
  uint64_t bits() { return rng::splitmix(key, i++); }
};

/// r orthonormal rows of length d (Gram-Schmidt of Gaussian vectors), row-major [r, d].
std::vector<float> orthonormal_rows(size_t r, size_t d, Draws& g) {
  std::vector<double> b(r * d);
  for (size_t i = 0; i < r; ++i) {
    double* v = b.data() + i * d;
    for (;;) {
      for (size_t j = 0; j < d; ++j) v[j] = g.normal();
      for (size_t k = 0; k < i; ++k) {
        const double* u = b.data() + k * d;
        const double dot = std::inner_product(v, v + d, u, 0.0);
        for (size_t j = 0; j < d; ++j) v[j] -= dot * u[j];
      }
      const double n = std::sqrt(std::inner_product(v, v + d, v, 0.0));
      if (n > 1e-6) {
        for (size_t j = 0; j < d; ++j) v[j] /= n;
        break;
      }
    }
  }
  return std::vector<float>(b.begin(), b.end());
}

/// Student-t with 3 degrees of freedom (normal over the root of a scaled chi-square).
float student_t3(Draws& g) {
  const double n = g.normal();
  const double a = g.normal(), b = g.normal(), c = g.normal();
  const double chi = std::max((a * a + b * b + c * c) / 3.0, 1e-6);
  return static_cast<float>(n / std::sqrt(chi));
}

/// The per-(layer, KV head) structure shared by keys and queries.
struct HeadModel {
  size_t r = 0;
  std::vector<float> basis;  // [r, D]
  std::vector<float> sigma;  // [r]
  std::vector<float> rho;    // [r]
  std::vector<float> mean;   // [D]
  std::vector<float> sink;   // [D], unit
  size_t heavy[2] = {0, 0};
  float noise = 0, heavy_scale = 0, sink_norm = 0;
};

HeadModel make_head(const DemoCaptureOptions& o, int l, int h) {
  const size_t d = static_cast<size_t>(o.head_dim);
  const double cl = 0.8 + 0.4 * (o.layers > 1 ? static_cast<double>(l) / (o.layers - 1) : 0.0);
  HeadModel m;
  m.r = std::max<size_t>(2, d / 4);
  Draws gb(stream_key(o.seed, l, h, kBasis));
  m.basis = orthonormal_rows(m.r, d, gb);
  m.sigma.resize(m.r);
  m.rho.resize(m.r);
  for (size_t i = 0; i < m.r; ++i) {
    m.sigma[i] = static_cast<float>(2.5 * cl * std::pow(static_cast<double>(i + 1), -0.8));
    m.rho[i] = i < std::max<size_t>(1, m.r / 8) ? 0.95f : 0.6f;
  }
  m.noise = static_cast<float>(0.08 * cl);
  m.heavy_scale = static_cast<float>(1.2 * cl);

  m.mean.assign(d, 0.0f);
  Draws gm(stream_key(o.seed, l, h, kMean));
  for (int c = 0; c < 4; ++c) {
    const size_t ch = static_cast<size_t>(gm.bits() % d);
    const double sign = gm.uniform() < 0.5 ? -1.0 : 1.0;
    m.mean[ch] = static_cast<float>(sign * (1.5 + 2.0 * gm.uniform()) * cl);
  }
  Draws gh(stream_key(o.seed, l, h, kHeavyPick));
  m.heavy[0] = static_cast<size_t>(gh.bits() % d);
  do m.heavy[1] = static_cast<size_t>(gh.bits() % d);
  while (m.heavy[1] == m.heavy[0]);

  // Sink direction in the lowest-frequency quarter of the half_split pairs (j, j + D/2).
  m.sink.assign(d, 0.0f);
  Draws gs(stream_key(o.seed, l, h, kSinkDir));
  const size_t half = d / 2;
  const size_t lo = half - std::max<size_t>(1, half / 4);
  double n2 = 0;
  for (size_t j = lo; j < half; ++j) {
    m.sink[j] = gs.normal();
    m.sink[j + half] = gs.normal();
    n2 += double(m.sink[j]) * m.sink[j] + double(m.sink[j + half]) * m.sink[j + half];
  }
  const float inv = static_cast<float>(1.0 / std::sqrt(std::max(n2, 1e-12)));
  for (float& v : m.sink) v *= inv;
  double typical2 = static_cast<double>(d) * m.noise * m.noise;
  for (float s : m.sigma) typical2 += double(s) * s;
  for (float mu : m.mean) typical2 += double(mu) * mu;
  m.sink_norm = static_cast<float>(6.0 * std::sqrt(typical2));
  return m;
}

void fill_keys(const DemoCaptureOptions& o, int l, int h, const HeadModel& m, codec::Tensor4& kp,
               std::vector<float>& latent /* [S, T, r] */) {
  const size_t d = kp.d, T = kp.t;
  Draws gz(stream_key(o.seed, l, h, kKeyLatent));
  Draws ge(stream_key(o.seed, l, h, kKeyNoise));
  Draws gt(stream_key(o.seed, l, h, kKeyHeavy));
  std::vector<float> coef(m.r);
  for (size_t s = 0; s < kp.s; ++s) {
    float* z = latent.data() + s * T * m.r;
    for (size_t t = 0; t < T; ++t) {
      float* zt = z + t * m.r;
      for (size_t i = 0; i < m.r; ++i) {
        const float e = gz.normal();
        zt[i] = t <= 1
                    ? e
                    : m.rho[i] * z[(t - 1) * m.r + i] + std::sqrt(1.0f - m.rho[i] * m.rho[i]) * e;
      }
      float* row = kp.row(s, static_cast<size_t>(h), t);
      if (t == 0) {
        for (size_t j = 0; j < d; ++j) row[j] = m.mean[j] + m.sink_norm * m.sink[j];
        continue;
      }
      for (size_t j = 0; j < d; ++j) row[j] = m.mean[j] + m.noise * ge.normal();
      for (size_t i = 0; i < m.r; ++i) coef[i] = m.sigma[i] * zt[i];
      for (size_t i = 0; i < m.r; ++i) {
        const float* u = m.basis.data() + i * d;
        const float c = coef[i];
        for (size_t j = 0; j < d; ++j) row[j] += c * u[j];
      }
      for (size_t ch : m.heavy)
        row[ch] += m.heavy_scale * std::clamp(student_t3(gt), -10.0f, 10.0f);
    }
  }
}

void fill_values(const DemoCaptureOptions& o, int l, int h, codec::Tensor4& v) {
  const size_t d = v.d;
  Draws gw(stream_key(o.seed, l, h, kValueMix));
  std::vector<float> w(d * d);  // [D out, D in]
  const float ws = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  for (float& x : w) x = ws * gw.normal();
  std::vector<float> lambda(d);
  for (size_t i = 0; i < d; ++i)
    lambda[i] = static_cast<float>(0.6 * std::pow(static_cast<double>(i + 1), -0.25));
  Draws gx(stream_key(o.seed, l, h, kValueLatent));
  Draws ge(stream_key(o.seed, l, h, kValueNoise));
  std::vector<float> x(d);
  for (size_t s = 0; s < v.s; ++s)
    for (size_t t = 0; t < v.t; ++t) {
      for (size_t i = 0; i < d; ++i) x[i] = lambda[i] * gx.normal();
      float* row = v.row(s, static_cast<size_t>(h), t);
      for (size_t j = 0; j < d; ++j) {
        const float* wr = w.data() + j * d;
        float acc = 0.05f * ge.normal();
        for (size_t i = 0; i < d; ++i) acc += wr[i] * x[i];
        row[j] = t == 0 ? 0.2f * acc : acc;
      }
    }
}

void fill_queries(const DemoCaptureOptions& o, int l, int kv_head, const HeadModel& m,
                  const std::vector<float>& latent, codec::Tensor4& q) {
  const size_t d = q.d, T = q.t;
  const int group = o.q_heads / o.kv_heads;
  std::vector<float> c(m.r), coef(m.r);
  for (size_t i = 0; i < m.r; ++i)
    c[i] = static_cast<float>(1.2 * std::pow(static_cast<double>(i + 1), -0.5));
  const float mix = 0.5f, fresh = std::sqrt(1.0f - mix * mix);
  for (int gi = 0; gi < group; ++gi) {
    const int g = kv_head * group + gi;
    Draws ga(stream_key(o.seed, l, g, kQuerySink));
    const float a = static_cast<float>(0.5 + ga.uniform());
    Draws gy(stream_key(o.seed, l, g, kQueryLatent));
    Draws ge(stream_key(o.seed, l, g, kQueryNoise));
    for (size_t s = 0; s < q.s; ++s)
      for (size_t t = 0; t < T; ++t) {
        const float* z = latent.data() + (s * T + t) * m.r;
        for (size_t i = 0; i < m.r; ++i) coef[i] = c[i] * (mix * z[i] + fresh * gy.normal());
        float* row = q.row(s, static_cast<size_t>(g), t);
        for (size_t j = 0; j < d; ++j) row[j] = a * m.sink[j] + 0.1f * ge.normal();
        for (size_t i = 0; i < m.r; ++i) {
          const float* u = m.basis.data() + i * d;
          for (size_t j = 0; j < d; ++j) row[j] += coef[i] * u[j];
        }
      }
  }
}

}  // namespace

void validate_demo_options(const DemoCaptureOptions& o) {
  auto bad = [](const std::string& what) { throw InvalidArgument("synthetic capture: " + what); };
  if (o.layers < 1 || o.layers > 1024)
    bad("layers " + std::to_string(o.layers) + " must be in 1..1024");
  if (o.kv_heads < 1 || o.kv_heads > 1024)
    bad("kv_heads " + std::to_string(o.kv_heads) + " must be in 1..1024");
  if (o.q_heads < 1 || o.q_heads > 4096)
    bad("q_heads " + std::to_string(o.q_heads) + " must be in 1..4096");
  if (o.q_heads % o.kv_heads != 0)
    bad("q_heads " + std::to_string(o.q_heads) + " is not a multiple of kv_heads " +
        std::to_string(o.kv_heads));
  if (o.head_dim < 8 || o.head_dim > 1024 || o.head_dim % 2 != 0)
    bad("head_dim " + std::to_string(o.head_dim) + " must be even and in 8..1024");
  if (o.seqs < 1 || o.seqs > 65536) bad("seqs " + std::to_string(o.seqs) + " must be in 1..65536");
  if (o.tokens < 1 || o.tokens > (1 << 24))
    bad("tokens " + std::to_string(o.tokens) + " must be in 1..16777216");
  const double per_layer =
      static_cast<double>(o.seqs) * o.tokens * o.head_dim * (3.0 * o.kv_heads + o.q_heads);
  if (per_layer * o.layers > static_cast<double>(1ull << 30))
    bad("the capture would hold " + std::to_string(per_layer * o.layers) +
        " values; at most 2^30 are allowed");
}

void write_demo_capture(const std::string& path, const DemoCaptureOptions& o, JobControl* job) {
  validate_demo_options(o);
  const size_t S = static_cast<size_t>(o.seqs), T = static_cast<size_t>(o.tokens);
  const size_t D = static_cast<size_t>(o.head_dim);
  const size_t Hkv = static_cast<size_t>(o.kv_heads), Hq = static_cast<size_t>(o.q_heads);

  io::CaptureInfo info;
  info.model_name = kDemoModelName;
  info.num_layers = o.layers;
  info.num_query_heads = o.q_heads;
  info.num_kv_heads = o.kv_heads;
  info.head_dim = o.head_dim;
  info.rope_style = codec::RopeStyle::kHalfSplit;
  info.rope_theta = kRopeTheta;
  info.rotary_dim = o.head_dim;
  info.qk_norm = false;
  info.source_dtype = "float32";
  info.text_source = kDemoTextSource;
  info.sequences = o.seqs;
  info.tokens = o.tokens;

  io::CaptureWriteOptions wo;
  wo.float16 = true;
  wo.gzip_level = 0;  // noise-like data compresses by ~15% only; gzip would double the time
  io::CaptureWriter writer(path, info, wo);

  std::vector<int32_t> tokens(S * T), positions(S * T);
  Draws gt(stream_key(o.seed, 0, 0, kTokens));
  for (size_t s = 0; s < S; ++s)
    for (size_t t = 0; t < T; ++t) {
      positions[s * T + t] = static_cast<int32_t>(t);
      tokens[s * T + t] = t == 0 ? 1 : static_cast<int32_t>(3 + gt.bits() % 509);
    }
  writer.write_tokens(tokens);
  writer.write_positions(positions);

  const codec::RopeParams rope = info.rope();
  for (int l = 0; l < o.layers; ++l) {
    if (job && job->cancel.load())
      throw Cancelled("synth cancelled after " + std::to_string(l) + " of " + std::to_string(o.layers) +
                      " layers; nothing was written to " + path);
    if (job && job->progress) job->progress(static_cast<size_t>(l), static_cast<size_t>(o.layers), "");
    codec::Tensor4 kp(S, Hkv, T, D), v(S, Hkv, T, D), q(S, Hq, T, D);
    for (int h = 0; h < o.kv_heads; ++h) {
      const HeadModel m = make_head(o, l, h);
      std::vector<float> latent(S * T * m.r);
      fill_keys(o, l, h, m, kp, latent);
      fill_values(o, l, h, v);
      fill_queries(o, l, h, m, latent, q);
    }
    codec::Tensor4 k = kp;
    for (size_t s = 0; s < S; ++s)
      for (size_t h = 0; h < Hkv; ++h)
        codec::apply_rope(k.row(s, h, 0), T, positions.data() + s * T, rope, false);
    writer.write_layer(l, io::TensorKind::kKPre, kp);
    writer.write_layer(l, io::TensorKind::kK, k);
    writer.write_layer(l, io::TensorKind::kV, v);
    writer.write_layer(l, io::TensorKind::kQPre, q);
  }
  writer.commit();
}

bool is_synthetic_capture(const std::string& model_name, const std::string& text_source) {
  auto starts_with_synthetic = [](const std::string& s) {
    static const std::string kWord = "synthetic";
    if (s.size() < kWord.size()) return false;
    for (size_t i = 0; i < kWord.size(); ++i)
      if (std::tolower(static_cast<unsigned char>(s[i])) != kWord[i]) return false;
    return true;
  };
  return starts_with_synthetic(model_name) || starts_with_synthetic(text_source);
}

}  // namespace kvwb::io
