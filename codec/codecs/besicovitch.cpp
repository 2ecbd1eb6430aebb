#include "codec/codecs/besicovitch.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <numbers>
#include <string>
#include <utility>

#include "codec/simd/besi.h"
#include "codec/simd/rows.h"
#include "codec/format/bitpack.h"
#include "codec/format/byte_io.h"
#include "codec/codec_factories.h"
#include "base/errors.h"
#include "codec/format/half.h"
#include "codec/params.h"
#include "codec/math/quantizer.h"
#include "codec/math/rng.h"
#include "codec/kernels/besicovitch.h"

namespace kvwb::codec {

namespace {

constexpr const char* kName = "besicovitch";
constexpr size_t kParamsBytes = 8;
constexpr uint32_t kMinBlockSize = 8;
constexpr uint32_t kMaxBlockSize = 65536;

// ---- codebooks (§3) --------------------------------------------------------------------------

std::vector<float> build_codebook(unsigned g, unsigned db) {
  const size_t m = size_t{1} << db;
  std::vector<float> cb(m * g);
  if (g == 2) {
    for (size_t i = 0; i < m; ++i) {
      const double theta = std::numbers::pi * static_cast<double>(i) / static_cast<double>(m);
      cb[2 * i] = static_cast<float>(std::cos(theta));
      cb[2 * i + 1] = static_cast<float>(std::sin(theta));
    }
  } else if (g == 3) {
    const double psi = std::numbers::pi * (3.0 - std::sqrt(5.0));  // golden angle
    for (size_t i = 0; i < m; ++i) {
      const double z = 1.0 - (static_cast<double>(i) + 0.5) / static_cast<double>(m);
      const double rho = std::sqrt(1.0 - z * z);
      const double phi = static_cast<double>(i) * psi;
      cb[3 * i] = static_cast<float>(z);
      cb[3 * i + 1] = static_cast<float>(rho * std::cos(phi));
      cb[3 * i + 2] = static_cast<float>(rho * std::sin(phi));
    }
  } else {
    const uint64_t key = rng::kTagBesi ^ (256ull * g + db);
    std::vector<double> v(g);
    for (size_t i = 0; i < m; ++i) {
      double nrm2 = 0.0;
      for (unsigned k = 0; k < g; ++k) {
        v[k] = static_cast<double>(rng::normal(key, i * g + k));
        nrm2 += v[k] * v[k];
      }
      const double nrm = std::sqrt(nrm2);
      if (nrm == 0.0) {
        for (unsigned k = 0; k < g; ++k) v[k] = k == 0 ? 1.0 : 0.0;
      } else {
        for (unsigned k = 0; k < g; ++k) v[k] /= nrm;
      }
      double sign = 1.0;
      for (unsigned k = 0; k < g; ++k) {
        if (v[k] != 0.0) {
          sign = v[k] < 0.0 ? -1.0 : 1.0;
          break;
        }
      }
      for (unsigned k = 0; k < g; ++k) cb[i * g + k] = static_cast<float>(sign * v[k]);
    }
  }
  return cb;
}

void check_g_db(unsigned g, unsigned db) {
  if (g < 2 || g > 8)
    throw InvalidArgument("codec besicovitch: parameter 'group_size' must be in [2, 8], got " +
                          std::to_string(g));
  if (db < 1 || db > 10)
    throw InvalidArgument("codec besicovitch: parameter 'direction_bits' must be in [1, 10], got " +
                          std::to_string(db));
}

void check_config(const BesiConfig& c) {
  check_g_db(c.group_size, c.direction_bits);
  if (c.magnitude != BesiMagnitude::kF16 && c.magnitude != BesiMagnitude::kQuantized)
    throw InvalidArgument("codec besicovitch: parameter 'magnitude_mode' must be f16 or quantized");
  if (c.magnitude == BesiMagnitude::kQuantized && (c.magnitude_bits < 1 || c.magnitude_bits > 4))
    throw InvalidArgument("codec besicovitch: parameter 'magnitude_bits' must be in [1, 4], got " +
                          std::to_string(c.magnitude_bits));
}

// ---- one vector (§4, §5) ---------------------------------------------------------------------

/// Encoder/decoder of per-vector codes with reusable scratch buffers.
class VectorCoder {
 public:
  VectorCoder(const BesiConfig& c, size_t d)
      : c_(c),
        groups_(d / c.group_size),
        codebook_(besicovitch_codebook(c.group_size, c.direction_bits)),
        ids_(groups_),
        mags_(groups_),
        alphas_(groups_),
        path_(simd::active_path()) {
    if (c.magnitude == BesiMagnitude::kQuantized) table_ = gaussian_table(c.magnitude_bits);
    id_bytes_ = packed_bytes(groups_, c.direction_bits);
    bytes_ = besicovitch_bytes_per_vector(c, d);
  }

