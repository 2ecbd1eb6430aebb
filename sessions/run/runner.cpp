#include "sessions/run/runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <set>
#include <sstream>
#include <sys/stat.h>

#include "base/errors.h"
#include "base/thread_pool.h"
#include "codec/codec.h"
#include "codec/executor.h"
#include "codec/format/half.h"
#include "codec/math/metrics.h"
#include "codec/math/rope.h"
#include "codec/traits.h"
#include "io/atomic_file.h"
#include "io/durable.h"
#include "sessions/run/backends.h"

namespace kvwb::sessions {

using codec::Tensor4;
using nlohmann::json;

namespace {
/// The largest power of two <= min(cap, tokens), at least 8.
uint32_t fitted_block(uint32_t cap, int64_t tokens) {
  uint32_t b = 8;
  while (b * 2 <= cap && static_cast<int64_t>(b) * 2 <= tokens) b *= 2;
  return b;
}
}  // namespace

RunConfig workbench_default_config(int tokens) {
  RunConfig c;
  c.block_size = std::min<uint32_t>(c.block_size, fitted_block(c.block_size, tokens));
  return c;
}

std::string fit_block_size(RunConfig& cfg, const io::CaptureInfo& info) {
  const int64_t tokens = info.tokens;
  if (static_cast<int64_t>(cfg.block_size) <= tokens) return "";
  bool block_codec = false;
  for (const LayerPlan& lp : plan_layers(info, cfg))
    if (!lp.boundary && (lp.k.traits().block_codec || lp.v.traits().block_codec)) block_codec = true;
  if (!block_codec) return "";
  const uint32_t before = cfg.block_size;
  cfg.block_size = fitted_block(before, tokens);
  return "block_size lowered from " + std::to_string(before) + " to " + std::to_string(cfg.block_size) +
         ": the capture has " + std::to_string(tokens) +
         " tokens per sequence, and a larger block would keep every row in the bf16 hot tail (ratio 1.0); "
         "--block-size or a configuration file sets it";
}

double RunResult::ratio_vs_bf16() const {
  return total_bytes ? static_cast<double>(bf16_bytes) / static_cast<double>(total_bytes) : NAN;
}

namespace {

std::vector<float> load_centroids(const std::string& path, const std::string& what) {
  const auto bytes = io::read_file(path);
  if (bytes.empty() || bytes.size() % 4 != 0)
    throw FormatError(path + ": " + what + " centroid file must hold little-endian f32 values (size " +
                      std::to_string(bytes.size()) + " is not a positive multiple of 4)");
  std::vector<float> t(bytes.size() / 4);
  std::memcpy(t.data(), bytes.data(), bytes.size());
  return t;
}

/// The codec of a stream as executors build it (calibrated centroids loaded). Validates it by
/// building it once, so that a bad parameter fails here with `what` in the message.
codec::CodecSpec codec_spec(const StreamConfig& sc, size_t head_dim, const std::string& what) {
  codec::CodecSpec spec{sc.codec, sc.params, {}};
  if (!sc.centroids_file.empty()) {
    if (!codec::codec_traits(sc.codec).centroid_table)
      throw InvalidArgument(
          what + ": centroids_file applies to codecs with a centroid table (kakeya_pca), not " +
          sc.codec);
    spec.resources.centroid_table = load_centroids(sc.centroids_file, what);
  }
  try {
    (void)codec::make_codec(spec.name, spec.params, head_dim, spec.resources);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(what + ": " + e.what());
  } catch (const Unsupported& e) {
    throw Unsupported(what + ": " + e.what());
  }
  return spec;
}

std::string stream_name(codec::Stream s) { return s == codec::Stream::kK ? "K" : "V"; }

/// Per-layer data shared by both streams.
struct LayerData {
  int layer = 0;
  Tensor4 k;        // K in the K stream's domain
  Tensor4 v;
  bool k_pre = true;       // k holds pre-RoPE keys
  bool k_derived = false;  // k was derived by (inverse) RoPE
  const std::vector<codec::WhiteningFactor>* whitening = nullptr;  // used by the codec
  const std::vector<codec::WhiteningFactor>* factors = nullptr;    // available for whitened metrics
  std::vector<std::vector<double>> key_weights;  // [S*H_kv][T] attention weights when needed
};

void round_bf16_tensor(const Tensor4& in, Tensor4& out) {
  out = in;
  for (auto& v : out.data) v = codec::round_bf16(v);
}

/// Encodes and decodes one stream of one layer through the executor into `res`, writing the
/// reconstruction (pre-whitening domain).
void run_stream(const codec::Executor& exec, const io::CaptureInfo& info, const RunConfig& cfg,
                const StreamConfig& sc, codec::Stream stream, LayerData& ld, const Tensor4& x,
                Tensor4& recon, StreamResult& res, const RunOptions& opt,
                const std::atomic<bool>* cancel) {
  const size_t H = x.h, D = x.d;
  const std::string what = "layer " + std::to_string(ld.layer) + " " + stream_name(stream);
  const codec::CodecTraits& traits = codec::codec_traits(sc.codec);
  codec::BatchRequest req;
  req.codec = codec_spec(sc, D, what + " codec " + sc.codec);
  req.rows = x.data.data();
  req.sequences = x.s;
  req.heads = H;
  req.tokens = x.t;
  req.dim = D;
  req.layer = static_cast<uint32_t>(ld.layer);
  req.n_kv_heads = static_cast<uint16_t>(info.num_kv_heads);
  req.stream = stream;
  req.block_rows = traits.block_codec && cfg.block_rows == codec::BlockRows::kPooledHeads
                       ? codec::BlockRows::kPooledHeads
                       : codec::BlockRows::kPerHead;
  req.block_size = cfg.block_size;
  req.collect_residuals = opt.collect_residuals;
  req.measure = true;  // reconstruction sums where the decoded rows are (the executor's backend)
  // Q-preconditioning factors of every kv head, [H, D, D] each.
  std::vector<float> L, L_inv;
  if (stream == codec::Stream::kK && ld.whitening != nullptr) {
    for (size_t h = 0; h < H; ++h) {
      L.insert(L.end(), (*ld.whitening)[h].L.begin(), (*ld.whitening)[h].L.end());
      L_inv.insert(L_inv.end(), (*ld.whitening)[h].L_inv.begin(), (*ld.whitening)[h].L_inv.end());
    }
    req.whiten = L.data();
    req.unwhiten = L_inv.data();
  }
  if (stream == codec::Stream::kK) {
    if (ld.k_pre) req.domain_flags |= codec::kDomainPreRope;
    if (ld.k_pre && ld.k_derived) req.domain_flags |= codec::kDomainDerivedPre;
  }
  std::vector<float> weights;  // [S, H, T]
  if (!ld.key_weights.empty() && traits.row_weights) {
    for (const auto& w : ld.key_weights)
      for (double v : w) weights.push_back(static_cast<float>(v));
    req.row_weights = weights.data();
  }
  codec::BatchResult out = exec.run(req, cancel);
  recon = std::move(out.decoded);
  res.max_abs_whitened = out.max_abs_whitened;
  res.bytes += out.reported_bytes + out.per_layer_stream_bytes;
  res.reference_bytes += out.reference_bytes + out.per_layer_stream_bytes;
  res.tail_bytes += out.tail_bytes;
  res.d_eff = std::move(out.stats.d_eff);
  res.outliers += out.stats.outliers;
  res.clipped += out.stats.clipped;
  res.coded_values += out.stats.coded_values;
  if (opt.collect_residuals) res.scaled_residuals = std::move(out.stats.scaled_residuals);
  if (out.head_errors.size() == H) {
    res.heads = std::move(out.head_errors);
    for (const auto& h : res.heads) res.err.merge(h);
  }
}

/// Reconstruction sums of a stream, unless its executor already returned them (run_stream).
void measure(const Tensor4& x, const Tensor4& recon, StreamResult& res) {
  if (!res.heads.empty()) return;
  res.heads.assign(x.h, {});
  for (size_t h = 0; h < x.h; ++h)
    for (size_t s = 0; s < x.s; ++s) res.heads[h].add(x.row(s, h, 0), recon.row(s, h, 0), x.t, x.d);
  for (const auto& h : res.heads) res.err.merge(h);
}

/// Whitened-domain K error (metrics.md §1): ‖(k − k̂)·L‖² with pre-RoPE rows.
void measure_whitened(const LayerData& ld, const Tensor4& kpre, const Tensor4& kpre_hat, StreamResult& res) {
  if (!ld.factors) return;
  const size_t T = kpre.t, D = kpre.d;
  std::vector<float> a(T * D), b(T * D);
  for (size_t h = 0; h < kpre.h; ++h) {
    for (size_t s = 0; s < kpre.s; ++s) {
      codec::matmul_rows(kpre.row(s, h, 0), T, D, (*ld.factors)[h].L.data(), a.data());
      codec::matmul_rows(kpre_hat.row(s, h, 0), T, D, (*ld.factors)[h].L.data(), b.data());
      res.heads[h].add_whitened(a.data(), b.data(), T, D);
      res.err.add_whitened(a.data(), b.data(), T, D);
    }
  }
}

void rope_tensor(Tensor4& t, const std::vector<int32_t>& positions, const codec::RopeParams& p, bool inverse) {
  for (size_t s = 0; s < t.s; ++s)
    for (size_t h = 0; h < t.h; ++h) codec::apply_rope(t.row(s, h, 0), t.t, positions.data() + s * t.t, p, inverse);
}

/// The executor of a run over `plan`. `auto` takes CUDA only when CUDA runs every codec the plan
/// uses (otherwise the CPU, and *note says which codec kept it there); `cuda` is given as asked
/// (the CUDA executor refuses a codec it does not run with a typed error).
std::unique_ptr<codec::Executor> executor_for(const RunConfig& cfg,
                                              const std::vector<LayerPlan>& plan, size_t head_dim,
                                              std::string* note) {
  if (cfg.backend == Backend::kAuto &&
      codec::resolve_executor(backend_name(Backend::kAuto)) == backend_name(Backend::kCuda)) {
    for (const auto& b : codec::describe_backends()) {
      if (b.name != backend_name(Backend::kCuda)) continue;
      for (const LayerPlan& lp : plan) {
        if (lp.boundary) continue;
        for (const StreamPlan* sp : {&lp.k, &lp.v}) {
          const std::string why =
              codec::backend_refusal(b.name, sp->config.codec, sp->config.params, head_dim);
          if (!why.empty()) {
            if (note)
              *note = "backend auto chose cpu: " + why + " (layer " + std::to_string(lp.layer) + ")";
            return codec::make_executor(backend_name(Backend::kCpu), {cfg.threads});
          }
        }
      }
    }
  }
  return codec::make_executor(backend_name(cfg.backend), {cfg.threads}, note);
}

// ---- result cache entries (result_cache.h): keys and payloads ----

std::string sha_of_bytes(const void* p, size_t n) {
  return io::sha256_hex(std::span<const uint8_t>(static_cast<const uint8_t*>(p), n));
}

/// Canonical JSON of a stream's settings (codec parameter defaults filled in).
json canonical_stream(const StreamConfig& sc, bool is_k) {
  RunConfig c;
  (is_k ? c.k : c.v) = sc;
  return run_config_to_json(c)[is_k ? "k" : "v"];
}

class Writer {
 public:
  template <class T>
  void pod(const T& v) {
    const char* p = reinterpret_cast<const char*>(&v);
    out.append(p, sizeof(T));
  }
  void str(const std::string& v) {
    pod<uint64_t>(v.size());
    out += v;
  }
  template <class T>
  void vec(const std::vector<T>& v) {
    pod<uint64_t>(v.size());
    out.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  }
  // field(): one spelling per field type for writing and reading (Reader::field) alike.
  template <class T>
  void field(const T& v) {
    pod(v);
  }
  void field(const std::string& v) { str(v); }
  template <class T>
  void field(const std::vector<T>& v) {
    vec(v);
  }
  void field(const bool& v) { pod<uint8_t>(v); }
  void field(const std::optional<codec::KDomain>& v) {
    pod<int32_t>(v ? static_cast<int32_t>(*v) : -1);
  }
  std::string out;
};

class Reader {
 public:
  explicit Reader(const std::string& s) : s_(s) {}
  template <class T>
  T pod() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, s_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string str() {
    const uint64_t n = pod<uint64_t>();
    need(n);
    std::string v = s_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  template <class T>
  std::vector<T> vec() {
    const uint64_t n = pod<uint64_t>();
    if (n > (s_.size() - pos_) / sizeof(T)) throw FormatError("result cache entry: vector beyond its end");
    std::vector<T> v(n);
    std::memcpy(v.data(), s_.data() + pos_, n * sizeof(T));
    pos_ += n * sizeof(T);
    return v;
  }
  // field(): reads what Writer::field wrote for the same type.
  template <class T>
  void field(T& v) {
    v = pod<T>();
  }
  void field(std::string& v) { v = str(); }
  template <class T>
  void field(std::vector<T>& v) {
    v = vec<T>();
  }
  void field(bool& v) { v = pod<uint8_t>() != 0; }
  void field(std::optional<codec::KDomain>& v) {
    const int32_t kd = pod<int32_t>();
    if (kd >= 0) v = static_cast<codec::KDomain>(kd);
  }
  bool done() const { return pos_ == s_.size(); }

 private:
  void need(size_t n) const {
    if (n > s_.size() - pos_) throw FormatError("result cache entry: truncated");
  }
  const std::string& s_;
  size_t pos_ = 0;
};

constexpr uint32_t kStreamEntry = 0x53524331;  // "SRC1"
constexpr uint32_t kLayerEntry = 0x4c524331;   // "LRC1"

/// The cached fields of a StreamResult in their stored order: one list for writing (Writer, `r`
/// const) and reading (Reader), so the two directions cannot drift apart.
template <class IO, class Result>
void stream_fields(IO& io, Result& r) {
  io.field(r.codec);
  io.field(r.k_domain);  // int32, -1 = none
  io.field(r.failed);    // u8
  io.field(r.error_code);
  io.field(r.error_message);
  io.field(r.bytes);
  io.field(r.reference_bytes);
  io.field(r.tail_bytes);
  io.field(r.bf16_bytes);
  io.field(r.values);
  io.field(r.err);
  io.field(r.heads);
  io.field(r.attn);
  io.field(r.has_attn);  // u8
  io.field(r.max_abs_whitened);
  io.field(r.d_eff);
  io.field(r.outliers);
  io.field(r.clipped);
  io.field(r.coded_values);
  io.field(r.scaled_residuals);
}

std::string serialize_stream(const StreamResult& r) {
  Writer w;
  w.pod(kStreamEntry);
  stream_fields(w, r);
  return w.out;
}

/// Reads one cache entry: its `tag`, then what `read` takes from the Reader, and nothing after
/// it. An absent, foreign, truncated or overlong entry is std::nullopt (a cache miss).
template <class T, class ReadFn>
std::optional<T> read_entry(const std::optional<std::string>& bytes, uint32_t tag, ReadFn read) {
  if (!bytes) return std::nullopt;
  try {
    Reader rd(*bytes);
    if (rd.pod<uint32_t>() != tag) return std::nullopt;
    T v = read(rd);
    if (!rd.done()) return std::nullopt;
    return v;
  } catch (const FormatError&) {
    return std::nullopt;
  }
}

std::optional<StreamResult> deserialize_stream(const std::optional<std::string>& bytes) {
  return read_entry<StreamResult>(bytes, kStreamEntry, [](Reader& rd) {
    StreamResult r;
    stream_fields(rd, r);
    return r;
  });
}

struct LayerAttentionEntry {
  codec::AttentionSums attn;
  std::vector<codec::AttentionSums> heads;
};

std::string serialize_layer_attention(const LayerResult& lr) {
  Writer w;
  w.pod(kLayerEntry);
  w.pod(lr.attn);
  w.vec(lr.attn_heads);
  return w.out;
}

std::optional<LayerAttentionEntry> deserialize_layer_attention(const std::optional<std::string>& bytes) {
  return read_entry<LayerAttentionEntry>(bytes, kLayerEntry, [](Reader& rd) {
    LayerAttentionEntry e;
    e.attn = rd.pod<codec::AttentionSums>();
    e.heads = rd.vec<codec::AttentionSums>();
    return e;
  });
}

/// Appends a finished layer to the run: its failure and the byte totals of its K and V streams.
void add_layer(RunResult& r, LayerResult&& lr) {
  r.failed = r.failed || lr.k.failed || lr.v.failed;
  for (const StreamResult* sr : {&lr.k, &lr.v}) {
    r.total_bytes += sr->bytes;
    r.bf16_bytes += sr->bf16_bytes;
    r.tail_bytes += sr->tail_bytes;
    r.reference_bytes += sr->reference_bytes;
  }
  r.layers.push_back(std::move(lr));
}

/// sha256 of the Q-preconditioning factors of one layer (L of every kv head), "" when none.
std::string factors_sha(const std::vector<codec::WhiteningFactor>* f) {
  if (!f) return "";
  std::vector<float> all;
  for (const auto& w : *f) all.insert(all.end(), w.L.begin(), w.L.end());
  return sha_of_bytes(all.data(), all.size() * sizeof(float));
}

}  // namespace

LayerRoundTrip roundtrip_layer(const io::CaptureInfo& info, const RunConfig& cfg,
                               const Whitening& wh, const LayerPlan& lp, const Tensor4& k_pre,
                               const Tensor4& v, const std::vector<int32_t>& positions,
                               const codec::Executor* executor) {
  std::unique_ptr<codec::Executor> own;
  if (!executor) {
    own = executor_for(cfg, {lp}, static_cast<size_t>(info.head_dim), nullptr);
    executor = own.get();
  }
  LayerRoundTrip out;
  const int layer = lp.layer;
  const bool boundary = lp.boundary;
  LayerData ld;
  ld.layer = layer;
  ld.k_pre = lp.k_domain == codec::KDomain::kPreRope;
  ld.k = k_pre;
  const codec::RopeParams rope = info.rope();
  if (!ld.k_pre) rope_tensor(ld.k, positions, rope, false);
  ld.v = v;
  auto fit = wh.factors.find(layer);
  if (fit != wh.factors.end()) {
    ld.factors = &fit->second;
    if (!boundary && !wh.skipped.count(layer) && ld.k_pre) ld.whitening = &fit->second;
  }
  RunOptions opt;
  for (int si = 0; si < 2; ++si) {
    const bool is_k = si == 0;
    const StreamConfig& sc = lp.stream(is_k).config;
    const Tensor4& x = is_k ? ld.k : ld.v;
    Tensor4& rec = is_k ? out.k_pre_hat : out.v_hat;
    StreamResult& res = is_k ? out.k : out.v;
    res.codec = sc.codec;
    if (is_k) res.k_domain = lp.k_domain;
    res.values = x.size();
    res.bf16_bytes = 2 * x.size();
    if (boundary) {
      round_bf16_tensor(x, rec);
      res.bytes = res.reference_bytes = 2 * x.size();
    } else {
      run_stream(*executor, info, cfg, sc, is_k ? codec::Stream::kK : codec::Stream::kV, ld, x, rec, res, opt,
                 nullptr);
    }
    measure(x, rec, res);
  }
  if (!ld.k_pre) rope_tensor(out.k_pre_hat, positions, rope, true);
  return out;
}

RunResult run_config(const std::string& capture_path, const RunConfig& cfg, const RunOptions& opt, JobControl* job,
                     RunResult* partial) {
  const auto t_start = std::chrono::steady_clock::now();
  std::string backend_note;
  io::CaptureReader cap(capture_path);
  const auto& info = cap.info();
  const size_t D = static_cast<size_t>(info.head_dim);
  const std::vector<LayerPlan> layers = plan_layers(info, cfg);
  std::unique_ptr<codec::Executor> own_exec;
  if (!opt.executor) own_exec = executor_for(cfg, layers, D, &backend_note);
  const codec::Executor* exec = opt.executor ? opt.executor : own_exec.get();
  const Backend backend = parse_backend(exec->name(), "the executor factory");
  RunResult r;
  r.config = run_config_to_json(cfg);
  r.config_hash = run_config_hash(cfg);
  r.capture_file = capture_path;
  r.backend = backend;
  if (!backend_note.empty()) r.warnings.push_back(backend_note);

  // Validate every stream configuration of every layer before any encoding starts.
  for (const LayerPlan& lp : layers) {
    if (lp.boundary) continue;
    const int l = lp.layer;
    const StreamConfig& k = lp.k.config;
    codec_spec(k, D, "layer " + std::to_string(l) + " K codec " + k.codec);
    codec_spec(lp.v.config, D, "layer " + std::to_string(l) + " V codec " + lp.v.config.codec);
    if (!cfg.q_precond.empty() && lp.k_domain == codec::KDomain::kPostRope)
      throw InvalidArgument("Q-preconditioning needs k_domain pre_rope, but layer " +
                            std::to_string(l) + " codes K post-RoPE with " + k.codec);
    {
      // Only kakeya_pca has share_basis (codec_spec refused it on any other codec).
      auto it = k.params.find("share_basis");
      if (it != k.params.end() && (it->second == "true" || it->second == "1"))
        r.warnings.push_back("share_basis on K (layer " + std::to_string(l) +
                             "): the reference measured 2.47x K-MSE inflation for a shared K basis");
    }
  }
  ResultCache* cache = opt.dump_decoded.empty() ? opt.cache : nullptr;
  std::string cache_capture_sha;
  if (cache) {
    cache_capture_sha = io::sha256_file_memo(capture_path, cache->options().dir);
    if (opt.compute_sha256) r.capture_sha256 = cache_capture_sha;
  }
  // Without the cache nothing needs the digest before the end: it is looked up in the digest memo
  // or computed beside the run.
  std::future<std::string> sha_beside;
  if (!cache && opt.compute_sha256)
    sha_beside = std::async(std::launch::async, [capture_path, memo = opt.digest_memo_dir] {
      return memo.empty() ? io::sha256_file(capture_path) : io::sha256_file_memo(capture_path, memo);
    });
  const Whitening wh = build_whitening(cap, cfg);
  r.skip_m = wh.rule.m;
  r.skip_median = wh.rule.median;
  const codec::RopeParams rope = info.rope();
  const auto& positions = cap.positions();
  const auto sample = codec::attention_query_sample(static_cast<size_t>(info.tokens));
  const float scale = static_cast<float>(cfg.attn_scale ? *cfg.attn_scale : 1.0 / std::sqrt(static_cast<double>(D)));
  // What every cached entry of this run shares (result_cache.h): the key is the sha256 of it and
  // of the layer's resolved stream settings.
  json key_base;
  std::map<std::string, std::string> centroid_sha;  // centroids_file -> sha256 of its bytes
  if (cache) {
    key_base["entry"] = "kvwb-result-cache-1";
    key_base["capture_sha256"] = cache_capture_sha;
    key_base["backend"] = std::string(exec->name());
    key_base["block_size"] = cfg.block_size;
    key_base["attention"] = {{"enabled", cfg.attention_metrics},
                             {"scale_bits", [&] {
                                uint32_t b;
                                std::memcpy(&b, &scale, sizeof b);
                                return b;
                              }()},
                             {"sample_sha256", sha_of_bytes(sample.data(), sample.size() * sizeof(uint32_t))},
                             {"attn_sample", cfg.attn_sample}};
  }

  std::unique_ptr<io::CaptureWriter> dump;
  if (!opt.dump_decoded.empty()) {
    io::CaptureInfo di = info;
    di.model_name = info.model_name;
    di.text_source = "reconstruction by kvwb run (config " + r.config_hash.substr(0, 12) + ") of " + capture_path;
    dump = std::make_unique<io::CaptureWriter>(opt.dump_decoded, di, io::CaptureWriteOptions{false, 1});
    if (info.has_positions) dump->write_positions(positions);
    if (info.has_tokens) dump->write_tokens(cap.tokens());
  }

  // Query positions of the attention metrics per (sequence, q head): cfg.attn_sample of them, the
  // same in every layer (codec row weights keep the exact sample above).
  std::vector<std::vector<uint32_t>> metric_samples;  // [S·Hq], index s·Hq + hq

  const std::atomic<bool>* cancel = job ? &job->cancel : nullptr;
  size_t step = 0;
  const size_t total_steps = layers.size();
  for (const LayerPlan& lp : layers) {
    const int l = lp.layer;
    if (cancel && cancel->load()) {
      if (partial) *partial = r;
      throw Cancelled("run cancelled after " + std::to_string(r.layers.size()) + " of " +
                      std::to_string(layers.size()) + " layers");
    }
    if (job && job->progress) job->progress(step, total_steps, "layer " + std::to_string(l));
    const auto* li = info.layer(l);
    LayerResult lr;
    lr.layer = l;
    lr.boundary = lp.boundary;
    lr.has_q = li->has_q_pre;
    LayerData ld;
    ld.layer = l;
    ld.k_pre = lp.k_domain == codec::KDomain::kPreRope;
    auto fit = wh.factors.find(l);
    if (fit != wh.factors.end()) {
      ld.factors = &fit->second;
      lr.q_skip = wh.skipped.count(l) > 0;
      if (!lr.boundary && !lr.q_skip && ld.k_pre) ld.whitening = &fit->second;
    }
    lr.whitened = ld.whitening != nullptr;
    const bool want_attn = cfg.attention_metrics && li->has_q_pre;
    const int window = li->attention == "sliding" ? li->sliding_window : 0;

    // The result cache: reuse what an earlier run measured with the same settings. With attention
    // metrics the both-compressed sums need both reconstructions, so the layer is reused whole or
    // computed whole; without them each stream on its own.
    std::string kkey, vkey, bkey;
    std::optional<StreamResult> kc, vc;
    std::optional<LayerAttentionEntry> bc;
    bool need_both = false;
    if (cache) {
      auto stream_key = [&](const StreamPlan& sp, bool is_k) {
        json k = key_base;
        k["layer"] = l;
        k["stream"] = is_k ? "K" : "V";
        k["boundary"] = lp.boundary;
        k["window"] = window;
        k["has_q"] = li->has_q_pre;
        k["settings"] = canonical_stream(sp.config, is_k);
        k["pooled"] = sp.pooled;
        k["block_rows"] = codec::codec_traits(sp.config.codec).block_codec &&
                          cfg.block_rows == codec::BlockRows::kPooledHeads;
        k["attention_weights"] = sp.attention_weights;
        // Only a codec that reports residuals stores different results when they are collected:
        // a sweep's entries (no residuals) serve the GUI's runs (residuals) for every other codec.
        k["collect_residuals"] = opt.collect_residuals && codec::codec_traits(sp.config.codec).scaled_residuals;
        if (is_k) {
          k["k_domain"] = codec::k_domain_name(lp.k_domain);
          k["factors_sha256"] = factors_sha(ld.factors);
          k["whitened"] = lr.whitened;
        }
        if (!sp.config.centroids_file.empty()) {
          auto& c = centroid_sha[sp.config.centroids_file];
          if (c.empty()) c = io::sha256_file(sp.config.centroids_file);
          k["centroids_sha256"] = c;
        }
        const std::string text = k.dump();
        return sha_of_bytes(text.data(), text.size());
      };
      kkey = stream_key(lp.k, true);
      vkey = stream_key(lp.v, false);
      kc = deserialize_stream(cache->get(kkey));
      vc = deserialize_stream(cache->get(vkey));
      need_both = want_attn && !(kc && kc->failed) && !(vc && vc->failed);
      if (need_both) {
        const std::string both = kkey + vkey + "both";
        bkey = sha_of_bytes(both.data(), both.size());
        bc = deserialize_layer_attention(cache->get(bkey));
      }
    }
    bool compute_k = !kc, compute_v = !vc;
    if (need_both && (!kc || !vc || !bc)) compute_k = compute_v = true;
    if (!compute_k && !compute_v) {
      lr.k = std::move(*kc);
      lr.v = std::move(*vc);
      if (need_both) {
        lr.attn = bc->attn;
        lr.attn_heads = bc->heads;
        lr.has_attn = true;
      }
      add_layer(r, std::move(lr));
      ++r.layers_from_cache;
      ++step;
      if (partial) *partial = r;
      continue;
    }

    ld.k = ld.k_pre ? cap.k_pre(l, &ld.k_derived) : cap.k_post(l, &ld.k_derived);
    ld.v = cap.read(l, io::TensorKind::kV);
    const size_t S = ld.v.s, H = ld.v.h, T = ld.v.t;
    Tensor4 qpost;
    // Row weights from attention mass (never in boundary layers).
    const bool attention_weights = (compute_k && lp.k.attention_weights) || (compute_v && lp.v.attention_weights);
    if (want_attn || attention_weights) {
      if (!li->has_q_pre)
        throw InvalidArgument("layer " + std::to_string(l) + ": weights=attention needs q_pre in the capture");
      qpost = cap.read(l, io::TensorKind::kQPre);
      rope_tensor(qpost, positions, rope, false);
    }
    // Post-RoPE reference keys for attention.
    Tensor4 kpost_ref;
    if (qpost.size()) {
      kpost_ref = ld.k;
      if (ld.k_pre) rope_tensor(kpost_ref, positions, rope, false);
    }
    const size_t g = static_cast<size_t>(info.num_query_heads / info.num_kv_heads);
    if (attention_weights && qpost.size()) {
      ld.key_weights.assign(S * H, std::vector<double>(T, 0.0));
      parallel_for(S * H, cfg.threads, [&](size_t i) {
        const size_t s = i / H, h = i % H;
        for (size_t hq = h * g; hq < (h + 1) * g; ++hq)
          codec::accumulate_key_attention_mass(qpost.row(s, hq, 0), kpost_ref.row(s, h, 0), T, D, sample, scale,
                                               window, ld.key_weights[i]);
      });
    }

    Tensor4 krec, vrec;
    auto do_stream = [&](const StreamConfig& sc, codec::Stream st, const Tensor4& x, Tensor4& rec,
                         StreamResult& res) {
      res.codec = sc.codec;
      if (st == codec::Stream::kK) res.k_domain = lp.k_domain;
      res.values = x.size();
      res.bf16_bytes = 2 * x.size();
      if (lr.boundary) {
        round_bf16_tensor(x, rec);
        res.bytes = res.reference_bytes = 2 * x.size();
        return;
      }
      try {
        run_stream(*exec, info, cfg, sc, st, ld, x, rec, res, opt, cancel);
      } catch (const Fp16Range& e) {
        res.failed = true;
        res.error_code = e.code();
        res.error_message = e.what();
      } catch (const NonFiniteInput& e) {
        res.failed = true;
        res.error_code = e.code();
        res.error_message = e.what();
      }
    };
    if (compute_k) {
      do_stream(lp.k.config, codec::Stream::kK, ld.k, krec, lr.k);
      if (!lr.boundary) ++r.executor_streams;
    } else {
      lr.k = std::move(*kc);
    }
    if (compute_v) {
      do_stream(lp.v.config, codec::Stream::kV, ld.v, vrec, lr.v);
      if (!lr.boundary) ++r.executor_streams;
    } else {
      lr.v = std::move(*vc);
    }
    if (compute_k && !lr.k.failed) {
      measure(ld.k, krec, lr.k);
      if (ld.factors) {
        if (ld.k_pre) {
          measure_whitened(ld, ld.k, krec, lr.k);
        } else {
          Tensor4 a = ld.k, b = krec;
          rope_tensor(a, positions, rope, true);
          rope_tensor(b, positions, rope, true);
          measure_whitened(ld, a, b, lr.k);
        }
      }
    }
    if (compute_v && !lr.v.failed) measure(ld.v, vrec, lr.v);
    if (want_attn && compute_k && compute_v && !lr.k.failed && !lr.v.failed) {
      Tensor4 kpost_hat = krec;
      if (ld.k_pre) rope_tensor(kpost_hat, positions, rope, false);
      if (metric_samples.empty()) {
        const size_t hqn = static_cast<size_t>(info.num_query_heads);
        metric_samples.resize(S * hqn);
        for (size_t s = 0; s < S; ++s)
          for (size_t hq = 0; hq < hqn; ++hq)
            metric_samples[s * hqn + hq] = codec::attention_query_sample(T, cfg.attn_sample, s, hq);
      }
      // The executor's second entry point: on the CPU accumulate_attention per (s, h) unit.
      codec::AttentionRequest areq;
      areq.q = qpost.data.data();
      areq.k = kpost_ref.data.data();
      areq.v = ld.v.data.data();
      areq.khat = kpost_hat.data.data();
      areq.vhat = vrec.data.data();
      areq.sequences = S;
      areq.q_heads = static_cast<size_t>(info.num_query_heads);
      areq.kv_heads = H;
      areq.tokens = T;
      areq.dim = D;
      areq.samples = &metric_samples;
      areq.scale = scale;
      areq.window = window;
      areq.layer = static_cast<uint32_t>(l);
      const std::vector<codec::AttentionVariants> per = exec->attention(areq, cancel).units;
      lr.attn_heads.assign(H, {});
      for (size_t i = 0; i < S * H; ++i) {
        lr.attn_heads[i % H].merge(per[i].both);
        lr.attn.merge(per[i].both);
        lr.k.attn.merge(per[i].k_only);
        lr.v.attn.merge(per[i].v_only);
      }
      lr.has_attn = lr.k.has_attn = lr.v.has_attn = true;
    }
    if (dump && !lr.k.failed && !lr.v.failed) {
      Tensor4 other = krec;
      rope_tensor(other, positions, rope, ld.k_pre ? false : true);
      dump->write_layer(l, ld.k_pre ? io::TensorKind::kKPre : io::TensorKind::kK, krec);
      dump->write_layer(l, ld.k_pre ? io::TensorKind::kK : io::TensorKind::kKPre, other);
      dump->write_layer(l, io::TensorKind::kV, vrec);
      if (li->has_q_pre) dump->write_layer(l, io::TensorKind::kQPre, cap.read(l, io::TensorKind::kQPre));
    }
    // A cancel during the attention metrics leaves them incomplete: such a layer is not stored.
    if (cache && !(cancel && cancel->load())) {
      if (compute_k) cache->put(kkey, serialize_stream(lr.k));
      if (compute_v) cache->put(vkey, serialize_stream(lr.v));
      if (lr.has_attn && !bkey.empty()) cache->put(bkey, serialize_layer_attention(lr));
    }
    add_layer(r, std::move(lr));
    ++step;
    if (partial) *partial = r;
  }
  if (job && job->progress) job->progress(total_steps, total_steps, "done");
  if (dump) dump->commit();
  if (sha_beside.valid()) r.capture_sha256 = sha_beside.get();
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  return r;
}

namespace {

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json errors_json(const codec::ErrorSums& e) {
  json j;
  j["mse"] = num(e.mse());
  j["rel_mse"] = num(e.rel_mse());
  j["snr_db"] = num(e.snr_db());
  j["cosine"] = num(e.cosine());
  j["max_abs_error"] = num(e.max_abs);
  if (e.has_whitened) j["whitened_mse"] = num(e.whitened_mse());
  return j;
}

void attn_into(json& j, const codec::AttentionSums& a) {
  j["attn_out_rel_err"] = num(a.out_rel_err());
  j["attn_out_rel_err_pooled"] = num(a.out_rel_err_pooled());
  j["attn_kl"] = num(a.kl());
  j["attn_top1"] = num(a.top1());
}

json stream_json(const StreamResult& s) {
  json j;
  j["codec"] = s.codec;
  if (s.k_domain) j["k_domain"] = codec::k_domain_name(*s.k_domain);
  j["bytes"] = s.bytes;
  j["reference_bytes"] = s.reference_bytes;
  j["tail_bytes"] = s.tail_bytes;
  j["bf16_bytes"] = s.bf16_bytes;
  j["ratio_vs_bf16"] = s.bytes ? num(static_cast<double>(s.bf16_bytes) / static_cast<double>(s.bytes)) : json(nullptr);
  if (s.failed) {
    j["failed"] = true;
    j["error"] = {{"code", s.error_code}, {"message", s.error_message}};
    return j;
  }
  json e = errors_json(s.err);
  j.update(e);
  if (s.has_attn) attn_into(j, s.attn);
  if (s.max_abs_whitened > 0) {
    j["max_abs_whitened"] = s.max_abs_whitened;
    j["whitened_beyond_fp16"] = s.max_abs_whitened > codec::kFp16Max;
  }
  if (!s.d_eff.empty()) {
    auto d = s.d_eff;
    std::sort(d.begin(), d.end());
    j["d_eff"] = {{"min", d.front()}, {"median", d[d.size() / 2]}, {"max", d.back()}, {"blocks", d.size()}};
  }
  if (s.coded_values) {
    j["outliers"] = s.outliers;
    j["outlier_rate"] = static_cast<double>(s.outliers) / static_cast<double>(s.coded_values);
    j["clipped"] = s.clipped;
  }
  json heads = json::array();
  for (size_t h = 0; h < s.heads.size(); ++h) {
    json hj = errors_json(s.heads[h]);
    hj["kv_head"] = h;
    heads.push_back(hj);
  }
  j["heads"] = heads;
  return j;
}

}  // namespace

json run_result_to_json(const RunResult& r) {
  json j;
  j["format"] = "kvwb-run-result";
  j["format_version"] = 1;
  j["ratio_vs_bf16"] = num(r.ratio_vs_bf16());
  j["total_bytes"] = r.total_bytes;
  j["bf16_bytes"] = r.bf16_bytes;
  j["tail_bytes"] = r.tail_bytes;
  j["tail_share"] = r.total_bytes ? num(static_cast<double>(r.tail_bytes) / static_cast<double>(r.total_bytes)) : json(nullptr);
  j["reference_bytes"] = r.reference_bytes;
  j["ratio_vs_bf16_reference"] =
      r.reference_bytes ? num(static_cast<double>(r.bf16_bytes) / static_cast<double>(r.reference_bytes)) : json(nullptr);
  j["bits_per_value"] = r.bf16_bytes ? num(16.0 * static_cast<double>(r.total_bytes) / static_cast<double>(r.bf16_bytes)) : json(nullptr);
  j["config"] = r.config;
  j["config_hash"] = r.config_hash;
  j["capture"] = {{"file", r.capture_file}, {"sha256", r.capture_sha256}};
  j["backend"] = backend_name(r.backend);
  j["failed"] = r.failed;
  j["seconds"] = r.seconds;
  j["warnings"] = r.warnings;
  json layers = json::array();
  codec::ErrorSums tk, tv;
  codec::AttentionSums ta, tak, tav;
  double attn_layers = 0, kl_mean = 0, out_mean = 0, top1_mean = 0, worst_kl = 0;
  int worst_layer = -1;
  for (const auto& l : r.layers) {
    json lj;
    lj["layer"] = l.layer;
    lj["boundary"] = l.boundary;
    lj["whitened"] = l.whitened;
    lj["q_precond_skipped"] = l.q_skip;
    auto m = r.skip_m.find(l.layer);
    if (m != r.skip_m.end()) {
      lj["max_abs_L"] = m->second;
      lj["skip_ratio"] = r.skip_median > 0 ? num(m->second / r.skip_median) : json(nullptr);
    }
    lj["k"] = stream_json(l.k);
    lj["v"] = stream_json(l.v);
    if (l.has_attn) {
      json a;
      attn_into(a, l.attn);
      lj["attention"] = a;
      attn_layers += 1;
      kl_mean += l.attn.kl();
      out_mean += l.attn.out_rel_err();
      top1_mean += l.attn.top1();
      if (l.attn.kl() >= worst_kl) {
        worst_kl = l.attn.kl();
        worst_layer = l.layer;
      }
      ta.merge(l.attn);
      tak.merge(l.k.attn);
      tav.merge(l.v.attn);
    }
    if (!l.k.failed) tk.merge(l.k.err);
    if (!l.v.failed) tv.merge(l.v.err);
    layers.push_back(lj);
  }
  j["layers"] = layers;
  json totals;
  totals["k"] = errors_json(tk);
  totals["v"] = errors_json(tv);
  if (attn_layers > 0) {
    attn_into(totals["k"], tak);
    attn_into(totals["v"], tav);
    totals["attention"] = {{"attn_kl", kl_mean / attn_layers},
                           {"attn_out_rel_err", out_mean / attn_layers},
                           {"attn_top1", top1_mean / attn_layers},
                           {"attn_out_rel_err_pooled", num(ta.out_rel_err_pooled())},
                           {"worst_layer_by_kl", worst_layer},
                           {"aggregation", "unweighted mean over layers (metrics.md §3.4)"},
                           {"sample", r.config.value("attn_sample", json(kDefaultAttnSample))}};
  }
  totals["bytes"] = r.total_bytes;
  totals["bf16_bytes"] = r.bf16_bytes;
  totals["ratio_vs_bf16"] = num(r.ratio_vs_bf16());
  j["totals"] = totals;
  if (!r.skip_m.empty()) j["q_precond"] = {{"median_max_abs_L", r.skip_median}};
  return j;
}

std::string run_result_to_csv(const RunResult& r) {
  std::ostringstream os;
  os.precision(9);
  os << "layer,stream,boundary,codec,k_domain,bytes,reference_bytes,tail_bytes,bf16_bytes,ratio_vs_bf16,mse,rel_mse,"
        "snr_db,cosine,whitened_mse,attn_out_rel_err,attn_kl,attn_top1,failed\n";
  auto f = [](double v) { return std::isfinite(v) ? std::to_string(v) : std::string(); };
  for (const auto& l : r.layers) {
    for (const auto* s : {&l.k, &l.v}) {
      os << l.layer << ',' << (s == &l.k ? "K" : "V") << ',' << (l.boundary ? 1 : 0) << ','
         << s->codec << ',' << (s->k_domain ? codec::k_domain_name(*s->k_domain) : "") << ','
         << s->bytes << ',' << s->reference_bytes << ',' << s->tail_bytes << ',' << s->bf16_bytes
         << ','
         << (s->bytes ? f(static_cast<double>(s->bf16_bytes) / static_cast<double>(s->bytes)) : "")
         << ',';
      if (s->failed) {
        os << ",,,,,,,," << 1 << '\n';
        continue;
      }
      char buf[512];
      std::snprintf(buf, sizeof buf, "%.9g,%.9g,%.9g,%.9g,%s,%s,%s,%s,0\n", s->err.mse(), s->err.rel_mse(),
                    s->err.snr_db(), s->err.cosine(), s->err.has_whitened ? f(s->err.whitened_mse()).c_str() : "",
                    s->has_attn ? f(s->attn.out_rel_err()).c_str() : "", s->has_attn ? f(s->attn.kl()).c_str() : "",
                    s->has_attn ? f(s->attn.top1()).c_str() : "");
      os << buf;
    }
  }
  return os.str();
}

}  // namespace kvwb::sessions
