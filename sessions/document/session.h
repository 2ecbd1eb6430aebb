#pragma once
// The session document (`*.kvwb.json`, docs/sessions.md): which capture a user works on (path
// relative to the session file, pinned by SHA-256), named run configurations, the current
// boundary set, sweeps with their result stores, and an opaque per-view GUI state. Saving is
// atomic; loading migrates older versions, refuses newer ones, and reports recoverable problems
// as warnings. UndoStack keeps bounded document snapshots for the GUI.
#include <cstddef>
#include <deque>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "sessions/config/run_config.h"

namespace kvwb::sessions {

/// format_version written by save_session; load_session migrates 0 → 1 and refuses > this.
inline constexpr int kSessionFormatVersion = 1;

struct NamedConfig {
  std::string name;
  RunConfig config;
};

struct SessionSweep {
  std::string name;
  std::string store_path;  ///< result store; absolute in memory, relative to the session file on disk
  nlohmann::json grid = nlohmann::json::object();  ///< sweep grid (docs/sweeps.md)
};

struct SessionDocument {
  std::string capture_path;    ///< absolute in memory; relative to the session file on disk
  std::string capture_sha256;  ///< 64 lowercase hex digits; "" = not pinned yet
  std::vector<NamedConfig> configs;
  std::string current_config;  ///< name of one of `configs` ("" when there are none)
  std::vector<int> boundary;   ///< the current boundary set (boundary_skip_layers), ascending
  std::vector<SessionSweep> sweeps;
  nlohmann::json view_state = nlohmann::json::object();  ///< opaque per-view GUI state

  /// The configuration named `current_config`, or nullptr.
  const RunConfig* current() const;
  bool operator==(const SessionDocument& o) const;
};

/// The on-disk JSON of `doc` saved at `session_path` (paths made relative to its folder).
nlohmann::json session_to_json(const SessionDocument& doc, const std::string& session_path);

/// Writes the document atomically (io::write_file_atomic). Pins the capture's SHA-256 first when
/// `doc.capture_sha256` is empty and the capture exists.
void save_session(const std::string& session_path, SessionDocument doc);

struct SessionLoadOptions {
  /// Compare the capture's SHA-256 with the recorded one (CaptureChanged on a mismatch).
  bool verify_capture = true;
  /// On a mismatch, accept the changed capture and re-pin its SHA-256 (a warning instead).
  bool accept_capture_change = false;
};

struct SessionLoadResult {
  SessionDocument doc;
  std::vector<std::string> warnings;
  int loaded_version = 0;       ///< format_version found in the file (before migration)
  bool capture_repinned = false;
  /// Why the configuration the document names as current could not be read ("" when it could);
  /// it was skipped, so a run of "the session's configuration" must refuse rather than guess.
  std::string current_config_error;
};

/// Migrates a session JSON of any older version to kSessionFormatVersion, appending what it
/// changed to `warnings`. Throws Unsupported for a newer version, FormatError for a document that
/// is not a session.
nlohmann::json migrate_session_json(nlohmann::json j, const std::string& source, std::vector<std::string>& warnings);

/// Loads a session. Throws IoError/FormatError when the file cannot be read or parsed, when a
/// field has the wrong type or range (format_version, capture, boundary, configurations, sweeps,
/// view_state: named in the message),
/// Unsupported for a future version, CaptureChanged (code CAPTURE_CHANGED) when the capture's
/// SHA-256 differs from the recorded one and `accept_capture_change` is off. A missing capture,
/// an unreadable configuration (skipped) or unknown keys are warnings.
SessionLoadResult load_session(const std::string& session_path, const SessionLoadOptions& options = {});

/// Bounded undo/redo of whole-document snapshots. `commit` records a new state (clearing redo);
/// the oldest snapshots are dropped beyond `capacity` undo steps.
class UndoStack {
 public:
  explicit UndoStack(SessionDocument initial, size_t capacity = 100);
  const SessionDocument& current() const { return current_; }
  /// Makes `next` the current state; the previous one becomes undoable. No-op when equal.
  void commit(SessionDocument next);
  bool can_undo() const { return !undo_.empty(); }
  bool can_redo() const { return !redo_.empty(); }
  /// Steps back/forward; return false when there is nothing to undo/redo.
  bool undo();
  bool redo();
  size_t undo_depth() const { return undo_.size(); }
  size_t redo_depth() const { return redo_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  SessionDocument current_;
  std::deque<SessionDocument> undo_, redo_;
  size_t capacity_;
};

}  // namespace kvwb::sessions
