#pragma once
// Model of the Σ_q chart (no widgets): per layer and kv head the regularised condition number
// cond(Σ_reg) and max|L| of the whitening factor, the per-layer m_l = max over heads, and the skip
// rule of codec-kakeya.md §8.4 / decisions.md #4 (auto-skip when m_l > kSkipRuleFactor · median)
// — all values of the analysis, only picked here.
#include <string>
#include <vector>

#include "views/models/chart_series.h"
#include "views/models/snapshot.h"

namespace kvwb::views {

struct SigmaQHead {
  int kv_head = 0;
  double cond_reg = 0;   // cond(Σ_reg) (dimensionless)
  double max_abs_L = 0;  // largest |L| entry (units of q: L·Lᵀ = Σ_reg)
};

struct SigmaQLayer {
  int layer = 0;
  std::string attention;  // "full" | "sliding"
  bool has_q = false;     // q_pre present (Σ_q computed)
  std::vector<SigmaQHead> heads;
  double m_l = 0;          // LayerAnalysis::max_abs_L (max over heads)
  double skip_ratio = 0;   // m_l / median
  bool skip = false;       // auto-skipped by the rule
  bool user_skip = false;  // in AnalysisResult::user_skip_layers
};

struct SigmaQModel {
  std::string title;                // "Σ_q conditioning — <file> · all layers[ · SYNTHETIC]"
  std::string note;                 // empty state, or "no q_pre in this capture"
  std::vector<SigmaQLayer> layers;  // analysed layers, ascending
  int kv_heads = 0;
  double median = 0;             // AnalysisResult::skip_median
  double factor = 0;             // codec::kSkipRuleFactor
  double threshold = 0;          // factor · median: layers with m_l above it are skipped
  std::vector<int> skip_layers;  // AnalysisResult::skip_layers

  /// Plotted series (x = layer): "cond(Σ_reg) kv head h", "max|L| kv head h", "m_l (max over
  /// heads)", "skip threshold (2 × median)" (two points spanning the layers), "median m_l",
  /// "auto-skipped" (x = skipped layer, y = m_l).
  std::vector<PlotSeries> cond_series() const;
  std::vector<PlotSeries> max_l_series() const;
  bool any_q() const;
  bool empty() const { return !any_q(); }
};

SigmaQModel build_sigma_q_model(const Snapshot& snapshot);

/// CSV of every plotted series of both panels (header "series,layer,value").
std::string sigma_q_csv(const SigmaQModel& m);

}  // namespace kvwb::views
