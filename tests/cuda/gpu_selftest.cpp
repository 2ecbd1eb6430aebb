// gpu_selftest — the device check of scripts/gpu-check.sh, and the `cuda` ctest cases.
// Depends on codec/ and the executor seam only (no Qt, HDF5, GoogleTest), so it builds on a
// machine that has nothing but the CUDA toolkit, CMake and ninja (KVWB_DEVICE_CHECK=ON).
//
// Cases (each prints PASS / FAIL / SKIP and lands in the JSON):
//   always (CPU only): the sha256 used here against FIPS 180-4; the golden checksums of every
//     synthetic case of a device codec through the CPU executor (the oracle is intact); what
//     describe_backends() / make_executor() say about CUDA; and every device case below through
//     the CUDA executor with its kernels emulated on the host ("emu."): the same per-thread code,
//     run one work item at a time, so layouts, indexing and container assembly are checked.
//   with a device ("cuda."): every such golden case through the CUDA executor (checksums = golden,
//     bytes and decoded values = the CPU's, first difference reported); typed errors (NaN input and
//     fp16 overflow give the CPU's exact error; for besicovitch also an fp16 magnitude, scale or
//     mean out of range and an f32 overflow); parity on a layer of the 1.5B shape (besicovitch:
//     three configurations, per head and pooled). Kakeya-PCA (kakeya_cases.cpp, "emu.kakeya." /
//     "cuda.kakeya.", and its golden batches) is held to the parity bar of codec-kakeya.md §12
//     instead of byte identity; emulated, only D ≤ 64 golden batches run (the emulated D 128
//     Jacobi takes seconds each) unless --emu-full.
//   metrics (metrics_cases.cpp): cpu.metrics.* (the CPU executor's metric seam is the CPU metric
//     code), emu.metrics.* always and cuda.metrics.* with a device (the metric kernels against
//     ErrorSums / accumulate_attention: reconstruction bit for bit, attention within 1e-5).
//   --bench: DeepSeek-R1-Distill-1.5B shape (28 layers × K,V × 2 kv heads × 2048 tokens × D 128,
//     project RNG), turbo3, besicovitch (g 2, db 6, f16) and Kakeya exact (b=3 K, b=2 V, block
//     512) on the device (kernels, h2d, d2h) vs the CPU on 1 thread and on all threads; the
//     metrics of one configuration on the CPU (1 thread, all threads) and on the device.
// Exit: 0 when nothing failed, 1 otherwise; 77 with --require-device when there is no device.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/errors.h"
#include "codec/executor.h"
#include "codec/math/rng.h"
#include "tests/cuda/kakeya_cases.h"
#include "tests/cuda/metrics_cases.h"
#include "tests/cuda/sha256.h"
#include "tests/golden/golden_cases.h"
#include "tests/golden/golden_file.h"

namespace {

using kvwb::codec::BatchRequest;
using kvwb::codec::BatchResult;
using kvwb::codec::Executor;
using kvwb::codec::Stream;
using kvwb::codec::Tensor4;

struct CaseResult {
  std::string name, status, detail;  // status: pass | fail | skip
  double seconds = 0;
};

struct Timing {
  std::string name;
  double ms = 0;
  std::string note;
};

std::vector<CaseResult> g_results;
std::vector<Timing> g_timings;

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += c;
    } else if (c == '\n') {
      o += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      o += ' ';
    } else {
      o += c;
    }
  }
  return o;
}

void record(const std::string& name, const std::string& status, const std::string& detail,
            double seconds) {
  g_results.push_back({name, status, detail, seconds});
  std::printf("%-4s %s%s%s\n", status == "pass" ? "PASS" : status == "fail" ? "FAIL" : "SKIP",
              name.c_str(), detail.empty() ? "" : ": ", detail.c_str());
  std::fflush(stdout);
}

