// CUDA kernels of Kakeya-PCA (codec-kakeya.md §5–§7) and the workspace that runs one
// (layer, stream) batch on one stream: item kernels (one thread per item) for the mean, the f64
// covariance, the projection, the per-row code and the decode; team kernels (one thread block per
// fit or code block) for the cyclic Jacobi eigensolver + d_eff/sign/rounding and for K-means. The
// bodies live in kakeya_kernels.cuh and are shared with the host emulation (kakeya_emulate.cpp).
// Built with --fmad=false like the peers (kvwb::kernels), so the per-row math is the CPU's.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "codec/cuda/cuda_util.cuh"
#include "codec/cuda/kakeya_device.h"
#include "codec/cuda/kakeya_kernels.cuh"

namespace kvwb::codec::cuda {

namespace {

using namespace kak;

/// Prefix of this file's CudaError messages.
constexpr const char* kKakeyaLabel = "CUDA (kakeya) ";

void kcheck(cudaError_t err, const char* what) { check(err, what, kKakeyaLabel); }

/// A thread block as a team: items strided over its threads, __syncthreads between phases.
struct DeviceTeam {
  template <class F>
  KVWB_HD void each(size_t n, F&& f) const {
#if defined(__CUDA_ARCH__)
    for (size_t i = threadIdx.x; i < n; i += blockDim.x) f(i);
#else
    (void)n;
    (void)f;
#endif
  }
  KVWB_HD void sync() const {
#if defined(__CUDA_ARCH__)
    __syncthreads();
#endif
  }
};

constexpr unsigned kItemBlock = 128;
constexpr unsigned kTeamBlock = 256;

__global__ void kakeya_mean(KShape sh, KBuffers b) { mean_at(thread_index(), sh, b); }
__global__ void kakeya_cov(KShape sh, KBuffers b) { cov_at(thread_index(), sh, b); }
__global__ void __launch_bounds__(kTeamBlock) kakeya_eigen(KShape sh, KParams p, KBuffers b) {
  const DeviceTeam team;
  jacobi_fit(team, blockIdx.x, sh, b);
  finalize_fit(team, blockIdx.x, sh, p, b);
}
__global__ void kakeya_project(KShape sh, KBuffers b) { project_at(thread_index(), sh, b); }
__global__ void __launch_bounds__(kTeamBlock) kakeya_kmeans(KShape sh, KParams p, KBuffers b) {
  kmeans_block(DeviceTeam{}, blockIdx.x, sh, p, b);
}
__global__ void kakeya_code(KShape sh, KParams p, KBuffers b) { code_at(thread_index(), sh, p, b); }
__global__ void kakeya_decode(KShape sh, KParams p, KBuffers b) {
  decode_at(thread_index(), sh, p, b);
}

/// Byte offsets of every array of a batch inside one device arena (256-byte aligned).
struct Arena {
  size_t total = 0;
  template <class T>
  size_t add(size_t count) {
    const size_t off = total;
    total += (count * sizeof(T) + 255) / 256 * 256;
    return off;
  }
};

}  // namespace

struct KakeyaWorkspace::Impl {
  explicit Impl(int device) : batch(device, kKakeyaLabel) {}
  BatchStream batch;
  DeviceBuffer arena;   // every array of the batch (offsets from Arena)
  PinnedBuffer pinned;  // host staging of the inputs
};

KakeyaWorkspace::KakeyaWorkspace(int device) : impl_(std::make_unique<Impl>(device)) {}

KakeyaWorkspace::~KakeyaWorkspace() = default;

void KakeyaWorkspace::run(const KakeyaJob& job, const float* rows, KakeyaOutputs& out) {
  Impl& m = *impl_;
  m.batch.use_device();
  const KShape sh = make_shape(job);
  const KParams p = make_params(job);
  const size_t D = sh.D, F = sh.fits, B = sh.blocks, R = sh.coded_rows, W = sh.wmax;
  const size_t values = sh.S * sh.H * sh.T * D, K = sh.kmax;
  const size_t FE = job.host_fits ? 0 : F;  // fits the eigensolver stages run on
  Arena ar;
  const size_t o_rows = ar.add<float>(values), o_w = ar.add<float>(job.weights.size());
  const size_t o_mean_raw = ar.add<float>(FE * D), o_sw = ar.add<double>(FE);
  const size_t o_a = ar.add<double>(FE * D * D), o_v = ar.add<double>(FE * D * D);
  const size_t o_rot = ar.add<double>(FE * jacobi_pairs(D) * 2);
  const size_t o_order = ar.add<uint32_t>(FE * D);
  const size_t o_jflag = ar.add<uint32_t>(FE), o_deff = ar.add<uint16_t>(F);
  const size_t o_mean = ar.add<float>(F * D), o_basis = ar.add<float>(F * D * D);
  const size_t o_coef = ar.add<float>(R * D), o_cnorm = ar.add<float>(R);
  const size_t o_valid = ar.add<uint32_t>(R), o_dir = ar.add<float>(R * D);
  const size_t o_maxcos = ar.add<float>(R), o_cur = ar.add<uint32_t>(R);
  const size_t o_prev = ar.add<uint32_t>(R), o_sgn = ar.add<float>(R);
  const size_t o_cen = ar.add<float>(B * K * D), o_vsum = ar.add<float>(B * K * D);
  const size_t o_wsum = ar.add<double>(B * K), o_kscal = ar.add<uint32_t>(B * 4);
  const size_t o_keff = ar.add<uint16_t>(B), o_seg = ar.add<uint16_t>(R);
  const size_t o_tb = ar.add<uint16_t>(R), o_nb = ar.add<uint16_t>(R);
  const size_t o_oc = ar.add<uint16_t>(R), o_idx = ar.add<uint16_t>(R * W);
  const size_t o_oi = ar.add<uint16_t>(R * W), o_ov = ar.add<uint16_t>(R * W);
  const size_t o_res = ar.add<float>(job.collect_residuals ? R * W : 0);
  const size_t o_dec = ar.add<float>(values), o_flags = ar.add<uint32_t>(sh.units);
  m.arena.reserve(ar.total, "allocate the batch arena", kKakeyaLabel);
  // Pinned staging: rows, weights, then (host fits) means, bases and d_eff.
  const size_t fit_floats = job.host_fits ? F * D + F * D * D : 0;
  const size_t in_bytes = (values + job.weights.size() + fit_floats) * sizeof(float) +
                          (job.host_fits ? F * sizeof(uint16_t) : 0);
  m.pinned.reserve(in_bytes, "allocate pinned rows", kKakeyaLabel);
  auto* base = static_cast<uint8_t*>(m.arena.ptr);
  auto at = [&](size_t off) { return static_cast<void*>(base + off); };
  KBuffers b{};
  b.rows = static_cast<const float*>(at(o_rows));
  b.w = job.weights.empty() ? nullptr : static_cast<const float*>(at(o_w));
  b.mean_raw = static_cast<float*>(at(o_mean_raw));
  b.sw = static_cast<double*>(at(o_sw));
  b.a = static_cast<double*>(at(o_a));
  b.v = static_cast<double*>(at(o_v));
  b.rot = static_cast<double*>(at(o_rot));
  b.order = static_cast<uint32_t*>(at(o_order));
  b.jflag = static_cast<uint32_t*>(at(o_jflag));
  b.d_eff = static_cast<uint16_t*>(at(o_deff));
  b.mean = static_cast<float*>(at(o_mean));
  b.basis = static_cast<float*>(at(o_basis));
  b.coef = static_cast<float*>(at(o_coef));
  b.cnorm = static_cast<float*>(at(o_cnorm));
  b.valid = static_cast<uint32_t*>(at(o_valid));
  b.dir = static_cast<float*>(at(o_dir));
  b.maxcos = static_cast<float*>(at(o_maxcos));
  b.cur = static_cast<uint32_t*>(at(o_cur));
  b.prev = static_cast<uint32_t*>(at(o_prev));
  b.sgn = static_cast<float*>(at(o_sgn));
  b.cen = static_cast<float*>(at(o_cen));
  b.vsum = static_cast<float*>(at(o_vsum));
  b.wsum = static_cast<double*>(at(o_wsum));
  b.kscal = static_cast<uint32_t*>(at(o_kscal));
  b.k_eff = static_cast<uint16_t*>(at(o_keff));
  b.seg = static_cast<uint16_t*>(at(o_seg));
  b.t_bits = static_cast<uint16_t*>(at(o_tb));
  b.norm_bits = static_cast<uint16_t*>(at(o_nb));
  b.out_count = static_cast<uint16_t*>(at(o_oc));
  b.idx = static_cast<uint16_t*>(at(o_idx));
  b.out_idx = static_cast<uint16_t*>(at(o_oi));
  b.out_val = static_cast<uint16_t*>(at(o_ov));
  b.resid = job.collect_residuals ? static_cast<float*>(at(o_res)) : nullptr;
  b.dec = static_cast<float*>(at(o_dec));
  b.flags = static_cast<uint32_t*>(at(o_flags));
  cudaStream_t st = m.batch.stream;

  auto* pin = static_cast<float*>(m.pinned.ptr);
  std::memcpy(pin, rows, values * sizeof(float));
  if (!job.weights.empty())
    std::memcpy(pin + values, job.weights.data(), job.weights.size() * sizeof(float));
  m.batch.record(0);
  kcheck(cudaMemcpyAsync(at(o_rows), pin, values * sizeof(float), cudaMemcpyHostToDevice, st),
         "copy rows to the device");
  if (!job.weights.empty())
    kcheck(cudaMemcpyAsync(at(o_w), pin + values, job.weights.size() * sizeof(float),
                           cudaMemcpyHostToDevice, st),
           "copy weights to the device");
  if (job.host_fits) {
    float* fm = pin + values + job.weights.size();
    float* fb = fm + F * D;
    auto* fd = reinterpret_cast<uint16_t*>(fb + F * D * D);
    std::memcpy(fm, job.fit_mean.data(), F * D * sizeof(float));
    std::memcpy(fb, job.fit_basis.data(), F * D * D * sizeof(float));
    std::memcpy(fd, job.fit_d_eff.data(), F * sizeof(uint16_t));
    kcheck(cudaMemcpyAsync(at(o_mean), fm, F * D * sizeof(float), cudaMemcpyHostToDevice, st),
           "copy host fit means to the device");
    kcheck(cudaMemcpyAsync(at(o_basis), fb, F * D * D * sizeof(float), cudaMemcpyHostToDevice, st),
           "copy host fit bases to the device");
    kcheck(cudaMemcpyAsync(at(o_deff), fd, F * sizeof(uint16_t), cudaMemcpyHostToDevice, st),
           "copy host fit d_eff to the device");
  }
  m.batch.record(1);
  kcheck(cudaMemsetAsync(at(o_flags), 0, sh.units * sizeof(uint32_t), st), "clear flags");
  kcheck(cudaMemsetAsync(at(o_dec), 0, values * sizeof(float), st), "clear decoded rows");
  kcheck(cudaMemsetAsync(at(o_cen), 0, B * K * D * sizeof(float), st), "clear centres");
  if (!job.host_fits) {
    kcheck(cudaMemsetAsync(at(o_basis), 0, F * D * D * sizeof(float), st), "clear basis");
    const size_t P = D * (D + 1) / 2;
    kakeya_mean<<<grid_for(F * D, kItemBlock), kItemBlock, 0, st>>>(sh, b);
    kakeya_cov<<<grid_for(F * P, kItemBlock), kItemBlock, 0, st>>>(sh, b);
    kakeya_eigen<<<static_cast<unsigned>(F), kTeamBlock, 0, st>>>(sh, p, b);
  }
  kakeya_project<<<grid_for(R, kItemBlock), kItemBlock, 0, st>>>(sh, b);
  kakeya_kmeans<<<static_cast<unsigned>(B), kTeamBlock, 0, st>>>(sh, p, b);
  kakeya_code<<<grid_for(R, kItemBlock), kItemBlock, 0, st>>>(sh, p, b);
  kakeya_decode<<<grid_for(R, kItemBlock), kItemBlock, 0, st>>>(sh, p, b);
  kcheck(cudaGetLastError(), "launch kernels");
  m.batch.record(2);

  out.kmax = K;
  out.flags.resize(sh.units);
  out.d_eff.resize(F);
  out.mean.resize(F * D);
  out.basis.resize(F * D * D);
  out.k_eff.resize(B);
  out.centres.resize(B * K * D);
  out.seg.resize(R);
  out.t_bits.resize(R);
  out.norm_bits.resize(R);
  out.out_count.resize(R);
  out.idx.resize(R * W);
  out.out_idx.resize(R * W);
  out.out_val.resize(R * W);
  out.residuals.resize(job.collect_residuals ? R * W : 0);
  out.decoded.resize(values);
  auto d2h = [&](void* dst, size_t off, size_t bytes, const char* what) {
    if (bytes) kcheck(cudaMemcpyAsync(dst, at(off), bytes, cudaMemcpyDeviceToHost, st), what);
  };
  d2h(out.flags.data(), o_flags, sh.units * 4, "copy flags");
  d2h(out.d_eff.data(), o_deff, F * 2, "copy d_eff");
  d2h(out.mean.data(), o_mean, F * D * 4, "copy means");
  d2h(out.basis.data(), o_basis, F * D * D * 4, "copy bases");
  d2h(out.k_eff.data(), o_keff, B * 2, "copy K_eff");
  d2h(out.centres.data(), o_cen, B * K * D * 4, "copy centres");
  d2h(out.seg.data(), o_seg, R * 2, "copy segment ids");
  d2h(out.t_bits.data(), o_tb, R * 2, "copy t");
  d2h(out.norm_bits.data(), o_nb, R * 2, "copy norms");
  d2h(out.out_count.data(), o_oc, R * 2, "copy outlier counts");
  d2h(out.idx.data(), o_idx, R * W * 2, "copy indices");
  d2h(out.out_idx.data(), o_oi, R * W * 2, "copy outlier indices");
  d2h(out.out_val.data(), o_ov, R * W * 2, "copy outlier values");
  d2h(out.residuals.data(), o_res, out.residuals.size() * 4, "copy residuals");
  d2h(out.decoded.data(), o_dec, values * 4, "copy decoded rows");
  m.batch.record(3);
  m.batch.sync("run the batch");  // the one host synchronisation
  m.batch.read_timings(out.timings);
}

}  // namespace kvwb::codec::cuda
