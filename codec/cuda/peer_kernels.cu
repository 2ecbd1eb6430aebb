// CUDA kernels of the deterministic codecs (codec-peers.md): turbo2/3/4, q8_0 … iq4_nl, KIVI,
// fp8_e4m3 and bf16, encode and decode. Each thread runs one group (turbo: 128 values; ggml: one
// rotation chunk of 32 … 512 values; KIVI: one group; fp8/bf16: one value) through the same
// codec/kernels/ function the CPU codec calls, so payload bytes and decoded values are the CPU's.
// Layout contracts are those of the CPU codecs (codec/codecs/*.cpp) and peer_device.h.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "base/errors.h"
#include "codec/cuda/peer_device.h"
#include "codec/kernels/bitpack.h"
#include "codec/kernels/fp8.h"
#include "codec/kernels/ggml.h"
#include "codec/kernels/half.h"
#include "codec/kernels/kivi.h"
#include "codec/kernels/turbo.h"

namespace kvwb::codec::cuda {

namespace {

namespace k = kvwb::codec::kernels;

/// Largest ggml work chunk (the Hadamard chunk, or one 32-value block without rotation).
constexpr size_t kMaxGgmlChunk = 512;

void check(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return;
  cudaGetLastError();
  throw CudaError(std::string("CUDA ") + what + ": " + cudaGetErrorString(err));
}

/// Shape of a batch as the kernels need it (passed by value).
struct Shape {
  size_t S, H, T, D;
  bool pooled;
  size_t units, unit_rows, unit_payload;
};

/// Row index in [S, H, T] of unit u's row r (see PeerJob).
__device__ inline size_t src_row(const Shape& sh, size_t u, size_t r) {
  if (!sh.pooled) return u * sh.T + r;
  const size_t h = r % sh.H, t = r / sh.H;
  return (u * sh.H + h) * sh.T + t;
}

__device__ inline bool fp16_ok(float v) { return fabsf(v) <= k::kFp16Max; }

// ---- turbo2/3/4 --------------------------------------------------------------------------------

struct TurboParams {
  k::TurboSigns s1, s2;
  k::TurboTables t;
  size_t groups;  // ceil(D / 128)
};

/// Threads per block of turbo_encode; each thread's two 128-float work rows live in shared memory
/// (padded to 129 floats so the 32 threads of a warp hit 32 different banks), which keeps the
/// kernel free of register spills.
constexpr unsigned kTurboEncodeBlock = 32;
constexpr size_t kTurboPad = k::kTurboGroup + 1;

__global__ void __launch_bounds__(kTurboEncodeBlock)
    turbo_encode(Shape sh, TurboParams p, const float* __restrict__ rows,
                 uint8_t* __restrict__ payload, uint32_t* flags) {
  __shared__ float work[2 * kTurboEncodeBlock * kTurboPad];
  const size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i >= sh.units * sh.unit_rows * p.groups) return;
  const size_t g = i % p.groups, r = (i / p.groups) % sh.unit_rows, u = i / (p.groups * sh.unit_rows);
  const float* src = rows + src_row(sh, u, r) * sh.D + g * k::kTurboGroup;
  const size_t cnt = sh.D - g * k::kTurboGroup < k::kTurboGroup ? sh.D - g * k::kTurboGroup
                                                                 : k::kTurboGroup;
  float* x = work + threadIdx.x * kTurboPad;
  float* y = work + (kTurboEncodeBlock + threadIdx.x) * kTurboPad;
  bool finite = true;
  for (size_t j = 0; j < k::kTurboGroup; ++j) {
    x[j] = j < cnt ? src[j] : 0.0f;
    finite = finite && isfinite(x[j]);
  }
  if (!finite) atomicOr(&flags[u], kFlagNonFinite);
  uint8_t* block = payload + u * sh.unit_payload + (r * p.groups + g) * p.t.block_bytes;
  const float norm = k::turbo_encode_group(p.t, p.s1.value, p.s2.value, x, block, y);
  if (!fp16_ok(norm)) atomicOr(&flags[u], kFlagFp16Range);
  k::store_u16(block, k::f32_to_f16_bits(norm));
}

__global__ void turbo_decode(Shape sh, TurboParams p, const uint8_t* __restrict__ payload,
                             float* __restrict__ out) {
  const size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i >= sh.units * sh.unit_rows * p.groups) return;
  const size_t g = i % p.groups, r = (i / p.groups) % sh.unit_rows, u = i / (p.groups * sh.unit_rows);
  const uint8_t* block = payload + u * sh.unit_payload + (r * p.groups + g) * p.t.block_bytes;
  float x[k::kTurboGroup];
  k::turbo_decode_group(p.t, p.s1.value, p.s2.value, block, k::f16_bits_to_f32(k::load_u16(block)),
                        x);
  float* dst = out + src_row(sh, u, r) * sh.D + g * k::kTurboGroup;
  const size_t cnt = sh.D - g * k::kTurboGroup < k::kTurboGroup ? sh.D - g * k::kTurboGroup
                                                                 : k::kTurboGroup;
  for (size_t j = 0; j < cnt; ++j) dst[j] = x[j];
}

