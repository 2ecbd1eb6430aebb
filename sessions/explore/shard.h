#pragma once
// Sharding a sweep across machines (docs/cluster.md). The canonical cell list of a grid is its
// cells (after dropping duplicate configurations) sorted by configuration hash (run_config_hash,
// the second half of a record's key). Shard I of N runs the cells at canonical positions
// p ≡ I (mod N): the shards of one grid never overlap and together cover it, and a shard's cells
// do not depend on the order in which the grid file lists options or sub-grids.
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "sessions/config/run_options.h"

namespace kvwb::sessions {

/// Shard `index` of `count` (0 <= index < count); count 1 is the whole grid.
struct ShardSpec {
  size_t index = 0;
  size_t count = 1;
  bool whole() const { return count <= 1; }
  /// "I/N".
  std::string text() const;
  bool operator==(const ShardSpec& o) const { return index == o.index && count == o.count; }
};

/// Reads an environment variable; std::nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
/// The process environment (getenv).
EnvLookup process_environment();

/// Parses `kvwb sweep --shard`: "I/N" (decimal, 0 <= I < N), or "auto", which takes I from
/// SLURM_ARRAY_TASK_ID (a Slurm job array task) or else JOB_COMPLETION_INDEX (a Kubernetes
/// Indexed Job), and N from `shards` (--shards; 0 = not given) or else SLURM_ARRAY_TASK_COUNT.
/// With "I/N", `shards` must be 0 or N. Throws InvalidArgument naming the text or the variable.
ShardSpec parse_shard_spec(const std::string& text, size_t shards, const EnvLookup& env);

/// Indices into `cells` in canonical order (ascending run_config_hash).
std::vector<size_t> canonical_cell_order(const std::vector<GridCell>& cells);

/// Indices into `cells` (ascending) of the cells of shard `shard`: those whose position in the
/// canonical order is ≡ shard.index (mod shard.count). Throws InvalidArgument for count 0 or
/// index >= count.
std::vector<size_t> shard_cells(const std::vector<GridCell>& cells, const ShardSpec& shard);

}  // namespace kvwb::sessions