/// Runs `body` as a case: returns "" (pass) or a failure reason; exceptions are failures.
void run_case(const std::string& name, const std::function<std::string()>& body) {
  const auto t0 = std::chrono::steady_clock::now();
  std::string why;
  try {
    why = body();
  } catch (const std::exception& e) {
    why = std::string("exception: ") + e.what();
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  record(name, why.empty() ? "pass" : "fail", why, s);
}

using kvwb::golden::GoldenLine;
using kvwb::golden::hash_outcome;
using kvwb::golden::read_golden;

std::string check_golden(const std::string& name, const GoldenLine& got,
                         const std::map<std::string, GoldenLine>& want) {
  const auto it = want.find(name);
  if (it == want.end()) return "no golden line for " + name;
  if (got.bytes != it->second.bytes || got.containers != it->second.containers)
    return "containers differ from golden (" + std::to_string(got.bytes) + " bytes, sha " +
           got.containers.substr(0, 16) + "…; golden " + std::to_string(it->second.bytes) +
           " bytes, sha " + it->second.containers.substr(0, 16) + "…)";
  if (got.decoded != it->second.decoded)
    return "decoded rows differ from golden (sha " + got.decoded.substr(0, 16) + "…; golden " +
           it->second.decoded.substr(0, 16) + "…)";
  return "";
}

/// "" when a and b are identical, else the first differing byte / value.
std::string compare_outcomes(const kvwb::golden::Outcome& cpu, const kvwb::golden::Outcome& dev) {
  if (cpu.containers.size() != dev.containers.size())
    return "container bytes: cpu " + std::to_string(cpu.containers.size()) + ", cuda " +
           std::to_string(dev.containers.size());
  for (size_t i = 0; i < cpu.containers.size(); ++i)
    if (cpu.containers[i] != dev.containers[i])
      return "first differing container byte at offset " + std::to_string(i) + ": cpu " +
             std::to_string(cpu.containers[i]) + ", cuda " + std::to_string(dev.containers[i]);
  if (cpu.decoded.data.size() != dev.decoded.data.size()) return "decoded sizes differ";
  for (size_t i = 0; i < cpu.decoded.data.size(); ++i)
    if (std::memcmp(&cpu.decoded.data[i], &dev.decoded.data[i], sizeof(float)) != 0) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "first differing decoded value at index %zu: cpu %.9g, cuda %.9g",
                    i, cpu.decoded.data[i], dev.decoded.data[i]);
      return buf;
    }
  return "";
}

std::string error_code_of(const std::function<void()>& f, std::string* message) {
  try {
    f();
  } catch (const kvwb::Error& e) {
    if (message) *message = e.what();
    return e.code();
  } catch (const std::exception& e) {
    if (message) *message = e.what();
    return "std::exception";
  }
  return "";
}

/// Rows [S, H, T, D] of one (layer, stream) of the synthetic 1.5B-shaped capture.
Tensor4 model_rows(size_t S, size_t H, size_t T, size_t D, uint32_t layer, Stream st) {
  Tensor4 x(S, H, T, D);
  for (size_t s = 0; s < S; ++s)
    for (size_t h = 0; h < H; ++h)
      kvwb::codec::rng::synthetic(x.row(s, h, 0), T, D, 24, 0.05,
                                  (st == Stream::kK ? 700000 : 800000) + 1000 * layer + 10 * s + h);
  return x;
}

BatchRequest request_for(const std::string& codec, const kvwb::codec::ParamMap& params,
                         const Tensor4& x, uint32_t layer, Stream st, uint32_t block_size = 512) {
  BatchRequest r;
  r.codec.name = codec;
  r.codec.params = params;
  r.rows = x.data.data();
  r.sequences = x.s;
  r.heads = x.h;
  r.tokens = x.t;
  r.dim = x.d;
  r.layer = layer;
  r.stream = st;
  r.block_size = block_size;
  return r;
}

