#include <string>

#include "codec/codec.h"
#include "codec/codec_factories.h"
#include "base/errors.h"

namespace kvwb::codec {

std::vector<std::string> codec_names() {
  std::vector<std::string> out;
  for (uint16_t i = 1; i <= static_cast<uint16_t>(CodecId::kBf16); ++i)
    out.emplace_back(codec_name(static_cast<CodecId>(i)));
  return out;
}

const std::vector<ParamSpec>& codec_params(std::string_view name) {
  switch (codec_id_from_name(name)) {
    case CodecId::kKakeyaPca: return detail::kakeya_params();
    case CodecId::kBesicovitch: return detail::besicovitch_params();
    case CodecId::kTurbo2:
    case CodecId::kTurbo3:
    case CodecId::kTurbo4: return detail::turbo_params();
    case CodecId::kQ8_0:
    case CodecId::kQ4_0:
    case CodecId::kQ4_1:
    case CodecId::kQ5_0:
    case CodecId::kQ5_1:
    case CodecId::kIq4Nl: return detail::ggml_params();
    case CodecId::kKivi: return detail::kivi_params();
    case CodecId::kFp8E4m3: return detail::fp8_params();
    case CodecId::kBf16: return detail::bf16_params();
  }
  throw InvalidArgument("unknown codec '" + std::string(name) + "'");
}

std::unique_ptr<Codec> make_codec(std::string_view name, const ParamMap& params, size_t head_dim,
                                  const CodecResources& resources) {
  if (head_dim == 0 || head_dim > 4096)
    throw InvalidArgument("head dimension " + std::to_string(head_dim) + " is out of range 1..4096");
  const CodecId id = codec_id_from_name(name);
  switch (id) {
    case CodecId::kKakeyaPca: return detail::make_kakeya(params, head_dim, resources);
    case CodecId::kBesicovitch: return detail::make_besicovitch(params, head_dim);
    case CodecId::kTurbo2:
    case CodecId::kTurbo3:
    case CodecId::kTurbo4: return detail::make_turbo(id, params, head_dim);
    case CodecId::kQ8_0:
    case CodecId::kQ4_0:
    case CodecId::kQ4_1:
    case CodecId::kQ5_0:
    case CodecId::kQ5_1:
    case CodecId::kIq4Nl: return detail::make_ggml(id, params, head_dim);
    case CodecId::kKivi: return detail::make_kivi(params, head_dim);
    case CodecId::kFp8E4m3: return detail::make_fp8(params, head_dim);
    case CodecId::kBf16: return detail::make_bf16(params, head_dim);
  }
  throw InvalidArgument("unknown codec '" + std::string(name) + "'");
}

DecodedUnit decode_container(std::span<const uint8_t> bytes, const std::string& source) {
  std::span<const uint8_t> params;
  const ContainerHeader h = read_container_header(bytes, source, &params);
  // Decode never depends on encode-time parameters: a default-constructed codec of the
  // container's id reads everything it needs from the bytes.
  auto codec = make_codec(codec_name(h.codec_id), {}, h.head_dim);
  return codec->decode(bytes, source);
}

}  // namespace kvwb::codec
