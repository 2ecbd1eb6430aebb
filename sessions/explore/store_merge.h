#pragma once
// Merging and comparing sweep result stores (docs/cluster.md): the shard stores of a sweep run
// on several machines become one store that holds exactly the records one machine would have
// written, in canonical order (ascending configuration hash).
//
// Identity of records: a record's content is the record without the fields that depend on where
// and when it ran (record_content): `timing` {seconds, finished_unix}, the run's `result.seconds`
// and `result.capture.file` (the path the capture had on that machine; the capture itself is
// identified by `capture_sha256`). Every number of a result is part of its content.
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace kvwb::sessions {

/// The record without its volatile fields (see above).
nlohmann::json record_content(const nlohmann::json& record);

struct MergeOptions {
  /// The sweep grid the inputs were made from (kvwb store merge --grid): every input must have
  /// been made from it (same grid_sha256); the merged store.json takes it, and cells of the grid
  /// that no input holds are reported as missing. Null: no grid check; the merged store.json takes
  /// the inputs' grid when they all share one.
  nlohmann::json grid;
  /// Refuse (StoreIncomplete, nothing written) when a cell of `grid` is missing or a record is
  /// not a cell of it.
  bool require_complete = false;
};

/// A cell of the grid that no input store holds.
struct MissingCell {
  size_t cell = 0;  // configuration id in the grid
  std::string config_hash;
  nlohmann::json options;
};

struct MergeReport {
  std::string out;
  std::string capture_sha256;
  size_t inputs = 0;
  size_t records = 0;  // records written (one per key)
  size_t failed = 0;   // of `records`, failure records
  size_t duplicates =
      0;  // records whose key another input (or line) already held, with equal content
  size_t grid_cells = 0;                 // cells of the grid (0 without one)
  std::vector<MissingCell> missing;      // grid cells absent from every input (ascending cell)
  std::vector<std::string> not_in_grid;  // keys of records that are no cell of the grid
  std::vector<std::string> problems;  // damaged lines of the inputs (torn or unparsable; skipped)
};

/// Merges the stores `inputs` into the new store folder `out` (absent or empty; never one of the
/// inputs). All inputs must come from the same capture (sha256), the same end-to-end settings
/// (store.json "e2e") and the same calibration bundle ("calibration"); otherwise StoreMismatch
/// naming both stores and both values. One record per
/// key: identical duplicates (equal record_content) are kept once (the first input's, in the order
/// given), conflicting ones are a StoreMismatch naming the cell. Records are written in ascending
/// configuration hash, each exactly as read (one compact JSON line). The folder is built beside
/// `out` and renamed into place after every file is synced, so `out` is either absent or complete.
/// store.json: format, format_version, capture {file of the first input, sha256}, grid and
/// grid_sha256 (see MergeOptions::grid), cells (grid cells, or records without a grid), e2e and
/// calibration when the inputs have them, created_unix, merged_from [{store, records, shard?}]. Throws IoError,
/// FormatError (an input that is not a store), InvalidArgument (bad `out`), StoreMismatch,
/// StoreIncomplete.
MergeReport merge_result_stores(const std::string& out, const std::vector<std::string>& inputs,
                                const MergeOptions& opt = {});

/// How two stores differ by record content (kvwb store diff).
struct StoreDiff {
  size_t same = 0;                          // keys in both with equal content
  std::vector<std::string> only_a, only_b;  // keys held by one store only
  /// Keys in both whose content differs, each with the JSON pointer of the first difference.
  std::vector<std::pair<std::string, std::string>> different;
  bool capture_differs = false;  // store.json capture sha256
  bool identical() const {
    return only_a.empty() && only_b.empty() && different.empty() && !capture_differs;
  }
};

/// Compares the records of two stores by key and record_content (order and timings ignored).
StoreDiff diff_result_stores(const std::string& a, const std::string& b);

}  // namespace kvwb::sessions
