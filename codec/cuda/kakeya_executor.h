#pragma once
// The Kakeya-PCA path of the CUDA executor (host C++, C++20; no CUDA headers): the batch glue
// between the executor and the kernels of kakeya_device.h.
#include <atomic>

#include "codec/codec.h"
#include "codec/cuda/kakeya_device.h"
#include "codec/executor.h"

namespace kvwb::codec::cuda {

/// Runs one kakeya_pca (layer, stream) batch for the CUDA executor: validates what the kernels
/// support (D ≤ kKakeyaMaxDim, else Unsupported naming the head dimension and the backend),
/// whitens on the host, fits randomized PCA on the host with the CPU codec's own code (exact PCA
/// fits on the device), runs the kernels on `ws` (null: emulate_kakeya_batch),
/// raises the CPU's exact error for the lowest unit the host checks or the device flagged, and
/// assembles every container with the CPU codec's writer (kakeya::write_container).
BatchResult run_kakeya_batch(const BatchRequest& req, const Codec& codec, KakeyaWorkspace* ws,
                             const std::atomic<bool>* cancel);

}  // namespace kvwb::codec::cuda
