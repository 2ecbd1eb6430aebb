#pragma once
// Snapshots for the view-model tests, built the way the workbench builds them
// (app/gui/workbench.cpp): the capture summary from io::CaptureInfo, sessions::analyze_capture of
// every layer, sessions::run_config with collect_residuals and sessions::outlier_rates_from_run
// (null when the run has no Kakeya stream). No Qt, no display.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "io/capture.h"
#include "io/synthetic_capture.h"
#include "sessions/analysis/analysis.h"
#include "sessions/config/run_config.h"
#include "sessions/run/runner.h"
#include "tests/sessions/demo_fixture.h"
#include "tests/test_support.h"
#include "views/models/chart_series.h"
#include "views/models/snapshot.h"

namespace kvwb::test {

/// The demo capture of these tests: 3 layers, 2 kv heads, 4 query heads, D = 64, 2 sequences of
/// 320 tokens, q_pre in every layer, labelled SYNTHETIC.
inline const std::string& view_demo_capture() {
  return small_demo_capture("view_models_demo.kvc.h5", 64, 320);
}

/// tiny1m on WikiText-2 (16 × 256 tokens, 4 layers, 2 kv heads, D = 64), or "" when absent.
inline std::string tiny1m_capture() { return real_file("tiny1m_wikitext2.kvc.h5"); }

/// A run configuration from its JSON (docs/run-config.md).
inline sessions::RunConfig config_of(const nlohmann::json& j) {
  return sessions::run_config_from_json(j, "test");
}

/// What the workbench knows about a capture (app/gui/workbench.cpp summarize()).
inline views::CaptureSummary summary_of(const std::string& path) {
  io::CaptureReader reader(path);
  const io::CaptureInfo& ci = reader.info();
  views::CaptureSummary s;
  s.path = std::filesystem::absolute(path).string();
  s.model_name = ci.model_name;
  s.synthetic = io::is_synthetic_capture(ci.model_name, ci.text_source);
  s.num_layers = ci.num_layers;
  s.num_query_heads = ci.num_query_heads;
  s.num_kv_heads = ci.num_kv_heads;
  s.head_dim = ci.head_dim;
  s.sequences = ci.sequences;
  s.tokens = ci.tokens;
  for (const io::LayerInfo& li : ci.layers) {
    s.layers.push_back(li.layer);
    s.attention.push_back(li.attention);
    s.has_q.push_back(li.has_q_pre);
  }
  return s;
}

/// A snapshot as the workbench publishes it once the analysis (every layer) and the run of `cfg`
/// have finished. `analysis`: that of an earlier snapshot of the same capture (the workbench keeps
/// it across runs), or null to analyse now.
inline std::shared_ptr<views::Snapshot> make_snapshot(
    const std::string& path, const sessions::RunConfig& cfg, views::Selection selection,
    std::shared_ptr<const sessions::AnalysisResult> analysis = nullptr) {
  auto s = std::make_shared<views::Snapshot>();
  s->generation = 7;
  s->capture = summary_of(path);
  s->analysis = analysis ? analysis
                         : std::make_shared<const sessions::AnalysisResult>(
                               sessions::analyze_capture(path, sessions::AnalysisOptions{}));
  s->config = std::make_shared<const sessions::RunConfig>(cfg);
  sessions::RunOptions ro;
  ro.collect_residuals = true;
  ro.compute_sha256 = false;
  auto run = std::make_shared<const sessions::RunResult>(sessions::run_config(path, cfg, ro));
  auto rates =
      std::make_shared<const sessions::OutlierRates>(sessions::outlier_rates_from_run(*run, true));
  if (rates->has_k || rates->has_v) s->outliers = rates;
  s->run = run;
  s->run_is_current = true;
  s->selection = selection;
  s->backend_label = "CPU";
  return s;
}

/// The configuration of the demo snapshot: layers 0–1 of 3 run, layer 0 boundary (bf16), 128-row
/// blocks, K kakeya_pca b = 3 with outliers beyond 2.5, V kakeya_pca b = 2, Σ_q from the capture.
inline sessions::RunConfig demo_config() {
  return config_of({{"block_size", 128},
                    {"layers", "0-1"},
                    {"boundary", "0"},
                    {"k", {{"codec", "kakeya_pca"}, {"params", {{"outlier_threshold", 2.5}}}}},
                    {"v", {{"codec", "kakeya_pca"}, {"params", {{"bit_width", 2}}}}},
                    {"q_precond", "capture"}});
}

/// The demo snapshot (selection layer 1, kv head 1), built once per process.
inline std::shared_ptr<const views::Snapshot> demo_snapshot() {
  static const std::shared_ptr<const views::Snapshot> s =
      make_snapshot(view_demo_capture(), demo_config(), views::Selection{1, 1});
  return s;
}

inline const sessions::LayerAnalysis& analysis_layer(const views::Snapshot& s, int layer) {
  for (const auto& l : s.analysis->layers)
    if (l.layer == layer) return l;
  throw std::runtime_error("layer " + std::to_string(layer) + " not analysed");
}

inline const sessions::LayerResult& run_layer(const views::Snapshot& s, int layer) {
  for (const auto& l : s.run->layers)
    if (l.layer == layer) return l;
  throw std::runtime_error("layer " + std::to_string(layer) + " not in the run");
}

inline const sessions::OutlierLayer* outlier_layer(const views::Snapshot& s, int layer) {
  if (!s.outliers) return nullptr;
  for (const auto& l : s.outliers->layers)
    if (l.layer == layer) return &l;
  return nullptr;
}

/// The series named `name`, or nullptr.
inline const views::PlotSeries* find_series(const std::vector<views::PlotSeries>& all,
                                            const std::string& name) {
  for (const auto& s : all)
    if (s.name == name) return &s;
  return nullptr;
}
/// Not on a temporary: the pointer would dangle.
const views::PlotSeries* find_series(std::vector<views::PlotSeries>&&, const std::string&) = delete;

/// One row of a "series,x,y" CSV.
struct CsvPoint {
  std::string series;
  double x = 0, y = 0;
};

inline double csv_cell(const std::string& s) { return s.empty() ? std::nan("") : std::stod(s); }

/// Splits one CSV line into cells (RFC 4180 quoting: "a,b" and "" inside quotes).
inline std::vector<std::string> csv_cells(const std::string& line) {
  std::vector<std::string> cells(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cells.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cells.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      cells.emplace_back();
    } else {
      cells.back() += c;
    }
  }
  return cells;
}