// ---- ggml block quantisers ---------------------------------------------------------------------

struct GgmlParams {
  k::GgmlType type;
  size_t block_bytes;
  size_t chunk;   // values per thread: n_rot, or 32 without rotation
  size_t n_rot;   // 0: no rotation
  size_t chunks;  // D / chunk
};

__global__ void ggml_encode(Shape sh, GgmlParams p, const float* __restrict__ rows,
                            uint8_t* __restrict__ payload, uint32_t* flags,
                            unsigned long long* clipped) {
  const size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i >= sh.units * sh.unit_rows * p.chunks) return;
  const size_t c = i % p.chunks, r = (i / p.chunks) % sh.unit_rows, u = i / (p.chunks * sh.unit_rows);
  const float* src = rows + src_row(sh, u, r) * sh.D + c * p.chunk;
  float x[kMaxGgmlChunk];
  bool finite = true;
  for (size_t j = 0; j < p.chunk; ++j) {
    x[j] = src[j];
    finite = finite && isfinite(x[j]);
  }
  if (!finite) atomicOr(&flags[u], kFlagNonFinite);
  if (p.n_rot != 0) k::hadamard_chunks_pow2(x, p.chunk, p.n_rot);
  const size_t blocks_per_row = sh.D / k::kGgmlBlock;
  const size_t blocks = p.chunk / k::kGgmlBlock;
  uint8_t* out = payload + u * sh.unit_payload +
                 (r * blocks_per_row + c * blocks) * p.block_bytes;
  unsigned long long clip = 0;
  bool range_ok = true;
  for (size_t b = 0; b < blocks; ++b, out += p.block_bytes) {
    const k::GgmlFields f = k::ggml_quantize_codes(p.type, x + b * k::kGgmlBlock, out);
    clip += f.clipped;
    range_ok = range_ok && fp16_ok(f.d);
    k::store_u16(out, k::f32_to_f16_bits(f.d));
    if (f.has_m) {
      range_ok = range_ok && fp16_ok(f.m);
      k::store_u16(out + 2, k::f32_to_f16_bits(f.m));
    }
  }
  if (!range_ok) atomicOr(&flags[u], kFlagFp16Range);
  if (clip) atomicAdd(&clipped[u], clip);
}

__global__ void ggml_decode(Shape sh, GgmlParams p, const uint8_t* __restrict__ payload,
                            float* __restrict__ out) {
  const size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i >= sh.units * sh.unit_rows * p.chunks) return;
  const size_t c = i % p.chunks, r = (i / p.chunks) % sh.unit_rows, u = i / (p.chunks * sh.unit_rows);
  const size_t blocks_per_row = sh.D / k::kGgmlBlock;
  const size_t blocks = p.chunk / k::kGgmlBlock;
  const uint8_t* in = payload + u * sh.unit_payload +
                      (r * blocks_per_row + c * blocks) * p.block_bytes;
  float x[kMaxGgmlChunk];
  const bool has_m = k::ggml_has_min(p.type);
  for (size_t b = 0; b < blocks; ++b, in += p.block_bytes) {
    const float d = k::f16_bits_to_f32(k::load_u16(in));
    const float m = has_m ? k::f16_bits_to_f32(k::load_u16(in + 2)) : 0.0f;
    k::ggml_dequantize_codes(p.type, in, d, m, x + b * k::kGgmlBlock);
  }
  if (p.n_rot != 0) k::hadamard_chunks_pow2(x, p.chunk, p.n_rot);
  float* dst = out + src_row(sh, u, r) * sh.D + c * p.chunk;
  for (size_t j = 0; j < p.chunk; ++j) dst[j] = x[j];
}

