#include "sessions/run/whitening.h"

#include <algorithm>
#include <string>

#include "sessions/run/calibration_io.h"

namespace kvwb::sessions {

Whitening build_whitening(const io::CaptureInfo& info, const RunConfig& cfg,
                          const QPreSource& q_pre) {
  Whitening w;
  if (cfg.q_precond.empty()) return w;
  if (cfg.q_precond == "capture") {
    codec::Tensor4 scratch;
    for (const auto& li : info.layers) {
      if (!li.has_q_pre || li.attention == "sliding") continue;
      const codec::Tensor4& q = q_pre(li.layer, scratch);
      const auto sig = codec::compute_sigma_q(q, static_cast<size_t>(info.num_kv_heads));
      auto& fs = w.factors[li.layer];
      for (size_t h = 0; h < sig.size(); ++h)
        fs.push_back(codec::factor_sigma_q(
            sig[h], static_cast<size_t>(info.head_dim), codec::kDefaultRidge, cfg.target_cond,
            "layer " + std::to_string(li.layer) + ", kv head " + std::to_string(h)));
    }
  } else {
    w.factors = load_whitening_file(cfg.q_precond, info.num_kv_heads, info.head_dim);
  }
  std::map<int, double> m;
  for (const auto& [l, fs] : w.factors) {
    double mx = 0;
    for (const auto& f : fs) mx = std::max(mx, f.max_abs_L);
    m[l] = mx;
  }
  w.rule = codec::skip_rule(m);
  if (cfg.q_precond_auto_skip)
    for (const auto& [l, s] : w.rule.skip)
      if (s) w.skipped.insert(l);
  for (int l : cfg.q_precond_skip_layers) w.skipped.insert(l);
  return w;
}

Whitening build_whitening(const io::CaptureReader& capture, const RunConfig& cfg) {
  return build_whitening(capture.info(), cfg,
                         [&](int layer, codec::Tensor4& scratch) -> const codec::Tensor4& {
                           scratch = capture.read(layer, io::TensorKind::kQPre);
                           return scratch;
                         });
}

}  // namespace kvwb::sessions
