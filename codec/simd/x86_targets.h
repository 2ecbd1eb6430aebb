#pragma once
// Private to the codec/simd/*.cpp kernels: whether x86 vector paths are compiled
// (KVWB_SIMD_X86), <immintrin.h>, and the per-function target attributes of the two paths
// (dispatch.h: avx2 = AVX2 + F16C, avx512 = AVX-512 F/BW/VL/DQ). The translation units stay
// baseline x86-64; only functions marked KVWB_AVX2 / KVWB_AVX512 use the wider instructions.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define KVWB_SIMD_X86 1
#include <immintrin.h>
#if !defined(__clang__)
// GCC 12 reports its own _mm512_undefined_* placeholders inside the AVX-512 intrinsics as
// uninitialised (a known false positive); nothing of ours is affected.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define KVWB_AVX2 __attribute__((target("avx2,f16c")))
#define KVWB_AVX512 __attribute__((target("avx2,f16c,avx512f,avx512bw,avx512vl,avx512dq")))
#else
#define KVWB_SIMD_X86 0
#endif
