// Host emulation of the Kakeya-PCA kernels: every stage of a batch in launch order, every work
// item of an item stage in turn and every team stage on a one-thread team, through the same bodies
// the device runs (kakeya_kernels.cuh). Same inputs and outputs as KakeyaWorkspace::run, no CUDA
// call, so the CPU-only self-test checks the whole device path (layouts, indexing, stages, codes,
// container assembly) without a device.
#include <algorithm>
#include <vector>

#include "codec/cuda/kakeya_device.h"
#include "codec/cuda/kakeya_kernels.cuh"

namespace kvwb::codec::cuda {

void emulate_kakeya_batch(const KakeyaJob& job, const float* rows, KakeyaOutputs& out) {
  using namespace kak;
  const KShape sh = make_shape(job);
  const KParams p = make_params(job);
  const size_t D = sh.D, F = sh.fits, B = sh.blocks, R = sh.coded_rows, W = sh.wmax;
  const size_t values = sh.S * sh.H * sh.T * D;
  std::vector<float> mean_raw(F * D), coef(R * D), cnorm(R), dir(R * D), maxcos(R), sgn(R);
  std::vector<float> vsum(B * sh.kmax * D);
  const size_t FE = job.host_fits ? 0 : F;  // fits the eigensolver stages run on
  std::vector<double> sw(FE), a(FE * D * D), v(FE * D * D), rot(FE * jacobi_pairs(D) * 2);
  std::vector<double> wsum(B * sh.kmax);
  std::vector<uint32_t> order(F * D), jflag(F), valid(R), cur(R), prev(R), kscal(B * 4);
  out.flags.assign(sh.units, 0);
  out.d_eff.assign(F, 0);
  out.mean.assign(F * D, 0.0f);
  out.basis.assign(F * D * D, 0.0f);
  out.k_eff.assign(B, 0);
  out.kmax = sh.kmax;
  out.centres.assign(B * sh.kmax * D, 0.0f);
  out.seg.assign(R, 0);
  out.t_bits.assign(R, 0);
  out.norm_bits.assign(R, 0);
  out.out_count.assign(R, 0);
  out.idx.assign(R * W, 0);
  out.out_idx.assign(R * W, 0);
  out.out_val.assign(R * W, 0);
  out.residuals.assign(job.collect_residuals ? R * W : 0, 0.0f);
  out.decoded.assign(values, 0.0f);
  out.timings = {};

  KBuffers b{};
  b.rows = rows;
  b.w = job.weights.empty() ? nullptr : job.weights.data();
  b.mean_raw = mean_raw.data();
  b.sw = sw.data();
  b.a = a.data();
  b.v = v.data();
  b.rot = rot.data();
  b.order = order.data();
  b.jflag = jflag.data();
  b.d_eff = out.d_eff.data();
  b.mean = out.mean.data();
  b.basis = out.basis.data();
  b.coef = coef.data();
  b.cnorm = cnorm.data();
  b.valid = valid.data();
  b.dir = dir.data();
  b.maxcos = maxcos.data();
  b.cur = cur.data();
  b.prev = prev.data();
  b.sgn = sgn.data();
  b.cen = out.centres.data();
  b.vsum = vsum.data();
  b.wsum = wsum.data();
  b.kscal = kscal.data();
  b.k_eff = out.k_eff.data();
  b.seg = out.seg.data();
  b.t_bits = out.t_bits.data();
  b.norm_bits = out.norm_bits.data();
  b.out_count = out.out_count.data();
  b.idx = out.idx.data();
  b.out_idx = out.out_idx.data();
  b.out_val = out.out_val.data();
  b.resid = job.collect_residuals ? out.residuals.data() : nullptr;
  b.dec = out.decoded.data();
  b.flags = out.flags.data();

  const HostTeam team;
  if (job.host_fits) {
    std::copy(job.fit_d_eff.begin(), job.fit_d_eff.end(), out.d_eff.begin());
    std::copy(job.fit_mean.begin(), job.fit_mean.end(), out.mean.begin());
    std::copy(job.fit_basis.begin(), job.fit_basis.end(), out.basis.begin());
  } else {
    for (size_t i = 0; i < F * D; ++i) mean_at(i, sh, b);
    for (size_t i = 0; i < F * D * (D + 1) / 2; ++i) cov_at(i, sh, b);
    for (size_t f = 0; f < F; ++f) {
      jacobi_fit(team, f, sh, b);
      finalize_fit(team, f, sh, p, b);
    }
  }
  for (size_t i = 0; i < R; ++i) project_at(i, sh, b);
  for (size_t blk = 0; blk < B; ++blk) kmeans_block(team, blk, sh, p, b);
  for (size_t i = 0; i < R; ++i) code_at(i, sh, p, b);
  for (size_t i = 0; i < R; ++i) decode_at(i, sh, p, b);
}

}  // namespace kvwb::codec::cuda
