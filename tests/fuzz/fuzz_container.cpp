// libFuzzer harness: the KVCB container decoder of every codec (codec::decode_container), which
// dispatches on the header's codec id and reads nothing but the bytes.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>

#include "codec/codec.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvwb;
  fuzz::expect_typed([&] {
    const codec::DecodedUnit u =
        codec::decode_container(std::span<const uint8_t>(data, size), "fuzz.kvcb");
    // The decoded rows are [n, D]: touch every value (ASan sees a short buffer).
    volatile float sink = 0;
    for (float v : u.rows) sink = sink + (std::isfinite(v) ? v : 0.0f);
    if (u.n_block_rows * u.header.head_dim > u.rows.size()) std::abort();
  });
  return 0;
}