  size_t bytes() const { return bytes_; }

  /// Appends the code of x' = x − mean (mean may be null: x' = x) to `out`. Throws Fp16Range
  /// naming the field.
  void encode(const float* x, const float* mean, std::vector<uint8_t>& out) {
    const unsigned g = c_.group_size;
    float amax = 0.0f;  // max(0, |alpha_k| …): alpha is never NaN (a NaN dot is never chosen)
    if (g == 2) {
      amax = simd::besi_assign_g2(path_, x, mean, groups_, codebook_.data(), codebook_.size() / 2,
                                  ids_.data(), alphas_.data());
    } else {
      for (size_t k = 0; k < groups_; ++k) {
        const BesiAssignment a = kernels::besi_assign_centred(
            x + k * g, mean ? mean + k * g : nullptr, g, codebook_.data(), codebook_.size() / g);
        ids_[k] = a.id;
        alphas_[k] = a.alpha;
        amax = std::max(amax, std::fabs(a.alpha));
      }
    }
    if (!std::isfinite(amax))
      for (size_t k = 0; k < groups_; ++k)
        if (!std::isfinite(alphas_[k]))
          throw Fp16Range("magnitude of group " + std::to_string(k) +
                        " overflows f32 (input too large for fp16 storage)");
    if (c_.magnitude == BesiMagnitude::kF16) {
      for (size_t k = 0; k < groups_; ++k) mags_[k] = f16_checked(alphas_[k], "magnitude");
      uint8_t* dst = grow(out);
      kernels::pack_bits(ids_.data(), groups_, c_.direction_bits, dst);
      for (size_t k = 0; k < groups_; ++k) put_u16(dst + id_bytes_ + 2 * k, mags_[k]);
      return;
    }
    const float s = kernels::besi_scale(amax);
    const uint16_t s_bits = f16_checked(s, "scale");
    simd::besi_quantize(path_, alphas_.data(), groups_, s, table_.data(), table_.size(),
                        mags_.data());
    uint8_t* dst = grow(out);
    kernels::pack_bits(ids_.data(), groups_, c_.direction_bits, dst);
    kernels::pack_bits(mags_.data(), groups_, c_.magnitude_bits, dst + id_bytes_);
    put_u16(dst + bytes_ - 2, s_bits);
  }

  /// Decodes one code into out[0..D). Returns the name of a non-finite / invalid fp16 field, or
  /// nullptr when the code is valid.
  const char* decode(const uint8_t* code, const float* mean, float* out) {
    const unsigned g = c_.group_size;
    kernels::unpack_bits(code, groups_, c_.direction_bits, ids_.data());
    const uint8_t* p = code + id_bytes_;
    if (c_.magnitude == BesiMagnitude::kF16) {
      for (size_t k = 0; k < groups_; ++k) {
        const uint16_t h = static_cast<uint16_t>(p[2 * k] | (p[2 * k + 1] << 8));
        alphas_[k] = f16_bits_to_f32(h);
        if (!std::isfinite(alphas_[k])) return "magnitude (fp16 not finite)";
      }
    } else {
      kernels::unpack_bits(p, groups_, c_.magnitude_bits, mags_.data());
      const uint8_t* sp = p + packed_bytes(groups_, c_.magnitude_bits);
      const uint16_t h = static_cast<uint16_t>(sp[0] | (sp[1] << 8));
      const float s = f16_bits_to_f32(h);
      if (!std::isfinite(s)) return "scale (fp16 not finite)";
      if (h & 0x8000u) return "scale (negative)";
      for (size_t k = 0; k < groups_; ++k)
        alphas_[k] = kernels::besi_dequantize(table_[mags_[k]], s);
    }
    if (g == 2) {
      simd::besi_decode_g2(path_, ids_.data(), alphas_.data(), groups_, codebook_.data(),
                           codebook_.size() / 2, mean, out);
      return nullptr;
    }
    for (size_t k = 0; k < groups_; ++k)
      kernels::besi_decode_group(codebook_.data() + static_cast<size_t>(ids_[k]) * g, g, alphas_[k],
                                 mean ? mean + k * g : nullptr, out + k * g);
    return nullptr;
  }

