// libFuzzer harness: the bundle checker (sessions::check_bundle) on a folder built from the input.
// Input layout (tests/fuzz/make_seeds.py writes it from real bundles): a sequence of records
// [u8 file index][u32 little-endian length][bytes]; the index picks one of the bundle's file
// names (an index past the list makes a subfolder). check_bundle must return a report for any
// folder and never throw.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>

#include "sessions/bundle/bundle.h"
#include "tests/fuzz/fuzz_support.h"

namespace {
constexpr const char* kNames[] = {
    "MANIFEST.json", "sigma_q.safetensors", "sigma_q.json",       "codec_config.json",
    "deploy.env",    "K_b3_centroids.f32",  "V_b2_centroids.f32", "extra.txt"};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvwb;
  const auto dir = fuzz::scratch() / "bundle";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir);
  size_t pos = 0;
  while (pos + 5 <= size) {
    const uint8_t idx = data[pos];
    uint32_t len = 0;
    std::memcpy(&len, data + pos + 1, 4);
    pos += 5;
    const size_t n = std::min<size_t>(len, size - pos);
    if (idx < std::size(kNames))
      fuzz::write_bytes(dir / kNames[idx], data + pos, n);
    else
      std::filesystem::create_directories(dir / "sub", ec);
    pos += n;
  }
  for (const bool partial : {false, true}) {
    sessions::BundleCheckOptions o;
    o.partial = partial;
    const sessions::BundleCheckReport r = sessions::check_bundle(dir.string(), o);
    (void)r.to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return 0;
}
