#include "io/durable.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

#include "base/errors.h"

namespace kvwb::io {

namespace fs = std::filesystem;

namespace {

constexpr const char* kTmpTag = ".kvwb-tmp.";
constexpr const char* kOldTag = ".kvwb-old.";

std::string errno_text(int e) { return std::strerror(e); }

/// fsync is not supported on this object (some file systems refuse it on folders): nothing to
/// flush.
bool fsync_unsupported(int e) {
  return e == EINVAL || e == ENOTSUP || e == EOPNOTSUPP || e == EROFS;
}

const std::string& host_name() {
  static const std::string name = [] {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return std::string("localhost");
    std::string s(buf);
    for (char& c : s)
      if (c == '/' || c == '@') c = '_';
    return s;
  }();
  return name;
}

std::string sibling_name(const std::string& path, const char* tag) {
  static std::atomic<uint64_t> counter{0};
  const fs::path p(path);
  const fs::path dir = p.parent_path();
  std::string leaf = ".";
  leaf.append(p.filename().string()).append(tag).append(std::to_string(::getpid()));
  leaf.append("@").append(host_name()).append(".").append(std::to_string(counter++));
  return (dir / leaf).string();
}

std::string parent_of(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

/// Parses "<pid>@<host>.<n>"; false when the text is not of that form.
bool parse_owner(const std::string& s, long& pid, std::string& host) {
  const size_t at = s.find('@');
  const size_t dot = s.rfind('.');
  if (at == std::string::npos || at == 0 || dot == std::string::npos || dot <= at + 1 ||
      dot + 1 == s.size())
    return false;
  for (size_t i = 0; i < at; ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  for (size_t i = dot + 1; i < s.size(); ++i)
    if (s[i] < '0' || s[i] > '9') return false;
  if (at > 9) return false;
  pid = std::stol(s.substr(0, at));
  host = s.substr(at + 1, dot - at - 1);
  return pid > 0;
}

bool process_alive(long pid) {
  if (pid == static_cast<long>(::getpid())) return true;
  if (::kill(static_cast<pid_t>(pid), 0) == 0) return true;
  return errno == EPERM;
}

struct ProtectedInput {
  dev_t dev;
  ino_t ino;
  bool folder;
  fs::path canonical;
  std::string given;
};

std::mutex& protected_mutex() {
  static std::mutex m;
  return m;
}

std::vector<ProtectedInput>& protected_inputs() {
  static std::vector<ProtectedInput> v;
  return v;
}

/// Whether `inner` is `outer` or lies below it (both canonical).
bool is_within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i)
    if (i == inner.end() || *i != *o) return false;
  return true;
}

}  // namespace

void protect_input(const std::string& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return;
  std::error_code ec;
  const fs::path canon = fs::weakly_canonical(path, ec);
  std::lock_guard<std::mutex> lock(protected_mutex());
  protected_inputs().push_back(
      {st.st_dev, st.st_ino, S_ISDIR(st.st_mode), ec ? fs::path(path) : canon, path});
}

void check_not_an_input(const std::string& target) {
  std::lock_guard<std::mutex> lock(protected_mutex());
  if (protected_inputs().empty()) return;
  std::error_code ec;
  const fs::path canon = fs::weakly_canonical(target, ec);
  struct stat st {};
  const bool exists = ::stat(target.c_str(), &st) == 0;
  for (const auto& in : protected_inputs()) {
    const bool same = exists && st.st_dev == in.dev && st.st_ino == in.ino;
    const bool inside = !ec && in.folder && is_within(canon, in.canonical);
    const bool contains = !ec && exists && S_ISDIR(st.st_mode) && is_within(in.canonical, canon);
    if (same || inside || contains)
      throw InvalidArgument(target + ": refusing to write here: it " +
                            (same     ? std::string("is")
                             : inside ? std::string("lies inside")
                                      : std::string("contains")) +
                            " the input " + in.given +
                            " of this command (outputs never replace inputs); choose "
                            "another output path");
  }
}

void fsync_fd(int fd, const std::string& path) {
  if (::fsync(fd) != 0 && !fsync_unsupported(errno))
    throw IoError(path, "fsync failed (the data may not be on disk): " + errno_text(errno));
}

namespace {

/// Opens `path` read-only with `flags` added and fsyncs it; the errors name `path` and start with
/// `open_failed` or `fsync_failed`. A file system that cannot fsync is no error.
void open_and_fsync(const std::string& path, int flags, const std::string& open_failed,
                    const std::string& fsync_failed) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | flags);
  if (fd < 0) throw IoError(path, open_failed + ": " + errno_text(errno));
  const int rc = ::fsync(fd);
  const int e = errno;
  ::close(fd);
  if (rc != 0 && !fsync_unsupported(e)) throw IoError(path, fsync_failed + ": " + errno_text(e));
}

}  // namespace

