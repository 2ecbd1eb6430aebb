#include "sessions/bundle/calibration_export.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "base/errors.h"
#include "codec/codec.h"
#include "codec/math/quantizer.h"
#include "codec/math/rng.h"
#include "codec/params.h"
#include "codec/traits.h"
#include "io/atomic_file.h"
#include "io/capture.h"
#include "sessions/config/layer_plan.h"

namespace kvwb::sessions {

using nlohmann::ordered_json;

namespace {

double median_sorted(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return (n % 2) ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string fmt_value(float v) {
  char b[48];
  std::snprintf(b, sizeof b, "%.9g", static_cast<double>(v));
  return b;
}

/// Mean squared quantisation error of sorted-or-not samples with an f32 table (nearest, ties low).
double quantiser_mse(const std::vector<float>& s, std::span<const float> table) {
  double acc = 0;
  for (float x : s) {
    const double e = static_cast<double>(x) - table[codec::quantize_nearest(x, table)];
    acc += e * e;
  }
  return s.empty() ? 0.0 : acc / static_cast<double>(s.size());
}

/// What a centroid-table stream's calibration reads from its configuration.
struct KakeyaSettings {
  unsigned bits = 0;
  uint64_t seed = 0;
  std::optional<double> outlier_threshold;
};

/// `sc` is a stream of a codec with a centroid table (kakeya_pca).
KakeyaSettings kakeya_settings(const StreamConfig& sc) {
  const codec::ParamReader pr(sc.codec, codec::codec_params(sc.codec), sc.params);
  KakeyaSettings k;
  k.bits = static_cast<unsigned>(pr.get_int("bit_width"));
  k.seed = static_cast<uint64_t>(pr.get_int("seed"));
  if (pr.has("outlier_threshold")) k.outlier_threshold = pr.get_float("outlier_threshold");
  return k;
}

}  // namespace

SigmaQCalibration calibrate_sigma_q(const std::string& capture_path, const RunConfig& cfg) {
  io::CaptureReader cap(capture_path);
  const auto& info = cap.info();
  SigmaQCalibration c;
  c.capture_file_name = std::filesystem::path(capture_path).filename().string();
  c.model_name = info.model_name;
  c.head_dim = info.head_dim;
  c.num_q_heads = info.num_query_heads;
  c.num_kv_heads = info.num_kv_heads;
  c.num_layers = info.num_layers;
  c.sequences = info.sequences;
  c.tokens = info.tokens;
  c.ridge = codec::kDefaultRidge;
  c.target_cond = cfg.target_cond;
  c.auto_skip = cfg.q_precond_auto_skip;
  c.user_skip.insert(cfg.q_precond_skip_layers.begin(), cfg.q_precond_skip_layers.end());
  for (int l = 0; l < info.num_layers; ++l) {
    const auto* li = info.layer(l);
    c.layer_types.push_back(!li                          ? "not_captured"
                            : li->attention == "sliding" ? "sliding_attention"
                                                         : "full_attention");
  }
  RunConfig wc = cfg;
  wc.q_precond = "capture";
  c.whitening = build_whitening(cap, wc);
  if (c.whitening.factors.empty())
    throw InvalidArgument(capture_path +
                          ": no full-attention layer has q_pre, so there is no Σ_q to calibrate");
  std::set<int> scope;
  for (const LayerPlan& lp : plan_layers(info, cfg)) scope.insert(lp.layer);
  for (const auto& [l, fs] : c.whitening.factors)
    if (scope.count(l) && !c.whitening.skipped.count(l)) c.written.push_back(l);
  return c;
}

io::SafeTensorsFile sigma_q_safetensors(const SigmaQCalibration& c) {
  io::SafeTensorsFile f;
  const size_t H = static_cast<size_t>(c.num_kv_heads), D = static_cast<size_t>(c.head_dim);
  const std::vector<uint64_t> shape{H, D, D};
  for (int l : c.written) {
    const auto& fs = c.whitening.factors.at(l);
    if (fs.size() != H)
      throw InvalidArgument("Σ_q of layer " + std::to_string(l) + " has the wrong head count");
    std::vector<float> L, Li, S;
    for (const auto& w : fs) {
      if (w.sigma.size() != D * D)
        throw InvalidArgument("Σ_q of layer " + std::to_string(l) +
                              " lacks the unregularised matrix");
      L.insert(L.end(), w.L.begin(), w.L.end());
      Li.insert(Li.end(), w.L_inv.begin(), w.L_inv.end());
      for (double v : w.sigma) S.push_back(static_cast<float>(v));
    }
    const std::string p = "layer_" + std::to_string(l) + "_";
    f.tensors.push_back(io::make_f32_tensor(p + "chol", shape, L));
    f.tensors.push_back(io::make_f32_tensor(p + "inv_chol", shape, Li));
    f.tensors.push_back(io::make_f32_tensor(p + "sigma", shape, S));
  }
  f.metadata["format"] = "pt";
  return f;
}

ordered_json sigma_q_sidecar(const SigmaQCalibration& c) {
  ordered_json j;
  j["model_path"] = c.model_name;
  j["head_dim"] = c.head_dim;
  j["num_q_heads"] = c.num_q_heads;
  j["num_kv_heads"] = c.num_kv_heads;
  j["num_layers"] = c.num_layers;
  j["layer_types"] = c.layer_types;
  j["n_passages_used"] = c.sequences;
  j["ctx_len"] = c.tokens;
  j["ridge"] = c.ridge;
  ordered_json diag = ordered_json::array();
  std::vector<double> lam, before, after;
  int n_reg_layers = 0;
  for (const auto& [l, fs] : c.whitening.factors) {
    bool any = false;
    for (size_t h = 0; h < fs.size(); ++h) {
      const auto& w = fs[h];
      ordered_json d;
      d["layer"] = l;
      d["kv_head"] = static_cast<int>(h);
      d["sigma_trace"] = w.sigma_trace;
      d["eig_min"] = w.eig_min;
      d["eig_max"] = w.eig_max;
      d["condition"] = w.cond_reg;
      d["diag_mean"] = w.diag_mean;
      d["off_diag_max_abs"] = w.off_diag_max_abs;
      for (const auto& [k, v] : d.items())
        if (v.is_number_float() && !std::isfinite(v.get<double>()))
          throw NonFiniteInput("Σ_q diagnostics of layer " + std::to_string(l) + ", kv head " +
                               std::to_string(h) + ": " + k + " is not finite");
      diag.push_back(d);
      lam.push_back(w.tikhonov_lambda);
      before.push_back(std::sqrt(w.cond_reg));
      after.push_back(std::sqrt(w.cond_final));
      any = any || w.tikhonov_lambda > 0;
    }
    if (any) ++n_reg_layers;
  }
  j["diagnostics"] = diag;
  j["calibration_source"] = "capture:" + c.capture_file_name;
  j["n_passages_requested"] = c.sequences;
  j["layers_written"] = c.written;
  std::vector<int> skip(c.whitening.skipped.begin(), c.whitening.skipped.end());
  j["skip_layers"] = skip;
  ordered_json rule;
  rule["rule"] = "max_abs_L > 2 x median";
  rule["median_max_abs_L"] = c.whitening.rule.median;
  ordered_json per = ordered_json::array();
  for (const auto& [l, m] : c.whitening.rule.m) {
    ordered_json e;
    e["layer"] = l;
    e["max_abs_L"] = m;
    e["ratio"] = c.whitening.rule.median > 0 ? m / c.whitening.rule.median : 0.0;
    e["auto_skip"] = c.auto_skip && c.whitening.rule.skip.at(l);
    e["user_skip"] = c.user_skip.count(l) > 0;
    per.push_back(e);
  }
  rule["per_layer"] = per;
  j["skip_rule"] = rule;
  if (c.target_cond) {
    ordered_json r;
    r["scheme"] = "tikhonov";
    r["target_cond"] = *c.target_cond;
    double mean = 0;
    for (double v : lam) mean += v;
    r["lambda_mean"] = lam.empty() ? 0.0 : mean / static_cast<double>(lam.size());
    r["lambda_median"] = median_sorted(lam);
    r["lambda_max"] = lam.empty() ? 0.0 : *std::max_element(lam.begin(), lam.end());
    r["n_layers_regularised"] = n_reg_layers;
    r["cond_before_median"] = median_sorted(before);
    r["cond_before_max"] = before.empty() ? 0.0 : *std::max_element(before.begin(), before.end());
    r["cond_after_median"] = median_sorted(after);
    r["cond_after_max"] = after.empty() ? 0.0 : *std::max_element(after.begin(), after.end());
    j["regularisation"] = r;
  }
  return j;
}

void write_sigma_q_files(const std::string& dir, const SigmaQCalibration& c) {
  const auto st = sigma_q_safetensors(c);
  const std::string sidecar = sigma_q_sidecar(c).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  io::write_safetensors((std::filesystem::path(dir) / "sigma_q.safetensors").string(), st);
  io::write_file_atomic((std::filesystem::path(dir) / "sigma_q.json").string(), sidecar);
}

std::vector<float> subsample_for_calibration(std::span<const float> values,
                                             std::span<const uint64_t> index, uint64_t seed,
                                             size_t cap) {
  if (values.size() != index.size())
    throw InvalidArgument("subsample_for_calibration: values and indices differ in length");
  if (values.size() <= cap) return std::vector<float>(values.begin(), values.end());
  const uint64_t key = seed ^ codec::rng::kTagCalib;
  struct Entry {
    uint64_t k, i;
    uint32_t pos;
  };
  std::vector<Entry> e(values.size());
  for (size_t p = 0; p < values.size(); ++p)
    e[p] = {codec::rng::splitmix(key, index[p]), index[p], static_cast<uint32_t>(p)};
  auto less = [](const Entry& a, const Entry& b) { return a.k != b.k ? a.k < b.k : a.i < b.i; };
  std::nth_element(e.begin(), e.begin() + static_cast<std::ptrdiff_t>(cap), e.end(), less);
  e.resize(cap);
  std::sort(e.begin(), e.end(), [](const Entry& a, const Entry& b) { return a.i < b.i; });
  std::vector<float> out(cap);
  for (size_t p = 0; p < cap; ++p) out[p] = values[e[p].pos];
  return out;
}

LloydResult lloyd_max_fit(std::vector<float> s, unsigned bits, int max_iter, double tol) {
  if (bits < 1 || bits > 4)
    throw InvalidArgument("Lloyd-Max: bit width " + std::to_string(bits) + " is not in 1..4");
  if (s.empty()) throw InvalidArgument("Lloyd-Max: no samples to calibrate on");
  for (float x : s)
    if (!std::isfinite(x)) throw NonFiniteInput("Lloyd-Max: a calibration sample is not finite");
  std::sort(s.begin(), s.end());
  const auto g = codec::gaussian_table(bits);
  const size_t K = g.size();
  std::vector<double> c(g.begin(), g.end());
  std::vector<float> tf(K);
  std::vector<size_t> start(K + 1);
  LloydResult r;
  for (int it = 0; it < max_iter; ++it) {
    for (size_t m = 0; m < K; ++m) tf[m] = static_cast<float>(c[m]);
    const std::span<const float> table(tf);
    const bool ascending = std::is_sorted(tf.begin(), tf.end());
    std::vector<double> sum(K, 0.0);
    std::vector<size_t> cnt(K, 0);
    if (ascending) {
      // Nearest assignment is monotone in s for an ascending table: cells are index ranges.
      start[0] = 0;
      start[K] = s.size();
      for (size_t m = 1; m < K; ++m)
        start[m] = static_cast<size_t>(
            std::partition_point(s.begin() + static_cast<std::ptrdiff_t>(start[m - 1]), s.end(),
                                 [&](float x) { return codec::quantize_nearest(x, table) < m; }) -
            s.begin());
      for (size_t m = 0; m < K; ++m) {
        cnt[m] = start[m + 1] - start[m];
        for (size_t i = start[m]; i < start[m + 1]; ++i) sum[m] += s[i];
      }
    } else {
      for (float x : s) {
        const uint16_t q = codec::quantize_nearest(x, table);
        sum[q] += x;
        ++cnt[q];
      }
    }
    double delta = 0;
    for (size_t m = 0; m < K; ++m) {
      if (!cnt[m]) continue;
      const double nv = sum[m] / static_cast<double>(cnt[m]);
      delta = std::max(delta, std::fabs(nv - c[m]));
      c[m] = nv;
    }
    r.iterations = it + 1;
    r.final_max_change = delta;
    if (delta < tol) {
      r.converged = true;
      break;
    }
  }
  std::sort(c.begin(), c.end());
  r.table.resize(K);
  for (size_t m = 0; m < K; ++m) r.table[m] = static_cast<float>(c[m]);
  for (size_t m = 0; m < K; ++m)
    if (!std::isfinite(r.table[m]))
      throw NonFiniteInput("Lloyd-Max: calibrated centroid " + std::to_string(m) +
                           " is not finite");
  for (size_t m = 1; m < K; ++m)
    if (!(r.table[m - 1] < r.table[m]))
      throw FormatError("Lloyd-Max: calibrated centroids " + std::to_string(m - 1) + " and " +
                        std::to_string(m) + " coincide after rounding to f32 (" +
                        fmt_value(r.table[m - 1]) + ", " + fmt_value(r.table[m]) +
                        "); the table would not be strictly ascending");
  r.mse_gaussian = quantiser_mse(s, g);
  r.mse_calibrated = quantiser_mse(s, r.table);
  return r;
}

std::string centroid_file_name(const std::string& stream, unsigned bits) {
  return stream + "_b" + std::to_string(bits) + "_centroids.f32";
}

namespace {

/// The pools of bundle-format.md §4.2 (one per stream whose run-level codec uses a table, and per
/// bit width in use when `every_width`, else the run-level width only), calibrated from one run.
std::vector<CentroidCalibration> calibrate_pools(const std::string& capture_path,
                                                 const RunConfig& cfg, bool every_width,
                                                 JobControl* job) {
  struct Want {
    bool is_k;
    KakeyaSettings base;
  };
  std::vector<Want> wants;
  if (codec::codec_traits(cfg.k.codec).centroid_table)
    wants.push_back({true, kakeya_settings(cfg.k)});
  if (codec::codec_traits(cfg.v.codec).centroid_table)
    wants.push_back({false, kakeya_settings(cfg.v)});
  if (wants.empty())
    throw InvalidArgument("centroid calibration: neither stream uses kakeya_pca (K " + cfg.k.codec +
                          ", V " + cfg.v.codec + ")");
  std::map<int, LayerPlan> plan;  // what each layer runs (turbo policy and overrides applied)
  for (LayerPlan& lp : plan_layers(io::CaptureReader(capture_path).info(), cfg))
    plan.emplace(lp.layer, std::move(lp));
  RunConfig rc = cfg;
  rc.attention_metrics = false;  // does not change the residuals
  RunOptions opt;
  opt.collect_residuals = true;
  opt.compute_sha256 = false;
  RunResult run = run_config(capture_path, rc, opt, job);
  std::sort(run.layers.begin(), run.layers.end(),
            [](const LayerResult& a, const LayerResult& b) { return a.layer < b.layer; });
  std::vector<CentroidCalibration> out;
  for (const Want& w : wants) {
    // One pool per bit width; the canonical index i counts within its pool (§4.2 step 4).
    struct Pool {
      CentroidCalibration cc;
      std::vector<float> values;
      std::vector<uint64_t> index;
      uint64_t i = 0;
    };
    std::map<unsigned, Pool> pools;
    for (const auto& l : run.layers) {
      if (l.boundary) continue;
      const StreamPlan& sp = plan.at(l.layer).stream(w.is_k);
      if (!sp.traits().centroid_table) continue;
      const KakeyaSettings ls = kakeya_settings(sp.config);
      if (!every_width && ls.bits != w.base.bits) continue;
      const StreamResult& sr = w.is_k ? l.k : l.v;
      const std::string stream = w.is_k ? "K" : "V";
      if (sr.failed)
        throw Error(sr.error_code, "centroid calibration: layer " + std::to_string(l.layer) + " " +
                                       stream + " failed: " + sr.error_message);
      auto [it, fresh] = pools.try_emplace(ls.bits);
      Pool& p = it->second;
      if (fresh) {
        // The run-level width keeps the stream's seed and threshold; another width takes those
        // of its first layer (a plan changes only bit_width, so they are the same).
        const KakeyaSettings& own = ls.bits == w.base.bits ? w.base : ls;
        p.cc.stream = stream;
        p.cc.bits = ls.bits;
        p.cc.seed = own.seed;
        p.cc.outlier_threshold = own.outlier_threshold;
      }
      p.cc.layers.push_back(l.layer);
      for (float s : sr.scaled_residuals) {
        if (!(ls.outlier_threshold && std::fabs(s) > *ls.outlier_threshold)) {
          p.values.push_back(s);
          p.index.push_back(p.i);
        } else {
          ++p.cc.samples_outliers;
        }
        ++p.i;
      }
    }
    if (!every_width || pools.empty()) pools.try_emplace(w.base.bits);
    for (auto& [bits, p] : pools) {
      CentroidCalibration& cc = p.cc;
      if (cc.stream.empty()) {  // the run-level width, used by no layer
        cc.stream = w.is_k ? "K" : "V";
        cc.bits = bits;
        cc.seed = w.base.seed;
        cc.outlier_threshold = w.base.outlier_threshold;
      }
      cc.samples_pooled = p.i;
      if (p.values.empty())
        throw InvalidArgument("centroid calibration of " + cc.stream +
                              ": no residuals to calibrate on (" + std::to_string(cc.layers.size()) +
                              " layers with kakeya_pca at " + std::to_string(cc.bits) +
                              " bits; is block_size " + std::to_string(cfg.block_size) +
                              " larger than the capture's tokens per sequence?)");
      std::vector<float> used = subsample_for_calibration(p.values, p.index, cc.seed);
      p.values.clear();
      p.values.shrink_to_fit();
      cc.samples_used = used.size();
      cc.fit = lloyd_max_fit(std::move(used), cc.bits);
      out.push_back(std::move(cc));
    }
  }
  return out;
}

}  // namespace

std::vector<CentroidCalibration> calibrate_centroids(const std::string& capture_path,
                                                     const RunConfig& cfg, JobControl* job) {
  return calibrate_pools(capture_path, cfg, false, job);
}

std::vector<CentroidCalibration> calibrate_centroid_widths(const std::string& capture_path,
                                                           const RunConfig& cfg, JobControl* job) {
  return calibrate_pools(capture_path, cfg, true, job);
}

std::vector<uint8_t> centroid_file_bytes(std::span<const float> table) {
  const size_t n = table.size();
  if (n != 2 && n != 4 && n != 8 && n != 16)
    throw InvalidArgument("centroid table must hold 2, 4, 8 or 16 values, got " +
                          std::to_string(n));
  for (size_t m = 0; m < n; ++m)
    if (!std::isfinite(table[m]))
      throw NonFiniteInput("centroid table entry " + std::to_string(m) + " is not finite");
  for (size_t m = 1; m < n; ++m)
    if (!(table[m - 1] < table[m]))
      throw InvalidArgument("centroid table is not strictly ascending at entries " +
                            std::to_string(m - 1) + " and " + std::to_string(m));
  std::vector<uint8_t> bytes(n * 4);
  for (size_t m = 0; m < n; ++m) {
    uint32_t u;
    std::memcpy(&u, &table[m], 4);
    for (int b = 0; b < 4; ++b)
      bytes[m * 4 + static_cast<size_t>(b)] = static_cast<uint8_t>(u >> (8 * b));
  }
  return bytes;
}

void write_centroid_file(const std::string& path, std::span<const float> table) {
  const auto bytes = centroid_file_bytes(table);
  io::write_file_atomic(path, bytes);
}

ordered_json centroid_report_json(const CentroidCalibration& c) {
  ordered_json j;
  j["path"] = centroid_file_name(c.stream, c.bits);
  j["bits"] = c.bits;
  j["samples_pooled"] = c.samples_pooled;
  j["samples_used"] = c.samples_used;
  j["iterations"] = c.fit.iterations;
  j["converged"] = c.fit.converged;
  j["final_max_change"] = c.fit.final_max_change;
  j["mse_gaussian"] = c.fit.mse_gaussian;
  j["mse_calibrated"] = c.fit.mse_calibrated;
  j["samples_outliers_dropped"] = c.samples_outliers;
  j["outlier_threshold"] =
      c.outlier_threshold ? ordered_json(*c.outlier_threshold) : ordered_json(nullptr);
  j["layers"] = c.layers;
  std::vector<double> t(c.fit.table.begin(), c.fit.table.end());
  j["table"] = t;
  return j;
}

}  // namespace kvwb::sessions
