#pragma once
// Execution backends. This translation unit (backends.cpp) is the only place that knows whether
// the CUDA backend was compiled; everything else asks it.
#include <cstdint>
#include <string>
#include <vector>

#include "sessions/config/enums.h"

namespace kvwb::sessions {

struct DeviceDescription {
  std::string name;
  uint64_t total_memory = 0, free_memory = 0;  // bytes
  int cc_major = 0, cc_minor = 0;
  int driver_version = 0, runtime_version = 0;
};

struct BackendDescription {
  std::string name;        // "cpu" or "cuda"
  bool compiled = false;   // built into this binary
  bool available = false;  // usable now (cuda: a device is present)
  bool runs_codecs = false;  // the codec pipeline executes on it
  std::string detail;      // why not available / what it is
  std::vector<DeviceDescription> devices;
};

/// Every backend this binary knows, compiled or not.
std::vector<BackendDescription> list_backends();

/// Resolves a requested backend to the one that will run (cpu or cuda). Asking for cuda when it
/// cannot run throws Unavailable with the reason; auto falls back to cpu and puts the reason into
/// *note.
Backend resolve_backend(Backend requested, std::string* note);

}  // namespace kvwb::sessions