 private:
  /// Appends bytes_ (zeroed) bytes to out; returns where the code goes.
  uint8_t* grow(std::vector<uint8_t>& out) const {
    const size_t start = out.size();
    out.resize(start + bytes_);
    return out.data() + start;
  }

  static void put_u16(uint8_t* dst, uint16_t v) {
    dst[0] = static_cast<uint8_t>(v & 0xFFu);
    dst[1] = static_cast<uint8_t>(v >> 8);
  }

  BesiConfig c_;
  size_t groups_;
  std::span<const float> codebook_;
  std::span<const float> table_;
  std::vector<uint16_t> ids_;
  std::vector<uint16_t> mags_;
  std::vector<float> alphas_;
  simd::Path path_;
  size_t id_bytes_ = 0;
  size_t bytes_ = 0;
};

std::string stream_name(Stream s) { return s == Stream::kK ? "K" : "V"; }

std::string unit_context(const UnitInfo& u) {
  std::string head = u.kv_head == kPooledHead ? "pooled" : std::to_string(u.kv_head);
  return "besicovitch: sequence " + std::to_string(u.sequence) + ", layer " +
         std::to_string(u.layer) + ", head " + head + ", stream " + stream_name(u.stream);
}

}  // namespace

// ---- public helpers --------------------------------------------------------------------------

std::span<const float> besicovitch_codebook(unsigned g, unsigned db) {
  check_g_db(g, db);
  static std::mutex mu;
  static std::map<std::pair<unsigned, unsigned>, std::unique_ptr<const std::vector<float>>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = cache[{g, db}];
  if (!slot) slot = std::make_unique<const std::vector<float>>(build_codebook(g, db));
  return *slot;
}

BesiAssignment besicovitch_assign(const float* group, unsigned g, std::span<const float> codebook) {
  return kernels::besi_assign(group, g, codebook.data(), codebook.size() / g);
}

size_t besicovitch_bytes_per_vector(const BesiConfig& c, size_t head_dim) {
  const size_t groups = head_dim / c.group_size;
  const size_t ids = packed_bytes(groups, c.direction_bits);
  if (c.magnitude == BesiMagnitude::kF16) return ids + 2 * groups;
  return ids + packed_bytes(groups, c.magnitude_bits) + 2;
}

unsigned besicovitch_reachable_levels(unsigned magnitude_bits) {
  const auto table = gaussian_table(magnitude_bits);
  return static_cast<unsigned>(quantize_nearest(1.0f, table) - quantize_nearest(-1.0f, table)) + 1;
}

void besicovitch_encode_vector(const float* x, size_t head_dim, const BesiConfig& config,
                               std::vector<uint8_t>& out) {
  check_config(config);
  if (head_dim % config.group_size != 0)
    throw Unsupported("besicovitch: head dimension " + std::to_string(head_dim) +
                      " is not a multiple of group_size " + std::to_string(config.group_size));
  for (size_t j = 0; j < head_dim; ++j)
    if (!std::isfinite(x[j]))
      throw NonFiniteInput("besicovitch: non-finite input at column " + std::to_string(j));
  VectorCoder coder(config, head_dim);
  coder.encode(x, nullptr, out);
}

void besicovitch_decode_vector(const uint8_t* code, size_t head_dim, const BesiConfig& config,
                               const float* mean, float* out) {
  check_config(config);
  if (head_dim % config.group_size != 0)
    throw Unsupported("besicovitch: head dimension " + std::to_string(head_dim) +
                      " is not a multiple of group_size " + std::to_string(config.group_size));
  VectorCoder coder(config, head_dim);
  if (const char* bad = coder.decode(code, mean, out))
    throw FormatError(std::string("besicovitch: invalid field ") + bad);
}

// ---- the codec -------------------------------------------------------------------------------

BesicovitchCodec::BesicovitchCodec(const BesiConfig& config, size_t head_dim)
    : BesicovitchCodec(config, head_dim, true) {}

BesicovitchCodec::BesicovitchCodec(const BesiConfig& config, size_t head_dim, bool check_divisible)
    : config_(config), head_dim_(head_dim) {
  check_config(config_);
  if (head_dim_ == 0 || head_dim_ > 0xFFFF)
    throw InvalidArgument("codec besicovitch: head dimension " + std::to_string(head_dim_) +
                          " is out of range 1..65535");
  if (check_divisible && head_dim_ % config_.group_size != 0)
    throw Unsupported("codec besicovitch: head dimension " + std::to_string(head_dim_) +
                      " is not a multiple of group_size " + std::to_string(config_.group_size));
}

BesicovitchCodec BesicovitchCodec::decoder_only(size_t head_dim) {
  return BesicovitchCodec(BesiConfig{}, head_dim, false);
}

EncodedUnit BesicovitchCodec::encode(const UnitInput& in) const {
  const UnitInfo& info = in.info;
  const std::string ctx = unit_context(info);
  const size_t d = head_dim_;
  const unsigned g = config_.group_size;
  if (d % g != 0)
    throw Unsupported(ctx + ": head dimension " + std::to_string(d) +
                      " is not a multiple of group_size " + std::to_string(g));
  if (in.dim != d)
    throw InvalidArgument(ctx + ": input has dimension " + std::to_string(in.dim) +
                          ", codec was built for " + std::to_string(d));
  if (info.block_size < kMinBlockSize || info.block_size > kMaxBlockSize)
    throw InvalidArgument(ctx + ": parameter 'block_size' must be in [8, 65536], got " +
                          std::to_string(info.block_size));
  if (in.n > 0 && in.rows == nullptr) throw InvalidArgument(ctx + ": no input rows");

  const size_t n = in.n;
  const size_t bs = info.block_size;
  const size_t n_blocks = (n + bs - 1) / bs;
  if (n_blocks > 0xFFFFFFFFull) throw InvalidArgument(ctx + ": too many rows for one container");

  if (const size_t i = n * d == 0 ? 0 : simd::first_non_finite(simd::active_path(), in.rows, n * d);
      i < n * d)
    throw NonFiniteInput(ctx + ": non-finite input value " + std::to_string(in.rows[i]) +
                         " at row " + std::to_string(i / d) + ", column " + std::to_string(i % d));

  const ContainerHeader h =
      unit_header(CodecId::kBesicovitch, d, info, info.block_size, n_blocks, 0);
  const bool quant = config_.magnitude == BesiMagnitude::kQuantized;
  const uint8_t params[kParamsBytes] = {static_cast<uint8_t>(g),
                                        static_cast<uint8_t>(config_.direction_bits),
                                        static_cast<uint8_t>(config_.magnitude),
                                        static_cast<uint8_t>(quant ? config_.magnitude_bits : 0),
                                        static_cast<uint8_t>(config_.subtract_mean ? 1 : 0),
                                        0,
                                        0,
                                        0};

  VectorCoder coder(config_, d);
  const size_t bpv = coder.bytes();
  EncodedUnit out;
  const size_t mean_bytes = config_.subtract_mean ? 2 * d : 0;
  out.bytes.reserve(kCommonHeaderBytes + kParamsBytes + n_blocks * (4 + mean_bytes) + n * bpv);
  write_container_header(h, params, out.bytes);
  out.header_bytes = kCommonHeaderBytes + kParamsBytes;

  std::vector<double> acc(d);
  std::vector<float> mean_q(d, 0.0f);
  for (size_t b = 0; b < n_blocks; ++b) {
    const size_t r0 = b * bs;
    const size_t rows = std::min(bs, n - r0);
    ByteWriter w(out.bytes);
    w.u32(static_cast<uint32_t>(rows));
    if (config_.subtract_mean) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (size_t i = 0; i < rows; ++i) {
        const float* x = in.rows + (r0 + i) * d;
        for (size_t j = 0; j < d; ++j) acc[j] += static_cast<double>(x[j]);
      }
      for (size_t j = 0; j < d; ++j) {
        const float mu = kernels::besi_mean_value(acc[j], rows);
        uint16_t bits = 0;
        try {
          bits = f16_checked(mu, "mean");
        } catch (const Fp16Range& e) {
          throw Fp16Range(ctx + ", block " + std::to_string(b) + ", column " + std::to_string(j) +
                          ": " + e.what());
        }
        mean_q[j] = f16_bits_to_f32(bits);
        w.u16(bits);
      }
    }
    for (size_t i = 0; i < rows; ++i) {
      const float* x = in.rows + (r0 + i) * d;
      try {
        coder.encode(x, config_.subtract_mean ? mean_q.data() : nullptr, out.bytes);
      } catch (const Fp16Range& e) {
        throw Fp16Range(ctx + ", block " + std::to_string(b) + ", row " + std::to_string(i) + ": " +
                        e.what());
      }
    }
  }

