#include "views/models/comparison_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "codec/codec.h"
#include "sessions/analysis/pareto.h"
#include "views/models/config_model.h"
#include "views/models/text_format.h"

namespace kvwb::views {

using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string value_text(const json& v) {
  if (v.is_null()) return "none";
  if (v.is_string()) return v.get<std::string>().empty() ? "\"\"" : v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "on" : "off";
  if (v.is_array()) {
    bool ints = true;
    for (const auto& x : v) ints = ints && x.is_number_integer();
    if (ints) {
      std::vector<int> xs;
      for (const auto& x : v) xs.push_back(x.get<int>());
      return xs.empty() ? "none" : layer_list_text(xs);
    }
    return v.dump();
  }
  return v.dump();
}

/// Leaves of a JSON object as "a.b.c" -> text (arrays are leaves).
void flatten(const json& j, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it)
      flatten(*it, prefix.empty() ? it.key() : prefix + "." + it.key(), out);
    return;
  }
  out[prefix] = value_text(j);
}

/// Readable name of a flattened key: "k.params.bit_width" -> "K · bit_width".
std::string setting_name(const std::string& key) {
  std::string k = key;
  auto replace_prefix = [&](const std::string& from, const std::string& to) {
    if (k.rfind(from, 0) == 0) k = to + k.substr(from.size());
  };
  replace_prefix("k.params.", "K · ");
  replace_prefix("v.params.", "V · ");
  replace_prefix("k.", "K · ");
  replace_prefix("v.", "V · ");
  return k;
}

std::string hhmmss(int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char b[16];
  std::strftime(b, sizeof b, "%H:%M:%S", &tm);
  return b;
}

std::string entry_label(const RunEntry& e) {
  return "run #" + std::to_string(e.id) + " · " + e.label + " · " + hhmmss(e.finished_ms);
}

const sessions::LayerResult* find_layer(const sessions::RunResult& r, int layer) {
  for (const auto& l : r.layers)
    if (l.layer == layer) return &l;
  return nullptr;
}

std::optional<double> finite(double v) {
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

}  // namespace

std::shared_ptr<const Snapshot> snapshot_of_entry(const Snapshot& s, const RunEntry& entry,
                                                  bool use_entry_selection) {
  auto b = std::make_shared<Snapshot>();
  b->generation = s.generation;
  b->capture = s.capture;
  b->analysis = s.analysis;
  b->config = entry.config;
  b->run = entry.run;
  b->run_is_current = true;
  b->run_id = entry.id;
  b->outliers = entry.outliers;
  b->selection = use_entry_selection ? entry.selection : s.selection;
  b->backend_label = s.backend_label;
  return b;
}

std::string bits_param(const std::string& codec) {
  try {
    for (const auto& p : codec::codec_params(codec))
      if (p.name == "bit_width" || p.name == "bits") return p.name;
  } catch (const std::exception&) {
  }
  return "";
}

namespace {

std::string stream_summary(const sessions::StreamConfig& s) {
  std::string out = s.codec;
  const std::string bp = bits_param(s.codec);
  if (!bp.empty()) {
    std::string bits;
    if (auto it = s.params.find(bp); it != s.params.end()) bits = it->second;
    if (bits.empty()) {
      for (const auto& p : codec::codec_params(s.codec))
        if (p.name == bp) bits = p.default_value;
    }
    if (!bits.empty()) out += " " + bits + " b";
  }
  return out;
}

}  // namespace

std::string config_summary(const sessions::RunConfig& c) {
  std::string s = "K " + stream_summary(c.k) + " · V " + stream_summary(c.v) + " · block " +
                  std::to_string(c.block_size);
  if (!c.boundary.empty()) s += " · bf16 layers " + layer_list_text(c.boundary);
  if (!c.layers.empty()) s += " · layers " + layer_list_text(c.layers);
  if (!c.overrides.empty())
    s += " · " + std::to_string(c.overrides.size()) + " per-layer override" +
         (c.overrides.size() == 1 ? "" : "s");
  if (!c.q_precond.empty()) s += " · Σ_q " + c.q_precond;
  return s;
}

