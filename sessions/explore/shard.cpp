#include "sessions/explore/shard.h"

#include <algorithm>
#include <cstdlib>

#include "base/errors.h"
#include "sessions/config/run_config.h"

namespace kvwb::sessions {

std::string ShardSpec::text() const { return std::to_string(index) + "/" + std::to_string(count); }

EnvLookup process_environment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (!v) return std::nullopt;
    return std::string(v);
  };
}

namespace {

/// A non-negative decimal integer without sign, spaces or overflow; nullopt otherwise.
std::optional<size_t> parse_count(const std::string& s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  size_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<size_t>(c - '0');
  }
  return v;
}

size_t env_count(const EnvLookup& env, const std::string& name, const std::string& why) {
  const auto v = env(name);
  if (!v) throw InvalidArgument("--shard auto: " + name + " is not set (" + why + ")");
  const auto n = parse_count(*v);
  if (!n)
    throw InvalidArgument("--shard auto: " + name + "='" + *v + "' is not a non-negative integer");
  return *n;
}

}  // namespace

ShardSpec parse_shard_spec(const std::string& text, size_t shards, const EnvLookup& env) {
  ShardSpec s;
  if (text == "auto") {
    if (env("SLURM_ARRAY_TASK_ID")) {
      s.index = env_count(env, "SLURM_ARRAY_TASK_ID", "");
      s.count = shards ? shards
                       : env_count(env, "SLURM_ARRAY_TASK_COUNT",
                                   "pass --shards N, or submit the array as --array=0-(N-1)");
    } else if (env("JOB_COMPLETION_INDEX")) {
      s.index = env_count(env, "JOB_COMPLETION_INDEX", "");
      if (!shards)
        throw InvalidArgument(
            "--shard auto under a Kubernetes Indexed Job (JOB_COMPLETION_INDEX) needs --shards N "
            "(the Job's "
            "completions)");
      s.count = shards;
    } else {
      throw InvalidArgument(
          "--shard auto: neither SLURM_ARRAY_TASK_ID (a Slurm job array task) nor "
          "JOB_COMPLETION_INDEX (a "
          "Kubernetes Indexed Job) is set; give the shard as I/N");
    }
  } else {
    const size_t slash = text.find('/');
    const auto i = slash == std::string::npos ? std::nullopt : parse_count(text.substr(0, slash));
    const auto n = slash == std::string::npos ? std::nullopt : parse_count(text.substr(slash + 1));
    if (!i || !n) throw InvalidArgument("--shard '" + text + "': expected I/N (e.g. 0/4) or auto");
    s.index = *i;
    s.count = *n;
    if (shards && shards != s.count)
      throw InvalidArgument("--shard " + text + " and --shards " + std::to_string(shards) +
                            " disagree");
  }
  if (s.count == 0)
    throw InvalidArgument("--shard " + text + ": the number of shards must be at least 1");
  if (s.index >= s.count)
    throw InvalidArgument("--shard " + text + ": shard index " + std::to_string(s.index) +
                          " is out of range for " + std::to_string(s.count) + " shards (0 to " +
                          std::to_string(s.count - 1) + ")");
  return s;
}

std::vector<size_t> canonical_cell_order(const std::vector<GridCell>& cells) {
  std::vector<std::pair<std::string, size_t>> keyed;
  keyed.reserve(cells.size());
  for (size_t i = 0; i < cells.size(); ++i) keyed.emplace_back(run_config_hash(cells[i].config), i);
  std::sort(keyed.begin(), keyed.end());
  std::vector<size_t> out;
  out.reserve(cells.size());
  for (const auto& k : keyed) out.push_back(k.second);
  return out;
}

std::vector<size_t> shard_cells(const std::vector<GridCell>& cells, const ShardSpec& shard) {
  if (shard.count == 0 || shard.index >= shard.count)
    throw InvalidArgument("shard " + shard.text() + " is not a valid shard");
  const std::vector<size_t> order = canonical_cell_order(cells);
  std::vector<size_t> out;
  for (size_t p = shard.index; p < order.size(); p += shard.count) out.push_back(order[p]);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace kvwb::sessions
