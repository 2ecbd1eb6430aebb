// Golden container bytes: runs every case of golden_cases.cpp (and, when the real data is present,
// batches of the tiny1m capture) and compares, per case, the byte count, the sha256 of the
// concatenated containers and the sha256 of the decoded f32 rows with tests/golden/golden.txt.
//
//   test_golden [--only synthetic|tiny1m] [--golden FILE] [--backend cpu|cuda|auto]
//       check (exit 0 ok, 1 changed, 77 skip). Every case runs unit by unit through the Codec
//       interface and as one batch through the backend's executor (alternately 1 and 3 threads);
//       both must give the golden line.
//   test_golden --regenerate [--golden FILE]                  rewrite FILE, print what changed
//
// Regenerating on an unchanged tree rewrites identical lines; cases of a group that did not run
// (tiny1m without the data) keep their lines.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "base/errors.h"
#include "codec/math/calibration.h"
#include "codec/simd/dispatch.h"
#include "io/atomic_file.h"
#include "io/capture.h"
#include "tests/golden/golden_cases.h"
#include "tests/golden/golden_file.h"

namespace {

using kvwb::codec::Stream;
using kvwb::golden::Batch;
using kvwb::golden::Case;

using Line = kvwb::golden::GoldenLine;
using kvwb::golden::hash_outcome;

bool is_tiny1m(const std::string& name) { return name.rfind("tiny1m.", 0) == 0; }

std::string real_capture() {
  std::filesystem::path dir(KVWB_REAL_DATA_DIR);
  if (const char* env = std::getenv("KVWB_REAL_DATA")) dir = env;
  const auto p = dir / "tiny1m_wikitext2.kvc.h5";
  return std::filesystem::exists(p) ? p.string() : std::string();
}

/// Batches of layer 1 of the real tiny1m WikiText-2 capture: [16, 2, 256, 64] per stream.
std::vector<Case> tiny1m_cases(const std::string& path) {
  struct Data {
    kvwb::codec::Tensor4 k_pre, k_post, v;
    std::vector<float> L, L_inv;
  };
  auto data = std::make_shared<std::optional<Data>>();
  auto load = [data, path]() -> const Data& {
    if (!*data) {
      kvwb::io::CaptureReader cap(path);
      Data d;
      d.k_pre = cap.k_pre(1);
      d.k_post = cap.k_post(1);
      d.v = cap.read(1, kvwb::io::TensorKind::kV);
      // Q-preconditioning as `kvwb run --q-precond capture` builds it.
      const auto q = cap.read(1, kvwb::io::TensorKind::kQPre);
      const size_t H = d.v.h, D = d.v.d;
      const auto sig = kvwb::codec::compute_sigma_q(q, H);
      for (size_t h = 0; h < H; ++h) {
        const auto f =
            kvwb::codec::factor_sigma_q(sig[h], D, kvwb::codec::kDefaultRidge, std::nullopt,
                                        "layer 1, kv head " + std::to_string(h));
        d.L.insert(d.L.end(), f.L.begin(), f.L.end());
        d.L_inv.insert(d.L_inv.end(), f.L_inv.begin(), f.L_inv.end());
      }
      *data = std::move(d);
    }
    return **data;
  };
  std::vector<Case> out;
  // kind: 0 k_pre, 1 k_post, 2 v
  auto add = [&](const std::string& label, const std::string& codec, kvwb::codec::ParamMap p,
                 int kind, uint32_t block_size, bool pooled = false, bool whiten = false) {
    const std::string name =
        "tiny1m.L1." + (kind == 2 ? std::string("V.") : std::string("K.")) + label;
    out.push_back({name, [=] {
                     const Data& d = load();
                     Batch b;
                     b.name = name;
                     b.codec = codec;
                     b.params = p;
                     b.stream = kind == 2 ? Stream::kV : Stream::kK;
                     b.block_rows = pooled ? kvwb::codec::BlockRows::kPooledHeads
                                           : kvwb::codec::BlockRows::kPerHead;
                     b.block_size = block_size;
                     b.layer = 1;
                     if (kind == 0) b.domain_flags = kvwb::codec::kDomainPreRope;
                     b.rows = kind == 0 ? d.k_pre : kind == 1 ? d.k_post : d.v;
                     if (whiten) {
                       b.L = d.L;
                       b.L_inv = d.L_inv;
                     }
                     return b;
                   }});
  };
  add("kakeya_pca.bs256", "kakeya_pca", {}, 0, 256);
  add("kakeya_pca.bs256", "kakeya_pca", {{"bit_width", "2"}}, 2, 256);
  add("kakeya_pca.bs96", "kakeya_pca", {}, 0, 96);
  add("kakeya_pca[rsvd,b2].bs128", "kakeya_pca", {{"pca_method", "randomized"}, {"bit_width", "2"}},
      2, 128);
  add("kakeya_pca[outliers2.5].bs128", "kakeya_pca", {{"outlier_threshold", "2.5"}}, 0, 128);
  add("kakeya_pca.bs256.whiten", "kakeya_pca", {}, 0, 256, false, true);
  add("kakeya_pca[share,bf16].pooled.bs64", "kakeya_pca",
      {{"share_basis", "true"}, {"skeleton_dtype", "bf16"}}, 2, 64, true);
  const kvwb::codec::ParamMap preset = {{"group_size", "2"},
                                        {"direction_bits", "3"},
                                        {"magnitude_mode", "quantized"},
                                        {"magnitude_bits", "4"},
                                        {"subtract_mean", "true"}};
  add("besicovitch[preset].bs128", "besicovitch", preset, 0, 128);
  add("besicovitch.bs128", "besicovitch", {}, 2, 128);
  add("turbo3", "turbo3", {}, 1, 512);
  add("turbo2", "turbo2", {}, 2, 512);
  add("q8_0", "q8_0", {}, 1, 512);
  add("q4_0[hadamard64]", "q4_0", {{"rotate", "hadamard64"}}, 2, 512);
  add("iq4_nl[hadamard_max]", "iq4_nl", {{"rotate", "hadamard_max"}}, 1, 512);
  add("q5_1", "q5_1", {}, 2, 512);
  add("kivi[b2]", "kivi", {}, 1, 512);
  add("kivi[b4,g128]", "kivi", {{"bits", "4"}, {"group", "128"}}, 2, 512);
  add("fp8_e4m3[absmax]", "fp8_e4m3", {{"scale_mode", "absmax"}}, 1, 512);
  add("fp8_e4m3[unit]", "fp8_e4m3", {{"scale_mode", "unit"}}, 2, 512);
  add("bf16", "bf16", {}, 2, 512);
  return out;
}

/// The golden file's lines; a malformed line ends the program (exit 2) naming it.
std::map<std::string, Line> read_golden(const std::string& path, std::vector<std::string>* order) {
  std::vector<std::string> malformed;
  std::map<std::string, Line> m = kvwb::golden::read_golden(path, order, &malformed);
  if (!malformed.empty()) {
    std::fprintf(stderr, "%s: malformed line '%s'\n", path.c_str(), malformed.front().c_str());
    std::exit(2);
  }
  return m;
}

std::string describe(const Line& l) {
  return std::to_string(l.bytes) + " bytes, containers " + l.containers.substr(0, 16) +
         "…, decoded " + l.decoded.substr(0, 16) + "…";
}

}  // namespace

