// TurboQuant turbo2 / turbo3 / turbo4 (codec-peers.md §1).
//
// Container contract (codec ids 3 / 4 / 5; docs/container-peers.md):
//   header: block_size 1, n_blocks = n rows (head vectors), n_tail_rows 0.
//   parameter block: empty (params_bytes = 0); everything follows from the codec id and D.
//   payload: for each row in token order, for each group g = 0 … ceil(D/128)−1 (values
//     128g … 128g+127 of the row, zero-padded past D), one block of 34 / 50 / 68 bytes as laid out
//     in codec/turboquant.h. Payload bytes = n · ceil(D/128) · block bytes = reported bytes.
//   Decode reconstructs each group in the original domain, x̂ = s1 ⊙ H(s2 ⊙ ŷ) / √128, and drops
//   the padding coordinates.
#include "codec/codecs/turboquant.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <vector>

#include "codec/codec_factories.h"
#include "base/errors.h"
#include "codec/format/half.h"
#include "codec/params.h"
#include "codec/codecs/peer_common.h"
#include "codec/kernels/turbo.h"

namespace kvwb::codec {

namespace {

constexpr kernels::TurboSigns kSigns1 = kernels::turbo_signs_table(1);
constexpr kernels::TurboSigns kSigns2 = kernels::turbo_signs_table(2);
constexpr kernels::TurboTables kTurbo2 = kernels::turbo_tables(2);
constexpr kernels::TurboTables kTurbo3 = kernels::turbo_tables(3);
constexpr kernels::TurboTables kTurbo4 = kernels::turbo_tables(4);

const kernels::TurboTables& turbo_type(CodecId id) {
  switch (id) {
    case CodecId::kTurbo2:
      return kTurbo2;
    case CodecId::kTurbo3:
      return kTurbo3;
    case CodecId::kTurbo4:
      return kTurbo4;
    default:
      break;
  }
  throw InvalidArgument("codec id " + std::to_string(static_cast<int>(id)) +
                        " is not a TurboQuant type");
}

float encode_group_core(const kernels::TurboTables& t, const float* x, uint8_t* block, float* y,
                        simd::Path path = simd::Path::kScalar) {
  return simd::turbo_encode_group(path, t, kSigns1.value, kSigns2.value, x, block, y);
}

void decode_group_core(const kernels::TurboTables& t, const uint8_t* block, float norm, float* x,
                       simd::Path path = simd::Path::kScalar) {
  simd::turbo_decode_group(path, t, kSigns1.value, kSigns2.value, block, norm, x);
}

size_t groups_of(size_t d) { return (d + kTurboGroup - 1) / kTurboGroup; }

class TurboCodec final : public Codec {
 public:
  TurboCodec(CodecId id, size_t head_dim) : id_(id), type_(turbo_type(id)), d_(head_dim) {}
  CodecId id() const override { return id_; }

  EncodedUnit encode(const UnitInput& in) const override {
    peer::check_shape(in, d_, name());
    const size_t groups = groups_of(d_);
    const uint64_t payload = static_cast<uint64_t>(in.n) * groups * type_.block_bytes;
    EncodedUnit e = peer::start_unit(peer::make_header(id_, d_, in.info, in.n, 0), {}, payload);
    const simd::Path path = simd::active_path();
    if (d_ % kTurboGroup == 0) {
      // Whole groups: every group of the unit is 128 consecutive input values, coded in chunks
      // (peer::append_in_chunks). A NaN or infinite input makes its group's norm NaN or infinite
      // (the sum of squares is), so norms all within the fp16 range mean the input was finite:
      // the input scan of check_input and the reference loop run only when one is not.
      const size_t bb = type_.block_bytes;
      std::array<float, kChunkGroups> norms{};
      bool in_range = true;
      peer::append_in_chunks(e.bytes, payload, kChunkGroups * bb, [&](uint8_t* out, size_t at, size_t k) {
        if (!in_range) return;
        const size_t count = k / bb;
        simd::turbo_encode_groups(path, type_, kSigns1.value, kSigns2.value,
                                  in.rows + at / bb * kTurboGroup, count, out, norms.data());
        for (size_t i = 0; i < count; ++i) {
          in_range &= std::fabs(norms[i]) <= kFp16Max;
          peer::put_u16(out + i * bb, f32_to_f16_bits(norms[i]));
        }
      });
      if (in_range) {
        peer::finish_unit(e, payload, 0, in.n);
        e.stats.coded_values = static_cast<uint64_t>(in.n) * d_;
        return e;
      }
      e.bytes.resize(e.header_bytes);  // the reference loop below raises the error
    }
    peer::check_input(in, d_, name());
    e.bytes.resize(e.header_bytes + payload);
    uint8_t* out = e.bytes.data() + e.header_bytes;
    std::array<float, kTurboGroup> x{};
    std::array<float, kTurboGroup> y{};
    if (d_ % kTurboGroup == 0) {
      // Whole groups: every group of the unit is 128 consecutive input values.
      std::vector<float> norms(in.n * groups);
      simd::turbo_encode_groups(path, type_, kSigns1.value, kSigns2.value, in.rows, norms.size(),
                                out, norms.data());
      for (size_t i = 0; i < norms.size(); ++i)
        peer::put_u16(out + i * type_.block_bytes,
                      peer::f16_field(norms[i], name(), "norm", i / groups, in.info));
    } else {
      for (size_t row = 0; row < in.n; ++row) {
        const float* src = in.rows + row * d_;
        for (size_t g = 0; g < groups; ++g) {
          const size_t lo = g * kTurboGroup;
          const size_t cnt = std::min(kTurboGroup, d_ - lo);
          std::memcpy(x.data(), src + lo, cnt * sizeof(float));
          if (cnt < kTurboGroup) std::fill(x.begin() + cnt, x.end(), 0.0f);
          const float norm = encode_group_core(type_, x.data(), out, y.data(), path);
          peer::put_u16(out, peer::f16_field(norm, name(), "norm", row, in.info));
          out += type_.block_bytes;
        }
      }
    }
    peer::finish_unit(e, payload, 0, in.n);
    e.stats.coded_values = static_cast<uint64_t>(in.n) * d_;
    return e;
  }

