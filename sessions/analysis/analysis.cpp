#include "sessions/analysis/analysis.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <sstream>

#include "base/errors.h"
#include "base/thread_pool.h"
#include "codec/format/half.h"
#include "codec/math/metrics.h"
#include "codec/math/wht.h"
#include "codec/traits.h"
#include "io/capture.h"
#include "sessions/run/calibration_io.h"

namespace kvwb::sessions {

using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

/// All S·T rows of head h of x [S, H, T, D] as a contiguous [S·T, D] block.
std::vector<float> head_rows(const codec::Tensor4& x, size_t h) {
  std::vector<float> out(x.s * x.t * x.d);
  for (size_t s = 0; s < x.s; ++s) {
    const float* src = x.row(s, h, 0);
    std::copy(src, src + x.t * x.d, out.begin() + static_cast<std::ptrdiff_t>(s * x.t * x.d));
  }
  return out;
}

TensorStats tensor_stats(const float* rows, size_t n, size_t d, bool rotated,
                         std::optional<double> user_vr) {
  TensorStats t;
  const auto cov = codec::covariance(rows, n, d);
  t.spectrum = make_spectrum(codec::symmetric_eigenvalues(cov, d), user_vr);
  t.kurtosis = kurtosis_of_rows(rows, n, d);
  if (rotated) {
    const auto y = rotate_rows_hadamard(rows, n, d);
    t.rotated_kurtosis = kurtosis_of_rows(y.data(), n, codec::next_pow2(d));
  }
  for (size_t i = 0; i < n * d; ++i)
    t.max_abs = std::max(t.max_abs, static_cast<double>(std::fabs(rows[i])));
  return t;
}

struct MinMedMax {
  double min = kNaN, median = kNaN, max = kNaN;
};
MinMedMax summarize(const std::vector<double>& v) {
  MinMedMax m;
  if (v.empty()) return m;
  m.min = *std::min_element(v.begin(), v.end());
  m.max = *std::max_element(v.begin(), v.end());
  m.median = median_of(v);
  return m;
}
json mmm_json(const MinMedMax& m) {
  return {{"min", num(m.min)}, {"median", num(m.median)}, {"max", num(m.max)}};
}

json spectrum_json(const Spectrum& s) {
  json j;
  j["eigenvalues"] = s.eigenvalues;
  j["cumulative"] = s.cumulative;
  j["d_eff_90"] = s.d_eff[0];
  j["d_eff_95"] = s.d_eff[1];
  j["d_eff_99"] = s.d_eff[2];
  if (s.d_eff_user) j["d_eff_user"] = *s.d_eff_user;
  return j;
}

json kurtosis_json(const Kurtosis& k) {
  return {{"pooled", num(k.pooled)},
          {"per_channel_mean", num(k.per_channel_mean)},
          {"per_channel_max", num(k.per_channel_max)}};
}

/// Flat scalar fields of one tensor under `prefix` (k_pre, k_white, v) plus the nested detail.
void tensor_into(json& h, const std::string& prefix, const TensorStats& t) {
  h[prefix + "_d_eff_90"] = t.spectrum.d_eff[0];
  h[prefix + "_d_eff_95"] = t.spectrum.d_eff[1];
  h[prefix + "_d_eff_99"] = t.spectrum.d_eff[2];
  if (t.spectrum.d_eff_user) h[prefix + "_d_eff_user"] = *t.spectrum.d_eff_user;
  h[prefix + "_kurtosis"] = num(t.kurtosis.pooled);
  h[prefix + "_kurtosis_channel_mean"] = num(t.kurtosis.per_channel_mean);
  h[prefix + "_kurtosis_channel_max"] = num(t.kurtosis.per_channel_max);
  if (t.rotated_kurtosis) {
    h[prefix + "_rot_kurtosis"] = num(t.rotated_kurtosis->pooled);
    h[prefix + "_rot_kurtosis_channel_mean"] = num(t.rotated_kurtosis->per_channel_mean);
    h[prefix + "_rot_kurtosis_channel_max"] = num(t.rotated_kurtosis->per_channel_max);
  }
  h[prefix + "_max_abs"] = num(t.max_abs);
  json d;
  d["spectrum"] = spectrum_json(t.spectrum);
  d["kurtosis"] = kurtosis_json(t.kurtosis);
  if (t.rotated_kurtosis) d["rotated_kurtosis"] = kurtosis_json(*t.rotated_kurtosis);
  d["max_abs"] = num(t.max_abs);
  h["detail"][prefix] = d;
}

json counts_json(const OutlierCounts& c) {
  json j;
  j["values"] = c.values;
  j["above"] = c.above;
  json rates = json::array();
  for (size_t i = 0; i < kOutlierThresholds.size(); ++i) rates.push_back(c.rate(i));
  j["rates"] = rates;
  j["kurtosis"] = num(c.kurtosis);
  return j;
}

std::string fmt_csv(double v) {
  if (!std::isfinite(v)) return "";
  std::ostringstream o;
  o.precision(10);
  o << v;
  return o.str();
}

}  // namespace

