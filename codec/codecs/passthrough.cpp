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
    // The conversion stops at the first NaN or infinite result, so the input scan of check_input
    // is needed only when it stops (and raises NonFiniteInput first, as it would have).
    peer::check_shape(in, d_, name());
    const uint64_t values = static_cast<uint64_t>(in.n) * d_;
    const uint64_t payload = bf16_bytes_per_vector(d_) * in.n;
    EncodedUnit e = peer::start_unit(peer::make_header(id(), d_, in.info, in.n, 0), {}, payload);
    const simd::Path path = simd::active_path();
    size_t at = values;
    peer::append_in_chunks(e.bytes, payload, kChunkValues * 2, [&](uint8_t* out, size_t b, size_t k) {
      if (at < values) return;
      const size_t i = simd::f32_to_bf16_row(path, in.rows + b / 2, k / 2, out);
      if (i < k / 2) at = b / 2 + i;
    });
    if (at < values) {  // non-finite input, or rounds to infinity: refuse, naming the place
      peer::check_input(in, d_, name());
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
    out.n_block_rows = n;
    const uint8_t* p = c.payload.data();
    const simd::Path path = simd::active_path();
    peer::append_in_chunks(out.rows, n * d, kChunkValues, [&](float* x, size_t b, size_t k) {
      const size_t i = simd::bf16_to_f32_row(path, p + 2 * b, k, x);
      if (i < k)
        throw FormatError(source + ": non-finite bf16 value at row " + std::to_string((b + i) / d) +
                          ", column " + std::to_string((b + i) % d));
    });
    return out;
  }

 private:
  // Values per chunk (peer::append_in_chunks): 16 KiB of bf16, 32 KiB of f32.
  static constexpr size_t kChunkValues = 8192;
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