  DecodedUnit decode(std::span<const uint8_t> bytes, const std::string& source) const override {
    const peer::PeerContainer c = peer::open_tailless_container(bytes, source, id_, 0);
    const size_t d = c.header.head_dim;
    const size_t n = c.header.n_blocks;
    const size_t groups = groups_of(d);
    peer::expect_payload_size(c, static_cast<uint64_t>(n) * groups * type_.block_bytes, source);
    DecodedUnit out;
    out.header = c.header;
    out.n_block_rows = n;
    const uint8_t* p = c.payload.data();
    std::array<float, kTurboGroup> x{};
    const simd::Path path = simd::active_path();
    if (d % kTurboGroup == 0) {
      // Whole groups straight into the rows, in chunks (peer::append_in_chunks).
      const size_t bb = type_.block_bytes;
      peer::append_in_chunks(out.rows, n * d, kDecodeChunkGroups * kTurboGroup, [&](float* dst, size_t at, size_t k) {
        const uint8_t* b = p + at / kTurboGroup * bb;
        for (size_t i = 0; i < k / kTurboGroup; ++i, b += bb) {
          const float norm = peer::f16_read(b, source, "turbo norm", (at + i * kTurboGroup) / d);
          decode_group_core(type_, b, norm, dst + i * kTurboGroup, path);
        }
      });
      return out;
    }
    out.rows.resize(n * d);
    for (size_t row = 0; row < n; ++row) {
      for (size_t g = 0; g < groups; ++g) {
        const float norm = peer::f16_read(p, source, "turbo norm", row);
        decode_group_core(type_, p, norm, x.data(), path);
        const size_t lo = g * kTurboGroup;
        const size_t cnt = std::min(kTurboGroup, d - lo);
        std::memcpy(out.rows.data() + row * d + lo, x.data(), cnt * sizeof(float));
        p += type_.block_bytes;
      }
    }
    return out;
  }

 private:
  // Groups per chunk of the whole-group encode (about 6.5 KiB of turbo3 blocks).
  static constexpr size_t kChunkGroups = 128;
  // Groups per chunk of the whole-group decode: 8 KiB of f32, so the vector's zero fill of each
  // chunk stays in L1 (64 KiB chunks spent about 10 % of a turbo3 encode + decode in memset).
  static constexpr size_t kDecodeChunkGroups = 16;

  CodecId id_;
  const kernels::TurboTables& type_;
  size_t d_;
};

}  // namespace

std::span<const float, kTurboGroup> turbo_signs(int which) {
  if (which == 1) return std::span<const float, kTurboGroup>(kSigns1.value);
  if (which == 2) return std::span<const float, kTurboGroup>(kSigns2.value);
  throw InvalidArgument("turbo sign table must be 1 or 2, got " + std::to_string(which));
}

unsigned turbo_bits(CodecId id) { return turbo_type(id).bits; }
size_t turbo_block_bytes(CodecId id) { return turbo_type(id).block_bytes; }
uint64_t turbo_bytes_per_vector(CodecId id, size_t head_dim) {
  return static_cast<uint64_t>(groups_of(head_dim)) * turbo_type(id).block_bytes;
}
std::span<const float> turbo_centroids(CodecId id) {
  const kernels::TurboTables& t = turbo_type(id);
  return {t.centroid, size_t{1} << t.bits};
}
std::span<const float> turbo_midpoints(CodecId id) {
  const kernels::TurboTables& t = turbo_type(id);
  return {t.midpoint, (size_t{1} << t.bits) - 1};
}

void turbo_encode_group(CodecId id, const float* x, uint8_t* block) {
  const kernels::TurboTables& t = turbo_type(id);
  std::array<float, kTurboGroup> y{};
  const float norm = encode_group_core(t, x, block, y.data());
  peer::put_u16(block, f16_checked(norm, "turbo norm"));
}

void turbo_decode_group(CodecId id, const uint8_t* block, float* x) {
  const kernels::TurboTables& t = turbo_type(id);
  decode_group_core(t, block, peer::f16_read(block, "turbo block", "turbo norm", 0), x);
}

namespace detail {

const std::vector<ParamSpec>& turbo_params() {
  static const std::vector<ParamSpec>
      specs;  // §1 has no codec parameters (turbo_policy is run-level)
  return specs;
}

std::unique_ptr<Codec> make_turbo(CodecId id, const ParamMap& p, size_t head_dim) {
  const ParamReader reader(std::string(codec_name(id)), turbo_params(), p);  // refuses unknown keys
  (void)reader;
  (void)turbo_type(id);
  return std::make_unique<TurboCodec>(id, head_dim);
}

}  // namespace detail
}  // namespace kvwb::codec
