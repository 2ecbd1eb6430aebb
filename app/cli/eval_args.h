#pragma once
// Options of the end-to-end protocol shared by eval, proxy-truth, sweep --model and transfer
// (--context --continuation --passages --selection --resamples --bootstrap-seed), the
// --bundle option of run/eval/sweep, and the printing of an evaluation's aggregate with its
// intervals and verdict.
#include <string>

#include "sessions/config/calibration_bundle.h"
#include "sessions/eval/eval.h"

namespace CLI {
class App;
}

namespace kvwb::app {

struct EvalProtocolArgs {
  sessions::EvalOptions opt;
  std::string seed;  // --bootstrap-seed text ("" = default)
};

/// Registers the protocol options; `prefix` starts each help text (e.g. "End-to-end: ").
void add_eval_protocol_args(CLI::App& cmd, EvalProtocolArgs& a, const std::string& prefix = "");
/// The EvalOptions with the seed parsed (decimal or 0x hex); throws InvalidArgument.
sessions::EvalOptions eval_options(const EvalProtocolArgs& a);

/// "+0.51 % [−0.08, +1.10]"-style text of a value and its interval with printf format `fmt`
/// (used for both); "n/a" bounds when the interval is undefined.
std::string value_with_interval(const char* fmt, double v, const sessions::Interval& ci);

/// The aggregate block of `kvwb eval`: every metric with its interval, the verdict (interval and
/// point), passages and timing.
void print_eval_aggregate(const sessions::EvalResult& r);

/// Registers --bundle DIR.
void add_bundle_arg(CLI::App& cmd, std::string& dir, const std::string& what);

}  // namespace kvwb::app
