// libFuzzer harness: the KKTV tensor dump parser (io/kktv.h).
#include <cstddef>
#include <cstdint>
#include <span>

#include "io/kktv.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvwb;
  fuzz::expect_typed([&] {
    const io::KktvTensor t = io::parse_kktv(std::span<const uint8_t>(data, size), "fuzz.kktv");
    (void)io::count_non_finite(t);
    (void)io::serialize_kktv(t);
  });
  return 0;
}
