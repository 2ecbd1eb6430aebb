#include "views/models/spectrum_model.h"

#include <cmath>

#include "sessions/analysis/analysis.h"

namespace kvwb::views {

std::string spectrum_tensor_name(SpectrumTensor t) {
  switch (t) {
    case SpectrumTensor::kPreRope:
      return "K pre-RoPE";
    case SpectrumTensor::kWhitened:
      return "K whitened";
    case SpectrumTensor::kV:
      return "V";
  }
  return "?";
}

std::vector<PlotSeries> SpectrumModel::series() const {
  std::vector<PlotSeries> out;
  for (const SpectrumCurve& c : curves) {
    const std::string name = spectrum_tensor_name(c.tensor);
    PlotSeries eig{name + " eigenvalue", {}, {}}, cum{name + " cumulative", {}, {}};
    for (size_t k = 0; k < c.eigenvalues.size(); ++k) {
      eig.x.push_back(static_cast<double>(k + 1));
      eig.y.push_back(c.eigenvalues[k]);
    }
    for (size_t k = 0; k < c.cumulative.size(); ++k) {
      cum.x.push_back(static_cast<double>(k + 1));
      cum.y.push_back(c.cumulative[k]);
    }
    out.push_back(std::move(eig));
    out.push_back(std::move(cum));
    for (size_t r = 0; r < sessions::kSpectrumRatios.size(); ++r) {
      char buf[32];
      std::snprintf(buf, sizeof buf, " d_eff(%.2f)", sessions::kSpectrumRatios[r]);
      out.push_back(
          {name + buf, {static_cast<double>(c.d_eff[r])}, {sessions::kSpectrumRatios[r]}});
    }
  }
  return out;
}

SpectrumModel build_spectrum_model(const Snapshot& snapshot, int layer, int kv_head,
                                   const std::vector<SpectrumTensor>& tensors) {
  SpectrumModel m;
  m.kv_heads = snapshot.capture.num_kv_heads;
  m.title = chart_title("Spectrum", snapshot.capture, "");
  if (!snapshot.analysis) {
    m.note = waiting_note(snapshot, "analysis");
    return m;
  }
  const sessions::AnalysisResult& an = *snapshot.analysis;
  const sessions::LayerAnalysis* la = pick_layer(an.layers, layer, "analysis", m.layers, m.note);
  if (!la) return m;
  if (la->heads.empty()) {
    m.note = "Layer " + std::to_string(la->layer) + " has no analysed kv heads.";
    return m;
  }
  const sessions::HeadAnalysis* ha =
      &find_or_first(la->heads, &sessions::HeadAnalysis::kv_head, kv_head);
  m.layer = la->layer;
  m.kv_head = ha->kv_head;
  m.has_whitened = ha->k_whitened.has_value();
  m.title =
      chart_title("Spectrum", snapshot.capture,
                  "layer " + std::to_string(m.layer) + " · kv head " + std::to_string(m.kv_head));
  for (SpectrumTensor t : tensors) {
    const sessions::TensorStats* ts = nullptr;
    if (t == SpectrumTensor::kPreRope) ts = &ha->k_pre;
    if (t == SpectrumTensor::kV) ts = &ha->v;
    if (t == SpectrumTensor::kWhitened) {
      if (!ha->k_whitened) {
        m.note = "Layer " + std::to_string(m.layer) +
                 " has no Σ_q (no q_pre in the capture): whitened K is not available.";
        continue;
      }
      ts = &*ha->k_whitened;
    }
    m.curves.push_back({t, ts->spectrum.eigenvalues, ts->spectrum.cumulative, ts->spectrum.d_eff});
  }
  return m;
}

std::string spectrum_csv(const SpectrumModel& m) {
  return series_csv("component", "value", m.series());
}

}  // namespace kvwb::views
