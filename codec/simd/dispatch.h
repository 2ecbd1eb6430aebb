#pragma once
// Runtime SIMD dispatch for the CPU codecs. The release binary is built for baseline x86-64
// (x86-64-v2); the vector paths are compiled per function (target attributes) and chosen once at
// start from cpuid: the best path the CPU has, or a lower one forced by the environment variable
// KVWB_SIMD=scalar|avx2|avx512. Every path writes the same bytes as the scalar one (the golden test
// runs under each path the machine supports).
#include <string>

namespace kvwb::codec::simd {

/// A dispatch path, lowest first.
enum class Path : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

/// "scalar", "avx2" or "avx512".
const char* path_name(Path p);

/// Whether this CPU can run the path (avx2: AVX2 + F16C; avx512: AVX-512 F, BW, VL, DQ).
bool cpu_supports(Path p);

/// The best path this CPU runs.
Path best_path();

/// The path the codecs use: KVWB_SIMD when set, else best_path(). Decided on the first call and
/// remembered. Throws InvalidArgument for an unknown KVWB_SIMD value and Unsupported for a path
/// the CPU lacks (front ends call it at start so the error comes before any work).
Path active_path();

/// One line for `kvwb backends`: the active path, the best one, and how it was chosen.
std::string describe_dispatch();

}  // namespace kvwb::codec::simd
