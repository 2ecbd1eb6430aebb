// KIVI-style integer quantisation (codec-peers.md §3).
//
// Container contract (codec id 12; docs/container-peers.md):
//   header: stream selects the layout (0 K per channel, 1 V per token); block_rows must be
//     per_head; block_size 1; n_blocks = quantised prefix rows (T_K or T_V); n_tail_rows = fp16
//     residual rows (T − n_blocks). T = n_blocks + n_tail_rows.
//   parameter block (8 bytes): u8 bits (2 | 4), u8 reserved = 0, u16 group G (32 | 128),
//     u32 residual R (multiple of G). n_blocks must equal what T, G and R imply.
//   payload: the quantised groups, then the residual rows.
//     K: groups channel-major: for channel j = 0 … D−1, for token group a = 0 … T_K/G − 1, the
//        group K[aG … aG+G−1, j];
//     V: groups token-major: for token t = 0 … T_V−1, for c = 0 … D/G_V − 1 (G_V = min(G, D)),
//        the group V[t, c·G_V … c·G_V+G_V−1];
//     each group: codes packed LSB-first at b bits (ceil(n·b/8) bytes), fp16 Δ_q, fp16 z_q;
//     then rows n_blocks … T−1 as fp16, row-major (2 bytes per value).
//   Payload bytes = bytes_K / bytes_V of §3.5 = reported bytes; tail_bytes = the fp16 rows.
#include "codec/codecs/kivi.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "codec/format/bitpack.h"
#include "codec/codec_factories.h"
#include "base/errors.h"
#include "codec/format/half.h"
#include "codec/params.h"
#include "codec/codecs/peer_common.h"
#include "codec/kernels/kivi.h"

namespace kvwb::codec {

namespace {

constexpr size_t kMaxGroup = kernels::kKiviMaxGroup;

// Steps of §3.3 for one group; codes into `codes`, (Δ_q, z_q) bits through the fp16 callback, which
// range-checks them.
template <class ToF16>
uint32_t quantize_group(const float* x, size_t n, size_t stride, unsigned bits, uint16_t* codes,
                        uint16_t& dq_bits, uint16_t& zq_bits, ToF16 to_f16) {
  float lo = 0.0f;
  float hi = 0.0f;
  kernels::kivi_group_range(x, n, stride, lo, hi);
  dq_bits = to_f16(kernels::kivi_delta(lo, hi, bits), "scale delta");
  zq_bits = to_f16(lo, "zero point (group minimum)");
  return kernels::kivi_quantize_codes(x, n, stride, bits, f16_bits_to_f32(dq_bits),
                                      f16_bits_to_f32(zq_bits), codes);
}

void dequantize_group(const uint8_t* in, size_t n, size_t stride, unsigned bits, float dq, float zq,
                      float* x) {
  uint16_t codes[kMaxGroup];
  unpack_bits(in, n, bits, codes);
  kernels::kivi_dequantize_codes(codes, n, stride, dq, zq, x);
}

struct KiviConfig {
  unsigned bits = 2;
  size_t group = 32;
  uint64_t residual = 128;
};

class KiviCodec final : public Codec {
 public:
  KiviCodec(size_t head_dim, KiviConfig cfg) : d_(head_dim), cfg_(cfg) {}
  CodecId id() const override { return CodecId::kKivi; }

  EncodedUnit encode(const UnitInput& in) const override {
    peer::check_input(in, d_, name());
    if (in.info.block_rows != BlockRows::kPerHead)
      throw Unsupported(
          "kivi works per (sequence, layer, kv head, stream); block_rows = "
          "pooled_heads is not supported (" +
          peer::describe_unit(in.info) + ")");
    const Stream stream = in.info.stream;
    const KiviLayout lay = kivi_layout(stream, in.n, d_, cfg_.bits, cfg_.group, cfg_.residual);
    const uint8_t params[8] = {static_cast<uint8_t>(cfg_.bits),
                               0,
                               static_cast<uint8_t>(cfg_.group & 0xFF),
                               static_cast<uint8_t>(cfg_.group >> 8),
                               static_cast<uint8_t>(cfg_.residual & 0xFF),
                               static_cast<uint8_t>((cfg_.residual >> 8) & 0xFF),
                               static_cast<uint8_t>((cfg_.residual >> 16) & 0xFF),
                               static_cast<uint8_t>((cfg_.residual >> 24) & 0xFF)};
    EncodedUnit e = peer::start_unit(
        peer::make_header(CodecId::kKivi, d_, in.info, lay.quant_rows, lay.tail_rows), params,
        lay.total_bytes());
    std::vector<uint8_t>& out = e.bytes;
    uint16_t codes[kMaxGroup];
    uint64_t clipped = 0;
    const size_t gv = lay.group_values;
    auto emit_group = [&](const float* x, size_t stride, size_t row) {
      uint16_t dq = 0;
      uint16_t zq = 0;
      clipped +=
          quantize_group(x, gv, stride, cfg_.bits, codes, dq, zq, [&](float v, const char* field) {
            return peer::f16_field(v, "kivi", field, row, in.info);
          });
      pack_bits(std::span<const uint16_t>(codes, gv), cfg_.bits, out);
      out.push_back(static_cast<uint8_t>(dq & 0xFF));
      out.push_back(static_cast<uint8_t>(dq >> 8));
      out.push_back(static_cast<uint8_t>(zq & 0xFF));
      out.push_back(static_cast<uint8_t>(zq >> 8));
    };
    if (stream == Stream::kK) {
      const size_t n_tok_groups = lay.quant_rows / cfg_.group;
      for (size_t j = 0; j < d_; ++j)
        for (size_t a = 0; a < n_tok_groups; ++a)
          emit_group(in.rows + a * cfg_.group * d_ + j, d_, a * cfg_.group);
    } else {
      for (size_t t = 0; t < lay.quant_rows; ++t)
        for (size_t c = 0; c < d_ / gv; ++c) emit_group(in.rows + t * d_ + c * gv, 1, t);
    }
    for (size_t t = lay.quant_rows; t < in.n; ++t)
      for (size_t j = 0; j < d_; ++j) {
        const uint16_t h =
            peer::f16_field(in.rows[t * d_ + j], "kivi", "residual value", t, in.info);
        out.push_back(static_cast<uint8_t>(h & 0xFF));
        out.push_back(static_cast<uint8_t>(h >> 8));
      }
    peer::finish_unit(e, lay.total_bytes(), lay.tail_bytes, lay.quant_rows);
    e.stats.clipped = clipped;
    e.stats.coded_values = lay.quant_rows * d_;
    return e;
  }

