#include "sessions/document/session.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "base/errors.h"
#include "io/atomic_file.h"
#include "io/limits.h"

namespace kvwb::sessions {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kFormatName = "kvwb-session";

fs::path session_folder(const std::string& session_path) {
  return fs::absolute(fs::path(session_path)).lexically_normal().parent_path();
}

/// `p` relative to `base` when possible (generic separators); absolute otherwise.
std::string relative_to(const std::string& p, const fs::path& base) {
  if (p.empty()) return p;
  const fs::path abs = fs::absolute(fs::path(p)).lexically_normal();
  const fs::path rel = abs.lexically_relative(base);
  return rel.empty() ? abs.generic_string() : rel.generic_string();
}

std::string resolve(const std::string& p, const fs::path& base) {
  if (p.empty()) return p;
  const fs::path q(p);
  return (q.is_absolute() ? q : base / q).lexically_normal().string();
}

}  // namespace

const RunConfig* SessionDocument::current() const {
  for (const auto& c : configs)
    if (c.name == current_config) return &c.config;
  return nullptr;
}

bool SessionDocument::operator==(const SessionDocument& o) const {
  if (capture_path != o.capture_path || capture_sha256 != o.capture_sha256 || current_config != o.current_config ||
      boundary != o.boundary || view_state != o.view_state || configs.size() != o.configs.size() ||
      sweeps.size() != o.sweeps.size())
    return false;
  for (size_t i = 0; i < configs.size(); ++i)
    if (configs[i].name != o.configs[i].name ||
        run_config_to_json(configs[i].config) != run_config_to_json(o.configs[i].config))
      return false;
  for (size_t i = 0; i < sweeps.size(); ++i)
    if (sweeps[i].name != o.sweeps[i].name || sweeps[i].store_path != o.sweeps[i].store_path ||
        sweeps[i].grid != o.sweeps[i].grid)
      return false;
  return true;
}

json session_to_json(const SessionDocument& doc, const std::string& session_path) {
  const fs::path base = session_folder(session_path);
  json j;
  j["format"] = kFormatName;
  j["format_version"] = kSessionFormatVersion;
  j["capture"] = {{"path", relative_to(doc.capture_path, base)},
                  {"sha256", doc.capture_sha256.empty() ? json(nullptr) : json(doc.capture_sha256)}};
  json cfgs = json::array();
  for (const auto& c : doc.configs) cfgs.push_back({{"name", c.name}, {"config", run_config_to_json(c.config)}});
  j["configurations"] = cfgs;
  j["current_configuration"] = doc.current_config.empty() ? json(nullptr) : json(doc.current_config);
  std::vector<int> b = doc.boundary;
  std::sort(b.begin(), b.end());
  b.erase(std::unique(b.begin(), b.end()), b.end());
  j["boundary"] = b;
  json sw = json::array();
  for (const auto& s : doc.sweeps)
    sw.push_back({{"name", s.name}, {"store", relative_to(s.store_path, base)}, {"grid", s.grid}});
  j["sweeps"] = sw;
  j["view_state"] = doc.view_state.is_null() ? json::object() : doc.view_state;
  return j;
}

