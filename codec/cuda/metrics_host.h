#pragma once
// The CUDA executor's metric entry points (executor.h: BatchRequest::measure and
// Executor::attention) on the metric kernels: the request's host arrays to the device (or to the
// host emulation when `ws` is null), and the results folded into the CPU's ErrorSums /
// AttentionVariants in the CPU's order. Host C++, no CUDA headers.
#include <vector>

#include "codec/cuda/metrics_device.h"
#include "codec/executor.h"

namespace kvwb::codec::cuda {

/// BatchResult::head_errors of rows [S, H, T, D] (req.rows) against `decoded` [S, H, T, D]: on the
/// device through `ws`, or emulated on the host when ws is null. *kernel_ms receives the device
/// time of the metric call (h2d + kernels + d2h; 0 when emulated).
std::vector<ErrorSums> device_head_errors(MetricsWorkspace* ws, const BatchRequest& req,
                                          const float* decoded, double* device_ms);

/// The sampled queries of an attention request in the order the CPU visits them: unit (s, h),
/// then its query heads hq = h·g …, then each sample in order.
std::vector<QueryRef> attention_query_list(const AttentionRequest& req);

/// Folds per-query results (in attention_query_list order) into per-unit AttentionVariants
/// exactly as accumulate_attention adds its per-query values.
std::vector<AttentionVariants> fold_attention(const AttentionRequest& req,
                                              const std::vector<QueryOut>& per_query);

/// Executor::attention on the device through `ws`, or emulated on the host when ws is null.
AttentionResult device_attention(MetricsWorkspace* ws, const AttentionRequest& req);

}  // namespace kvwb::codec::cuda