// ---- KIVI (per_head units only) -----------------------------------------------------------------

struct KiviParams {
  bool k_stream;
  unsigned bits;
  size_t group;        // values per group (G for K, G_V for V)
  size_t groups;       // groups per unit
  size_t quant_rows;   // quantised prefix rows
  size_t group_bytes;  // packed codes + 4
  size_t quant_bytes;  // groups · group_bytes
};

// The first value and the stride of group gi of a unit (layout of codec/codecs/kivi.cpp).
__device__ inline size_t kivi_group_start(const Shape& sh, const KiviParams& p, size_t gi,
                                          size_t& stride) {
  if (p.k_stream) {
    const size_t n_tok_groups = p.quant_rows / p.group;
    const size_t j = gi / n_tok_groups, a = gi % n_tok_groups;
    stride = sh.D;
    return a * p.group * sh.D + j;
  }
  const size_t per_row = sh.D / p.group;
  const size_t t = gi / per_row, c = gi % per_row;
  stride = 1;
  return t * sh.D + c * p.group;
}

__global__ void kivi_encode_groups(Shape sh, KiviParams p, const float* __restrict__ rows,
                                   uint8_t* __restrict__ payload, uint32_t* flags,
                                   unsigned long long* clipped) {
  const size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i >= sh.units * p.groups) return;
  const size_t gi = i % p.groups, u = i / p.groups;
  size_t stride = 1;
  const float* x = rows + u * sh.T * sh.D + kivi_group_start(sh, p, gi, stride);
  bool finite = true;
  for (size_t j = 0; j < p.group; ++j) finite = finite && isfinite(x[j * stride]);
  if (!finite) atomicOr(&flags[u], kFlagNonFinite);
  float lo = 0.0f, hi = 0.0f;
  k::kivi_group_range(x, p.group, stride, lo, hi);
  const float delta = k::kivi_delta(lo, hi, p.bits);
  if (!fp16_ok(delta) || !fp16_ok(lo)) atomicOr(&flags[u], kFlagFp16Range);
  const uint16_t dq = k::f32_to_f16_bits(delta), zq = k::f32_to_f16_bits(lo);
  uint16_t codes[k::kKiviMaxGroup];
  const uint32_t clip = k::kivi_quantize_codes(x, p.group, stride, p.bits, k::f16_bits_to_f32(dq),
                                               k::f16_bits_to_f32(zq), codes);
  uint8_t* out = payload + u * sh.unit_payload + gi * p.group_bytes;
  k::pack_bits(codes, p.group, p.bits, out);
  const size_t cb = k::packed_bytes(p.group, p.bits);
  k::store_u16(out + cb, dq);
  k::store_u16(out + cb + 2, zq);
  if (clip) atomicAdd(&clipped[u], static_cast<unsigned long long>(clip));
}

__global__ void kivi_encode_tail(Shape sh, KiviParams p, const float* __restrict__ rows,
                                 uint8_t* __restrict__ payload, uint32_t* flags) {
  const size_t tail = (sh.T - p.quant_rows) * sh.D;
  const size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i >= sh.units * tail) return;
  const size_t e = i % tail, u = i / tail;
  const float v = rows[u * sh.T * sh.D + p.quant_rows * sh.D + e];
  if (!isfinite(v)) atomicOr(&flags[u], kFlagNonFinite);
  if (!fp16_ok(v)) atomicOr(&flags[u], kFlagFp16Range);
  k::store_u16(payload + u * sh.unit_payload + p.quant_bytes + 2 * e, k::f32_to_f16_bits(v));
}

