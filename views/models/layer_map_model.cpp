#include "views/models/layer_map_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <sstream>

#include "sessions/analysis/pareto.h"
#include "views/models/text_format.h"

namespace kvwb::views {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string bytes_text(double b) {
  if (b >= 1024.0 * 1024.0) return format_number("%.2f MiB", b / (1024.0 * 1024.0));
  if (b >= 1024.0) return format_number("%.1f KiB", b / 1024.0);
  return format_number("%.0f B", b);
}

std::string cell_text(LayerMapMetric m, double v) {
  if (!std::isfinite(v)) return "n/a";
  switch (m) {
    case LayerMapMetric::kSigmaQCond:
      return format_number("%.3g", v);
    case LayerMapMetric::kDEff:
      return format_number("%.0f", v);
    case LayerMapMetric::kKurtosis:
      return format_number("%.2f", v);
    case LayerMapMetric::kOutlierRate:
      return format_number("%.2f %%", 100.0 * v);
    case LayerMapMetric::kRelMse:
    case LayerMapMetric::kAttnKl:
      return format_number("%.2e", v);
    case LayerMapMetric::kBytes:
      return bytes_text(v);
  }
  return "n/a";
}

std::string unit_note(LayerMapMetric m) {
  switch (m) {
    case LayerMapMetric::kSigmaQCond:
      return "cond(Σ_reg) of the captured queries of each kv head's group (K§8); log colour scale";
    case LayerMapMetric::kDEff:
      return "dimensions holding 95 % of the covariance variance (metrics.md §4), per kv head";
    case LayerMapMetric::kKurtosis:
      return "pooled excess kurtosis of the tensor as captured (metrics.md §6.1), per kv head";
    case LayerMapMetric::kOutlierRate:
      return "fraction of Kakeya scaled residuals with |s| > 2.5 (Gaussian 1.24 %), per layer: "
             "every head of a row shows the layer's rate";
    case LayerMapMetric::kRelMse:
      return "relative MSE Σ‖x − decoded‖² / Σ‖x‖² of the current run, per kv head";
    case LayerMapMetric::kAttnKl:
      return "mean KL(π_exact ‖ π_compressed) of attention, both streams compressed (metrics.md "
             "§3), per kv head";
    case LayerMapMetric::kBytes:
      return "container bytes of the current run, per layer: every head of a row shows the "
             "layer's bytes";
  }
  return "";
}

bool contains(const std::vector<int>& v, int x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

const sessions::LayerAnalysis* find_analysis(const Snapshot& s, int layer) {
  if (!s.analysis) return nullptr;
  for (const auto& l : s.analysis->layers) {
    if (l.layer == layer) return &l;
  }
  return nullptr;
}

const sessions::LayerResult* find_run(const Snapshot& s, int layer) {
  if (!s.run) return nullptr;
  for (const auto& l : s.run->layers) {
    if (l.layer == layer) return &l;
  }
  return nullptr;
}

const sessions::OutlierLayer* find_outliers(const Snapshot& s, int layer) {
  if (!s.outliers) return nullptr;
  for (const auto& l : s.outliers->layers) {
    if (l.layer == layer) return &l;
  }
  return nullptr;
}

const sessions::HeadAnalysis* find_head(const sessions::LayerAnalysis* la, int h) {
  if (!la) return nullptr;
  for (const auto& hd : la->heads) {
    if (hd.kv_head == h) return &hd;
  }
  return nullptr;
}

/// Value and n/a reason of one cell.
std::pair<double, std::string> pick(const Snapshot& s, LayerMapMetric m, LayerMapStream st,
                                    int layer, int h) {
  switch (m) {
    case LayerMapMetric::kSigmaQCond:
    case LayerMapMetric::kDEff:
    case LayerMapMetric::kKurtosis: {
      if (!s.analysis) return {kNaN, "no analysis yet"};
      const sessions::LayerAnalysis* la = find_analysis(s, layer);
      if (!la) return {kNaN, "layer not analysed"};
      const sessions::HeadAnalysis* hd = find_head(la, h);
      if (!hd) return {kNaN, "kv head not analysed"};
      if (m == LayerMapMetric::kSigmaQCond) {
        if (!hd->sigma_q) return {kNaN, "no Σ_q (layer has no q_pre)"};
        return {hd->sigma_q->cond_reg, ""};
      }
      const sessions::TensorStats* t = nullptr;
      if (st == LayerMapStream::kKWhitened) {
        if (!hd->k_whitened) return {kNaN, "no whitened K (layer has no q_pre)"};
        t = &*hd->k_whitened;
      } else {
        t = st == LayerMapStream::kV ? &hd->v : &hd->k_pre;
      }
      if (m == LayerMapMetric::kDEff) return {static_cast<double>(t->spectrum.d_eff[1]), ""};
      return {t->kurtosis.pooled, std::isfinite(t->kurtosis.pooled) ? "" : "constant tensor"};
    }
    case LayerMapMetric::kOutlierRate: {
      if (!s.outliers) return {kNaN, "no outlier rates (run has no Kakeya stream)"};
      const sessions::OutlierLayer* ol = find_outliers(s, layer);
      if (!ol) return {kNaN, "layer not in the run"};
      const auto& c = st == LayerMapStream::kV ? ol->v : ol->k;
      if (!c) return {kNaN, "stream not coded by kakeya_pca in this layer"};
      return {c->rate(kLayerMapOutlierIndex), ""};
    }
    case LayerMapMetric::kRelMse:
    case LayerMapMetric::kAttnKl:
    case LayerMapMetric::kBytes: {
      if (!s.run) return {kNaN, "no run yet"};
      const sessions::LayerResult* lr = find_run(s, layer);
      if (!lr) return {kNaN, "layer not in the run"};
      if (m == LayerMapMetric::kBytes) {
        if (st == LayerMapStream::kK) return {static_cast<double>(lr->k.bytes), ""};
        if (st == LayerMapStream::kV) return {static_cast<double>(lr->v.bytes), ""};
        return {static_cast<double>(lr->k.bytes + lr->v.bytes), ""};
      }
      if (m == LayerMapMetric::kAttnKl) {
        if (!lr->has_attn) return {kNaN, "no attention metrics (no q_pre or turned off)"};
        if (h >= static_cast<int>(lr->attn_heads.size())) return {kNaN, "kv head not in the run"};
        return {lr->attn_heads[static_cast<size_t>(h)].kl(), ""};
      }
      const sessions::StreamResult& sr = st == LayerMapStream::kV ? lr->v : lr->k;
      if (sr.failed) return {kNaN, "stream failed: " + sr.error_code};
      if (h >= static_cast<int>(sr.heads.size())) return {kNaN, "kv head not in the run"};
      return {sr.heads[static_cast<size_t>(h)].rel_mse(), ""};
    }
  }
  return {kNaN, ""};
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const auto& p : parts) {
    if (p.empty()) continue;
    if (!out.empty()) out += sep;
    out += p;
  }
  return out;
}

std::string fmt_or_na(std::optional<double> v, const char* f) {
  if (!v || !std::isfinite(*v)) return "n/a";
  return format_number(f, *v);
}

}  // namespace

