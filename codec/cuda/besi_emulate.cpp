// Host emulation of the Besicovitch kernels: every work item of the four passes of a batch, in
// order, on one thread, through the same item bodies the device runs (besi_kernels.cuh). Called by
// emulate_peer_batch, so the CPU-only self-test checks the layouts, indexing, flags and container
// assembly of the device path against the golden bytes without a device.
#include <vector>

#include "codec/cuda/besi_kernels.cuh"

namespace kvwb::codec::cuda::peer {

void emulate_besi_batch(const PeerJob& job, const Shape& sh, const float* rows, uint8_t* payload,
                        float* decoded, uint32_t* flags) {
  const BesiParams p = make_besi_params(job, sh);
  const size_t items = sh.units * sh.unit_rows * p.groups;
  std::vector<float> means(p.mean ? sh.units * p.n_blocks * sh.D : 0);
  std::vector<uint16_t> ids(items), mags(p.mb ? items : 0);
  std::vector<float> alphas(items);
  const size_t blocks = sh.units * p.n_blocks * (p.mean ? sh.D : 1);
  for (size_t i = 0; i < blocks; ++i) besi_block_at(i, sh, p, rows, payload, means.data(), flags);
  for (size_t i = 0; i < items; ++i)
    besi_assign_at(i, sh, p, p.g, job.besi.codebook, rows, means.data(), ids.data(), alphas.data(),
                   flags);
  for (size_t i = 0; i < sh.units * sh.unit_rows; ++i)
    besi_pack_at(i, sh, p, ids.data(), alphas.data(), mags.data(), payload, flags);
  for (size_t i = 0; i < items; ++i)
    besi_decode_at(i, sh, p, p.g, job.besi.codebook, payload, decoded);
}

}  // namespace kvwb::codec::cuda::peer
