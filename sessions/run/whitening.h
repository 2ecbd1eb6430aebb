#pragma once
// Q-preconditioning (codec-kakeya.md §8): the whitening factors L, L⁻¹ of Σ_q per (layer, kv head)
// and the skip rule, built once here for every caller (the runner, the bundle's Σ_q calibration,
// the end-to-end evaluation).
#include <functional>
#include <map>
#include <set>
#include <vector>

#include "codec/format/tensor.h"
#include "codec/math/calibration.h"
#include "io/capture.h"
#include "sessions/config/run_config.h"

namespace kvwb::sessions {

/// Q-preconditioning factors of a capture: per layer, per kv head; layers absent = identity.
struct Whitening {
  std::map<int, std::vector<codec::WhiteningFactor>> factors;  // layers with Σ_q
  codec::SkipRule rule;
  std::set<int> skipped;  // auto ∪ user
};

/// The pre-RoPE queries [S, H_q, T, D] of a layer: returns a tensor it holds, or fills `scratch`
/// and returns that.
using QPreSource = std::function<const codec::Tensor4&(int layer, codec::Tensor4& scratch)>;

/// The factors cfg.q_precond asks for: none when it is empty; "capture": Σ_q of `q_pre` for every
/// full-attention layer of `info` that has q_pre (ridge codec::kDefaultRidge, cfg.target_cond);
/// otherwise the safetensors file it names, checked against info's kv heads and head_dim. Then the
/// skip rule over the factored layers and the skipped set (auto rule when
/// cfg.q_precond_auto_skip, plus cfg.q_precond_skip_layers).
Whitening build_whitening(const io::CaptureInfo& info, const RunConfig& cfg,
                          const QPreSource& q_pre);

/// build_whitening with the queries read from `capture`.
Whitening build_whitening(const io::CaptureReader& capture, const RunConfig& cfg);

}  // namespace kvwb::sessions