std::vector<ConfigDiffRow> config_diff(const sessions::RunConfig& baseline,
                                       const sessions::RunConfig& current) {
  std::vector<ConfigDiffRow> rows;
  json jb, jc;
  try {
    jb = sessions::run_config_to_json(baseline);
    jc = sessions::run_config_to_json(current);
  } catch (const std::exception& e) {
    rows.push_back({"(configuration)", "invalid", e.what()});
    return rows;
  }
  const json ob = jb.value("overrides", json::array()), oc = jc.value("overrides", json::array());
  jb.erase("overrides");
  jc.erase("overrides");
  std::map<std::string, std::string> fb, fc;
  flatten(jb, "", fb);
  flatten(jc, "", fc);
  std::set<std::string> keys;
  for (const auto& [k, v] : fb) keys.insert(k);
  for (const auto& [k, v] : fc) keys.insert(k);
  for (const auto& k : keys) {
    const std::string a = fb.count(k) ? fb[k] : "—", b = fc.count(k) ? fc[k] : "—";
    if (a != b) rows.push_back({setting_name(k), a, b});
  }
  if (baseline.backend != current.backend)
    rows.push_back({"backend", std::string(sessions::backend_name(baseline.backend)),
                    std::string(sessions::backend_name(current.backend))});

  // Per-layer overrides: effective stream settings of each layer either side overrides.
  auto by_layer = [](const json& ov) {
    std::map<int, json> m;
    for (const auto& o : ov) m[o.value("layer", -1)] = o;
    return m;
  };
  const std::map<int, json> lb = by_layer(ob), lc = by_layer(oc);
  std::set<int> layers;
  for (const auto& [l, o] : lb) layers.insert(l);
  for (const auto& [l, o] : lc) layers.insert(l);
  for (int layer : layers) {
    for (const char* st : {"k", "v"}) {
      const json* xb =
          lb.count(layer) && lb.at(layer).contains(st) ? &lb.at(layer).at(st) : nullptr;
      const json* xc =
          lc.count(layer) && lc.at(layer).contains(st) ? &lc.at(layer).at(st) : nullptr;
      if (!xb && !xc) continue;
      std::map<std::string, std::string> sb, sc;
      flatten(xb ? *xb : jb.at(st), "", sb);
      flatten(xc ? *xc : jc.at(st), "", sc);
      std::set<std::string> sk;
      for (const auto& [k, v] : sb) sk.insert(k);
      for (const auto& [k, v] : sc) sk.insert(k);
      for (const auto& k : sk) {
        const std::string a = sb.count(k) ? sb[k] : "—", b = sc.count(k) ? sc[k] : "—";
        if (a == b) continue;
        std::string name = k.rfind("params.", 0) == 0 ? k.substr(7) : k;
        rows.push_back(
            {"layer " + std::to_string(layer) + " · " + (st[0] == 'k' ? "K" : "V") + " · " + name,
             a + (xb ? "" : " (global)"), b + (xc ? "" : " (global)")});
      }
    }
  }
  return rows;
}

std::optional<double> CompareTotal::delta() const {
  if (!baseline || !current) return std::nullopt;
  return *current - *baseline;
}

std::string CompareTotal::delta_text() const {
  const auto d = delta();
  if (!d) return "n/a";
  std::string s = format_number(("%+" + format.substr(1)).c_str(), *d);
  if (*baseline != 0 && std::isfinite(*baseline))
    s += format_number(" (%+.1f %%)", 100.0 * *d / std::fabs(*baseline));
  return s;
}

int CompareTotal::verdict() const {
  const auto d = delta();
  if (!d || *d == 0 || !std::isfinite(*d)) return 0;
  return (*d > 0) == higher_is_better ? 1 : -1;
}

