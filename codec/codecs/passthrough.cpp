// bf16 passthrough (codec-peers.md §5).
//
// Container contract (codec id 14; docs/container-peers.md):
//   header: block_size 1, n_blocks = n rows, n_tail_rows 0.
//   parameter block: empty (params_bytes = 0).
//   payload: n·D bf16 values (u16 little-endian, RNE of the f32 input), row-major in token order;
//     2 bytes per value = reported bytes. A value that would round to infinity is an Fp16Range
//     error (bf16_checked).
#include "codec/codecs/passthrough.h"

#include "codec/codec_factories.h"
#include "base/errors.h"
#include "codec/format/half.h"
#include "codec/params.h"
#include "codec/codecs/peer_common.h"
#include "codec/simd/rows.h"

namespace kvwb::codec {

namespace {

class Bf16Codec final : public Codec {
 public:
  explicit Bf16Codec(size_t head_dim) : d_(head_dim) {}
  CodecId id() const override { return CodecId::kBf16; }

  EncodedUnit encode(const UnitInput& in) const override {
    peer::check_input(in, d_, name());
    const uint64_t values = static_cast<uint64_t>(in.n) * d_;
    const uint64_t payload = bf16_bytes_per_vector(d_) * in.n;
    EncodedUnit e = peer::start_unit(peer::make_header(id(), d_, in.info, in.n, 0), {}, payload);
    e.bytes.resize(e.header_bytes + payload);
    uint8_t* out = e.bytes.data() + e.header_bytes;
    const size_t at = simd::f32_to_bf16_row(simd::active_path(), in.rows, values, out);
    if (at < values) {  // rounds to infinity: refuse, naming the place
      const std::string what = "bf16 value (row " + std::to_string(at / d_) + ", column " +
                               std::to_string(at % d_) + ", " + peer::describe_unit(in.info) + ")";
      (void)bf16_checked(in.rows[at], what.c_str());
      throw Fp16Range(what + ": rounds to infinity in bf16");  // bf16_checked threw already
    }
    peer::finish_unit(e, payload, 0, in.n);
    e.stats.coded_values = values;
    return e;
  }

  DecodedUnit decode(std::span<const uint8_t> bytes, const std::string& source) const override {
    const peer::PeerContainer c = peer::open_tailless_container(bytes, source, CodecId::kBf16, 0);
    const size_t d = c.header.head_dim;
    const size_t n = c.header.n_blocks;
    peer::expect_payload_size(c, bf16_bytes_per_vector(d) * n, source);
    DecodedUnit out;
    out.header = c.header;
    out.rows.resize(n * d);
    out.n_block_rows = n;
    const uint8_t* p = c.payload.data();
    const size_t at = simd::bf16_to_f32_row(simd::active_path(), p, n * d, out.rows.data());
    if (at < n * d)
      throw FormatError(source + ": non-finite bf16 value at row " + std::to_string(at / d) +
                        ", column " + std::to_string(at % d));
    return out;
  }

 private:
  size_t d_;
};

}  // namespace

namespace detail {

const std::vector<ParamSpec>& bf16_params() {
  static const std::vector<ParamSpec> specs;  // §5 has no parameters
  return specs;
}

std::unique_ptr<Codec> make_bf16(const ParamMap& p, size_t head_dim) {
  const ParamReader reader("bf16", bf16_params(), p);  // refuses unknown keys
  (void)reader;
  return std::make_unique<Bf16Codec>(head_dim);
}

}  // namespace detail
}  // namespace kvwb::codec
