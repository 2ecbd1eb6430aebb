// CUDA kernels of the Besicovitch codec (codec-besicovitch.md) and their launch on the peer
// workspace's stream: each thread runs one work item of besi_kernels.cuh (which calls the CPU
// codec's codec/kernels/besicovitch.h functions; --fmad=false), so payload bytes and decoded values
// are the CPU's. besi_assign is the hot kernel: one thread per group, the codebook ([M, g] f32,
// at most 1024 × 8) staged in shared memory where every thread of a warp reads the same line.
#include <cuda_runtime.h>

#include "codec/cuda/besi_kernels.cuh"
#include "codec/cuda/cuda_util.cuh"

namespace kvwb::codec::cuda {

namespace {

using namespace peer;

constexpr unsigned kBesiBlock = 128;

__global__ void besi_block(Shape sh, BesiParams p, const float* __restrict__ rows,
                           uint8_t* __restrict__ payload, float* __restrict__ means,
                           uint32_t* flags) {
  besi_block_at(thread_index(), sh, p, rows, payload, means, flags);
}

__global__ void __launch_bounds__(kBesiBlock)
    besi_assign(Shape sh, BesiParams p, const float* __restrict__ codebook,
                const float* __restrict__ rows, const float* __restrict__ means,
                uint16_t* __restrict__ ids, float* __restrict__ alphas, uint32_t* flags) {
  extern __shared__ float lines[];  // [M, g]
  for (size_t j = threadIdx.x; j < p.lines * p.g; j += blockDim.x) lines[j] = codebook[j];
  __syncthreads();
  const size_t i = thread_index();
  if (p.g == 2)
    besi_assign_at(i, sh, p, 2, lines, rows, means, ids, alphas, flags);
  else
    besi_assign_at(i, sh, p, p.g, lines, rows, means, ids, alphas, flags);
}

__global__ void besi_pack(Shape sh, BesiParams p, const uint16_t* __restrict__ ids,
                          const float* __restrict__ alphas, uint16_t* __restrict__ mags,
                          uint8_t* __restrict__ payload, uint32_t* flags) {
  besi_pack_at(thread_index(), sh, p, ids, alphas, mags, payload, flags);
}

__global__ void besi_decode(Shape sh, BesiParams p, const float* __restrict__ codebook,
                            const uint8_t* __restrict__ payload, float* __restrict__ out) {
  const size_t i = thread_index();
  if (p.g == 2)
    besi_decode_at(i, sh, p, 2, codebook, payload, out);
  else
    besi_decode_at(i, sh, p, p.g, codebook, payload, out);
}

}  // namespace

/// Besicovitch scratch of a PeerWorkspace: the codebook on the device (uploaded when the job's
/// codebook changes), the fp16-rounded block means, and per group the id, α and Lloyd-Max index.
struct BesiDeviceState {
  DeviceBuffer codebook, means, ids, alphas, mags;  // each at least one byte once reserved
  const float* uploaded = nullptr;  // host codebook now on the device
  size_t uploaded_floats = 0;
};

BesiDeviceState* besi_state_create() { return new BesiDeviceState(); }
void besi_state_destroy(BesiDeviceState* s) { delete s; }
size_t besi_state_bytes(const BesiDeviceState* s) {
  return s ? s->codebook.size + s->means.size + s->ids.size + s->alphas.size + s->mags.size : 0;
}

void launch_besi(BesiDeviceState& s, const PeerJob& job, const Shape& sh, const float* d_rows,
                 uint8_t* d_pay, float* d_dec, uint32_t* d_flags, cudaStream_t st) {
  const BesiParams p = make_besi_params(job, sh);
  const size_t items = sh.units * sh.unit_rows * p.groups;
  const size_t cb_floats = p.lines * p.g;
  s.codebook.reserve(cb_floats * sizeof(float), "allocate besicovitch codebook");
  if (s.uploaded != job.besi.codebook || s.uploaded_floats != cb_floats) {
    // Once per codebook: the CPU codec's cached codebook lives (unchanged) for the process.
    check(cudaMemcpyAsync(s.codebook.ptr, job.besi.codebook, cb_floats * sizeof(float),
                          cudaMemcpyHostToDevice, st),
          "copy besicovitch codebook to the device");
    s.uploaded = job.besi.codebook;
    s.uploaded_floats = cb_floats;
  }
  s.means.reserve((p.mean ? sh.units * p.n_blocks * sh.D : 1) * sizeof(float),
                  "allocate besicovitch means");
  s.ids.reserve(items * sizeof(uint16_t), "allocate besicovitch ids");
  s.alphas.reserve(items * sizeof(float), "allocate besicovitch magnitudes");
  s.mags.reserve((p.mb ? items : 1) * sizeof(uint16_t), "allocate besicovitch indices");
  const auto* cb = static_cast<const float*>(s.codebook.ptr);
  auto* means = static_cast<float*>(s.means.ptr);
  auto* ids = static_cast<uint16_t*>(s.ids.ptr);
  auto* alphas = static_cast<float*>(s.alphas.ptr);
  auto* mags = static_cast<uint16_t*>(s.mags.ptr);

  const size_t blocks = sh.units * p.n_blocks * (p.mean ? sh.D : 1);
  const size_t rows = sh.units * sh.unit_rows;
  if (blocks)
    besi_block<<<grid_for(blocks, kBesiBlock), kBesiBlock, 0, st>>>(sh, p, d_rows, d_pay, means,
                                                                    d_flags);
  if (items) {
    besi_assign<<<grid_for(items, kBesiBlock), kBesiBlock, cb_floats * sizeof(float), st>>>(
        sh, p, cb, d_rows, means, ids, alphas, d_flags);
    besi_pack<<<grid_for(rows, kBesiBlock), kBesiBlock, 0, st>>>(sh, p, ids, alphas, mags, d_pay,
                                                                 d_flags);
    besi_decode<<<grid_for(items, kBesiBlock), kBesiBlock, 0, st>>>(sh, p, cb, d_pay, d_dec);
  }
}

}  // namespace kvwb::codec::cuda
