#pragma once
// The metric cases of gpu_selftest (docs/gpu.md): the CUDA executor's metric seam (its kernels in
// codec/cuda/metrics_*, reached through codec/executor.h only) against the CPU metrics
// (codec/math/metrics.cpp), emulated on the host ("emu.metrics.*") and on the device when there
// is one ("cuda.metrics.*"), plus the CPU executor's side of the seam ("cpu.metrics.*") and the
// metric benchmark.
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

/// The CUDA executor's metric seam (`ex`: emulated on the host or on the device) against the CPU
/// metric code: reconstruction sums bit for bit, attention within the tolerance of docs/gpu.md.
/// Prefix "emu.metrics." or "cuda.metrics."; `small`: only the two small cases (memcheck).
void device_metric_cases(const codec::Executor& ex, const std::string& prefix,
                         const CaseRunner& run_case, bool small = false);

/// One timing of the metric benchmark.
struct MetricTiming {
  std::string name;
  double ms = 0;
  std::string note;
};

/// The metrics of one configuration of the 1.5B shape (`layers` layers × K, V × 2 kv heads ×
/// 2048 tokens × D 128, 12 query heads, the default 256 sampled queries; turbo3-decoded rows):
/// the CPU on 1 thread and on all threads, and the CUDA executor `device` when given.
std::vector<MetricTiming> metric_bench(size_t layers, const codec::Executor* device);

}  // namespace kvwb::selftest
