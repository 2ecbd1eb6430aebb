#include "sessions/explore/store_merge.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "base/errors.h"
#include "io/atomic_file.h"
#include "sessions/config/run_config.h"
#include "sessions/explore/result_store.h"
#include "sessions/explore/sweep.h"

namespace kvwb::sessions {

using nlohmann::json;
namespace fs = std::filesystem;

json record_content(const json& record) {
  json r = record;
  if (!r.is_object()) return r;
  r.erase("timing");
  if (r.contains("result") && r["result"].is_object()) {
    r["result"].erase("seconds");
    if (r["result"].contains("capture") && r["result"]["capture"].is_object())
      r["result"]["capture"].erase("file");
  }
  return r;
}

namespace {

std::string abs_path(const std::string& p) {
  std::error_code ec;
  fs::path a = fs::absolute(p, ec);
  if (ec) return p;
  return a.lexically_normal().string();
}

/// Same folder on disk (both exist) or the same normalised absolute path.
bool same_folder(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) return fs::equivalent(a, b, ec);
  return abs_path(a) == abs_path(b);
}

std::string capture_sha(const json& meta) {
  return meta.value("capture", json::object()).value("sha256", std::string());
}

/// A store setting in a message: its JSON, or "none" when the store has none (null).
std::string dump_or_none(const json& setting) {
  return setting.is_null() ? std::string("none") : setting.dump();
}

/// The first JSON pointer at which `a` and `b` differ ("" when equal).
std::string first_difference(const json& a, const json& b) {
  const json patch = json::diff(a, b);
  if (patch.empty()) return {};
  return patch[0].value("path", std::string("/"));
}

std::string cell_text(const json& rec) {
  return "cell " + rec.value("cell", json()).dump() + " " +
         rec.value("options", json::object()).dump() + " (config hash " +
         rec.value("config_hash", std::string()) + ")";
}

/// Writes the files into a fresh folder beside `out` and moves it to `out` (absent or an empty
/// folder) once every byte is on disk, through the durability policy of io/durable.h; on failure
/// the temporary folder is removed.
void commit_store_folder(const fs::path& out, const std::string& meta_text,
                         const std::string& results_text) {
  const fs::path parent = out.parent_path().empty() ? fs::path(".") : out.parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw IoError(parent.string(), "cannot create the folder: " + ec.message());
  io::remove_stale_temps(out.string());
  const fs::path tmp = io::temp_path_for(out.string());
  if (!fs::create_directory(tmp, ec) || ec)
    throw IoError(tmp.string(),
                  "cannot create the temporary folder: " + (ec ? ec.message() : "exists"));
  try {
    io::write_file_atomic((tmp / "store.json").string(), meta_text);
    io::write_file_atomic((tmp / "results.jsonl").string(), results_text);
    io::fsync_directory(tmp.string());
    io::commit_directory(tmp.string(), out.string(), false);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

struct Held {
  json record;
  std::string content_sha;  // sha256 of record_content(record).dump(): duplicates compare by it
  size_t input = 0;
};

std::string content_sha256(const json& record) {
  const std::string t = record_content(record).dump();
  return io::sha256_hex(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(t.data()), t.size()));
}

}  // namespace

MergeReport merge_result_stores(const std::string& out, const std::vector<std::string>& inputs,
                                const MergeOptions& opt) {
  MergeReport rep;
  rep.out = out;
  rep.inputs = inputs.size();
  if (inputs.empty()) throw InvalidArgument("store merge: no input stores given");
  if (out.empty()) throw InvalidArgument("store merge: no output folder given");
  for (const auto& in : inputs)
    if (same_folder(in, out))
      throw InvalidArgument("store merge: the output " + out +
                            " is also an input; merge into a new folder");
  std::error_code ec;
  if (fs::exists(out, ec)) {
    if (!fs::is_directory(out, ec))
      throw InvalidArgument("store merge: the output " + out + " exists and is not a folder");
    if (fs::directory_iterator(out, ec) != fs::directory_iterator())
      throw InvalidArgument("store merge: the output folder " + out +
                            " is not empty; merge into a new folder");
  }
  if (opt.require_complete && opt.grid.is_null())
    throw InvalidArgument("store merge: requiring a complete store needs the grid (--grid)");

  // Read every input and check that they belong together.
  std::vector<StoreContents> stores;
  stores.reserve(inputs.size());
  for (const auto& in : inputs) {
    StoreContents sc = read_result_store(in);
    if (sc.meta.is_null())
      throw FormatError(in + ": not a kvwb result store (no store.json; made by kvwb sweep --out)");
    for (auto& p : sc.problems) rep.problems.push_back(std::move(p));
    stores.push_back(std::move(sc));
  }
  const json& first = stores[0].meta;
  rep.capture_sha256 = capture_sha(first);
  const std::string given_grid_sha =
      opt.grid.is_null() ? std::string() : sweep_grid_sha256(opt.grid);
  for (size_t i = 1; i < stores.size(); ++i) {
    const json& m = stores[i].meta;
    if (capture_sha(m) != rep.capture_sha256)
      throw StoreMismatch(
          "store merge: " + inputs[0] + " holds results of the capture with sha256 " +
          rep.capture_sha256 + " (" + first.value("capture", json::object()).value("file", "") +
          ") but " + inputs[i] + " holds results of the capture with sha256 " + capture_sha(m) +
          " (" + m.value("capture", json::object()).value("file", "") +
          "); only stores of one capture merge");
    const json e0 = first.value("e2e", json()), ei = m.value("e2e", json());
    if (e0 != ei)
      throw StoreMismatch("store merge: " + inputs[0] + " has end-to-end settings " +
                          dump_or_none(e0) + " but " + inputs[i] + " has " + dump_or_none(ei) +
                          "; only stores made with the same settings merge");
    const json c0 = first.value("calibration", json()), ci = m.value("calibration", json());
    if (c0 != ci)
      throw StoreMismatch("store merge: " + inputs[0] + " was made with calibration bundle " +
                          dump_or_none(c0) + " but " + inputs[i] + " with " + dump_or_none(ci) +
                          "; only stores made with the same bundle merge");
  }
  if (!opt.grid.is_null())
    for (size_t i = 0; i < stores.size(); ++i) {
      const std::string g = stores[i].meta.value("grid_sha256", std::string());
      if (g != given_grid_sha)
        throw StoreMismatch("store merge: " + inputs[i] + " was made from a grid with sha256 " + g +
                            ", not from the given grid (sha256 " + given_grid_sha + ")");
    }

  // One record per key; identical duplicates are dropped, conflicting ones refused.
  std::unordered_map<std::string, Held> held;
  for (size_t i = 0; i < stores.size(); ++i) {
    rep.duplicates += stores[i].duplicates;
    for (auto& rec : stores[i].records) {
      const std::string key = rec["key"].get<std::string>();
      std::string sha = content_sha256(rec);
      auto it = held.find(key);
      if (it == held.end()) {
        held.emplace(key, Held{std::move(rec), std::move(sha), i});
        continue;
      }
      if (it->second.content_sha != sha)
        throw StoreMismatch(
            "store merge: " + cell_text(rec) + " differs between " + inputs[it->second.input] +
            " and " + inputs[i] + " (first difference at " +
            first_difference(record_content(it->second.record), record_content(rec)) +
            "); conflicting results of one cell");
      ++rep.duplicates;
    }
  }

  // The grid: the given one, or the one all inputs share.
  json grid = opt.grid;
  if (grid.is_null()) {
    const std::string g0 = first.value("grid_sha256", std::string());
    bool shared = !g0.empty() && first.contains("grid");
    for (const auto& s : stores)
      shared = shared && s.meta.value("grid_sha256", std::string()) == g0;
    if (shared) grid = first["grid"];
  }
  std::unordered_set<std::string> grid_keys;
  if (!grid.is_null()) {
    const std::vector<GridCell> cells = expand_sweep_grid(grid, "store merge grid");
    rep.grid_cells = cells.size();
    for (size_t c = 0; c < cells.size(); ++c) {
      const std::string hash = run_config_hash(cells[c].config);
      const std::string key = result_key(rep.capture_sha256, hash);
      grid_keys.insert(key);
      if (!held.count(key)) rep.missing.push_back(MissingCell{c, hash, cells[c].options});
    }
    for (const auto& [key, h] : held)
      if (!grid_keys.count(key)) rep.not_in_grid.push_back(key);
    std::sort(rep.not_in_grid.begin(), rep.not_in_grid.end());
  }
  if (opt.require_complete && (!rep.missing.empty() || !rep.not_in_grid.empty())) {
    std::string msg = "store merge: the inputs do not hold exactly the grid's " +
                      std::to_string(rep.grid_cells) +
                      " cells: " + std::to_string(rep.missing.size()) + " missing";
    for (size_t i = 0; i < rep.missing.size() && i < 10; ++i)
      msg += (i ? ", " : " (") + std::string("cell ") + std::to_string(rep.missing[i].cell) + " " +
             rep.missing[i].options.dump() + (i + 1 == rep.missing.size() || i == 9 ? ")" : "");
    if (rep.missing.size() > 10) msg += " ...";
    msg += ", " + std::to_string(rep.not_in_grid.size()) + " not in the grid; nothing written";
    throw StoreIncomplete(msg);
  }

  // Canonical order: ascending configuration hash (the key is "<capture sha256>:<config hash>").
  std::vector<const Held*> order;
  order.reserve(held.size());
  for (const auto& [key, h] : held) order.push_back(&h);
  std::sort(order.begin(), order.end(), [](const Held* a, const Held* b) {
    return a->record.value("key", std::string()) < b->record.value("key", std::string());
  });
  std::string results;
  for (const Held* h : order) {
    results += h->record.dump() + "\n";
    if (h->record.value("status", std::string()) != "ok") ++rep.failed;
  }
  rep.records = order.size();

  json merged_from = json::array();
  for (size_t i = 0; i < stores.size(); ++i) {
    json m{{"store", abs_path(inputs[i])}, {"records", stores[i].records.size()}};
    if (stores[i].meta.contains("shard")) m["shard"] = stores[i].meta["shard"];
    merged_from.push_back(std::move(m));
  }
  json meta{
      {"format", kStoreFormat},
      {"format_version", kStoreFormatVersion},
      {"capture",
       {{"file", first.value("capture", json::object()).value("file", std::string())},
        {"sha256", rep.capture_sha256}}},
      {"cells", grid.is_null() ? rep.records : rep.grid_cells},
      {"created_unix",
       std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count()},
      {"merged_from", merged_from}};
  if (!grid.is_null()) {
    meta["grid"] = grid;
    meta["grid_sha256"] = sweep_grid_sha256(grid);
  }
  if (first.contains("e2e")) meta["e2e"] = first["e2e"];
  if (first.contains("calibration")) meta["calibration"] = first["calibration"];
  commit_store_folder(fs::path(out), meta.dump(2) + "\n", results);
  return rep;
}

StoreDiff diff_result_stores(const std::string& a, const std::string& b) {
  const StoreContents sa = read_result_store(a), sb = read_result_store(b);
  StoreDiff d;
  d.capture_differs = capture_sha(sa.meta) != capture_sha(sb.meta);
  std::map<std::string, json> ca, cb;
  for (const auto& r : sa.records) ca[r["key"].get<std::string>()] = record_content(r);
  for (const auto& r : sb.records) cb[r["key"].get<std::string>()] = record_content(r);
  for (const auto& [key, content] : ca) {
    auto it = cb.find(key);
    if (it == cb.end()) {
      d.only_a.push_back(key);
    } else if (it->second == content) {
      ++d.same;
    } else {
      d.different.emplace_back(key, first_difference(content, it->second));
    }
  }
  for (const auto& [key, content] : cb)
    if (!ca.count(key)) d.only_b.push_back(key);
  return d;
}

}  // namespace kvwb::sessions
