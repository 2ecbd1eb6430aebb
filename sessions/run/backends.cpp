#include "sessions/run/backends.h"

#include "base/errors.h"
#if KVWB_HAVE_CUDA
#include "codec/cuda/device_info.h"
#endif

namespace kvwb::sessions {

std::vector<BackendDescription> list_backends() {
  std::vector<BackendDescription> out;
  BackendDescription cpu;
  cpu.name = "cpu";
  cpu.compiled = cpu.available = cpu.runs_codecs = true;
  cpu.detail = "reference backend (C++20 + Eigen), every codec and metric";
  out.push_back(cpu);
  BackendDescription cuda;
  cuda.name = "cuda";
#if KVWB_HAVE_CUDA
  cuda.compiled = true;
  std::string why;
  for (const auto& d : codec::cuda::list_devices(&why)) {
    cuda.devices.push_back({d.name, d.total_memory, d.free_memory, d.cc_major, d.cc_minor, d.driver_version,
                            d.runtime_version});
  }
  cuda.available = !cuda.devices.empty();
  cuda.runs_codecs = false;
  cuda.detail = cuda.available ? "device query only: the CUDA codec kernels are not part of this build yet"
                               : "compiled, but no usable device: " + why;
#else
  cuda.detail = "not compiled (configure with -DKVWB_CUDA=ON and a CUDA toolkit)";
#endif
  out.push_back(cuda);
  return out;
}

Backend resolve_backend(Backend requested, std::string* note) {
  if (requested == Backend::kCpu) return Backend::kCpu;
  std::string reason;
  for (const auto& b : list_backends()) {
    if (b.name != backend_name(Backend::kCuda)) continue;
    if (b.compiled && b.available && b.runs_codecs) return Backend::kCuda;
    reason = b.detail;
  }
  if (requested == Backend::kCuda) throw Unavailable("backend 'cuda' cannot run: " + reason);
  if (note) *note = "backend auto fell back to cpu: " + reason;
  return Backend::kCpu;
}

}  // namespace kvwb::sessions