const std::vector<LayerMapMetric>& layer_map_metrics() {
  static const std::vector<LayerMapMetric> all = {
      LayerMapMetric::kSigmaQCond,  LayerMapMetric::kDEff,   LayerMapMetric::kKurtosis,
      LayerMapMetric::kOutlierRate, LayerMapMetric::kRelMse, LayerMapMetric::kAttnKl,
      LayerMapMetric::kBytes};
  return all;
}

std::string layer_map_metric_name(LayerMapMetric m) {
  switch (m) {
    case LayerMapMetric::kSigmaQCond:
      return "Σ_q condition";
    case LayerMapMetric::kDEff:
      return "d_eff @ 0.95";
    case LayerMapMetric::kKurtosis:
      return "excess kurtosis";
    case LayerMapMetric::kOutlierRate:
      return "outlier rate (T = 2.5)";
    case LayerMapMetric::kRelMse:
      return "relative MSE";
    case LayerMapMetric::kAttnKl:
      return "attention KL";
    case LayerMapMetric::kBytes:
      return "bytes";
  }
  return "";
}

std::vector<LayerMapStream> layer_map_streams(LayerMapMetric m) {
  switch (m) {
    case LayerMapMetric::kDEff:
    case LayerMapMetric::kKurtosis:
      return {LayerMapStream::kK, LayerMapStream::kKWhitened, LayerMapStream::kV};
    case LayerMapMetric::kOutlierRate:
    case LayerMapMetric::kRelMse:
      return {LayerMapStream::kK, LayerMapStream::kV};
    case LayerMapMetric::kBytes:
      return {LayerMapStream::kBoth, LayerMapStream::kK, LayerMapStream::kV};
    case LayerMapMetric::kSigmaQCond:
    case LayerMapMetric::kAttnKl:
      return {LayerMapStream::kNone};
  }
  return {LayerMapStream::kNone};
}

