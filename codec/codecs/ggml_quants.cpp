// llama.cpp block quantisers (codec-peers.md §2): q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl.
//
// Container contract (codec ids 6 … 11; docs/container-peers.md):
//   header: block_size 1, n_blocks = n rows (head vectors), n_tail_rows 0.
//   parameter block (4 bytes): u8 rotate (0 none, 1 hadamard64, 2 hadamard_max), u8 reserved = 0,
//     u16 n_rot (0 for none, else the Hadamard chunk size; must equal what D implies).
//   payload: for each row in token order, the D/32 blocks of that row (values 32b … 32b+31 after
//     the optional rotation), each as laid out in codec/ggml_quants.h.
//     Payload bytes = n · (D/32) · block bytes = reported bytes.
//   Decode dequantises and applies the inverse rotation (the same matrix), so rows come back in
//   the domain the codec was given.
#include "codec/codecs/ggml_quants.h"

#include <array>
#include <cfloat>
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

constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                     1,    13,   25,  38,  53,  69,  89,  113};

bool is_ggml(CodecId id) {
  switch (id) {
    case CodecId::kQ8_0:
    case CodecId::kQ4_0:
    case CodecId::kQ4_1:
    case CodecId::kQ5_0:
    case CodecId::kQ5_1:
    case CodecId::kIq4Nl:
      return true;
    default:
      return false;
  }
}

// Fields of one quantised block before fp16 conversion (the caller stores them).
struct BlockFields {
  float d = 0.0f;
  float m = 0.0f;
  bool has_m = false;
  uint32_t clipped = 0;
};

// (first) signed value of largest magnitude, and that magnitude (q4_0, q5_0, iq4_nl).
void signed_absmax(const float* x, float& amax, float& max) {
  amax = 0.0f;
  max = 0.0f;
  for (size_t j = 0; j < kGgmlBlock; ++j) {
    const float v = x[j];
    if (amax < std::fabs(v)) {
      amax = std::fabs(v);
      max = v;
    }
  }
}

void min_max(const float* x, float& mn, float& mx) {
  mn = FLT_MAX;
  mx = -FLT_MAX;
  for (size_t j = 0; j < kGgmlBlock; ++j) {
    if (x[j] < mn) mn = x[j];
    if (x[j] > mx) mx = x[j];
  }
}

// int8 conversion of the reference, i.e. truncation toward zero, of a value that is in [0, top+1]
// for every block whose 1/d is finite; NaN/Inf (only when 1/d overflows for |d| < ~1e-38) are
// pinned so the conversion is always defined.
int trunc_code(float v, int top) {
  if (!(v >= 0.0f)) return 0;
  const float hi = static_cast<float>(top + 1);
  return v >= hi ? top + 1 : static_cast<int>(v);
}

// Nibbles: element j < 16 low nibble of qs[j], element j + 16 high nibble.
void pack_nibbles(const uint8_t* q, uint8_t* qs) {
  for (size_t j = 0; j < 16; ++j)
    qs[j] = static_cast<uint8_t>((q[j] & 15) | ((q[j + 16] & 15) << 4));
}
void pack_qh(const uint8_t* q, uint8_t* qh) {
  uint32_t h = 0;
  for (size_t j = 0; j < kGgmlBlock; ++j) h |= static_cast<uint32_t>((q[j] >> 4) & 1u) << j;
  std::memcpy(qh, &h, 4);
}

