#pragma once
// TurboQuant production format of TheTom/llama-cpp-turboquant: turbo2 / turbo3 / turbo4
// (codec-peers.md §1). Each head vector of D values is zero-padded to 128·ceil(D/128) and cut
// into 128-value groups; each group is one fixed-size block (34 / 50 / 68 bytes):
//   turbo2: fp16 norm | u8 qs[32]                       (2-bit index j at bit 2(j%4) of qs[j/4])
//   turbo3: fp16 norm | u8 qs[32] | u8 signs[16]        (low 2 bits as turbo2, bit 2 at bit j%8
//                                                        of signs[j/8])
//   turbo4: fp16 norm | fp16 rnorm = 0 | u8 qs[64]      (4-bit index j at bit 4(j%2) of qs[j/2])
// The codec itself is built through make_codec("turbo2" | "turbo3" | "turbo4", {}, D).
#include <cstddef>
#include <cstdint>
#include <span>

#include "codec/format/container.h"
#include "codec/kernels/turbo.h"

namespace kvwb::codec {

/// Values per TurboQuant group.
inline constexpr size_t kTurboGroup = kernels::kTurboGroup;

/// The sign table s1 (`which` = 1) or s2 (`which` = 2) of §1.3: 128 entries ±1.0f, index order.
std::span<const float, kTurboGroup> turbo_signs(int which);

/// Index bits of a turbo type (2, 3, 4); `id` must be kTurbo2 / kTurbo3 / kTurbo4.
unsigned turbo_bits(CodecId id);
/// Bytes of one 128-group block: 34, 50, 68.
size_t turbo_block_bytes(CodecId id);
/// Native bytes of one head vector of `head_dim` values: ceil(D/128) · block bytes.
uint64_t turbo_bytes_per_vector(CodecId id, size_t head_dim);
/// Centroids C (2^b ascending f32, as shipped) and midpoints (2^b − 1 ascending) of §1.4.
std::span<const float> turbo_centroids(CodecId id);
std::span<const float> turbo_midpoints(CodecId id);

/// Encodes one group x[128] (already zero-padded) into `block` (turbo_block_bytes(id) bytes).
/// Throws Fp16Range when the corrected norm exceeds 65504 (field "turbo norm").
void turbo_encode_group(CodecId id, const float* x, uint8_t* block);
/// Decodes one block into x[128] in the original (un-rotated) domain (§1.6).
void turbo_decode_group(CodecId id, const uint8_t* block, float* x);

}  // namespace kvwb::codec
