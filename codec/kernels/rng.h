#pragma once
// The project RNG (codec-kakeya.md §4): counter-based SplitMix64, so every backend and every
// evaluation order draws identical integers. All randomness in the codecs comes from here.
#include <cmath>
#include <cstdint>

#include "codec/kernels/hd.h"

namespace kvwb::codec::rng {

inline constexpr uint64_t kGamma = 0x9E3779B97F4A7C15ull;
inline constexpr uint64_t kTagSigns = 0x5748545F5349474Eull;   // "WHT_SIGN"
inline constexpr uint64_t kTagKmeans = 0x4B4D45414E535F30ull;  // "KMEANS_0"
inline constexpr uint64_t kTagOmega = 0x525356445F4F4D47ull;   // "RSVD_OMG"
inline constexpr uint64_t kTagCalib = 0x43414C49425F5353ull;   // "CALIB_SS"
inline constexpr uint64_t kTagBesi = 0x424553495F444952ull;    // "BESI_DIR"
inline constexpr uint64_t kTagTest = 0x5445535444415441ull;    // "TESTDATA"
inline constexpr uint64_t kDefaultSeed = 0xCAFEBABEull;

KVWB_HD constexpr uint64_t mix64(uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// i-th output (from 0) of sequential SplitMix64 seeded with `key`.
KVWB_HD constexpr uint64_t splitmix(uint64_t key, uint64_t i) noexcept {
  return mix64(key + (i + 1) * kGamma);
}

/// Uniform on (0, 1], exactly 53 bits.
KVWB_HD constexpr double u01(uint64_t x) noexcept {
  return static_cast<double>((x >> 11) + 1) * (1.0 / 9007199254740992.0);
}
/// Uniform on [0, 1).
KVWB_HD constexpr double u01c(uint64_t x) noexcept {
  return static_cast<double>(x >> 11) * (1.0 / 9007199254740992.0);
}

/// Standard normal number `idx` under key `key` (Box-Muller, cosine branch, f64 then f32).
/// The integers are exact everywhere; the f64 log and cos come from the platform's math library
/// (glibc on the host, CUDA's libdevice on a GPU, both within 1 ulp), so a device that must
/// match the host bit for bit draws these on the host or checks the f32 results.
KVWB_HD inline float normal(uint64_t key, uint64_t idx) noexcept {
  const double u1 = u01(splitmix(key, 2 * idx));
  const double u2 = u01(splitmix(key, 2 * idx + 1));
  const double pi = 3.141592653589793;  // std::numbers::pi (C++20) as a double literal
  const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * pi * u2);
  return static_cast<float>(z);
}

/// WHT sign s_j for a seed: +1 when the low bit of splitmix(seed ^ TAG_SIGNS, j) is 0, else -1.
KVWB_HD inline float wht_sign(uint64_t seed, uint64_t j) noexcept {
  return (splitmix(seed ^ kTagSigns, j) & 1u) ? -1.0f : 1.0f;
}

}  // namespace kvwb::codec::rng
