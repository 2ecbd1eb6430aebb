// Sweeps beyond one machine (docs/cluster.md): shard partitions, sharded sweeps, store merge and
// diff, and the Slurm folder, scripts, submission, status and resume logic with a fake sbatch /
// squeue (the real Slurm runs in tests/cluster/test_slurm.py).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "base/errors.h"
#include "io/atomic_file.h"
#include "io/process.h"
#include "io/synthetic_capture.h"
#include "sessions/config/run_config.h"
#include "sessions/explore/result_store.h"
#include "sessions/explore/shard.h"
#include "sessions/explore/slurm.h"
#include "sessions/explore/store_merge.h"
#include "sessions/explore/sweep.h"
#include "tests/sessions/explore/explore_fixture.h"
#include "tests/test_support.h"

using namespace kvwb;
using namespace kvwb::sessions;
using kvwb::test::six_cell_grid;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string& make_capture(const std::string& name, uint64_t seed) {
  return kvwb::test::demo_capture(name, {.layers = 2,
                                         .kv_heads = 2,
                                         .q_heads = 4,
                                         .head_dim = 32,
                                         .seqs = 1,
                                         .tokens = 128,
                                         .seed = seed});
}

const std::string& capture_a() { return make_capture("cluster-a.kvc.h5", 1); }

const std::string& capture_b() { return make_capture("cluster-b.kvc.h5", 2); }

/// The whole 6-cell sweep of capture_a, run once for the binary.
const std::string& whole_store() {
  static const std::string p = [] {
    const std::string s = kvwb::test::binary_temp_dir().file("whole");
    SweepOptions o;
    o.jobs = 2;
    run_sweep(capture_a(), six_cell_grid(), s, o);
    return s;
  }();
  return p;
}

std::vector<json> contents_in_order(const std::string& store) {
  std::vector<json> v;
  for (const auto& r : read_result_store(store).records) v.push_back(record_content(r));
  return v;
}

std::vector<json> contents_sorted(const std::string& store) {
  std::vector<json> v = contents_in_order(store);
  std::sort(v.begin(), v.end(), [](const json& a, const json& b) { return a["key"] < b["key"]; });
  return v;
}

/// A grid of `a` × `b` cells (no runs: expansion only).
json grid_of(size_t a, size_t b) {
  json bits = json::array(), vr = json::array();
  for (size_t i = 0; i < a; ++i) bits.push_back(1 + static_cast<int>(i % 4));
  for (size_t j = 0; j < b; ++j) vr.push_back(0.5 + 0.01 * static_cast<double>(j));
  json g{{"k_codec", {"kakeya_pca"}}, {"variance_ratio", vr}, {"fixed", {{"block_size", 128}}}};
  if (a <= 4) {
    g["bits_k"] = bits;
  } else {  // more than 4 values: vary the seed too
    json seeds = json::array();
    for (size_t i = 0; i < a; ++i) seeds.push_back(static_cast<int>(i) + 1);
    g["seed"] = seeds;
  }
  return g;
}

EnvLookup env_of(std::map<std::string, std::string> m) {
  return [m](const std::string& k) -> std::optional<std::string> {
    auto it = m.find(k);
    if (it == m.end()) return std::nullopt;
    return it->second;
  };
}

}  // namespace

// ---- shards ----

TEST(Shard, PartitionCoversTheGridExactlyForEveryNAndGridSize) {
  for (const auto& [a, b] : std::vector<std::pair<size_t, size_t>>{
           {1, 1}, {1, 2}, {3, 1}, {2, 3}, {3, 3}, {4, 5}, {7, 3}, {5, 8}, {9, 7}}) {
    const std::vector<GridCell> cells = expand_sweep_grid(grid_of(a, b), "g");
    ASSERT_EQ(cells.size(), a * b);
    std::vector<size_t> ns;  // every N up to 8, then around the cell count
    for (size_t n = 1; n <= std::min<size_t>(cells.size() + 2, 8); ++n) ns.push_back(n);
    for (size_t n : {cells.size() - 1, cells.size(), cells.size() + 1})
      if (n > 8) ns.push_back(n);
    for (size_t n : ns) {
      std::vector<int> seen(cells.size(), 0);
      size_t smallest = cells.size(), largest = 0;
      for (size_t i = 0; i < n; ++i) {
        const std::vector<size_t> mine = shard_cells(cells, ShardSpec{i, n});
        EXPECT_TRUE(std::is_sorted(mine.begin(), mine.end()));
        for (size_t c : mine) ++seen.at(c);
        smallest = std::min(smallest, mine.size());
        largest = std::max(largest, mine.size());
      }
      for (size_t c = 0; c < cells.size(); ++c)
        EXPECT_EQ(seen[c], 1) << a << "x" << b << " cells, N=" << n;
      EXPECT_LE(largest - smallest, 1u) << "shards are balanced";
    }
  }
}