  DecodedUnit decode(std::span<const uint8_t> bytes, const std::string& source) const override {
    const peer::PeerContainer c = peer::open_container(bytes, source, CodecId::kKivi);
    peer::expect_params_size(c, 8, source);
    const ContainerHeader& h = c.header;
    if (h.block_rows != BlockRows::kPerHead)
      throw FormatError(source + ": kivi container must be per_head (block_rows 0)");
    KiviConfig cfg;
    cfg.bits = c.params[0];
    cfg.group = static_cast<size_t>(c.params[2] | (c.params[3] << 8));
    cfg.residual = static_cast<uint64_t>(c.params[4]) | (static_cast<uint64_t>(c.params[5]) << 8) |
                   (static_cast<uint64_t>(c.params[6]) << 16) |
                   (static_cast<uint64_t>(c.params[7]) << 24);
    if ((cfg.bits != 2 && cfg.bits != 4) || c.params[1] != 0 ||
        (cfg.group != 32 && cfg.group != 128) || cfg.residual % cfg.group != 0)
      throw FormatError(source + ": kivi parameter block is invalid (bits " +
                        std::to_string(cfg.bits) + ", group " + std::to_string(cfg.group) +
                        ", residual " + std::to_string(cfg.residual) +
                        "; expected bits 2|4, group 32|128, residual a multiple of group)");
    const size_t d = h.head_dim;
    const uint64_t tokens = static_cast<uint64_t>(h.n_blocks) + h.n_tail_rows;
    KiviLayout lay;
    try {
      lay = kivi_layout(h.stream, tokens, d, cfg.bits, cfg.group, cfg.residual);
    } catch (const Unsupported& ex) {
      throw FormatError(source + ": " + ex.what());
    }
    if (lay.quant_rows != h.n_blocks)
      throw FormatError(source + ": kivi container has " + std::to_string(h.n_blocks) +
                        " quantised rows, but T = " + std::to_string(tokens) + " with group " +
                        std::to_string(cfg.group) + " and residual " +
                        std::to_string(cfg.residual) + " implies " +
                        std::to_string(lay.quant_rows));
    peer::expect_payload_size(c, lay.total_bytes(), source);
    DecodedUnit out;
    out.header = h;
    out.rows.resize(tokens * d);
    out.n_block_rows = tokens;
    const uint8_t* p = c.payload.data();
    const size_t gv = lay.group_values;
    const size_t code_bytes = packed_bytes(gv, cfg.bits);
    auto read_group = [&](float* x, size_t stride, size_t row) {
      const float dq = peer::f16_read(p + code_bytes, source, "kivi scale delta", row);
      const float zq = peer::f16_read(p + code_bytes + 2, source, "kivi zero point", row);
      dequantize_group(p, gv, stride, cfg.bits, dq, zq, x);
      p += lay.group_bytes;
    };
    if (h.stream == Stream::kK) {
      const size_t n_tok_groups = lay.quant_rows / cfg.group;
      for (size_t j = 0; j < d; ++j)
        for (size_t a = 0; a < n_tok_groups; ++a)
          read_group(out.rows.data() + a * cfg.group * d + j, d, a * cfg.group);
    } else {
      for (size_t t = 0; t < lay.quant_rows; ++t)
        for (size_t cc = 0; cc < d / gv; ++cc) read_group(out.rows.data() + t * d + cc * gv, 1, t);
    }
    for (size_t t = lay.quant_rows; t < tokens; ++t)
      for (size_t j = 0; j < d; ++j) {
        out.rows[t * d + j] = peer::f16_read(p, source, "kivi residual value", t);
        p += 2;
      }
    return out;
  }