void fsync_path(const std::string& path) {
  open_and_fsync(path, O_NOFOLLOW, "cannot open to flush it",
                 "fsync failed (the data may not be on disk)");
}

void fsync_directory(const std::string& dir) {
  open_and_fsync(dir, O_DIRECTORY, "cannot open the folder to flush it",
                 "fsync of the folder failed");
}

std::string temp_path_for(const std::string& path) { return sibling_name(path, kTmpTag); }

size_t remove_stale_temps(const std::string& target) {
  size_t n = 0;
  try {
    const fs::path t(target);
    const std::string name = t.filename().string();
    if (name.empty()) return 0;
    const std::string dir = parent_of(target);
    const std::string tmp_prefix = "." + name + kTmpTag;
    const std::string old_prefix = "." + name + kOldTag;
    std::error_code ec;
    std::vector<fs::path> tmps, olds;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      const std::string leaf = e.path().filename().string();
      const bool is_tmp = leaf.rfind(tmp_prefix, 0) == 0;
      const bool is_old = leaf.rfind(old_prefix, 0) == 0;
      if (!is_tmp && !is_old) continue;
      long pid = 0;
      std::string host;
      if (!parse_owner(leaf.substr((is_tmp ? tmp_prefix : old_prefix).size()), pid, host)) continue;
      if (host != host_name() || process_alive(pid)) continue;
      (is_tmp ? tmps : olds).push_back(e.path());
    }
    for (const auto& p : tmps) {
      fs::remove_all(p, ec);
      if (!ec) ++n;
    }
    for (const auto& p : olds) {
      if (!fs::exists(t, ec)) {
        fs::rename(p, t,
                   ec);  // the replace was killed after moving the old folder aside: restore it
      } else {
        fs::remove_all(p, ec);
      }
      if (!ec) ++n;
    }
    if (n > 0) fsync_directory(dir);
  } catch (const std::exception&) {
    // Best effort: the write that follows reports any real problem with the folder.
  }
  return n;
}

