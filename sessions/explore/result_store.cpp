#include "sessions/explore/result_store.h"

#include <filesystem>
#include <unordered_set>

#include "base/errors.h"
#include "io/atomic_file.h"

namespace kvwb::sessions {

using nlohmann::json;
namespace fs = std::filesystem;

std::string result_key(const std::string& capture_sha256, const std::string& config_hash) {
  return capture_sha256 + ":" + config_hash;
}

std::string store_meta_path(const std::string& dir) { return (fs::path(dir) / "store.json").string(); }
std::string store_results_path(const std::string& dir) { return (fs::path(dir) / "results.jsonl").string(); }

StoreContents read_result_store(const std::string& dir) {
  StoreContents out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw IoError(dir, "not a result store folder (no such directory)");
  const std::string meta_path = store_meta_path(dir);
  if (fs::exists(meta_path, ec)) {
    const auto bytes = io::read_file(meta_path);
    try {
      out.meta = json::parse(bytes.begin(), bytes.end());
    } catch (const json::exception& e) {
      throw FormatError(meta_path + ": not valid JSON (" + e.what() + ")");
    }
    if (!out.meta.is_object() || out.meta.value("format", std::string()) != kStoreFormat)
      throw FormatError(meta_path + ": not a kvwb result store (expected \"format\": \"" +
                        std::string(kStoreFormat) + "\")");
  }
  const std::string path = store_results_path(dir);
  if (!fs::exists(path, ec)) return out;
  const auto bytes = io::read_file(path);
  std::unordered_set<std::string> seen;
  size_t start = 0;
  size_t line_no = 0;
  while (start < bytes.size()) {
    size_t end = start;
    while (end < bytes.size() && bytes[end] != '\n') ++end;
    ++line_no;
    if (end == bytes.size()) {
      out.torn_tail = true;
      out.problems.push_back(path + ": line " + std::to_string(line_no) + " is torn (" +
                             std::to_string(end - start) +
                             " bytes without a final newline, a write interrupted by a crash); ignored");
      break;
    }
    ++out.lines;
    const std::string text(bytes.begin() + static_cast<std::ptrdiff_t>(start),
                           bytes.begin() + static_cast<std::ptrdiff_t>(end));
    start = end + 1;
    if (text.empty()) continue;
    json rec;
    try {
      rec = json::parse(text);
    } catch (const json::exception&) {
      out.problems.push_back(path + ": line " + std::to_string(line_no) + " is not valid JSON; ignored");
      continue;
    }
    if (!rec.is_object() || !rec.contains("key") || !rec["key"].is_string()) {
      out.problems.push_back(path + ": line " + std::to_string(line_no) + " has no \"key\"; ignored");
      continue;
    }
    if (!seen.insert(rec["key"].get<std::string>()).second) {
      ++out.duplicates;
      continue;
    }
    out.records.push_back(std::move(rec));
  }
  return out;
}

ResultStoreWriter::ResultStoreWriter(const std::string& dir, const json& meta) {
  std::error_code ec;
  io::remove_stale_temps(dir);
  const std::string meta_path = store_meta_path(dir);
  if (!fs::exists(meta_path, ec)) {
    // Create the store whole: store.json and an empty results.jsonl are built in a temporary
    // sibling folder and renamed into place, so a kill leaves either no store or a complete one.
    const bool absent = !fs::exists(dir, ec);
    if (!absent && (!fs::is_directory(dir, ec) || !fs::is_empty(dir, ec)))
      throw IoError(dir, "exists and is not an empty folder; a result store is created only in a new or empty folder");
    const fs::path parent = fs::absolute(fs::path(dir)).lexically_normal().parent_path();
    fs::create_directories(parent, ec);
    if (ec) throw IoError(parent.string(), "cannot create the folder: " + ec.message());
    const std::string tmp = io::temp_path_for(fs::absolute(fs::path(dir)).lexically_normal().string());
    fs::create_directory(tmp, ec);
    if (ec) throw IoError(dir, "cannot create the temporary store folder " + tmp + ": " + ec.message());
    try {
      io::write_file_atomic(store_meta_path(tmp), meta.dump(2) + "\n");
      io::write_file_atomic(store_results_path(tmp), std::string_view());
      io::fsync_directory(tmp);
      io::commit_directory(tmp, fs::absolute(fs::path(dir)).lexically_normal().string(), false);
    } catch (...) {
      fs::remove_all(tmp, ec);
      throw;
    }
  }
  file_ = std::make_unique<io::DurableAppendFile>(store_results_path(dir));
  path_ = file_->path();
  repaired_ = file_->repaired_bytes();
}

ResultStoreWriter::~ResultStoreWriter() = default;

void ResultStoreWriter::append(const json& record) { file_->append(record.dump() + "\n"); }

}  // namespace kvwb::sessions
