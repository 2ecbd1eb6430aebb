// The executor factory: the one translation unit that knows whether the CUDA backend was compiled
// (the KVWB_HAVE_CUDA definition exists here only; tests/layering checks that). Everything else —
// the runner, `kvwb backends`, the GUI — asks make_executor() / describe_backends().
#include <string>

#include "base/errors.h"
#include "codec/cpu/cpu_executor.h"
#include "codec/executor.h"
#include "codec/simd/dispatch.h"
#if KVWB_HAVE_CUDA
#include "codec/cuda/cuda_executor.h"
#include "codec/cuda/device_info.h"
#endif

namespace kvwb::codec {

std::vector<BackendDescription> describe_backends() {
  std::vector<BackendDescription> out;
  BackendDescription cpu;
  cpu.name = "cpu";
  cpu.compiled = cpu.available = cpu.runs_codecs = true;
  cpu.detail = "reference backend (C++20 + Eigen), every codec and metric; ";
  cpu.codecs = codec_names();
  try {
    cpu.detail += simd::describe_dispatch() + "; KVWB_SIMD=scalar|avx2|avx512 forces a path";
    cpu.simd_path = simd::path_name(simd::active_path());
  } catch (const Error& e) {  // a bad KVWB_SIMD: the codecs refuse to run, the listing says why
    cpu.available = cpu.runs_codecs = false;
    cpu.detail += e.what();
  }
  out.push_back(cpu);
  BackendDescription cuda;
  cuda.name = "cuda";
#if KVWB_HAVE_CUDA
  cuda.compiled = true;
  std::string why;
  for (const auto& d : codec::cuda::list_devices(&why))
    cuda.devices.push_back({d.name, d.total_memory, d.free_memory, d.cc_major, d.cc_minor,
                            d.driver_version, d.runtime_version});
  cuda.available = !cuda.devices.empty();
  cuda.runs_codecs = true;  // the codec kernels are part of this build (they need a device to run)
  std::string list;
  for (const auto& c : codec::cuda::device_codecs()) list += (list.empty() ? "" : ", ") + c;
  cuda.codecs = codec::cuda::device_codecs();
  cuda.detail = cuda.available
                    ? "device codecs: " + list +
                          "; kakeya_pca head_dim <= 256 (randomized PCA fits on "
                          "the host, every later stage on the device); device memory "
                          "holds one (layer, stream) batch at a time"
                    : "compiled (device codecs: " + list + "), but no usable device: " + why;
#else
  cuda.detail = "not compiled (configure with -DKVWB_CUDA=ON and a CUDA toolkit)";
#endif
  out.push_back(cuda);
  return out;
}

std::string backend_refusal(std::string_view backend, const std::string& codec,
                            const ParamMap& params, size_t head_dim) {
  if (backend == "cpu") return "";
#if KVWB_HAVE_CUDA
  if (backend == "cuda") return codec::cuda::device_refusal(codec, params, head_dim);
#else
  (void)params;
  (void)head_dim;
  if (backend == "cuda") return "codec " + codec + " does not run on cuda: cuda is not compiled";
#endif
  return "unknown backend '" + std::string(backend) + "'";
}

double device_copy_bandwidth_gbs(size_t bytes, int reps) {
#if KVWB_HAVE_CUDA
  return codec::cuda::measure_copy_bandwidth_gbs(bytes, reps);
#else
  (void)bytes;
  (void)reps;
  return 0.0;
#endif
}

std::string resolve_executor(std::string_view requested, std::string* note) {
  if (requested == "cpu") return "cpu";
  if (requested != "cuda" && requested != "auto")
    throw InvalidArgument("unknown backend '" + std::string(requested) +
                          "' (expected cpu, cuda or auto)");
  std::string reason;
  for (const auto& b : describe_backends()) {
    if (b.name != "cuda") continue;
    if (b.compiled && b.available && b.runs_codecs) return "cuda";
    reason = b.detail;
  }
  if (requested == "cuda") throw Unavailable("backend 'cuda' cannot run: " + reason);
  if (note) *note = "backend auto fell back to cpu: " + reason;
  return "cpu";
}

std::unique_ptr<Executor> make_executor(std::string_view backend, const ExecutorOptions& options,
                                        std::string* note) {
  if (options.emulate_device) {
    if (backend != "cuda")
      throw InvalidArgument("emulate_device applies to backend 'cuda' only, not '" +
                            std::string(backend) + "'");
#if KVWB_HAVE_CUDA
    return std::make_unique<codec::cuda::CudaExecutor>(0, true);
#else
    throw Unavailable("backend 'cuda' cannot run: not compiled (configure with -DKVWB_CUDA=ON)");
#endif
  }
  const std::string chosen = resolve_executor(backend, note);
#if KVWB_HAVE_CUDA
  if (chosen == "cuda") return std::make_unique<codec::cuda::CudaExecutor>(0);
#endif
  if (chosen != "cpu") throw Unavailable("backend '" + chosen + "' has no executor in this build");
  return std::make_unique<cpu::CpuExecutor>(options.threads);
}

}  // namespace kvwb::codec