TEST(Shard, MembershipFollowsTheConfigurationNotTheGridOrder) {
  // The same cells listed as two sub-grids in either order: cell ids differ, shards hold the same
  // configurations.
  const json g1 = {
      {"k_codec", {"kakeya_pca"}}, {"bits_k", {2, 3}}, {"fixed", {{"block_size", 128}}}};
  const json g2 = {{"k_codec", {"q8_0", "q4_0"}}, {"fixed", {{"block_size", 128}}}};
  const auto ab = expand_sweep_grid(json{{"grids", {g1, g2}}}, "ab");
  const auto ba = expand_sweep_grid(json{{"grids", {g2, g1}}}, "ba");
  for (size_t i = 0; i < 3; ++i) {
    std::set<std::string> x, y;
    for (size_t c : shard_cells(ab, ShardSpec{i, 3})) x.insert(run_config_hash(ab[c].config));
    for (size_t c : shard_cells(ba, ShardSpec{i, 3})) y.insert(run_config_hash(ba[c].config));
    EXPECT_EQ(x, y);
  }
}

TEST(Shard, ParsesExplicitAndAutoSpecs) {
  const auto none = env_of({});
  EXPECT_EQ(parse_shard_spec("1/3", 0, none), (ShardSpec{1, 3}));
  EXPECT_EQ(parse_shard_spec("0/1", 1, none), (ShardSpec{0, 1}));
  for (const char* bad : {"3/3", "1", "a/3", "-1/3", "1/0", "1/3/4", " 1/3", "", "1/"})
    EXPECT_THROW(parse_shard_spec(bad, 0, none), InvalidArgument) << bad;
  EXPECT_THROW(parse_shard_spec("1/3", 4, none), InvalidArgument);  // --shards disagrees
  // Slurm: the index from SLURM_ARRAY_TASK_ID, N from --shards or SLURM_ARRAY_TASK_COUNT.
  EXPECT_EQ(parse_shard_spec(
                "auto", 0, env_of({{"SLURM_ARRAY_TASK_ID", "2"}, {"SLURM_ARRAY_TASK_COUNT", "3"}})),
            (ShardSpec{2, 3}));
  // A resubmitted subset (--array=2) has SLURM_ARRAY_TASK_COUNT=1: --shards wins.
  EXPECT_EQ(parse_shard_spec(
                "auto", 3, env_of({{"SLURM_ARRAY_TASK_ID", "2"}, {"SLURM_ARRAY_TASK_COUNT", "1"}})),
            (ShardSpec{2, 3}));
  EXPECT_THROW(parse_shard_spec("auto", 0, env_of({{"SLURM_ARRAY_TASK_ID", "2"}})),
               InvalidArgument);
  EXPECT_THROW(
      parse_shard_spec("auto", 0,
                       env_of({{"SLURM_ARRAY_TASK_ID", "3"}, {"SLURM_ARRAY_TASK_COUNT", "3"}})),
      InvalidArgument);
  EXPECT_THROW(parse_shard_spec("auto", 3, env_of({{"SLURM_ARRAY_TASK_ID", "x"}})),
               InvalidArgument);
  // Kubernetes Indexed Job: JOB_COMPLETION_INDEX and --shards.
  EXPECT_EQ(parse_shard_spec("auto", 4, env_of({{"JOB_COMPLETION_INDEX", "3"}})),
            (ShardSpec{3, 4}));
  EXPECT_THROW(parse_shard_spec("auto", 0, env_of({{"JOB_COMPLETION_INDEX", "3"}})),
               InvalidArgument);
  try {
    parse_shard_spec("auto", 3, none);
    FAIL();
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("SLURM_ARRAY_TASK_ID"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("JOB_COMPLETION_INDEX"), std::string::npos);
  }
}

