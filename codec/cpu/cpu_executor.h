#pragma once
// The CPU executor: the reference backend. One codec per batch, the batch's units on the thread
// pool of base/ (one unit per task), each encoded to its container and decoded from those bytes.
#include <atomic>
#include <string_view>

#include "codec/executor.h"

namespace kvwb::codec::cpu {

class CpuExecutor final : public Executor {
 public:
  /// `threads` workers per batch (0 = all hardware threads); results do not depend on it.
  explicit CpuExecutor(int threads) : threads_(threads) {}
  std::string_view name() const override { return "cpu"; }
  BatchResult run(const BatchRequest& request,
                  const std::atomic<bool>* cancel = nullptr) const override;
  /// attention_on_cpu on this executor's threads.
  AttentionResult attention(const AttentionRequest& request,
                            const std::atomic<bool>* cancel = nullptr) const override {
    return attention_on_cpu(request, threads_, cancel);
  }

 private:
  int threads_;
};

}  // namespace kvwb::codec::cpu
