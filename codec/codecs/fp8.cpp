// FP8 E4M3 with a per-(layer, stream) scale (codec-peers.md §4).
//
// Container contract (codec id 13; docs/container-peers.md):
//   header: block_size 1, n_blocks = n rows, n_tail_rows 0.
//   parameter block (4 bytes): f32 scale (finite, > 0): the per-(layer, stream) scale the unit was
//     encoded with (UnitInput::layer_scale), so decode is self-contained. It is not counted in the
//     unit's reported bytes; the codec's per_layer_stream_bytes() = 4 counts it once per
//     (layer, stream).
//   payload: n·D bytes, row-major in token order; byte = E4M3 code of x / scale (RNE, saturating
//     at ±448). Decode: value(code) · scale. Codes 0x7F / 0xFF (NaN) are a format error.
#include "codec/codecs/fp8.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "codec/codec_factories.h"
#include "base/errors.h"
#include "codec/params.h"
#include "codec/codecs/peer_common.h"

namespace kvwb::codec {

namespace {

class Fp8Codec final : public Codec {
 public:
  Fp8Codec(size_t head_dim, bool absmax) : d_(head_dim), absmax_(absmax) {
    for (int c = 0; c < 256; ++c) table_[c] = e4m3_to_f32(static_cast<uint8_t>(c));
  }
  CodecId id() const override { return CodecId::kFp8E4m3; }
  uint64_t per_layer_stream_bytes() const override { return 4; }
  float layer_scale(const float* values, size_t count) const override {
    if (!absmax_) return 1.0f;
    float mx = 0;
    for (size_t i = 0; i < count; ++i) mx = std::max(mx, std::fabs(values[i]));
    return fp8_absmax_scale(mx);
  }

  EncodedUnit encode(const UnitInput& in) const override {
    peer::check_input(in, d_, name());
    const float scale = in.layer_scale;
    if (!std::isfinite(scale) || !(scale > 0.0f))
      throw InvalidArgument("fp8_e4m3: layer scale must be finite and > 0, got " +
                            std::to_string(scale) + " (" + peer::describe_unit(in.info) + ")");
    uint8_t params[4];
    std::memcpy(params, &scale, 4);
    const uint64_t payload = static_cast<uint64_t>(in.n) * d_;
    EncodedUnit e =
        peer::start_unit(peer::make_header(id(), d_, in.info, in.n, 0), params, payload);
    e.bytes.resize(e.header_bytes + payload);
    uint8_t* out = e.bytes.data() + e.header_bytes;
    uint64_t saturated = 0;
    for (uint64_t i = 0; i < payload; ++i) {
      bool sat = false;
      out[i] = f32_to_e4m3(in.rows[i] / scale, &sat);
      saturated += sat ? 1 : 0;
    }
    peer::finish_unit(e, payload, 0, in.n);
    e.stats.clipped = saturated;
    e.stats.coded_values = payload;
    return e;
  }

  DecodedUnit decode(std::span<const uint8_t> bytes, const std::string& source) const override {
    const peer::PeerContainer c =
        peer::open_tailless_container(bytes, source, CodecId::kFp8E4m3, 4);
    float scale = 0.0f;
    std::memcpy(&scale, c.params.data(), 4);
    if (!std::isfinite(scale) || !(scale > 0.0f))
      throw FormatError(source + ": fp8_e4m3 scale " + std::to_string(scale) +
                        " in the parameter block is not finite and > 0");
    const size_t d = c.header.head_dim;
    const size_t n = c.header.n_blocks;
    peer::expect_payload_size(c, static_cast<uint64_t>(n) * d, source);
    DecodedUnit out;
    out.header = c.header;
    out.rows.resize(n * d);
    out.n_block_rows = n;
    for (size_t i = 0; i < n * d; ++i) {
      const uint8_t code = c.payload[i];
      if ((code & 0x7F) == 0x7F)
        throw FormatError(source + ": fp8_e4m3 NaN code 0x" + (code == 0x7F ? "7F" : "FF") +
                          " at row " + std::to_string(i / d) + ", column " + std::to_string(i % d));
      out.rows[i] = table_[code] * scale;
    }
    return out;
  }

 private:
  size_t d_;
  bool absmax_;  // scale_mode = absmax (else unit: 1.0)
  float table_[256];
};

}  // namespace

namespace detail {

const std::vector<ParamSpec>& fp8_params() {
  static const std::vector<ParamSpec> specs = {
      {"scale_mode",
       ParamType::kChoice,
       "unit",
       0,
       0,
       {"unit", "absmax"},
       "per-(layer, stream) scale chosen by the runner: unit (1.0, vLLM without calibration) or "
       "absmax (max|x|/448 over the layer-stream)"}};
  return specs;
}

std::unique_ptr<Codec> make_fp8(const ParamMap& p, size_t head_dim) {
  const ParamReader reader("fp8_e4m3", fp8_params(), p);
  return std::make_unique<Fp8Codec>(head_dim, reader.get_string("scale_mode") == "absmax");
}

}  // namespace detail
}  // namespace kvwb::codec