/// Lines of `text` without the final empty one.
inline std::vector<std::string> csv_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

inline bool same_double(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }

/// `csv` is exactly `header` followed by every point of `series` in order (exact doubles, NaN as
/// an empty cell).
inline void expect_csv_equals_series(const std::string& csv, const std::string& header,
                                     const std::vector<views::PlotSeries>& series) {
  const auto lines = csv_lines(csv);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines[0], header);
  size_t row = 1, points = 0;
  for (const auto& s : series) {
    ASSERT_EQ(s.x.size(), s.y.size()) << s.name;
    for (size_t k = 0; k < s.x.size(); ++k, ++row, ++points) {
      ASSERT_LT(row, lines.size()) << "CSV has fewer rows than plotted points";
      const auto cells = csv_cells(lines[row]);
      ASSERT_EQ(cells.size(), 3u) << lines[row];
      EXPECT_EQ(cells[0], s.name);
      EXPECT_TRUE(same_double(csv_cell(cells[1]), s.x[k])) << s.name << " x[" << k << "]";
      EXPECT_TRUE(same_double(csv_cell(cells[2]), s.y[k])) << s.name << " y[" << k << "]";
    }
  }
  EXPECT_EQ(lines.size(), row);
  EXPECT_GT(points, 0u);
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace kvwb::test