// Writes codes (everything after the fp16 fields) and returns the fields.
BlockFields quantize_core(CodecId id, const float* x, uint8_t* out) {
  BlockFields f;
  std::array<uint8_t, kGgmlBlock> q{};
  switch (id) {
    case CodecId::kQ8_0: {
      float amax = 0.0f;
      for (size_t j = 0; j < kGgmlBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
      f.d = amax / 127.0f;
      const float id_ = f.d != 0.0f ? 1.0f / f.d : 0.0f;
      for (size_t j = 0; j < kGgmlBlock; ++j) {
        // roundf: half away from zero; |v| <= 127 whenever id_ is finite (pinned otherwise).
        const float v = std::roundf(x[j] * id_);
        const int c = std::isnan(v)  ? 0
                      : v >= 127.0f  ? 127
                      : v <= -127.0f ? -127
                                     : static_cast<int>(v);
        out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(c));
      }
      return f;
    }
    case CodecId::kQ4_0:
    case CodecId::kQ5_0: {
      const bool five = id == CodecId::kQ5_0;
      float amax = 0.0f;
      float max = 0.0f;
      signed_absmax(x, amax, max);
      f.d = max / (five ? -16.0f : -8.0f);
      const float id_ = f.d != 0.0f ? 1.0f / f.d : 0.0f;
      const float off = five ? 16.5f : 8.5f;
      const int top = five ? 31 : 15;
      for (size_t j = 0; j < kGgmlBlock; ++j) {
        const int t = trunc_code(x[j] * id_ + off, top);  // truncation toward zero
        if (t > top) ++f.clipped;
        q[j] = static_cast<uint8_t>(std::min(top, t));
      }
      if (five) {
        pack_qh(q.data(), out + 2);
        pack_nibbles(q.data(), out + 6);
      } else {
        pack_nibbles(q.data(), out + 2);
      }
      return f;
    }
    case CodecId::kQ4_1:
    case CodecId::kQ5_1: {
      const bool five = id == CodecId::kQ5_1;
      float mn = 0.0f;
      float mx = 0.0f;
      min_max(x, mn, mx);
      const int top = five ? 31 : 15;
      f.d = (mx - mn) / static_cast<float>(top);
      f.m = mn;
      f.has_m = true;
      const float id_ = f.d != 0.0f ? 1.0f / f.d : 0.0f;
      for (size_t j = 0; j < kGgmlBlock; ++j) {
        const int t = trunc_code((x[j] - mn) * id_ + 0.5f, top);
        // q5_1 has no clamp in the reference; t <= 31 always holds there (kept for memory safety).
        if (t > top) ++f.clipped;
        q[j] = static_cast<uint8_t>(std::min(top, t));
      }
      if (five) {
        pack_qh(q.data(), out + 4);
        pack_nibbles(q.data(), out + 8);
      } else {
        pack_nibbles(q.data(), out + 4);
      }
      return f;
    }
    case CodecId::kIq4Nl: {
      float amax = 0.0f;
      float max = 0.0f;
      signed_absmax(x, amax, max);
      if (amax < 1e-15f) {
        f.d = 0.0f;
        pack_nibbles(q.data(), out + 2);
        return f;
      }
      const float d0 = max / static_cast<float>(kIq4nlValues[0]);
      const float id_ = 1.0f / d0;
      float sumqx = 0.0f;
      float sumq2 = 0.0f;
      for (size_t j = 0; j < kGgmlBlock; ++j) {
        const float v = id_ * x[j];
        int l = 0;
        if (v <= kIq4nlValues[0]) {
          l = 0;
        } else if (v >= kIq4nlValues[15]) {
          l = 15;
        } else {
          // The reference's bisection ends at kv[mu−1] <= v < kv[mu]; counting the table entries
          // <= v finds the same mu without branches.
          int mu = 0;
          for (int k = 0; k < 16; ++k) mu += v >= static_cast<float>(kIq4nlValues[k]) ? 1 : 0;
          l = v - kIq4nlValues[mu - 1] < kIq4nlValues[mu] - v ? mu - 1 : mu;  // ties go up
        }
        q[j] = static_cast<uint8_t>(l);
        const float w = x[j] * x[j];
        const float k = static_cast<float>(kIq4nlValues[l]);
        sumqx += w * k * x[j];
        sumq2 += w * k * k;
      }
      f.d = sumq2 != 0.0f ? sumqx / sumq2 : 0.0f;
      pack_nibbles(q.data(), out + 2);
      return f;
    }
    default:
      break;
  }
  throw InvalidArgument("codec id " + std::to_string(static_cast<int>(id)) +
                        " is not a ggml block type");
}