std::array<double, 4> gaussian_outlier_rates() {
  std::array<double, 4> r{};
  for (size_t i = 0; i < kOutlierThresholds.size(); ++i)
    r[i] = std::erfc(kOutlierThresholds[i] / std::sqrt(2.0));
  return r;
}

double median_of(std::vector<double> v) {
  if (v.empty()) return kNaN;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return (n % 2) ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

Spectrum make_spectrum(std::vector<double> eig_desc, std::optional<double> user_vr) {
  Spectrum s;
  std::sort(eig_desc.begin(), eig_desc.end(), std::greater<>());
  double total = 0;
  for (double v : eig_desc) total += std::max(v, 0.0);
  s.cumulative.resize(eig_desc.size());
  double run = 0;
  for (size_t k = 0; k < eig_desc.size(); ++k) {
    run += std::max(eig_desc[k], 0.0);
    s.cumulative[k] = total > 0 ? run / total : kNaN;
  }
  for (size_t i = 0; i < kSpectrumRatios.size(); ++i)
    s.d_eff[i] = codec::effective_dim(eig_desc, kSpectrumRatios[i]);
  if (user_vr) s.d_eff_user = codec::effective_dim(eig_desc, *user_vr);
  s.eigenvalues = std::move(eig_desc);
  return s;
}

Kurtosis kurtosis_of_rows(const float* rows, size_t n, size_t d) {
  Kurtosis k;
  k.pooled = codec::excess_kurtosis(rows, n * d);
  double sum = 0, mx = kNaN;
  size_t cnt = 0;
  for (size_t j = 0; j < d; ++j) {
    const double kj = codec::excess_kurtosis(rows + j, n, d);
    if (!std::isfinite(kj)) continue;
    sum += kj;
    ++cnt;
    mx = std::isfinite(mx) ? std::max(mx, kj) : kj;
  }
  k.per_channel_mean = cnt ? sum / static_cast<double>(cnt) : kNaN;
  k.per_channel_max = mx;
  return k;
}

std::vector<float> rotate_rows_hadamard(const float* rows, size_t n, size_t d) {
  const size_t dp = codec::next_pow2(d);
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(dp)));
  std::vector<float> y(n * dp, 0.0f);
  for (size_t i = 0; i < n; ++i) {
    float* r = y.data() + i * dp;
    std::copy(rows + i * d, rows + (i + 1) * d, r);
    codec::wht_inplace(r, dp);
    for (size_t j = 0; j < dp; ++j) r[j] *= scale;
  }
  return y;
}

SigmaQStats sigma_q_stats(const codec::WhiteningFactor& f) {
  SigmaQStats s;
  s.cond_reg = f.cond_reg;
  s.cond_raw = f.sigma.empty() ? kNaN : f.cond_raw;
  s.cond_L = std::sqrt(f.cond_reg);
  s.cond_L_final = std::sqrt(f.cond_final);
  s.tikhonov_lambda = f.tikhonov_lambda;
  s.max_abs_L = f.max_abs_L;
  s.eig_min = f.eig_min;
  s.eig_max = f.eig_max;
  s.sigma_trace = f.sigma.empty() ? kNaN : f.sigma_trace;
  s.diag_mean = f.sigma.empty() ? kNaN : f.diag_mean;
  s.off_diag_max_abs = f.sigma.empty() ? kNaN : f.off_diag_max_abs;
  s.off_diag_ratio =
      (f.sigma.empty() || !(f.diag_mean > 0)) ? kNaN : f.off_diag_max_abs / f.diag_mean;
  return s;
}