// ---- sharded sweeps and merge ----

TEST(ShardedSweep, ThreeShardsMergeToExactlyTheWholeSweep) {
  kvwb::test::TempDir dir;
  std::vector<std::string> shards;
  size_t total = 0;
  for (size_t i = 0; i < 3; ++i) {
    SweepOptions o;
    o.shard = ShardSpec{i, 3};
    o.resume = true;  // as the Slurm array runs it: also fine on a fresh store
    const std::string st = dir.file("shard-" + std::to_string(i));
    const SweepSummary s = run_sweep(capture_a(), six_cell_grid(), st, o);
    EXPECT_EQ(s.cells, 2u);
    EXPECT_EQ(s.grid_cells, 6u);
    EXPECT_EQ(s.ran, 2u);
    total += s.ran;
    const json meta = read_result_store(st).meta;
    EXPECT_EQ(meta["shard"]["index"], i);
    EXPECT_EQ(meta["shard"]["count"], 3);
    EXPECT_EQ(meta["cells"], 2);
    shards.push_back(st);
  }
  EXPECT_EQ(total, 6u);
  // Resuming a shard's store as another shard is refused; as itself it runs nothing.
  SweepOptions other;
  other.resume = true;
  other.shard = ShardSpec{1, 3};
  EXPECT_THROW(run_sweep(capture_a(), six_cell_grid(), shards[0], other), InvalidArgument);
  other.shard = ShardSpec{0, 3};
  EXPECT_EQ(run_sweep(capture_a(), six_cell_grid(), shards[0], other).ran, 0u);

  MergeOptions mo;
  mo.grid = six_cell_grid();
  mo.require_complete = true;
  const MergeReport rep =
      merge_result_stores(dir.file("merged"), {shards[2], shards[0], shards[1]}, mo);
  EXPECT_EQ(rep.records, 6u);
  EXPECT_EQ(rep.grid_cells, 6u);
  EXPECT_TRUE(rep.missing.empty());
  // Record for record what one machine wrote, in canonical order (ascending configuration hash).
  const auto merged = contents_in_order(dir.file("merged"));
  EXPECT_EQ(merged, contents_sorted(whole_store()));
  EXPECT_TRUE(std::is_sorted(merged.begin(), merged.end(), [](const json& a, const json& b) {
    return a["config_hash"] < b["config_hash"];
  }));
  EXPECT_TRUE(diff_result_stores(dir.file("merged"), whole_store()).identical());
  // The merged store is an ordinary store of the grid: a resumed whole sweep finds nothing to do.
  const json meta = read_result_store(dir.file("merged")).meta;
  EXPECT_EQ(meta["grid_sha256"], read_result_store(whole_store()).meta["grid_sha256"]);
  EXPECT_EQ(meta["cells"], 6);
  EXPECT_FALSE(meta.contains("shard"));
  EXPECT_EQ(meta["merged_from"].size(), 3u);
  SweepOptions resume;
  resume.resume = true;
  EXPECT_EQ(run_sweep(capture_a(), six_cell_grid(), dir.file("merged"), resume).ran, 0u);

  // Merging the whole store alone (canonical order) gives the same records; identical duplicates
  // (whole + shards) are kept once.
  const MergeReport dup =
      merge_result_stores(dir.file("again"), {whole_store(), shards[0], shards[1]}, {});
  EXPECT_EQ(dup.records, 6u);
  EXPECT_EQ(dup.duplicates, 4u);
  EXPECT_EQ(contents_in_order(dir.file("again")), merged);
}

TEST(StoreMerge, ReportsMissingCellsAndRefusesIncompleteWhenAsked) {
  kvwb::test::TempDir dir;
  SweepOptions o;
  o.shard = ShardSpec{0, 3};
  run_sweep(capture_a(), six_cell_grid(), dir.file("s0"), o);
  MergeOptions mo;
  mo.grid = six_cell_grid();
  const MergeReport rep = merge_result_stores(dir.file("partial"), {dir.file("s0")}, mo);
  EXPECT_EQ(rep.records, 2u);
  ASSERT_EQ(rep.missing.size(), 4u);
  const auto cells = expand_sweep_grid(six_cell_grid(), "g");
  const auto shard1 = shard_cells(cells, ShardSpec{1, 3});
  EXPECT_NE(std::find_if(rep.missing.begin(), rep.missing.end(),
                         [&](const MissingCell& m) { return m.cell == shard1[0]; }),
            rep.missing.end());
  mo.require_complete = true;
  EXPECT_THROW(merge_result_stores(dir.file("strict"), {dir.file("s0")}, mo), StoreIncomplete);
  EXPECT_FALSE(fs::exists(dir.file("strict")));
  // A grid the store was not made from is refused.
  MergeOptions other;
  other.grid = grid_of(2, 2);
  EXPECT_THROW(merge_result_stores(dir.file("other"), {dir.file("s0")}, other), StoreMismatch);
}

