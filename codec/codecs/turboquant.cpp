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

#include "codec/codec_factories.h"
#include "base/errors.h"
#include "codec/format/half.h"
#include "codec/params.h"
#include "codec/codecs/peer_common.h"
#include "codec/math/wht.h"

namespace kvwb::codec {

namespace {

constexpr float kInvSqrt128 = 0.08838834764831845f;

// §1.3, exactly as listed (32 per row, '-' = −1).
constexpr char kS1[] =
    "-++--+-+--+++++++-+-+--+++-++---"
    "-++-++-+-++--+-++++-----+-++++-+"
    "--+---+---+---+++--+++--++-++-+-"
    "-++-+-+-++++-+-++-++-----++-++-+";
constexpr char kS2[] =
    "++++-++-+---+---++--+-+-+--+-+++"
    "++---+------+++-+-+++--+------++"
    "+-+----+-+-+--++-+-++-+----+--+-"
    "+-+++--+-+-++--+-+-++-+-+-----+-";
static_assert(sizeof(kS1) == kTurboGroup + 1 && sizeof(kS2) == kTurboGroup + 1);

constexpr std::array<float, kTurboGroup> parse_signs(const char* s) {
  std::array<float, kTurboGroup> out{};
  for (size_t j = 0; j < kTurboGroup; ++j) out[j] = s[j] == '-' ? -1.0f : 1.0f;
  return out;
}
constexpr std::array<float, kTurboGroup> kSigns1 = parse_signs(kS1);
constexpr std::array<float, kTurboGroup> kSigns2 = parse_signs(kS2);

// §1.4, f32 values as written.
constexpr float kC2[] = {-0.133462f, -0.039994f, 0.039994f, 0.133462f};
constexpr float kM2[] = {-0.086728f, 0.0f, 0.086728f};
constexpr float kC3[] = {-0.190685f, -0.117832f, -0.065717f, -0.021460f,
                         0.021460f,  0.065717f,  0.117832f,  0.190685f};
constexpr float kM3[] = {-0.154259f, -0.091775f, -0.043589f, 0.0f, 0.043589f, 0.091775f, 0.154259f};
constexpr float kC4[] = {-0.173926f, -0.117195f, -0.089527f, -0.068756f, -0.051262f, -0.035597f,
                         -0.020989f, -0.006938f, 0.006938f,  0.020989f,  0.035597f,  0.051262f,
                         0.068756f,  0.089527f,  0.117195f,  0.173926f};
constexpr float kM4[] = {-0.145560f, -0.103361f, -0.079142f, -0.060009f, -0.043430f,
                         -0.028293f, -0.013963f, 0.0f,       0.013963f,  0.028293f,
                         0.043430f,  0.060009f,  0.079142f,  0.103361f,  0.145560f};

struct TurboType {
  unsigned bits;
  size_t block_bytes;
  std::span<const float> centroids;
  std::span<const float> midpoints;
};

const TurboType& turbo_type(CodecId id) {
  static const TurboType t2{2, 34, kC2, kM2};
  static const TurboType t3{3, 50, kC3, kM3};
  static const TurboType t4{4, 68, kC4, kM4};
  switch (id) {
    case CodecId::kTurbo2:
      return t2;
    case CodecId::kTurbo3:
      return t3;
    case CodecId::kTurbo4:
      return t4;
    default:
      break;
  }
  throw InvalidArgument("codec id " + std::to_string(static_cast<int>(id)) +
                        " is not a TurboQuant type");
}

// Steps 1–5 of §1.2 and the packing of §1.5 for one group; returns the unrounded corrected norm.
// The caller stores fp16(norm) in block bytes 0–1. `y` is 128 floats of scratch.
float encode_group_core(const TurboType& t, const float* x, uint8_t* block, float* y) {
  float ss = 0.0f;
  for (size_t j = 0; j < kTurboGroup; ++j) ss += x[j] * x[j];
  const float g = std::sqrt(ss);
  const float inv = g > 1e-10f ? 1.0f / g : 0.0f;
  for (size_t j = 0; j < kTurboGroup; ++j) y[j] = (x[j] * inv) * kSigns1[j];
  wht_inplace(y, kTurboGroup);
  for (size_t j = 0; j < kTurboGroup; ++j) y[j] = (y[j] * kInvSqrt128) * kSigns2[j];

  // idx_j = number of midpoints m with y_j >= m (ties go to the upper cell).
  std::array<uint8_t, kTurboGroup> idx{};
  for (const float m : t.midpoints)
    for (size_t j = 0; j < kTurboGroup; ++j) idx[j] = static_cast<uint8_t>(idx[j] + (y[j] >= m));

  float r2 = 0.0f;
  for (size_t j = 0; j < kTurboGroup; ++j) {
    const float c = t.centroids[idx[j]];
    r2 += c * c;
  }
  const float r = std::sqrt(r2);
  const float norm = r > 1e-10f ? g / r : g;

  uint8_t* p = block + 2;
  switch (t.bits) {
    case 2:
      for (size_t i = 0; i < 32; ++i)
        p[i] = static_cast<uint8_t>(idx[4 * i] | (idx[4 * i + 1] << 2) | (idx[4 * i + 2] << 4) |
                                    (idx[4 * i + 3] << 6));
      break;
    case 3:
      for (size_t i = 0; i < 32; ++i)
        p[i] = static_cast<uint8_t>((idx[4 * i] & 3) | ((idx[4 * i + 1] & 3) << 2) |
                                    ((idx[4 * i + 2] & 3) << 4) | ((idx[4 * i + 3] & 3) << 6));
      for (size_t i = 0; i < 16; ++i) {
        uint8_t s = 0;
        for (size_t k = 0; k < 8; ++k)
          s = static_cast<uint8_t>(s | (((idx[8 * i + k] >> 2) & 1) << k));
        p[32 + i] = s;
      }
      break;
    default:     // 4
      p[0] = 0;  // rnorm, reserved
      p[1] = 0;
      for (size_t i = 0; i < 64; ++i)
        p[2 + i] = static_cast<uint8_t>(idx[2 * i] | (idx[2 * i + 1] << 4));
      break;
  }
  return norm;
}

// Dequantises (ŷ = C[idx]·norm) and un-rotates one block into x[128] (§1.6).
void decode_group_core(const TurboType& t, const uint8_t* block, float norm, float* x) {
  const uint8_t* p = block + 2;
  std::array<uint8_t, kTurboGroup> idx{};
  switch (t.bits) {
    case 2:
      for (size_t j = 0; j < kTurboGroup; ++j) idx[j] = (p[j / 4] >> (2 * (j % 4))) & 3;
      break;
    case 3:
      for (size_t j = 0; j < kTurboGroup; ++j)
        idx[j] = static_cast<uint8_t>(((p[j / 4] >> (2 * (j % 4))) & 3) |
                                      (((p[32 + j / 8] >> (j % 8)) & 1) << 2));
      break;
    default:
      for (size_t j = 0; j < kTurboGroup; ++j) idx[j] = (p[2 + j / 2] >> (4 * (j % 2))) & 15;
      break;
  }
  for (size_t j = 0; j < kTurboGroup; ++j) x[j] = (t.centroids[idx[j]] * norm) * kSigns2[j];
  wht_inplace(x, kTurboGroup);
  for (size_t j = 0; j < kTurboGroup; ++j) x[j] = (x[j] * kInvSqrt128) * kSigns1[j];
}

size_t groups_of(size_t d) { return (d + kTurboGroup - 1) / kTurboGroup; }

class TurboCodec final : public Codec {
 public:
  TurboCodec(CodecId id, size_t head_dim) : id_(id), type_(turbo_type(id)), d_(head_dim) {}
  CodecId id() const override { return id_; }