void OutlierCounts::merge(const OutlierCounts& o) {
  // Kurtosis does not pool from the summaries; the merged value is recomputed by the caller.
  values += o.values;
  for (size_t i = 0; i < above.size(); ++i) above[i] += o.above[i];
}

OutlierCounts count_outliers(const float* s, size_t n) {
  OutlierCounts c;
  c.values = n;
  for (size_t i = 0; i < n; ++i) {
    const float a = std::fabs(s[i]);
    for (size_t t = 0; t < kOutlierThresholds.size(); ++t)
      if (a > kOutlierThresholds[t]) ++c.above[t];
  }
  c.kurtosis = codec::excess_kurtosis(s, n);
  return c;
}

OutlierRates residual_outlier_rates(const std::string& capture_path, const RunConfig& cfg,
                                    JobControl* job) {
  RunConfig c = cfg;
  c.attention_metrics = false;
  RunOptions opt;
  opt.collect_residuals = true;
  opt.compute_sha256 = false;
  return outlier_rates_from_run(run_config(capture_path, c, opt, job), false);
}

OutlierRates outlier_rates_from_run(const RunResult& run, bool skip_failed) {
  std::vector<const LayerResult*> layers;
  for (const auto& l : run.layers) layers.push_back(&l);
  std::sort(layers.begin(), layers.end(),
            [](const LayerResult* a, const LayerResult* b) { return a->layer < b->layer; });
  OutlierRates out;
  out.config = run.config;
  // Pooled kurtosis over all layers: accumulate central moments through a two-pass per stream.
  std::vector<const std::vector<float>*> k_parts, v_parts;
  for (const LayerResult* lp : layers) {
    const LayerResult& l = *lp;
    OutlierLayer ol;
    ol.layer = l.layer;
    for (const StreamResult* s : {&l.k, &l.v}) {
      const bool is_k = s == &l.k;
      if (!codec::codec_traits(s->codec).scaled_residuals) continue;
      if (s->failed) {
        if (skip_failed) continue;
        throw Error(s->error_code, "outlier rates: layer " + std::to_string(l.layer) +
                                       (is_k ? " K" : " V") + " failed: " + s->error_message);
      }
      OutlierCounts cnt = count_outliers(s->scaled_residuals.data(), s->scaled_residuals.size());
      (is_k ? out.k_total : out.v_total).merge(cnt);
      (is_k ? out.has_k : out.has_v) = true;
      (is_k ? k_parts : v_parts).push_back(&s->scaled_residuals);
      (is_k ? ol.k : ol.v) = cnt;
    }
    out.layers.push_back(std::move(ol));
  }
  auto pooled_kurtosis = [](const std::vector<const std::vector<float>*>& parts) {
    double n = 0, mean = 0;
    for (const auto* p : parts)
      for (float x : *p) {
        mean += x;
        n += 1;
      }
    if (n == 0) return kNaN;
    mean /= n;
    double m2 = 0, m4 = 0;
    for (const auto* p : parts)
      for (float x : *p) {
        const double d = x - mean, d2 = d * d;
        m2 += d2;
        m4 += d2 * d2;
      }
    m2 /= n;
    m4 /= n;
    return m2 > 0 ? m4 / (m2 * m2) - 3.0 : kNaN;
  };
  out.k_total.kurtosis = pooled_kurtosis(k_parts);
  out.v_total.kurtosis = pooled_kurtosis(v_parts);
  return out;
}