void unpack_nibbles(const uint8_t* qs, uint8_t* q) {
  for (size_t j = 0; j < 16; ++j) {
    q[j] = qs[j] & 15;
    q[j + 16] = qs[j] >> 4;
  }
}
void unpack_qh(const uint8_t* qh, uint8_t* q) {
  uint32_t h = 0;
  std::memcpy(&h, qh, 4);
  for (size_t j = 0; j < kGgmlBlock; ++j)
    q[j] = static_cast<uint8_t>(q[j] | (((h >> j) & 1u) << 4));
}

// Dequantises one block given its decoded fp16 fields.
void dequantize_core(CodecId id, const uint8_t* in, float d, float m, float* x) {
  std::array<uint8_t, kGgmlBlock> q{};
  switch (id) {
    case CodecId::kQ8_0:
      for (size_t j = 0; j < kGgmlBlock; ++j)
        x[j] = static_cast<float>(static_cast<int8_t>(in[2 + j])) * d;
      return;
    case CodecId::kQ4_0:
      unpack_nibbles(in + 2, q.data());
      for (size_t j = 0; j < kGgmlBlock; ++j) x[j] = static_cast<float>(q[j] - 8) * d;
      return;
    case CodecId::kQ4_1:
      unpack_nibbles(in + 4, q.data());
      for (size_t j = 0; j < kGgmlBlock; ++j) x[j] = static_cast<float>(q[j]) * d + m;
      return;
    case CodecId::kQ5_0:
      unpack_nibbles(in + 6, q.data());
      unpack_qh(in + 2, q.data());
      for (size_t j = 0; j < kGgmlBlock; ++j) x[j] = static_cast<float>(q[j] - 16) * d;
      return;
    case CodecId::kQ5_1:
      unpack_nibbles(in + 8, q.data());
      unpack_qh(in + 4, q.data());
      for (size_t j = 0; j < kGgmlBlock; ++j) x[j] = static_cast<float>(q[j]) * d + m;
      return;
    case CodecId::kIq4Nl:
      unpack_nibbles(in + 2, q.data());
      for (size_t j = 0; j < kGgmlBlock; ++j) x[j] = d * static_cast<float>(kIq4nlValues[q[j]]);
      return;
    default:
      break;
  }
  throw InvalidArgument("codec id " + std::to_string(static_cast<int>(id)) +
                        " is not a ggml block type");
}

bool has_min(CodecId id) { return id == CodecId::kQ4_1 || id == CodecId::kQ5_1; }

const char* rotate_name(GgmlRotate r) {
  switch (r) {
    case GgmlRotate::kNone:
      return "none";
    case GgmlRotate::kHadamard64:
      return "hadamard64";
    case GgmlRotate::kHadamardMax:
      return "hadamard_max";
  }
  return "?";
}

class GgmlCodec final : public Codec {
 public:
  GgmlCodec(CodecId id, size_t head_dim, GgmlRotate rotate)
      : id_(id),
        d_(head_dim),
        rotate_(rotate),
        n_rot_(ggml_rotation_size(rotate, head_dim)),
        block_bytes_(ggml_block_bytes(id)) {}
  CodecId id() const override { return id_; }

  EncodedUnit encode(const UnitInput& in) const override {
    peer::check_input(in, d_, name());
    const size_t blocks = d_ / kGgmlBlock;
    const uint64_t payload = static_cast<uint64_t>(in.n) * blocks * block_bytes_;
    std::array<uint8_t, 4> params{static_cast<uint8_t>(rotate_), 0,
                                  static_cast<uint8_t>(n_rot_ & 0xFF),
                                  static_cast<uint8_t>(n_rot_ >> 8)};
    EncodedUnit e = peer::start_unit(peer::make_header(id_, d_, in.info, in.n, 0), params, payload);
    e.bytes.resize(e.header_bytes + payload);
    uint8_t* out = e.bytes.data() + e.header_bytes;
    std::vector<float> row(d_);
    uint64_t clipped = 0;
    for (size_t r = 0; r < in.n; ++r) {
      std::memcpy(row.data(), in.rows + r * d_, d_ * sizeof(float));
      if (n_rot_ != 0) hadamard_chunks(row.data(), d_, n_rot_);
      for (size_t b = 0; b < blocks; ++b) {
        const BlockFields f = quantize_core(id_, row.data() + b * kGgmlBlock, out);
        clipped += f.clipped;
        peer::put_u16(out, peer::f16_field(f.d, name(), "scale d", r, in.info));
        if (f.has_m) peer::put_u16(out + 2, peer::f16_field(f.m, name(), "minimum m", r, in.info));
        out += block_bytes_;
      }
    }
    peer::finish_unit(e, payload, 0, in.n);
    e.stats.clipped = clipped;
    e.stats.coded_values = static_cast<uint64_t>(in.n) * d_;
    return e;
  }

