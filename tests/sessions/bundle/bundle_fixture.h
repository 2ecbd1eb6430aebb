#pragma once
// The configuration the bundle tests export, apply and transfer.
#include <cstdint>

#include "sessions/config/run_config.h"

namespace kvwb::test {

/// Σ_q from the capture, K b = 3, V b = 2, 2 threads, blocks of `block_size` rows, all layers.
inline sessions::RunConfig bundle_test_config(uint32_t block_size) {
  sessions::RunConfig c;
  c.block_size = block_size;
  c.q_precond = "capture";
  c.k.params["bit_width"] = "3";
  c.v.params["bit_width"] = "2";
  c.threads = 2;
  return c;
}

}  // namespace kvwb::test