void commit_temp_file(const std::string& tmp, const std::string& path) {
  try {
    check_not_an_input(path);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  try {
    fsync_path(tmp);
  } catch (const IoError& e) {
    ::unlink(tmp.c_str());
    throw IoError(path, std::string("cannot flush the temporary file: ") + e.what());
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = errno_text(errno);
    ::unlink(tmp.c_str());
    throw IoError(path, "cannot rename the temporary file into place: " + why);
  }
  fsync_directory(parent_of(path));
}

void commit_directory(const std::string& tmp_dir, const std::string& dest, bool replace) {
  check_not_an_input(dest);
  const std::string parent = parent_of(dest);
  struct stat st {};
  if (::lstat(dest.c_str(), &st) != 0) {
    if (errno != ENOENT)
      throw IoError(dest, "cannot inspect the destination: " + errno_text(errno));
    if (std::rename(tmp_dir.c_str(), dest.c_str()) != 0)
      throw IoError(dest, "cannot move the new folder into place: " + errno_text(errno));
    fsync_directory(parent);
    return;
  }
  if (!S_ISDIR(st.st_mode)) throw IoError(dest, "exists and is not a folder; nothing was replaced");
  // rename() replaces an empty folder in one step; ENOTEMPTY/EEXIST means it has content.
  if (std::rename(tmp_dir.c_str(), dest.c_str()) == 0) {
    fsync_directory(parent);
    return;
  }
  if (errno != ENOTEMPTY && errno != EEXIST)
    throw IoError(dest, "cannot move the new folder into place: " + errno_text(errno));
  if (!replace) throw IoError(dest, "exists and is not empty; nothing was replaced");
  if (::renameat2(AT_FDCWD, tmp_dir.c_str(), AT_FDCWD, dest.c_str(), RENAME_EXCHANGE) == 0) {
    // `tmp_dir` now names the old content.
    fsync_directory(parent);
    std::error_code ec;
    fs::remove_all(tmp_dir, ec);  // a leftover is removed by the next start (remove_stale_temps)
    return;
  }
  const int e = errno;
  if (e != EINVAL && e != ENOSYS && e != ENOTSUP && e != EOPNOTSUPP)
    throw IoError(dest, "cannot swap the new folder into place: " + errno_text(e));
  // No exchange on this file system: keep the old folder aside until the new one is in place.
  const std::string aside = sibling_name(dest, kOldTag);
  if (std::rename(dest.c_str(), aside.c_str()) != 0)
    throw IoError(dest, "cannot move the existing folder aside: " + errno_text(errno));
  if (std::rename(tmp_dir.c_str(), dest.c_str()) != 0) {
    const std::string why = errno_text(errno);
    std::rename(aside.c_str(), dest.c_str());
    throw IoError(dest, "cannot move the new folder into place (the old one was kept): " + why);
  }
  fsync_directory(parent);
  std::error_code ec;
  fs::remove_all(aside, ec);
}

DurableAppendFile::DurableAppendFile(const std::string& path) : path_(path) {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd_ < 0) throw IoError(path_, "cannot open for appending: " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const std::string why = errno_text(errno);
    ::close(fd_);
    throw IoError(path_, "cannot inspect: " + why);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw IoError(path_, "is not a regular file; expected an append-only line file");
  }
  // Cut a torn last line so that new records start on a fresh line: scan back from the end.
  off_t end = st.st_size, keep = st.st_size;
  std::vector<char> buf(1 << 16);
  while (keep > 0) {
    const off_t from =
        keep > static_cast<off_t>(buf.size()) ? keep - static_cast<off_t>(buf.size()) : 0;
    const size_t len = static_cast<size_t>(keep - from);
    if (::pread(fd_, buf.data(), len, from) != static_cast<ssize_t>(len)) {
      const std::string why = errno_text(errno);
      ::close(fd_);
      throw IoError(path_, "cannot read the last line: " + why);
    }
    size_t i = len;
    while (i > 0 && buf[i - 1] != '\n') --i;
    if (i > 0) {
      keep = from + static_cast<off_t>(i);
      break;
    }
    keep = from;
  }
  if (keep != end) {
    repaired_ = static_cast<uint64_t>(end - keep);
    if (::ftruncate(fd_, keep) != 0) {
      const std::string why = errno_text(errno);
      ::close(fd_);
      throw IoError(path_, "cannot cut the torn last line: " + why);
    }
    try {
      fsync_fd(fd_, path_);
    } catch (...) {
      ::close(fd_);
      throw;
    }
  }
}

DurableAppendFile::~DurableAppendFile() {
  if (fd_ >= 0) ::close(fd_);
}

void DurableAppendFile::append(std::string_view line) {
  if (line.empty() || line.back() != '\n')
    throw IoError(path_, "internal: an appended line must end in a newline");
  std::lock_guard<std::mutex> lock(mu_);
  struct stat st {};
  if (::fstat(fd_, &st) != 0)
    throw IoError(path_, "cannot inspect before appending: " + errno_text(errno));
  ssize_t n = ::write(fd_, line.data(), line.size());
  if (n >= 0 && static_cast<size_t>(n) < line.size()) {
    // A short write: try the rest once, which reports why the disk took no more (ENOSPC, EDQUOT).
    const ssize_t more = ::write(fd_, line.data() + n, line.size() - static_cast<size_t>(n));
    if (more < 0) {
      const std::string why = errno_text(errno) + " after " + std::to_string(n) + " of " +
                              std::to_string(line.size()) + " bytes";
      const int rc =
          ::ftruncate(fd_, st.st_size);  // when this fails too, the next open cuts the torn line
      (void)rc;
      throw IoError(path_, "append failed: " + why + "; every earlier record is kept");
    }
    n += more;
  }
  if (n < 0 || static_cast<size_t>(n) != line.size()) {
    const std::string why = n < 0 ? errno_text(errno)
                                  : "short write (" + std::to_string(n) + " of " +
                                        std::to_string(line.size()) + " bytes)";
    if (n > 0) {
      const int rc =
          ::ftruncate(fd_, st.st_size);  // when this fails too, the next open cuts the torn line
      (void)rc;
    }
    throw IoError(path_, "append failed: " + why + "; every earlier record is kept");
  }
  fsync_fd(fd_, path_);
}

}  // namespace kvwb::io
