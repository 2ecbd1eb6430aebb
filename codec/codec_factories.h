#pragma once
// Internal: the factory of each codec family, wired together by registry.cpp. Not for front ends;
// they use make_codec() / codec_params() of codec/codec.h.
#include <memory>
#include <vector>

#include "codec/codec.h"

namespace kvwb::codec::detail {

// codec-kakeya.md
const std::vector<ParamSpec>& kakeya_params();
std::unique_ptr<Codec> make_kakeya(const ParamMap& p, size_t head_dim, const CodecResources& r);
// codec-besicovitch.md
const std::vector<ParamSpec>& besicovitch_params();
std::unique_ptr<Codec> make_besicovitch(const ParamMap& p, size_t head_dim);
// codec-peers.md §1: id is kTurbo2, kTurbo3 or kTurbo4
const std::vector<ParamSpec>& turbo_params();
std::unique_ptr<Codec> make_turbo(CodecId id, const ParamMap& p, size_t head_dim);
// codec-peers.md §2: id is one of kQ8_0, kQ4_0, kQ4_1, kQ5_0, kQ5_1, kIq4Nl
const std::vector<ParamSpec>& ggml_params();
std::unique_ptr<Codec> make_ggml(CodecId id, const ParamMap& p, size_t head_dim);
// codec-peers.md §3
const std::vector<ParamSpec>& kivi_params();
std::unique_ptr<Codec> make_kivi(const ParamMap& p, size_t head_dim);
// codec-peers.md §4
const std::vector<ParamSpec>& fp8_params();
std::unique_ptr<Codec> make_fp8(const ParamMap& p, size_t head_dim);
// codec-peers.md §5
const std::vector<ParamSpec>& bf16_params();
std::unique_ptr<Codec> make_bf16(const ParamMap& p, size_t head_dim);

}  // namespace kvwb::codec::detail
