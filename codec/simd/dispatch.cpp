#include "codec/simd/dispatch.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string_view>

#include "base/errors.h"

namespace kvwb::codec::simd {

namespace {

constexpr const char* kEnv = "KVWB_SIMD";

Path choose() {
  const char* env = std::getenv(kEnv);
  if (env == nullptr || *env == '\0') return best_path();
  const std::string_view v(env);
  Path p;
  if (v == "scalar")
    p = Path::kScalar;
  else if (v == "avx2")
    p = Path::kAvx2;
  else if (v == "avx512")
    p = Path::kAvx512;
  else
    throw InvalidArgument(std::string(kEnv) + "='" + std::string(v) +
                          "' is not a SIMD path (expected scalar, avx2 or avx512)");
  if (!cpu_supports(p))
    throw Unsupported(std::string(kEnv) + "=" + path_name(p) + ": this CPU lacks " +
                      (p == Path::kAvx2 ? "AVX2/F16C" : "AVX-512 F/BW/VL/DQ") +
                      " (best path here: " + path_name(best_path()) + ")");
  return p;
}

}  // namespace

const char* path_name(Path p) {
  switch (p) {
    case Path::kScalar:
      return "scalar";
    case Path::kAvx2:
      return "avx2";
    case Path::kAvx512:
      return "avx512";
  }
  return "?";
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
/// F16C from CPUID leaf 1 (ECX bit 29): clang's __builtin_cpu_supports has no "f16c".
static bool has_f16c() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  return __get_cpuid(1, &a, &b, &c, &d) != 0 && (c & (1u << 29)) != 0;
}
#endif

bool cpu_supports(Path p) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  switch (p) {
    case Path::kScalar:
      return true;
    case Path::kAvx2:
      return __builtin_cpu_supports("avx2") && has_f16c();
    case Path::kAvx512:
      return cpu_supports(Path::kAvx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512dq");
  }
  return false;
#else
  return p == Path::kScalar;
#endif
}

Path best_path() {
  if (cpu_supports(Path::kAvx512)) return Path::kAvx512;
  if (cpu_supports(Path::kAvx2)) return Path::kAvx2;
  return Path::kScalar;
}

Path active_path() {
  // -1 until chosen; a throw leaves it unset, so every later call reports the error again.
  static std::atomic<int> chosen{-1};
  static std::mutex mu;
  const int c = chosen.load(std::memory_order_acquire);
  if (c >= 0) return static_cast<Path>(c);
  const std::lock_guard<std::mutex> lock(mu);
  if (chosen.load(std::memory_order_relaxed) < 0)
    chosen.store(static_cast<int>(choose()), std::memory_order_release);
  return static_cast<Path>(chosen.load(std::memory_order_relaxed));
}

std::string describe_dispatch() {
  const Path best = best_path();
  const char* env = std::getenv(kEnv);
  const bool forced = env != nullptr && *env != '\0';
  return std::string("SIMD path ") + path_name(active_path()) + " (best on this CPU: " +
         path_name(best) + (forced ? std::string(", forced by ") + kEnv : std::string()) + ")";
}

}  // namespace kvwb::codec::simd