TEST(StoreMerge, RefusesDifferentCapturesSettingsConflictsAndBadOutputs) {
  kvwb::test::TempDir dir;
  const json one = {{"k_codec", {"q8_0"}}, {"fixed", {{"block_size", 128}}}};
  run_sweep(capture_b(), one, dir.file("b"), SweepOptions{});
  try {
    merge_result_stores(dir.file("m"), {whole_store(), dir.file("b")});
    FAIL() << "merged stores of two captures";
  } catch (const StoreMismatch& e) {
    const std::string msg = e.what();
    EXPECT_NE(
        msg.find(read_result_store(whole_store()).meta["capture"]["sha256"].get<std::string>()),
        std::string::npos);
    EXPECT_NE(
        msg.find(read_result_store(dir.file("b")).meta["capture"]["sha256"].get<std::string>()),
        std::string::npos);
    EXPECT_NE(msg.find(whole_store()), std::string::npos);
    EXPECT_NE(msg.find(dir.file("b")), std::string::npos);
  }
  EXPECT_FALSE(fs::exists(dir.file("m")));

  // Different end-to-end settings.
  fs::copy(whole_store(), dir.file("e2e"), fs::copy_options::recursive);
  json meta = read_result_store(dir.file("e2e")).meta;
  meta["e2e"] = {{"model", "/m"}, {"passages", 4}};
  io::write_file_atomic(store_meta_path(dir.file("e2e")), meta.dump(2));
  EXPECT_THROW(merge_result_stores(dir.file("m"), {whole_store(), dir.file("e2e")}), StoreMismatch);

  // A conflicting record of one cell names the cell; a timing-only difference is no conflict.
  fs::copy(whole_store(), dir.file("conflict"), fs::copy_options::recursive);
  auto recs = read_result_store(dir.file("conflict")).records;
  std::string text;
  for (size_t i = 0; i < recs.size(); ++i) {
    recs[i]["timing"]["seconds"] = 123.0;
    recs[i]["result"]["seconds"] = 456.0;
    recs[i]["result"]["capture"]["file"] = "/elsewhere/a.kvc.h5";
    text += recs[i].dump() + "\n";
  }
  io::write_file_atomic(store_results_path(dir.file("conflict")), text);
  EXPECT_EQ(merge_result_stores(dir.file("ok"), {whole_store(), dir.file("conflict")}).records, 6u);
  recs[3]["result"]["ratio_vs_bf16"] = 99.0;
  text.clear();
  for (const auto& r : recs) text += r.dump() + "\n";
  io::write_file_atomic(store_results_path(dir.file("conflict")), text);
  try {
    merge_result_stores(dir.file("m"), {whole_store(), dir.file("conflict")});
    FAIL() << "merged conflicting records";
  } catch (const StoreMismatch& e) {
    EXPECT_NE(std::string(e.what()).find("cell " + recs[3]["cell"].dump()), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("ratio_vs_bf16"), std::string::npos) << e.what();
  }
  const StoreDiff d = diff_result_stores(whole_store(), dir.file("conflict"));
  EXPECT_EQ(d.same, 5u);
  ASSERT_EQ(d.different.size(), 1u);
  EXPECT_EQ(d.different[0].second, "/result/ratio_vs_bf16");

  // Outputs: never an input, never a non-empty folder; an empty folder is fine.
  EXPECT_THROW(merge_result_stores(whole_store(), {whole_store()}), InvalidArgument);
  EXPECT_THROW(merge_result_stores(dir.file("ok"), {whole_store()}), InvalidArgument);
  fs::create_directories(dir.file("empty"));
  EXPECT_EQ(merge_result_stores(dir.file("empty"), {whole_store()}).records, 6u);
  EXPECT_THROW(merge_result_stores(dir.file("x"), {dir.file("no-such-store")}), IoError);
  // No temporary folders left behind.
  for (const auto& e : fs::directory_iterator(dir.path()))
    EXPECT_EQ(e.path().filename().string().find(".merging-"), std::string::npos) << e.path();
}