__global__ void kivi_decode_groups(Shape sh, KiviParams p, const uint8_t* __restrict__ payload,
                                   float* __restrict__ out) {
  const size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i >= sh.units * p.groups) return;
  const size_t gi = i % p.groups, u = i / p.groups;
  size_t stride = 1;
  float* x = out + u * sh.T * sh.D + kivi_group_start(sh, p, gi, stride);
  const uint8_t* in = payload + u * sh.unit_payload + gi * p.group_bytes;
  const size_t cb = k::packed_bytes(p.group, p.bits);
  uint16_t codes[k::kKiviMaxGroup];
  k::unpack_bits(in, p.group, p.bits, codes);
  k::kivi_dequantize_codes(codes, p.group, stride, k::f16_bits_to_f32(k::load_u16(in + cb)),
                           k::f16_bits_to_f32(k::load_u16(in + cb + 2)), x);
}

__global__ void kivi_decode_tail(Shape sh, KiviParams p, const uint8_t* __restrict__ payload,
                                 float* __restrict__ out) {
  const size_t tail = (sh.T - p.quant_rows) * sh.D;
  const size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i >= sh.units * tail) return;
  const size_t e = i % tail, u = i / tail;
  out[u * sh.T * sh.D + p.quant_rows * sh.D + e] =
      k::f16_bits_to_f32(k::load_u16(payload + u * sh.unit_payload + p.quant_bytes + 2 * e));
}

// ---- fp8_e4m3 and bf16: one value per thread -----------------------------------------------------

/// max |x| over the batch as f32 bits (non-negative f32 order like their bits); NaN is skipped as
/// std::max(m, NaN) keeps m on the CPU.
__global__ void absmax_bits(const float* __restrict__ x, size_t n, unsigned int* out) {
  unsigned int m = 0;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float a = fabsf(x[i]);
    if (!isnan(a)) m = max(m, __float_as_uint(a));
  }
  for (int off = 16; off > 0; off >>= 1) m = max(m, __shfl_down_sync(0xffffffffu, m, off));
  if ((threadIdx.x & 31) == 0) atomicMax(out, m);
}

/// The batch scale: a scale fixed by the host (> 0), else absmax from the device, else 1.
__device__ inline float fp8_scale(float fixed, bool absmax, const unsigned int* absmax_bits_ptr) {
  if (fixed > 0.0f) return fixed;
  return absmax ? k::fp8_absmax_scale(__uint_as_float(*absmax_bits_ptr)) : 1.0f;
}

__global__ void fp8_encode(Shape sh, float fixed, bool absmax, const unsigned int* amax,
                           const float* __restrict__ rows, uint8_t* __restrict__ payload,
                           uint32_t* flags, unsigned long long* clipped) {
  const size_t n = sh.unit_rows * sh.D;
  const size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i >= sh.units * n) return;
  const size_t e = i % n, u = i / n, r = e / sh.D, j = e % sh.D;
  const float v = rows[src_row(sh, u, r) * sh.D + j];
  if (!isfinite(v)) atomicOr(&flags[u], kFlagNonFinite);
  bool sat = false;
  payload[u * sh.unit_payload + e] = k::f32_to_e4m3(v / fp8_scale(fixed, absmax, amax), &sat);
  if (sat) atomicAdd(&clipped[u], 1ull);
}

__global__ void fp8_decode(Shape sh, float fixed, bool absmax, const unsigned int* amax,
                           const uint8_t* __restrict__ payload, float* __restrict__ out) {
  const size_t n = sh.unit_rows * sh.D;
  const size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i >= sh.units * n) return;
  const size_t e = i % n, u = i / n, r = e / sh.D, j = e % sh.D;
  out[src_row(sh, u, r) * sh.D + j] =
      k::e4m3_to_f32(payload[u * sh.unit_payload + e]) * fp8_scale(fixed, absmax, amax);
}

__global__ void bf16_encode(Shape sh, const float* __restrict__ rows, uint8_t* __restrict__ payload,
                            uint32_t* flags) {
  const size_t n = sh.unit_rows * sh.D;
  const size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i >= sh.units * n) return;
  const size_t e = i % n, u = i / n, r = e / sh.D, j = e % sh.D;
  const float v = rows[src_row(sh, u, r) * sh.D + j];
  if (!isfinite(v)) atomicOr(&flags[u], kFlagNonFinite);
  const uint16_t b = k::f32_to_bf16_bits(v);
  if ((b & 0x7FFFu) >= 0x7F80u) atomicOr(&flags[u], kFlagBf16Range);
  k::store_u16(payload + u * sh.unit_payload + 2 * e, b);
}

