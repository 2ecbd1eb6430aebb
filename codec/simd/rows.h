#pragma once
// Vectorised row and block kernels behind runtime dispatch (dispatch.h). Each function takes the
// path to use (callers pass active_path() once per unit) and writes exactly the bytes / bits of
// the scalar kernels in codec/kernels/ on every path: only order-independent work (max-abs,
// per-lane multiply/round/convert, packing) is vectorised; sums keep the scalar order.
#include <cstddef>
#include <cstdint>

#include "codec/kernels/ggml.h"
#include "codec/kernels/turbo.h"
#include "codec/simd/dispatch.h"

namespace kvwb::codec::simd {

/// kernels::ggml_quantize_codes on one 32-value block (q8_0 and q4_0 vectorised, the other
/// types scalar): codes into out[2 …), returns d, m and the clip count.
kernels::GgmlFields ggml_quantize(Path p, kernels::GgmlType t, const float* x, uint8_t* out);

/// kernels::ggml_dequantize_codes on one block (q8_0 and q4_0 vectorised).
void ggml_dequantize(Path p, kernels::GgmlType t, const uint8_t* in, float d, float m, float* x);

/// q8_0 or q4_0 on `n` consecutive 32-value blocks x[32·n] into n blocks at out (block bytes
/// each, fp16 d included), the same bytes as ggml_quantize + f32_to_f16_bits per block; adds the
/// clip count to `clipped`. Returns false, leaving `out` unspecified, when the path has no batched
/// kernel for the type (the scalar path, other types), when some x is NaN or ±infinity, or when
/// some |d| > 65504: the caller then runs its per-block reference loop, which raises the error.
bool ggml_quantize_blocks(Path p, kernels::GgmlType t, const float* x, size_t n, uint8_t* out,
                          uint64_t& clipped);

/// Dequantises `n` consecutive blocks of type t (fp16 d and m read from the blocks) into
/// x[32·n], as ggml_dequantize per block. Returns the index of the first block whose d or m is
/// not finite (blocks before it are written; the caller raises), or n.
size_t ggml_dequantize_blocks(Path p, kernels::GgmlType t, const uint8_t* in, size_t n, float* x);

/// bf16 bits (kernels::f32_to_bf16_bits) of x[0 … n) into out[0 … n) as little-endian u16 bytes
/// (2n bytes). Returns the index of the first value whose bf16 is ±infinity (the caller raises
/// the range error), or n; bytes before that index are written.
size_t f32_to_bf16_row(Path p, const float* x, size_t n, uint8_t* out);

/// f32 of n little-endian bf16 values. Returns the index of the first non-finite one (the caller
/// raises), or n.
size_t bf16_to_f32_row(Path p, const uint8_t* in, size_t n, float* out);

/// kernels::f16_bits_to_f32 of in[0 … n) into out[0 … n), every value (non-finite ones too,
/// with the scalar kernel's bits: F16C converts only 8-value runs without an all-ones exponent).
void f16_to_f32_row(Path p, const uint16_t* in, size_t n, float* out);

/// kernels::wht_pow2 (in place, n a power of two): every butterfly output is the same single f32
/// add or subtract, so all paths give the same bits.
void wht(Path p, float* v, size_t n);

/// kernels::hadamard_chunks_pow2 with the vector WHT.
void hadamard_chunks(Path p, float* v, size_t d, size_t n_rot);

/// kernels::turbo_encode_group (same bytes and returned norm): the two norms keep the scalar
/// index-order sums; scaling, signs, WHT, midpoint counting and centroid lookup are vectorised.
float turbo_encode_group(Path p, const kernels::TurboTables& t, const float* s1, const float* s2,
                         const float* x, uint8_t* block, float* y);

/// turbo_encode_group on `count` consecutive 128-value groups x[128·i …] into consecutive blocks
/// (codes only; norms[i] is group i's unrounded norm for the caller to range-check and store).
void turbo_encode_groups(Path p, const kernels::TurboTables& t, const float* s1, const float* s2,
                         const float* x, size_t count, uint8_t* blocks, float* norms);

/// kernels::turbo_decode_group (same bits).
void turbo_decode_group(Path p, const kernels::TurboTables& t, const float* s1, const float* s2,
                        const uint8_t* block, float norm, float* x);

/// Index of the first NaN or ±infinity in x[0 … n), or n.
size_t first_non_finite(Path p, const float* x, size_t n);

}  // namespace kvwb::codec::simd
