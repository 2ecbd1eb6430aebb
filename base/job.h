#pragma once
// Job control shared by every layer: progress reporting and cooperative cancel of one job.
#include <atomic>
#include <cstddef>
#include <functional>
#include <string>

namespace kvwb {

/// Progress and cooperative cancel of a job. `progress(done, total, detail)` may be called from
/// the job's thread only; `cancel` may be set from any thread.
struct JobControl {
  std::atomic<bool> cancel{false};
  std::function<void(size_t done, size_t total, const std::string& detail)> progress;
};

}  // namespace kvwb
