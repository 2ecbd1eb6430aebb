// Host emulation of the peer kernels: every work item of every kernel of a batch, in order, on
// one thread, through the same item bodies the device runs (peer_kernels.cuh). Same inputs and
// outputs as PeerWorkspace::run, no CUDA call, so the CPU-only self-test can check the executor's
// layouts, indexing, flags and container assembly against the golden bytes without a device.
#include <algorithm>
#include <cmath>
#include <vector>

#include "codec/cuda/besi_kernels.cuh"
#include "codec/cuda/peer_device.h"
#include "codec/cuda/peer_kernels.cuh"

namespace kvwb::codec::cuda {

void emulate_peer_batch(const PeerJob& job, const float* rows, PeerOutputs& out) {
  using namespace peer;
  const Shape sh = make_shape(job);
  const size_t values = sh.S * sh.H * sh.T * sh.D;
  out.payload.assign(sh.units * sh.unit_payload, 0);
  out.decoded.assign(values, 0.0f);
  out.flags.assign(sh.units, 0);
  std::vector<unsigned long long> clipped(sh.units, 0);
  uint8_t* pay = out.payload.data();
  float* dec = out.decoded.data();
  uint32_t* flags = out.flags.data();
  unsigned long long* clip = clipped.data();
  unsigned int amax = 0;
  switch (job.kind) {
    case PeerKind::kTurbo: {
      const TurboParams p = make_turbo_params(job, sh);
      const size_t n = sh.units * sh.unit_rows * p.groups;
      float x[k::kTurboGroup], y[k::kTurboGroup];
      for (size_t i = 0; i < n; ++i) turbo_encode_at(i, sh, p, rows, pay, flags, x, y);
      for (size_t i = 0; i < n; ++i) turbo_decode_at(i, sh, p, pay, dec);
      break;
    }
    case PeerKind::kGgml: {
      const GgmlParams p = make_ggml_params(job, sh);
      const size_t n = sh.units * sh.unit_rows * p.chunks;
      for (size_t i = 0; i < n; ++i) ggml_encode_at(i, sh, p, rows, pay, flags, clip);
      for (size_t i = 0; i < n; ++i) ggml_decode_at(i, sh, p, pay, dec);
      break;
    }
    case PeerKind::kKivi: {
      const KiviParams p = make_kivi_params(job);
      const size_t ng = sh.units * p.groups;
      const size_t nt = sh.units * (sh.T - p.quant_rows) * sh.D;
      for (size_t i = 0; i < ng; ++i) kivi_encode_groups_at(i, sh, p, rows, pay, flags, clip);
      for (size_t i = 0; i < nt; ++i) kivi_encode_tail_at(i, sh, p, rows, pay, flags);
      for (size_t i = 0; i < ng; ++i) kivi_decode_groups_at(i, sh, p, pay, dec);
      for (size_t i = 0; i < nt; ++i) kivi_decode_tail_at(i, sh, p, pay, dec);
      break;
    }
    case PeerKind::kFp8: {
      if (job.fp8_absmax && !(job.fp8_fixed_scale > 0.0f))
        for (size_t i = 0; i < values; ++i) {  // as absmax_bits: NaN skipped, max of the bits
          const float a = std::fabs(rows[i]);
          if (!std::isnan(a)) amax = std::max(amax, k::f32_bits(a));
        }
      for (size_t i = 0; i < values; ++i)
        fp8_encode_at(i, sh, job.fp8_fixed_scale, job.fp8_absmax, &amax, rows, pay, flags, clip);
      for (size_t i = 0; i < values; ++i)
        fp8_decode_at(i, sh, job.fp8_fixed_scale, job.fp8_absmax, &amax, pay, dec);
      break;
    }
    case PeerKind::kBf16: {
      for (size_t i = 0; i < values; ++i) bf16_encode_at(i, sh, rows, pay, flags);
      for (size_t i = 0; i < values; ++i) bf16_decode_at(i, sh, pay, dec);
      break;
    }
    case PeerKind::kBesi:
      emulate_besi_batch(job, sh, rows, pay, dec, flags);
      break;
  }
  out.clipped.assign(clipped.begin(), clipped.end());
  out.layer_scale = job.kind != PeerKind::kFp8       ? 1.0f
                    : job.fp8_fixed_scale > 0.0f ? job.fp8_fixed_scale
                    : job.fp8_absmax             ? k::fp8_absmax_scale(k::bits_f32(amax))
                                                 : 1.0f;
  out.timings = {};
}

}  // namespace kvwb::codec::cuda
