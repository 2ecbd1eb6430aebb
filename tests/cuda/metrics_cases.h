#pragma once
// The metric cases of gpu_selftest (docs/gpu.md): the CUDA metric code (codec/cuda/metrics_*)
// against the CPU metrics (codec/math/metrics.cpp), emulated on the host ("emu.metrics.*") and on
// the device when there is one ("cuda.metrics.*"), plus the CPU executor's side of the seam
// ("cpu.metrics.*") and the metric benchmark.
#include <functional>
#include <string>
#include <vector>

#include "codec/executor.h"

namespace kvwb::selftest {

/// Runs a named case: the body returns "" (pass) or why it failed.
using CaseRunner = std::function<void(const std::string&, const std::function<std::string()>&)>;

/// The CPU executor's seam: head_errors and attention() equal the direct CPU metric code bit for
/// bit (cpu.metrics.*).
void cpu_metric_cases(const CaseRunner& run_case);

/// The device metric code against the CPU metric code. `on_device`: the real device (else the
/// host emulation of the same kernel bodies); `cuda_executor`: the CUDA executor of the same kind
/// (for the seam case). Prefix "emu.metrics." or "cuda.metrics.".
void device_metric_cases(bool on_device, const codec::Executor& cuda_executor,
                         const std::string& prefix, const CaseRunner& run_case);

/// One timing of the metric benchmark.
struct MetricTiming {
  std::string name;
  double ms = 0;
  std::string note;
};

/// The metrics of one configuration of the 1.5B shape (`layers` layers × K, V × 2 kv heads ×
/// 2048 tokens × D 128, 12 query heads, the default 256 sampled queries; turbo3-decoded rows):
/// the CPU on 1 thread and on all threads, and the device when `on_device`.
std::vector<MetricTiming> metric_bench(size_t layers, bool on_device);

}  // namespace kvwb::selftest
