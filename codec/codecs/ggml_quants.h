#pragma once
// llama.cpp block quantisers q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl (codec-peers.md §2), exactly as
// the reference C row quantisers. A block is 32 consecutive values of a head vector (D mod 32 = 0):
//   q8_0   34 B: fp16 d | i8 qs[32]
//   q4_0   18 B: fp16 d | u8 qs[16]                (element j < 16 low nibble of qs[j], j+16 high)
//   q4_1   20 B: fp16 d | fp16 m | u8 qs[16]
//   q5_0   22 B: fp16 d | u8 qh[4] | u8 qs[16]      (5th bit of element j = bit j of LE u32 qh)
//   q5_1   24 B: fp16 d | fp16 m | u8 qh[4] | u8 qs[16]
//   iq4_nl 18 B: fp16 d | u8 qs[16]                (4-bit indices into the non-linear table)
// Optional Hadamard pre-rotation (§2.7): parameter rotate = none | hadamard64 | hadamard_max.
// The codecs are built through make_codec("q8_0", {{"rotate", "none"}}, D) etc.
#include <cstddef>
#include <cstdint>

#include "codec/format/container.h"
#include "codec/kernels/ggml.h"

namespace kvwb::codec {

/// Values per ggml block.
inline constexpr size_t kGgmlBlock = kernels::kGgmlBlock;

/// Pre-rotation of §2.7 (stored as this u8 in the container's parameter block).
enum class GgmlRotate : uint8_t { kNone = 0, kHadamard64 = 1, kHadamardMax = 2 };

/// Bytes of one 32-value block: 34, 18, 20, 22, 24, 18; throws InvalidArgument for other ids.
size_t ggml_block_bytes(CodecId id);
/// Native bytes of one head vector: (D/32) · block bytes (D must be a multiple of 32).
uint64_t ggml_bytes_per_vector(CodecId id, size_t head_dim);

/// Chunk size n_rot of a rotation mode for head dimension D: 0 for none, 64 for hadamard64
/// (Unsupported unless D mod 64 = 0), the largest power of two dividing D for hadamard_max.
size_t ggml_rotation_size(GgmlRotate mode, size_t head_dim);
/// Applies the orthonormal block-diagonal Sylvester–Hadamard matrix, (−1)^popcount(i&j)/√n_rot
/// per chunk of n_rot consecutive values, to v[0 … d−1] in place. It is its own inverse.
void hadamard_chunks(float* v, size_t d, size_t n_rot);

/// Quantises one block x[32] into `out` (ggml_block_bytes(id) bytes) as the reference quantiser.
/// Returns the number of codes clipped by the reference's MIN(15|31, ·) clamp. Throws Fp16Range
/// when a scale or minimum exceeds 65504 (field "d" or "m").
uint32_t ggml_quantize_block(CodecId id, const float* x, uint8_t* out);
/// Dequantises one block into x[32] as the reference dequantiser.
void ggml_dequantize_block(CodecId id, const uint8_t* in, float* x);

}  // namespace kvwb::codec