__global__ void bf16_decode(Shape sh, const uint8_t* __restrict__ payload, float* __restrict__ out) {
  const size_t n = sh.unit_rows * sh.D;
  const size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x;
  if (i >= sh.units * n) return;
  const size_t e = i % n, u = i / n, r = e / sh.D, j = e % sh.D;
  out[src_row(sh, u, r) * sh.D + j] =
      k::bf16_bits_to_f32(k::load_u16(payload + u * sh.unit_payload + 2 * e));
}

unsigned grid_for(size_t n, unsigned block) {
  return static_cast<unsigned>((n + block - 1) / block);
}

}  // namespace

// ---- workspace --------------------------------------------------------------------------------

/// A device buffer that only grows (one batch at a time lives in it).
struct DeviceBuffer {
  void* ptr = nullptr;
  size_t size = 0;
  void reserve(size_t bytes, const char* what) {
    if (bytes <= size) return;
    if (ptr) cudaFree(ptr);
    ptr = nullptr;
    size = 0;
    check(cudaMalloc(&ptr, bytes), what);
    size = bytes;
  }
  ~DeviceBuffer() {
    if (ptr) cudaFree(ptr);
  }
};

/// A pinned host buffer that only grows.
struct PinnedBuffer {
  void* ptr = nullptr;
  size_t size = 0;
  void reserve(size_t bytes, const char* what) {
    if (bytes <= size) return;
    if (ptr) cudaFreeHost(ptr);
    ptr = nullptr;
    size = 0;
    check(cudaMallocHost(&ptr, bytes), what);
    size = bytes;
  }
  ~PinnedBuffer() {
    if (ptr) cudaFreeHost(ptr);
  }
};

struct PeerWorkspace::Impl {
  int device = 0;
  cudaStream_t stream = nullptr;
  cudaEvent_t ev[4] = {};
  DeviceBuffer rows, payload, decoded, flags, clipped, amax;
  PinnedBuffer h_rows, h_payload, h_decoded;
};

PeerWorkspace::PeerWorkspace(int device) : impl_(std::make_unique<Impl>()) {
  impl_->device = device;
  check(cudaSetDevice(device), "set device");
  check(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking), "create stream");
  for (auto& e : impl_->ev) check(cudaEventCreate(&e), "create event");
}

PeerWorkspace::~PeerWorkspace() {
  for (auto& e : impl_->ev)
    if (e) cudaEventDestroy(e);
  if (impl_->stream) cudaStreamDestroy(impl_->stream);
}

size_t PeerWorkspace::device_bytes() const {
  const Impl& m = *impl_;
  return m.rows.size + m.payload.size + m.decoded.size + m.flags.size + m.clipped.size +
         m.amax.size;
}