ComparisonModel build_comparison(const Snapshot& s) {
  ComparisonModel m;
  m.has_baseline = s.baseline && s.baseline->run;
  m.has_current = s.run != nullptr;
  if (m.has_baseline) m.baseline_label = entry_label(*s.baseline);
  if (s.run) {
    m.current_label =
        s.run_partial ? "partial run (cancelled; not the configuration's totals)" : "current run";
    for (const auto& e : s.history)
      if (e->id == s.run_id && !s.run_partial) m.current_label = entry_label(*e);
  }
  std::vector<std::string> notes;
  if (!m.has_baseline) {
    notes.push_back(s.baseline_pending.empty()
                        ? "No baseline pinned: pin the current run, a run of the history or a "
                          "sweep cell to compare with it."
                        : "Computing the baseline (" + s.baseline_pending + ")…");
  }
  if (!s.run) notes.push_back("No current run yet.");
  if (s.run && s.run_partial)
    notes.push_back(
        "The current run is PARTIAL (cancelled): its totals cover only the finished "
        "layers.");
  else if (s.run && !s.run_is_current)
    notes.push_back(s.run_in_flight ? "The current run is being recomputed for the edited "
                                      "configuration (rerunning…)."
                                    : "The current run is stale: the configuration changed "
                                      "(F5 runs it).");

  if (m.has_baseline && s.config) {
    m.config = config_diff(*s.baseline->config, *s.config);
    m.same_config = m.config.empty();
    if (m.same_config) notes.push_back("The baseline has the current configuration.");
  }

  if (m.has_baseline || m.has_current) {
    json jb, jc;
    if (m.has_baseline) jb = sessions::run_result_to_json(*s.baseline->run);
    if (m.has_current) jc = sessions::run_result_to_json(*s.run);
    auto get = [](const json& j, const std::string& name) -> std::optional<double> {
      if (j.is_null()) return std::nullopt;
      return sessions::metric_value(j, name);
    };
    auto add = [&](const std::string& label, const std::string& metric, const char* fmt,
                   bool higher) {
      CompareTotal t;
      t.name = label;
      t.format = fmt;
      t.higher_is_better = higher;
      t.baseline = get(jb, metric);
      t.current = get(jc, metric);
      m.totals.push_back(t);
    };
    add("ratio vs bf16", "ratio_vs_bf16", "%.4f", true);
    add("container bytes", "bytes", "%.0f", false);
    add("K rel_mse (pooled over layers)", "k_rel_mse", "%.4g", false);
    add("V rel_mse (pooled over layers)", "v_rel_mse", "%.4g", false);
    add("attention KL (mean over layers)", "attn_kl", "%.4g", false);
    add("attention output rel. error (mean over layers)", "attn_out_rel_err", "%.4g", false);
    add("attention top-1 agreement (mean over layers)", "attention.attn_top1", "%.4f", true);

    std::set<int> layers;
    if (m.has_baseline)
      for (const auto& l : s.baseline->run->layers) layers.insert(l.layer);
    if (m.has_current)
      for (const auto& l : s.run->layers) layers.insert(l.layer);
    for (int layer : layers) {
      CompareLayer row;
      row.layer = layer;
      auto fill = [](const sessions::LayerResult* l, bool& boundary, std::optional<double>& bytes,
                     std::optional<double>& k, std::optional<double>& v,
                     std::optional<double>& kl) {
        if (!l) return;
        boundary = l->boundary;
        bytes = static_cast<double>(l->k.bytes + l->v.bytes);
        if (!l->k.failed) k = finite(l->k.err.rel_mse());
        if (!l->v.failed) v = finite(l->v.err.rel_mse());
        if (l->has_attn) kl = finite(l->attn.kl());
      };
      fill(m.has_baseline ? find_layer(*s.baseline->run, layer) : nullptr, row.baseline_boundary,
           row.baseline_bytes, row.baseline_k, row.baseline_v, row.baseline_kl);
      fill(m.has_current ? find_layer(*s.run, layer) : nullptr, row.current_boundary,
           row.current_bytes, row.current_k, row.current_v, row.current_kl);
      m.layers.push_back(row);
    }
  }
  for (const auto& n : notes) m.note += (m.note.empty() ? "" : " ") + n;
  return m;
}

std::string comparison_csv(const ComparisonModel& m) {
  std::ostringstream os;
  auto num = [](const std::optional<double>& v) {
    return v && std::isfinite(*v) ? format_number("%.17g", *v) : std::string();
  };
  auto quote = [](const std::string& t) {
    std::string q = "\"";
    for (char c : t) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    return q + "\"";
  };
  os << "section,name,baseline,current,delta\n";
  for (const auto& t : m.totals)
    os << "total," << quote(t.name) << "," << num(t.baseline) << "," << num(t.current) << ","
       << num(t.delta()) << "\n";
  for (const auto& l : m.layers) {
    auto row = [&](const char* what, const std::optional<double>& b,
                   const std::optional<double>& c) {
      std::optional<double> d;
      if (b && c) d = *c - *b;
      os << "layer " << l.layer << "," << what << "," << num(b) << "," << num(c) << "," << num(d)
         << "\n";
    };
    row("bytes", l.baseline_bytes, l.current_bytes);
    row("k_rel_mse", l.baseline_k, l.current_k);
    row("v_rel_mse", l.baseline_v, l.current_v);
    row("attn_kl", l.baseline_kl, l.current_kl);
  }
  for (const auto& c : m.config)
    os << "config," << quote(c.setting) << "," << quote(c.baseline) << "," << quote(c.current)
       << ",\n";
  return os.str();
}

std::vector<HistoryRow> history_rows(const Snapshot& s) {
  std::vector<HistoryRow> rows;
  for (auto it = s.history.rbegin(); it != s.history.rend(); ++it) {
    const RunEntry& e = **it;
    HistoryRow r;
    r.id = e.id;
    r.time = hhmmss(e.finished_ms);
    r.label = e.label;
    if (e.config) r.summary = config_summary(*e.config);
    if (e.run) {
      r.ratio = e.run->ratio_vs_bf16();
      const json j = sessions::run_result_to_json(*e.run);
      r.k_rel_mse = sessions::metric_value(j, "k_rel_mse");
      r.v_rel_mse = sessions::metric_value(j, "v_rel_mse");
      r.attn_kl = sessions::metric_value(j, "attn_kl");
    }
    r.is_current = e.id == s.run_id && !s.run_partial;
    r.is_baseline = s.baseline && s.baseline->id == e.id;
    r.has_residuals = e.has_residuals;
    rows.push_back(std::move(r));
  }
  return rows;
}

