#pragma once
// bf16 passthrough (codec-peers.md §5): each value rounded to bf16 (round-to-nearest-even),
// 2 bytes per value, ratio 1.00×. Built through make_codec("bf16", {}, D).
#include <cstddef>
#include <cstdint>

namespace kvwb::codec {

/// Native bytes of one head vector stored as bf16: 2·D.
constexpr uint64_t bf16_bytes_per_vector(size_t head_dim) noexcept { return 2ull * head_dim; }

}  // namespace kvwb::codec
