// Codec speed: encode + decode of one 4096 × 128 stream (8 blocks of 512 rows), one core.
//
//   bench_codecs [Google Benchmark flags]   warm table (Google Benchmark, after a warm-up), then
//                                           each case three more times, each in a fresh process
//                                           (cold: the first encode + decode, unwarmed heap and
//                                           caches; the median of the three), then the summary
//   bench_codecs --cold=I                   (internal) case I once in this process; prints its ms
//
// The summary gives per case the warm median, the cold median, M values/s, the ratio of warm time to
// the bf16-passthrough baseline of the same run, and the codec issue's targets: MET / MISSED, or
// "not run" (MISSED) for a case that did not run (e.g. filtered out, --benchmark_list_tests). The
// SIMD dispatch path in use (codec/simd, KVWB_SIMD) is printed first.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "base/allocator.h"
#include "codec/codec.h"
#include "codec/math/rng.h"
#include "codec/simd/dispatch.h"

namespace {

constexpr size_t kRows = 4096, kDim = 128;
constexpr int kRepetitions = 5;

/// Key-like test stream: rank-32 structure plus noise (codec-kakeya.md §13.6 generator).
const std::vector<float>& stream() {
  static const std::vector<float> data = [] {
    std::vector<float> d(kRows * kDim);
    kvwb::codec::rng::synthetic(d.data(), kRows, kDim, 32, 0.05, 2024);
    return d;
  }();
  return data;
}

struct Case {
  std::string label, codec;
  kvwb::codec::ParamMap params;
  double max_ms = 0;       // target: median ms per stream at most this, warm and cold (0 = none)
  double min_mvalues = 0;  // target: at least this many M values/s, warm (0 = none)
};

// Targets of issue 16 (one core, 4096 × 128, median).
const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {"bf16 (baseline)", "bf16", {}},
      {"q8_0", "q8_0", {}, 0, 3000},
      {"q4_0", "q4_0", {}, 0, 1000},
      {"turbo3", "turbo3", {}, 0, 500},
      {"kakeya exact b=3", "kakeya_pca", {{"bit_width", "3"}, {"pca_method", "exact"}}, 10, 0},
      {"kakeya rsvd b=2", "kakeya_pca", {{"bit_width", "2"}, {"pca_method", "randomized"}}},
      {"besicovitch d=3 m=4",
       "besicovitch",
       {{"group_size", "2"},
        {"direction_bits", "3"},
        {"magnitude_mode", "quantized"},
        {"magnitude_bits", "4"},
        {"subtract_mean", "true"}},
       8,
       0},
  };
  return c;
}

kvwb::codec::UnitInput bench_input() {
  kvwb::codec::UnitInput in;
  in.rows = stream().data();
  in.n = kRows;
  in.dim = kDim;
  in.info.block_size = 512;
  in.info.stream = kvwb::codec::Stream::kK;
  return in;
}

void BM_EncodeDecode(benchmark::State& state, const Case& c) {
  auto codec = kvwb::codec::make_codec(c.codec, c.params, kDim);
  const kvwb::codec::UnitInput in = bench_input();
  size_t bytes = 0;
  for (auto _ : state) {
    auto enc = codec->encode(in);
    auto dec = codec->decode(enc.bytes, "bench");
    benchmark::DoNotOptimize(dec.rows.data());
    bytes = enc.reported_bytes;
  }
  state.counters["values/s"] = benchmark::Counter(static_cast<double>(kRows * kDim),
                                                  benchmark::Counter::kIsIterationInvariantRate);
  state.counters["ratio_vs_bf16"] =
      static_cast<double>(kRows * kDim * 2) / static_cast<double>(bytes);
}

double thread_cpu_ms() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) * 1e-6;
}

/// Case i once, in this (fresh) process: codec construction excluded, input generated first.
int run_cold(size_t i) {
  if (i >= cases().size()) return 2;
  const Case& c = cases()[i];
  auto codec = kvwb::codec::make_codec(c.codec, c.params, kDim);
  const kvwb::codec::UnitInput in = bench_input();
  const double c0 = thread_cpu_ms();
  const auto t0 = std::chrono::steady_clock::now();
  auto enc = codec->encode(in);
  auto dec = codec->decode(enc.bytes, "bench");
  benchmark::DoNotOptimize(dec.rows.data());
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%.6f %.6f\n", ms, thread_cpu_ms() - c0);
  return 0;
}

struct Times {
  double wall = -1, cpu = -1;  // ms; negative: not measured / failed
};

/// Cold wall and CPU time of case i from one fresh process of this binary.
Times measure_cold_once(size_t i, const std::string& self) {
  const std::string cmd = "'" + self + "' --cold=" + std::to_string(i);
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return {};
  Times t;
  if (std::fscanf(p, "%lf %lf", &t.wall, &t.cpu) != 2) t = {};
  return pclose(p) == 0 ? t : Times{};
}

/// Fresh processes per cold figure: a single cold run is one sample, so a stray interrupt or
/// page-cache miss decides it; the median of three is still a run alone in a new process.
constexpr int kColdRuns = 3;

/// Median (by CPU time) of kColdRuns cold runs of case i; not measured if any run failed.
Times measure_cold(size_t i, const std::string& self) {
  std::vector<Times> runs;
  for (int r = 0; r < kColdRuns; ++r) {
    const Times t = measure_cold_once(i, self);
    if (t.cpu < 0) return {};
    runs.push_back(t);
  }
  std::sort(runs.begin(), runs.end(), [](const Times& a, const Times& b) { return a.cpu < b.cpu; });
  return runs[runs.size() / 2];
}