void PeerWorkspace::run(const PeerJob& job, const float* rows, PeerOutputs& out) {
  Impl& m = *impl_;
  check(cudaSetDevice(m.device), "set device");
  Shape sh{};
  sh.S = job.sequences;
  sh.H = job.heads;
  sh.T = job.tokens;
  sh.D = job.dim;
  sh.pooled = job.pooled;
  sh.units = job.pooled ? sh.S : sh.S * sh.H;
  sh.unit_rows = job.pooled ? sh.T * sh.H : sh.T;
  sh.unit_payload = job.unit_payload;
  const size_t values = sh.S * sh.H * sh.T * sh.D;
  const size_t payload_bytes = sh.units * sh.unit_payload;

  m.rows.reserve(values * sizeof(float), "allocate rows");
  m.decoded.reserve(values * sizeof(float), "allocate decoded rows");
  m.payload.reserve(payload_bytes ? payload_bytes : 1, "allocate payload");
  m.flags.reserve(sh.units * sizeof(uint32_t), "allocate flags");
  m.clipped.reserve(sh.units * sizeof(unsigned long long), "allocate clip counts");
  m.amax.reserve(sizeof(unsigned int), "allocate absmax");
  m.h_rows.reserve(values * sizeof(float), "allocate pinned rows");
  m.h_decoded.reserve(values * sizeof(float), "allocate pinned decoded rows");
  m.h_payload.reserve(payload_bytes ? payload_bytes : 1, "allocate pinned payload");

  auto* d_rows = static_cast<float*>(m.rows.ptr);
  auto* d_dec = static_cast<float*>(m.decoded.ptr);
  auto* d_pay = static_cast<uint8_t*>(m.payload.ptr);
  auto* d_flags = static_cast<uint32_t*>(m.flags.ptr);
  auto* d_clip = static_cast<unsigned long long*>(m.clipped.ptr);
  auto* d_amax = static_cast<unsigned int*>(m.amax.ptr);
  cudaStream_t st = m.stream;

  std::memcpy(m.h_rows.ptr, rows, values * sizeof(float));
  check(cudaEventRecord(m.ev[0], st), "record event");
  check(cudaMemcpyAsync(d_rows, m.h_rows.ptr, values * sizeof(float), cudaMemcpyHostToDevice, st),
        "copy rows to the device");
  check(cudaEventRecord(m.ev[1], st), "record event");
  check(cudaMemsetAsync(d_flags, 0, sh.units * sizeof(uint32_t), st), "clear flags");
  check(cudaMemsetAsync(d_clip, 0, sh.units * sizeof(unsigned long long), st), "clear counts");
  check(cudaMemsetAsync(d_amax, 0, sizeof(unsigned int), st), "clear absmax");

  constexpr unsigned kBlock = 128;
  switch (job.kind) {
    case PeerKind::kTurbo: {
      TurboParams p{};
      p.s1 = k::turbo_signs_table(1);
      p.s2 = k::turbo_signs_table(2);
      p.t = k::turbo_tables(job.bits);
      p.groups = (sh.D + k::kTurboGroup - 1) / k::kTurboGroup;
      const size_t n = sh.units * sh.unit_rows * p.groups;
      turbo_encode<<<grid_for(n, kTurboEncodeBlock), kTurboEncodeBlock, 0, st>>>(sh, p, d_rows,
                                                                                 d_pay, d_flags);
      turbo_decode<<<grid_for(n, 64), 64, 0, st>>>(sh, p, d_pay, d_dec);
      break;
    }
    case PeerKind::kGgml: {
      GgmlParams p{};
      p.type = static_cast<k::GgmlType>(job.ggml_type);
      p.block_bytes = k::ggml_block_bytes(p.type);
      p.n_rot = job.n_rot;
      p.chunk = job.n_rot ? job.n_rot : k::kGgmlBlock;
      if (p.chunk > kMaxGgmlChunk || sh.D % p.chunk != 0)
        throw Unsupported("cuda: ggml Hadamard chunk " + std::to_string(p.chunk) +
                          " exceeds the device limit of " + std::to_string(kMaxGgmlChunk) +
                          " values");
      p.chunks = sh.D / p.chunk;
      const size_t n = sh.units * sh.unit_rows * p.chunks;
      ggml_encode<<<grid_for(n, kBlock), kBlock, 0, st>>>(sh, p, d_rows, d_pay, d_flags, d_clip);
      ggml_decode<<<grid_for(n, kBlock), kBlock, 0, st>>>(sh, p, d_pay, d_dec);
      break;
    }
    case PeerKind::kKivi: {
      KiviParams p{};
      p.k_stream = job.kivi_k;
      p.bits = job.bits;
      p.group = job.kivi_group;
      p.quant_rows = job.kivi_quant_rows;
      p.group_bytes = job.kivi_group_bytes;
      p.quant_bytes = job.kivi_quant_bytes;
      p.groups = p.group_bytes ? p.quant_bytes / p.group_bytes : 0;
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
  }
  check(cudaGetLastError(), "launch kernels");
  check(cudaEventRecord(m.ev[2], st), "record event");

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
  check(cudaEventRecord(m.ev[3], st), "record event");
  check(cudaStreamSynchronize(st), "run the batch");  // the one host synchronisation

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
  float ms = 0.0f;
  cudaEventElapsedTime(&ms, m.ev[0], m.ev[1]);
  out.timings.h2d_ms = ms;
  cudaEventElapsedTime(&ms, m.ev[1], m.ev[2]);
  out.timings.kernel_ms = ms;
  cudaEventElapsedTime(&ms, m.ev[2], m.ev[3]);
  out.timings.d2h_ms = ms;
}

}  // namespace kvwb::codec::cuda
