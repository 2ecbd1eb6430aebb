#include "sessions/analysis/pareto.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>

#include "base/errors.h"

namespace kvwb::sessions {

using nlohmann::json;

bool dominates(const ParetoPoint& a, const ParetoPoint& b) {
  return a.r >= b.r && a.q <= b.q && (a.r > b.r || a.q < b.q);
}

ParetoResult pareto_frontier(std::vector<ParetoPoint> points) {
  ParetoResult out;
  std::sort(points.begin(), points.end(), [](const ParetoPoint& a, const ParetoPoint& b) { return a.id < b.id; });
  // Group identical (R, Q) pairs (exact f64 equality); the first (lowest id) represents the group.
  std::map<std::pair<double, double>, FrontierPoint> groups;
  for (auto& p : points) {
    if (!p.valid || std::isnan(p.r) || std::isnan(p.q)) {
      if (p.valid) {
        p.valid = false;
        p.reason = "n/a";
      }
      out.excluded.push_back(std::move(p));
      continue;
    }
    auto [it, fresh] = groups.try_emplace({p.r, p.q});
    if (fresh)
      it->second.rep = std::move(p);
    else
      it->second.duplicates.push_back(std::move(p));
  }
  // Unique points by descending R, ascending Q. A point is dominated iff some point with a larger
  // R has Q <= its Q, or the best point of its own R has a smaller Q.
  std::vector<FrontierPoint*> order;
  for (auto& [k, g] : groups) order.push_back(&g);
  std::sort(order.begin(), order.end(), [](const FrontierPoint* a, const FrontierPoint* b) {
    if (a->rep.r != b->rep.r) return a->rep.r > b->rep.r;
    return a->rep.q < b->rep.q;
  });
  std::vector<FrontierPoint*> front;
  bool have_greater = false;
  double best_q_greater = 0;  // min Q over points with R strictly greater than the current group
  size_t i = 0;
  while (i < order.size()) {
    size_t j = i;
    while (j < order.size() && order[j]->rep.r == order[i]->rep.r) ++j;
    const double group_best_q = order[i]->rep.q;
    for (size_t k = i; k < j; ++k) {
      FrontierPoint* g = order[k];
      const bool dom = (have_greater && best_q_greater <= g->rep.q) || group_best_q < g->rep.q;
      if (dom) {
        out.dominated.push_back(g->rep);
        for (const auto& d : g->duplicates) out.dominated.push_back(d);
      } else {
        front.push_back(g);
      }
    }
    if (!have_greater || group_best_q < best_q_greater) best_q_greater = group_best_q;
    have_greater = true;
    i = j;
  }
  std::sort(front.begin(), front.end(), [](const FrontierPoint* a, const FrontierPoint* b) {
    if (a->rep.r != b->rep.r) return a->rep.r < b->rep.r;
    return a->rep.q < b->rep.q;
  });
  for (auto* g : front) out.frontier.push_back(std::move(*g));
  std::sort(out.dominated.begin(), out.dominated.end(),
            [](const ParetoPoint& a, const ParetoPoint& b) { return a.id < b.id; });
  return out;
}

bool has_intervals(const ParetoResult& p) {
  for (const auto& f : p.frontier) {
    if (f.rep.q_ci) return true;
    for (const auto& d : f.duplicates)
      if (d.q_ci) return true;
  }
  for (const auto& d : p.dominated)
    if (d.q_ci) return true;
  return false;
}

std::vector<int64_t> possibly_on_frontier(const ParetoResult& p) {
  std::vector<int64_t> out;
  if (!has_intervals(p)) return out;
  std::vector<const ParetoPoint*> all;
  for (const auto& f : p.frontier) {
    all.push_back(&f.rep);
    for (const auto& d : f.duplicates) all.push_back(&d);
  }
  for (const auto& d : p.dominated) all.push_back(&d);
  auto lo = [](const ParetoPoint& x) { return x.q_ci ? x.q_ci->first : x.q; };
  auto hi = [](const ParetoPoint& x) { return x.q_ci ? x.q_ci->second : x.q; };
  for (const auto& d : p.dominated) {
    bool surely = false;
    for (const auto* f : all)
      if (f->id != d.id && f->r >= d.r && hi(*f) < lo(d)) {
        surely = true;
        break;
      }
    if (!surely) out.push_back(d.id);
  }
  return out;
}

const std::vector<std::string>& pareto_metric_names() {
  static const std::vector<std::string> n = {"k_rel_mse", "v_rel_mse",        "k_whitened_mse",
                                             "attn_kl",   "attn_out_rel_err", "one_minus_top1"};
  return n;
}

namespace {

std::optional<double> at_path(const json& root, const std::string& path) {
  const json* cur = &root;
  std::stringstream ss(path);
  std::string part;
  while (std::getline(ss, part, '.')) {
    if (!cur->is_object() || !cur->contains(part)) return std::nullopt;
    cur = &(*cur)[part];
  }
  if (!cur->is_number()) return std::nullopt;
  const double v = cur->get<double>();
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

void check_metric_name(const std::string& name) {
  if (name.empty() || name.front() == '.' || name.back() == '.' || name.find("..") != std::string::npos) {
    std::string known;
    for (const auto& n : pareto_metric_names()) known += (known.empty() ? "" : ", ") + n;
    throw InvalidArgument("metric '" + name + "' is neither a known metric (" + known +
                          ") nor a dotted path under the result's totals (e.g. k.snr_db)");
  }
}

}  // namespace

std::optional<double> metric_value(const json& result, const std::string& name) {
  check_metric_name(name);
  if (!result.is_object() || !result.contains("totals")) return std::nullopt;
  const json& t = result["totals"];
  if (name == "k_rel_mse") return at_path(t, "k.rel_mse");
  if (name == "v_rel_mse") return at_path(t, "v.rel_mse");
  if (name == "k_whitened_mse") return at_path(t, "k.whitened_mse");
  if (name == "attn_kl") return at_path(t, "attention.attn_kl");
  if (name == "attn_out_rel_err") return at_path(t, "attention.attn_out_rel_err");
  if (name == "one_minus_top1") {
    auto v = at_path(t, "attention.attn_top1");
    if (!v) return std::nullopt;
    return 1.0 - *v;
  }
  const std::string path = name.rfind("totals.", 0) == 0 ? name.substr(7) : name;
  return at_path(t, path);
}

std::optional<std::pair<double, double>> metric_interval(const json& result, const std::string& name) {
  check_metric_name(name);
  if (!result.is_object() || !result.contains("totals")) return std::nullopt;
  const std::string path = name.rfind("totals.", 0) == 0 ? name.substr(7) : name;
  const size_t dot = path.rfind('.');
  const json* cur = &result["totals"];
  if (dot != std::string::npos) {
    std::stringstream ss(path.substr(0, dot));
    std::string part;
    while (std::getline(ss, part, '.')) {
      if (!cur->is_object() || !cur->contains(part)) return std::nullopt;
      cur = &(*cur)[part];
    }
  }
  const std::string key = (dot == std::string::npos ? path : path.substr(dot + 1)) + "_ci";
  if (!cur->is_object() || !cur->contains(key)) return std::nullopt;
  const json& ci = (*cur)[key];
  if (!ci.is_array() || ci.size() != 2 || !ci[0].is_number() || !ci[1].is_number()) return std::nullopt;
  const double lo = ci[0].get<double>(), hi = ci[1].get<double>();
  if (!std::isfinite(lo) || !std::isfinite(hi)) return std::nullopt;
  return std::make_pair(lo, hi);
}

std::vector<ParetoPoint> pareto_points_from_records(const std::vector<json>& records, const std::string& metric) {
  check_metric_name(metric);
  std::vector<ParetoPoint> pts;
  for (const auto& rec : records) {
    ParetoPoint p;
    p.id = rec.value("cell", static_cast<int64_t>(-1));
    p.label = rec.contains("options") ? rec["options"].dump() : std::string();
    if (rec.value("status", std::string()) != "ok" || !rec.contains("result")) {
      p.valid = false;
      const json e = rec.value("error", json::object());
      p.reason = "failed: " + e.value("code", std::string("?")) + " " + e.value("message", std::string());
      pts.push_back(std::move(p));
      continue;
    }
    const json& res = rec["result"];
    if (res.value("failed", false)) {
      p.valid = false;
      std::string why;
      for (const auto& l : res.value("layers", json::array()))
        for (const char* s : {"k", "v"})
          if (l.contains(s) && l[s].value("failed", false) && why.empty())
            why = l[s]["error"].value("code", std::string("?")) + " (layer " + std::to_string(l.value("layer", -1)) +
                  " " + (s[0] == 'k' ? "K" : "V") + ")";
      p.reason = "failed: " + (why.empty() ? std::string("a layer-stream failed") : why);
      pts.push_back(std::move(p));
      continue;
    }
    const auto r = at_path(res, "ratio_vs_bf16");
    const auto q = metric_value(res, metric);
    if (!r || !q) {
      p.valid = false;
      p.reason = std::string("n/a: ") + (!r ? "ratio_vs_bf16" : metric);
    } else {
      p.r = *r;
      p.q = *q;
      p.q_ci = metric_interval(res, metric);
    }
    pts.push_back(std::move(p));
  }
  return pts;
}

namespace {

json point_json(const ParetoPoint& p) {
  json j{{"id", p.id}, {"label", p.label}};
  if (p.valid) {
    j["ratio_vs_bf16"] = p.r;
    j["q"] = p.q;
    if (p.q_ci) j["q_ci"] = json::array({p.q_ci->first, p.q_ci->second});
  } else {
    j["reason"] = p.reason;
  }
  return j;
}

}  // namespace

json pareto_to_json(const ParetoResult& p, const std::string& metric) {
  json j;
  j["metric"] = metric;
  j["rules"] = "metrics.md §10: exact f64 dominance; equal (R, Q) share one point (lowest id); staircase in ascending R";
  json f = json::array();
  for (const auto& fp : p.frontier) {
    json x = point_json(fp.rep);
    json d = json::array();
    for (const auto& q : fp.duplicates) d.push_back(q.id);
    x["duplicates"] = d;
    f.push_back(x);
  }
  j["frontier"] = f;
  json dom = json::array(), ex = json::array();
  for (const auto& q : p.dominated) dom.push_back(point_json(q));
  for (const auto& q : p.excluded) ex.push_back(point_json(q));
  j["dominated"] = dom;
  j["excluded"] = ex;
  if (has_intervals(p)) {
    j["intervals"] = "q_ci: the metric's recorded confidence interval (end-to-end metrics: paired bootstrap over passages)";
    j["possibly_on_frontier"] = possibly_on_frontier(p);
  }
  return j;
}

std::string pareto_to_csv(const ParetoResult& p, const std::string& metric) {
  std::ostringstream os;
  const bool ci = has_intervals(p);
  os << "role,id,ratio_vs_bf16," << metric << ",duplicate_of,reason,label";
  if (ci) os << ',' << metric << "_lo," << metric << "_hi";
  os << '\n';
  auto cis = [&](const ParetoPoint& x) {
    if (!ci) return std::string();
    if (!x.q_ci) return std::string(",,");
    char b[80];
    std::snprintf(b, sizeof b, ",%.17g,%.17g", x.q_ci->first, x.q_ci->second);
    return std::string(b);
  };
  auto quote = [](const std::string& s) {
    std::string o = "\"";
    for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
    return o + "\"";
  };
  char buf[128];
  for (const auto& fp : p.frontier) {
    std::snprintf(buf, sizeof buf, "%.17g,%.17g", fp.rep.r, fp.rep.q);
    os << "frontier," << fp.rep.id << ',' << buf << ",,," << quote(fp.rep.label) << cis(fp.rep) << '\n';
    for (const auto& d : fp.duplicates) {
      std::snprintf(buf, sizeof buf, "%.17g,%.17g", d.r, d.q);
      os << "duplicate," << d.id << ',' << buf << ',' << fp.rep.id << ",," << quote(d.label) << cis(d) << '\n';
    }
  }
  for (const auto& d : p.dominated) {
    std::snprintf(buf, sizeof buf, "%.17g,%.17g", d.r, d.q);
    os << "dominated," << d.id << ',' << buf << ",,," << quote(d.label) << cis(d) << '\n';
  }
  for (const auto& d : p.excluded)
    os << "excluded," << d.id << ",,,," << quote(d.reason) << ',' << quote(d.label) << (ci ? ",," : "") << '\n';
  return os.str();
}

}  // namespace kvwb::sessions
