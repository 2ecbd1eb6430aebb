// Codec speed: encode + decode of one 4096 × 128 stream (8 blocks of 512 rows), one core.
// Prints Google Benchmark's table, then a summary with medians, throughput, the ratio against a
// bf16-passthrough baseline measured in the same run, and the targets of the codec issue:
//   Kakeya exact b=3 <= 35 ms per stream; turbo3 >= 50 M values/s.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "codec/math/rng.h"

namespace {

constexpr size_t kRows = 4096, kDim = 128;

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
  double max_ms = 0;       // target: median ms per stream at most this (0 = none)
  double min_mvalues = 0;  // target: at least this many M values/s (0 = none)
};

const std::vector<Case>& cases() {
  static const std::vector<Case> c = {
      {"bf16 (baseline)", "bf16", {}},
      {"kakeya exact b=3", "kakeya_pca", {{"bit_width", "3"}, {"pca_method", "exact"}}, 35, 0},
      {"kakeya rsvd b=2", "kakeya_pca", {{"bit_width", "2"}, {"pca_method", "randomized"}}},
      {"besicovitch d=3 m=4",
       "besicovitch",
       {{"group_size", "2"},
        {"direction_bits", "3"},
        {"magnitude_mode", "quantized"},
        {"magnitude_bits", "4"},
        {"subtract_mean", "true"}}},
      {"turbo3", "turbo3", {}, 0, 50},
      {"q8_0", "q8_0", {}},
  };
  return c;
}

void BM_EncodeDecode(benchmark::State& state, const Case& c) {
  auto codec = kvwb::codec::make_codec(c.codec, c.params, kDim);
  kvwb::codec::UnitInput in;
  in.rows = stream().data();
  in.n = kRows;
  in.dim = kDim;
  in.info.block_size = 512;
  in.info.stream = kvwb::codec::Stream::kK;
  size_t bytes = 0;
  for (auto _ : state) {
    auto enc = codec->encode(in);
    auto dec = codec->decode(enc.bytes, "bench");
    benchmark::DoNotOptimize(dec.rows.data());
    bytes = enc.reported_bytes;
  }
  state.counters["values/s"] = benchmark::Counter(static_cast<double>(kRows * kDim), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["ratio_vs_bf16"] = static_cast<double>(kRows * kDim * 2) / static_cast<double>(bytes);
}

/// Collects per-repetition times so the summary can print medians.
class Collector : public benchmark::ConsoleReporter {
 public:
  std::map<std::string, std::vector<double>> ms;
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const auto& r : runs)
      if (r.run_type == Run::RT_Iteration) ms[r.benchmark_name()].push_back(r.GetAdjustedRealTime());  // in the run's unit: ms
    ConsoleReporter::ReportRuns(runs);
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  for (const auto& c : cases())
    benchmark::RegisterBenchmark(("encode+decode/" + c.label).c_str(), BM_EncodeDecode, c)
        ->Unit(benchmark::kMillisecond)
        ->Repetitions(5)
        ->UseRealTime();
  benchmark::Initialize(&argc, argv);
  Collector rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  std::printf("\nSummary: encode + decode of a %zu x %zu stream, one core (median of 5 repetitions)\n", kRows, kDim);
  std::printf("%-24s %10s %12s %14s  %s\n", "codec", "median ms", "M values/s", "x bf16 time", "target");
  const double base = median(rep.ms["encode+decode/bf16 (baseline)/repeats:5/real_time"]);
  for (const auto& c : cases()) {
    const double m = median(rep.ms["encode+decode/" + c.label + "/repeats:5/real_time"]);
    const double mvs = m > 0 ? kRows * kDim / (m * 1e3) : 0;
    std::string target = "-";
    char t[64];
    if (c.max_ms > 0) {
      std::snprintf(t, sizeof t, "<= %g ms: %s", c.max_ms, m <= c.max_ms ? "MET" : "MISSED");
      target = t;
    }
    if (c.min_mvalues > 0) {
      std::snprintf(t, sizeof t, ">= %g M values/s: %s", c.min_mvalues,
                    mvs >= c.min_mvalues ? "MET" : "MISSED");
      target = t;
    }
    std::printf("%-24s %10.3f %12.1f %14.1f  %s\n", c.label.c_str(), m, mvs, base > 0 ? m / base : 0, target.c_str());
  }
  return 0;
}