  DecodedUnit decode(std::span<const uint8_t> bytes, const std::string& source) const override {
    const peer::PeerContainer c = peer::open_container(bytes, source, id_);
    peer::expect_params_size(c, 4, source);
    if (c.header.n_tail_rows != 0)
      throw FormatError(source + ": " + std::string(name()) + " container has " +
                        std::to_string(c.header.n_tail_rows) + " tail rows, expected 0");
    const size_t d = c.header.head_dim;
    if (d % kGgmlBlock != 0)
      throw FormatError(source + ": " + std::string(name()) +
                        " container has D = " + std::to_string(d) + ", not a multiple of 32");
    if (c.params[0] > 2 || c.params[1] != 0)
      throw FormatError(source + ": " + std::string(name()) + " parameter block: bad rotate mode " +
                        std::to_string(c.params[0]) + " or reserved byte " +
                        std::to_string(c.params[1]));
    const auto mode = static_cast<GgmlRotate>(c.params[0]);
    const size_t n_rot = static_cast<size_t>(c.params[2] | (c.params[3] << 8));
    size_t want = 0;
    try {
      want = ggml_rotation_size(mode, d);
    } catch (const Unsupported& ex) {
      throw FormatError(source + ": " + ex.what());
    }
    if (n_rot != want)
      throw FormatError(source + ": " + std::string(name()) + " parameter block: n_rot " +
                        std::to_string(n_rot) + " does not match rotate = " + rotate_name(mode) +
                        " at D = " + std::to_string(d) + " (expected " + std::to_string(want) +
                        ")");
    const size_t n = c.header.n_blocks;
    const size_t blocks = d / kGgmlBlock;
    peer::expect_payload_size(c, static_cast<uint64_t>(n) * blocks * block_bytes_, source);
    DecodedUnit out;
    out.header = c.header;
    out.rows.resize(n * d);
    out.n_block_rows = n;
    const uint8_t* p = c.payload.data();
    for (size_t r = 0; r < n; ++r) {
      float* row = out.rows.data() + r * d;
      for (size_t b = 0; b < blocks; ++b) {
        const float dd = peer::f16_read(p, source, "scale d", r);
        const float m = has_min(id_) ? peer::f16_read(p + 2, source, "minimum m", r) : 0.0f;
        dequantize_core(id_, p, dd, m, row + b * kGgmlBlock);
        p += block_bytes_;
      }
      if (n_rot != 0) hadamard_chunks(row, d, n_rot);
    }
    return out;
  }

 private:
  CodecId id_;
  size_t d_;
  GgmlRotate rotate_;
  size_t n_rot_;
  size_t block_bytes_;
};

}  // namespace

size_t ggml_block_bytes(CodecId id) {
  switch (id) {
    case CodecId::kQ8_0:
      return 34;
    case CodecId::kQ4_0:
      return 18;
    case CodecId::kQ4_1:
      return 20;
    case CodecId::kQ5_0:
      return 22;
    case CodecId::kQ5_1:
      return 24;
    case CodecId::kIq4Nl:
      return 18;
    default:
      break;
  }
  throw InvalidArgument("codec id " + std::to_string(static_cast<int>(id)) +
                        " is not a ggml block type");
}

