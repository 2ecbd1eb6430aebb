// The durability policy (io/durable.h): atomic files, directory commits, durable appends and the
// cleaning of what killed writers leave behind; plus the input checks of io/limits.h.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>

#include "base/errors.h"
#include "io/atomic_file.h"
#include "io/durable.h"
#include "io/limits.h"
#include "tests/test_support.h"

namespace kvwb {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(dir)) v.push_back(e.path().filename().string());
  std::sort(v.begin(), v.end());
  return v;
}

/// A pid that is not running (the child of a fork that already exited and was reaped).
long dead_pid() {
  const pid_t p = ::fork();
  if (p == 0) ::_exit(0);
  int status = 0;
  ::waitpid(p, &status, 0);
  return p;
}

std::string host() {
  char b[256] = {};
  ::gethostname(b, sizeof b - 1);
  return b;
}

// SHA-256 goes through OpenSSL libcrypto: the FIPS 180-4 example digests, in memory and from a file
// (a 1 MiB + 3 byte file crosses the reader's 1 MiB buffer).
TEST(Durable, Sha256MatchesFips180Vectors) {
  auto mem = [](const std::string& s) {
    return io::sha256_hex(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
  };
  EXPECT_EQ(mem(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(mem("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(mem("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const fs::path dir = fs::path(::testing::TempDir()) / ("kvwb_sha_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string million(1000000, 'a');
  { std::ofstream(dir / "a.bin", std::ios::binary) << million; }
  EXPECT_EQ(io::sha256_file((dir / "a.bin").string()),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  const std::string big((1u << 20) + 3, 'x');
  { std::ofstream(dir / "b.bin", std::ios::binary) << big; }
  EXPECT_EQ(io::sha256_file((dir / "b.bin").string()), mem(big));
  EXPECT_THROW(io::sha256_file((dir / "missing.bin").string()), IoError);
  fs::remove_all(dir);
}

TEST(Durable, AtomicFileReplacesAndLeavesNoTemporary) {
  test::TempDir t;
  const std::string f = t.file("a.json");
  io::write_file_atomic(f, std::string_view("one"));
  io::write_file_atomic(f, std::string_view("two"));
  EXPECT_EQ(slurp(f), "two");
  EXPECT_EQ(entries(t.path()), std::vector<std::string>{"a.json"});
}

TEST(Durable, TemporaryNamesCarryOwnerAndAreHidden) {
  const std::string tmp = io::temp_path_for("/x/y/out.json");
  EXPECT_EQ(fs::path(tmp).parent_path(), fs::path("/x/y"));
  const std::string leaf = fs::path(tmp).filename().string();
  EXPECT_EQ(leaf.rfind(".out.json.kvwb-tmp." + std::to_string(::getpid()) + "@", 0), 0u) << leaf;
}

TEST(Durable, StaleTemporariesOfDeadWritersAreRemovedLiveOnesKept) {
  test::TempDir t;
  const std::string f = t.file("s.kvwb.json");
  const std::string h = host();
  const fs::path dead_file =
      t.path() / (".s.kvwb.json.kvwb-tmp." + std::to_string(dead_pid()) + "@" + h + ".0");
  const fs::path dead_dir =
      t.path() / (".s.kvwb.json.kvwb-tmp." + std::to_string(dead_pid()) + "@" + h + ".1");
  const fs::path live =
      t.path() / (".s.kvwb.json.kvwb-tmp." + std::to_string(::getppid()) + "@" + h + ".2");
  const fs::path other_host =
      t.path() / (".s.kvwb.json.kvwb-tmp." + std::to_string(dead_pid()) + "@elsewhere.3");
  const fs::path other_target =
      t.path() / (".t.json.kvwb-tmp." + std::to_string(dead_pid()) + "@" + h + ".4");
  std::ofstream(dead_file) << "torn";
  fs::create_directories(dead_dir / "inner");
  std::ofstream(live) << "in flight";
  std::ofstream(other_host) << "not ours to judge";
  std::ofstream(other_target) << "another target";
  io::write_file_atomic(f, std::string_view("{}"));  // the next start of a writer of f cleans
  EXPECT_FALSE(fs::exists(dead_file));
  EXPECT_FALSE(fs::exists(dead_dir));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(fs::exists(other_host));
  EXPECT_TRUE(fs::exists(other_target));
}

TEST(Durable, AsideOfAKilledReplaceIsRestoredWhenTheTargetIsMissing) {
  test::TempDir t;
  const fs::path dest = t.path() / "bundle";
  const fs::path aside =
      t.path() / (".bundle.kvwb-old." + std::to_string(dead_pid()) + "@" + host() + ".0");
  fs::create_directories(aside);
  std::ofstream(aside / "MANIFEST.json") << "old";
  EXPECT_EQ(io::remove_stale_temps(dest.string()), 1u);
  EXPECT_EQ(slurp(dest / "MANIFEST.json"), "old");
  EXPECT_FALSE(fs::exists(aside));
}

TEST(Durable, CommitDirectoryIntoAbsentEmptyAndExistingFolders) {
  test::TempDir t;
  const fs::path dest = t.path() / "out";
  auto make = [&](const std::string& content) {
    const std::string tmp = io::temp_path_for(dest.string());
    fs::create_directories(tmp);
    std::ofstream(fs::path(tmp) / "f") << content;
    return tmp;
  };
  io::commit_directory(make("1"), dest.string(), false);
  EXPECT_EQ(slurp(dest / "f"), "1");
  EXPECT_THROW(io::commit_directory(make("2"), dest.string(), false), IoError);
  EXPECT_EQ(slurp(dest / "f"), "1");
  io::remove_stale_temps(dest.string());  // our own pid: kept (the refused temp stays ours)
  io::commit_directory(make("3"), dest.string(), true);
  EXPECT_EQ(slurp(dest / "f"), "3");
  fs::remove_all(dest);
  fs::create_directories(dest);  // an empty folder is replaced in one rename
  io::commit_directory(make("4"), dest.string(), false);
  EXPECT_EQ(slurp(dest / "f"), "4");
  std::ofstream(t.path() / "plain") << "x";
  EXPECT_THROW(io::commit_directory(make("5"), (t.path() / "plain").string(), true), IoError);
  EXPECT_EQ(slurp(t.path() / "plain"), "x");
}

TEST(Durable, AppendCutsATornLastLineAndKeepsCompleteOnes) {
  test::TempDir t;
  const std::string f = t.file("results.jsonl");
  std::ofstream(f) << "{\"a\":1}\n{\"b\":2}\n{\"tor";
  {
    io::DurableAppendFile a(f);
    EXPECT_EQ(a.repaired_bytes(), 5u);
    a.append("{\"c\":3}\n");
  }
  EXPECT_EQ(slurp(f), "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
  std::ofstream(f, std::ios::trunc) << "no newline at all";
  io::DurableAppendFile b(f);
  EXPECT_EQ(b.repaired_bytes(), 17u);
  EXPECT_EQ(slurp(f), "");
  EXPECT_THROW(b.append("missing newline"), IoError);
}

TEST(Durable, ReadFileRefusesFoldersFifosAndMissingFiles) {
  test::TempDir t;
  try {
    io::read_file(t.path().string());
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("is a folder"), std::string::npos) << e.what();
  }
  const std::string fifo = t.file("pipe");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  try {
    io::read_file(fifo);  // must not block
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("FIFO"), std::string::npos) << e.what();
  }
  EXPECT_THROW(io::read_file(t.file("absent")), IoError);
  EXPECT_THROW(io::sha256_file(fifo), IoError);
  std::ofstream(t.file("big")) << std::string(100, 'x');
  EXPECT_THROW(io::read_file(t.file("big"), 10), Unsupported);
}

TEST(Limits, AllocationBeyondTheBudgetIsATypedError) {
  EXPECT_NO_THROW(io::check_allocation(1 << 20, "small"));
  try {
    io::check_allocation(UINT64_MAX / 2, "layer 3 of x.kvc.h5");
    FAIL();
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("layer 3 of x.kvc.h5 needs"), std::string::npos)
        << e.what();
  }
  uint64_t out = 0;
  EXPECT_FALSE(io::checked_mul(UINT64_MAX / 2, 3, out));
  EXPECT_TRUE(io::checked_mul(1 << 20, 1 << 20, out));
  EXPECT_EQ(out, 1ull << 40);
}

}  // namespace
}  // namespace kvwb