AnalysisResult analyze_capture(const std::string& capture_path, const AnalysisOptions& opt,
                               JobControl* job) {
  io::CaptureReader cap(capture_path);
  const auto& info = cap.info();
  AnalysisResult res;
  res.capture_file = capture_path;
  res.model_name = info.model_name;
  res.sequences = info.sequences;
  res.tokens = info.tokens;
  res.num_query_heads = info.num_query_heads;
  res.num_kv_heads = info.num_kv_heads;
  res.head_dim = info.head_dim;
  res.num_layers = info.num_layers;
  res.ridge = opt.ridge;
  res.target_cond = opt.target_cond;
  res.user_skip_layers = opt.user_skip_layers;
  std::sort(res.user_skip_layers.begin(), res.user_skip_layers.end());
  if (opt.target_cond && !(*opt.target_cond > 1.0))
    throw InvalidArgument("analysis: target_cond must be > 1, got " +
                          std::to_string(*opt.target_cond));
  if (opt.user_vr && !(*opt.user_vr > 0.0 && *opt.user_vr <= 1.0))
    throw InvalidArgument("analysis: the user variance ratio must be in (0, 1], got " +
                          std::to_string(*opt.user_vr));

  std::vector<int> layers;
  if (opt.layers.empty()) {
    for (const auto& li : info.layers) layers.push_back(li.layer);
  } else {
    for (int l : opt.layers) {
      if (!info.layer(l))
        throw InvalidArgument("analysis: layer " + std::to_string(l) + " is not in the capture " +
                              capture_path);
      layers.push_back(l);
    }
    std::sort(layers.begin(), layers.end());
    layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  }
  const std::set<int> selected(layers.begin(), layers.end());
  // Layers whose Σ_q enters the skip rule (decisions.md #4): full-attention with q_pre.
  std::vector<int> work = layers;
  for (const auto& li : info.layers)
    if (li.has_q_pre && li.attention != "sliding" && !selected.count(li.layer))
      work.push_back(li.layer);
  std::sort(work.begin(), work.end());

  const size_t Hkv = static_cast<size_t>(info.num_kv_heads);
  const size_t D = static_cast<size_t>(info.head_dim);
  const size_t g = Hkv ? static_cast<size_t>(info.num_query_heads) / Hkv : 0;
  const std::atomic<bool>* cancel = job ? &job->cancel : nullptr;
  std::map<int, double> m_l;
  std::map<int, LayerAnalysis> done;
  const size_t total = work.size() * Hkv;
  for (size_t wi = 0; wi < work.size(); ++wi) {
    const int l = work[wi];
    if (cancel && cancel->load())
      throw Cancelled("analysis cancelled after " + std::to_string(wi) + " layers");
    if (job && job->progress) job->progress(wi * Hkv, total, "layer " + std::to_string(l));
    const auto* li = info.layer(l);
    const bool full = selected.count(l) > 0;
    LayerAnalysis la;
    la.layer = l;
    la.attention = li->attention;
    la.has_q = li->has_q_pre;
    codec::Tensor4 q, kp, v;
    bool derived = false;
    if (li->has_q_pre) q = cap.read(l, io::TensorKind::kQPre);
    if (full && (li->has_k_pre || li->has_k)) kp = cap.k_pre(l, &derived);
    if (full && li->has_v) v = cap.read(l, io::TensorKind::kV);
    la.heads.resize(Hkv);
    std::vector<std::optional<codec::WhiteningFactor>> factors(Hkv);
    parallel_for(
        Hkv, opt.threads,
        [&](size_t h) {
          HeadAnalysis& ha = la.heads[h];
          ha.kv_head = static_cast<int>(h);
          ha.k_derived = derived;
          if (li->has_q_pre) {
            codec::Tensor4 grp(q.s, g, q.t, q.d);
            for (size_t s = 0; s < q.s; ++s)
              for (size_t j = 0; j < g; ++j) {
                const float* src = q.row(s, h * g + j, 0);
                std::copy(src, src + q.t * q.d, grp.row(s, j, 0));
              }
            const auto sig = codec::compute_sigma_q(grp, 1);
            factors[h] = codec::factor_sigma_q(
                sig[0], D, opt.ridge, opt.target_cond,
                "layer " + std::to_string(l) + ", kv head " + std::to_string(h));
            ha.sigma_q = sigma_q_stats(*factors[h]);
          }
          if (!full) return;
          const size_t n = kp.size() ? kp.s * kp.t : 0;
          if (kp.size()) {
            const auto rows = head_rows(kp, h);
            ha.k_pre = tensor_stats(rows.data(), n, D, opt.rotated, opt.user_vr);
            if (factors[h]) {
              std::vector<float> w(rows.size());
              codec::matmul_rows(rows.data(), n, D, factors[h]->L.data(), w.data());
              ha.k_whitened = tensor_stats(w.data(), n, D, opt.rotated, opt.user_vr);
            }
          }
          if (v.size()) {
            const auto rows = head_rows(v, h);
            ha.v = tensor_stats(rows.data(), v.s * v.t, D, opt.rotated, opt.user_vr);
          }
        },
        cancel);
    if (cancel && cancel->load())
      throw Cancelled("analysis cancelled in layer " + std::to_string(l));
    if (li->has_q_pre) {
      double m = 0;
      for (const auto& f : factors) m = std::max(m, f->max_abs_L);
      la.max_abs_L = m;
      if (li->attention != "sliding") m_l[l] = m;
    }
    for (const auto& ha : la.heads)
      if (ha.k_whitened)
        la.max_abs_whitened = std::max(la.max_abs_whitened, ha.k_whitened->max_abs);
    la.whitened_beyond_fp16 = la.max_abs_whitened > codec::kFp16Max;
    if (full) done[l] = std::move(la);
  }
  const codec::SkipRule rule = codec::skip_rule(m_l);
  res.skip_median = rule.median;
  for (const auto& [l, s] : rule.skip)
    if (s) res.skip_layers.push_back(l);
  for (auto& [l, la] : done) {
    auto it = m_l.find(l);
    if (it != m_l.end()) {
      la.skip_ratio = rule.median > 0 ? it->second / rule.median : kNaN;
      la.skip = rule.skip.at(l);
    }
    res.layers.push_back(std::move(la));
  }
  if (job && job->progress) job->progress(total, total, "done");
  return res;
}

