#pragma once
// The result cache (issue 13 item 1, docs/result-cache.md): what the runner measured for one
// (layer, stream) — bytes, errors, attention sums — keyed by the sha256 of everything that
// determines it (capture sha256, layer, stream, the layer plan's resolved stream settings,
// whitening factors, block settings, attention settings, backend). A run of a configuration that
// shares layers with one already run computes only the layers that differ: a boundary toggle
// recomputes one layer. Two tiers: a bounded in-memory LRU and a bounded on-disk LRU folder (the
// user's cache folder), shared by concurrent processes: entries are written atomically
// (io/durable temporaries + rename), read whole and verified (format, key, length, checksum); an
// unreadable or foreign entry is a miss and is removed. Results never depend on a hit or a miss.
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace kvwb::sessions {

struct ResultCacheOptions {
  uint64_t memory_bytes = 256ull << 20;  // in-memory tier bound (payload bytes); 0 = no memory tier
  std::string dir;                       // on-disk tier folder; "" = memory only
  uint64_t disk_bytes = 1024ull << 20;   // on-disk tier bound (file bytes)
};

/// The user's cache folder for results: $KVWB_CACHE_DIR ("off": none, memory only), else
/// $XDG_CACHE_HOME/kvwb/results, else $HOME/.cache/kvwb/results; "" when none of them is set.
std::string default_result_cache_dir();
/// Options of the shared cache of `kvwb run`/`sweep` and the GUI: default_result_cache_dir(),
/// bounds from $KVWB_CACHE_MAX_MB (disk, default 1024) when set.
ResultCacheOptions default_result_cache_options();

/// A thread-safe two-tier LRU of opaque payloads under 64-hex-digit keys.
class ResultCache {
 public:
  explicit ResultCache(ResultCacheOptions options);
  ResultCache(const ResultCache&) = delete;
  ResultCache& operator=(const ResultCache&) = delete;

  /// The payload stored under `key` (memory first, then disk, which refreshes its LRU time and
  /// promotes it to memory); nullopt on a miss. Never throws for a bad or vanished disk entry.
  std::optional<std::string> get(const std::string& key);
  /// Stores `payload` under `key` in both tiers and evicts the least recently used entries beyond
  /// the bounds. A disk write that fails (read-only folder, full disk) is counted and ignored: the
  /// cache is an accelerator, never a reason for a run to fail.
  void put(const std::string& key, const std::string& payload);

  struct Stats {
    uint64_t memory_hits = 0, disk_hits = 0, misses = 0, stores = 0, disk_errors = 0, evicted = 0;
  };
  Stats stats() const;
  const ResultCacheOptions& options() const { return opt_; }
  /// Empties the memory tier (the disk tier stays).
  void clear_memory();

 private:
  std::string disk_path(const std::string& key) const;
  void evict_disk_locked();
  /// Puts `payload` first in the memory tier (replacing an entry under `key`) when the tier holds
  /// it, then drops the least recently used entries beyond its bound; returns how many it dropped.
  uint64_t remember_locked(const std::string& key, const std::string& payload);

  ResultCacheOptions opt_;
  mutable std::mutex mu_;
  std::list<std::pair<std::string, std::string>> lru_;  // most recent first: key, payload
  std::unordered_map<std::string, std::list<std::pair<std::string, std::string>>::iterator> index_;
  uint64_t memory_used_ = 0;
  std::optional<uint64_t> disk_used_;  // estimate; rescanned when over the bound
  Stats stats_;
};

}  // namespace kvwb::sessions