/// Collects per-repetition times so the summary can print medians.
class Collector : public benchmark::ConsoleReporter {
 public:
  std::map<std::string, std::vector<double>> ms, cpu_ms;
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs)
      if (r.run_type == Run::RT_Iteration) {
        ms[r.benchmark_name()].push_back(r.GetAdjustedRealTime());  // in the run's unit: ms
        cpu_ms[r.benchmark_name()].push_back(r.GetAdjustedCPUTime());
      }
    ConsoleReporter::ReportRuns(runs);
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::string bench_name(const Case& c) { return "encode+decode/" + c.label; }

}  // namespace

int main(int argc, char** argv) {
  kvwb::keep_freed_memory_for_reuse();  // as kvwb does
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--cold=", 7) == 0)
      return run_cold(static_cast<size_t>(std::strtoul(argv[i] + 7, nullptr, 10)));
  std::string path;
  try {
    path = kvwb::codec::simd::describe_dispatch();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_codecs: %s\n", e.what());
    return 2;
  }
  for (const auto& c : cases())
    benchmark::RegisterBenchmark(bench_name(c).c_str(), BM_EncodeDecode, c)
        ->Unit(benchmark::kMillisecond)
        ->MinWarmUpTime(0.1)
        ->Repetitions(kRepetitions)
        ->UseRealTime();
  benchmark::Initialize(&argc, argv);
  Collector rep;
  const size_t ran = benchmark::RunSpecifiedBenchmarks(&rep);
  const std::string suffix = "/min_warmup_time:0.100/repeats:" + std::to_string(kRepetitions) + "/real_time";
  // This binary's own path (popen runs a shell, so /proc/self/exe must be resolved here).
  std::error_code ec;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  std::vector<Times> warm(cases().size()), cold(cases().size());
  for (size_t i = 0; i < cases().size(); ++i) {
    const std::string key = bench_name(cases()[i]) + suffix;
    if (rep.ms[key].empty()) continue;
    warm[i] = {median(rep.ms[key]), median(rep.cpu_ms[key])};
    cold[i] = measure_cold(i, self);  // only for cases that ran (the filter holds)
  }
  std::printf("\nSummary: encode + decode of a %zu x %zu stream, one core; %s\n", kRows, kDim, path.c_str());
  std::printf(
      "warm: median of %d repetitions after warm-up; cold: median of %d runs, each alone in a fresh\n"
      "process.\n"
      "wall and CPU ms (CPU = this thread's time: on a loaded machine wall time also counts waiting\n"
      "for the core; targets are judged on CPU time, ratios are CPU time / bf16 CPU time)\n",
      kRepetitions, kColdRuns);
  std::printf("%-20s %8s %8s %8s %8s %10s %7s  %s\n", "codec", "warm", "warm", "cold", "cold",
              "M values/s", "x bf16", "target");
  std::printf("%-20s %8s %8s %8s %8s %10s %7s\n", "", "wall ms", "CPU ms", "wall ms", "CPU ms",
              "(CPU)", "(CPU)");
  const double base = warm[0].cpu;
  int missed = 0;
  for (size_t i = 0; i < cases().size(); ++i) {
    const Case& c = cases()[i];
    const bool has_target = c.max_ms > 0 || c.min_mvalues > 0;
    if (warm[i].cpu <= 0) {
      std::printf("%-20s %8s %8s %8s %8s %10s %7s  %s\n", c.label.c_str(), "not run", "-", "-",
                  "-", "-", "-", has_target ? "MISSED (not run)" : "not run");
      missed += has_target ? 1 : 0;
      continue;
    }
    const double m = warm[i].cpu;
    const double mvs = kRows * kDim / (m * 1e3);
    std::string target = "-";
    char t[96];
    if (c.max_ms > 0) {
      const bool ok = m <= c.max_ms && cold[i].cpu > 0 && cold[i].cpu <= c.max_ms;
      std::snprintf(t, sizeof t, "<= %g ms warm and cold: %s", c.max_ms, ok ? "MET" : "MISSED");
      target = t;
      missed += ok ? 0 : 1;
    }
    if (c.min_mvalues > 0) {
      const bool ok = mvs >= c.min_mvalues;
      std::snprintf(t, sizeof t, ">= %g M values/s: %s", c.min_mvalues, ok ? "MET" : "MISSED");
      target = t;
      missed += ok ? 0 : 1;
    }
    char cw[32] = "failed", cc[32] = "failed";
    if (cold[i].wall > 0) std::snprintf(cw, sizeof cw, "%.3f", cold[i].wall);
    if (cold[i].cpu > 0) std::snprintf(cc, sizeof cc, "%.3f", cold[i].cpu);
    char ratio[32] = "-";
    if (base > 0) std::snprintf(ratio, sizeof ratio, "%.1f", m / base);
    std::printf("%-20s %8.3f %8.3f %8s %8s %10.1f %7s  %s\n", c.label.c_str(), warm[i].wall, m, cw,
                cc, mvs, ratio, target.c_str());
  }
  std::printf("%zu benchmark(s) ran; %d target(s) missed or not run\n", ran, missed);
  return 0;
}
