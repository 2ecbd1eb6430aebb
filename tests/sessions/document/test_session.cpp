// The session document: save/load round trip, relative capture paths, migration, future
// versions, CaptureChanged, undo/redo.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "base/errors.h"
#include "io/atomic_file.h"
#include "sessions/document/session.h"
#include "tests/test_support.h"

namespace kvwb::sessions {
namespace {

namespace fs = std::filesystem;

void write_text(const fs::path& p, const std::string& s) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << s;
}

SessionDocument sample_doc(const test::TempDir& t) {
  write_text(t.path() / "data" / "cap.kvc.h5", "capture bytes v1");
  SessionDocument d;
  d.capture_path = (t.path() / "data" / "cap.kvc.h5").string();
  RunConfig a;
  a.block_size = 256;
  a.k.params["bit_width"] = "3";
  RunConfig b;
  b.v.codec = "q8_0";
  b.boundary = {0, 3};
  d.configs = {{"k3", a}, {"q8v", b}};
  d.current_config = "q8v";
  d.boundary = {0, 3};
  d.sweeps.push_back({"bits", (t.path() / "sweeps" / "bits.store").string(), {{"bits_k", {2, 3, 4}}}});
  d.view_state = {{"frontier", {{"x", "ratio_vs_bf16"}, {"y", "attn_kl"}}}};
  return d;
}

TEST(Session, SaveLoadRoundTripWithRelativePaths) {
  test::TempDir t;
  const SessionDocument d = sample_doc(t);
  const std::string path = (t.path() / "work" / "s.kvwb.json").string();
  fs::create_directories(t.path() / "work");
  fs::create_directories(t.path() / "sweeps" / "bits.store");
  save_session(path, d);

  const auto j = nlohmann::json::parse(io::read_file(path));
  EXPECT_EQ(j["format"], "kvwb-session");
  EXPECT_EQ(j["format_version"], kSessionFormatVersion);
  EXPECT_EQ(j["capture"]["path"], "../data/cap.kvc.h5");
  EXPECT_EQ(j["capture"]["sha256"], io::sha256_file(d.capture_path));
  EXPECT_EQ(j["sweeps"][0]["store"], "../sweeps/bits.store");

  const auto r = load_session(path);
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
  EXPECT_EQ(r.loaded_version, 1);
  SessionDocument want = d;
  want.capture_sha256 = io::sha256_file(d.capture_path);
  EXPECT_TRUE(r.doc == want);
  ASSERT_NE(r.doc.current(), nullptr);
  EXPECT_EQ(r.doc.current()->v.codec, "q8_0");
  EXPECT_EQ(r.doc.view_state["frontier"]["y"], "attn_kl");
}

TEST(Session, RelativeCapturePathFollowsTheSessionFolder) {
  test::TempDir t;
  const SessionDocument d = sample_doc(t);
  const std::string path = (t.path() / "s.kvwb.json").string();
  save_session(path, d);
  // Move the whole project folder: the relative capture path still resolves.
  test::TempDir t2;
  const fs::path moved = t2.path() / "moved";
  fs::copy(t.path(), moved, fs::copy_options::recursive);
  const auto r = load_session((moved / "s.kvwb.json").string());
  EXPECT_EQ(fs::path(r.doc.capture_path), (moved / "data" / "cap.kvc.h5").lexically_normal());
  EXPECT_FALSE(r.capture_repinned);
}

TEST(Session, MigratesVersionZero) {
  test::TempDir t;
  write_text(t.path() / "cap.kvc.h5", "capture bytes");
  const std::string path = t.file("old.kvwb.json");
  write_text(path, R"({"version": 0, "capture": "cap.kvc.h5", "config": {"block_size": 128},
                       "boundary": "0-1", "sweeps": {"grid1": "store1"}, "gui": {"tab": 2}})");
  const auto r = load_session(path);
  EXPECT_EQ(r.loaded_version, 0);
  ASSERT_FALSE(r.warnings.empty());
  EXPECT_NE(r.warnings.front().find("migrated a version-0 session"), std::string::npos);
  ASSERT_EQ(r.doc.configs.size(), 1u);
  EXPECT_EQ(r.doc.configs[0].name, "default");
  EXPECT_EQ(r.doc.current_config, "default");
  EXPECT_EQ(r.doc.current()->block_size, 128u);
  EXPECT_EQ(r.doc.boundary, (std::vector<int>{0, 1}));
  ASSERT_EQ(r.doc.sweeps.size(), 1u);
  EXPECT_EQ(fs::path(r.doc.sweeps[0].store_path), (t.path() / "store1").lexically_normal());
  EXPECT_EQ(r.doc.view_state["tab"], 2);
  EXPECT_TRUE(r.capture_repinned);  // version 0 had no pin
  EXPECT_EQ(r.doc.capture_sha256, io::sha256_file(t.file("cap.kvc.h5")));
  // Saving writes the current version.
  save_session(path, r.doc);
  EXPECT_EQ(nlohmann::json::parse(io::read_file(path))["format_version"], 1);
}

TEST(Session, FutureVersionRefused) {
  test::TempDir t;
  const std::string path = t.file("new.kvwb.json");
  write_text(path, R"({"format": "kvwb-session", "format_version": 7, "capture": {"path": "x"}})");
  try {
    load_session(path);
    FAIL() << "expected Unsupported";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("format_version 7 was written by a newer kvwb"), std::string::npos);
  }
}

