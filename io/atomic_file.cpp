#include "io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <mutex>
#include <map>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>

#include "base/errors.h"
#include "io/durable.h"
#include "io/limits.h"

namespace kvwb::io {

namespace {
std::string errno_text(int e) { return std::strerror(e); }
}  // namespace

void write_file_atomic(const std::string& path, std::span<const uint8_t> data) {
  check_not_an_input(path);
  remove_stale_temps(path);
  const std::string tmp = temp_path_for(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(path, "cannot create the temporary file " + tmp + ": " + errno_text(errno));
  auto fail = [&](const std::string& why) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw IoError(path, why + "; the file was left as it was");
  };
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write failed: " + errno_text(errno));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 && errno != EINVAL) fail("fsync failed: " + errno_text(errno));
  if (::close(fd) != 0) {
    const std::string why = errno_text(errno);
    ::unlink(tmp.c_str());
    throw IoError(path, "close failed: " + why + "; the file was left as it was");
  }
  commit_temp_file(tmp, path);
}

void write_file_atomic(const std::string& path, std::string_view text) {
  write_file_atomic(path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

std::vector<uint8_t> read_file(const std::string& path, uint64_t max_bytes) {
  const uint64_t size = regular_file_size(path);
  if (size > max_bytes)
    throw Unsupported(path + ": the file is " + bytes_text(size) + ", more than the " + bytes_text(max_bytes) +
                      " accepted for this kind of file");
  check_allocation(size, path + ": reading the file");
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw IoError(path, "cannot open for reading: " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw IoError(path, "is not a regular file; expected a file");
  }
  std::vector<uint8_t> out(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::read(fd, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string why = errno_text(errno);
      ::close(fd);
      throw IoError(path, "read failed: " + why);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  char extra = 0;
  const ssize_t more = done == out.size() ? ::read(fd, &extra, 1) : 0;
  ::close(fd);
  if (done != out.size() || more > 0)
    throw IoError(path, "the file changed size while it was read (expected " + std::to_string(out.size()) + " bytes)");
  return out;
}

// ---- SHA-256 through OpenSSL libcrypto (EVP; SHA-NI / AVX2 where the CPU has them) ------------
namespace {
/// One EVP SHA-256 digest in progress; errors (never expected) are IoError naming `what`.
class Sha256 {
 public:
  explicit Sha256(std::string what) : what_(std::move(what)), ctx_(EVP_MD_CTX_new()) {
    if (ctx_ == nullptr) fail();
    if (EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) {
      EVP_MD_CTX_free(ctx_);
      fail();
    }
  }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const uint8_t* p, size_t n) {
    if (n > 0 && EVP_DigestUpdate(ctx_, p, n) != 1) fail();
  }
  std::string hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx_, md, &len) != 1 || len != 32) fail();
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
      out += digits[md[i] >> 4];
      out += digits[md[i] & 0xF];
    }
    return out;
  }

 private:
  [[noreturn]] void fail() const { throw IoError(what_, "OpenSSL SHA-256 failed"); }
  std::string what_;
  EVP_MD_CTX* ctx_;
};
}  // namespace

std::string sha256_hex(std::span<const uint8_t> data) {
  Sha256 s("sha256 of memory");
  s.update(data.data(), data.size());
  return s.hex();
}

std::string sha256_file(const std::string& path) {
  require_regular_file(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path, "cannot open for reading");
  Sha256 s(path);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto got = in.gcount();
    if (got > 0) s.update(reinterpret_cast<const uint8_t*>(buf.data()), static_cast<size_t>(got));
  }
  if (in.bad()) throw IoError(path, "read failed");
  return s.hex();
}

std::string default_cache_dir() {
  if (const char* d = std::getenv("KVWB_CACHE_DIR"); d && *d) return std::string(d) == "off" ? "" : d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/kvwb/results";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/kvwb/results";
  return "";
}

std::string sha256_file_memo(const std::string& path, const std::string& memo_dir) {
  static std::mutex mu;
  static std::map<std::string, std::string> memo;
  struct stat st {};
  std::string id = path;
  const bool known = ::stat(path.c_str(), &st) == 0;
  if (known)
    id += "|" + std::to_string(st.st_dev) + "|" + std::to_string(st.st_ino) + "|" + std::to_string(st.st_size) +
          "|" + std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + "|" +
          std::to_string(st.st_ctim.tv_sec) + "." + std::to_string(st.st_ctim.tv_nsec);
  {
    std::lock_guard<std::mutex> lock(mu);
    if (auto it = memo.find(id); it != memo.end()) return it->second;
  }
  auto is_sha = [](const std::string& x) {
    return x.size() == 64 && std::all_of(x.begin(), x.end(), [](char c) {
             return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
  };
  std::string file;
  if (known && !memo_dir.empty()) {
    file = memo_dir + "/capture-sha256/" +
           sha256_hex(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(id.data()), id.size())) + ".txt";
    std::ifstream in(file);
    std::string stored;
    if (in >> stored && is_sha(stored)) {
      std::lock_guard<std::mutex> lock(mu);
      memo[id] = stored;
      return stored;
    }
  }
  std::string sha = sha256_file(path);
  if (!file.empty()) {
    // Like a cache entry: a temporary and one rename, no fsync (a lost entry is only a re-hash).
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(file).parent_path(), ec);
    const std::string tmp = temp_path_for(file);
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << sha << "\n";
    }
    std::filesystem::rename(tmp, file, ec);
    if (ec) std::filesystem::remove(tmp, ec);
  }
  std::lock_guard<std::mutex> lock(mu);
  memo[id] = sha;
  return sha;
}

}  // namespace kvwb::io
