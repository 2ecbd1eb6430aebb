// libFuzzer harness: the safetensors container parser (io/safetensors.h) and, on what it accepts,
// the Σ_q file layer (sessions/run/calibration_io.h: names, shapes, limits, L·L⁻¹ ≈ I, Σ checks).
#include <cstddef>
#include <cstdint>
#include <span>

#include "io/safetensors.h"
#include "sessions/run/calibration_io.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvwb;
  bool parsed = false;
  fuzz::expect_typed([&] {
    const io::SafeTensorsFile f =
        io::parse_safetensors(std::span<const uint8_t>(data, size), "fuzz.safetensors");
    for (const auto& t : f.tensors) fuzz::expect_typed([&] { (void)io::tensor_to_f32(t); });
    parsed = true;
  });
  if (parsed) {
    const auto path = fuzz::scratch() / "sigma_q.safetensors";
    fuzz::write_bytes(path, data, size);
    fuzz::expect_typed([&] {
      int h = 0, d = 0;
      (void)sessions::load_whitening_file_any(path.string(), &h, &d);
    });
  }
  return 0;
}
