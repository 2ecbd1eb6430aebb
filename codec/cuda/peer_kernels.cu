// CUDA kernels of the deterministic codecs (codec-peers.md): turbo2/3/4, q8_0 … iq4_nl, KIVI,
// fp8_e4m3 and bf16, encode and decode, and the workspace that runs a batch on one stream. Each
// thread runs one work item (turbo: a 128-value group; ggml: a rotation chunk of 32 … 512 values;
// KIVI: a group; fp8/bf16: a value) through the item bodies of peer_kernels.cuh, which call the
// same codec/kernels/ functions as the CPU codecs, so payload bytes and decoded values are the
// CPU's. peer_emulate.cpp runs the same bodies on the host.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "codec/cuda/besi_kernels.cuh"
#include "codec/cuda/cuda_util.cuh"
#include "codec/cuda/peer_device.h"
#include "codec/cuda/peer_kernels.cuh"

namespace kvwb::codec::cuda {

namespace {

using namespace peer;

/// Threads per block of turbo_encode; each thread's two 128-float work rows live in shared memory
/// (padded to 129 floats so the 32 threads of a warp hit 32 different banks).
constexpr unsigned kTurboEncodeBlock = 32;
constexpr size_t kTurboPad = k::kTurboGroup + 1;

__global__ void __launch_bounds__(kTurboEncodeBlock)
    turbo_encode(Shape sh, TurboParams p, const float* __restrict__ rows,
                 uint8_t* __restrict__ payload, uint32_t* flags) {
  __shared__ float work[2 * kTurboEncodeBlock * kTurboPad];
  turbo_encode_at(thread_index(), sh, p, rows, payload, flags, work + threadIdx.x * kTurboPad,
                  work + (kTurboEncodeBlock + threadIdx.x) * kTurboPad);
}
__global__ void turbo_decode(Shape sh, TurboParams p, const uint8_t* __restrict__ payload,
                             float* __restrict__ out) {
  turbo_decode_at(thread_index(), sh, p, payload, out);
}
__global__ void ggml_encode(Shape sh, GgmlParams p, const float* __restrict__ rows,
                            uint8_t* __restrict__ payload, uint32_t* flags,
                            unsigned long long* clipped) {
  ggml_encode_at(thread_index(), sh, p, rows, payload, flags, clipped);
}
__global__ void ggml_decode(Shape sh, GgmlParams p, const uint8_t* __restrict__ payload,
                            float* __restrict__ out) {
  ggml_decode_at(thread_index(), sh, p, payload, out);
}
__global__ void kivi_encode_groups(Shape sh, KiviParams p, const float* __restrict__ rows,
                                   uint8_t* __restrict__ payload, uint32_t* flags,
                                   unsigned long long* clipped) {
  kivi_encode_groups_at(thread_index(), sh, p, rows, payload, flags, clipped);
}
__global__ void kivi_encode_tail(Shape sh, KiviParams p, const float* __restrict__ rows,
                                 uint8_t* __restrict__ payload, uint32_t* flags) {
  kivi_encode_tail_at(thread_index(), sh, p, rows, payload, flags);
}
__global__ void kivi_decode_groups(Shape sh, KiviParams p, const uint8_t* __restrict__ payload,
                                   float* __restrict__ out) {
  kivi_decode_groups_at(thread_index(), sh, p, payload, out);
}
__global__ void kivi_decode_tail(Shape sh, KiviParams p, const uint8_t* __restrict__ payload,
                                 float* __restrict__ out) {
  kivi_decode_tail_at(thread_index(), sh, p, payload, out);
}
__global__ void fp8_encode(Shape sh, float fixed, bool absmax, const unsigned int* amax,
                           const float* __restrict__ rows, uint8_t* __restrict__ payload,
                           uint32_t* flags, unsigned long long* clipped) {
  fp8_encode_at(thread_index(), sh, fixed, absmax, amax, rows, payload, flags, clipped);
}
__global__ void fp8_decode(Shape sh, float fixed, bool absmax, const unsigned int* amax,
                           const uint8_t* __restrict__ payload, float* __restrict__ out) {
  fp8_decode_at(thread_index(), sh, fixed, absmax, amax, payload, out);
}
__global__ void bf16_encode(Shape sh, const float* __restrict__ rows, uint8_t* __restrict__ payload,
                            uint32_t* flags) {
  bf16_encode_at(thread_index(), sh, rows, payload, flags);
}
__global__ void bf16_decode(Shape sh, const uint8_t* __restrict__ payload, float* __restrict__ out) {
  bf16_decode_at(thread_index(), sh, payload, out);
}

/// max |x| over the batch as f32 bits (non-negative f32 order like their bits); NaN is skipped as
/// std::max(m, NaN) keeps m on the CPU.
__global__ void absmax_bits(const float* __restrict__ x, size_t n, unsigned int* out) {
  unsigned int m = 0;
  for (size_t i = thread_index(); i < n; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float a = fabsf(x[i]);
    if (!isnan(a)) m = max(m, __float_as_uint(a));
  }
  for (int off = 16; off > 0; off >>= 1) m = max(m, __shfl_down_sync(0xffffffffu, m, off));
  if ((threadIdx.x & 31) == 0) atomicMax(out, m);
}

}  // namespace

// ---- workspace --------------------------------------------------------------------------------

struct PeerWorkspace::Impl {
  explicit Impl(int device) : batch(device) {}
  BatchStream batch;  // one batch at a time lives in the buffers below
  DeviceBuffer rows, payload, decoded, flags, clipped, amax;
  PinnedBuffer h_rows, h_payload, h_decoded;
  BesiDeviceState* besi = nullptr;  // Besicovitch scratch, made on the first Besicovitch batch
};

PeerWorkspace::PeerWorkspace(int device) : impl_(std::make_unique<Impl>(device)) {}

PeerWorkspace::~PeerWorkspace() { besi_state_destroy(impl_->besi); }

size_t PeerWorkspace::device_bytes() const {
  const Impl& m = *impl_;
  return m.rows.size + m.payload.size + m.decoded.size + m.flags.size + m.clipped.size +
         m.amax.size + besi_state_bytes(m.besi);
}

void PeerWorkspace::run(const PeerJob& job, const float* rows, PeerOutputs& out) {
  Impl& m = *impl_;
  m.batch.use_device();
  const Shape sh = make_shape(job);
  const size_t values = sh.S * sh.H * sh.T * sh.D;
  const size_t payload_bytes = sh.units * sh.unit_payload;

  m.rows.reserve(values * sizeof(float), "allocate rows");
  m.decoded.reserve(values * sizeof(float), "allocate decoded rows");
  m.payload.reserve(payload_bytes, "allocate payload");
  m.flags.reserve(sh.units * sizeof(uint32_t), "allocate flags");
  m.clipped.reserve(sh.units * sizeof(unsigned long long), "allocate clip counts");
  m.amax.reserve(sizeof(unsigned int), "allocate absmax");
  m.h_rows.reserve(values * sizeof(float), "allocate pinned rows");
  m.h_decoded.reserve(values * sizeof(float), "allocate pinned decoded rows");
  m.h_payload.reserve(payload_bytes, "allocate pinned payload");

  auto* d_rows = static_cast<float*>(m.rows.ptr);
  auto* d_dec = static_cast<float*>(m.decoded.ptr);
  auto* d_pay = static_cast<uint8_t*>(m.payload.ptr);
  auto* d_flags = static_cast<uint32_t*>(m.flags.ptr);
  auto* d_clip = static_cast<unsigned long long*>(m.clipped.ptr);
  auto* d_amax = static_cast<unsigned int*>(m.amax.ptr);
  cudaStream_t st = m.batch.stream;

  std::memcpy(m.h_rows.ptr, rows, values * sizeof(float));
  m.batch.record(0);
  check(cudaMemcpyAsync(d_rows, m.h_rows.ptr, values * sizeof(float), cudaMemcpyHostToDevice, st),
        "copy rows to the device");
  m.batch.record(1);
  check(cudaMemsetAsync(d_flags, 0, sh.units * sizeof(uint32_t), st), "clear flags");
  check(cudaMemsetAsync(d_clip, 0, sh.units * sizeof(unsigned long long), st), "clear counts");
  check(cudaMemsetAsync(d_amax, 0, sizeof(unsigned int), st), "clear absmax");

  constexpr unsigned kBlock = 128;
  switch (job.kind) {
    case PeerKind::kTurbo: {
      const TurboParams p = make_turbo_params(job, sh);
      const size_t n = sh.units * sh.unit_rows * p.groups;
      turbo_encode<<<grid_for(n, kTurboEncodeBlock), kTurboEncodeBlock, 0, st>>>(sh, p, d_rows,
                                                                                 d_pay, d_flags);
      turbo_decode<<<grid_for(n, 64), 64, 0, st>>>(sh, p, d_pay, d_dec);
      break;
    }
    case PeerKind::kGgml: {
      const GgmlParams p = make_ggml_params(job, sh);
      const size_t n = sh.units * sh.unit_rows * p.chunks;
      ggml_encode<<<grid_for(n, kBlock), kBlock, 0, st>>>(sh, p, d_rows, d_pay, d_flags, d_clip);
      ggml_decode<<<grid_for(n, kBlock), kBlock, 0, st>>>(sh, p, d_pay, d_dec);
      break;
    }
    case PeerKind::kKivi: {
      const KiviParams p = make_kivi_params(job);
      const size_t ng = sh.units * p.groups;
      const size_t nt = sh.units * (sh.T - p.quant_rows) * sh.D;
      if (ng) {
        kivi_encode_groups<<<grid_for(ng, kBlock), kBlock, 0, st>>>(sh, p, d_rows, d_pay, d_flags,
                                                                    d_clip);
        kivi_decode_groups<<<grid_for(ng, kBlock), kBlock, 0, st>>>(sh, p, d_pay, d_dec);
      }
      if (nt) {
        kivi_encode_tail<<<grid_for(nt, 256), 256, 0, st>>>(sh, p, d_rows, d_pay, d_flags);
        kivi_decode_tail<<<grid_for(nt, 256), 256, 0, st>>>(sh, p, d_pay, d_dec);
      }
      break;
    }
    case PeerKind::kFp8: {
      if (job.fp8_absmax && !(job.fp8_fixed_scale > 0.0f))
        absmax_bits<<<1024, 256, 0, st>>>(d_rows, values, d_amax);
      fp8_encode<<<grid_for(values, 256), 256, 0, st>>>(sh, job.fp8_fixed_scale, job.fp8_absmax, d_amax, d_rows, d_pay,
                                                         d_flags, d_clip);
      fp8_decode<<<grid_for(values, 256), 256, 0, st>>>(sh, job.fp8_fixed_scale, job.fp8_absmax, d_amax, d_pay, d_dec);
      break;
    }
    case PeerKind::kBf16: {
      bf16_encode<<<grid_for(values, 256), 256, 0, st>>>(sh, d_rows, d_pay, d_flags);
      bf16_decode<<<grid_for(values, 256), 256, 0, st>>>(sh, d_pay, d_dec);
      break;
    }
    case PeerKind::kBesi: {
      if (!m.besi) m.besi = besi_state_create();
      launch_besi(*m.besi, job, sh, d_rows, d_pay, d_dec, d_flags, st);
      break;
    }
  }
  check(cudaGetLastError(), "launch kernels");
  m.batch.record(2);

  out.flags.assign(sh.units, 0);
  out.clipped.assign(sh.units, 0);
  unsigned int amax_bits = 0;
  check(cudaMemcpyAsync(m.h_payload.ptr, d_pay, payload_bytes, cudaMemcpyDeviceToHost, st),
        "copy payload to the host");
  check(cudaMemcpyAsync(m.h_decoded.ptr, d_dec, values * sizeof(float), cudaMemcpyDeviceToHost, st),
        "copy decoded rows to the host");
  check(cudaMemcpyAsync(out.flags.data(), d_flags, sh.units * sizeof(uint32_t),
                        cudaMemcpyDeviceToHost, st),
        "copy flags to the host");
  check(cudaMemcpyAsync(out.clipped.data(), d_clip, sh.units * sizeof(unsigned long long),
                        cudaMemcpyDeviceToHost, st),
        "copy counts to the host");
  check(cudaMemcpyAsync(&amax_bits, d_amax, sizeof(unsigned int), cudaMemcpyDeviceToHost, st),
        "copy absmax to the host");
  m.batch.record(3);
  m.batch.sync("run the batch");  // the one host synchronisation

  out.payload.assign(static_cast<uint8_t*>(m.h_payload.ptr),
                     static_cast<uint8_t*>(m.h_payload.ptr) + payload_bytes);
  out.decoded.assign(static_cast<float*>(m.h_decoded.ptr),
                     static_cast<float*>(m.h_decoded.ptr) + values);
  float amax = 0.0f;
  std::memcpy(&amax, &amax_bits, sizeof(float));
  out.layer_scale = job.kind != PeerKind::kFp8       ? 1.0f
                    : job.fp8_fixed_scale > 0.0f ? job.fp8_fixed_scale
                    : job.fp8_absmax             ? k::fp8_absmax_scale(amax)
                                                 : 1.0f;
  m.batch.read_timings(out.timings);
}

}  // namespace kvwb::codec::cuda
