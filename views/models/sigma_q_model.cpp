#include "views/models/sigma_q_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "codec/math/calibration.h"
#include "sessions/analysis/analysis.h"

namespace kvwb::views {

bool SigmaQModel::any_q() const {
  return std::any_of(layers.begin(), layers.end(), [](const SigmaQLayer& l) { return l.has_q; });
}

namespace {

/// One series per kv head ("<name> kv head h") of a per-head value over the layers; heads with no
/// layer are left out.
std::vector<PlotSeries> per_head_series(const std::vector<SigmaQLayer>& layers, int kv_heads,
                                        const std::string& name, double SigmaQHead::*value) {
  std::vector<PlotSeries> out;
  for (int h = 0; h < kv_heads; ++h) {
    PlotSeries s{name + " kv head " + std::to_string(h), {}, {}};
    for (const SigmaQLayer& l : layers)
      for (const SigmaQHead& hd : l.heads)
        if (hd.kv_head == h) {
          s.x.push_back(l.layer);
          s.y.push_back(hd.*value);
        }
    if (!s.x.empty()) out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

std::vector<PlotSeries> SigmaQModel::cond_series() const {
  return per_head_series(layers, kv_heads, "cond(Σ_reg)", &SigmaQHead::cond_reg);
}

std::vector<PlotSeries> SigmaQModel::max_l_series() const {
  std::vector<PlotSeries> out = per_head_series(layers, kv_heads, "max|L|", &SigmaQHead::max_abs_L);
  PlotSeries ml{"m_l (max over heads)", {}, {}}, skipped{"auto-skipped", {}, {}};
  double lo = 0, hi = 0;
  bool first = true;
  for (const SigmaQLayer& l : layers) {
    if (!l.has_q) continue;
    ml.x.push_back(l.layer);
    ml.y.push_back(l.m_l);
    if (l.skip) {
      skipped.x.push_back(l.layer);
      skipped.y.push_back(l.m_l);
    }
    lo = first ? l.layer : std::min<double>(lo, l.layer);
    hi = first ? l.layer : std::max<double>(hi, l.layer);
    first = false;
  }
  if (ml.x.empty()) return out;
  out.push_back(std::move(ml));
  char name[64];
  std::snprintf(name, sizeof name, "skip threshold (%g × median)", factor);
  out.push_back({name, {lo - 0.5, hi + 0.5}, {threshold, threshold}});
  out.push_back({"median m_l", {lo - 0.5, hi + 0.5}, {median, median}});
  if (!skipped.x.empty()) out.push_back(std::move(skipped));
  return out;
}

SigmaQModel build_sigma_q_model(const Snapshot& snapshot) {
  SigmaQModel m;
  m.kv_heads = snapshot.capture.num_kv_heads;
  m.factor = codec::kSkipRuleFactor;
  m.title = chart_title("Σ_q conditioning", snapshot.capture, "");
  if (!snapshot.analysis) {
    m.note = waiting_note(snapshot, "analysis");
    return m;
  }
  const sessions::AnalysisResult& an = *snapshot.analysis;
  m.kv_heads = std::max(m.kv_heads, an.num_kv_heads);
  m.median = an.skip_median;
  m.threshold = m.factor * m.median;
  m.skip_layers = an.skip_layers;
  for (const auto& la : an.layers) {
    SigmaQLayer l;
    l.layer = la.layer;
    l.attention = la.attention;
    l.has_q = la.has_q;
    l.m_l = la.max_abs_L;
    l.skip_ratio = la.skip_ratio;
    l.skip = la.skip;
    l.user_skip = std::find(an.user_skip_layers.begin(), an.user_skip_layers.end(), la.layer) !=
                  an.user_skip_layers.end();
    for (const auto& h : la.heads)
      if (h.sigma_q) l.heads.push_back({h.kv_head, h.sigma_q->cond_reg, h.sigma_q->max_abs_L});
    l.has_q = l.has_q && !l.heads.empty();
    m.layers.push_back(std::move(l));
  }
  std::sort(m.layers.begin(), m.layers.end(),
            [](const SigmaQLayer& a, const SigmaQLayer& b) { return a.layer < b.layer; });
  if (m.layers.empty()) {
    m.note = "The analysis holds no layers.";
  } else if (!m.any_q()) {
    m.note =
        "This capture has no q_pre: Σ_q, its conditioning and the skip rule need the "
        "pre-RoPE queries (capture with q_pre to see them).";
  } else {
    m.title = chart_title("Σ_q conditioning", snapshot.capture, "all layers, every kv head");
    const bool missing = std::any_of(m.layers.begin(), m.layers.end(),
                                     [](const SigmaQLayer& l) { return !l.has_q; });
    if (missing) m.note = "Layers without q_pre are left out (no Σ_q).";
  }
  return m;
}

std::string sigma_q_csv(const SigmaQModel& m) {
  return series_csv("layer", "value", concat_series(m.cond_series(), m.max_l_series()));
}

}  // namespace kvwb::views