std::string layer_map_stream_name(LayerMapMetric m, LayerMapStream s) {
  const bool analysis = m == LayerMapMetric::kDEff || m == LayerMapMetric::kKurtosis;
  switch (s) {
    case LayerMapStream::kNone:
      return "";
    case LayerMapStream::kK:
      return analysis ? "K pre-RoPE" : "K";
    case LayerMapStream::kKWhitened:
      return "whitened K";
    case LayerMapStream::kV:
      return "V";
    case LayerMapStream::kBoth:
      return "K+V";
  }
  return "";
}

std::string layer_map_exact(double v) {
  if (!std::isfinite(v)) return "n/a";
  return format_number("%.17g", v);
}

LayerMapModel build_layer_map(const Snapshot& s, LayerMapMetric metric, LayerMapStream stream) {
  LayerMapModel m;
  m.metric = metric;
  const std::vector<LayerMapStream> offered = layer_map_streams(metric);
  m.stream =
      std::find(offered.begin(), offered.end(), stream) != offered.end() ? stream : offered.front();
  const std::string sname = layer_map_stream_name(metric, m.stream);
  m.metric_label = layer_map_metric_name(metric) + (sname.empty() ? "" : " — " + sname);
  m.unit_note = unit_note(metric);
  m.per_layer = metric == LayerMapMetric::kOutlierRate || metric == LayerMapMetric::kBytes;
  m.selection = s.selection;
  m.generation = s.generation;
  m.synthetic = s.capture.synthetic;
  if (s.capture.path.empty()) {
    m.hint =
        "No capture open. Open a capture (.kvc.h5) or the demo capture to see the layer × "
        "kv-head map.";
    return m;
  }
  const std::string file = s.capture.path.substr(s.capture.path.find_last_of('/') + 1);
  m.capture_label = file + (s.capture.model_name.empty() ? "" : " · " + s.capture.model_name) +
                    " · " + std::to_string(s.capture.layers.size()) + " layers × " +
                    std::to_string(s.capture.num_kv_heads) + " kv heads";
  m.num_kv_heads = s.capture.num_kv_heads;

  const bool analysis_metric = metric == LayerMapMetric::kSigmaQCond ||
                               metric == LayerMapMetric::kDEff ||
                               metric == LayerMapMetric::kKurtosis;
  if (analysis_metric && !s.analysis) {
    m.hint = "The capture analysis has not finished yet (Analyze). " +
             layer_map_metric_name(metric) + " comes from it.";
  } else if (!analysis_metric && !s.run) {
    m.hint =
        "No run yet: run the current configuration to see " + layer_map_metric_name(metric) + ".";
  }

  const bool run_metric = !analysis_metric;
  for (size_t i = 0; i < s.capture.layers.size(); ++i) {
    LayerMapRow row;
    row.layer = s.capture.layers[i];
    if (i < s.capture.attention.size()) row.attention = s.capture.attention[i];
    if (i < s.capture.has_q.size()) row.has_q = s.capture.has_q[i];
    const sessions::LayerResult* lr = find_run(s, row.layer);
    const sessions::LayerAnalysis* la = find_analysis(s, row.layer);
    if (s.config) {
      row.boundary = contains(s.config->boundary, row.layer);
    } else if (lr) {
      row.boundary = lr->boundary;
    }
    if (s.run) {
      row.in_run = lr != nullptr;
    } else if (s.config) {
      row.in_run = s.config->layers.empty()
                       ? (row.attention != "sliding" || s.config->include_sliding)
                       : contains(s.config->layers, row.layer);
    } else {
      row.in_run = row.attention != "sliding";
    }
    row.run_boundary = lr ? lr->boundary : row.boundary;
    if (lr) {
      row.whitened = lr->whitened;
      row.q_skip = lr->q_skip;
    } else if (la) {
      row.q_skip = la->skip;
    }
    std::vector<std::string> st;
    if (row.boundary) st.push_back("boundary (both streams bf16)");
    if (lr && lr->boundary != row.boundary) st.push_back("boundary change waits for the rerun");
    if (row.whitened) st.push_back("K whitened (Q-preconditioned)");
    if (row.q_skip) st.push_back("Σ_q skip rule: kept unwhitened");
    if (row.attention == "sliding") st.push_back("sliding-window attention");
    if (!row.in_run) st.push_back(s.run ? "not covered by the run" : "not selected for the run");
    if (!row.has_q) st.push_back("no q_pre");
    row.status = join(st, " · ");
    for (int h = 0; h < m.num_kv_heads; ++h) {
      auto [v, why] = pick(s, metric, m.stream, row.layer, h);
      LayerMapCell c;
      c.value = v;
      c.text = cell_text(metric, v);
      c.why_na = std::isfinite(v) ? "" : why;
      // Run metrics: the colour range covers the compressed layers; boundary layers (bf16)
      // would otherwise squash it and are drawn clamped at its end.
      const bool in_range = !(run_metric && row.run_boundary);
      if (std::isfinite(v) && in_range) {
        if (!m.has_values) {
          m.min = m.max = v;
          m.has_values = true;
        }
        m.min = std::min(m.min, v);
        m.max = std::max(m.max, v);
      }
      row.cells.push_back(std::move(c));
    }
    m.rows.push_back(std::move(row));
  }
  // Log colour scale where positive values span more than two decades (Σ_q cond always).
  m.log_scale =
      m.has_values && m.min > 0 && (metric == LayerMapMetric::kSigmaQCond || m.max / m.min > 100.0);
  if (run_metric && std::any_of(m.rows.begin(), m.rows.end(),
                                [](const LayerMapRow& r) { return r.run_boundary; })) {
    m.scale_note = "range: compressed layers (bf16 layers clamped)";
  }

  if (s.run) {
    m.has_run = true;
    m.run_is_current = s.run_is_current;
    m.run_partial = s.run_partial;
    m.run_in_flight = s.run_in_flight;
    m.ratio = s.run->ratio_vs_bf16();
    m.totals_line = "ratio " + fmt_or_na(m.ratio, "%.4f") + " · " +
                    std::to_string(s.run->total_bytes) + " bytes (bf16 " +
                    std::to_string(s.run->bf16_bytes) + " bytes)";
    if (s.run_partial)
      m.totals_line = "PARTIAL (cancelled, " + std::to_string(s.run->layers.size()) +
                      " layers finished): " + m.totals_line;
    const nlohmann::json j = sessions::run_result_to_json(*s.run);
    std::string q = "K rel_mse (pooled over layers) " +
                    fmt_or_na(sessions::metric_value(j, "k_rel_mse"), "%.4g") +
                    " · V rel_mse (pooled over layers) " +
                    fmt_or_na(sessions::metric_value(j, "v_rel_mse"), "%.4g");
    if (auto kl = sessions::metric_value(j, "attn_kl")) {
      q += " · attn KL (mean over layers) " + fmt_or_na(kl, "%.4g");
    }
    if (s.run->failed) q += " · some layer-streams FAILED";
    m.quality_line = q;
    if (s.baseline && s.baseline->run) {
      const double b = s.baseline->run->ratio_vs_bf16();
      m.baseline_line = "Baseline run #" + std::to_string(s.baseline->id) + ": ratio " +
                        fmt_or_na(b, "%.4f") +
                        (s.run_partial ? std::string(" (Δ not shown: the current run is partial)")
                                       : " · Δratio " + fmt_or_na(m.ratio - b, "%+.4f"));
    }
  }
  return m;
}

std::string layer_map_csv(const LayerMapModel& m) {
  std::ostringstream os;
  const std::string label = m.metric_label;
  os << "layer,attention,boundary,in_run,whitened,q_skip";
  for (int h = 0; h < m.num_kv_heads; ++h) os << ",\"" << label << " kv_head " << h << "\"";
  os << "\n";
  for (const auto& r : m.rows) {
    os << r.layer << "," << r.attention << "," << (r.boundary ? 1 : 0) << "," << (r.in_run ? 1 : 0)
       << "," << (r.whitened ? 1 : 0) << "," << (r.q_skip ? 1 : 0);
    for (const auto& c : r.cells) {
      os << ",";
      if (std::isfinite(c.value)) os << layer_map_exact(c.value);
    }
    os << "\n";
  }
  return os.str();
}

}  // namespace kvwb::views