  out.reported_bytes = out.bytes.size() - out.header_bytes;
  out.reference_bytes = bpv * n + mean_bytes * n_blocks;
  out.tail_bytes = 0;
  out.codec_rows = n;
  out.stats.coded_values = static_cast<uint64_t>(n) * (d / g);
  return out;
}

DecodedUnit BesicovitchCodec::decode(std::span<const uint8_t> bytes,
                                     const std::string& source) const {
  std::span<const uint8_t> pb;
  DecodedUnit du;
  du.header = read_container_header(bytes, source, &pb);
  const ContainerHeader& h = du.header;
  ByteReader r(bytes, source);
  r.take(h.header_bytes, "header");
  if (h.codec_id != CodecId::kBesicovitch)
    r.fail("codec id " + std::to_string(static_cast<unsigned>(h.codec_id)) + " (" +
           std::string(codec_name(h.codec_id)) + ") is not besicovitch (2)");
  if (h.params_bytes != kParamsBytes)
    r.fail("besicovitch parameter block must be 8 bytes, got " + std::to_string(h.params_bytes));
  BesiConfig c;
  c.group_size = pb[0];
  c.direction_bits = pb[1];
  const size_t d = h.head_dim;
  if (c.group_size < 2 || c.group_size > 8)
    r.fail("parameter block: group_size " + std::to_string(c.group_size) + " not in 2..8");
  if (d % c.group_size != 0)
    r.fail("parameter block: head dimension " + std::to_string(d) +
           " is not a multiple of group_size " + std::to_string(c.group_size));
  if (c.direction_bits < 1 || c.direction_bits > 10)
    r.fail("parameter block: direction_bits " + std::to_string(c.direction_bits) + " not in 1..10");
  if (pb[2] > 1)
    r.fail("parameter block: magnitude_mode " + std::to_string(pb[2]) +
           " must be 0 (f16) or 1 (quantized)");
  c.magnitude = static_cast<BesiMagnitude>(pb[2]);
  c.magnitude_bits = pb[3];
  if (c.magnitude == BesiMagnitude::kF16 && c.magnitude_bits != 0)
    r.fail("parameter block: magnitude_bits must be 0 in f16 mode, got " +
           std::to_string(c.magnitude_bits));
  if (c.magnitude == BesiMagnitude::kQuantized && (c.magnitude_bits < 1 || c.magnitude_bits > 4))
    r.fail("parameter block: magnitude_bits " + std::to_string(c.magnitude_bits) + " not in 1..4");
  if (pb[4] & ~1u) r.fail("parameter block: unknown flag bits " + std::to_string(pb[4]));
  c.subtract_mean = (pb[4] & 1u) != 0;
  if (pb[5] != 0 || pb[6] != 0 || pb[7] != 0) r.fail("parameter block: reserved bytes not zero");
  if (h.n_tail_rows != 0)
    r.fail("besicovitch containers have no tail, n_tail_rows = " + std::to_string(h.n_tail_rows));
  if (h.block_size < kMinBlockSize || h.block_size > kMaxBlockSize)
    r.fail("block_size " + std::to_string(h.block_size) + " not in 8..65536");

  VectorCoder coder(c, d);
  const size_t bpv = coder.bytes();
  std::vector<float> mean(d, 0.0f);
  for (uint32_t b = 0; b < h.n_blocks; ++b) {
    const std::string where = "block " + std::to_string(b);
    const uint32_t rows = r.u32("n_rows");
    const bool last = b + 1 == h.n_blocks;
    if (rows == 0 || rows > h.block_size || (!last && rows != h.block_size))
      r.fail(where + ": n_rows " + std::to_string(rows) + " invalid (block_size " +
             std::to_string(h.block_size) + (last ? ", last block: 1..block_size)" : ")"));
    if (c.subtract_mean) {
      const uint8_t* mp = r.take(2 * d, "mean");
      for (size_t j = 0; j < d; ++j) {
        mean[j] = f16_bits_to_f32(static_cast<uint16_t>(mp[2 * j] | (mp[2 * j + 1] << 8)));
        if (!std::isfinite(mean[j]))
          r.fail(where + ": mean value at column " + std::to_string(j) + " is not finite");
      }
    }
    if (static_cast<uint64_t>(rows) * bpv > r.remaining())
      r.fail(where + ": truncated: " + std::to_string(rows) + " codes of " + std::to_string(bpv) +
             " bytes need " + std::to_string(static_cast<uint64_t>(rows) * bpv) + " bytes, " +
             std::to_string(r.remaining()) + " left");
    const size_t base = du.rows.size();
    du.rows.resize(base + static_cast<size_t>(rows) * d);
    for (uint32_t i = 0; i < rows; ++i) {
      const uint8_t* code = r.take(bpv, "code");
      if (const char* bad =
              coder.decode(code, c.subtract_mean ? mean.data() : nullptr, &du.rows[base + i * d]))
        r.fail(where + ", row " + std::to_string(i) + ": invalid " + bad);
    }
  }
  if (r.remaining() != 0)
    r.fail(std::to_string(r.remaining()) + " trailing bytes after the last block record");
  du.n_block_rows = du.rows.size() / d;
  return du;
}

