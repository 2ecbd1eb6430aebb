#pragma once
// llama.cpp block quantisers q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl (codec-peers.md §2), exactly as
// the reference C row quantisers, one 32-value block at a time. Byte layout of a block (the fp16
// fields d, m are written by the caller, which range-checks them; these functions write the codes):
//   q8_0   34 B: fp16 d | i8 qs[32]
//   q4_0   18 B: fp16 d | u8 qs[16]                (element j < 16 low nibble of qs[j], j+16 high)
//   q4_1   20 B: fp16 d | fp16 m | u8 qs[16]
//   q5_0   22 B: fp16 d | u8 qh[4] | u8 qs[16]      (5th bit of element j = bit j of LE u32 qh)
//   q5_1   24 B: fp16 d | fp16 m | u8 qh[4] | u8 qs[16]
//   iq4_nl 18 B: fp16 d | u8 qs[16]                (4-bit indices into the non-linear table)
// Optional Hadamard pre-rotation (§2.7): hadamard_chunks below.
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "codec/kernels/hd.h"
#include "codec/kernels/wht.h"

namespace kvwb::codec::kernels {

/// Values per ggml block.
inline constexpr size_t kGgmlBlock = 32;

enum class GgmlType : uint8_t { kQ8_0, kQ4_0, kQ4_1, kQ5_0, kQ5_1, kIq4Nl };

/// Bytes of one 32-value block: 34, 18, 20, 22, 24, 18.
KVWB_HD constexpr size_t ggml_block_bytes(GgmlType t) noexcept {
  switch (t) {
    case GgmlType::kQ8_0:
      return 34;
    case GgmlType::kQ4_0:
      return 18;
    case GgmlType::kQ4_1:
      return 20;
    case GgmlType::kQ5_0:
      return 22;
    case GgmlType::kQ5_1:
      return 24;
    case GgmlType::kIq4Nl:
      return 18;
  }
  return 0;
}

/// Whether the type stores a minimum m after d.
KVWB_HD constexpr bool ggml_has_min(GgmlType t) noexcept {
  return t == GgmlType::kQ4_1 || t == GgmlType::kQ5_1;
}

/// The iq4_nl non-linear table (kvalues_iq4nl of ggml).
struct Iq4nlTable {
  int8_t value[16];
};
KVWB_HD constexpr Iq4nlTable iq4nl_table() noexcept {
  return {{-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113}};
}

/// Fields of one quantised block before fp16 conversion (the caller stores them).
struct GgmlFields {
  float d = 0.0f;
  float m = 0.0f;
  bool has_m = false;
  uint32_t clipped = 0;  // codes clipped by the reference's MIN(15|31, ·) clamp
};

namespace ggml_detail {

// (first) signed value of largest magnitude, and that magnitude (q4_0, q5_0, iq4_nl).
KVWB_HD inline void signed_absmax(const float* x, float& amax, float& max) noexcept {
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

KVWB_HD inline void min_max(const float* x, float& mn, float& mx) noexcept {
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
KVWB_HD inline int trunc_code(float v, int top) noexcept {
  if (!(v >= 0.0f)) return 0;
  const float hi = static_cast<float>(top + 1);
  return v >= hi ? top + 1 : static_cast<int>(v);
}

// Nibbles: element j < 16 low nibble of qs[j], element j + 16 high nibble.
KVWB_HD inline void pack_nibbles(const uint8_t* q, uint8_t* qs) noexcept {
  for (size_t j = 0; j < 16; ++j)
    qs[j] = static_cast<uint8_t>((q[j] & 15) | ((q[j + 16] & 15) << 4));
}
KVWB_HD inline void pack_qh(const uint8_t* q, uint8_t* qh) noexcept {
  uint32_t h = 0;
  for (size_t j = 0; j < kGgmlBlock; ++j) h |= static_cast<uint32_t>((q[j] >> 4) & 1u) << j;
  for (size_t k = 0; k < 4; ++k) qh[k] = static_cast<uint8_t>(h >> (8 * k));  // little-endian
}
KVWB_HD inline void unpack_nibbles(const uint8_t* qs, uint8_t* q) noexcept {
  for (size_t j = 0; j < 16; ++j) {
    q[j] = qs[j] & 15;
    q[j + 16] = qs[j] >> 4;
  }
}
KVWB_HD inline void unpack_qh(const uint8_t* qh, uint8_t* q) noexcept {
  const uint32_t h = static_cast<uint32_t>(qh[0]) | (static_cast<uint32_t>(qh[1]) << 8) |
                     (static_cast<uint32_t>(qh[2]) << 16) | (static_cast<uint32_t>(qh[3]) << 24);
  for (size_t j = 0; j < kGgmlBlock; ++j)
    q[j] = static_cast<uint8_t>(q[j] | (((h >> j) & 1u) << 4));
}

}  // namespace ggml_detail

/// Quantises one block x[32] as the reference quantiser: writes every byte of `out` after the
/// fp16 field(s) (out[0..ggml_block_bytes) is the block) and returns d, m and the clip count.
KVWB_HD inline GgmlFields ggml_quantize_codes(GgmlType type, const float* x,
                                              uint8_t* out) noexcept {
  using namespace ggml_detail;
  GgmlFields f;
  uint8_t q[kGgmlBlock] = {};
  switch (type) {
    case GgmlType::kQ8_0: {
      float amax = 0.0f;
      for (size_t j = 0; j < kGgmlBlock; ++j) {
        const float a = std::fabs(x[j]);
        amax = amax < a ? a : amax;  // std::max(amax, a)
      }
      f.d = amax / 127.0f;
      const float id = f.d != 0.0f ? 1.0f / f.d : 0.0f;
      for (size_t j = 0; j < kGgmlBlock; ++j) {
        // roundf: half away from zero; |v| <= 127 whenever id is finite (pinned otherwise).
        const float v = std::roundf(x[j] * id);
        const int c = std::isnan(v)  ? 0
                      : v >= 127.0f  ? 127
                      : v <= -127.0f ? -127
                                     : static_cast<int>(v);
        out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(c));
      }
      return f;
    }
    case GgmlType::kQ4_0:
    case GgmlType::kQ5_0: {
      const bool five = type == GgmlType::kQ5_0;
      float amax = 0.0f;
      float max = 0.0f;
      signed_absmax(x, amax, max);
      f.d = max / (five ? -16.0f : -8.0f);
      const float id = f.d != 0.0f ? 1.0f / f.d : 0.0f;
      const float off = five ? 16.5f : 8.5f;
      const int top = five ? 31 : 15;
      for (size_t j = 0; j < kGgmlBlock; ++j) {
        const int t = trunc_code(x[j] * id + off, top);  // truncation toward zero
        if (t > top) ++f.clipped;
        q[j] = static_cast<uint8_t>(t < top ? t : top);
      }
      if (five) {
        pack_qh(q, out + 2);
        pack_nibbles(q, out + 6);
      } else {
        pack_nibbles(q, out + 2);
      }
      return f;
    }
    case GgmlType::kQ4_1:
    case GgmlType::kQ5_1: {
      const bool five = type == GgmlType::kQ5_1;
      float mn = 0.0f;
      float mx = 0.0f;
      min_max(x, mn, mx);
      const int top = five ? 31 : 15;
      f.d = (mx - mn) / static_cast<float>(top);
      f.m = mn;
      f.has_m = true;
      const float id = f.d != 0.0f ? 1.0f / f.d : 0.0f;
      for (size_t j = 0; j < kGgmlBlock; ++j) {
        const int t = trunc_code((x[j] - mn) * id + 0.5f, top);
        // q5_1 has no clamp in the reference; t <= 31 always holds there (kept for memory safety).
        if (t > top) ++f.clipped;
        q[j] = static_cast<uint8_t>(t < top ? t : top);
      }
      if (five) {
        pack_qh(q, out + 4);
        pack_nibbles(q, out + 8);
      } else {
        pack_nibbles(q, out + 4);
      }
      return f;
    }
    case GgmlType::kIq4Nl: {
      constexpr Iq4nlTable kv = iq4nl_table();
      float amax = 0.0f;
      float max = 0.0f;
      signed_absmax(x, amax, max);
      if (amax < 1e-15f) {
        f.d = 0.0f;
        pack_nibbles(q, out + 2);
        return f;
      }
      const float d0 = max / static_cast<float>(kv.value[0]);
      const float id = 1.0f / d0;
      float sumqx = 0.0f;
      float sumq2 = 0.0f;
      for (size_t j = 0; j < kGgmlBlock; ++j) {
        const float v = id * x[j];
        int l = 0;
        if (v <= kv.value[0]) {
          l = 0;
        } else if (v >= kv.value[15]) {
          l = 15;
        } else {
          // The reference's bisection ends at kv[mu−1] <= v < kv[mu]; counting the table entries
          // <= v finds the same mu without branches.
          int mu = 0;
          for (int k = 0; k < 16; ++k) mu += v >= static_cast<float>(kv.value[k]) ? 1 : 0;
          l = v - kv.value[mu - 1] < kv.value[mu] - v ? mu - 1 : mu;  // ties go up
        }
        q[j] = static_cast<uint8_t>(l);
        const float w = x[j] * x[j];
        const float k = static_cast<float>(kv.value[l]);
        sumqx += w * k * x[j];
        sumq2 += w * k * k;
      }
      f.d = sumq2 != 0.0f ? sumqx / sumq2 : 0.0f;
      pack_nibbles(q, out + 2);
      return f;
    }
  }
  return f;
}

/// Dequantises one block (codes in `in`, fp16 fields already decoded to d and m) into x[32].
KVWB_HD inline void ggml_dequantize_codes(GgmlType type, const uint8_t* in, float d, float m,
                                          float* x) noexcept {
  using namespace ggml_detail;
  uint8_t q[kGgmlBlock] = {};
  switch (type) {
    case GgmlType::kQ8_0:
      for (size_t j = 0; j < kGgmlBlock; ++j)
        x[j] = static_cast<float>(static_cast<int8_t>(in[2 + j])) * d;
      return;
    case GgmlType::kQ4_0:
      unpack_nibbles(in + 2, q);
      for (size_t j = 0; j < kGgmlBlock; ++j) x[j] = static_cast<float>(q[j] - 8) * d;
      return;
    case GgmlType::kQ4_1:
      unpack_nibbles(in + 4, q);
      for (size_t j = 0; j < kGgmlBlock; ++j) x[j] = static_cast<float>(q[j]) * d + m;
      return;
    case GgmlType::kQ5_0:
      unpack_nibbles(in + 6, q);
      unpack_qh(in + 2, q);
      for (size_t j = 0; j < kGgmlBlock; ++j) x[j] = static_cast<float>(q[j] - 16) * d;
      return;
    case GgmlType::kQ5_1:
      unpack_nibbles(in + 8, q);
      unpack_qh(in + 4, q);
      for (size_t j = 0; j < kGgmlBlock; ++j) x[j] = static_cast<float>(q[j]) * d + m;
      return;
    case GgmlType::kIq4Nl: {
      constexpr Iq4nlTable kv = iq4nl_table();
      unpack_nibbles(in + 2, q);
      for (size_t j = 0; j < kGgmlBlock; ++j) x[j] = d * static_cast<float>(kv.value[q[j]]);
      return;
    }
  }
}

/// The orthonormal block-diagonal Sylvester–Hadamard matrix of §2.7, (−1)^popcount(i&j)/√n_rot
/// per chunk of n_rot consecutive values, applied to v[0 … d−1] in place; its own inverse.
/// n_rot must be a power of two dividing d (callers check).
KVWB_HD inline void hadamard_chunks_pow2(float* v, size_t d, size_t n_rot) noexcept {
  const float scale = 1.0f / std::sqrt(static_cast<float>(n_rot));
  for (size_t c = 0; c < d; c += n_rot) {
    wht_pow2(v + c, n_rot);
    for (size_t j = c; j < c + n_rot; ++j) v[j] *= scale;
  }
}

}  // namespace kvwb::codec::kernels