int main(int argc, char** argv) {
  std::string golden = std::string(KVWB_SOURCE_DIR) + "/tests/golden/golden.txt";
  std::string only;
  std::string backend = "cpu";
  bool regenerate = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--regenerate") {
      regenerate = true;
    } else if (a == "--golden" && i + 1 < argc) {
      golden = argv[++i];
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else if (a == "--backend" && i + 1 < argc) {
      backend = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: test_golden [--only synthetic|tiny1m] [--golden FILE] [--backend NAME] "
                   "[--regenerate]\n");
      return 2;
    }
  }
  // KVWB_SIMD forces a dispatch path (ctest runs golden.*.avx2 / .avx512 / .scalar); a path this
  // CPU lacks is a skip, not a pass.
  try {
    std::printf("golden: SIMD path %s\n", kvwb::codec::simd::path_name(kvwb::codec::simd::active_path()));
  } catch (const kvwb::Unsupported& e) {
    std::printf("golden: %s; skipping\n", e.what());
    return 77;
  } catch (const kvwb::Error& e) {
    std::fprintf(stderr, "golden: %s\n", e.what());
    return 2;
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<Case> cases;
  bool ran_synthetic = false, ran_tiny1m = false;
  if (only.empty() || only == "synthetic") {
    cases = kvwb::golden::synthetic_cases();
    ran_synthetic = true;
  }
  if (only.empty() || only == "tiny1m") {
    const std::string cap = real_capture();
    if (cap.empty()) {
      std::printf(
          "golden: real data tiny1m_wikitext2.kvc.h5 not found (expected in %s or "
          "$KVWB_REAL_DATA); "
          "skipping the tiny1m cases\n",
          KVWB_REAL_DATA_DIR);
      if (only == "tiny1m") return 77;
    } else {
      for (auto& c : tiny1m_cases(cap)) cases.push_back(std::move(c));
      ran_tiny1m = true;
    }
  }

  // The executors under test: one and three CPU threads (results must not depend on it).
  std::unique_ptr<kvwb::codec::Executor> executors[2];
  try {
    executors[0] = kvwb::codec::make_executor(backend, {1});
    executors[1] = kvwb::codec::make_executor(backend, {3});
  } catch (const kvwb::Error& e) {
    std::printf("golden: backend '%s' cannot run: %s\n", backend.c_str(), e.what());
    return backend == "cpu" ? 1 : 77;
  }

  std::vector<std::string> order;
  const std::map<std::string, Line> want = read_golden(golden, &order);
  std::map<std::string, Line> got;
  int failed = 0;
  for (const Case& c : cases) {
    if (got.count(c.name)) {
      std::printf("DUPLICATE case name %s\n", c.name.c_str());
      return 2;
    }
    Line l, via_executor;
    const int which = static_cast<int>(got.size() % 2);
    try {
      const Batch b = c.make();
      l = hash_outcome(kvwb::golden::run_units(b));
      via_executor = hash_outcome(kvwb::golden::run_executor(b, *executors[which]));
    } catch (const std::exception& e) {
      std::printf("ERROR %s: %s\n", c.name.c_str(), e.what());
      ++failed;
      continue;
    }
    got[c.name] = l;
    if (!(via_executor == l)) {
      std::printf(
          "EXECUTOR %s: the %s executor (%d thread%s) differs from the unit-by-unit codec\n"
          "  codec:    %s\n  executor: %s\n",
          c.name.c_str(), backend.c_str(), which ? 3 : 1, which ? "s" : "", describe(l).c_str(),
          describe(via_executor).c_str());
      ++failed;
    }
    if (regenerate) continue;
    auto it = want.find(c.name);
    if (it == want.end()) {
      std::printf("MISSING %s: no golden line (%s); run the golden-regenerate target\n",
                  c.name.c_str(), describe(l).c_str());
      ++failed;
    } else if (!(it->second == l)) {
      std::printf("CHANGED %s\n  golden: %s\n  now:    %s\n", c.name.c_str(),
                  describe(it->second).c_str(), describe(l).c_str());
      ++failed;
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  if (regenerate) {
    if (failed) {
      std::printf("golden: %d case(s) failed to run; %s left unchanged\n", failed, golden.c_str());
      return 1;
    }
    // Keep the lines of groups that did not run; report changed, added and removed cases.
    std::map<std::string, Line> next;
    for (const auto& [name, l] : want)
      if ((is_tiny1m(name) && !ran_tiny1m) || (!is_tiny1m(name) && !ran_synthetic)) next[name] = l;
    int changed = 0, added = 0, removed = 0;
    for (const auto& [name, l] : want)
      if (!next.count(name) && !got.count(name)) {
        std::printf("removed %s\n", name.c_str());
        ++removed;
      }
    for (const Case& c : cases) {
      const Line& l = got[c.name];
      auto it = want.find(c.name);
      if (it == want.end()) {
        std::printf("added   %s (%s)\n", c.name.c_str(), describe(l).c_str());
        ++added;
      } else if (!(it->second == l)) {
        std::printf("changed %s\n  was: %s\n  now: %s\n", c.name.c_str(),
                    describe(it->second).c_str(), describe(l).c_str());
        ++changed;
      }
    }
    std::ostringstream os;
    os << "# Golden container bytes (tests/golden/test_golden.cpp): name, container bytes, sha256 "
          "of the\n"
          "# concatenated containers (unit order), sha256 of the decoded f32 rows [S, H, T, D].\n"
          "# Regenerate with `ninja -C build golden-regenerate` and commit with the reason for the "
          "change.\n";
    for (const Case& c : cases) {
      const Line& l = got[c.name];
      os << c.name << ' ' << l.bytes << ' ' << l.containers << ' ' << l.decoded << '\n';
    }
    for (const auto& [name, l] : next)
      os << name << ' ' << l.bytes << ' ' << l.containers << ' ' << l.decoded << '\n';
    const std::string text = os.str();
    kvwb::io::write_file_atomic(golden, std::string_view(text));
    std::printf("golden: %zu cases run in %.2f s; %d changed, %d added, %d removed; wrote %s\n",
                cases.size(), secs, changed, added, removed, golden.c_str());
    return 0;
  }
  std::printf("golden: %zu cases in %.2f s, %d failed%s\n", cases.size(), secs, failed,
              ran_tiny1m || only == "synthetic" ? "" : " (tiny1m cases skipped)");
  return failed ? 1 : 0;
}
