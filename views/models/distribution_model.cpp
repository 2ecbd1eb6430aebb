#include "views/models/distribution_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "base/errors.h"
#include "codec/traits.h"
#include "sessions/analysis/analysis.h"

namespace kvwb::views {

namespace {

std::string t_text(double t) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", t);
  return buf;
}

}  // namespace

std::vector<PlotSeries> DistributionModel::main_series() const {
  std::vector<PlotSeries> out;
  if (!has_histogram()) return out;
  const sessions::ResidualHistogram& h = *histogram;
  PlotSeries dens{"residual density", {}, {}};
  for (size_t i = 0; i < h.counts.size(); ++i) {
    dens.x.push_back(0.5 * (h.edges[i] + h.edges[i + 1]));
    dens.y.push_back(h.density[i]);
  }
  out.push_back(std::move(dens));
  out.push_back({"N(0,1) density", normal_x, normal_pdf});
  PlotSeries cent{"Lloyd-Max centroids (b=" + std::to_string(h.bit_width) +
                      (h.centroid_source == "gaussian" ? ", Gaussian)" : ", calibrated)"),
                  h.centroids, std::vector<double>(h.centroids.size(), std::nan(""))};
  out.push_back(std::move(cent));
  if (h.outlier_threshold) {
    const double t = *h.outlier_threshold;
    out.push_back({"outlier threshold ±" + t_text(t), {-t, t}, {std::nan(""), std::nan("")}});
  }
  return out;
}

std::vector<PlotSeries> DistributionModel::side_series() const {
  std::vector<PlotSeries> out;
  PlotSeries kk{"K pre-RoPE kurtosis", {}, {}}, vk{"V kurtosis", {}, {}};
  for (const auto& k : kurtosis) {
    kk.x.push_back(k.layer);
    kk.y.push_back(k.k_pre);
    vk.x.push_back(k.layer);
    vk.y.push_back(k.v);
  }
  const std::string t = t_text(sessions::kOutlierThresholds[static_cast<size_t>(threshold_index)]);
  PlotSeries kr{"K outlier rate |s|>" + t, {}, {}}, vr{"V outlier rate |s|>" + t, {}, {}};
  for (const auto& o : outliers) {
    if (o.k_rate) {
      kr.x.push_back(o.layer);
      kr.y.push_back(*o.k_rate);
    }
    if (o.v_rate) {
      vr.x.push_back(o.layer);
      vr.y.push_back(*o.v_rate);
    }
  }
  const bool has_rates = !kr.x.empty() || !vr.x.empty();
  for (PlotSeries* s : {&kk, &vk, &kr, &vr})
    if (!s->x.empty()) out.push_back(std::move(*s));
  if (has_rates) {
    double lo = 0, hi = 0;
    bool first = true;
    for (const auto& o : outliers) {
      lo = first ? o.layer : std::min<double>(lo, o.layer);
      hi = first ? o.layer : std::max<double>(hi, o.layer);
      first = false;
    }
    out.push_back({"Gaussian rate |s|>" + t, {lo - 0.5, hi + 0.5}, {gaussian_rate, gaussian_rate}});
  }
  return out;
}

DistributionModel build_distribution_model(const Snapshot& snapshot, int layer, bool k_stream,
                                           int threshold_index) {
  DistributionModel m;
  m.k_stream = k_stream;
  m.threshold_index =
      std::clamp(threshold_index, 0, static_cast<int>(sessions::kOutlierThresholds.size()) - 1);
  m.gaussian_rate = sessions::gaussian_outlier_rates()[static_cast<size_t>(m.threshold_index)];
  m.title = chart_title("Residual distribution", snapshot.capture, "");
  if (snapshot.analysis) m.kurtosis = sessions::layer_kurtosis(*snapshot.analysis);
  if (snapshot.outliers) {
    const size_t ti = static_cast<size_t>(m.threshold_index);
    for (const auto& ol : snapshot.outliers->layers) {
      DistributionOutlierRow r{ol.layer, {}, {}};
      if (ol.k && ol.k->values) r.k_rate = ol.k->rate(ti);
      if (ol.v && ol.v->values) r.v_rate = ol.v->rate(ti);
      if (r.k_rate || r.v_rate) m.outliers.push_back(r);
    }
  }
  if (!snapshot.run) {
    m.note = waiting_note(snapshot, "run");
    return m;
  }
  const sessions::RunResult& run = *snapshot.run;
  const sessions::LayerResult* lr = pick_layer(run.layers, layer, "run", m.layers, m.note);
  if (!lr) return m;
  m.layer = lr->layer;
  const sessions::StreamResult& s = k_stream ? lr->k : lr->v;
  const std::string stream = k_stream ? "K" : "V";
  m.codec = s.codec;
  m.title = chart_title("Residual distribution", snapshot.capture,
                        "layer " + std::to_string(m.layer) + " · " + stream + " (" + s.codec + ")");
  if (s.failed) {
    m.note = "Layer " + std::to_string(m.layer) + " " + stream + " failed (" + s.error_code +
             "): " + s.error_message;
    return m;
  }
  if (!codec::codec_traits(s.codec).scaled_residuals) {
    m.note = "The residual view applies to kakeya_pca streams; layer " + std::to_string(m.layer) +
             " " + stream + " was coded by " + s.codec +
             (lr->boundary ? " (boundary layer)." : ".");
    return m;
  }
  try {
    m.histogram = sessions::residual_histogram(
        s, sessions::stream_config_for_layer(run.config, m.layer, k_stream), kDistributionBins,
        kDistributionRange);
  } catch (const Error& e) {
    m.note = std::string("Cannot read the stream's configuration: ") + e.what();
    return m;
  }
  if (m.histogram->values == 0) {
    m.note = "Layer " + std::to_string(m.layer) + " " + stream +
             ": no coded residuals in this run (every row is in the bf16 hot tail: fewer tokens "
             "than block_size, or the run was made without collect_residuals).";
    return m;
  }
  const int n = 321;
  for (int i = 0; i < n; ++i) {
    const double x = -kDistributionRange + 2.0 * kDistributionRange * i / (n - 1);
    m.normal_x.push_back(x);
    m.normal_pdf.push_back(sessions::standard_normal_pdf(x));
  }
  if (m.histogram->below + m.histogram->above > 0) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%llu of %llu values lie beyond ±%g (not drawn).",
                  static_cast<unsigned long long>(m.histogram->below + m.histogram->above),
                  static_cast<unsigned long long>(m.histogram->values), kDistributionRange);
    m.note = buf;
  }
  if (const std::string state = run_state_note(snapshot); !state.empty())
    m.note += std::string(m.note.empty() ? "" : " ") + state;
  return m;
}

std::string distribution_csv(const DistributionModel& m) {
  return series_csv("x", "y", concat_series(m.main_series(), m.side_series()));
}

}  // namespace kvwb::views
