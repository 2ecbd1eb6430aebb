#pragma once
// Host-side view of the CUDA devices; plain C++ so callers never see CUDA headers.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kvwb::codec::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  uint64_t total_memory = 0;  // bytes
  uint64_t free_memory = 0;   // bytes
  int cc_major = 0, cc_minor = 0;
  int driver_version = 0;   // e.g. 13000
  int runtime_version = 0;  // e.g. 13000
};

/// Devices present; empty (with `why` filled) when there is no driver or no device.
std::vector<DeviceInfo> list_devices(std::string* why);

}  // namespace kvwb::codec::cuda

namespace kvwb::codec::cuda {

/// Device-to-device copy bandwidth of device 0 in GB/s (read + written bytes per second) for a
/// `bytes` buffer, best of `reps` copies; 0 when there is no device.
double measure_copy_bandwidth_gbs(size_t bytes, int reps);

}  // namespace kvwb::codec::cuda
