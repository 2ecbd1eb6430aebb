#include "io/limits.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>

#include "base/errors.h"

namespace kvwb::io {

namespace {

uint64_t cgroup_limit() {
  std::ifstream in("/sys/fs/cgroup/memory.max");
  std::string s;
  if (!(in >> s) || s == "max") return std::numeric_limits<uint64_t>::max();
  try {
    return std::stoull(s);
  } catch (const std::exception&) {
    return std::numeric_limits<uint64_t>::max();
  }
}

}  // namespace

uint64_t memory_budget_bytes() {
  uint64_t budget = std::numeric_limits<uint64_t>::max();
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) budget = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
    budget = std::min<uint64_t>(budget, rl.rlim_cur);
  return std::min(budget, cgroup_limit());
}

std::string bytes_text(uint64_t bytes) {
  char b[64];
  if (bytes < 1024) {
    std::snprintf(b, sizeof b, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    const char* unit[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = static_cast<double>(bytes) / 1024.0;
    int u = 0;
    while (v >= 1024.0 && u < 5) {
      v /= 1024.0;
      ++u;
    }
    std::snprintf(b, sizeof b, "%.1f %s", v, unit[u]);
  }
  return b;
}

void check_allocation(uint64_t bytes, const std::string& what) {
  const uint64_t budget = memory_budget_bytes();
  if (bytes > budget)
    throw Unsupported(what + " needs " + bytes_text(bytes) + ", more than the " +
                      bytes_text(budget) + " this process may use");
}

bool checked_mul(uint64_t a, uint64_t b, uint64_t& out) noexcept {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return false;
  out = a * b;
  return true;
}

namespace {
struct stat stat_regular(const std::string& path, const std::string& what) {
  struct stat st {};
  if (path.empty()) throw IoError(path, "no path given; expected " + what);
  if (::stat(path.c_str(), &st) != 0) {
    const int e = errno;
    if (e == ENOENT) throw IoError(path, "no such file; expected " + what);
    throw IoError(path, "cannot inspect (" + std::string(std::strerror(e)) + "); expected " + what);
  }
  if (S_ISDIR(st.st_mode)) throw IoError(path, "is a folder; expected " + what);
  if (!S_ISREG(st.st_mode))
    throw IoError(path, std::string("is not a regular file (") +
                            (S_ISFIFO(st.st_mode)   ? "a FIFO"
                             : S_ISSOCK(st.st_mode) ? "a socket"
                                                    : "a device") +
                            "); expected " + what);
  return st;
}
}  // namespace

void require_regular_file(const std::string& path, const std::string& what) {
  stat_regular(path, what);
}

uint64_t regular_file_size(const std::string& path, const std::string& what) {
  return static_cast<uint64_t>(stat_regular(path, what).st_size);
}

}  // namespace kvwb::io