  EncodedUnit encode(const UnitInput& in) const override {
    peer::check_input(in, d_, name());
    const size_t groups = groups_of(d_);
    const uint64_t payload = static_cast<uint64_t>(in.n) * groups * type_.block_bytes;
    EncodedUnit e = peer::start_unit(peer::make_header(id_, d_, in.info, in.n, 0), {}, payload);
    e.bytes.resize(e.header_bytes + payload);
    uint8_t* out = e.bytes.data() + e.header_bytes;
    std::array<float, kTurboGroup> x{};
    std::array<float, kTurboGroup> y{};
    for (size_t row = 0; row < in.n; ++row) {
      const float* src = in.rows + row * d_;
      for (size_t g = 0; g < groups; ++g) {
        const size_t lo = g * kTurboGroup;
        const size_t cnt = std::min(kTurboGroup, d_ - lo);
        std::memcpy(x.data(), src + lo, cnt * sizeof(float));
        if (cnt < kTurboGroup) std::fill(x.begin() + cnt, x.end(), 0.0f);
        const float norm = encode_group_core(type_, x.data(), out, y.data());
        peer::put_u16(out, peer::f16_field(norm, name(), "norm", row, in.info));
        out += type_.block_bytes;
      }
    }
    peer::finish_unit(e, payload, 0, in.n);
    e.stats.coded_values = static_cast<uint64_t>(in.n) * d_;
    return e;
  }

