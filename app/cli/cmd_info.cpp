// `kvwb info FILE [--json]`: what a capture holds (attributes, layers, tensors, shapes, dtypes),
// per-tensor row-norm summaries and counts of non-finite values. Synthetic captures are marked.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "app/cli/cli_common.h"
#include "io/capture.h"
#include "io/synthetic_capture.h"

namespace kvwb::app {

namespace {

struct TensorSummary {
  bool present = false;
  std::string dtype;
  std::vector<size_t> shape;  // [S, H, T, D]
  double mean_norm = 0;       // mean row L2 norm over rows without non-finite values
  double max_norm = 0;        // largest row L2 norm over those rows
  size_t non_finite = 0;      // number of NaN/Inf values
};

TensorSummary summarise(const io::CaptureReader& r, int layer, io::TensorKind kind,
                        const std::string& dtype) {
  TensorSummary s;
  if (!r.has(layer, kind)) return s;
  io::ReadOptions opt;
  opt.check_finite = false;
  const codec::Tensor4 t = r.read(layer, kind, opt);
  s.present = true;
  s.dtype = dtype;
  s.shape = {t.s, t.h, t.t, t.d};
  double sum = 0;
  size_t rows = 0;
  for (size_t i = 0; i < t.rows(); ++i) {
    const float* row = t.data.data() + i * t.d;
    double n2 = 0;
    size_t bad = 0;
    for (size_t j = 0; j < t.d; ++j) {
      if (!std::isfinite(row[j])) {
        ++bad;
        continue;
      }
      n2 += static_cast<double>(row[j]) * row[j];
    }
    s.non_finite += bad;
    if (bad) continue;
    const double n = std::sqrt(n2);
    sum += n;
    s.max_norm = std::max(s.max_norm, n);
    ++rows;
  }
  s.mean_norm = rows ? sum / static_cast<double>(rows) : 0.0;
  return s;
}

std::string shape_text(const std::vector<size_t>& d) {
  std::string out = "[";
  for (size_t i = 0; i < d.size(); ++i) {
    if (i) out.push_back(',');
    out.append(std::to_string(d[i]));
  }
  out.push_back(']');
  return out;
}

void run_info(const std::string& path, bool json) {
  io::CaptureReader reader(path);
  const io::CaptureInfo& ci = reader.info();
  const bool synthetic = io::is_synthetic_capture(ci.model_name, ci.text_source);
  constexpr io::TensorKind kKinds[] = {io::TensorKind::kKPre, io::TensorKind::kK,
                                       io::TensorKind::kV, io::TensorKind::kQPre};

  nlohmann::json layers = nlohmann::json::array();
  std::vector<std::vector<TensorSummary>> summaries;
  for (const io::LayerInfo& li : ci.layers) {
    const std::string dtypes[] = {li.dtype_k_pre, li.dtype_k, li.dtype_v, li.dtype_q_pre};
    std::vector<TensorSummary> row;
    nlohmann::json jl = {{"layer", li.layer},         {"attention", li.attention},
                         {"has_k_pre", li.has_k_pre}, {"has_k", li.has_k},
                         {"has_v", li.has_v},         {"has_q_pre", li.has_q_pre}};
    if (li.attention == "sliding") jl["sliding_window"] = li.sliding_window;
    nlohmann::json dt = nlohmann::json::object(), shapes = nlohmann::json::object(),
                   norms = nlohmann::json::object(), nonfin = nlohmann::json::object();
    for (size_t k = 0; k < 4; ++k) {
      const TensorSummary s = summarise(reader, li.layer, kKinds[k], dtypes[k]);
      const std::string name = io::tensor_kind_name(kKinds[k]);
      if (s.present) {
        dt[name] = s.dtype;
        shapes[name] = s.shape;
        norms[name] = {{"mean_row_l2", s.mean_norm}, {"max_row_l2", s.max_norm}};
        nonfin[name] = s.non_finite;
      }
      row.push_back(s);
    }
    jl["dtype"] = dt;
    jl["shape"] = shapes;
    jl["norms"] = norms;
    jl["non_finite"] = nonfin;
    layers.push_back(jl);
    summaries.push_back(std::move(row));
  }

  if (json) {
    nlohmann::json j = {
        {"file", path},
        {"kvcapture_version", ci.version},
        {"model_name", ci.model_name},
        {"synthetic", synthetic},
        {"num_layers", ci.num_layers},
        {"num_query_heads", ci.num_query_heads},
        {"num_kv_heads", ci.num_kv_heads},
        {"head_dim", ci.head_dim},
        {"rope_style", std::string(codec::rope_style_name(ci.rope_style))},
        {"rope_theta", ci.rope_theta},
        {"rotary_dim", ci.rotary_dim},
        {"qk_norm", ci.qk_norm},
        {"source_dtype", ci.source_dtype},
        {"text_source", ci.text_source},
        {"sequences", ci.sequences},
        {"tokens", ci.tokens},
        {"has_tokens", ci.has_tokens},
        {"has_positions", ci.has_positions},
        {"layers_present", ci.layers.size()},
        {"layers", layers},
    };
    std::printf("%s\n", j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    return;
  }

  std::printf("file:        %s\n", path.c_str());
  if (synthetic) std::printf("*** SYNTHETIC DATA: generated, not model activations ***\n");
  std::printf("model:       %s%s\n", ci.model_name.c_str(), synthetic ? "  [SYNTHETIC]" : "");
  std::printf("format:      kvcapture_version %d\n", ci.version);
  std::printf("heads:       %d query / %d KV (GQA group %d), head_dim %d\n", ci.num_query_heads,
              ci.num_kv_heads, ci.num_query_heads / ci.num_kv_heads, ci.head_dim);
  if (ci.rope_style == codec::RopeStyle::kNone)
    std::printf("rope:        none, qk_norm %d\n", ci.qk_norm ? 1 : 0);
  else
    std::printf("rope:        %s, theta %g, rotary_dim %d, qk_norm %d\n",
                std::string(codec::rope_style_name(ci.rope_style)).c_str(), ci.rope_theta,
                ci.rotary_dim, ci.qk_norm ? 1 : 0);
  std::printf("data:        %d sequences x %d tokens; /tokens %s, /positions %s\n", ci.sequences,
              ci.tokens, ci.has_tokens ? "yes" : "no",
              ci.has_positions ? "yes" : "no (default 0..T-1)");
  if (!ci.source_dtype.empty()) std::printf("source dtype: %s\n", ci.source_dtype.c_str());
  if (!ci.text_source.empty()) std::printf("text:        %s\n", ci.text_source.c_str());
  std::printf("layers:      %zu of %d present\n\n", ci.layers.size(), ci.num_layers);
  std::printf("%5s  %-9s %-6s %-8s %-18s %12s %12s %10s\n", "layer", "attention", "tensor", "dtype",
              "shape [S,H,T,D]", "row L2 mean", "row L2 max", "non-finite");
  size_t total_bad = 0;
  for (size_t i = 0; i < ci.layers.size(); ++i) {
    const io::LayerInfo& li = ci.layers[i];
    std::string att = li.attention;
    if (li.attention == "sliding") att += "(" + std::to_string(li.sliding_window) + ")";
    for (size_t k = 0; k < 4; ++k) {
      const TensorSummary& s = summaries[i][k];
      if (!s.present) continue;
      total_bad += s.non_finite;
      std::printf("%5d  %-9s %-6s %-8s %-18s %12.4f %12.4f %10zu\n", li.layer, att.c_str(),
                  io::tensor_kind_name(kKinds[k]), s.dtype.c_str(), shape_text(s.shape).c_str(),
                  s.mean_norm, s.max_norm, s.non_finite);
    }
  }
  if (total_bad)
    std::printf("\nwarning: %zu non-finite values; norms above skip the rows that hold them\n",
                total_bad);
}

}  // namespace

void add_info_command(CLI::App& app) {
  struct Args {
    std::string file;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "info",
      "Describe a capture: attributes, layers, tensors, shapes, dtypes, norms, non-finite counts");
  cmd->add_option("FILE", args->file, "Capture file (.kvc.h5)")->required();
  cmd->add_flag("--json", args->json, "Print one JSON object instead of text");
  cmd->callback([args] { run_info(args->file, args->json); });
}

}  // namespace kvwb::app
