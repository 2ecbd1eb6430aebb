#include "sessions/explore/result_store.h"

#include <filesystem>
#include <unordered_set>

#include "base/errors.h"
#include "io/atomic_file.h"
#include "io/limits.h"

namespace kvwb::sessions {

using nlohmann::json;
namespace fs = std::filesystem;

std::string result_key(const std::string& capture_sha256, const std::string& config_hash) {
  return capture_sha256 + ":" + config_hash;
}

std::string store_meta_path(const std::string& dir) { return (fs::path(dir) / "store.json").string(); }
std::string store_results_path(const std::string& dir) { return (fs::path(dir) / "results.jsonl").string(); }

namespace {

/// Checks store.json (the fields readers use); "" when valid, else what is wrong.
std::string meta_problem(const json& m) {
  if (!m.is_object()) return "is not a JSON object";
  if (!m.contains("format") || m["format"] != kStoreFormat)
    return std::string("is not a kvwb result store (expected \"format\": \"") + kStoreFormat + "\")";
  if (m.contains("format_version")) {
    const json& v = m["format_version"];
    if (!v.is_number_integer() || v.get<long long>() < 1 || v.get<long long>() > kStoreFormatVersion ||
        (v.is_number_unsigned() && v.get<unsigned long long>() > static_cast<unsigned long long>(kStoreFormatVersion)))
      return "format_version " + v.dump() + " is not supported; expected 1.." + std::to_string(kStoreFormatVersion);
  }
  if (m.contains("capture")) {
    const json& c = m["capture"];
    if (!c.is_object() || (c.contains("sha256") && !c["sha256"].is_string()) || (c.contains("file") && !c["file"].is_string()))
      return "capture must be an object {file: string, sha256: string}";
  }
  if (m.contains("grid_sha256") && !m["grid_sha256"].is_string()) return "grid_sha256 must be a string";
  if (m.contains("cells") && !m["cells"].is_number_unsigned()) return "cells must be a non-negative integer";
  return {};
}

/// Checks the fields of one record that readers (tables, Pareto, resume) use; "" when valid.
std::string record_problem(const json& r) {
  if (!r.is_object()) return "is not a JSON object";
  if (!r.contains("key") || !r["key"].is_string()) return "has no \"key\"";
  if (r.contains("cell") && !r["cell"].is_number_unsigned()) return "has a \"cell\" that is not a non-negative integer";
  for (const char* k : {"config_hash", "capture_sha256", "status"})
    if (r.contains(k) && !r[k].is_string()) return std::string("has a \"") + k + "\" that is not a string";
  for (const char* k : {"options", "timing", "error"})
    if (r.contains(k) && !r[k].is_object()) return std::string("has a \"") + k + "\" that is not an object";
  if (r.contains("error"))
    for (const char* k : {"code", "message"})
      if (r["error"].contains(k) && !r["error"][k].is_string()) return std::string("has an error.") + k + " that is not a string";
  if (!r.contains("result")) {
    if (r.contains("status") && r["status"] == "ok") return "has status \"ok\" but no \"result\"";
    return {};
  }
  const json& res = r["result"];
  if (!res.is_object()) return "has a \"result\" that is not an object";
  if (res.contains("failed") && !res["failed"].is_boolean()) return "has a result.failed that is not a boolean";
  for (const char* k : {"ratio_vs_bf16", "bits_per_value", "total_bytes"})
    if (res.contains(k) && !res[k].is_number() && !res[k].is_null())
      return std::string("has a result.") + k + " that is not a number";
  if (res.contains("totals") && !res["totals"].is_object()) return "has result.totals that is not an object";
  if (res.contains("layers")) {
    if (!res["layers"].is_array()) return "has result.layers that is not a list";
    for (const auto& l : res["layers"]) {
      if (!l.is_object() || (l.contains("layer") && !l["layer"].is_number_integer()))
        return "has a result.layers entry that is not an object with an integer layer";
      for (const char* st : {"k", "v"}) {
        if (!l.contains(st)) continue;
        const json& x = l[st];
        if (!x.is_object() || (x.contains("failed") && !x["failed"].is_boolean()) ||
            (x.contains("error") && (!x["error"].is_object() ||
                                     (x["error"].contains("code") && !x["error"]["code"].is_string()) ||
                                     (x["error"].contains("message") && !x["error"]["message"].is_string()))))
          return std::string("has a malformed result.layers[].") + st;
      }
    }
  }
  return {};
}

}  // namespace

StoreContents read_result_store(const std::string& dir) {
  StoreContents out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw IoError(dir, "not a result store folder (no such directory)");
  const std::string meta_path = store_meta_path(dir);
  if (!fs::exists(meta_path, ec)) {
    if (fs::is_empty(dir, ec)) return out;  // an empty folder: a store not created yet
    throw FormatError(dir + ": not a kvwb result store (no store.json; a store written by kvwb sweep has one)");
  }
  {
    const auto bytes = io::read_file(meta_path, io::kMaxJsonBytes);
    try {
      out.meta = json::parse(bytes.begin(), bytes.end());
    } catch (const json::exception& e) {
      throw FormatError(meta_path + ": not valid JSON (" + e.what() + ")");
    }
    const std::string why = meta_problem(out.meta);
    if (!why.empty()) throw FormatError(meta_path + ": " + why);
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
    if (const std::string why = record_problem(rec); !why.empty()) {
      out.problems.push_back(path + ": line " + std::to_string(line_no) + " " + why + "; ignored");
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
      io::write_file_atomic(store_meta_path(tmp), meta.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
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

void ResultStoreWriter::append(const json& record) {
  file_->append(record.dump(-1, ' ', false, json::error_handler_t::replace) + "\n");
}

}  // namespace kvwb::sessions
