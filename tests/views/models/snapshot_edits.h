#pragma once
// Edits of a test snapshot's results (gtest-free: shared by the view-model tests and the Qt view
// tests): a mutable copy of the run or the analysis installed in the snapshot, a layer of it by
// number, and the Σ_q skip-rule case drawn on the demo analysis.
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "sessions/analysis/analysis.h"
#include "sessions/run/runner.h"
#include "views/models/snapshot.h"

namespace kvwb::test {

/// Replaces the run of `s` by a copy (other holders of the old run keep it) and returns the copy
/// to edit; it lives as long as `s` holds it.
inline sessions::RunResult& edit_run(views::Snapshot& s) {
  auto run = std::make_shared<sessions::RunResult>(*s.run);
  s.run = run;
  return *run;
}

/// As edit_run, for the analysis of `s`.
inline sessions::AnalysisResult& edit_analysis(views::Snapshot& s) {
  auto an = std::make_shared<sessions::AnalysisResult>(*s.analysis);
  s.analysis = an;
  return *an;
}

/// The entry of `layers` (run or analysis layers) with number `layer`; throws when there is none.
template <class Layer>
Layer& layer_of(std::vector<Layer>& layers, int layer) {
  for (Layer& l : layers)
    if (l.layer == layer) return l;
  throw std::out_of_range("no layer " + std::to_string(layer) + " in the test snapshot");
}

/// Layer `layer` auto-skipped by the Σ_q rule, as the analysis marks it when its m_l is 3 × the
/// median: m_l, skip ratio 3, skip, and the only layer of skip_layers.
inline void mark_auto_skipped(sessions::AnalysisResult& an, int layer) {
  sessions::LayerAnalysis& l = layer_of(an.layers, layer);
  l.max_abs_L = 3 * an.skip_median;
  l.skip_ratio = 3;
  l.skip = true;
  an.skip_layers = {layer};
}

}  // namespace kvwb::test
