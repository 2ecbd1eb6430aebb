// CUDA kernels of the metrics (metrics.md §1, §3) and the workspace that runs them on one stream:
// per-row reconstruction quantities and per-head sums in the CPU's order (bit-identical to
// ErrorSums), and one block per sampled attention query. The per-thread bodies are those of
// metrics_kernels.cuh, which metrics_emulate.cpp runs on the host.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "codec/cuda/cuda_util.cuh"
#include "codec/cuda/metrics_device.h"
#include "codec/cuda/metrics_kernels.cuh"

namespace kvwb::codec::cuda {

namespace {

using namespace metrics;

__global__ void row_errors(ErrorJob job, const float* __restrict__ x,
                           const float* __restrict__ xhat, RowErr* __restrict__ out) {
  row_error_at(thread_index(), job, x, xhat, out);
}

/// One block per kv head: the block stages kHeadThreads rows at a time in shared memory and
/// thread 0 adds them in order (sequence, token), so the sums are the CPU's bit for bit.
__global__ void __launch_bounds__(kHeadThreads)
    head_sums(ErrorJob job, const RowErr* __restrict__ rows, HeadErr* __restrict__ out) {
  __shared__ RowErr stage[kHeadThreads];
  const size_t h = blockIdx.x, n = job.sequences * job.tokens;
  HeadErr acc;
  for (size_t r0 = 0; r0 < n; r0 += kHeadThreads) {
    if (r0 + threadIdx.x < n) stage[threadIdx.x] = rows[head_row(job, h, r0 + threadIdx.x)];
    __syncthreads();
    if (threadIdx.x == 0) {
      const size_t c = n - r0 < kHeadThreads ? n - r0 : kHeadThreads;
      for (size_t i = 0; i < c; ++i) head_add(acc, stage[i]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) out[h] = acc;
}

/// Tree reduction over the block's kAttnThreads partials (the order of the host emulation).
__device__ inline void block_sum(double* a) {
  for (unsigned half = kAttnThreads / 2; half > 0; half /= 2) {
    tree_sum_step(a, threadIdx.x, half);
    __syncthreads();
  }
}

/// One block per sampled query (grid-stride over the queries); each block owns a slice of the
/// scratch: 2·T f32 logits and 2·T f64 probabilities.
__global__ void __launch_bounds__(kAttnThreads)
    attention_queries(AttnJob job, const QueryRef* __restrict__ refs, size_t nq,
                      const float* __restrict__ q, const float* __restrict__ k,
                      const float* __restrict__ v, const float* __restrict__ kh,
                      const float* __restrict__ vh, float* zbuf, double* pbuf,
                      QueryOut* __restrict__ out) {
  __shared__ float mz[kAttnThreads], mzh[kAttnThreads];
  __shared__ uint32_t am[kAttnThreads], amh[kAttnThreads];
  __shared__ double s[kAttnThreads], sh[kAttnThreads], kl[kAttnThreads], on[kAttnThreads],
      eb[kAttnThreads], ek[kAttnThreads], ev[kAttnThreads];
  const AttnScratch sc{mz, mzh, am, amh, s, sh, kl, on, eb, ek, ev};
  const size_t T = job.tokens;
  float* z = zbuf + blockIdx.x * 2 * T;
  float* zh = z + T;
  double* pi = pbuf + blockIdx.x * 2 * T;
  double* pih = pi + T;
  const unsigned tid = threadIdx.x;
  for (size_t qi = blockIdx.x; qi < nq; qi += gridDim.x) {
    const QueryView w = query_view(job, refs[qi], q, k, v, kh, vh);
    attn_logits_at(tid, kAttnThreads, w, z, zh, sc);
    __syncthreads();
    for (unsigned half = kAttnThreads / 2; half > 0; half /= 2) {
      tree_argmax_step(mz, am, tid, half);
      tree_argmax_step(mzh, amh, tid, half);
      __syncthreads();
    }
    const double m = mz[0], mh = mzh[0];
    attn_exp_at(tid, kAttnThreads, w, z, zh, m, mh, pi, pih, sc);
    __syncthreads();
    block_sum(s);
    block_sum(sh);
    const double s0 = s[0], sh0 = sh[0];
    attn_kl_at(tid, kAttnThreads, w, z, zh, s0, sh0, attn_lse(m, s0), attn_lse(mh, sh0), pi, pih,
               sc);
    __syncthreads();
    block_sum(kl);
    attn_out_at(tid, kAttnThreads, w, pi, pih, sc);
    __syncthreads();
    block_sum(on);
    block_sum(eb);
    block_sum(ek);
    block_sum(ev);
    if (tid == 0) out[qi] = attn_result(sc);
    __syncthreads();  // the next query reuses the scratch
  }
}

}  // namespace

struct MetricsWorkspace::Impl {
  explicit Impl(int device) : batch(device) {}
  BatchStream batch;
  // Device: inputs (up to five [.., T, D] arrays), per-row sums, results, query list, scratch.
  DeviceBuffer in[5], rows, result, refs, zbuf, pbuf;
  PinnedBuffer h_in[5], h_result;
  int blocks = 0;  // attention blocks in flight (8 per multiprocessor, fewer for long T)

  /// Pinned staging then an async copy of `bytes` of `src` into device input `i`.
  void upload(int i, const void* src, size_t bytes) {
    in[i].reserve(bytes, "allocate metric inputs");
    h_in[i].reserve(bytes, "allocate pinned metric inputs");
    std::memcpy(h_in[i].ptr, src, bytes);
    check(cudaMemcpyAsync(in[i].ptr, h_in[i].ptr, bytes, cudaMemcpyHostToDevice, batch.stream),
          "copy metric inputs to the device");
  }
};

MetricsWorkspace::MetricsWorkspace(int device) : impl_(std::make_unique<Impl>(device)) {
  int sms = 0;
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "query device");
  impl_->blocks = std::max(1, 8 * sms);
}

MetricsWorkspace::~MetricsWorkspace() = default;

size_t MetricsWorkspace::device_bytes() const {
  const Impl& m = *impl_;
  size_t n = m.rows.size + m.result.size + m.refs.size + m.zbuf.size + m.pbuf.size;
  for (const auto& b : m.in) n += b.size;
  return n;
}

void MetricsWorkspace::head_errors(const ErrorJob& job, const float* x, const float* xhat,
                                   std::vector<HeadErr>& out, MetricTimings& t) {
  Impl& m = *impl_;
  m.batch.use_device();
  const size_t n_rows = job.sequences * job.heads * job.tokens;
  const size_t bytes = n_rows * job.dim * sizeof(float);
  cudaStream_t st = m.batch.stream;
  m.batch.record(0);
  m.upload(0, x, bytes);
  m.upload(1, xhat, bytes);
  m.batch.record(1);
  m.rows.reserve(n_rows * sizeof(RowErr), "allocate row sums");
  m.result.reserve(job.heads * sizeof(HeadErr), "allocate head sums");
  auto* d_rows = static_cast<RowErr*>(m.rows.ptr);
  auto* d_out = static_cast<HeadErr*>(m.result.ptr);
  row_errors<<<grid_for(n_rows, 128), 128, 0, st>>>(job, static_cast<const float*>(m.in[0].ptr),
                                                    static_cast<const float*>(m.in[1].ptr), d_rows);
  head_sums<<<static_cast<unsigned>(job.heads), kHeadThreads, 0, st>>>(job, d_rows, d_out);
  check(cudaGetLastError(), "launch metric kernels");
  m.batch.record(2);
  m.h_result.reserve(job.heads * sizeof(HeadErr), "allocate pinned head sums");
  check(cudaMemcpyAsync(m.h_result.ptr, d_out, job.heads * sizeof(HeadErr),
                        cudaMemcpyDeviceToHost, st),
        "copy head sums to the host");
  m.batch.record(3);
  m.batch.sync("compute the reconstruction metrics");
  const auto* h = static_cast<const HeadErr*>(m.h_result.ptr);
  out.assign(h, h + job.heads);
  m.batch.read_timings(t);
}

void MetricsWorkspace::attention(const AttnJob& job, const std::vector<QueryRef>& queries,
                                 const float* q, const float* k, const float* v, const float* khat,
                                 const float* vhat, std::vector<QueryOut>& out, MetricTimings& t) {
  Impl& m = *impl_;
  m.batch.use_device();
  const size_t S = job.sequences, T = job.tokens, D = job.dim, nq = queries.size();
  out.assign(nq, {});
  if (nq == 0) {
    t = {};
    return;
  }
  const size_t q_bytes = S * job.q_heads * T * D * sizeof(float);
  const size_t kv_bytes = S * job.kv_heads * T * D * sizeof(float);
  cudaStream_t st = m.batch.stream;
  m.batch.record(0);
  m.upload(0, q, q_bytes);
  m.upload(1, k, kv_bytes);
  m.upload(2, v, kv_bytes);
  m.upload(3, khat, kv_bytes);
  m.upload(4, vhat, kv_bytes);
  m.refs.reserve(nq * sizeof(QueryRef), "allocate query list");
  // The query list goes through the pinned staging of the result buffer (it is small).
  m.h_result.reserve(std::max(nq * sizeof(QueryRef), nq * sizeof(QueryOut)),
                     "allocate pinned query list");
  std::memcpy(m.h_result.ptr, queries.data(), nq * sizeof(QueryRef));
  check(cudaMemcpyAsync(m.refs.ptr, m.h_result.ptr, nq * sizeof(QueryRef), cudaMemcpyHostToDevice,
                        st),
        "copy query list to the device");
  m.batch.record(1);
  // Each block in flight owns 2·T f32 + 2·T f64 of scratch; at most kScratchBytes in all.
  constexpr size_t kScratchBytes = size_t{256} << 20;
  const size_t by_memory = std::max<size_t>(1, kScratchBytes / (T * 24));
  const unsigned grid = static_cast<unsigned>(
      std::min({nq, static_cast<size_t>(m.blocks), by_memory}));
  m.zbuf.reserve(grid * 2 * T * sizeof(float), "allocate logit scratch");
  m.pbuf.reserve(grid * 2 * T * sizeof(double), "allocate probability scratch");
  m.result.reserve(nq * sizeof(QueryOut), "allocate query results");
  attention_queries<<<grid, kAttnThreads, 0, st>>>(
      job, static_cast<const QueryRef*>(m.refs.ptr), nq, static_cast<const float*>(m.in[0].ptr),
      static_cast<const float*>(m.in[1].ptr), static_cast<const float*>(m.in[2].ptr),
      static_cast<const float*>(m.in[3].ptr), static_cast<const float*>(m.in[4].ptr),
      static_cast<float*>(m.zbuf.ptr), static_cast<double*>(m.pbuf.ptr),
      static_cast<QueryOut*>(m.result.ptr));
  check(cudaGetLastError(), "launch the attention kernel");
  m.batch.record(2);
  check(cudaMemcpyAsync(m.h_result.ptr, m.result.ptr, nq * sizeof(QueryOut),
                        cudaMemcpyDeviceToHost, st),
        "copy query results to the host");
  m.batch.record(3);
  m.batch.sync("compute the attention metrics");
  const auto* r = static_cast<const QueryOut*>(m.h_result.ptr);
  out.assign(r, r + nq);
  m.batch.read_timings(t);
}

}  // namespace kvwb::codec::cuda
