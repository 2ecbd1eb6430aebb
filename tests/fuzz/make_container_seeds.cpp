// Writes the seed corpus of fuzz_container and fuzz_kktv (tests/fuzz/make_seeds.py runs it):
// one KVCB container per codec, encoding the first rows of a real capture's layer 0, head 0 keys
// (or, without one, deterministic rows from the project RNG), and a KKTV dump of the same rows.
// Usage: make_container_seeds OUT_DIR [CAPTURE]
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "codec/math/rng.h"
#include "io/atomic_file.h"
#include "io/capture.h"
#include "io/kktv.h"

int main(int argc, char** argv) {
  using namespace kvwb;
  if (argc < 2) {
    std::fprintf(stderr, "usage: make_container_seeds OUT_DIR [CAPTURE]\n");
    return 2;
  }
  const std::filesystem::path out(argv[1]);
  std::filesystem::create_directories(out / "container");
  std::filesystem::create_directories(out / "kktv");
  size_t n = 40, d = 64;
  std::vector<float> rows(n * d);
  if (argc > 2) {
    const io::CaptureReader r(argv[2]);
    const auto t = r.read_head(r.info().layers.front().layer, io::TensorKind::kV, 0);
    d = t.d;
    n = std::min<size_t>(40, t.t);
    rows.assign(t.data.begin(), t.data.begin() + static_cast<std::ptrdiff_t>(n * d));
  } else {
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = codec::rng::normal(codec::rng::kTagTest, i);
  }
  for (const auto& name : codec::codec_names()) {
    try {
      auto c = codec::make_codec(name, {}, d);
      codec::UnitInput in;
      in.rows = rows.data();
      in.n = n;
      in.dim = d;
      in.info.block_size = 16;
      in.info.stream = codec::Stream::kV;
      const codec::EncodedUnit e = c->encode(in);
      io::write_file_atomic((out / "container" / (name + ".kvcb")).string(),
                            std::span<const uint8_t>(e.bytes));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", name.c_str(), e.what());
    }
  }
  io::KktvTensor t;
  t.rows = n;
  t.dim = static_cast<uint32_t>(d);
  t.data = rows;
  io::write_kktv((out / "kktv" / "rows.kktv").string(), t);
  t.rows = 0;
  t.data.clear();
  io::write_kktv((out / "kktv" / "empty.kktv").string(), t);
  return 0;
}
