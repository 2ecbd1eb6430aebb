#include "app/cli/eval_args.h"

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>

#include "base/errors.h"

namespace kvwb::app {

void add_eval_protocol_args(CLI::App& cmd, EvalProtocolArgs& a, const std::string& prefix) {
  cmd.add_option(
         "--context", a.opt.context,
         prefix +
             "prefill tokens C incl. BOS (default: min(2048, max_position − N); 2048 when unknown)")
      ->check(CLI::Range(0, 1 << 24));
  cmd.add_option("--continuation", a.opt.continuation,
                 prefix + "teacher-forced tokens N (default 64; N−1 scored)")
      ->check(CLI::Range(2, 1 << 24));
  cmd.add_option("--passages", a.opt.passages,
                 prefix + "passages P (default 0 = every passage the text holds, up to " +
                     std::to_string(sessions::kDefaultMaxPassages) +
                     "; fewer than 4 makes the verdict provisional)")
      ->check(CLI::Range(0, 1 << 20));
  cmd.add_option("--selection", a.opt.selection,
                 prefix +
                     "which passages when the text holds more: spread (evenly over the text, "
                     "default) | first")
      ->check(CLI::IsMember({"spread", "first"}));
  cmd.add_option("--resamples", a.opt.bootstrap.resamples,
                 prefix + "bootstrap resamples of the 95 % intervals (default " +
                     std::to_string(sessions::kDefaultBootstrapResamples) + ")")
      ->check(CLI::Range(100, 1000000));
  cmd.add_option("--bootstrap-seed", a.seed,
                 prefix + "seed of the bootstrap resampling (default 0xCAFEBABE)");
}

sessions::EvalOptions eval_options(const EvalProtocolArgs& a) {
  sessions::EvalOptions o = a.opt;
  if (!a.seed.empty()) {
    try {
      size_t used = 0;
      o.bootstrap.seed = std::stoull(a.seed, &used, 0);
      if (used != a.seed.size()) throw std::invalid_argument("trailing characters");
    } catch (const std::exception&) {
      throw InvalidArgument("--bootstrap-seed must be an integer (decimal or 0x hex), got '" +
                            a.seed + "'");
    }
  }
  return o;
}

std::string value_with_interval(const char* fmt, double v, const sessions::Interval& ci) {
  char a[48], lo[48], hi[48];
  std::snprintf(a, sizeof a, fmt, v);
  if (!ci.defined()) return std::string(a) + " [n/a]";
  std::snprintf(lo, sizeof lo, fmt, ci.lo);
  std::snprintf(hi, sizeof hi, fmt, ci.hi);
  char out[160];
  std::snprintf(out, sizeof out, "%s [%s, %s]", a, lo, hi);
  return out;
}

void print_eval_aggregate(const sessions::EvalResult& r) {
  const auto& a = r.aggregate;
  std::printf(
      "aggregate over %zu passages, 95 %% paired-bootstrap intervals (%d resamples, seed %s):\n",
      r.passages.size(), r.bootstrap.resamples, sessions::seed_hex(r.bootstrap.seed).c_str());
  std::printf("  dppl    %s %%   (std over passages %.4f)\n",
              value_with_interval("%+.4f", a.delta_ppl, a.delta_ppl_ci).c_str(), a.delta_ppl_std);
  std::printf("  |dppl|  %s %%\n",
              value_with_interval("%.4f", std::fabs(a.delta_ppl), a.abs_delta_ppl_ci).c_str());
  std::printf("  top-1   %s %%\n", value_with_interval("%.2f", a.top1, a.top1_ci).c_str());
  std::printf("  KL      %s nats\n", value_with_interval("%.4e", a.kl, a.kl_ci).c_str());
  std::printf("  ratio vs bf16 %.4f\n", a.ratio_vs_bf16);
  std::printf("verdict:  %s (%s, 95 %% interval): %s%s\n", a.verdict.c_str(), a.ladder.c_str(),
              a.verdict_reason.c_str(),
              a.provisional ? "; provisional: fewer than 4 passages" : "");
  if (a.passages_needed && *a.passages_needed > r.passages_available)
    std::printf("          the text holds %d passages of %d + %d tokens: use a longer text\n",
                r.passages_available, r.context, r.continuation);
  std::printf("point verdict (estimates alone): %s\n", a.verdict_point.c_str());
  std::printf(
      "time: %.3f s for %zu passages (%.1f ms per passage); prefill and reference passes once: "
      "%.3f s\n",
      r.seconds, r.passages.size(), 1000.0 * r.seconds_per_passage, r.prefill_seconds);
}

void add_bundle_arg(CLI::App& cmd, std::string& dir, const std::string& what) {
  cmd.add_option(
      "--bundle", dir,
      "Calibration bundle (kvwb export-bundle) whose Σ_q factors and centroid tables " + what +
          " uses instead of calibrating on the data (results say in-sample / out-of-sample)");
}

}  // namespace kvwb::app
