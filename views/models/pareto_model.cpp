#include "views/models/pareto_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "codec/traits.h"
#include "sessions/config/run_config.h"
#include "views/models/comparison_model.h"

namespace kvwb::views {

using nlohmann::json;

std::string codec_family(const std::string& codec) {
  const auto id = codec::find_codec_id(codec);
  return id ? std::string(codec::codec_traits(*id).family) : codec;
}

namespace {

bool is_ok(const json& rec) {
  return rec.is_object() && rec.value("status", std::string()) == "ok" && rec.contains("result") &&
         rec["result"].is_object();
}

std::string options_label(const json& options) {
  if (!options.is_object()) return {};
  std::string out;
  for (auto it = options.begin(); it != options.end(); ++it) {
    if (!out.empty()) out += ' ';
    out += it.key() + "=" + (it->is_string() ? it->get<std::string>() : it->dump());
  }
  return out;
}

const json* e2e_of(const json& rec) {
  if (!is_ok(rec)) return nullptr;
  const json& res = rec["result"];
  if (!res.contains("totals") || !res["totals"].is_object() || !res["totals"].contains("e2e") ||
      !res["totals"]["e2e"].is_object())
    return nullptr;
  return &res["totals"]["e2e"];
}

std::string stream_codec(const json& config, const char* stream) {
  if (!config.is_object() || !config.contains(stream) || !config[stream].is_object()) return "?";
  return config[stream].value("codec", std::string("?"));
}

}  // namespace

std::vector<std::string> available_metrics(const std::vector<json>& records) {
  std::vector<std::string> candidates = sessions::pareto_metric_names();
  for (const char* p : {"attention.attn_out_rel_err_pooled", "k.attn_out_rel_err",
                        "v.attn_out_rel_err", "k.rel_mse", "v.rel_mse", "e2e.delta_ppl",
                        "e2e.abs_delta_ppl", "e2e.kl", "e2e.one_minus_top1"})
    candidates.push_back(p);
  std::vector<std::string> out;
  for (const auto& name : candidates) {
    if (std::find(out.begin(), out.end(), name) != out.end()) continue;
    // k.rel_mse / v.rel_mse duplicate k_rel_mse / v_rel_mse: keep only the short names.
    if (name == "k.rel_mse" || name == "v.rel_mse") continue;
    for (const auto& rec : records)
      if (is_ok(rec) && sessions::metric_value(rec["result"], name)) {
        out.push_back(name);
        break;
      }
  }
  return out;
}

std::string codec_bits_label(const json& config) {
  auto stream = [&](const char* s) {
    if (!config.is_object() || !config.contains(s) || !config[s].is_object())
      return std::string("?");
    const json& st = config[s];
    std::string out = st.value("codec", std::string("?"));
    const std::string bp = bits_param(out);
    if (!bp.empty() && st.contains("params") && st["params"].contains(bp)) {
      const json& b = st["params"][bp];
      out += " " + (b.is_string() ? b.get<std::string>() : b.dump()) + "b";
    }
    return out;
  };
  const std::string k = stream("k"), v = stream("v");
  return k == v ? k : "K " + k + " · V " + v;
}

ParetoModel build_pareto_model(const Snapshot& snapshot, const std::string& metric) {
  return build_pareto_model(snapshot, snapshot.active_sweep, metric);
}

ParetoModel build_pareto_model(const Snapshot& snapshot, int sweep_index,
                               const std::string& metric) {
  ParetoModel m;
  if (sweep_index < 0 || sweep_index >= static_cast<int>(snapshot.sweeps.size())) return m;
  const SweepSnapshot& sweep = snapshot.sweeps[static_cast<size_t>(sweep_index)];
  m.sweep_name = sweep.name;
  m.records = sweep.records.size();
  m.metrics = available_metrics(sweep.records);
  if (m.metrics.empty()) {
    for (const auto& rec : sweep.records) {
      // Appended piece by piece: GCC 12's -Wrestrict misreads `"#" + std::string&&` (PR105329).
      std::string line = "#";
      line += std::to_string(rec.value("cell", -1));
      line += is_ok(rec) ? " n/a: no quality metric" : " failed";
      m.excluded.push_back(std::move(line));
    }
    return m;
  }
  m.metric = metric;
  if (std::find(m.metrics.begin(), m.metrics.end(), metric) == m.metrics.end()) {
    // A sweep run with a model plots what it was run for: the end-to-end KL (the steadier
    // end-to-end axis), with its intervals as error bars.
    auto has = [&](const char* name) {
      return std::find(m.metrics.begin(), m.metrics.end(), name) != m.metrics.end();
    };
    m.metric = has("e2e.kl") ? "e2e.kl" : has("attn_out_rel_err") ? "attn_out_rel_err" : m.metrics.front();
  }
  std::vector<sessions::ParetoPoint> pts =
      sessions::pareto_points_from_records(sweep.records, m.metric);
  m.result = sessions::pareto_frontier(pts);

  std::map<int64_t, const json*> by_id;
  for (const auto& rec : sweep.records)
    by_id.emplace(rec.value("cell", static_cast<int64_t>(-1)), &rec);
  std::map<int64_t, std::pair<bool, int64_t>> role;  // id -> (on_frontier, duplicate_of)
  for (const auto& fp : m.result.frontier) {
    role[fp.rep.id] = {true, -1};
    for (const auto& d : fp.duplicates) role[d.id] = {false, fp.rep.id};
  }
  const std::string current_hash =
      snapshot.config ? sessions::run_config_hash(*snapshot.config) : "";
  for (const auto& p : pts) {
    if (!p.valid) {
      m.excluded.push_back("#" + std::to_string(p.id) + " " + p.reason);
      continue;
    }
    ParetoPlotPoint pp;
    pp.id = p.id;
    pp.r = p.r;
    pp.q = p.q;
    if (p.q_ci) {
      pp.has_ci = true;
      pp.q_lo = p.q_ci->first;
      pp.q_hi = p.q_ci->second;
      m.has_ci = true;
    }
    const json& rec = *by_id.at(p.id);
    if (const json* e = e2e_of(rec)) {
      pp.verdict = e->value("verdict", std::string());
      pp.passages = e->value("passages", 0);
    }
    pp.label = options_label(rec.value("options", json::object()));
    const json& res = rec["result"];
    pp.config = res.value("config", json::object());
    const std::string kc = stream_codec(pp.config, "k"), vc = stream_codec(pp.config, "v");
    pp.codec = kc == vc ? kc : kc + " / " + vc;
    const std::string kf = codec_family(kc), vf = codec_family(vc);
    pp.family = kf == vf ? kf : kf + " / " + vf;
    pp.total_bytes = res.value("total_bytes", static_cast<uint64_t>(0));
    pp.short_label = codec_bits_label(pp.config);
    pp.config_hash = rec.value("config_hash", std::string());
    if (auto it = role.find(p.id); it != role.end()) {
      pp.on_frontier = it->second.first;
      pp.duplicate_of = it->second.second;
    }
    if (std::find(m.families.begin(), m.families.end(), pp.family) == m.families.end())
      m.families.push_back(pp.family);
    m.points.push_back(std::move(pp));
  }
  std::sort(m.points.begin(), m.points.end(),
            [](const auto& a, const auto& b) { return a.id < b.id; });
  for (size_t i = 0; i < m.points.size() && !current_hash.empty(); ++i)
    if (m.points[i].config_hash == current_hash) {
      m.current = static_cast<int>(i);
      break;
    }
  const std::string baseline_hash = snapshot.baseline && snapshot.baseline->config
                                        ? sessions::run_config_hash(*snapshot.baseline->config)
                                        : "";
  for (size_t i = 0; i < m.points.size() && !baseline_hash.empty(); ++i)
    if (m.points[i].config_hash == baseline_hash) {
      m.baseline = static_cast<int>(i);
      break;
    }
  if (!m.points.empty()) {
    double lo = m.points.front().q, hi = lo;
    for (const auto& p : m.points) {
      lo = std::min(lo, p.q);
      hi = std::max(hi, p.q);
    }
    m.log_y = lo > 0 && hi / lo >= 100.0;
  }
  m.possibly_on_frontier = sessions::possibly_on_frontier(m.result);
  return m;
}

std::string pareto_model_csv(const ParetoModel& m) {
  if (m.points.empty()) return {};
  auto quote = [](const std::string& s) {
    std::string o = "\"";
    for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
    return o + "\"";
  };
  std::ostringstream os;
  os << "id,label,codec,family,ratio_vs_bf16," << m.metric << ",on_frontier,duplicate_of,total_bytes";
  if (m.has_ci) os << ',' << m.metric << "_lo," << m.metric << "_hi";
  os << '\n';
  char buf[96];
  for (const auto& p : m.points) {
    std::snprintf(buf, sizeof buf, "%.17g,%.17g", p.r, p.q);
    os << p.id << ',' << quote(p.label) << ',' << quote(p.codec) << ',' << quote(p.family) << ','
       << buf << ',' << (p.on_frontier ? "true" : "false") << ',';
    if (p.duplicate_of >= 0) os << p.duplicate_of;
    os << ',' << p.total_bytes;
    if (m.has_ci) {
      if (p.has_ci) {
        std::snprintf(buf, sizeof buf, ",%.17g,%.17g", p.q_lo, p.q_hi);
        os << buf;
      } else {
        os << ",,";
      }
    }
    os << '\n';
  }
  return os.str();
}

}  // namespace kvwb::views