// ---- Slurm folder, scripts, submission, status (fake commands) ----

namespace {

/// A fake sbatch / squeue / sacct / scancel: records calls, answers from a table.
struct FakeSlurm {
  std::vector<std::vector<std::string>> calls;
  int next_job = 100;
  std::string squeue_out;
  int sbatch_fail_on_call = -1;  // the n-th sbatch call fails
  int sbatch_calls = 0;
  CommandRunner runner() {
    return [this](const std::vector<std::string>& argv) {
      calls.push_back(argv);
      io::ProcessResult r;
      r.exit_code = 0;
      if (argv[0] == "sbatch") {
        if (sbatch_calls++ == sbatch_fail_on_call) {
          r.exit_code = 1;
          r.err = "sbatch: error: invalid partition specified";
          return r;
        }
        r.out = std::to_string(next_job++) + ";kvwbtest\n";
      } else if (argv[0] == "squeue") {
        r.out = squeue_out;
      } else if (argv[0] == "sacct") {
        r.exit_code = 1;
        r.err = "Slurm accounting storage is disabled";
      }
      return r;
    };
  }
};

SlurmSweep describe_in(const std::string& dir, size_t shards,
                       const std::string& kvwb = "/opt/kvwb/bin/kvwb") {
  SlurmSweepRequest q;
  q.dir = dir;
  q.kvwb = kvwb;
  q.capture = capture_a();
  q.grid = six_cell_grid();
  q.shards = shards;
  q.resources.partition = "gpu";
  q.resources.time = "00:10:00";
  q.resources.cpus_per_task = 2;
  q.resources.sbatch_args = {"--qos=high"};
  return describe_slurm_sweep(q);
}

bool has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

TEST(Slurm, DescribeChecksShardsAndPaths) {
  kvwb::test::TempDir dir;
  const SlurmSweep s = describe_in(dir.file("run"), 3);
  EXPECT_EQ(s.cells, 6u);
  EXPECT_EQ(s.capture_sha256, io::sha256_file(capture_a()));
  EXPECT_TRUE(fs::path(s.dir).is_absolute());
  EXPECT_THROW(describe_in(dir.file("run"), 7), InvalidArgument);  // more shards than cells
  EXPECT_THROW(describe_in(dir.file("back\\slash"), 3), InvalidArgument);
  EXPECT_THROW(describe_in(dir.file("line\nbreak"), 3), InvalidArgument);
  EXPECT_EQ(slurm_array_spec({0, 1, 2}), "0-2");
  EXPECT_EQ(slurm_array_spec({5, 0, 2, 3, 7, 8}), "0,2-3,5,7-8");
  EXPECT_EQ(parse_sbatch_job_id("123;cluster\n"), "123");
  EXPECT_EQ(parse_sbatch_job_id("77\n"), "77");
  EXPECT_THROW(parse_sbatch_job_id("Submitted batch job 5\n"), FormatError);
}

TEST(Slurm, ScriptsQuoteEveryPathAndPassTheRightArguments) {
  // A folder and a kvwb path with a space, a single quote, a dollar sign and a percent sign: the
  // scripts, run by bash with a fake kvwb that prints its arguments, must pass them unchanged.
  kvwb::test::TempDir dir;
  const std::string odd = dir.file("it's $HOME %a `x`");
  fs::create_directories(odd);
  const std::string fake = odd + "/fake kvwb";
  {
    std::ofstream f(fake);
    f << "#!/bin/bash\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n";
  }
  ::chmod(fake.c_str(), 0755);
  const SlurmSweep s = describe_in(odd + "/run", 3, fake);
  write_slurm_folder(s);
  const auto run_script = [&](const std::string& script, const std::string& task) {
    std::vector<std::string> argv{"env", "SLURM_ARRAY_TASK_ID=" + task, "SLURM_CPUS_PER_TASK=2",
                                  "bash", script};
    if (task.empty()) argv = {"env", "-u", "SLURM_ARRAY_TASK_ID", "bash", script};
    return io::run_process(argv);
  };
  const io::ProcessResult a = run_script(s.array_script_path(), "1");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  std::vector<std::string> args;
  {
    std::string line;
    std::istringstream is(a.out);
    while (std::getline(is, line)) args.push_back(line);
  }
  const std::vector<std::string> want = {
      "sweep",          capture_a(), "--grid", s.grid_path(),    "--out",
      s.shard_store(1), "--shard",   "auto",   "--shards",       "3",
      "--resume",       "--jobs",    "2",      "--fail-on-error"};
  EXPECT_EQ(args, want);
  // Outside an array task the script refuses to run.
  EXPECT_NE(run_script(s.array_script_path(), "").exit_code, 0);
  const io::ProcessResult m = run_script(s.merge_script_path(), "0");
  ASSERT_EQ(m.exit_code, 0) << m.err;
  const std::string merge_want = "store\nmerge\n" + s.merged_store() + "\n--grid\n" +
                                 s.grid_path() + "\n--require-complete\n" + s.shard_store(0) +
                                 "\n" + s.shard_store(1) + "\n" + s.shard_store(2) + "\n";
  EXPECT_EQ(m.out, merge_want);
  // grid.json is the grid; the scripts are executable.
  EXPECT_EQ(json::parse(io::read_file(s.grid_path())), six_cell_grid());
  struct stat st {};
  ASSERT_EQ(::stat(s.array_script_path().c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_IXUSR);
  // sbatch commands: options as separate arguments, '%' of the folder escaped in the output
  // pattern.
  const auto arr = sbatch_array_command(s, {0, 1, 2});
  EXPECT_EQ(arr[0], "sbatch");
  EXPECT_TRUE(has(arr, "--parsable"));
  EXPECT_TRUE(has(arr, "--array=0-2"));
  EXPECT_TRUE(has(arr, "--partition=gpu"));
  EXPECT_TRUE(has(arr, "--time=00:10:00"));
  EXPECT_TRUE(has(arr, "--cpus-per-task=2"));
  EXPECT_TRUE(has(arr, "--qos=high"));
  EXPECT_EQ(arr.back(), s.array_script_path());
  bool escaped = false;
  for (const auto& x : arr)
    escaped = escaped || (x.rfind("--output=", 0) == 0 && x.find("%%a `x`") != std::string::npos);
  EXPECT_TRUE(escaped);
  const auto mer = sbatch_merge_command(s, "41");
  EXPECT_TRUE(has(mer, "--dependency=afterok:41"));
  EXPECT_TRUE(has(mer, "--kill-on-invalid-dep=yes"));
  EXPECT_TRUE(has(mer, "--parsable"));
  // The dry-run text holds both scripts and a submission snippet bash can parse.
  const std::string dry = slurm_dry_run_text(s, {0, 1, 2});
  EXPECT_NE(dry.find(slurm_scripts(s).array), std::string::npos);
  EXPECT_NE(dry.find(slurm_scripts(s).merge), std::string::npos);
  EXPECT_NE(dry.find("--dependency=afterok:\"${array_job%%;*}\""), std::string::npos);
  io::write_file_atomic(dir.file("dry.sh"), dry);
  EXPECT_EQ(io::run_process({"bash", "-n", dir.file("dry.sh")}).exit_code, 0);
}

TEST(Slurm, SubmitStatusAndResumeDecisions) {
  kvwb::test::TempDir dir;
  SlurmSweep s = describe_in(dir.file("run"), 3);
  write_slurm_folder(s);
  FakeSlurm fake;
  const SlurmSubmission sub = submit_slurm_jobs(s, {0, 1, 2}, fake.runner());
  EXPECT_EQ(sub.array_job, "100");
  EXPECT_EQ(sub.merge_job, "101");
  ASSERT_EQ(fake.calls.size(), 2u);
  EXPECT_TRUE(has(fake.calls[1], "--dependency=afterok:100"));
  EXPECT_EQ(read_slurm_folder(s.dir).submissions.size(), 1u);

  // Shard 0 complete, shard 1 half done and cancelled, shard 2 complete; the merge cancelled.
  const auto cells = expand_sweep_grid(six_cell_grid(), "g");
  for (size_t i : {0u, 2u}) {
    SweepOptions o;
    o.shard = ShardSpec{i, 3};
    run_sweep(capture_a(), six_cell_grid(), s.shard_store(i), o);
  }
  {
    JobControl job;
    job.progress = [&](size_t done, size_t, const std::string&) {
      if (done >= 1) job.cancel.store(true);
    };
    SweepOptions o;
    o.shard = ShardSpec{1, 3};
    EXPECT_THROW(run_sweep(capture_a(), six_cell_grid(), s.shard_store(1), o, &job), Cancelled);
  }
  fake.squeue_out =
      "100_0|COMPLETED|None\n100_1|CANCELLED|None\n100_2|COMPLETED|None\n101|CANCELLED|"
      "DependencyNeverSatisfied\n";
  SlurmStatus st = slurm_status(s.dir, fake.runner());
  ASSERT_EQ(st.shards.size(), 3u);
  EXPECT_EQ(st.shards[1].state, "CANCELLED");
  EXPECT_EQ(st.shards[1].job, "100_1");
  EXPECT_EQ(st.shards[1].done, 1u);
  EXPECT_EQ(st.shards[1].pending, 1u);
  EXPECT_EQ(st.shards[0].pending, 0u);
  EXPECT_EQ(st.merge_state, "CANCELLED");
  EXPECT_EQ(st.merge_reason, "DependencyNeverSatisfied");
  EXPECT_EQ(st.incomplete_shards, std::vector<size_t>{1});
  EXPECT_NE(slurm_status_text(st).find("CANCELLED"), std::string::npos);
  EXPECT_NE(st.next.find("--resume"), std::string::npos);
  SlurmResumePlan plan = plan_slurm_resume(st, false);
  EXPECT_EQ(plan.shards, std::vector<size_t>{1});
  EXPECT_TRUE(plan.merge);
  EXPECT_TRUE(plan.cancel.empty());

  // A running shard blocks a resume; a merge that can never run is cancelled by it.
  fake.squeue_out =
      "100_0|COMPLETED|None\n100_1|RUNNING|None\n100_2|COMPLETED|None\n101|PENDING|Dependency\n";
  EXPECT_THROW(plan_slurm_resume(slurm_status(s.dir, fake.runner()), false), InvalidArgument);
  fake.squeue_out =
      "100_0|COMPLETED|None\n100_1|CANCELLED|None\n100_2|COMPLETED|None\n101|PENDING|"
      "DependencyNeverSatisfied\n";
  plan = plan_slurm_resume(slurm_status(s.dir, fake.runner()), false);
  EXPECT_EQ(plan.cancel, std::vector<std::string>{"101"});

  // Jobs squeue no longer knows (and no accounting): UNKNOWN, decided by the stores.
  fake.squeue_out.clear();
  st = slurm_status(s.dir, fake.runner());
  EXPECT_EQ(st.shards[1].state, "UNKNOWN");
  EXPECT_EQ(plan_slurm_resume(st, false).shards, std::vector<size_t>{1});

  // The resubmission is recorded; status then follows the new array for shard 1.
  const SlurmSubmission again = submit_slurm_jobs(s, {1}, fake.runner());
  EXPECT_TRUE(has(fake.calls.back(), "--dependency=afterok:" + again.array_job));
  EXPECT_TRUE(has(fake.calls[fake.calls.size() - 2], "--array=1"));
  fake.squeue_out = "100_0|COMPLETED|None\n" + again.array_job + "_1|PENDING|Priority\n";
  st = slurm_status(s.dir, fake.runner());
  EXPECT_EQ(st.shards[1].job, again.array_job + "_1");
  EXPECT_EQ(st.shards[1].state, "PENDING");
  EXPECT_EQ(st.shards[0].job, "100_0");

  // A failed merge submission keeps the recorded array and says how to continue.
  SlurmSweep s2 = describe_in(dir.file("run2"), 2);
  write_slurm_folder(s2);
  FakeSlurm bad;
  bad.sbatch_fail_on_call = 1;
  try {
    submit_slurm_jobs(s2, {0, 1}, bad.runner());
    FAIL();
  } catch (const Unavailable& e) {
    EXPECT_NE(std::string(e.what()).find("invalid partition"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("--resume"), std::string::npos);
  }
  const SlurmSweep back = read_slurm_folder(s2.dir);
  ASSERT_EQ(back.submissions.size(), 1u);
  EXPECT_EQ(back.submissions[0].array_job, "100");
  EXPECT_EQ(back.submissions[0].merge_job, "");
}

TEST(Slurm, FailedCellsAreNamedAndBlockAResumeUnlessAllowed) {
  kvwb::test::TempDir dir;
  SlurmSweepRequest q;
  q.dir = dir.file("run");
  q.kvwb = "/usr/bin/kvwb";
  q.capture = capture_a();
  q.grid = {{"k_codec", {"kakeya_pca"}},
            {"k_param", {"bit_width=2", "bit_width=9"}},
            {"fixed", {{"block_size", 128}}}};
  q.shards = 2;
  SlurmSweep s = describe_slurm_sweep(q);
  write_slurm_folder(s);
  FakeSlurm fake;
  submit_slurm_jobs(s, {0, 1}, fake.runner());
  for (size_t i = 0; i < 2; ++i) {
    SweepOptions o;
    o.shard = ShardSpec{i, 2};
    const SweepSummary sum = run_sweep(capture_a(), q.grid, s.shard_store(i), o);
    EXPECT_EQ(sum.failures.size(), sum.failed);
  }
  fake.squeue_out =
      "100_0|COMPLETED|None\n100_1|FAILED|NonZeroExitCode\n101|CANCELLED|"
      "DependencyNeverSatisfied\n";
  const SlurmStatus st = slurm_status(s.dir, fake.runner());
  EXPECT_EQ(st.failed, 1u);
  const std::string text = slurm_status_text(st);
  EXPECT_NE(text.find("bit_width=9"), std::string::npos) << text;
  EXPECT_NE(text.find("INVALID_ARGUMENT"), std::string::npos) << text;
  EXPECT_THROW(plan_slurm_resume(st, false), InvalidArgument);
  const SlurmResumePlan plan = plan_slurm_resume(st, true);
  EXPECT_TRUE(plan.shards.empty());
  EXPECT_TRUE(plan.merge);
}

TEST(Slurm, ParsesSqueueAndSacct) {
  const auto q = parse_squeue_states("12_[3-5%2]|PENDING|Dependency\n13|RUNNING|None\nbad line\n");
  ASSERT_EQ(q.size(), 4u);
  EXPECT_EQ(q[0].id, "12_3");
  EXPECT_EQ(q[2].id, "12_5");
  EXPECT_EQ(q[2].reason, "Dependency");
  EXPECT_EQ(q[3].state, "RUNNING");
  const auto a = parse_sacct_states("12_1|CANCELLED by 0\n12_2|COMPLETED\n");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].state, "CANCELLED");
  EXPECT_TRUE(slurm_state_active("PENDING"));
  EXPECT_TRUE(slurm_state_active("COMPLETING"));
  EXPECT_FALSE(slurm_state_active("TIMEOUT"));
  EXPECT_FALSE(slurm_state_active("UNKNOWN"));
}

TEST(Process, RunsWithoutAShellAndReportsMissingPrograms) {
  const io::ProcessResult r = io::run_process({"printf", "%s|", "a b", "$HOME", "'q'"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "a b|$HOME|'q'|");
  EXPECT_EQ(io::run_process({"sh", "-c", "echo err >&2; exit 3"}).exit_code, 3);
  EXPECT_EQ(io::run_process({"sh", "-c", "echo err >&2; exit 3"}).err, "err\n");
  EXPECT_THROW(io::run_process({"kvwb-no-such-program-xyz"}), Unavailable);
  EXPECT_EQ(io::shell_quote("plain-path/x.json"), "plain-path/x.json");
  EXPECT_EQ(io::shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(io::shell_quote(""), "''");
  EXPECT_EQ(io::split_shell_words("--qos=high  --comment='two words' \"a \\\"b\\\"\" c\\ d ''"),
            (std::vector<std::string>{"--qos=high", "--comment=two words", "a \"b\"", "c d", ""}));
  const std::vector<std::string> odd = {"it's", "$HOME", "a b", "", "x\"y", "back\\slash"};
  EXPECT_EQ(io::split_shell_words(io::shell_command_line(odd)), odd);
  EXPECT_THROW(io::split_shell_words("--comment='open"), InvalidArgument);
}
