#include "sessions/run/result_cache.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "io/atomic_file.h"
#include "io/durable.h"

namespace kvwb::sessions {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'K', 'V', 'W', 'B', 'R', 'C', '0', '1'};
constexpr size_t kKeyLen = 64;
constexpr size_t kHeader = sizeof kMagic + kKeyLen + 8 + 8;

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

bool valid_key(const std::string& key) {
  if (key.size() != kKeyLen) return false;
  return std::all_of(key.begin(), key.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t get_u64(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

std::string default_result_cache_dir() { return io::default_cache_dir(); }

ResultCacheOptions default_result_cache_options() {
  ResultCacheOptions o;
  o.dir = default_result_cache_dir();
  if (const char* m = std::getenv("KVWB_CACHE_MAX_MB"); m && *m) {
    char* end = nullptr;
    const unsigned long long mb = std::strtoull(m, &end, 10);
    if (end && *end == '\0' && mb <= (1ull << 24)) o.disk_bytes = static_cast<uint64_t>(mb) << 20;
  }
  return o;
}

ResultCache::ResultCache(ResultCacheOptions options) : opt_(std::move(options)) {}

std::string ResultCache::disk_path(const std::string& key) const {
  return opt_.dir + "/" + key.substr(0, 2) + "/" + key + ".kvwbrc";
}

std::optional<std::string> ResultCache::get(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = index_.find(key); it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    ++stats_.memory_hits;
    return it->second->second;
  }
  if (opt_.dir.empty() || !valid_key(key)) {
    ++stats_.misses;
    return std::nullopt;
  }
  const std::string path = disk_path(key);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ++stats_.misses;
    return std::nullopt;
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  bool ok = bytes.size() >= kHeader && std::memcmp(bytes.data(), kMagic, sizeof kMagic) == 0 &&
            bytes.compare(sizeof kMagic, kKeyLen, key) == 0;
  std::string payload;
  if (ok) {
    const uint64_t len = get_u64(bytes.data() + sizeof kMagic + kKeyLen);
    const uint64_t sum = get_u64(bytes.data() + sizeof kMagic + kKeyLen + 8);
    ok = len == bytes.size() - kHeader;
    if (ok) {
      payload = bytes.substr(kHeader);
      ok = fnv1a(payload) == sum;
    }
  }
  if (!ok) {  // torn, corrupt or foreign: a miss, and out of the way of the next writer
    std::error_code ec;
    fs::remove(path, ec);
    ++stats_.misses;
    return std::nullopt;
  }
  // LRU on disk: the modification time is the last use.
  std::error_code ec;
  fs::last_write_time(path, fs::file_time_type::clock::now(), ec);
  ++stats_.disk_hits;
  remember_locked(key, payload);
  return payload;
}

uint64_t ResultCache::remember_locked(const std::string& key, const std::string& payload) {
  uint64_t dropped = 0;
  if (opt_.memory_bytes == 0 || payload.size() > opt_.memory_bytes) return dropped;
  if (auto it = index_.find(key); it != index_.end()) {
    memory_used_ -= it->second->second.size();
    lru_.erase(it->second);
    index_.erase(it);
  }
  lru_.emplace_front(key, payload);
  index_[key] = lru_.begin();
  memory_used_ += payload.size();
  while (memory_used_ > opt_.memory_bytes && !lru_.empty()) {
    memory_used_ -= lru_.back().second.size();
    index_.erase(lru_.back().first);
    lru_.pop_back();
    ++dropped;
  }
  return dropped;
}

void ResultCache::put(const std::string& key, const std::string& payload) {
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.stores;
  stats_.evicted += remember_locked(key, payload);
  if (opt_.dir.empty() || !valid_key(key) || payload.size() + kHeader > opt_.disk_bytes) return;
  const std::string path = disk_path(key);
  std::string tmp;
  try {
    std::error_code ec;
    fs::create_directories(fs::path(path).parent_path(), ec);
    std::string bytes(kMagic, sizeof kMagic);
    bytes += key;
    put_u64(bytes, payload.size());
    put_u64(bytes, fnv1a(payload));
    bytes += payload;
    // A temporary named by io/durable (a killed writer's leftover is recognised and cleaned),
    // then one rename: readers in other processes see the old entry, the new one, or none. No
    // fsync: a cache entry lost to a power cut is only a miss, and a torn one fails its checksum.
    tmp = io::temp_path_for(path);
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      out.close();
      if (!out) throw std::runtime_error("write failed");
    }
    fs::rename(tmp, path);
    tmp.clear();
    if (disk_used_) *disk_used_ += bytes.size();
    if (!disk_used_ || *disk_used_ > opt_.disk_bytes) evict_disk_locked();
  } catch (const std::exception&) {
    if (!tmp.empty()) {
      std::error_code ec;
      fs::remove(tmp, ec);
    }
    ++stats_.disk_errors;
  }
}

void ResultCache::evict_disk_locked() {
  struct Entry {
    fs::file_time_type time;
    uint64_t size;
    fs::path path;
  };
  std::vector<Entry> entries;
  uint64_t total = 0;
  std::error_code ec;
  const auto now = fs::file_time_type::clock::now();
  for (auto it = fs::recursive_directory_iterator(opt_.dir, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    std::error_code e2;
    if (!it->is_regular_file(e2)) continue;
    const std::string name = it->path().filename().string();
    const auto t = it->last_write_time(e2);
    if (e2) continue;
    const uint64_t size = it->file_size(e2);
    if (e2) continue;
    if (name.find(".kvwb-tmp.") != std::string::npos) {
      // A temporary older than an hour belongs to a writer that is gone.
      if (now - t > std::chrono::hours(1)) fs::remove(it->path(), e2);
      continue;
    }
    if (name.size() < 7 || name.compare(name.size() - 7, 7, ".kvwbrc") != 0) continue;
    entries.push_back({t, size, it->path()});
    total += size;
  }
  if (total > opt_.disk_bytes) {
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.time < b.time; });
    const uint64_t target = opt_.disk_bytes - opt_.disk_bytes / 10;  // evict to 90 %
    for (const Entry& e : entries) {
      if (total <= target) break;
      std::error_code e2;
      if (fs::remove(e.path, e2)) {  // another process may have removed it first
        ++stats_.evicted;
      }
      total -= e.size;
    }
  }
  disk_used_ = total;
}

ResultCache::Stats ResultCache::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void ResultCache::clear_memory() {
  std::lock_guard<std::mutex> lock(mu_);
  lru_.clear();
  index_.clear();
  memory_used_ = 0;
}

}  // namespace kvwb::sessions
