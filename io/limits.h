#pragma once
// Input limits and checks against reality (docs/reliability.md). Every size, count or index read
// from a file or a flag is checked against these bounds, and against the file's actual extent and
// the memory this process may use, before anything is allocated or iterated. The bounds are far
// above any released model (the largest have ~128 layers, 128 query heads, head_dim 256).
#include <cstdint>
#include <string>

namespace kvwb::io {

/// num_layers of a capture, model or Σ_q sidecar; every layer index is < kMaxLayers.
inline constexpr int64_t kMaxLayers = 4096;
/// H_q and H_kv.
inline constexpr int64_t kMaxHeads = 4096;
/// head_dim D.
inline constexpr int64_t kMaxHeadDim = 4096;
/// Cells of one sweep or proxy-truth grid, all sub-grids together (computed before expansion).
inline constexpr int64_t kMaxGridCells = 100000;
/// A JSON document read whole (run config, grid, session, bundle sidecar, model config,
/// store.json).
inline constexpr uint64_t kMaxJsonBytes = 256ull << 20;

/// Bytes this process may allocate: the smallest of physical memory, RLIMIT_AS and the cgroup
/// memory limit (where readable).
uint64_t memory_budget_bytes();

/// Throws Unsupported naming `what` when one allocation of `bytes` cannot fit the memory budget
/// ("<what> needs 12.0 GiB, more than the 8.0 GiB this process may use").
void check_allocation(uint64_t bytes, const std::string& what);

/// `a * b`, or false on overflow.
bool checked_mul(uint64_t a, uint64_t b, uint64_t& out) noexcept;

/// Requires `path` to name an existing regular file (symbolic links followed): a folder, FIFO,
/// device or socket, or a missing path, throws IoError naming it and what was expected.
/// `what` describes the expected file ("capture file (.kvc.h5)").
void require_regular_file(const std::string& path, const std::string& what = "a file");

/// Size of the regular file `path` in bytes (after require_regular_file); throws IoError.
uint64_t regular_file_size(const std::string& path, const std::string& what = "a file");

/// "12.0 GiB" / "512 B".
std::string bytes_text(uint64_t bytes);

}  // namespace kvwb::io
