#include "codec/cuda/cuda_executor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "base/errors.h"
#include "codec/codecs/besicovitch.h"
#include "codec/codecs/ggml_quants.h"
#include "codec/codecs/kivi.h"
#include "codec/codecs/turboquant.h"
#include "codec/cuda/kakeya_device.h"
#include "codec/cuda/kakeya_executor.h"
#include "codec/cuda/metrics_host.h"
#include "codec/cuda/peer_device.h"
#include "codec/cuda/unit_layout.h"
#include "codec/math/metrics.h"

namespace kvwb::codec::cuda {

namespace {

constexpr CodecId kDeviceCodecs[] = {
    CodecId::kKakeyaPca,
    CodecId::kTurbo2, CodecId::kTurbo3, CodecId::kTurbo4, CodecId::kQ8_0, CodecId::kQ4_0,
    CodecId::kQ4_1,   CodecId::kQ5_0,   CodecId::kQ5_1,   CodecId::kIq4Nl, CodecId::kKivi,
    CodecId::kFp8E4m3, CodecId::kBf16, CodecId::kBesicovitch};

bool device_id(CodecId id) {
  return std::find(std::begin(kDeviceCodecs), std::end(kDeviceCodecs), id) !=
         std::end(kDeviceCodecs);
}

std::string device_codec_list() {
  std::string s;
  for (const auto& n : device_codecs()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

/// The header and parameter block of a unit as the CPU codec writes them (an encode of no rows,
/// then n_blocks / n_tail_rows set to the unit's).
std::vector<uint8_t> unit_header(const Codec& codec, size_t dim, const UnitInfo& info,
                                 float layer_scale, uint64_t n_blocks, uint64_t n_tail_rows) {
  UnitInput in;
  in.n = 0;
  in.dim = dim;
  in.info = info;
  in.layer_scale = layer_scale;
  const EncodedUnit probe = codec.encode(in);
  std::span<const uint8_t> params;
  ContainerHeader h = read_container_header(probe.bytes, "cuda header probe", &params);
  h.n_blocks = static_cast<uint32_t>(n_blocks);
  h.n_tail_rows = static_cast<uint32_t>(n_tail_rows);
  std::vector<uint8_t> out;
  write_container_header(h, params, out);
  return out;
}

}  // namespace

std::vector<std::string> device_codecs() {
  std::vector<std::string> out;
  for (CodecId id : kDeviceCodecs) out.emplace_back(codec_name(id));
  return out;
}

bool runs_on_device(std::string_view codec) {
  for (CodecId id : kDeviceCodecs)
    if (codec_name(id) == codec) return true;
  return false;
}

std::string device_refusal(std::string_view codec, const ParamMap& params, size_t head_dim) {
  if (!runs_on_device(codec))
    return "codec " + std::string(codec) + " does not run on cuda in this build";
  (void)params;  // every kakeya_pca option runs (randomized PCA fits on the host, §5.4)
  if (codec == "kakeya_pca" && head_dim > kKakeyaMaxDim)
    return "codec kakeya_pca with head_dim " + std::to_string(head_dim) +
           " does not run on cuda in this build (at most " + std::to_string(kKakeyaMaxDim) + ")";
  return "";
}

CudaExecutor::CudaExecutor(int device, bool emulate)
    : workspace_(emulate ? nullptr : std::make_unique<PeerWorkspace>(device)),
      metrics_(emulate ? nullptr : std::make_unique<MetricsWorkspace>(device)),
      kakeya_(emulate ? nullptr : std::make_unique<KakeyaWorkspace>(device)) {}
CudaExecutor::~CudaExecutor() = default;

BatchResult CudaExecutor::run(const BatchRequest& req, const std::atomic<bool>* cancel) const {
  check_batch_request(req);
  const size_t S = req.sequences, H = req.heads, T = req.tokens, D = req.dim;
  const bool pooled = req.block_rows == BlockRows::kPooledHeads;
  const bool whiten = req.whiten != nullptr;
  const auto codec = make_codec(req.codec.name, req.codec.params, D, req.codec.resources);
  const CodecId id = codec->id();
  if (id == CodecId::kKakeyaPca) {  // kakeya_executor.cpp: kernels + the CPU codec's writer
    std::lock_guard<std::mutex> lock(mutex_);
    BatchResult res = run_kakeya_batch(req, *codec, kakeya_.get(), cancel);
    if (req.measure)  // the metric kernels, as for the other device codecs
      res.head_errors = device_head_errors(metrics_.get(), req, res.decoded.data.data(),
                                           &res.device_metrics_ms);
    return res;
  }
  if (!device_id(id))
    throw Unsupported("codec '" + std::string(codec->name()) +
                      "' does not run on backend 'cuda' in this build (device codecs: " +
                      device_codec_list() + "); run it with --backend cpu");
  const uint8_t flags = req.domain_flags | (whiten ? kDomainWhitened : 0);
  const size_t units = pooled ? S : S * H;
  const size_t unit_rows = pooled ? T * H : T;
  // Validates the unit layout exactly as the CPU codec does (e.g. kivi refuses pooled heads)
  // before any device work, and yields the parameter block.
  std::span<const uint8_t> params;
  const std::vector<uint8_t> probe = unit_header(*codec, D, unit_info(req, 0, flags), 1.0f, 0, 0);
  (void)read_container_header(probe, "cuda header probe", &params);
  if (cancel && cancel->load()) throw Cancelled("run cancelled");

  PeerJob job;
  set_job_shape(job, req);
  uint64_t codec_rows = unit_rows, tail_rows = 0, tail_bytes = 0;
  uint64_t header_blocks = 0;      // container n_blocks; 0: codec_rows (the peers' convention)
  uint64_t reference_payload = 0;  // reference accounting per unit; 0: the payload
  uint64_t values_per_row = D;     // EncodeStats::coded_values per coded row
  switch (id) {
    case CodecId::kTurbo2:
    case CodecId::kTurbo3:
    case CodecId::kTurbo4:
      job.kind = PeerKind::kTurbo;
      job.bits = turbo_bits(id);
      job.unit_payload = unit_rows * turbo_bytes_per_vector(id, D);
      break;
    case CodecId::kFp8E4m3: {
      job.kind = PeerKind::kFp8;
      const auto it = req.codec.params.find("scale_mode");
      job.fp8_absmax = it != req.codec.params.end() && it->second == "absmax";
      // The scale comes from the un-whitened rows; when the device codes whitened rows the host
      // computes it (as the CPU does) and hands it over.
      if (whiten) job.fp8_fixed_scale = codec->layer_scale(req.rows, S * H * T * D);
      job.unit_payload = unit_rows * D;
      break;
    }
    case CodecId::kBf16:
      job.kind = PeerKind::kBf16;
      job.unit_payload = unit_rows * D * 2;
      break;
    case CodecId::kKivi: {
      job.kind = PeerKind::kKivi;
      job.bits = params[0];
      const size_t group = static_cast<size_t>(params[2] | (params[3] << 8));
      const uint64_t residual = static_cast<uint64_t>(params[4]) |
                                (static_cast<uint64_t>(params[5]) << 8) |
                                (static_cast<uint64_t>(params[6]) << 16) |
                                (static_cast<uint64_t>(params[7]) << 24);
      const KiviLayout lay = kivi_layout(req.stream, T, D, job.bits, group, residual);
      job.kivi_k = req.stream == Stream::kK;
      job.kivi_group = lay.group_values;
      job.kivi_quant_rows = lay.quant_rows;
      job.kivi_group_bytes = lay.group_bytes;
      job.kivi_quant_bytes = lay.quant_bytes;
      job.unit_payload = lay.total_bytes();
      codec_rows = lay.quant_rows;
      tail_rows = lay.tail_rows;
      tail_bytes = lay.tail_bytes;
      break;
    }
    case CodecId::kBesicovitch: {
      // The parameter block the CPU codec wrote (container §6.1), so both sides code the same.
      BesiConfig c;
      c.group_size = params[0];
      c.direction_bits = params[1];
      c.magnitude = params[2] ? BesiMagnitude::kQuantized : BesiMagnitude::kF16;
      c.magnitude_bits = params[2] ? params[3] : 4;
      c.subtract_mean = (params[4] & 1u) != 0;
      job.kind = PeerKind::kBesi;
      job.besi.g = c.group_size;
      job.besi.db = c.direction_bits;
      job.besi.mb = params[2] ? c.magnitude_bits : 0;
      job.besi.subtract_mean = c.subtract_mean;
      job.besi.block_size = req.block_size;
      job.besi.codebook = besicovitch_codebook(c.group_size, c.direction_bits).data();
      const uint64_t bpv = besicovitch_bytes_per_vector(c, D);
      const uint64_t mean_bytes = c.subtract_mean ? 2 * D : 0;
      header_blocks = (unit_rows + req.block_size - 1) / req.block_size;
      job.unit_payload = header_blocks * (4 + mean_bytes) + unit_rows * bpv;
      reference_payload = unit_rows * bpv + header_blocks * mean_bytes;
      values_per_row = D / c.group_size;
      break;
    }
    default: {  // ggml block types
      job.kind = PeerKind::kGgml;
      switch (id) {
        case CodecId::kQ8_0: job.ggml_type = 0; break;
        case CodecId::kQ4_0: job.ggml_type = 1; break;
        case CodecId::kQ4_1: job.ggml_type = 2; break;
        case CodecId::kQ5_0: job.ggml_type = 3; break;
        case CodecId::kQ5_1: job.ggml_type = 4; break;
        default: job.ggml_type = 5; break;
      }
      job.n_rot = static_cast<size_t>(params[2] | (params[3] << 8));
      if (job.n_rot > kMaxGgmlChunkValues)
        throw Unsupported("codec '" + std::string(codec->name()) + "' with a Hadamard chunk of " +
                          std::to_string(job.n_rot) + " values does not run on backend 'cuda' (at "
                          "most " + std::to_string(kMaxGgmlChunkValues) + "); run it with "
                          "--backend cpu");
      job.unit_payload = unit_rows * ggml_bytes_per_vector(id, D);
      break;
    }
  }

  BatchResult res;
  // Q-preconditioning on the host with the CPU's own matmul (same bits): rows·L_h per (s, h).
  std::vector<float> xw;
  if (whiten) res.max_abs_whitened = whiten_batch(req, xw);
  const float* coded = whiten ? xw.data() : req.rows;

  PeerOutputs out;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (workspace_)
      workspace_->run(job, coded, out);
    else
      emulate_peer_batch(job, coded, out);
  }
  set_device_times(res, out.timings);
  if (cancel && cancel->load()) throw Cancelled("run cancelled");

  // A unit the device flagged: the CPU reference encoder of the lowest one raises the error the
  // CPU executor would raise (same message, same unit).
  for (size_t u = 0; u < units; ++u) {
    if (!out.flags[u]) continue;
    const UnitInfo info = unit_info(req, u, flags);
    const std::string where = unit_where(req, info);
    const std::vector<float> rows = unit_rows_of(coded, req, u, unit_rows);
    UnitInput in;
    in.rows = rows.data();
    in.n = unit_rows;
    in.dim = D;
    in.info = info;
    in.layer_scale = codec->layer_scale(req.rows, S * H * T * D);
    cpu_encode_unit_at(*codec, in, where);
    throw CudaError(where + ": the device flagged this unit (flags " +
                    std::to_string(out.flags[u]) + ") but the CPU reference encodes it");
  }

  res.layer_scale = out.layer_scale;
  res.units.resize(units);
  uint64_t header_total = 0;
  std::vector<std::vector<uint8_t>> headers(units);
  for (size_t u = 0; u < units; ++u) {
    headers[u] = unit_header(*codec, D, unit_info(req, u, flags), out.layer_scale,
                             header_blocks ? header_blocks : codec_rows, tail_rows);
    header_total += headers[u].size();
  }
  res.containers.reserve(header_total + out.payload.size());
  for (size_t u = 0; u < units; ++u) {
    UnitRecord& r = res.units[u];
    const UnitInfo info = unit_info(req, u, flags);
    r.sequence = info.sequence;
    r.kv_head = info.kv_head;
    r.offset = res.containers.size();
    r.header_bytes = headers[u].size();
    r.size = r.header_bytes + job.unit_payload;
    r.reported_bytes = job.unit_payload;
    r.reference_bytes = reference_payload ? reference_payload : job.unit_payload;
    r.tail_bytes = tail_bytes;
    r.codec_rows = codec_rows;
    r.n_block_rows = id == CodecId::kKivi ? T : unit_rows;
    res.containers.insert(res.containers.end(), headers[u].begin(), headers[u].end());
    const uint8_t* p = out.payload.data() + u * job.unit_payload;
    res.containers.insert(res.containers.end(), p, p + job.unit_payload);
    res.reported_bytes += r.reported_bytes;
    res.reference_bytes += r.reference_bytes;
    res.tail_bytes += r.tail_bytes;
    res.stats.clipped += out.clipped[u];
    res.stats.coded_values += codec_rows * values_per_row;
  }
  res.per_layer_stream_bytes = codec->per_layer_stream_bytes();
  res.decoded = decoded_tensor(req, std::move(out.decoded));
  if (whiten) {
    // Un-whiten every decoded row (all peer rows are coded rows) one row at a time, as the CPU.
    std::vector<float> tmp(D);
    for (size_t s = 0; s < S; ++s)
      for (size_t h = 0; h < H; ++h)
        for (size_t t = 0; t < T; ++t) {
          float* row = res.decoded.row(s, h, t);
          matmul_rows(row, 1, D, req.unwhiten + h * D * D, tmp.data());
          std::memcpy(row, tmp.data(), D * sizeof(float));
        }
  }
  if (req.measure) {
    std::lock_guard<std::mutex> lock(mutex_);
    res.head_errors = device_head_errors(metrics_.get(), req, res.decoded.data.data(),
                                         &res.device_metrics_ms);
  }
  return res;
}

AttentionResult CudaExecutor::attention(const AttentionRequest& req,
                                        const std::atomic<bool>* cancel) const {
  check_attention_request(req);
  if (cancel && cancel->load()) {
    AttentionResult empty;
    empty.units.assign(req.sequences * req.kv_heads, {});
    return empty;
  }
  std::lock_guard<std::mutex> lock(mutex_);
  return device_attention(metrics_.get(), req);
}

}  // namespace kvwb::codec::cuda
