// kakeya_real_parity — Kakeya-PCA through the CUDA executor (its kernels emulated on the host, or
// on the device with --device) against the CPU executor on a real capture: every layer's pre-RoPE
// K (b = 3, outliers T = 2) and V (b = 2), with exact and with randomized PCA (its fits on the
// host, the CPU's code), held to the parity bar of codec-kakeya.md §12 (kakeya_cases.h). Exit 77
// when the capture is absent (a fresh clone has no real data).
#include <cstdio>
#include <filesystem>
#include <string>

#include "codec/executor.h"
#include "io/capture.h"
#include "tests/cuda/kakeya_cases.h"

int main(int argc, char** argv) {
  std::string path = std::string(KVWB_REAL_DATA_DIR) + "/tiny1m_wikitext2.kvc.h5";
  bool device = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--device")
      device = true;
    else
      path = a;
  }
  if (!std::filesystem::exists(path)) {
    std::printf("kakeya_real_parity: %s not found (real data absent): skipped\n", path.c_str());
    return 77;
  }
  using namespace kvwb;
  codec::ExecutorOptions emulate;
  emulate.emulate_device = !device;
  const auto dev = codec::make_executor("cuda", emulate);
  const auto cpu = codec::make_executor("cpu");
  const io::CaptureReader reader(path);
  int failed = 0, passed = 0;
  for (const auto& layer : reader.info().layers) {
    for (const bool randomized : {false, true})
      for (const codec::Stream st : {codec::Stream::kK, codec::Stream::kV}) {
        const bool k = st == codec::Stream::kK;
        const codec::Tensor4 x =
            k ? reader.k_pre(layer.layer) : reader.read(layer.layer, io::TensorKind::kV);
        codec::BatchRequest r;
        r.codec.name = "kakeya_pca";
        r.codec.params = k ? codec::ParamMap{{"bit_width", "3"}, {"outlier_threshold", "2.0"}}
                           : codec::ParamMap{{"bit_width", "2"}};
        if (randomized) r.codec.params["pca_method"] = "randomized";
        r.rows = x.data.data();
        r.sequences = x.s;
        r.heads = x.h;
        r.tokens = x.t;
        r.dim = x.d;
        r.layer = static_cast<uint32_t>(layer.layer);
        r.stream = st;
        r.block_size = 256;
        r.domain_flags = k ? codec::kDomainPreRope : 0;
        const std::string name = "real.layer" + std::to_string(layer.layer) + (k ? ".K" : ".V") +
                                 (randomized ? ".randomized" : "");
        std::string why;
        try {
          why = selftest::kakeya_parity(name, r, cpu->run(r), dev->run(r));
        } catch (const std::exception& e) {
          why = std::string("exception: ") + e.what();
        }
        std::printf("%s %s%s%s\n", why.empty() ? "PASS" : "FAIL", name.c_str(),
                    why.empty() ? "" : ": ", why.c_str());
        (why.empty() ? passed : failed)++;
      }
  }
  std::printf("%d passed, %d failed (%s)\n", passed, failed, path.c_str());
  return failed ? 1 : 0;
}