void save_session(const std::string& session_path, SessionDocument doc) {
  if (doc.capture_sha256.empty() && !doc.capture_path.empty() && fs::exists(doc.capture_path))
    doc.capture_sha256 = io::sha256_file_memo(doc.capture_path, io::default_cache_dir());
  std::set<std::string> names;
  for (const auto& c : doc.configs) {
    if (c.name.empty()) throw InvalidArgument(session_path + ": a configuration has an empty name");
    if (!names.insert(c.name).second)
      throw InvalidArgument(session_path + ": two configurations are named '" + c.name + "'");
  }
  if (!doc.current_config.empty() && !names.count(doc.current_config))
    throw InvalidArgument(session_path + ": current configuration '" + doc.current_config + "' does not exist");
  io::write_file_atomic(session_path, session_to_json(doc, session_path).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

json migrate_session_json(json j, const std::string& source, std::vector<std::string>& warnings) {
  if (!j.is_object()) throw FormatError(source + ": a session document must be a JSON object");
  int version = 0;
  // The version is read as a whole integer (never truncated: 2^32+1 is not 1).
  auto version_of = [&](const char* key) -> int {
    const json& v = j[key];
    if (!v.is_number_integer()) throw FormatError(source + ": " + key + " must be an integer, got " + v.dump());
    if (!v.is_number_unsigned() && v.get<long long>() < 0)
      throw FormatError(source + ": " + key + " " + v.dump() + " is invalid; expected 0.." +
                        std::to_string(kSessionFormatVersion));
    if (v.get<unsigned long long>() > static_cast<unsigned long long>(kSessionFormatVersion))
      throw Unsupported(source + ": session " + key + " " + v.dump() +
                        " was written by a newer kvwb; this one reads versions up to " +
                        std::to_string(kSessionFormatVersion));
    return v.get<int>();
  };
  if (j.contains("format_version")) {
    version = version_of("format_version");
  } else if (j.contains("version")) {
    version = version_of("version");  // version-0 documents used "version"
  }
  if (version == 0) {
    // Version 0: {"version": 0, "capture": "<path>", "config": {...}, "boundary": "0,1" | [..],
    //             "sweeps": {"name": "store path"}, "gui": {...}} — one unnamed configuration,
    //             no SHA-256 pin.
    json n;
    n["format"] = kFormatName;
    n["format_version"] = 1;
    if (j.contains("capture") && !j["capture"].is_string())
      throw FormatError(source + ": capture must be a path string in a version-0 session, got " + j["capture"].dump());
    n["capture"] = {{"path", j.value("capture", std::string())}, {"sha256", nullptr}};
    n["configurations"] = json::array();
    n["current_configuration"] = nullptr;
    if (j.contains("config")) {
      n["configurations"].push_back({{"name", "default"}, {"config", j["config"]}});
      n["current_configuration"] = "default";
    }
    json b = j.value("boundary", json::array());
    if (b.is_string()) {
      try {
        b = parse_layer_list(b.get<std::string>(), source + ": boundary");
      } catch (const InvalidArgument& e) {
        throw FormatError(e.what());
      }
    }
    n["boundary"] = b;
    n["sweeps"] = json::array();
    if (j.contains("sweeps") && j["sweeps"].is_object())
      for (auto it = j["sweeps"].begin(); it != j["sweeps"].end(); ++it)
        n["sweeps"].push_back({{"name", it.key()}, {"store", it->is_string() ? it->get<std::string>() : ""}});
    n["view_state"] = j.value("gui", json::object());
    warnings.push_back(source + ": migrated a version-0 session to version 1 (the capture is not pinned yet; "
                                "it is pinned on this load and written on the next save)");
    j = std::move(n);
    version = 1;
  }
  return j;
}

/// The body of load_session on parsed JSON; may throw json::exception (reported as FormatError).
static void load_session_json(SessionLoadResult& r, json j, const std::string& session_path,
                              const SessionLoadOptions& options);

SessionLoadResult load_session(const std::string& session_path, const SessionLoadOptions& options) {
  SessionLoadResult r;
  json j;
  try {
    const auto bytes = io::read_file(session_path, io::kMaxJsonBytes);
    j = json::parse(bytes.begin(), bytes.end());
  } catch (const json::exception& e) {
    throw FormatError(session_path + ": not valid JSON: " + e.what());
  }
  try {
    load_session_json(r, j, session_path, options);
  } catch (const json::exception& e) {
    // Any type mismatch the checks below did not name still becomes a format error of the file.
    throw FormatError(session_path + ": " + e.what());
  } catch (const InvalidArgument& e) {
    const std::string what = e.what();
    throw FormatError(what.rfind(session_path, 0) == 0 ? what : session_path + ": " + what);
  }
  return r;
}

static void load_session_json(SessionLoadResult& r, json j, const std::string& session_path,
                              const SessionLoadOptions& options) {
  if (j.is_object() && j.contains("format") && j["format"] != kFormatName)
    throw FormatError(session_path + ": format is " + j["format"].dump() + ", expected \"" + kFormatName + "\"");
  const int before = j.is_object() && j.contains("format_version") && j["format_version"].is_number_integer()
                         ? -1
                         : 0;
  j = migrate_session_json(std::move(j), session_path, r.warnings);
  r.loaded_version = before == 0 ? 0 : j.value("format_version", 1);
  const fs::path base = session_folder(session_path);
  static const std::set<std::string> known = {"format", "format_version", "capture", "configurations",
                                              "current_configuration", "boundary", "sweeps", "view_state"};
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.count(it.key())) r.warnings.push_back(session_path + ": ignored unknown key '" + it.key() + "'");

  SessionDocument& d = r.doc;
  try {
    const json& c = j.at("capture");
    if (!c.is_object() || !c.contains("path") || !c["path"].is_string())
      throw FormatError(session_path + ": capture must be {\"path\": string, \"sha256\": string|null}");
    d.capture_path = resolve(c["path"].get<std::string>(), base);
    if (c.contains("sha256") && !c["sha256"].is_null()) {
      static const std::regex hex("[0-9a-f]{64}");
      if (!c["sha256"].is_string() || !std::regex_match(c["sha256"].get<std::string>(), hex))
        throw FormatError(session_path + ": capture.sha256 is " + c["sha256"].dump() +
                          "; expected 64 lowercase hex digits or null");
      d.capture_sha256 = c["sha256"].get<std::string>();
    }
  } catch (const json::exception& e) {
    throw FormatError(session_path + ": capture: " + e.what());
  }
  for (const char* key : {"configurations", "sweeps"})
    if (j.contains(key) && !j[key].is_array() && !j[key].is_null())
      throw FormatError(session_path + ": " + key + " must be a list, got " + j[key].dump());
  if (j.contains("current_configuration") && !j["current_configuration"].is_string() &&
      !j["current_configuration"].is_null())
    throw FormatError(session_path + ": current_configuration must be a name or null, got " +
                      j["current_configuration"].dump());
  std::map<std::string, std::string> unreadable;  // configuration name -> why it was skipped
  if (j.contains("configurations") && j["configurations"].is_array()) {
    std::set<std::string> names;
    for (const auto& e : j["configurations"]) {
      const std::string name = e.is_object() ? e.value("name", std::string()) : std::string();
      if (name.empty() || names.count(name)) {
        r.warnings.push_back(session_path + ": skipped a configuration with a missing or duplicate name");
        continue;
      }
      try {
        d.configs.push_back({name, run_config_from_json(e.value("config", json::object()),
                                                        session_path + ": configuration '" + name + "'")});
        names.insert(name);
      } catch (const Error& ex) {
        r.warnings.push_back(std::string("skipped configuration '") + name + "': " + ex.what());
        unreadable[name] = ex.what();
      }
    }
  }
  if (j.contains("current_configuration") && j["current_configuration"].is_string()) {
    d.current_config = j["current_configuration"].get<std::string>();
    if (unreadable.count(d.current_config)) r.current_config_error = unreadable[d.current_config];
    if (!d.current()) {
      r.warnings.push_back(session_path + ": current configuration '" + d.current_config + "' is missing; using " +
                           (d.configs.empty() ? std::string("none") : "'" + d.configs.front().name + "'"));
      d.current_config = d.configs.empty() ? "" : d.configs.front().name;
    }
  }
  if (j.contains("boundary") && !j["boundary"].is_null()) {
    if (!j["boundary"].is_array())
      throw FormatError(session_path + ": boundary must be a list of layer indices, got " + j["boundary"].dump());
    for (const auto& x : j["boundary"]) d.boundary.push_back(layer_index_from_json(x, session_path + ": boundary"));
    std::sort(d.boundary.begin(), d.boundary.end());
    d.boundary.erase(std::unique(d.boundary.begin(), d.boundary.end()), d.boundary.end());
  }
  if (j.contains("sweeps") && j["sweeps"].is_array())
    for (const auto& s : j["sweeps"]) {
      if (!s.is_object() || !s.contains("store") || !s["store"].is_string())
        throw FormatError(session_path + ": sweeps entry " + s.dump() +
                          " is not an object with a \"store\" path string");
      SessionSweep sw;
      sw.name = s.value("name", std::string());
      sw.store_path = resolve(s["store"].get<std::string>(), base);
      sw.grid = s.value("grid", json::object());
      if (s.contains("name") && !s["name"].is_string())
        throw FormatError(session_path + ": a sweep's name must be a string, got " + s["name"].dump());
      if (!fs::exists(sw.store_path))
        r.warnings.push_back(session_path + ": the result store of sweep '" + sw.name + "' is missing: " + sw.store_path);
      d.sweeps.push_back(std::move(sw));
    }
  d.view_state = j.value("view_state", json::object());
  if (!d.view_state.is_object())
    throw FormatError(session_path + ": view_state must be an object, got a " + std::string(d.view_state.type_name()));

  if (!fs::exists(d.capture_path)) {
    r.warnings.push_back(session_path + ": the capture " + d.capture_path + " is missing");
  } else if (options.verify_capture) {
    const std::string now = io::sha256_file_memo(d.capture_path, io::default_cache_dir());
    if (d.capture_sha256.empty()) {
      d.capture_sha256 = now;
      r.capture_repinned = true;
    } else if (now != d.capture_sha256) {
      if (!options.accept_capture_change)
        throw CaptureChanged(session_path + ": the capture " + d.capture_path + " has changed since the session was "
                             "saved (recorded sha256 " + d.capture_sha256 + ", now " + now +
                             "); results of this session may not match it. Reopen accepting the change to re-pin it.");
      r.warnings.push_back(session_path + ": the capture changed (sha256 " + d.capture_sha256 + " -> " + now +
                           "); accepted and re-pinned");
      d.capture_sha256 = now;
      r.capture_repinned = true;
    }
  }
}

UndoStack::UndoStack(SessionDocument initial, size_t capacity)
    : current_(std::move(initial)), capacity_(std::max<size_t>(1, capacity)) {}

void UndoStack::commit(SessionDocument next) {
  if (next == current_) return;
  undo_.push_back(std::move(current_));
  if (undo_.size() > capacity_) undo_.pop_front();
  current_ = std::move(next);
  redo_.clear();
}

bool UndoStack::undo() {
  if (undo_.empty()) return false;
  redo_.push_back(std::move(current_));
  current_ = std::move(undo_.back());
  undo_.pop_back();
  return true;
}

bool UndoStack::redo() {
  if (redo_.empty()) return false;
  undo_.push_back(std::move(current_));
  if (undo_.size() > capacity_) undo_.pop_front();
  current_ = std::move(redo_.back());
  redo_.pop_back();
  return true;
}

}  // namespace kvwb::sessions