json analysis_to_json(const AnalysisResult& r) {
  json j;
  j["format"] = "kvwb-analysis";
  j["format_version"] = 1;
  j["capture"] = {{"file", r.capture_file},
                  {"model_name", r.model_name},
                  {"sequences", r.sequences},
                  {"tokens", r.tokens},
                  {"num_query_heads", r.num_query_heads},
                  {"num_kv_heads", r.num_kv_heads},
                  {"head_dim", r.head_dim},
                  {"num_layers", r.num_layers}};
  j["ridge"] = r.ridge;
  j["target_cond"] = r.target_cond ? json(*r.target_cond) : json(nullptr);
  j["spectrum_ratios"] = kSpectrumRatios;
  std::vector<double> cond, cond_raw, cond_l, cond_l_final, mabs;
  json layers = json::array();
  json per_layer_rule = json::array();
  for (const auto& la : r.layers) {
    json lj;
    lj["layer"] = la.layer;
    lj["attention"] = la.attention;
    lj["has_q"] = la.has_q;
    const bool user_skip =
        std::binary_search(r.user_skip_layers.begin(), r.user_skip_layers.end(), la.layer);
    if (la.has_q) {
      lj["max_abs_L"] = num(la.max_abs_L);
      lj["skip_ratio"] = num(la.skip_ratio);
      lj["skip"] = la.skip;
      lj["user_skip"] = user_skip;
      lj["max_abs_whitened"] = num(la.max_abs_whitened);
      lj["whitened_beyond_fp16"] = la.whitened_beyond_fp16;
      if (la.attention != "sliding")
        per_layer_rule.push_back({{"layer", la.layer},
                                  {"max_abs_L", num(la.max_abs_L)},
                                  {"ratio", num(la.skip_ratio)},
                                  {"auto_skip", la.skip},
                                  {"user_skip", user_skip}});
    } else {
      lj["note"] = "no queries (q_pre absent): no Σ_q, whitening is identity";
    }
    json heads = json::array();
    for (const auto& ha : la.heads) {
      json h;
      h["kv_head"] = ha.kv_head;
      if (ha.k_derived) h["k_pre_derived"] = true;
      if (ha.sigma_q) {
        const auto& s = *ha.sigma_q;
        h["sigma_q_cond"] = num(s.cond_reg);
        h["sigma_q_cond_raw"] = num(s.cond_raw);
        h["cond_L"] = num(s.cond_L);
        if (r.target_cond) {
          h["cond_L_final"] = num(s.cond_L_final);
          h["tikhonov_lambda"] = num(s.tikhonov_lambda);
        }
        h["max_abs_L"] = num(s.max_abs_L);
        h["off_diag_ratio"] = num(s.off_diag_ratio);
        h["eig_min"] = num(s.eig_min);
        h["eig_max"] = num(s.eig_max);
        h["sigma_trace"] = num(s.sigma_trace);
        h["diag_mean"] = num(s.diag_mean);
        h["off_diag_max_abs"] = num(s.off_diag_max_abs);
        h["skip"] = la.skip;
        cond.push_back(s.cond_reg);
        cond_raw.push_back(s.cond_raw);
        cond_l.push_back(s.cond_L);
        cond_l_final.push_back(s.cond_L_final);
        mabs.push_back(s.max_abs_L);
      }
      tensor_into(h, "k_pre", ha.k_pre);
      if (ha.k_whitened) {
        tensor_into(h, "k_white", *ha.k_whitened);
        h["max_abs_whitened"] = num(ha.k_whitened->max_abs);
        h["whitened_beyond_fp16"] = ha.k_whitened->max_abs > codec::kFp16Max;
      }
      tensor_into(h, "v", ha.v);
      heads.push_back(h);
    }
    lj["heads"] = heads;
    layers.push_back(lj);
  }
  json summary;
  summary["pairs_with_sigma_q"] = cond.size();
  summary["sigma_q_cond"] = mmm_json(summarize(cond));
  summary["sigma_q_cond_raw"] = mmm_json(summarize(cond_raw));
  summary["cond_L"] = mmm_json(summarize(cond_l));
  if (r.target_cond) summary["cond_L_final"] = mmm_json(summarize(cond_l_final));
  summary["max_abs_L"] = mmm_json(summarize(mabs));
  j["summary"] = summary;
  j["skip_rule"] = {{"rule", "max_abs_L > 2 x median"},
                    {"median_max_abs_L", num(r.skip_median)},
                    {"skip_layers", r.skip_layers},
                    {"user_skip_layers", r.user_skip_layers},
                    {"per_layer", per_layer_rule}};
  j["layers"] = layers;
  if (r.outliers) {
    const auto& o = *r.outliers;
    json oj;
    oj["thresholds"] = kOutlierThresholds;
    oj["gaussian_rates"] = gaussian_outlier_rates();
    oj["config"] = o.config;
    json ol = json::array();
    for (const auto& l : o.layers) {
      json x;
      x["layer"] = l.layer;
      x["k"] = l.k ? counts_json(*l.k) : json(nullptr);
      x["v"] = l.v ? counts_json(*l.v) : json(nullptr);
      ol.push_back(x);
    }
    oj["layers"] = ol;
    oj["totals"] = {{"k", o.has_k ? counts_json(o.k_total) : json(nullptr)},
                    {"v", o.has_v ? counts_json(o.v_total) : json(nullptr)}};
    j["outlier_rates"] = oj;
  }
  return j;
}

