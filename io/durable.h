#pragma once
// The one durability policy (docs/reliability.md) for everything a user keeps: sessions, bundles,
// sweep stores, exports and captures.
//   - Atomic file: the bytes go to a temporary sibling, are flushed (fsync), renamed over the
//     target, and the folder is flushed. A kill leaves the old file or the new one, never a torn
//     one.
//   - Atomic directory commit: a folder is built complete under a temporary sibling name, flushed,
//     then renamed into place; an existing destination is swapped with it in one step
//     (renameat2 RENAME_EXCHANGE) or, where the file system cannot swap, kept under an aside name
//     until the new folder is in place (and restored by the next start when a kill came between).
//   - Durable append: one line per write(), fsync after each; a torn last line is cut on open and
//     a short write is rolled back.
// Every failure of write, fsync, close or rename throws IoError naming the path; nothing is
// ignored. Temporaries are named "<dir>/.<name>.kvwb-tmp.<pid>@<host>.<n>" (asides ".kvwb-old.")
// so that the next writer of the same target can remove the ones whose process is gone.
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

namespace kvwb::io {

/// fsync of an open descriptor; throws IoError naming `path`.
void fsync_fd(int fd, const std::string& path);
/// Opens `path` and fsyncs it (a regular file or a folder); throws IoError naming it.
void fsync_path(const std::string& path);
/// fsync of a folder (makes renames and creations inside it durable); throws IoError.
void fsync_directory(const std::string& dir);

/// A temporary sibling of `path`: "<dir>/.<name>.kvwb-tmp.<pid>@<host>.<n>" (unique per process
/// and call). remove_stale_temps(path) recognises it.
std::string temp_path_for(const std::string& path);

/// Cleans what killed writers of `target` left beside it: temporaries and asides made by
/// processes of this host that no longer run are removed, except that an aside is renamed back
/// to `target` when `target` is missing (a replace killed between its two renames). Entries of
/// live processes or other hosts are left alone. Returns the number of entries removed or
/// restored; never throws (cleaning is best effort, the write that follows reports real errors).
size_t remove_stale_temps(const std::string& target);

/// fsync(tmp), rename(tmp, path), fsync(folder of path). On failure `tmp` is removed and IoError
/// names `path`. Used by writers that stream into temp_path_for(path).
void commit_temp_file(const std::string& tmp, const std::string& path);

/// Moves the complete folder `tmp_dir` (a sibling of `dest`, already flushed) to `dest`.
/// `dest` absent or an empty folder: one rename. `dest` a non-empty folder: requires `replace`
/// (else IoError), then the two are exchanged atomically and the old content deleted; where the
/// file system cannot exchange, the old folder is renamed aside first and deleted only after the
/// new one is in place. The parent folder is flushed. Throws IoError naming `dest`; on failure
/// `dest` holds its old content.
void commit_directory(const std::string& tmp_dir, const std::string& dest, bool replace);

/// Marks `path` (a file, or a folder and everything inside it) as an input of this process that
/// no write may replace: write_file_atomic, commit_temp_file, commit_directory and the capture
/// writer refuse such a target (issue 14 #6: never write over an input). The CLI registers the
/// files its command line names as inputs. A path that does not exist is ignored. Thread-safe.
void protect_input(const std::string& path);
/// Throws InvalidArgument naming `target` and the input when `target` is a protected input, lies
/// inside a protected folder, or (for a folder about to be replaced) contains a protected input.
void check_not_an_input(const std::string& target);

/// An append-only line file (a sweep store's results.jsonl). Thread-safe.
class DurableAppendFile {
 public:
  /// Opens (creating) `path` for appending and cuts a torn last line (bytes after the last '\n',
  /// left by a write interrupted by a crash); throws IoError naming the path.
  explicit DurableAppendFile(const std::string& path);
  ~DurableAppendFile();
  DurableAppendFile(const DurableAppendFile&) = delete;
  DurableAppendFile& operator=(const DurableAppendFile&) = delete;

  /// Writes `line` (which must end in '\n') with a single write() and fsyncs. A failed or short
  /// write is rolled back (the file is cut to its previous length) and throws IoError, so the
  /// file always ends in a complete line.
  void append(std::string_view line);
  /// Bytes of a torn last line removed at open (0 when none).
  uint64_t repaired_bytes() const { return repaired_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t repaired_ = 0;
  std::mutex mu_;
};

}  // namespace kvwb::io
