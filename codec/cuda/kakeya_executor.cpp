// Kakeya-PCA on the CUDA executor: host glue around the kernels (kakeya_device.h). The kernels
// produce the codes of every block of the batch; this file checks what the CPU codec would refuse,
// turns the codes into kakeya::UnitCode and serialises each unit with the CPU codec's own
// container writer, so framing and byte accounting are the CPU's by construction.
#include "codec/cuda/kakeya_executor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "base/errors.h"
#include "codec/codecs/kakeya_pca.h"
#include "codec/cuda/peer_device.h"
#include "codec/cuda/unit_layout.h"
#include "codec/format/half.h"
#include "codec/kernels/wht.h"
#include "codec/math/metrics.h"
#include "codec/math/pca.h"

namespace kvwb::codec::cuda {

namespace {

/// Encodes unit u with the CPU codec exactly as the CPU executor does; returns normally only when
/// the CPU accepts the unit. Fp16Range / NonFiniteInput get the CPU executor's unit prefix.
void cpu_encode_unit(const BatchRequest& req, const Codec& codec, const float* coded, size_t u,
                     size_t n, uint8_t flags) {
  const bool whiten = req.whiten != nullptr;
  const UnitInfo info = unit_info(req, u, flags);
  const std::vector<float> rows = unit_rows_of(coded, req, u, n);
  std::vector<float> orig, weights;
  if (whiten) orig = unit_rows_of(req.rows, req, u, n);
  UnitInput in;
  in.rows = rows.data();
  in.original_rows = whiten ? orig.data() : nullptr;
  in.n = n;
  in.dim = req.dim;
  in.info = info;
  if (req.row_weights) {
    weights.resize(n);
    for (size_t r = 0; r < n; ++r) weights[r] = req.row_weights[unit_src_row(req, u, r)];
    in.weights = weights.data();
  }
  cpu_encode_unit_at(codec, in, unit_where(req, info));
}

/// §5.2–5.5 of every fit on the host for pca_method=randomized: the CPU codec's own calls in the
/// CPU's order (kakeya_pca.cpp encode_unit / encode_block: weighted mean, pca_fit with the same Ω,
/// sign rule, skeleton rounding), so mean, basis and d_eff carry the CPU's bits. Fills the job's
/// fit_* arrays; a unit whose fit throws (e.g. a mean outside fp16) is marked in `bad` and left to
/// the CPU re-encode that reports its exact error. Checks `cancel` between units.
void host_randomized_fits(const BatchRequest& req, const kakeya::Config& cfg, const float* coded,
                          size_t units, size_t nbr, KakeyaJob& job, std::vector<uint8_t>& bad,
                          const std::atomic<bool>* cancel) {
  const size_t D = req.dim, bs = job.block_size, nb = job.blocks_per_unit;
  const size_t fits_per_unit = cfg.share_basis ? 1 : nb, F = units * fits_per_unit;
  const size_t fit_rows = cfg.share_basis ? nbr : bs;
  job.host_fits = true;
  job.fit_d_eff.assign(F, 1);
  job.fit_mean.assign(F * D, 0.0f);
  job.fit_basis.assign(F * D * D, 0.0f);
  std::vector<float> omega;  // per-block fits share one Ω, as encode_unit builds it
  if (!cfg.share_basis)
    omega = kakeya::rsvd_omega(bs, kakeya::rsvd_sketch_width(bs, D, cfg.pca), cfg.seed);
  for (size_t u = 0; u < units; ++u) {
    if (cancel && cancel->load()) throw Cancelled("run cancelled");
    if (bad[u]) continue;
    const std::vector<float> rows = unit_rows_of(coded, req, u, nbr);
    try {
      for (size_t k = 0; k < fits_per_unit; ++k) {
        const size_t f = u * fits_per_unit + k, r0 = k * bs;
        std::span<const float> w;
        if (!job.weights.empty())
          w = std::span<const float>(job.weights).subspan(u * nbr + r0, fit_rows);
        const float* x = rows.data() + r0 * D;
        float* mean = job.fit_mean.data() + f * D;
        kakeya::weighted_mean(x, fit_rows, D, w, mean);
        kakeya::PcaFit fit = kakeya::pca_fit(x, fit_rows, D, w, mean, cfg.pca, omega);
        kakeya::canonicalize_signs(fit.basis.data(), fit.d_eff, D);
        kakeya::round_to_dtype(mean, D, cfg.skeleton, "mean");
        kakeya::round_to_dtype(fit.basis.data(), fit.basis.size(), cfg.skeleton, "basis");
        job.fit_d_eff[f] = static_cast<uint16_t>(fit.d_eff);
        std::copy(fit.basis.begin(), fit.basis.end(), job.fit_basis.begin() + f * D * D);
      }
    } catch (const Error&) {
      bad[u] = 1;
    }
  }
}

bool all_finite(const float* x, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return false;
  return true;
}

}  // namespace

BatchResult run_kakeya_batch(const BatchRequest& req, const Codec& codec, KakeyaWorkspace* ws,
                             const std::atomic<bool>* cancel) {
  using kakeya::BlockCode;
  using kakeya::PcaMethod;
  using kakeya::UnitCode;
  const size_t S = req.sequences, H = req.heads, T = req.tokens, D = req.dim;
  const bool pooled = req.block_rows == BlockRows::kPooledHeads;
  const bool whiten = req.whiten != nullptr;
  const kakeya::Config cfg = kakeya::parse_config(req.codec.params, D, req.codec.resources);
  if (D > kKakeyaMaxDim)
    throw Unsupported("codec 'kakeya_pca' with head dimension " + std::to_string(D) +
                      " does not run on backend 'cuda' (at most " + std::to_string(kKakeyaMaxDim) +
                      "); run it with --backend cpu");
  const uint8_t flags = req.domain_flags | (whiten ? kDomainWhitened : 0);
  const size_t units = pooled ? S : S * H;
  const size_t n = pooled ? T * H : T;
  const size_t bs = req.block_size;
  // Requests the CPU codec refuses before any work: its own message.
  if (bs == 0 || (cfg.attention_weights && req.row_weights == nullptr))
    cpu_encode_unit(req, codec, req.rows, 0, n, flags);
  const size_t nb = n / bs, nbr = nb * bs, nt = n - nbr;

  BatchResult res;
  std::vector<float> xw;
  if (whiten) res.max_abs_whitened = whiten_batch(req, xw);
  const float* coded = whiten ? xw.data() : req.rows;
  const float* tail_src = whiten ? req.rows : coded;
  res.layer_scale = codec.layer_scale(req.rows, S * H * T * D);
  if (cancel && cancel->load()) throw Cancelled("run cancelled");

  // What the CPU codec checks on the host side of the data: non-finite rows, attention weights,
  // bf16 overflow of the tail. A unit that fails is re-encoded on the CPU below for the error.
  std::vector<uint8_t> host_bad(units, 0);
  KakeyaJob job;
  set_job_shape(job, req);
  job.block_size = bs;
  job.blocks_per_unit = nb;
  job.variance_ratio = cfg.pca.variance_ratio;
  job.rank_cap = cfg.pca.exact_rank_cap;
  job.k = cfg.k;
  job.kmeans_max_iter = cfg.kmeans_max_iter;
  job.seed = cfg.seed;
  job.bits = cfg.bit_width;
  job.table = cfg.table;
  job.dtype = static_cast<uint8_t>(cfg.skeleton);
  job.outliers = cfg.outliers;
  job.outlier_threshold = cfg.outlier_threshold;
  job.share_basis = cfg.share_basis;
  job.collect_residuals = req.collect_residuals;
  if (cfg.attention_weights && nb > 0) job.weights.assign(units * nbr, 1.0f);
  for (size_t u = 0; u < units; ++u) {
    for (size_t r = 0; r < n && !host_bad[u]; ++r) {
      const size_t row = unit_src_row(req, u, r);
      const float* src = r < nbr ? coded : tail_src;
      if (!all_finite(src + row * D, D)) host_bad[u] = 1;
      if (r >= nbr)
        for (size_t j = 0; j < D; ++j)
          if ((f32_to_bf16_bits(src[row * D + j]) & 0x7FFFu) == 0x7F80u) host_bad[u] = 1;
    }
    if (!job.weights.empty()) {
      // §5.1 attention weights normalised per block by the CPU codec's own block_weights; a block
      // it refuses marks the unit for the CPU re-encode (its exact error).
      std::vector<float> a(bs);
      for (size_t b = 0; b < nb && !host_bad[u]; ++b) {
        for (size_t i = 0; i < bs; ++i) a[i] = req.row_weights[unit_src_row(req, u, b * bs + i)];
        try {
          const std::vector<float> w = kakeya::block_weights(cfg, a.data(), bs, b);
          std::copy(w.begin(), w.end(),
                    job.weights.begin() + static_cast<std::ptrdiff_t>(u * nbr + b * bs));
        } catch (const Error&) {
          host_bad[u] = 1;
        }
      }
    }
  }

  if (cfg.pca.method == PcaMethod::kRandomized && nb > 0)
    host_randomized_fits(req, cfg, coded, units, nbr, job, host_bad, cancel);

  KakeyaOutputs out;
  if (nb > 0) {
    if (ws)
      ws->run(job, coded, out);
    else
      emulate_kakeya_batch(job, coded, out);
  } else {
    out.flags.assign(units, 0);
    out.decoded.assign(S * H * T * D, 0.0f);
  }
  set_device_times(res, out.timings);
  if (cancel && cancel->load()) throw Cancelled("run cancelled");

  // The lowest unit the host or the device flagged: the CPU reference raises its exact error.
  for (size_t u = 0; u < units; ++u) {
    if (!host_bad[u] && !out.flags[u]) continue;
    cpu_encode_unit(req, codec, coded, u, n, flags);
    throw CudaError("kakeya_pca unit " + std::to_string(u) + ": the device flagged it (flags " +
                    std::to_string(out.flags[u]) + ") but the CPU reference encodes it");
  }

  // Containers through the CPU codec's writer.
  const size_t W = kernels::next_pow2(D), kmax = out.kmax;
  res.units.resize(units);
  for (size_t u = 0; u < units; ++u) {
    const UnitInfo info = unit_info(req, u, flags);
    UnitCode code =
        kakeya::unit_code_for(cfg, unit_header(CodecId::kKakeyaPca, D, info, bs, nb, nt));
    if (cfg.share_basis && nb >= 1) {
      kakeya::SharedBasis sh;
      sh.d_eff = out.d_eff[u];
      sh.dtype = cfg.skeleton;
      sh.mean.assign(out.mean.begin() + u * D, out.mean.begin() + (u + 1) * D);
      sh.basis.assign(out.basis.begin() + u * D * D, out.basis.begin() + u * D * D + sh.d_eff * D);
      code.shared = std::move(sh);
    }
    code.blocks.resize(nb);
    uint64_t ref = 0;
    for (size_t b = 0; b < nb; ++b) {
      const size_t blk = u * nb + b, fit = cfg.share_basis ? u : blk;
      BlockCode& bc = code.blocks[b];
      bc.d_eff = out.d_eff[fit];
      bc.k_eff = out.k_eff[blk];
      bc.dtype = cfg.skeleton;
      bc.shared = cfg.share_basis;
      bc.outliers = cfg.outliers;
      const size_t de = bc.d_eff, ke = bc.k_eff, wl = kernels::next_pow2(de);
      if (!bc.shared) {
        bc.mean.assign(out.mean.begin() + fit * D, out.mean.begin() + (fit + 1) * D);
        bc.basis.assign(out.basis.begin() + fit * D * D, out.basis.begin() + fit * D * D + de * D);
      }
      bc.centres.resize(ke * de);
      for (size_t c = 0; c < ke; ++c)
        std::memcpy(&bc.centres[c * de], &out.centres[(blk * kmax + c) * D], de * sizeof(float));
      const size_t r0 = blk * bs;
      bc.seg.assign(out.seg.begin() + r0, out.seg.begin() + r0 + bs);
      bc.t_bits.assign(out.t_bits.begin() + r0, out.t_bits.begin() + r0 + bs);
      bc.norm_bits.assign(out.norm_bits.begin() + r0, out.norm_bits.begin() + r0 + bs);
      bc.idx.resize(bs * wl);
      bc.out_offset.assign(bs + 1, 0);
      for (size_t i = 0; i < bs; ++i) {
        const size_t ci = r0 + i;
        std::memcpy(&bc.idx[i * wl], &out.idx[ci * W], wl * sizeof(uint16_t));
        for (size_t o = 0; o < out.out_count[ci]; ++o) {
          bc.out_idx.push_back(out.out_idx[ci * W + o]);
          bc.out_val.push_back(out.out_val[ci * W + o]);
        }
        bc.out_offset[i + 1] = static_cast<uint32_t>(bc.out_idx.size());
        if (req.collect_residuals)
          res.stats.scaled_residuals.insert(res.stats.scaled_residuals.end(),
                                            out.residuals.begin() + ci * W,
                                            out.residuals.begin() + ci * W + wl);
      }
      res.stats.d_eff.push_back(static_cast<uint16_t>(de));
      res.stats.k_eff.push_back(static_cast<uint16_t>(ke));
      res.stats.outliers += bc.out_idx.size();
      res.stats.coded_values += bs * wl;
      ref += kakeya::reference_block_bytes(D, bs, de, ke, cfg.bit_width, bc.dtype,
                                           bc.out_idx.size(), bc.shared);
    }
    code.tail_bits.resize(nt * D);
    for (size_t i = 0; i < nt; ++i) {
      const float* src = tail_src + unit_src_row(req, u, nbr + i) * D;
      for (size_t j = 0; j < D; ++j) code.tail_bits[i * D + j] = f32_to_bf16_bits(src[j]);
    }
    if (code.shared)
      ref += kakeya::reference_shared_bytes(D, code.shared->d_eff, code.shared->dtype);
    const std::vector<uint8_t> bytes = kakeya::write_container(code);
    UnitRecord& r = res.units[u];
    r.sequence = info.sequence;
    r.kv_head = info.kv_head;
    r.offset = res.containers.size();
    r.size = bytes.size();
    r.header_bytes = code.header.header_bytes;
    r.reported_bytes = r.size - r.header_bytes;
    r.tail_bytes = 2ull * code.tail_bits.size();
    r.reference_bytes = ref + r.tail_bytes;
    r.codec_rows = nbr;
    r.n_block_rows = nbr;
    res.containers.insert(res.containers.end(), bytes.begin(), bytes.end());
    res.reported_bytes += r.reported_bytes;
    res.reference_bytes += r.reference_bytes;
    res.tail_bytes += r.tail_bytes;
  }
  res.per_layer_stream_bytes = codec.per_layer_stream_bytes();

  // Decoded rows: block rows from the device (coded domain, un-whitened here as the CPU does),
  // tail rows = their bf16 values in the original domain.
  res.decoded = decoded_tensor(req, std::move(out.decoded));
  std::vector<float> tmp(D);
  for (size_t u = 0; u < units; ++u)
    for (size_t r = 0; r < n; ++r) {
      float* row = res.decoded.data.data() + unit_src_row(req, u, r) * D;
      if (r >= nbr) {
        const float* src = tail_src + unit_src_row(req, u, r) * D;
        for (size_t j = 0; j < D; ++j) row[j] = bf16_bits_to_f32(f32_to_bf16_bits(src[j]));
      } else if (whiten) {
        const size_t h = pooled ? r % H : u % H;
        matmul_rows(row, 1, D, req.unwhiten + h * D * D, tmp.data());
        std::memcpy(row, tmp.data(), D * sizeof(float));
      }
    }
  return res;
}

}  // namespace kvwb::codec::cuda