TEST(Session, DamagedFieldsAreFormatErrorsNeverCoerced) {
  // Issue 14 #5: a version 2^32+1 is not 1, a boundary 2^40 is not layer 0, a wrong type is named.
  test::TempDir t;
  const std::string path = t.file("s.kvwb.json");
  auto load_with = [&](const std::string& fields) {
    write_text(path, R"({"format": "kvwb-session", "capture": {"path": "x.kvc.h5"}, )" + fields + "}");
    return load_session(path);
  };
  EXPECT_THROW(load_with(R"("format_version": 4294967297)"), Unsupported);
  EXPECT_THROW(load_with(R"("format_version": -1)"), FormatError);
  EXPECT_THROW(load_with(R"("format_version": "1")"), FormatError);
  EXPECT_THROW(load_with(R"("format_version": 1, "boundary": [1099511627776])"), FormatError);
  EXPECT_THROW(load_with(R"("format_version": 1, "boundary": [-1])"), FormatError);
  EXPECT_THROW(load_with(R"("format_version": 1, "boundary": "0-3")"), FormatError);
  EXPECT_THROW(load_with(R"("format_version": 1, "configurations": 5)"), FormatError);
  EXPECT_THROW(load_with(R"("format_version": 1, "current_configuration": 5)"), FormatError);
  EXPECT_THROW(load_with(R"("format_version": 1, "sweeps": [3])"), FormatError);
  write_text(path, R"({"format": "kvwb-session", "format_version": 1, "capture": {"path": 5}})");
  try {
    load_session(path);
    FAIL() << "expected FormatError";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  write_text(path, R"({"format": "kvwb-session", "format_version": 1, "capture": {"path": "x", "sha256": 5}})");
  EXPECT_THROW(load_session(path), FormatError);
  write_text(path, R"({"version": 0, "capture": "x.kvc.h5", "boundary": "0-2147483647"})");
  EXPECT_THROW(load_session(path), FormatError);  // refused before anything is expanded
  const auto ok = load_with(R"("format_version": 1, "boundary": [3, 1, 3])");
  EXPECT_EQ(ok.doc.boundary, (std::vector<int>{1, 3}));
}

TEST(Session, CaptureChangedIsAnErrorUnlessAccepted) {
  test::TempDir t;
  const SessionDocument d = sample_doc(t);
  const std::string path = t.file("s.kvwb.json");
  save_session(path, d);
  write_text(d.capture_path, "capture bytes v2");
  try {
    load_session(path);
    FAIL() << "expected CaptureChanged";
  } catch (const CaptureChanged& e) {
    EXPECT_EQ(e.code(), "CAPTURE_CHANGED");
    EXPECT_NE(std::string(e.what()).find("has changed since the session was saved"), std::string::npos);
  }
  SessionLoadOptions o;
  o.accept_capture_change = true;
  const auto r = load_session(path, o);
  EXPECT_TRUE(r.capture_repinned);
  EXPECT_EQ(r.doc.capture_sha256, io::sha256_file(d.capture_path));
  save_session(path, r.doc);
  EXPECT_NO_THROW(load_session(path));
}

TEST(Session, RecoverableProblemsAreWarnings) {
  test::TempDir t;
  const std::string path = t.file("s.kvwb.json");
  write_text(path, R"({"format": "kvwb-session", "format_version": 1, "capture": {"path": "missing.kvc.h5"},
    "configurations": [{"name": "bad", "config": {"block_size": 3}}, {"name": "ok", "config": {}}],
    "current_configuration": "bad", "extra": 1})");
  const auto r = load_session(path);
  ASSERT_EQ(r.doc.configs.size(), 1u);
  EXPECT_EQ(r.doc.current_config, "ok");
  std::string all;
  for (const auto& w : r.warnings) all += w + "\n";
  EXPECT_NE(all.find("skipped configuration 'bad'"), std::string::npos) << all;
  EXPECT_NE(all.find("unknown key 'extra'"), std::string::npos) << all;
  EXPECT_NE(all.find("is missing"), std::string::npos) << all;
  // The configuration the document names as current was unreadable: said so, not guessed.
  EXPECT_NE(r.current_config_error.find("block_size"), std::string::npos) << r.current_config_error;
}

TEST(Session, UndoRedoIsBounded) {
  SessionDocument d;
  UndoStack s(d, 3);
  EXPECT_FALSE(s.can_undo());
  for (int i = 1; i <= 5; ++i) {
    SessionDocument n = s.current();
    n.boundary = {i};
    s.commit(n);
  }
  EXPECT_EQ(s.undo_depth(), 3u);  // bounded
  s.commit(s.current());         // no-op for an identical state
  EXPECT_EQ(s.undo_depth(), 3u);
  EXPECT_TRUE(s.undo());
  EXPECT_EQ(s.current().boundary, std::vector<int>{4});
  EXPECT_TRUE(s.undo());
  EXPECT_TRUE(s.undo());
  EXPECT_EQ(s.current().boundary, std::vector<int>{2});
  EXPECT_FALSE(s.undo());
  EXPECT_TRUE(s.redo());
  EXPECT_EQ(s.current().boundary, std::vector<int>{3});
  SessionDocument n = s.current();
  n.current_config = "x";
  s.commit(n);  // a new edit clears redo
  EXPECT_FALSE(s.can_redo());
  EXPECT_TRUE(s.undo());
  EXPECT_EQ(s.current().current_config, "");
}

}  // namespace
}  // namespace kvwb::sessions