// ---- factory ---------------------------------------------------------------------------------

namespace detail {

const std::vector<ParamSpec>& besicovitch_params() {
  static const std::vector<ParamSpec> specs = {
      {"group_size",
       ParamType::kInt,
       "2",
       2,
       8,
       {},
       "coordinates per group g (head dimension must be a multiple of g). Presets: library "
       "default g 2, db 6, f16; perplexity harness g 2, db 5, quantized mb 4, mean; "
       "\"V Besi d=3 m=4\" g 2, db 3, quantized mb 4, mean"},
      {"direction_bits",
       ParamType::kInt,
       "6",
       1,
       10,
       {},
       "bits per direction index db; codebook of 2^db lines through the origin"},
      {"magnitude_mode",
       ParamType::kChoice,
       "f16",
       0,
       0,
       {"f16", "quantized"},
       "f16: one fp16 magnitude per group; quantized: Gaussian Lloyd-Max index per group plus one "
       "fp16 scale per vector"},
      {"magnitude_bits",
       ParamType::kInt,
       "4",
       1,
       4,
       {},
       "Lloyd-Max bits per magnitude (quantized mode only); reachable levels: 1->2, 2->4, 3->4, "
       "4->8"},
      {"subtract_mean",
       ParamType::kBool,
       "false",
       0,
       0,
       {"true", "false"},
       "subtract a per-block fp16 column mean before coding (blocks of the run's block_size)"},
  };
  return specs;
}

std::unique_ptr<Codec> make_besicovitch(const ParamMap& p, size_t head_dim) {
  ParamReader r(kName, besicovitch_params(), p);
  BesiConfig c;
  c.group_size = static_cast<unsigned>(r.get_int("group_size"));
  c.direction_bits = static_cast<unsigned>(r.get_int("direction_bits"));
  c.magnitude = r.get_string("magnitude_mode") == "quantized" ? BesiMagnitude::kQuantized
                                                              : BesiMagnitude::kF16;
  c.magnitude_bits = static_cast<unsigned>(r.get_int("magnitude_bits"));
  c.subtract_mean = r.get_bool("subtract_mean");
  // decode_container builds codecs with default parameters; the container names the real g, so a
  // head dimension that the default g does not divide must still decode.
  if (p.empty() && head_dim % c.group_size != 0)
    return std::make_unique<BesicovitchCodec>(BesicovitchCodec::decoder_only(head_dim));
  return std::make_unique<BesicovitchCodec>(c, head_dim);
}

}  // namespace detail

}  // namespace kvwb::codec
