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

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include "codec/codec_factories.h"
#include "base/errors.h"
#include "codec/format/half.h"
#include "codec/params.h"
#include "codec/codecs/peer_common.h"
#include "codec/kernels/ggml.h"
#include "codec/simd/rows.h"

namespace kvwb::codec {

namespace {

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
      break;
  }
  return false;
}

kernels::GgmlType ggml_type(CodecId id) {
  switch (id) {
    case CodecId::kQ8_0:
      return kernels::GgmlType::kQ8_0;
    case CodecId::kQ4_0:
      return kernels::GgmlType::kQ4_0;
    case CodecId::kQ4_1:
      return kernels::GgmlType::kQ4_1;
    case CodecId::kQ5_0:
      return kernels::GgmlType::kQ5_0;
    case CodecId::kQ5_1:
      return kernels::GgmlType::kQ5_1;
    case CodecId::kIq4Nl:
      return kernels::GgmlType::kIq4Nl;
    default:
      break;
  }
  throw InvalidArgument("codec id " + std::to_string(static_cast<int>(id)) +
                        " is not a ggml block type");
}

bool has_min(CodecId id) { return kernels::ggml_has_min(ggml_type(id)); }

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
        block_bytes_(ggml_block_bytes(id)),
        type_(ggml_type(id)) {}
  CodecId id() const override { return id_; }

  EncodedUnit encode(const UnitInput& in) const override {
    peer::check_shape(in, d_, name());
    const size_t blocks = d_ / kGgmlBlock;
    const uint64_t payload = static_cast<uint64_t>(in.n) * blocks * block_bytes_;
    std::array<uint8_t, 4> params{static_cast<uint8_t>(rotate_), 0,
                                  static_cast<uint8_t>(n_rot_ & 0xFF),
                                  static_cast<uint8_t>(n_rot_ >> 8)};
    EncodedUnit e = peer::start_unit(peer::make_header(id_, d_, in.info, in.n, 0), params, payload);
    uint64_t clipped = 0;
    const simd::Path path = simd::active_path();
    // Unrotated rows are one run of blocks: the batched kernel codes them in place, in chunks
    // (peer::append_in_chunks), and checks the input and the d fields as it goes.
    bool done = n_rot_ == 0;
    if (done)
      peer::append_in_chunks(e.bytes, payload, kChunkBlocks * block_bytes_,
                             [&](uint8_t* out, size_t at, size_t k) {
                               if (done)
                                 done = simd::ggml_quantize_blocks(
                                     path, type_, in.rows + at / block_bytes_ * kGgmlBlock,
                                     k / block_bytes_, out, clipped);
                             });
    if (!done) {  // rotated rows, the scalar path, other types, or an error to raise
      e.bytes.resize(e.header_bytes);
      clipped = encode_reference(in, e);
    }
    peer::finish_unit(e, payload, 0, in.n);
    e.stats.clipped = clipped;
    e.stats.coded_values = static_cast<uint64_t>(in.n) * d_;
    return e;
  }

  DecodedUnit decode(std::span<const uint8_t> bytes, const std::string& source) const override {
    const peer::PeerContainer c = peer::open_tailless_container(bytes, source, id_, 4);
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
    out.n_block_rows = n;
    const uint8_t* p = c.payload.data();
    const simd::Path path = simd::active_path();
    const size_t chunk_rows = (kChunkBlocks + blocks - 1) / blocks;  // at least kChunkBlocks blocks
    peer::append_in_chunks(out.rows, n * d, chunk_rows * d, [&](float* x, size_t at, size_t k) {
      const size_t r0 = at / d, nb = k / kGgmlBlock;
      const uint8_t* src = p + r0 * blocks * block_bytes_;
      const size_t bad = simd::ggml_dequantize_blocks(path, type_, src, nb, x);
      if (bad < nb) {  // raise the reference's error for that block
        const uint8_t* b = src + bad * block_bytes_;
        const size_t r = r0 + bad / blocks;
        (void)peer::f16_read(b, source, "scale d", r);
        if (kernels::ggml_has_min(type_)) (void)peer::f16_read(b + 2, source, "minimum m", r);
      }
      if (n_rot != 0)
        for (size_t r = 0; r < k / d; ++r) simd::hadamard_chunks(path, x + r * d, d, n_rot);
    });
    return out;
  }

 private:
  // Blocks per chunk of the batched paths: one 16-block group of the AVX-512 q8_0 kernels (544
  // bytes of q8_0 blocks, 2 KiB of decoded f32). The vector's zeroing of so small a chunk stays in
  // L1 right before the kernel overwrites it; with 256-block chunks (32 KiB of f32) the zeroing
  // cost q8_0 encode + decode 6 % more on the 2-core test machine (0.186 vs 0.171 ms per 4096 × 128).
  static constexpr size_t kChunkBlocks = 16;

  // The per-row reference loop: appends the payload to e.bytes (header already there) after the
  // full input check; raises the errors of the batched path. Returns the clip count.
  uint64_t encode_reference(const UnitInput& in, EncodedUnit& e) const {
    peer::check_input(in, d_, name());
    const std::string_view codec = name();
    const size_t blocks = d_ / kGgmlBlock;
    e.bytes.resize(e.header_bytes + static_cast<uint64_t>(in.n) * blocks * block_bytes_);
    uint8_t* out = e.bytes.data() + e.header_bytes;
    std::vector<float> row(d_);
    uint64_t clipped = 0;
    const simd::Path path = simd::active_path();
    for (size_t r = 0; r < in.n; ++r) {
      // The rows are read in place unless they are rotated first.
      const float* src = in.rows + r * d_;
      if (n_rot_ != 0) {
        std::memcpy(row.data(), src, d_ * sizeof(float));
        simd::hadamard_chunks(path, row.data(), d_, n_rot_);
        src = row.data();
      }
      for (size_t b = 0; b < blocks; ++b) {
        const kernels::GgmlFields f = simd::ggml_quantize(path, type_, src + b * kGgmlBlock, out);
        clipped += f.clipped;
        peer::put_u16(out, peer::f16_field(f.d, codec, "scale d", r, in.info));
        if (f.has_m) peer::put_u16(out + 2, peer::f16_field(f.m, codec, "minimum m", r, in.info));
        out += block_bytes_;
      }
    }
    return clipped;
  }

  CodecId id_;
  size_t d_;
  GgmlRotate rotate_;
  size_t n_rot_;
  size_t block_bytes_;
  kernels::GgmlType type_;
};

}  // namespace

size_t ggml_block_bytes(CodecId id) { return kernels::ggml_block_bytes(ggml_type(id)); }

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
  if (!kernels::is_pow2(n_rot))
    throw InvalidArgument("WHT length " + std::to_string(n_rot) + " is not a power of two");
  kernels::hadamard_chunks_pow2(v, d, n_rot);
}

uint32_t ggml_quantize_block(CodecId id, const float* x, uint8_t* out) {
  const kernels::GgmlFields f = kernels::ggml_quantize_codes(ggml_type(id), x, out);
  peer::put_u16(out, f16_checked(f.d, "d"));
  if (f.has_m) peer::put_u16(out + 2, f16_checked(f.m, "m"));
  return f.clipped;
}

void ggml_dequantize_block(CodecId id, const uint8_t* in, float* x) {
  const float d = peer::f16_read(in, "ggml block", "scale d", 0);
  const float m = has_min(id) ? peer::f16_read(in + 2, "ggml block", "minimum m", 0) : 0.0f;
  kernels::ggml_dequantize_codes(ggml_type(id), in, d, m, x);
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
