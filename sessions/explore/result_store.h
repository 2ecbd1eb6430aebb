#pragma once
// An append-only, crash-safe store of sweep results (docs/sweeps.md). A store is a folder:
//   STORE/store.json     metadata (format, capture file + sha256, the grid), written atomically
//   STORE/results.jsonl  one JSON record per line; each line goes out in a single write() followed
//                        by fsync (io::DurableAppendFile), so a crash loses at most the line being
//                        written (a torn last line, which readers ignore and report).
// A new store is created whole (both files built in a temporary sibling folder, then renamed into
// place), so a kill during creation leaves no store rather than one that can be neither resumed
// nor reused.
// Key of a record = capture sha256 + ":" + run_config_hash (canonical configuration). When a key
// appears twice, the first record wins.
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace kvwb::io {
class DurableAppendFile;
}

namespace kvwb::sessions {

inline constexpr const char* kStoreFormat = "kvwb-result-store";
inline constexpr int kStoreFormatVersion = 1;

/// The key of a (capture, configuration) pair: "<capture sha256>:<config hash>".
std::string result_key(const std::string& capture_sha256, const std::string& config_hash);

/// What reading a store found. `records` holds the valid records in file order, first of each key.
struct StoreContents {
  nlohmann::json meta;                   // store.json (null when the folder has none)
  std::vector<nlohmann::json> records;   // one per distinct key, first occurrence wins
  size_t lines = 0;                      // complete lines read (valid or not)
  size_t duplicates = 0;                 // valid records whose key was already seen
  std::vector<std::string> problems;     // torn last line, unparsable lines (with line numbers)
  bool torn_tail = false;                // the file ended without '\n' after some bytes
};

/// Reads a store folder (an empty folder reads as an empty store). Never throws for damaged or
/// malformed lines (records whose fields have the wrong types are reported in `problems` and
/// skipped); throws IoError when the folder or a present file cannot be read, FormatError when
/// store.json is missing from a non-empty folder or is not a valid result store description.
StoreContents read_result_store(const std::string& dir);

/// Appends records to a store. Thread-safe: concurrent append() calls are serialised.
class ResultStoreWriter {
 public:
  /// Opens for appending; when the folder holds no store.json, creates the store (the folder must
  /// be absent or empty) with store.json from `meta`, atomically. When
  /// results.jsonl ends in a torn line, the torn bytes are cut off first (reported by
  /// repaired_bytes()). Throws IoError naming the path.
  ResultStoreWriter(const std::string& dir, const nlohmann::json& meta);
  ~ResultStoreWriter();
  ResultStoreWriter(const ResultStoreWriter&) = delete;
  ResultStoreWriter& operator=(const ResultStoreWriter&) = delete;

  /// Writes `record` as one line (compact JSON + '\n') with a single write() and fsync.
  /// Throws IoError when the write is short or fails (the file keeps every earlier record).
  void append(const nlohmann::json& record);
  /// Bytes of a torn last line removed when the store was opened (0 when none).
  uint64_t repaired_bytes() const { return repaired_; }
  const std::string& results_path() const { return path_; }

 private:
  std::unique_ptr<io::DurableAppendFile> file_;
  std::string path_;
  uint64_t repaired_ = 0;
};

/// Paths inside a store folder.
std::string store_meta_path(const std::string& dir);
std::string store_results_path(const std::string& dir);

}  // namespace kvwb::sessions