uint64_t ggml_bytes_per_vector(CodecId id, size_t head_dim) {
  if (head_dim % kGgmlBlock != 0)
    throw Unsupported(std::string(codec_name(id)) + ": head dimension " + std::to_string(head_dim) +
                      " is not a multiple of 32");
  return static_cast<uint64_t>(head_dim / kGgmlBlock) * ggml_block_bytes(id);
}

size_t ggml_rotation_size(GgmlRotate mode, size_t head_dim) {
  switch (mode) {
    case GgmlRotate::kNone:
      return 0;
    case GgmlRotate::kHadamard64:
      if (head_dim % 64 != 0)
        throw Unsupported(
            "rotate = hadamard64 needs a head dimension that is a multiple of 64, got " +
            std::to_string(head_dim));
      return 64;
    case GgmlRotate::kHadamardMax:
      if (head_dim == 0) throw Unsupported("rotate = hadamard_max needs a head dimension >= 1");
      return head_dim & (~head_dim + 1);  // largest power of two dividing D
  }
  throw InvalidArgument("unknown rotate mode " + std::to_string(static_cast<int>(mode)));
}

void hadamard_chunks(float* v, size_t d, size_t n_rot) {
  if (n_rot == 0 || d % n_rot != 0)
    throw InvalidArgument("Hadamard chunk size " + std::to_string(n_rot) + " does not divide " +
                          std::to_string(d));
  const float scale = 1.0f / std::sqrt(static_cast<float>(n_rot));
  for (size_t c = 0; c < d; c += n_rot) {
    wht_inplace(v + c, n_rot);
    for (size_t j = c; j < c + n_rot; ++j) v[j] *= scale;
  }
}

uint32_t ggml_quantize_block(CodecId id, const float* x, uint8_t* out) {
  const BlockFields f = quantize_core(id, x, out);
  peer::put_u16(out, f16_checked(f.d, "d"));
  if (f.has_m) peer::put_u16(out + 2, f16_checked(f.m, "m"));
  return f.clipped;
}

void ggml_dequantize_block(CodecId id, const uint8_t* in, float* x) {
  const float d = peer::f16_read(in, "ggml block", "scale d", 0);
  const float m = has_min(id) ? peer::f16_read(in + 2, "ggml block", "minimum m", 0) : 0.0f;
  dequantize_core(id, in, d, m, x);
}

namespace detail {

const std::vector<ParamSpec>& ggml_params() {
  static const std::vector<ParamSpec> specs = {
      {"rotate",
       ParamType::kChoice,
       "none",
       0,
       0,
       {"none", "hadamard64", "hadamard_max"},
       "Hadamard pre-rotation before quantising (codec-peers.md §2.7): none (the fork's default), "
       "hadamard64 (64-value chunks; upstream V), hadamard_max (largest power of two dividing D; "
       "upstream K)"}};
  return specs;
}

std::unique_ptr<Codec> make_ggml(CodecId id, const ParamMap& p, size_t head_dim) {
  if (!is_ggml(id))
    throw InvalidArgument("codec id " + std::to_string(static_cast<int>(id)) +
                          " is not a ggml block type");
  const std::string name(codec_name(id));
  const ParamReader reader(name, ggml_params(), p);
  const std::string r = reader.get_string("rotate");
  const GgmlRotate mode = r == "hadamard64"     ? GgmlRotate::kHadamard64
                          : r == "hadamard_max" ? GgmlRotate::kHadamardMax
                                                : GgmlRotate::kNone;
  if (head_dim % kGgmlBlock != 0)
    throw Unsupported(name +
                      " needs a head dimension that is a multiple of 32 (blocks of 32 "
                      "values), got D = " +
                      std::to_string(head_dim));
  try {
    (void)ggml_rotation_size(mode, head_dim);
  } catch (const Unsupported& ex) {
    throw Unsupported(name + ": " + ex.what());
  }
  return std::make_unique<GgmlCodec>(id, head_dim, mode);
}

}  // namespace detail
}  // namespace kvwb::codec