std::string analysis_to_csv(const AnalysisResult& r) {
  std::ostringstream o;
  o << "layer,kv_head,attention,sigma_q_cond,sigma_q_cond_raw,cond_L,max_abs_L,off_diag_ratio,skip,"
       "skip_ratio,"
       "k_pre_d_eff_90,k_pre_d_eff_95,k_pre_d_eff_99,k_white_d_eff_90,k_white_d_eff_95,k_white_d_"
       "eff_99,"
       "v_d_eff_90,v_d_eff_95,v_d_eff_99,k_pre_kurtosis,k_pre_kurtosis_channel_mean,k_pre_kurtosis_"
       "channel_max,"
       "k_white_kurtosis,v_kurtosis,v_kurtosis_channel_mean,v_kurtosis_channel_max,k_pre_rot_"
       "kurtosis,"
       "v_rot_kurtosis,max_abs_whitened\n";
  for (const auto& la : r.layers) {
    for (const auto& ha : la.heads) {
      const auto* s = ha.sigma_q ? &*ha.sigma_q : nullptr;
      const auto* w = ha.k_whitened ? &*ha.k_whitened : nullptr;
      o << la.layer << ',' << ha.kv_head << ',' << la.attention << ','
        << (s ? fmt_csv(s->cond_reg) : "") << ',' << (s ? fmt_csv(s->cond_raw) : "") << ','
        << (s ? fmt_csv(s->cond_L) : "") << ',' << (s ? fmt_csv(s->max_abs_L) : "") << ','
        << (s ? fmt_csv(s->off_diag_ratio) : "") << ',' << (s ? (la.skip ? "1" : "0") : "") << ','
        << (s ? fmt_csv(la.skip_ratio) : "") << ',';
      for (size_t i = 0; i < 3; ++i) o << ha.k_pre.spectrum.d_eff[i] << ',';
      for (size_t i = 0; i < 3; ++i) o << (w ? std::to_string(w->spectrum.d_eff[i]) : "") << ',';
      for (size_t i = 0; i < 3; ++i) o << ha.v.spectrum.d_eff[i] << ',';
      o << fmt_csv(ha.k_pre.kurtosis.pooled) << ',' << fmt_csv(ha.k_pre.kurtosis.per_channel_mean)
        << ',' << fmt_csv(ha.k_pre.kurtosis.per_channel_max) << ','
        << (w ? fmt_csv(w->kurtosis.pooled) : "") << ',' << fmt_csv(ha.v.kurtosis.pooled) << ','
        << fmt_csv(ha.v.kurtosis.per_channel_mean) << ',' << fmt_csv(ha.v.kurtosis.per_channel_max)
        << ',' << (ha.k_pre.rotated_kurtosis ? fmt_csv(ha.k_pre.rotated_kurtosis->pooled) : "")
        << ',' << (ha.v.rotated_kurtosis ? fmt_csv(ha.v.rotated_kurtosis->pooled) : "") << ','
        << (w ? fmt_csv(w->max_abs) : "") << '\n';
    }
  }
  return o.str();
}

