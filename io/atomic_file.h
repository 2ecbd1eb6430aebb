#pragma once
// Atomic writes for files users keep (sessions, bundles, exports, results) under the durability
// policy of io/durable.h: the data goes to a temporary file in the same folder, is flushed to
// disk, then renamed over the target, so a crash leaves either the old file or the new one, never
// a torn one; every write, fsync or rename failure is an IoError. Also whole-file reads that refuse
// folders, FIFOs and devices, and SHA-256.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/durable.h"

namespace kvwb::io {

/// Writes `data` to `path` atomically (first removing temporaries of `path` left by killed
/// writers). Throws IoError naming the path; on failure `path` is unchanged and no temporary stays.
void write_file_atomic(const std::string& path, std::span<const uint8_t> data);
void write_file_atomic(const std::string& path, std::string_view text);
/// Reads a whole regular file. Throws IoError naming the path for a missing file, a folder, a FIFO
/// or device, a read failure or a file that changes size while read, and Unsupported when the file
/// is larger than `max_bytes` or than the memory budget (io/limits.h).
std::vector<uint8_t> read_file(const std::string& path, uint64_t max_bytes = UINT64_MAX);
/// sha256 of a file's bytes as 64 lowercase hex digits; throws IoError.
std::string sha256_file(const std::string& path);
/// sha256 of bytes as 64 lowercase hex digits.
std::string sha256_hex(std::span<const uint8_t> data);
/// The user's kvwb cache folder: $KVWB_CACHE_DIR ("off" = none), else $XDG_CACHE_HOME/kvwb/results,
/// else $HOME/.cache/kvwb/results; "" = none.
std::string default_cache_dir();
/// sha256_file(path), remembered by (path, device, inode, size, mtime, ctime) in this process and,
/// when `memo_dir` is not "", in `memo_dir`/capture-sha256/ for later processes: a command on a
/// file it has seen does not read it again. Any write to the file changes its ctime (which a user
/// cannot set back), so a remembered digest is stale only if the clock went back.
std::string sha256_file_memo(const std::string& path, const std::string& memo_dir);

}  // namespace kvwb::io
