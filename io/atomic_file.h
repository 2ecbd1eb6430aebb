#pragma once
// Atomic writes for files users keep (sessions, bundles, exports, results): the data goes to a
// temporary file in the same folder, is flushed to disk, then renamed over the target, so a crash
// leaves either the old file or the new one, never a torn one.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kvwb::io {

/// Writes `data` to `path` atomically. Throws IoError naming the path.
void write_file_atomic(const std::string& path, std::span<const uint8_t> data);
void write_file_atomic(const std::string& path, std::string_view text);
/// A temporary path next to `path` (same folder, unique per process and call).
std::string temp_path_for(const std::string& path);
/// fsync + rename(tmp, path); throws IoError. Used by writers that stream into temp_path_for().
void commit_temp_file(const std::string& tmp, const std::string& path);
/// Reads a whole file; throws IoError naming the path.
std::vector<uint8_t> read_file(const std::string& path);
/// sha256 of a file's bytes as 64 lowercase hex digits; throws IoError.
std::string sha256_file(const std::string& path);
/// sha256 of bytes as 64 lowercase hex digits.
std::string sha256_hex(std::span<const uint8_t> data);

}  // namespace kvwb::io
