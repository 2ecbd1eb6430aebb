#include "views/models/layer_error_model.h"

#include <algorithm>
#include <cmath>

#include "sessions/run/runner.h"

namespace kvwb::views {

std::string layer_error_metric_name(LayerErrorMetric m) {
  switch (m) {
    case LayerErrorMetric::kRelMse:
      return "relative MSE";
    case LayerErrorMetric::kAttnOutRelErr:
      return "attention output rel. error";
    case LayerErrorMetric::kAttnKl:
      return "attention KL (nats)";
  }
  return "?";
}

namespace {

std::optional<double> attn_value(const codec::AttentionSums& a, bool has, LayerErrorMetric m) {
  if (!has) return std::nullopt;
  const double v = m == LayerErrorMetric::kAttnKl ? a.kl() : a.out_rel_err();
  return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

LayerErrorStream stream_of(const sessions::StreamResult& s, LayerErrorMetric m) {
  LayerErrorStream out;
  out.codec = s.codec;
  out.failed = s.failed;
  out.error_code = s.error_code;
  if (s.failed) return out;
  if (m == LayerErrorMetric::kRelMse) {
    const double v = s.err.rel_mse();
    if (std::isfinite(v)) out.value = v;
  } else {
    out.value = attn_value(s.attn, s.has_attn, m);
  }
  return out;
}

}  // namespace

std::vector<PlotSeries> LayerErrorModel::series() const {
  const std::string name = layer_error_metric_name(metric);
  PlotSeries k{"K " + name, {}, {}}, v{"V " + name, {}, {}}, both{"K+V " + name, {}, {}};
  PlotSeries boundary{"boundary (bf16)", {}, {}}, kf{"K failed", {}, {}}, vf{"V failed", {}, {}};
  PlotSeries wh{"K whitened (Σ_q)", {}, {}}, skip{"Σ_q skip rule (K unwhitened)", {}, {}};
  const double nan = std::nan("");
  for (const LayerErrorRow& r : rows) {
    if (r.k.value) {
      k.x.push_back(r.layer);
      k.y.push_back(*r.k.value);
    }
    if (r.v.value) {
      v.x.push_back(r.layer);
      v.y.push_back(*r.v.value);
    }
    if (r.both) {
      both.x.push_back(r.layer);
      both.y.push_back(*r.both);
    }
    auto mark = [&](PlotSeries& s, bool on) {
      if (!on) return;
      s.x.push_back(r.layer);
      s.y.push_back(nan);
    };
    mark(boundary, r.boundary);
    mark(kf, r.k.failed);
    mark(vf, r.v.failed);
    mark(wh, r.whitened);
    mark(skip, r.q_skip);
  }
  std::vector<PlotSeries> out;
  for (PlotSeries* s : {&k, &v, &both, &boundary, &kf, &vf, &wh, &skip})
    if (!s->x.empty()) out.push_back(std::move(*s));
  return out;
}

bool LayerErrorModel::empty() const {
  return std::none_of(rows.begin(), rows.end(), [](const LayerErrorRow& r) {
    return r.k.value || r.v.value || r.both || r.k.failed || r.v.failed;
  });
}

LayerErrorModel build_layer_error_model(const Snapshot& snapshot, LayerErrorMetric metric) {
  LayerErrorModel m;
  m.metric = metric;
  m.title = chart_title("Per-layer error", snapshot.capture, "");
  if (!snapshot.run) {
    m.note = waiting_note(snapshot, "run");
    return m;
  }
  const sessions::RunResult& run = *snapshot.run;
  for (const auto& l : run.layers) {
    LayerErrorRow r;
    r.layer = l.layer;
    r.boundary = l.boundary;
    r.whitened = l.whitened;
    r.q_skip = l.q_skip;
    r.k = stream_of(l.k, metric);
    r.v = stream_of(l.v, metric);
    if (metric != LayerErrorMetric::kRelMse) r.both = attn_value(l.attn, l.has_attn, metric);
    m.rows.push_back(std::move(r));
  }
  std::sort(m.rows.begin(), m.rows.end(),
            [](const LayerErrorRow& a, const LayerErrorRow& b) { return a.layer < b.layer; });
  m.title = chart_title("Per-layer error", snapshot.capture,
                        "all layers · " + layer_error_metric_name(metric));
  std::vector<std::string> notes;
  if (m.rows.empty()) notes.push_back("The run holds no layers.");
  if (metric != LayerErrorMetric::kRelMse &&
      std::none_of(m.rows.begin(), m.rows.end(),
                   [](const LayerErrorRow& r) { return r.k.value || r.v.value || r.both; })) {
    notes.push_back(
        "No attention metrics in this run (they need q_pre in the capture and "
        "attention_metrics on).");
  }
  if (std::any_of(m.rows.begin(), m.rows.end(),
                  [](const LayerErrorRow& r) { return r.k.failed || r.v.failed; })) {
    notes.push_back("Some streams failed (marked ×; hover for the error code).");
  }
  const bool all_tail = std::any_of(run.layers.begin(), run.layers.end(), [](const auto& l) {
    return !l.boundary && ((l.k.bytes > 0 && l.k.tail_bytes == l.k.bytes) ||
                           (l.v.bytes > 0 && l.v.tail_bytes == l.v.bytes));
  });
  if (all_tail) {
    notes.push_back(
        "Some streams kept every row in the bf16 hot tail (fewer tokens than "
        "block_size): their error is bf16 rounding.");
  }
  if (const std::string state = run_state_note(snapshot); !state.empty()) notes.push_back(state);
  for (const auto& n : notes) m.note += (m.note.empty() ? "" : " ") + n;
  return m;
}

std::string layer_error_csv(const LayerErrorModel& m) {
  return series_csv("layer", "value", m.series());
}

}  // namespace kvwb::views
