#pragma once
// Helpers every .cu file of the CUDA backend shares (private to codec/cuda/, C++17): the CUDA
// error check, the flat thread index of a 1-D launch, grid sizes, buffers that only grow, and the
// stream + timing events a workspace runs its batches on.
#include <cuda_runtime.h>

#include <cstddef>
#include <string>

#include "base/errors.h"

namespace kvwb::codec::cuda {

/// Prefix of CudaError messages ("CUDA <what>: <CUDA's message>").
inline constexpr const char* kCudaLabel = "CUDA ";

/// Throws CudaError(label + what + ": " + CUDA's message) unless `err` is cudaSuccess; clears the
/// last-error state first so the next call starts clean.
inline void check(cudaError_t err, const char* what, const char* label = kCudaLabel) {
  if (err == cudaSuccess) return;
  cudaGetLastError();
  throw CudaError(std::string(label) + what + ": " + cudaGetErrorString(err));
}

/// Index of this thread in a 1-D launch (block-major).
__device__ inline size_t thread_index() {
  return blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
}

/// Blocks of `block` threads that cover `n` items.
inline unsigned grid_for(size_t n, unsigned block) {
  return static_cast<unsigned>((n + block - 1) / block);
}

/// A device buffer (kPinned: a pinned host buffer) that only grows; reserve(0) holds one byte so
/// the pointer is never null once reserved. Contents are not kept when it grows.
template <bool kPinned>
struct GrowBuffer {
  void* ptr = nullptr;
  size_t size = 0;  // bytes

  GrowBuffer() = default;
  GrowBuffer(const GrowBuffer&) = delete;
  GrowBuffer& operator=(const GrowBuffer&) = delete;
  ~GrowBuffer() { release(); }

  /// At least `bytes` (≥ 1); throws CudaError (label + what) when the allocation fails.
  void reserve(size_t bytes, const char* what, const char* label = kCudaLabel) {
    if (bytes == 0) bytes = 1;
    if (bytes <= size) return;
    release();
    check(kPinned ? cudaMallocHost(&ptr, bytes) : cudaMalloc(&ptr, bytes), what, label);
    size = bytes;
  }
  void release() {
    if (ptr) kPinned ? cudaFreeHost(ptr) : cudaFree(ptr);
    ptr = nullptr;
    size = 0;
  }
};
using DeviceBuffer = GrowBuffer<false>;
using PinnedBuffer = GrowBuffer<true>;

/// The device, non-blocking stream and four events of a workspace. A batch records ev[0] before
/// its host → device copies, ev[1] after them, ev[2] after its kernels and ev[3] after its
/// device → host copies, then synchronises the stream once.
struct BatchStream {
  int device = 0;
  cudaStream_t stream = nullptr;
  cudaEvent_t ev[4] = {};
  const char* label = kCudaLabel;  // prefix of the CudaError messages

  /// Selects `device`, creates the stream and the events; throws CudaError when that fails.
  explicit BatchStream(int dev, const char* error_label = kCudaLabel)
      : device(dev), label(error_label) {
    check(cudaSetDevice(device), "set device", label);
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "create stream", label);
    for (auto& e : ev) check(cudaEventCreate(&e), "create event", label);
  }
  BatchStream(const BatchStream&) = delete;
  BatchStream& operator=(const BatchStream&) = delete;
  ~BatchStream() {
    for (auto& e : ev)
      if (e) cudaEventDestroy(e);
    if (stream) cudaStreamDestroy(stream);
  }

  /// Makes the workspace's device current (at the start of every batch).
  void use_device() const { check(cudaSetDevice(device), "set device", label); }
  /// Records event `i` (0 … 3) on the stream.
  void record(int i) const { check(cudaEventRecord(ev[i], stream), "record event", label); }
  /// The one host synchronisation of a batch; `what` names the batch in the error.
  void sync(const char* what) const { check(cudaStreamSynchronize(stream), what, label); }

  /// Copies the milliseconds between the events into t.h2d_ms (0 → 1), t.kernel_ms (1 → 2) and
  /// t.d2h_ms (2 → 3); call after sync().
  template <class Timings>
  void read_timings(Timings& t) const {
    float ms = 0.0f;
    cudaEventElapsedTime(&ms, ev[0], ev[1]);
    t.h2d_ms = ms;
    cudaEventElapsedTime(&ms, ev[1], ev[2]);
    t.kernel_ms = ms;
    cudaEventElapsedTime(&ms, ev[2], ev[3]);
    t.d2h_ms = ms;
  }
};

}  // namespace kvwb::codec::cuda
