#include "sessions/explore/boundary.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "base/errors.h"
#include "codec/codec.h"
#include "io/capture.h"
#include "sessions/analysis/pareto.h"
#include "sessions/config/layer_plan.h"

namespace kvwb::sessions {

using nlohmann::json;

namespace {

/// Runs `cfg` with the outer job's cancel flag; progress is mapped onto run `index` of `runs`.
RunResult run_step(const std::string& capture, const RunConfig& cfg, JobControl* job, size_t index, size_t runs,
                   const std::string& what) {
  RunOptions ro;
  ro.compute_sha256 = false;
  if (!job) return run_config(capture, cfg, ro, nullptr);
  auto outer = job->progress;
  if (outer) {
    job->progress = [&](size_t done, size_t total, const std::string& detail) {
      const size_t t = std::max<size_t>(total, 1);
      outer(index * t + std::min(done, t), runs * t, what + (detail.empty() ? "" : ": " + detail));
    };
  }
  try {
    RunResult r = run_config(capture, cfg, ro, job);
    job->progress = outer;
    return r;
  } catch (...) {
    job->progress = outer;
    throw;
  }
}

void fill_proposal(BoundaryProposal& p, const RunResult& r) {
  p.ratio = r.ratio_vs_bf16();
  p.total_bytes = r.total_bytes;
  p.failed = r.failed;
  const json j = run_result_to_json(r);
  auto get = [&](const char* m) {
    const auto v = metric_value(j, m);
    return v ? *v : NAN;
  };
  p.attn_kl = get("attn_kl");
  p.attn_out_rel_err = get("attn_out_rel_err");
  p.attn_top1 = get("attention.attn_top1");
  p.k_rel_mse = get("k_rel_mse");
  p.v_rel_mse = get("v_rel_mse");
}

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json proposal_json(const BoundaryProposal& p) {
  return json{{"boundary", p.boundary},         {"ratio_vs_bf16", num(p.ratio)},
              {"total_bytes", p.total_bytes},   {"attn_kl", num(p.attn_kl)},
              {"attn_out_rel_err", num(p.attn_out_rel_err)}, {"attn_top1", num(p.attn_top1)},
              {"k_rel_mse", num(p.k_rel_mse)},  {"v_rel_mse", num(p.v_rel_mse)},
              {"failed", p.failed}};
}

/// The layers a run of `cfg` covers, in run order (the layer plan's).
std::vector<int> run_layer_list(const io::CaptureInfo& info, const RunConfig& cfg) {
  std::vector<int> out;
  for (const LayerPlan& lp : plan_layers(info, cfg)) out.push_back(lp.layer);
  return out;
}

}  // namespace

BoundaryRecommendation recommend_boundary(const std::string& capture_path, const RunConfig& cfg, int max_layers,
                                          JobControl* job) {
  if (max_layers < 1) throw InvalidArgument("recommend-boundary: max layers must be >= 1, got " + std::to_string(max_layers));
  BoundaryRecommendation out;
  RunConfig c0 = cfg;
  c0.boundary.clear();
  std::vector<int> layers;
  codec::SkipRule rule;
  bool have_rule = false;
  {
    io::CaptureReader cap(capture_path);
    layers = run_layer_list(cap.info(), c0);
    bool any_q = false;
    for (const auto& li : cap.info().layers) any_q = any_q || li.has_q_pre;
    RunConfig wc = c0;
    if (wc.q_precond.empty()) wc.q_precond = "capture";
    if (any_q || !cfg.q_precond.empty()) {
      try {
        rule = build_whitening(cap, wc).rule;
        have_rule = !rule.m.empty();
      } catch (const Cancelled&) {
        throw;
      } catch (const Error& e) {
        out.notes.push_back(std::string("Σ_q skip rule not available: ") + e.what());
      }
    } else {
      out.notes.push_back("the capture has no q_pre: no Σ_q skip rule and no attention metrics");
    }
  }
  const size_t n = std::min<size_t>(static_cast<size_t>(max_layers), layers.size());
  const size_t runs = 1 + n;
  const RunResult r0 = run_step(capture_path, c0, job, 0, runs, "sensitivity (no boundary)");
  fill_proposal(out.baseline, r0);
  bool all_attn = !r0.layers.empty();
  for (const auto& l : r0.layers) all_attn = all_attn && l.has_attn;
  out.score_metric = all_attn ? "attn_out_rel_err" : "k_rel_mse+v_rel_mse";
  if (!all_attn) out.notes.push_back("some layer has no attention metrics: layers ranked by K + V relative MSE");
  for (const auto& l : r0.layers) {
    LayerSensitivity s;
    s.layer = l.layer;
    s.has_attn = l.has_attn;
    s.failed = l.k.failed || l.v.failed;
    if (l.has_attn) {
      s.attn_kl = l.attn.kl();
      s.attn_out_rel_err = l.attn.out_rel_err();
      s.attn_top1 = l.attn.top1();
    }
    s.k_rel_mse = l.k.failed ? NAN : l.k.err.rel_mse();
    s.v_rel_mse = l.v.failed ? NAN : l.v.err.rel_mse();
    s.score = all_attn ? s.attn_out_rel_err : s.k_rel_mse + s.v_rel_mse;
    if (!std::isfinite(s.score)) s.score = 0;
    if (have_rule) {
      auto sk = rule.skip.find(l.layer);
      s.skip_rule = sk != rule.skip.end() && sk->second;
      auto m = rule.m.find(l.layer);
      if (m != rule.m.end() && rule.median > 0) s.skip_ratio = m->second / rule.median;
    }
    out.ranking.push_back(s);
  }
  std::stable_sort(out.ranking.begin(), out.ranking.end(), [](const LayerSensitivity& a, const LayerSensitivity& b) {
    if (a.failed != b.failed) return a.failed;
    if (a.skip_rule != b.skip_rule) return a.skip_rule;
    if (a.score != b.score) return a.score > b.score;
    return a.layer < b.layer;
  });
  for (size_t k = 1; k <= n; ++k) {
    BoundaryProposal p;
    for (size_t i = 0; i < k; ++i) p.boundary.push_back(out.ranking[i].layer);
    std::sort(p.boundary.begin(), p.boundary.end());
    RunConfig ck = cfg;
    ck.boundary = p.boundary;
    const RunResult r = run_step(capture_path, ck, job, k, runs, "boundary set of " + std::to_string(k));
    fill_proposal(p, r);
    out.proposals.push_back(std::move(p));
  }
  return out;
}

json boundary_recommendation_to_json(const BoundaryRecommendation& r) {
  json j;
  j["format"] = "kvwb-boundary-recommendation";
  j["score_metric"] = r.score_metric;
  json rk = json::array();
  for (size_t i = 0; i < r.ranking.size(); ++i) {
    const auto& s = r.ranking[i];
    rk.push_back(json{{"rank", i + 1},
                      {"layer", s.layer},
                      {"score", num(s.score)},
                      {"attn_kl", s.has_attn ? num(s.attn_kl) : json(nullptr)},
                      {"attn_out_rel_err", s.has_attn ? num(s.attn_out_rel_err) : json(nullptr)},
                      {"attn_top1", s.has_attn ? num(s.attn_top1) : json(nullptr)},
                      {"k_rel_mse", num(s.k_rel_mse)},
                      {"v_rel_mse", num(s.v_rel_mse)},
                      {"skip_rule", s.skip_rule},
                      {"skip_ratio", s.skip_ratio > 0 ? num(s.skip_ratio) : json(nullptr)},
                      {"failed", s.failed}});
  }
  j["ranking"] = rk;
  j["baseline"] = proposal_json(r.baseline);
  json ps = json::array();
  for (const auto& p : r.proposals) ps.push_back(proposal_json(p));
  j["proposals"] = ps;
  j["notes"] = r.notes;
  return j;
}

namespace {

/// The bit-width parameter of a codec and its values ("" and {} when it has none).
std::pair<std::string, std::vector<std::string>> bit_options(const std::string& codec_name) {
  for (const auto& p : codec::codec_params(codec_name)) {
    if (p.name != "bit_width" && p.name != "bits") continue;
    std::vector<std::string> vals;
    if (p.type == codec::ParamType::kInt) {
      for (long long b = static_cast<long long>(p.min); b <= static_cast<long long>(p.max); ++b)
        vals.push_back(std::to_string(b));
    } else if (p.type == codec::ParamType::kChoice) {
      vals = p.choices;
    }
    if (!vals.empty()) return {p.name, vals};
  }
  return {"", {}};
}

struct Measure {
  bool ok = false;
  uint64_t bytes = 0;
  double err = 0;
};

double stream_error(const StreamResult& s, const std::string& metric, bool use_attn) {
  if (use_attn && s.has_attn) return metric == "attn_kl" ? s.attn.kl() : s.attn.out_rel_err();
  return s.err.rel_mse();
}

StreamConfig with_param(StreamConfig s, const std::string& name, const std::string& value) {
  if (!name.empty()) s.params[name] = value;
  return s;
}

struct State {
  uint64_t bytes = 0;
  double err = 0;
  std::vector<uint32_t> pick;  // option index per layer so far
};

}  // namespace

PlanResult plan_budget(const std::string& capture_path, const RunConfig& base, const PlanOptions& opt, JobControl* job) {
  if (!(opt.target_ratio > 0) || !std::isfinite(opt.target_ratio))
    throw InvalidArgument("plan: the target ratio must be a positive number");
  if (opt.metric != "attn_out_rel_err" && opt.metric != "attn_kl" && opt.metric != "rel_mse")
    throw InvalidArgument("plan: metric must be attn_out_rel_err, attn_kl or rel_mse, got '" + opt.metric + "'");
  if (!base.overrides.empty())
    throw InvalidArgument("plan: the base configuration has per-layer overrides; the plan chooses per-layer "
                          "settings itself, so remove them");
  PlanResult out;
  out.target_ratio = opt.target_ratio;
  out.metric = opt.metric;
  std::vector<int> layers;
  bool all_q = true;
  {
    io::CaptureReader cap(capture_path);
    layers = run_layer_list(cap.info(), base);
    for (int l : layers) all_q = all_q && cap.info().layer(l)->has_q_pre;
  }
  const bool use_attn = opt.metric != "rel_mse" && all_q && base.attention_metrics;
  if (opt.metric != "rel_mse" && !use_attn)
    out.notes.push_back("attention metrics unavailable for some layer: the plan minimises K + V relative MSE");
  if (opt.metric == "attn_kl")
    out.notes.push_back("attn_kl does not see V errors (V-only KL is 0): V takes the fewest bits");
  auto [kp, kopts] = bit_options(base.k.codec);
  auto [vp, vopts] = bit_options(base.v.codec);
  out.k_param = kp;
  out.v_param = vp;
  out.k_options = kopts;
  out.v_options = vopts;
  if (kopts.empty()) out.notes.push_back("K codec " + base.k.codec + " has no bit-width parameter: K is fixed");
  if (vopts.empty()) out.notes.push_back("V codec " + base.v.codec + " has no bit-width parameter: V is fixed");
  const size_t nk = std::max<size_t>(kopts.size(), 1), nv = std::max<size_t>(vopts.size(), 1);
  const std::set<int> forced(base.boundary.begin(), base.boundary.end());
  auto layer_config = [&](const std::vector<std::pair<size_t, size_t>>& pick, const std::set<int>& bnd) {
    RunConfig c = base;
    c.boundary.assign(bnd.begin(), bnd.end());
    c.overrides.clear();
    for (size_t i = 0; i < layers.size(); ++i) {
      if (bnd.count(layers[i])) continue;
      LayerOverride o;
      o.layer = layers[i];
      o.k = with_param(base.k, kp, kopts.empty() ? "" : kopts[pick[i].first]);
      o.v = with_param(base.v, vp, vopts.empty() ? "" : vopts[pick[i].second]);
      c.overrides.push_back(o);
    }
    return c;
  };
  auto index_of = [&](int layer) {
    const auto it = std::find(layers.begin(), layers.end(), layer);
    if (it == layers.end()) throw InvalidArgument("plan: the run reported layer " + std::to_string(layer) + " it was not asked for");
    return static_cast<size_t>(it - layers.begin());
  };
  const size_t widths = std::max(nk, nv);
  const size_t runs = widths + (opt.allow_boundary ? 1 : 0) + 1;
  // meas_k[layer index][k option], meas_v[...][v option], meas_bk / meas_bv[layer index] (boundary).
  std::vector<std::vector<Measure>> meas_k(layers.size(), std::vector<Measure>(nk)),
      meas_v(layers.size(), std::vector<Measure>(nv));
  std::vector<Measure> meas_bk(layers.size()), meas_bv(layers.size());
  for (size_t w = 0; w < widths; ++w) {
    const size_t ik = std::min(w, nk - 1), iv = std::min(w, nv - 1);
    const RunConfig c = layer_config(std::vector<std::pair<size_t, size_t>>(layers.size(), {ik, iv}), forced);
    const RunResult r = run_step(capture_path, c, job, w, runs, "measuring width option " + std::to_string(w + 1));
    ++out.measurement_runs;
    out.bf16_bytes = r.bf16_bytes;
    for (const LayerResult& l : r.layers) {
      const size_t i = index_of(l.layer);
      if (w < nk && !l.k.failed) meas_k[i][ik] = {true, l.k.bytes, stream_error(l.k, opt.metric, use_attn)};
      if (w < nv && !l.v.failed) meas_v[i][iv] = {true, l.v.bytes, stream_error(l.v, opt.metric, use_attn)};
    }
  }
  if (opt.allow_boundary) {
    std::set<int> all(layers.begin(), layers.end());
    const RunResult r = run_step(capture_path, layer_config({}, all), job, widths, runs, "measuring boundary layers");
    ++out.measurement_runs;
    for (const LayerResult& l : r.layers) {
      const size_t i = index_of(l.layer);
      meas_bk[i] = {true, l.k.bytes, stream_error(l.k, opt.metric, use_attn)};
      meas_bv[i] = {true, l.v.bytes, stream_error(l.v, opt.metric, use_attn)};
    }
  }
  // Options per layer: (k option, v option) pairs, then boundary (encoded as index nk*nv).
  struct Opt {
    size_t k = 0, v = 0;
    bool boundary = false;
    uint64_t bytes = 0;
    double err = 0;
    double k_err = 0, v_err = 0;
  };
  std::vector<std::vector<Opt>> options(layers.size());
  uint64_t min_bytes = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    if (forced.count(layers[i])) {
      // A boundary layer of the base configuration: measured as bf16 in every run.
      Opt o;
      o.boundary = true;
      o.bytes = meas_k[i][0].bytes + meas_v[i][0].bytes;
      o.k_err = meas_k[i][0].err;
      o.v_err = meas_v[i][0].err;
      o.err = o.k_err + o.v_err;
      options[i].push_back(o);
    } else {
      for (size_t a = 0; a < nk; ++a)
        for (size_t b = 0; b < nv; ++b)
          if (meas_k[i][a].ok && meas_v[i][b].ok)
            options[i].push_back({a, b, false, meas_k[i][a].bytes + meas_v[i][b].bytes,
                                  meas_k[i][a].err + meas_v[i][b].err, meas_k[i][a].err, meas_v[i][b].err});
      if (opt.allow_boundary && meas_bk[i].ok && meas_bv[i].ok)
        options[i].push_back({0, 0, true, meas_bk[i].bytes + meas_bv[i].bytes, meas_bk[i].err + meas_bv[i].err,
                              meas_bk[i].err, meas_bv[i].err});
    }
    if (options[i].empty())
      throw InvalidArgument("plan: every option failed on layer " + std::to_string(layers[i]) +
                            " (see kvwb run for the error)");
    uint64_t mb = options[i][0].bytes;
    for (const auto& o : options[i]) mb = std::min(mb, o.bytes);
    min_bytes += mb;
  }
  const double bf16 = static_cast<double>(out.bf16_bytes);
  auto meets = [&](uint64_t bytes) { return bytes > 0 && bf16 / static_cast<double>(bytes) >= opt.target_ratio; };
  if (!meets(min_bytes)) {
    char b[160];
    std::snprintf(b, sizeof b, "plan: target ratio %.4g is unreachable; the smallest choice per layer gives %.4g",
                  opt.target_ratio, bf16 / static_cast<double>(min_bytes));
    throw InvalidArgument(b);
  }
  // Exact multiple-choice knapsack over the options `allowed` admits: keep the (bytes, error)
  // states no other state dominates; the best state that meets the target, or none.
  auto solve = [&](const std::function<bool(const Opt&)>& allowed) -> std::optional<State> {
    const uint64_t budget = static_cast<uint64_t>(bf16 / opt.target_ratio) + 1;  // prune bound (exact check below)
    std::vector<uint64_t> layer_min(layers.size(), UINT64_MAX);
    for (size_t i = 0; i < layers.size(); ++i)
      for (const auto& o : options[i])
        if (allowed(o)) layer_min[i] = std::min(layer_min[i], o.bytes);
    for (uint64_t m : layer_min)
      if (m == UINT64_MAX) return std::nullopt;
    std::vector<State> states{State{}};
    for (size_t i = 0; i < layers.size(); ++i) {
      uint64_t rest_min = 0;
      for (size_t j = i + 1; j < layers.size(); ++j) rest_min += layer_min[j];
      std::vector<State> next;
      for (const auto& s : states)
        for (uint32_t oi = 0; oi < options[i].size(); ++oi) {
          if (!allowed(options[i][oi])) continue;
          const uint64_t bytes = s.bytes + options[i][oi].bytes;
          if (bytes + rest_min > budget) continue;
          State t{bytes, s.err + options[i][oi].err, s.pick};
          t.pick.push_back(oi);
          next.push_back(std::move(t));
        }
      std::stable_sort(next.begin(), next.end(), [](const State& a, const State& b) {
        if (a.bytes != b.bytes) return a.bytes < b.bytes;
        return a.err < b.err;
      });
      states.clear();
      for (auto& s : next)
        if (states.empty() || s.err < states.back().err) states.push_back(std::move(s));
    }
    const State* best = nullptr;
    for (const auto& s : states)
      if (meets(s.bytes) && (!best || s.err < best->err)) best = &s;
    if (!best) return std::nullopt;
    return *best;
  };
  std::optional<State> found;
  std::pair<size_t, size_t> uniform{0, 0};  // the (k, v) option of a uniform-bits plan
  if (!opt.uniform_bits) {
    found = solve([](const Opt&) { return true; });
  } else {
    // One bit width per stream (bundle-format.md §10): the best plan over every (K, V) pair, each
    // layer either at that pair or a boundary layer; ties to the first pair in option order.
    for (size_t a = 0; a < nk; ++a)
      for (size_t b = 0; b < nv; ++b) {
        auto s = solve([&](const Opt& o) { return o.boundary || (o.k == a && o.v == b); });
        if (s && (!found || s->err < found->err)) {
          found = std::move(s);
          uniform = {a, b};
        }
      }
    if (!found) {
      char b[200];
      std::snprintf(b, sizeof b,
                    "plan: no plan with one bit width per stream (uniform bits) reaches the target ratio %.4g; "
                    "per-layer widths may (drop --uniform-bits)",
                    opt.target_ratio);
      throw InvalidArgument(b);
    }
  }
  if (!found) throw InvalidArgument("plan: no combination reaches the target ratio");
  const State* best = &*found;
  std::set<int> bnd = forced;
  std::vector<std::pair<size_t, size_t>> pick(layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    const Opt& o = options[i][best->pick[i]];
    PlanLayer pl;
    pl.layer = layers[i];
    pl.boundary = o.boundary;
    pl.bytes = o.bytes;
    pl.k_err = o.k_err;
    pl.v_err = o.v_err;
    if (o.boundary) {
      bnd.insert(layers[i]);
    } else {
      pick[i] = {o.k, o.v};
      pl.k_bits = kopts.empty() ? "" : kopts[o.k];
      pl.v_bits = vopts.empty() ? "" : vopts[o.v];
    }
    out.layers.push_back(pl);
  }
  out.promised_bytes = best->bytes;
  out.promised_error = best->err;
  out.promised_ratio = bf16 / static_cast<double>(best->bytes);
  if (opt.uniform_bits) {
    // The widths go into the run-level streams, with no per-layer overrides: the plan exports as
    // a version 1 bundle.
    out.uniform_bits = true;
    out.config = base;
    out.config.boundary.assign(bnd.begin(), bnd.end());
    out.config.k = with_param(base.k, kp, kopts.empty() ? "" : kopts[uniform.first]);
    out.config.v = with_param(base.v, vp, vopts.empty() ? "" : vopts[uniform.second]);
  } else {
    out.config = layer_config(pick, bnd);
  }
  const RunResult r = run_step(capture_path, out.config, job, runs - 1, runs, "confirming the plan");
  out.measured_bytes = r.total_bytes;
  out.measured_ratio = r.ratio_vs_bf16();
  double e = 0;
  for (const auto& l : r.layers) e += stream_error(l.k, opt.metric, use_attn) + stream_error(l.v, opt.metric, use_attn);
  out.measured_error = e;
  out.measured_totals = run_result_to_json(r)["totals"];
  if (r.failed) out.notes.push_back("the confirming run has a failed layer-stream");
  return out;
}

