#pragma once
// TurboQuant turbo2 / turbo3 / turbo4 groups (codec-peers.md §1): one 128-value group per block of
// 34 / 50 / 68 bytes:
//   turbo2: fp16 norm | u8 qs[32]                       (2-bit index j at bit 2(j%4) of qs[j/4])
//   turbo3: fp16 norm | u8 qs[32] | u8 signs[16]        (low 2 bits as turbo2, bit 2 at bit j%8
//                                                        of signs[j/8])
//   turbo4: fp16 norm | fp16 rnorm = 0 | u8 qs[64]      (4-bit index j at bit 4(j%2) of qs[j/2])
// The tables (sign diagonals s1, s2 of §1.3, centroids and midpoints of §1.4) come from the
// constexpr builders below and are handed to the group functions as plain arrays.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "codec/kernels/hd.h"
#include "codec/kernels/wht.h"

namespace kvwb::codec::kernels {

/// Values per TurboQuant group.
inline constexpr size_t kTurboGroup = 128;

/// A sign diagonal of §1.3: 128 entries ±1.0f in index order.
struct TurboSigns {
  float value[kTurboGroup];
};

/// The sign table s1 (`which` = 1) or s2 (`which` = 2) exactly as listed in §1.3 (32 per row,
/// '-' = −1); any other `which` gives all +1.
KVWB_HD constexpr TurboSigns turbo_signs_table(int which) noexcept {
  const char* s1 =
      "-++--+-+--+++++++-+-+--+++-++---"
      "-++-++-+-++--+-++++-----+-++++-+"
      "--+---+---+---+++--+++--++-++-+-"
      "-++-+-+-++++-+-++-++-----++-++-+";
  const char* s2 =
      "++++-++-+---+---++--+-+-+--+-+++"
      "++---+------+++-+-+++--+------++"
      "+-+----+-+-+--++-+-++-+----+--+-"
      "+-+++--+-+-++--+-+-++-+-+-----+-";
  TurboSigns t{};
  for (size_t j = 0; j < kTurboGroup; ++j)
    t.value[j] = (which == 1 ? s1[j] : which == 2 ? s2[j] : '+') == '-' ? -1.0f : 1.0f;
  return t;
}

/// Centroids C (2^b ascending f32, as shipped) and midpoints (2^b − 1 ascending) of §1.4.
struct TurboTables {
  unsigned bits;       // 2, 3 or 4 (0 for an unsupported width)
  size_t block_bytes;  // 34, 50, 68
  float centroid[16];
  float midpoint[15];
};

/// The tables of turbo2/3/4 by index width; bits 0 for any other width.
KVWB_HD constexpr TurboTables turbo_tables(unsigned bits) noexcept {
  switch (bits) {
    case 2:
      return {2, 34, {-0.133462f, -0.039994f, 0.039994f, 0.133462f}, {-0.086728f, 0.0f, 0.086728f}};
    case 3:
      return {3,
              50,
              {-0.190685f, -0.117832f, -0.065717f, -0.021460f, 0.021460f, 0.065717f, 0.117832f,
               0.190685f},
              {-0.154259f, -0.091775f, -0.043589f, 0.0f, 0.043589f, 0.091775f, 0.154259f}};
    case 4:
      return {4,
              68,
              {-0.173926f, -0.117195f, -0.089527f, -0.068756f, -0.051262f, -0.035597f, -0.020989f,
               -0.006938f, 0.006938f, 0.020989f, 0.035597f, 0.051262f, 0.068756f, 0.089527f,
               0.117195f, 0.173926f},
              {-0.145560f, -0.103361f, -0.079142f, -0.060009f, -0.043430f, -0.028293f, -0.013963f,
               0.0f, 0.013963f, 0.028293f, 0.043430f, 0.060009f, 0.079142f, 0.103361f, 0.145560f}};
    default:
      return {0, 0, {}, {}};
  }
}

/// Steps 1–5 of §1.2 and the packing of §1.5 for one group x[128] (already zero-padded): writes
/// block bytes 2 .. block_bytes−1 and returns the unrounded corrected norm, which the caller
/// range-checks and stores as fp16 in bytes 0–1. `y` is 128 floats of scratch.
KVWB_HD inline float turbo_encode_group(const TurboTables& t, const float* s1, const float* s2,
                                        const float* x, uint8_t* block, float* y) noexcept {
  const float inv_sqrt128 = 0.08838834764831845f;
  float ss = 0.0f;
  for (size_t j = 0; j < kTurboGroup; ++j) ss += x[j] * x[j];
  const float g = std::sqrt(ss);
  const float inv = g > 1e-10f ? 1.0f / g : 0.0f;
  for (size_t j = 0; j < kTurboGroup; ++j) y[j] = (x[j] * inv) * s1[j];
  wht_pow2(y, kTurboGroup);
  for (size_t j = 0; j < kTurboGroup; ++j) y[j] = (y[j] * inv_sqrt128) * s2[j];

  // idx_j = number of midpoints m with y_j >= m (ties go to the upper cell).
  uint8_t idx[kTurboGroup] = {};
  const size_t n_mid = (size_t{1} << t.bits) - 1;
  for (size_t k = 0; k < n_mid; ++k) {
    const float m = t.midpoint[k];
    for (size_t j = 0; j < kTurboGroup; ++j) idx[j] = static_cast<uint8_t>(idx[j] + (y[j] >= m));
  }
  float r2 = 0.0f;
  for (size_t j = 0; j < kTurboGroup; ++j) {
    const float c = t.centroid[idx[j]];
    r2 += c * c;
  }
  const float r = std::sqrt(r2);
  const float norm = r > 1e-10f ? g / r : g;

  uint8_t* p = block + 2;
  switch (t.bits) {
    case 2:
      for (size_t i = 0; i < 32; ++i)
        p[i] = static_cast<uint8_t>(idx[4 * i] | (idx[4 * i + 1] << 2) | (idx[4 * i + 2] << 4) |
                                    (idx[4 * i + 3] << 6));
      break;
    case 3:
      for (size_t i = 0; i < 32; ++i)
        p[i] = static_cast<uint8_t>((idx[4 * i] & 3) | ((idx[4 * i + 1] & 3) << 2) |
                                    ((idx[4 * i + 2] & 3) << 4) | ((idx[4 * i + 3] & 3) << 6));
      for (size_t i = 0; i < 16; ++i) {
        uint8_t s = 0;
        for (size_t k = 0; k < 8; ++k)
          s = static_cast<uint8_t>(s | (((idx[8 * i + k] >> 2) & 1) << k));
        p[32 + i] = s;
      }
      break;
    default:     // 4
      p[0] = 0;  // rnorm, reserved
      p[1] = 0;
      for (size_t i = 0; i < 64; ++i)
        p[2 + i] = static_cast<uint8_t>(idx[2 * i] | (idx[2 * i + 1] << 4));
      break;
  }
  return norm;
}

/// Dequantises (ŷ = C[idx]·norm) and un-rotates one block into x[128] in the original domain
/// (§1.6): x̂ = s1 ⊙ H(s2 ⊙ ŷ) / √128. `norm` is the block's decoded fp16 norm.
KVWB_HD inline void turbo_decode_group(const TurboTables& t, const float* s1, const float* s2,
                                       const uint8_t* block, float norm, float* x) noexcept {
  const float inv_sqrt128 = 0.08838834764831845f;
  const uint8_t* p = block + 2;
  uint8_t idx[kTurboGroup] = {};
  switch (t.bits) {
    case 2:
      for (size_t j = 0; j < kTurboGroup; ++j) idx[j] = (p[j / 4] >> (2 * (j % 4))) & 3;
      break;
    case 3:
      for (size_t j = 0; j < kTurboGroup; ++j)
        idx[j] = static_cast<uint8_t>(((p[j / 4] >> (2 * (j % 4))) & 3) |
                                      (((p[32 + j / 8] >> (j % 8)) & 1) << 2));
      break;
    default:
      for (size_t j = 0; j < kTurboGroup; ++j) idx[j] = (p[2 + j / 2] >> (4 * (j % 2))) & 15;
      break;
  }
  for (size_t j = 0; j < kTurboGroup; ++j) x[j] = (t.centroid[idx[j]] * norm) * s2[j];
  wht_pow2(x, kTurboGroup);
  for (size_t j = 0; j < kTurboGroup; ++j) x[j] = (x[j] * inv_sqrt128) * s1[j];
}

}  // namespace kvwb::codec::kernels
