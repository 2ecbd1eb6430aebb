#include "sessions/explore/result_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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
  fs::create_directories(dir, ec);
  if (ec) throw IoError(dir, "cannot create the result store folder: " + ec.message());
  const std::string meta_path = store_meta_path(dir);
  if (!fs::exists(meta_path, ec)) io::write_file_atomic(meta_path, meta.dump(2) + "\n");
  path_ = store_results_path(dir);
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError(path_, std::string("cannot open for appending: ") + std::strerror(errno));
  // Cut a torn last line (a crash in the middle of a write) so new records start on a fresh line.
  struct stat st {};
  if (::fstat(fd_, &st) != 0) throw IoError(path_, std::string("cannot stat: ") + std::strerror(errno));
  if (st.st_size > 0) {
    const auto bytes = io::read_file(path_);
    size_t keep = bytes.size();
    while (keep > 0 && bytes[keep - 1] != '\n') --keep;
    if (keep != bytes.size()) {
      repaired_ = bytes.size() - keep;
      if (::ftruncate(fd_, static_cast<off_t>(keep)) != 0 || ::fsync(fd_) != 0)
        throw IoError(path_, std::string("cannot cut the torn last line: ") + std::strerror(errno));
    }
  }
}

ResultStoreWriter::~ResultStoreWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void ResultStoreWriter::append(const json& record) {
  const std::string line = record.dump() + "\n";
  std::lock_guard<std::mutex> lock(mu_);
  const ssize_t n = ::write(fd_, line.data(), line.size());
  if (n < 0) throw IoError(path_, std::string("write failed: ") + std::strerror(errno));
  if (static_cast<size_t>(n) != line.size())
    throw IoError(path_, "short write (" + std::to_string(n) + " of " + std::to_string(line.size()) +
                             " bytes); the store keeps every earlier record");
  if (::fsync(fd_) != 0) throw IoError(path_, std::string("fsync failed: ") + std::strerror(errno));
}

}  // namespace kvwb::sessions