SigmaQFileInfo sigma_q_file_info(const std::string& path) {
  SigmaQFileInfo out;
  out.path = path;
  const auto factors = load_whitening_file_any(path, &out.n_kv_heads, &out.head_dim);
  std::vector<double> cond, cond_raw;
  std::map<int, double> m;
  for (const auto& [l, fs] : factors) {
    double mx = 0;
    for (size_t h = 0; h < fs.size(); ++h) {
      SigmaQPair p;
      p.layer = l;
      p.kv_head = static_cast<int>(h);
      p.cond = fs[h].cond_reg;
      p.cond_raw = fs[h].sigma.empty() ? kNaN : fs[h].cond_raw;
      p.max_abs_L = fs[h].max_abs_L;
      mx = std::max(mx, p.max_abs_L);
      cond.push_back(p.cond);
      if (std::isfinite(p.cond_raw)) cond_raw.push_back(p.cond_raw);
      out.pairs.push_back(p);
    }
    m[l] = mx;
  }
  const auto c = summarize(cond);
  out.cond_min = c.min;
  out.cond_median = c.median;
  out.cond_max = c.max;
  const auto cr = summarize(cond_raw);
  out.cond_raw_min = cr.min;
  out.cond_raw_median = cr.median;
  out.cond_raw_max = cr.max;
  out.rule = codec::skip_rule(m);
  for (const auto& [l, s] : out.rule.skip)
    if (s) out.skip_layers.push_back(l);
  return out;
}

json sigma_q_file_info_to_json(const SigmaQFileInfo& info) {
  json j;
  j["file"] = info.path;
  j["num_kv_heads"] = info.n_kv_heads;
  j["head_dim"] = info.head_dim;
  json pairs = json::array();
  for (const auto& p : info.pairs)
    pairs.push_back({{"layer", p.layer},
                     {"kv_head", p.kv_head},
                     {"cond", num(p.cond)},
                     {"cond_L", num(std::sqrt(p.cond))},
                     {"cond_raw", num(p.cond_raw)},
                     {"max_abs_L", num(p.max_abs_L)}});
  j["pairs"] = pairs;
  j["cond_min"] = num(info.cond_min);
  j["cond_median"] = num(info.cond_median);
  j["cond_max"] = num(info.cond_max);
  j["cond_raw_min"] = num(info.cond_raw_min);
  j["cond_raw_median"] = num(info.cond_raw_median);
  j["cond_raw_max"] = num(info.cond_raw_max);
  j["median_max_abs_L"] = num(info.rule.median);
  json per_layer = json::array();
  for (const auto& [l, mx] : info.rule.m)
    per_layer.push_back({{"layer", l},
                         {"max_abs_L", num(mx)},
                         {"ratio", num(info.rule.median > 0 ? mx / info.rule.median : kNaN)},
                         {"skip", info.rule.skip.at(l)}});
  j["layers"] = per_layer;
  j["skip_layers"] = info.skip_layers;
  return j;
}

}  // namespace kvwb::sessions
