// libFuzzer harness: the JSON documents users write or keep: a run configuration
// (run_config_from_json), a sweep grid (cell count, then expansion of small grids), a session
// (load_session through a file, so the migration and type checks run) and a result store's lines.
// The first byte picks the document kind; the rest is the document.
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>

#include "sessions/analysis/pareto.h"
#include "sessions/config/run_config.h"
#include "sessions/config/run_options.h"
#include "sessions/document/session.h"
#include "sessions/explore/result_store.h"
#include "sessions/explore/sweep.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvwb;
  if (size < 1) return 0;
  const int kind = data[0] % 4;
  const uint8_t* body = data + 1;
  const size_t n = size - 1;
  if (kind == 2) {  // session: through the file reader (version, types, migration)
    const auto path = fuzz::scratch() / "s.kvwb.json";
    fuzz::write_bytes(path, body, n);
    sessions::SessionLoadOptions o;
    o.verify_capture = false;
    fuzz::expect_typed([&] { (void)sessions::load_session(path.string(), o); });
    return 0;
  }
  if (kind == 3) {  // result store: store.json + results.jsonl split at the first 0 byte
    const auto dir = fuzz::scratch() / "store";
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    size_t cut = 0;
    while (cut < n && body[cut] != 0) ++cut;
    fuzz::write_bytes(dir / "store.json", body, cut);
    fuzz::write_bytes(dir / "results.jsonl", body + std::min(cut + 1, n), n - std::min(cut + 1, n));
    fuzz::expect_typed([&] {
      const auto c = sessions::read_result_store(dir.string());
      (void)sessions::sweep_table_json(c.records);
      (void)sessions::sweep_table_csv(c.records);
      (void)sessions::pareto_points_from_records(c.records, "k_rel_mse");
    });
    return 0;
  }
  const nlohmann::json j = nlohmann::json::parse(body, body + n, nullptr, false);
  if (j.is_discarded()) return 0;
  if (kind == 0) {
    fuzz::expect_typed([&] {
      const sessions::RunConfig c = sessions::run_config_from_json(j, "fuzz.json");
      (void)sessions::run_config_hash(c);
    });
  } else {
    fuzz::expect_typed([&] {
      // The count is computed for any grid; only small grids are expanded (the cap is tested by
      // the unit tests, and a 10^5-cell expansion would only slow the fuzzer down).
      const nlohmann::json* subs =
          j.is_array() ? &j : (j.is_object() && j.contains("grids") ? &j["grids"] : nullptr);
      uint64_t total = 0;
      if (!subs) {
        total = sessions::grid_cell_count(j, "fuzz grid");
      } else if (subs->is_array()) {
        for (const auto& g : *subs)
          if (g.is_object()) total += sessions::grid_cell_count(g, "fuzz grid");
      }
      if (total > 64) return;
      (void)sessions::expand_sweep_grid(j, "fuzz grid");
    });
  }
  return 0;
}
