#pragma once
// Model of the spectrum chart (no widgets): eigenvalues and cumulative explained variance of the
// covariance of one (layer, kv head) for K pre-RoPE, whitened K (layers with Σ_q) and V, with the
// d_eff markers at the ratios of sessions::kSpectrumRatios — values of the analysis, not computed.
#include <array>
#include <cstddef>
#include <string>
#include <vector>

#include "views/models/chart_series.h"
#include "views/models/snapshot.h"

namespace kvwb::views {

enum class SpectrumTensor { kPreRope, kWhitened, kV };

/// Legend name of a tensor: "K pre-RoPE", "K whitened", "V".
std::string spectrum_tensor_name(SpectrumTensor t);

struct SpectrumCurve {
  SpectrumTensor tensor = SpectrumTensor::kPreRope;
  std::vector<double> eigenvalues;  // λ_1 ≥ … ≥ λ_D (squared units of the tensor), as analysed
  std::vector<double> cumulative;  // explained-variance fraction at k = 1..D
  std::array<size_t, 3> d_eff{};   // at sessions::kSpectrumRatios
};

struct SpectrumModel {
  std::string title;  // "Spectrum — <file> · layer L · kv head h[ · SYNTHETIC]"
  std::string note;   // empty state or a hint ("no Σ_q in this layer: whitened K not available")
  std::vector<int> layers;            // analysed layers (for the layer selector)
  int kv_heads = 0;                   // kv heads of the capture (for the head selector)
  int layer = -1, kv_head = -1;       // what is shown (-1 = nothing)
  bool has_whitened = false;          // the layer has Σ_q (whitened K exists)
  std::vector<SpectrumCurve> curves;  // the requested tensors that exist, in request order

  /// Plotted series: per curve "<tensor> eigenvalue" (x = component k, 1-based),
  /// "<tensor> cumulative" and "<tensor> d_eff(r)" (x = d_eff, y = r) for each ratio.
  std::vector<PlotSeries> series() const;
  bool empty() const { return curves.empty(); }
};

/// Picks the spectra of (layer, kv_head) from snapshot.analysis. layer -1 (or a layer that was
/// not analysed) = the first analysed layer; kv_head out of range = head 0.
SpectrumModel build_spectrum_model(const Snapshot& snapshot, int layer, int kv_head,
                                   const std::vector<SpectrumTensor>& tensors);

/// CSV of the plotted series (header "series,component,value").
std::string spectrum_csv(const SpectrumModel& m);

}  // namespace kvwb::views
