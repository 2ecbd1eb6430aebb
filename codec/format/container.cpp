#include "codec/format/container.h"

#include <array>

#include "codec/format/byte_io.h"
#include "base/errors.h"

namespace kvwb::codec {

namespace {
constexpr std::array<std::string_view, 15> kNames = {
    "",     "kakeya_pca", "besicovitch", "turbo2", "turbo3", "turbo4", "q8_0",     "q4_0",
    "q4_1", "q5_0",       "q5_1",        "iq4_nl", "kivi",   "fp8_e4m3", "bf16"};
}

std::string_view codec_name(CodecId id) noexcept {
  const auto i = static_cast<size_t>(id);
  return i < kNames.size() ? kNames[i] : std::string_view{};
}

CodecId codec_id_from_name(std::string_view name) {
  for (size_t i = 1; i < kNames.size(); ++i)
    if (kNames[i] == name) return static_cast<CodecId>(i);
  std::string known;
  for (size_t i = 1; i < kNames.size(); ++i) known += (i > 1 ? ", " : "") + std::string(kNames[i]);
  throw InvalidArgument("unknown codec '" + std::string(name) + "' (known: " + known + ")");
}

void write_container_header(const ContainerHeader& h, std::span<const uint8_t> params,
                            std::vector<uint8_t>& out) {
  if (params.size() + kCommonHeaderBytes > 0xFFFF)
    throw InvalidArgument("container parameter block too large");
  ByteWriter w(out);
  w.bytes("KVCB", 4);
  w.u16(kContainerMajor);
  w.u16(kContainerMinor);
  w.u16(static_cast<uint16_t>(h.codec_id));
  w.u16(static_cast<uint16_t>(kCommonHeaderBytes + params.size()));
  w.u16(h.head_dim);
  w.u8(static_cast<uint8_t>(h.stream));
  w.u8(static_cast<uint8_t>(h.block_rows));
  w.u32(h.sequence);
  w.u32(h.layer);
  w.u16(h.kv_head);
  w.u16(h.n_kv_heads);
  w.u32(h.block_size);
  w.u32(h.n_blocks);
  w.u32(h.n_tail_rows);
  w.u8(h.domain_flags);
  w.u8(0);
  w.u8(0);
  w.u8(0);
  w.u32(static_cast<uint32_t>(params.size()));
  w.bytes(params.data(), params.size());
}

ContainerHeader read_container_header(std::span<const uint8_t> bytes, const std::string& source,
                                      std::span<const uint8_t>* params) {
  ByteReader r(bytes, source);
  const uint8_t* magic = r.take(4, "magic");
  if (std::string_view(reinterpret_cast<const char*>(magic), 4) != "KVCB")
    r.fail("not a KVCB container (bad magic)");
  ContainerHeader h;
  h.version_major = r.u16("version_major");
  h.version_minor = r.u16("version_minor");
  if (h.version_major != kContainerMajor)
    r.fail("container major version " + std::to_string(h.version_major) +
           " is not supported (this build reads version 1)");
  const uint16_t id = r.u16("codec_id");
  if (codec_name(static_cast<CodecId>(id)).empty()) r.fail("unknown codec id " + std::to_string(id));
  h.codec_id = static_cast<CodecId>(id);
  h.header_bytes = r.u16("header_bytes");
  h.head_dim = r.u16("D");
  if (h.head_dim == 0) r.fail("head dimension D is 0");
  const uint8_t stream = r.u8("stream");
  if (stream > 1) r.fail("stream must be 0 (K) or 1 (V), got " + std::to_string(stream));
  h.stream = static_cast<Stream>(stream);
  const uint8_t br = r.u8("block_rows");
  if (br > 1) r.fail("block_rows must be 0 or 1, got " + std::to_string(br));
  h.block_rows = static_cast<BlockRows>(br);
  h.sequence = r.u32("sequence");
  h.layer = r.u32("layer");
  h.kv_head = r.u16("kv_head");
  h.n_kv_heads = r.u16("n_kv_heads");
  h.block_size = r.u32("block_size");
  h.n_blocks = r.u32("n_blocks");
  h.n_tail_rows = r.u32("n_tail_rows");
  h.domain_flags = r.u8("domain_flags");
  r.take(3, "reserved");
  h.params_bytes = r.u32("params_bytes");
  if (h.header_bytes != kCommonHeaderBytes + h.params_bytes)
    r.fail("header_bytes " + std::to_string(h.header_bytes) + " != 48 + params_bytes " +
           std::to_string(h.params_bytes));
  const uint8_t* p = r.take(h.params_bytes, "parameter block");
  if (params) *params = std::span<const uint8_t>(p, h.params_bytes);
  return h;
}

}  // namespace kvwb::codec