 private:
  size_t d_;
  KiviConfig cfg_;
};

}  // namespace

KiviLayout kivi_layout(Stream stream, uint64_t tokens, size_t head_dim, unsigned bits, size_t group,
                       uint64_t residual) {
  if ((bits != 2 && bits != 4) || (group != 32 && group != 128) || residual % group != 0)
    throw InvalidArgument(
        "kivi layout: bits must be 2|4, group 32|128, residual a multiple of "
        "group; got bits " +
        std::to_string(bits) + ", group " + std::to_string(group) + ", residual " +
        std::to_string(residual));
  KiviLayout lay;
  const uint64_t avail = tokens > residual ? tokens - residual : 0;
  if (stream == Stream::kK) {
    lay.quant_rows = group * (avail / group);
    lay.group_values = group;
    lay.groups = (lay.quant_rows / group) * head_dim;
  } else {
    const size_t gv = std::min(group, head_dim);
    if (head_dim % gv != 0)
      throw Unsupported("kivi: V groups of G_V = min(G, D) = " + std::to_string(gv) +
                        " channels need D mod G_V = 0, got D = " + std::to_string(head_dim));
    lay.quant_rows = avail;
    lay.group_values = gv;
    lay.groups = avail * (head_dim / gv);
  }
  lay.group_bytes = packed_bytes(lay.group_values, bits) + 4;
  lay.quant_bytes = lay.groups * lay.group_bytes;
  lay.tail_rows = tokens - lay.quant_rows;
  lay.tail_bytes = lay.tail_rows * head_dim * 2;
  return lay;
}

uint32_t kivi_quantize_group(const float* x, size_t n, size_t stride, unsigned bits, uint8_t* out) {
  if (n == 0 || n > kMaxGroup || (bits != 2 && bits != 4))
    throw InvalidArgument("kivi group: n must be 1..128 and bits 2|4");
  uint16_t codes[kMaxGroup];
  uint16_t dq = 0;
  uint16_t zq = 0;
  const uint32_t clipped =
      quantize_group(x, n, stride, bits, codes, dq, zq,
                     [](float v, const char* field) { return f16_checked(v, field); });
  std::vector<uint8_t> packed;
  pack_bits(std::span<const uint16_t>(codes, n), bits, packed);
  std::copy(packed.begin(), packed.end(), out);
  peer::put_u16(out + packed.size(), dq);
  peer::put_u16(out + packed.size() + 2, zq);
  return clipped;
}

void kivi_dequantize_group(const uint8_t* in, size_t n, size_t stride, unsigned bits, float* x) {
  if (n == 0 || n > kMaxGroup || (bits != 2 && bits != 4))
    throw InvalidArgument("kivi group: n must be 1..128 and bits 2|4");
  const size_t cb = packed_bytes(n, bits);
  dequantize_group(in, n, stride, bits,
                   f16_bits_to_f32(static_cast<uint16_t>(in[cb] | (in[cb + 1] << 8))),
                   f16_bits_to_f32(static_cast<uint16_t>(in[cb + 2] | (in[cb + 3] << 8))), x);
}

namespace detail {

const std::vector<ParamSpec>& kivi_params() {
  static const std::vector<ParamSpec> specs = {
      {"bits",
       ParamType::kChoice,
       "2",
       0,
       0,
       {"2", "4"},
       "bits per code b: 2 or 4 (codec-peers.md §3.1)"},
      {"group",
       ParamType::kChoice,
       "32",
       0,
       0,
       {"32", "128"},
       "group size G: 32 or 128 (K: tokens per channel group; V: channels per token group)"},
      {"residual",
       ParamType::kInt,
       "128",
       0,
       16777216,
       {},
       "recent tokens R kept in fp16 (a multiple of G, >= 0)"}};
  return specs;
}

std::unique_ptr<Codec> make_kivi(const ParamMap& p, size_t head_dim) {
  const ParamReader reader("kivi", kivi_params(), p);
  KiviConfig cfg;
  const long long bits = reader.get_string("bits") == "4" ? 4 : 2;         // a validated choice
  const long long group = reader.get_string("group") == "128" ? 128 : 32;  // a validated choice
  const long long residual = reader.get_int("residual");
  if (residual % group != 0)
    reader.fail("residual", "must be a multiple of group (" + std::to_string(group) + "), got " +
                                std::to_string(residual));
  cfg.bits = static_cast<unsigned>(bits);
  cfg.group = static_cast<size_t>(group);
  cfg.residual = static_cast<uint64_t>(residual);
  const size_t gv = std::min(cfg.group, head_dim);
  if (head_dim % gv != 0)
    throw Unsupported("kivi: V groups of G_V = min(G, D) = " + std::to_string(gv) +
                      " channels need D mod G_V = 0, got D = " + std::to_string(head_dim));
  return std::make_unique<KiviCodec>(head_dim, cfg);
}

}  // namespace detail
}  // namespace kvwb::codec