std::vector<PlotSeries> layer_error_delta_series(const LayerErrorModel& current,
                                                 const LayerErrorModel& baseline) {
  PlotSeries k{"K Δ %", {}, {}}, v{"V Δ %", {}, {}}, both{"K+V Δ %", {}, {}};
  auto add = [](PlotSeries& s, int layer, const std::optional<double>& c,
                const std::optional<double>& b) {
    if (c && b && *b > 0 && std::isfinite(*c) && std::isfinite(*b)) {
      s.x.push_back(layer);
      s.y.push_back(100.0 * (*c / *b - 1.0));
    }
  };
  for (const auto& r : current.rows)
    for (const auto& b : baseline.rows) {
      if (b.layer != r.layer) continue;
      add(k, r.layer, r.k.value, b.k.value);
      add(v, r.layer, r.v.value, b.v.value);
      add(both, r.layer, r.both, b.both);
    }
  std::vector<PlotSeries> out;
  for (PlotSeries* s : {&k, &v, &both})
    if (!s->x.empty()) out.push_back(std::move(*s));
  return out;
}

std::string delta_cell_text(LayerMapMetric metric, double d) {
  if (!std::isfinite(d)) return "n/a";
  if (d == 0) return "0";
  switch (metric) {
    case LayerMapMetric::kOutlierRate:
      return format_number("%+.2f pp", 100.0 * d);
    case LayerMapMetric::kBytes: {
      const double a = std::fabs(d);
      if (a >= 1024.0 * 1024.0) return format_number("%+.2f MiB", d / (1024.0 * 1024.0));
      if (a >= 1024.0) return format_number("%+.1f KiB", d / 1024.0);
      return format_number("%+.0f B", d);
    }
    case LayerMapMetric::kDEff:
      return format_number("%+.0f", d);
    case LayerMapMetric::kKurtosis:
      return format_number("%+.2f", d);
    default:
      return format_number("%+.2e", d);
  }
}

LayerMapModel diff_layer_map(const LayerMapModel& current, const LayerMapModel& baseline,
                             const std::string& baseline_label) {
  LayerMapModel m = current;
  m.delta = true;
  m.metric_label = "Δ " + current.metric_label + " (current − baseline)";
  m.unit_note = "current run minus the baseline (" + baseline_label + "), cell by cell; " +
                "blue: lower than the baseline, red: higher";
  m.log_scale = false;
  m.has_values = false;
  m.min = m.max = 0;
  m.scale_note.clear();
  const bool analysis = current.metric == LayerMapMetric::kSigmaQCond ||
                        current.metric == LayerMapMetric::kDEff ||
                        current.metric == LayerMapMetric::kKurtosis;
  if (analysis && m.hint.empty())
    m.hint =
        "This metric comes from the capture analysis, which does not depend on the "
        "configuration: Δ is 0 everywhere. Pick a run metric (relative MSE, attention KL, "
        "bytes, outlier rate) to compare runs.";
  double amax = 0;
  for (auto& row : m.rows) {
    const LayerMapRow* brow = nullptr;
    for (const auto& b : baseline.rows)
      if (b.layer == row.layer) brow = &b;
    for (size_t h = 0; h < row.cells.size(); ++h) {
      LayerMapCell& c = row.cells[h];
      const double bv = brow && h < brow->cells.size() ? brow->cells[h].value : kNaN;
      const double cv = c.value;
      if (!std::isfinite(cv) || !std::isfinite(bv)) {
        c.why_na = !std::isfinite(cv)
                       ? (c.why_na.empty() ? "n/a in the current run" : c.why_na)
                       : "n/a in the baseline" +
                             (brow && h < brow->cells.size() && !brow->cells[h].why_na.empty()
                                  ? ": " + brow->cells[h].why_na
                                  : std::string());
        c.value = kNaN;
        c.text = "n/a";
        continue;
      }
      c.value = cv - bv;
      c.text = delta_cell_text(m.metric, c.value);
      c.detail = "current " + layer_map_exact(cv) + " · baseline " + layer_map_exact(bv);
      amax = std::max(amax, std::fabs(c.value));
      m.has_values = true;
    }
  }
  if (m.has_values) {
    if (amax == 0) amax = 1;  // all equal: a flat scale centred on 0
    m.min = -amax;
    m.max = amax;
    m.scale_note = "symmetric around 0";
  }
  return m;
}

}  // namespace kvwb::views