json plan_result_to_json(const PlanResult& p) {
  json j;
  j["format"] = "kvwb-plan";
  j["target_ratio"] = p.target_ratio;
  j["metric"] = p.metric;
  j["objective"] = "sum over layers and streams of the metric with only that stream compressed";
  j["k_param"] = p.k_param;
  j["v_param"] = p.v_param;
  j["k_options"] = p.k_options;
  j["v_options"] = p.v_options;
  json ls = json::array();
  for (const auto& l : p.layers) {
    json x{{"layer", l.layer}, {"boundary", l.boundary}, {"bytes", l.bytes}, {"k_err", l.k_err}, {"v_err", l.v_err}};
    if (!l.boundary) {
      x["k_bits"] = l.k_bits;
      x["v_bits"] = l.v_bits;
    }
    ls.push_back(x);
  }
  j["layers"] = ls;
  j["config"] = run_config_to_json(p.config);
  j["bf16_bytes"] = p.bf16_bytes;
  j["promised"] = {{"bytes", p.promised_bytes}, {"ratio_vs_bf16", p.promised_ratio}, {"error_sum", p.promised_error}};
  j["measured"] = {{"bytes", p.measured_bytes},
                   {"ratio_vs_bf16", num(p.measured_ratio)},
                   {"error_sum", p.measured_error},
                   {"totals", p.measured_totals}};
  j["measurement_runs"] = p.measurement_runs;
  j["notes"] = p.notes;
  if (p.uniform_bits) j["uniform_bits"] = true;
  return j;
}

}  // namespace kvwb::sessions
