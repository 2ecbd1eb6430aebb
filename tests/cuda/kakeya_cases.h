#pragma once
// Kakeya-PCA cases of gpu_selftest: parity of the CUDA executor (emulated or on a device) with
// the CPU executor on synthetic inputs made with the project RNG (codec-kakeya.md §12 parity bar),
// typed errors and unsupported options. No Qt / HDF5 / GoogleTest.
#include <functional>
#include <string>

#include "codec/executor.h"
#include "tests/golden/golden_cases.h"

namespace kvwb::selftest {

/// Runs one named case: the body returns "" (pass) or why it failed.
using CaseRunner = std::function<void(const std::string&, const std::function<std::string()>&)>;

/// Every kakeya case through `dev` against `cpu`, named prefix + "kakeya." + case. `full` adds the
/// 1.5B-shaped layer (slow when emulated).
void kakeya_cases(const codec::Executor& dev, const codec::Executor& cpu, const std::string& prefix,
                  bool full, const CaseRunner& run_case);

/// The §12 parity bar between the CPU result `cpu` and the CUDA result `dev` of request `req`
/// (plus identical framing and the device's containers decoding to its decoded rows); prints the
/// figures under `name`. "" = pass.
std::string kakeya_parity(const std::string& name, const codec::BatchRequest& req,
                          const codec::BatchResult& cpu, const codec::BatchResult& dev);

/// A golden kakeya_pca batch through `dev` against `cpu` under the parity bar (the containers
/// are not byte-identical across backends, codec-kakeya.md §12), pca_method=randomized included
/// (its fits run on the host with the CPU's code). "" = pass.
std::string kakeya_golden_parity(const golden::Batch& b, const codec::Executor& dev,
                                 const codec::Executor& cpu, const std::string& name);

}  // namespace kvwb::selftest