  DecodedUnit decode(std::span<const uint8_t> bytes, const std::string& source) const override {
    const peer::PeerContainer c = peer::open_container(bytes, source, id_);
    peer::expect_params_size(c, 0, source);
    if (c.header.n_tail_rows != 0)
      throw FormatError(source + ": " + std::string(name()) + " container has " +
                        std::to_string(c.header.n_tail_rows) + " tail rows, expected 0");
    const size_t d = c.header.head_dim;
    const size_t n = c.header.n_blocks;
    const size_t groups = groups_of(d);
    peer::expect_payload_size(c, static_cast<uint64_t>(n) * groups * type_.block_bytes, source);
    DecodedUnit out;
    out.header = c.header;
    out.rows.resize(n * d);
    out.n_block_rows = n;
    const uint8_t* p = c.payload.data();
    std::array<float, kTurboGroup> x{};
    for (size_t row = 0; row < n; ++row) {
      for (size_t g = 0; g < groups; ++g) {
        const float norm = peer::f16_read(p, source, "turbo norm", row);
        decode_group_core(type_, p, norm, x.data());
        const size_t lo = g * kTurboGroup;
        const size_t cnt = std::min(kTurboGroup, d - lo);
        std::memcpy(out.rows.data() + row * d + lo, x.data(), cnt * sizeof(float));
        p += type_.block_bytes;
      }
    }
    return out;
  }

 private:
  CodecId id_;
  const TurboType& type_;
  size_t d_;
};

}  // namespace

std::span<const float, kTurboGroup> turbo_signs(int which) {
  if (which == 1) return kSigns1;
  if (which == 2) return kSigns2;
  throw InvalidArgument("turbo sign table must be 1 or 2, got " + std::to_string(which));
}

unsigned turbo_bits(CodecId id) { return turbo_type(id).bits; }
size_t turbo_block_bytes(CodecId id) { return turbo_type(id).block_bytes; }
uint64_t turbo_bytes_per_vector(CodecId id, size_t head_dim) {
  return static_cast<uint64_t>(groups_of(head_dim)) * turbo_type(id).block_bytes;
}
std::span<const float> turbo_centroids(CodecId id) { return turbo_type(id).centroids; }
std::span<const float> turbo_midpoints(CodecId id) { return turbo_type(id).midpoints; }

void turbo_encode_group(CodecId id, const float* x, uint8_t* block) {
  const TurboType& t = turbo_type(id);
  std::array<float, kTurboGroup> y{};
  const float norm = encode_group_core(t, x, block, y.data());
  peer::put_u16(block, f16_checked(norm, "turbo norm"));
}

void turbo_decode_group(CodecId id, const uint8_t* block, float* x) {
  const TurboType& t = turbo_type(id);
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