std::string same_result(const BatchResult& a, const BatchResult& b) {
  kvwb::golden::Outcome oa{a.containers, a.decoded}, ob{b.containers, b.decoded};
  std::string why = compare_outcomes(oa, ob);
  if (!why.empty()) return why;
  if (a.reported_bytes != b.reported_bytes || a.tail_bytes != b.tail_bytes ||
      a.stats.clipped != b.stats.clipped || a.stats.coded_values != b.stats.coded_values ||
      a.layer_scale != b.layer_scale || a.per_layer_stream_bytes != b.per_layer_stream_bytes)
    return "byte accounting or statistics differ";
  for (size_t u = 0; u < a.units.size(); ++u)
    if (a.units[u].size != b.units[u].size || a.units[u].codec_rows != b.units[u].codec_rows ||
        a.units[u].n_block_rows != b.units[u].n_block_rows ||
        a.units[u].header_bytes != b.units[u].header_bytes)
      return "unit record " + std::to_string(u) + " differs";
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  bool cpu_only = false, require_device = false, bench = false, small = false, emu_full = false;
  std::string golden_path = std::string(KVWB_SOURCE_DIR) + "/tests/golden/golden.txt";
  std::string json_path;
  size_t bench_layers = 28;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--cpu-only") {
      cpu_only = true;
    } else if (a == "--require-device") {
      require_device = true;
    } else if (a == "--bench") {
      bench = true;
    } else if (a == "--emu-full") {
      emu_full = true;  // emulated: every kakeya golden batch and the 1.5B-layer kakeya parity
    } else if (a == "--small") {
      small = true;  // a few small device cases (for compute-sanitizer)
    } else if (a == "--bench-layers" && i + 1 < argc) {
      bench_layers = std::stoul(argv[++i]);
    } else if (a == "--golden" && i + 1 < argc) {
      golden_path = argv[++i];
    } else if (a == "--json" && i + 1 < argc) {
      json_path = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: gpu_selftest [--cpu-only] [--require-device] [--small] [--bench] [--emu-full] "
                   "[--bench-layers N] [--golden FILE] [--json FILE]\n");
      return 2;
    }
  }

  // ---- the CUDA backend as this binary sees it ---------------------------------------------------
  kvwb::codec::BackendDescription cuda_desc;
  for (const auto& b : kvwb::codec::describe_backends())
    if (b.name == "cuda") cuda_desc = b;
  const bool have_device = cuda_desc.available && !cpu_only;
  std::string device_name = "none", driver = "none";
  if (!cuda_desc.devices.empty()) {
    const auto& d = cuda_desc.devices[0];
    device_name = d.name + " (cc " + std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor) +
                  ", " + std::to_string(d.total_memory >> 20) + " MiB)";
    driver = std::to_string(d.driver_version) + " / runtime " + std::to_string(d.runtime_version);
  }
  std::printf("gpu_selftest: cuda backend compiled=%d available=%d runs_codecs=%d; device: %s\n",
              cuda_desc.compiled, cuda_desc.available, cuda_desc.runs_codecs,
              device_name.c_str());
  if (!cuda_desc.available)
    std::printf("gpu_selftest: no CUDA device found (%s); running the CPU-only cases\n",
                cuda_desc.detail.c_str());
  if (require_device && !cuda_desc.available) {
    std::printf("gpu_selftest: --require-device and no device: skipped\n");
    return 77;
  }

  const auto want = read_golden(golden_path);
  std::unique_ptr<Executor> cpu = kvwb::codec::make_executor("cpu", {0});
  std::unique_ptr<Executor> dev;
  if (have_device) dev = kvwb::codec::make_executor("cuda");
  auto on_device = [&](const std::string& codec) {
    return std::find(cuda_desc.codecs.begin(), cuda_desc.codecs.end(), codec) !=
           cuda_desc.codecs.end();
  };

  if (!small) {
    run_case("cpu.sha256_fips", [] {
      const uint8_t abc[3] = {'a', 'b', 'c'};
      const std::string h = kvwb::selftest::sha256_hex(abc, 3);
      return h == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
                 ? std::string()
                 : "sha256(abc) = " + h;
    });
    run_case("cpu.golden_file", [&] {
      return want.empty() ? "no golden lines read from " + golden_path : std::string();
    });
    run_case("cpu.backends", [&]() -> std::string {
      if (!cuda_desc.compiled) return "cuda backend not compiled into this binary";
      if (!cuda_desc.runs_codecs) return "runs_codecs is false in a build with the kernels";
      for (const char* c : {"turbo3", "q8_0", "kivi", "fp8_e4m3", "bf16"})
        if (!on_device(c)) return std::string("device codec list lacks ") + c;
      if (!on_device("kakeya_pca")) return "device codec list lacks kakeya_pca";
      if (!on_device("besicovitch")) return "device codec list lacks besicovitch";
      std::string note;
      const auto e = kvwb::codec::make_executor("auto", {}, &note);
      if (cuda_desc.available) {
        if (e->name() != "cuda") return "auto did not pick cuda with a device present";
      } else {
        if (e->name() != "cpu" || note.empty()) return "auto without a device must note a fallback";
        std::string msg;
        const std::string code =
            error_code_of([] { (void)kvwb::codec::make_executor("cuda"); }, &msg);
        if (code != "UNAVAILABLE") return "make_executor(cuda) without a device gave '" + code + "'";
      }
      return "";
    });
  }

  // The golden cases of the device codecs through the CPU executor (the oracle), then through the
  // CUDA executor: with its kernels emulated on the host (always; checks layouts, indexing and
  // container assembly without a GPU) and on the device when there is one.
  const auto cases = kvwb::golden::synthetic_cases();
  std::vector<std::pair<kvwb::golden::Case, kvwb::golden::Outcome>> device_cases;
  // --small: one Kakeya batch and the first golden case of besicovitch, turbo3 and kivi.
  size_t small_kakeya = 0;
  std::vector<std::string> small_codecs = {"besicovitch", "turbo3", "kivi"};
  for (const auto& c : cases) {
    const kvwb::golden::Batch b = c.make();
    if (!on_device(b.codec)) continue;
    if (small) {
      if (b.codec == "kakeya_pca") {
        if (small_kakeya >= 1) continue;
        ++small_kakeya;
      } else {
        const auto it = std::find(small_codecs.begin(), small_codecs.end(), b.codec);
        if (it == small_codecs.end()) continue;
        small_codecs.erase(it);
      }
    }
    kvwb::golden::Outcome cpu_out;
    if (small) {
      cpu_out = kvwb::golden::run_executor(b, *cpu);
    } else {
      run_case("cpu.golden." + c.name, [&] {
        cpu_out = kvwb::golden::run_executor(b, *cpu);
        return check_golden(c.name, hash_outcome(cpu_out), want);
      });
    }
    device_cases.emplace_back(c, std::move(cpu_out));
  }

  // Besicovitch beyond its golden cases: typed errors equal to the CPU's (non-finite input, an fp16
  // magnitude, scale or mean out of range, an f32 overflow in a dot product; lowest failing unit),
  // and parity (bytes, decoded values, accounting) on 1.5B-shaped layers, K and V.
  auto besicovitch_suite = [&](const Executor& ex, const std::string& prefix) {
    const std::string be = "besicovitch";
    const kvwb::codec::ParamMap quant = {{"magnitude_mode", "quantized"}, {"magnitude_bits", "4"}};
    const kvwb::codec::ParamMap preset = {{"group_size", "2"},
                                          {"direction_bits", "3"},
                                          {"magnitude_mode", "quantized"},
                                          {"magnitude_bits", "4"},
                                          {"subtract_mean", "true"}};
    auto same_error = [&](const kvwb::codec::ParamMap& p, const Tensor4& x,
                          kvwb::codec::BlockRows rows = kvwb::codec::BlockRows::kPerHead)
        -> std::string {
      std::string m_cpu, m_dev;
      auto req = request_for(be, p, x, 3, Stream::kV, 64);
      req.block_rows = rows;
      const std::string c_cpu = error_code_of([&] { (void)cpu->run(req); }, &m_cpu);
      const std::string c_dev = error_code_of([&] { (void)ex.run(req); }, &m_dev);
      if (c_cpu.empty()) return "the CPU accepted the bad input";
      if (c_cpu != c_dev || m_cpu != m_dev)
        return "cpu " + c_cpu + " '" + m_cpu + "' vs cuda " + c_dev + " '" + m_dev + "'";
      return "";
    };
    run_case(prefix + "besicovitch.error_non_finite", [&]() -> std::string {
      Tensor4 x = model_rows(2, 2, 100, 64, 3, Stream::kV);
      x.row(1, 1, 17)[5] = std::nanf("");
      x.row(1, 0, 40)[9] = INFINITY;
      std::string why = same_error({}, x);
      if (why.empty()) why = same_error(preset, x);
      if (why.empty()) why = same_error(preset, x, kvwb::codec::BlockRows::kPooledHeads);
      return why;
    });
    run_case(prefix + "besicovitch.error_fp16_range", [&]() -> std::string {
      Tensor4 x = model_rows(2, 2, 100, 64, 3, Stream::kV);
      x.row(1, 1, 70)[33] = 3.0e5f;  // f16 magnitude, quantized scale
      x.row(1, 0, 90)[2] = 2.0e5f;
      if (std::string why = same_error({}, x); !why.empty()) return "magnitude: " + why;
      if (std::string why = same_error(quant, x); !why.empty()) return "scale: " + why;
      Tensor4 m = model_rows(2, 2, 100, 64, 3, Stream::kV);  // block mean of a column > 65504
      for (size_t t = 64; t < 100; ++t) m.row(0, 1, t)[7] = 7.0e4f;
      if (std::string why = same_error({{"subtract_mean", "true"}}, m); !why.empty())
        return "mean: " + why;
      Tensor4 o = model_rows(2, 2, 100, 64, 3, Stream::kV);  // a dot product overflows f32
      o.row(0, 0, 5)[0] = o.row(0, 0, 5)[1] = 3.0e38f;
      if (std::string why = same_error({}, o); !why.empty()) return "overflow: " + why;
      return "";
    });
    run_case(prefix + "besicovitch.error_arguments", [&]() -> std::string {
      // D not a multiple of g (default parameters: the decoder-only codec; explicit g 3) and a
      // block size out of range: the CPU's typed error, before any device work.
      auto same = [&](const kvwb::codec::ParamMap& p, size_t d, uint32_t bs) -> std::string {
        const Tensor4 x = model_rows(1, 2, 40, d, 3, Stream::kK);
        std::string m_cpu, m_dev;
        const auto req = request_for(be, p, x, 3, Stream::kK, bs);
        const std::string c_cpu = error_code_of([&] { (void)cpu->run(req); }, &m_cpu);
        const std::string c_dev = error_code_of([&] { (void)ex.run(req); }, &m_dev);
        if (c_cpu.empty()) return "the CPU accepted the request";
        if (c_cpu != c_dev || m_cpu != m_dev)
          return "cpu " + c_cpu + " '" + m_cpu + "' vs cuda " + c_dev + " '" + m_dev + "'";
        return "";
      };
      if (std::string why = same({}, 63, 64); !why.empty()) return "D 63: " + why;
      if (std::string why = same({{"group_size", "3"}}, 64, 64); !why.empty()) return "g 3: " + why;
      if (std::string why = same({}, 64, 4); !why.empty()) return "block 4: " + why;
      return "";
    });
    struct Parity {
      const char* name;
      kvwb::codec::ParamMap params;
      uint32_t block_size;
      bool pooled;
    };
    const std::vector<Parity> parity = {
        {"default", {}, 512, false},
        {"v_besi_d3_m4", preset, 384, false},  // 2048 = 5 · 384 + 128: a partial last block
        {"g4_db8_quantized_mb2",
         {{"group_size", "4"}, {"direction_bits", "8"}, {"magnitude_mode", "quantized"},
          {"magnitude_bits", "2"}, {"subtract_mean", "true"}},
         512, true},
    };
    for (const auto& c : parity)
      run_case(prefix + "besicovitch.parity_1p5b_layer." + c.name, [&]() -> std::string {
        for (Stream st : {Stream::kK, Stream::kV}) {
          const Tensor4 x = model_rows(1, 2, 2048, 128, 13, st);
          auto req = request_for(be, c.params, x, 13, st, c.block_size);
          if (c.pooled) req.block_rows = kvwb::codec::BlockRows::kPooledHeads;
          const BatchResult a = cpu->run(req), b = ex.run(req);
          std::string why = same_result(a, b);
          if (why.empty() && a.reference_bytes != b.reference_bytes)
            why = "reference bytes differ";
          if (!why.empty()) return std::string(st == Stream::kK ? "K: " : "V: ") + why;
        }
        return "";
      });
  };

  auto device_suite = [&](const Executor& ex, const std::string& prefix, bool full) {
    for (const auto& [c, cpu_out] : device_cases) {
      if (c.name.rfind("kakeya_pca", 0) == 0) {  // parity bar, not byte identity (§12)
        const kvwb::golden::Batch b = c.make();
        // Emulated D 128 exact PCA: seconds of Jacobi. Randomized fits run on the host (the CPU's
        // code), so every randomized batch stays in the quick emulated run.
        const auto pm = b.params.find("pca_method");
        const bool randomized = pm != b.params.end() && pm->second == "randomized";
        if (prefix == "emu." && b.rows.d > 64 && !emu_full && !randomized) continue;
        run_case(prefix + "golden." + c.name, [&, &c = c] {
          return kvwb::selftest::kakeya_golden_parity(c.make(), ex, *cpu, prefix + "golden." + c.name);
        });
        continue;
      }
      run_case(prefix + "golden." + c.name, [&, &c = c, &cpu_out = cpu_out]() -> std::string {
        const kvwb::golden::Outcome d = kvwb::golden::run_executor(c.make(), ex);
        std::string why = check_golden(c.name, hash_outcome(d), want);
        if (!why.empty()) return why;
        return compare_outcomes(cpu_out, d);
      });
    }
    if (!full) return;
    kvwb::selftest::kakeya_cases(ex, *cpu, prefix, prefix == "cuda." || emu_full, run_case);
    auto same_error = [&](const std::string& codec, const Tensor4& x) -> std::string {
      std::string m_cpu, m_dev;
      const auto req = request_for(codec, {}, x, 3, Stream::kV);
      const std::string c_cpu = error_code_of([&] { (void)cpu->run(req); }, &m_cpu);
      const std::string c_dev = error_code_of([&] { (void)ex.run(req); }, &m_dev);
      if (c_cpu.empty()) return "the CPU accepted the bad input";
      if (c_cpu != c_dev || m_cpu != m_dev)
        return "cpu " + c_cpu + " '" + m_cpu + "' vs cuda " + c_dev + " '" + m_dev + "'";
      return "";
    };
    run_case(prefix + "error_non_finite", [&] {
      Tensor4 x = model_rows(2, 2, 64, 128, 3, Stream::kV);
      x.row(1, 1, 17)[5] = std::nanf("");
      x.row(1, 0, 40)[9] = INFINITY;
      return same_error("bf16", x);
    });
    run_case(prefix + "error_fp16_range", [&] {
      Tensor4 x = model_rows(2, 2, 64, 128, 3, Stream::kV);
      x.row(0, 1, 9)[33] = 3.0e7f;
      return same_error("q8_0", x);
    });
    besicovitch_suite(ex, prefix);
    for (const char* codec : {"turbo3", "q4_0", "iq4_nl", "kivi", "fp8_e4m3", "bf16"}) {
      run_case(prefix + "parity_1p5b_layer." + codec, [&]() -> std::string {
        kvwb::codec::ParamMap p;
        if (std::string(codec) == "fp8_e4m3") p["scale_mode"] = "absmax";
        for (Stream st : {Stream::kK, Stream::kV}) {
          const Tensor4 x = model_rows(1, 2, 2048, 128, 13, st);
          const auto req = request_for(codec, p, x, 13, st);
          const std::string why = same_result(cpu->run(req), ex.run(req));
          if (!why.empty()) return std::string(st == Stream::kK ? "K: " : "V: ") + why;
        }
        return "";
      });
    }
  };
  if (!small && cuda_desc.compiled) {
    kvwb::codec::ExecutorOptions emu_opt;
    emu_opt.emulate_device = true;
    const auto emu = kvwb::codec::make_executor("cuda", emu_opt);
    device_suite(*emu, "emu.", true);
    kvwb::selftest::cpu_metric_cases(run_case);
    kvwb::selftest::device_metric_cases(*emu, "emu.metrics.", run_case);
  }
  if (have_device) {
    device_suite(*dev, "cuda.", !small);
    kvwb::selftest::device_metric_cases(*dev, "cuda.metrics.", run_case, small);
  } else {
    record("cuda.device_cases", "skip", "no CUDA device found", 0);
  }

  // ---- benchmark -------------------------------------------------------------------------------
  double copy_gbs = 0;
  if (bench) {
    const size_t L = bench_layers, S = 1, H = 2, T = 2048, D = 128;
    std::printf("bench: %zu layers x K,V x %zu kv heads x %zu tokens x D %zu (synthetic, project RNG)\n",
                L, H, T, D);
    std::vector<Tensor4> k_rows, v_rows;
    for (size_t l = 0; l < L; ++l) {
      k_rows.push_back(model_rows(S, H, T, D, static_cast<uint32_t>(l), Stream::kK));
      v_rows.push_back(model_rows(S, H, T, D, static_cast<uint32_t>(l), Stream::kV));
    }
    const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
    auto run_config = [&](const Executor& ex, const std::string& kc, const kvwb::codec::ParamMap& kp,
                          const std::string& vc, const kvwb::codec::ParamMap& vp, double* kernel,
                          double* h2d, double* d2h) {
      const auto t0 = std::chrono::steady_clock::now();
      double kms = 0, hms = 0, dms = 0;
      for (size_t l = 0; l < L; ++l) {
        const auto rk = ex.run(request_for(kc, kp, k_rows[l], static_cast<uint32_t>(l), Stream::kK));
        const auto rv = ex.run(request_for(vc, vp, v_rows[l], static_cast<uint32_t>(l), Stream::kV));
        kms += rk.device_kernel_ms + rv.device_kernel_ms;
        hms += rk.device_h2d_ms + rv.device_h2d_ms;
        dms += rk.device_d2h_ms + rv.device_d2h_ms;
      }
      if (kernel) *kernel = kms;
      if (h2d) *h2d = hms;
      if (d2h) *d2h = dms;
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    };
    const auto cpu1 = kvwb::codec::make_executor("cpu", {1});
    const auto cpun = kvwb::codec::make_executor("cpu", {0});
    const double t_cpu1 = run_config(*cpu1, "turbo3", {}, "turbo3", {}, nullptr, nullptr, nullptr);
    const double t_cpun = run_config(*cpun, "turbo3", {}, "turbo3", {}, nullptr, nullptr, nullptr);
    g_timings.push_back({"turbo3.cpu_1_thread.wall", t_cpu1, "encode+decode, all layers"});
    g_timings.push_back({"turbo3.cpu_" + std::to_string(hw) + "_threads.wall", t_cpun, ""});
    std::printf("bench: turbo3 cpu 1 thread %.1f ms, %u threads %.1f ms\n", t_cpu1, hw, t_cpun);
    if (have_device) {
      copy_gbs = kvwb::codec::device_copy_bandwidth_gbs(size_t{256} << 20, 5);
      (void)run_config(*dev, "turbo3", {}, "turbo3", {}, nullptr, nullptr, nullptr);  // warm-up
      double kms = 0, hms = 0, dms = 0;
      const double wall = run_config(*dev, "turbo3", {}, "turbo3", {}, &kms, &hms, &dms);
      // Bytes the kernels move: rows read + payload written (encode), payload read + rows
      // written (decode); turbo3 payload = 50 B per 128 values.
      const double values = 2.0 * L * S * H * T * D;
      const double moved = values * (4 + 50.0 / 128) * 2;
      const double eff_gbs = moved / (kms * 1e6);
      g_timings.push_back({"turbo3.cuda.kernels", kms, "encode+decode kernels, all layers"});
      g_timings.push_back({"turbo3.cuda.h2d", hms, "host->device copies"});
      g_timings.push_back({"turbo3.cuda.d2h", dms, "device->host copies"});
      g_timings.push_back({"turbo3.cuda.wall", wall, "run() calls incl. container assembly"});
      g_timings.push_back({"turbo3.cuda.kernel_gbs", eff_gbs, "effective GB/s of the kernels"});
      g_timings.push_back({"device.copy_gbs", copy_gbs, "device-to-device memcpy GB/s"});
      std::printf(
          "bench: turbo3 cuda kernels %.2f ms (h2d %.2f ms, d2h %.2f ms, wall %.1f ms); "
          "%.0fx the 1-thread CPU wall; kernels at %.0f GB/s vs copy %.0f GB/s (%.2fx)\n",
          kms, hms, dms, wall, t_cpu1 / std::max(kms, 1e-9), eff_gbs, copy_gbs,
          copy_gbs / std::max(eff_gbs, 1e-9));
      run_case("bench.turbo3_within_3x_copy_bandwidth", [&]() -> std::string {
        if (eff_gbs * 3 >= copy_gbs) return "";
        return "kernels at " + std::to_string(eff_gbs) + " GB/s, copy " + std::to_string(copy_gbs) +
               " GB/s (target: within 3x)";
      });
    }
    // Besicovitch (library default: g 2, db 6, f16 magnitudes) for K and V: the device's kernels
    // against the CPU executor on one and on all threads, measured in the same run.
    {
      const double b_cpu1 =
          run_config(*cpu1, "besicovitch", {}, "besicovitch", {}, nullptr, nullptr, nullptr);
      const double b_cpun =
          run_config(*cpun, "besicovitch", {}, "besicovitch", {}, nullptr, nullptr, nullptr);
      g_timings.push_back({"besicovitch.cpu_1_thread.wall", b_cpu1,
                           "g 2, db 6, f16; encode+decode, all layers"});
      g_timings.push_back({"besicovitch.cpu_" + std::to_string(hw) + "_threads.wall", b_cpun, ""});
      std::printf("bench: besicovitch cpu 1 thread %.1f ms, %u threads %.1f ms\n", b_cpu1, hw,
                  b_cpun);
      if (have_device) {
        (void)run_config(*dev, "besicovitch", {}, "besicovitch", {}, nullptr, nullptr, nullptr);
        double kms = 0, hms = 0, dms = 0;
        const double wall =
            run_config(*dev, "besicovitch", {}, "besicovitch", {}, &kms, &hms, &dms);
        g_timings.push_back({"besicovitch.cuda.kernels", kms, "encode+decode kernels, all layers"});
        g_timings.push_back({"besicovitch.cuda.h2d", hms, "host->device copies"});
        g_timings.push_back({"besicovitch.cuda.d2h", dms, "device->host copies"});
        g_timings.push_back({"besicovitch.cuda.wall", wall, "run() calls incl. container assembly"});
        std::printf(
            "bench: besicovitch cuda kernels %.2f ms (h2d %.2f ms, d2h %.2f ms, wall %.1f ms); "
            "%.0fx the 1-thread CPU wall\n",
            kms, hms, dms, wall, b_cpu1 / std::max(kms, 1e-9));
      }
    }
    // Kakeya-PCA (exact, b=3 K, b=2 V, block 512): the CPU on 1 thread and on all threads, and the
    // device (kernels, h2d, d2h separately) when there is one. Targets (issue 12): ≤ 20 ms of
    // device time per configuration and ≥ 50x the 1-thread CPU; printed, not a failing case.
    const kvwb::codec::ParamMap kk{{"bit_width", "3"}}, kv{{"bit_width", "2"}};
    const double t_kak1 = run_config(*cpu1, "kakeya_pca", kk, "kakeya_pca", kv, nullptr, nullptr, nullptr);
    const double t_kak = run_config(*cpun, "kakeya_pca", kk, "kakeya_pca", kv, nullptr, nullptr, nullptr);
    g_timings.push_back({"kakeya_pca.cpu_1_thread.wall", t_kak1, "b=3 K, b=2 V, block 512"});
    g_timings.push_back({"kakeya_pca.cpu_" + std::to_string(hw) + "_threads.wall", t_kak,
                         "b=3 K, b=2 V, block 512"});
    std::printf("bench: kakeya_pca cpu 1 thread %.1f ms, %u threads %.1f ms\n", t_kak1, hw, t_kak);
    if (have_device) {
      (void)run_config(*dev, "kakeya_pca", kk, "kakeya_pca", kv, nullptr, nullptr, nullptr);  // warm-up
      double kms = 0, hms = 0, dms = 0;
      const double wall = run_config(*dev, "kakeya_pca", kk, "kakeya_pca", kv, &kms, &hms, &dms);
      const double device_ms = kms + hms + dms;
      g_timings.push_back({"kakeya_pca.cuda.kernels", kms, "encode+decode kernels, all layers"});
      g_timings.push_back({"kakeya_pca.cuda.h2d", hms, "host->device copies"});
      g_timings.push_back({"kakeya_pca.cuda.d2h", dms, "device->host copies"});
      g_timings.push_back({"kakeya_pca.cuda.wall", wall, "run() calls incl. container assembly"});
      g_timings.push_back({"kakeya_pca.cuda.speedup_vs_cpu_1_thread", t_kak1 / std::max(kms, 1e-9),
                           "1-thread CPU wall / device kernel time (target >= 50)"});
      std::printf(
          "bench: kakeya_pca cuda kernels %.2f ms (h2d %.2f ms, d2h %.2f ms; device total %.2f ms, "
          "target <= 20 ms: %s), wall %.1f ms; %.0fx the 1-thread CPU (target >= 50x: %s)\n",
          kms, hms, dms, device_ms, device_ms <= 20 ? "met" : "NOT met", wall,
          t_kak1 / std::max(kms, 1e-9), t_kak1 / std::max(kms, 1e-9) >= 50 ? "met" : "NOT met");
    }
    for (const auto& t : kvwb::selftest::metric_bench(L, have_device ? dev.get() : nullptr))
      g_timings.push_back({t.name, t.ms, t.note});
  }

  size_t passed = 0, failed = 0, skipped = 0;
  for (const auto& r : g_results)
    (r.status == "pass" ? passed : r.status == "fail" ? failed : skipped)++;
  std::printf("%zu passed, %zu failed, %zu skipped%s\n", passed, failed, skipped,
              cuda_desc.available ? "" : " (no CUDA device found)");
  if (!json_path.empty()) {
    std::ofstream o(json_path);
    o << "{\n  \"device\": \"" << json_escape(device_name) << "\",\n  \"driver\": \""
      << json_escape(driver) << "\",\n  \"device_found\": " << (cuda_desc.available ? "true" : "false")
      << ",\n  \"cuda_detail\": \"" << json_escape(cuda_desc.detail) << "\",\n  \"passed\": " << passed
      << ",\n  \"failed\": " << failed << ",\n  \"skipped\": " << skipped << ",\n  \"cases\": [";
    for (size_t i = 0; i < g_results.size(); ++i) {
      const auto& r = g_results[i];
      o << (i ? "," : "") << "\n    {\"name\": \"" << json_escape(r.name) << "\", \"status\": \""
        << r.status << "\", \"seconds\": " << r.seconds << ", \"detail\": \"" << json_escape(r.detail)
        << "\"}";
    }
    o << "\n  ],\n  \"timings_ms\": [";
    for (size_t i = 0; i < g_timings.size(); ++i) {
      const auto& t = g_timings[i];
      o << (i ? "," : "") << "\n    {\"name\": \"" << json_escape(t.name) << "\", \"value\": " << t.ms
        << ", \"note\": \"" << json_escape(t.note) << "\"}";
    }
    o << "\n  ]\n}\n";
    if (!o) {
      std::fprintf(stderr, "gpu_selftest: cannot write %s\n", json_path.c_str());
      return 1;
    }
  }
  return failed ? 1 : 0;
}
