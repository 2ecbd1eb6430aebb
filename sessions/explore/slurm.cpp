#include "sessions/explore/slurm.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "base/errors.h"
#include "io/atomic_file.h"
#include "sessions/config/run_config.h"
#include "sessions/explore/result_store.h"
#include "sessions/explore/shard.h"
#include "sessions/explore/sweep.h"

namespace kvwb::sessions {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

constexpr const char* kFolderFormat = "kvwb-slurm-sweep";
constexpr int kFolderFormatVersion = 1;

std::string join(const fs::path& a, const std::string& b) { return (a / b).string(); }

std::string absolute_normal(const std::string& p) {
  std::error_code ec;
  const fs::path a = fs::absolute(p, ec);
  if (ec) throw InvalidArgument(p + ": cannot make the path absolute: " + ec.message());
  std::string s = a.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

/// A path as one single-quoted shell word (always quoted, so a script shows where paths are).
std::string quoted(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// A folder as part of a Slurm output file pattern: '%' written as "%%".
std::string pattern_escape(const std::string& s) {
  std::string o;
  for (char c : s) o += c == '%' ? std::string("%%") : std::string(1, c);
  return o;
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string base_name(const std::string& dir) {
  const std::string b = fs::path(dir).filename().string();
  return b.empty() ? std::string("sweep") : b;
}

json resources_json(const SlurmResources& r) {
  return {{"partition", r.partition},
          {"time", r.time},
          {"mem", r.mem},
          {"cpus_per_task", r.cpus_per_task},
          {"gpus_per_task", r.gpus_per_task},
          {"sbatch_args", r.sbatch_args}};
}

SlurmResources resources_from_json(const json& j) {
  SlurmResources r;
  r.partition = j.value("partition", std::string());
  r.time = j.value("time", std::string());
  r.mem = j.value("mem", std::string());
  r.cpus_per_task = j.value("cpus_per_task", 1);
  r.gpus_per_task = j.value("gpus_per_task", 0);
  r.sbatch_args = j.value("sbatch_args", std::vector<std::string>());
  return r;
}

json submission_json(const SlurmSweep& s) {
  json subs = json::array();
  for (const auto& x : s.submissions)
    subs.push_back({{"array_job", x.array_job},
                    {"merge_job", x.merge_job},
                    {"shards", x.shards},
                    {"submitted_unix", x.submitted_unix}});
  return {{"format", kFolderFormat},
          {"format_version", kFolderFormatVersion},
          {"kvwb", s.kvwb},
          {"capture", {{"file", s.capture}, {"sha256", s.capture_sha256}}},
          {"grid_file", "grid.json"},
          {"cells", s.cells},
          {"shards", s.shards},
          {"resources", resources_json(s.resources)},
          {"allow_failed_cells", s.allow_failed_cells},
          {"sweep_args", s.sweep_args},
          {"submissions", subs}};
}

void check_path_for_slurm(const std::string& what, const std::string& p) {
  if (p.find('\n') != std::string::npos || p.find('\r') != std::string::npos)
    throw InvalidArgument(what + " " + p + " contains a line break; choose a path without one");
}

/// The shard of every cell: position in the canonical order mod N.
std::vector<size_t> shard_of_cells(const std::vector<GridCell>& cells, size_t shards) {
  const std::vector<size_t> order = canonical_cell_order(cells);
  std::vector<size_t> of(cells.size());
  for (size_t p = 0; p < order.size(); ++p) of[order[p]] = p % shards;
  return of;
}

}  // namespace

// ---- folder paths ----
std::string SlurmSweep::submission_path() const { return join(dir, "submission.json"); }
std::string SlurmSweep::grid_path() const { return join(dir, "grid.json"); }
std::string SlurmSweep::array_script_path() const { return join(dir, "sweep-array.sbatch"); }
std::string SlurmSweep::merge_script_path() const { return join(dir, "merge.sbatch"); }
std::string SlurmSweep::shard_store(size_t index) const {
  return join(fs::path(dir) / "shards", "shard-" + std::to_string(index));
}
std::string SlurmSweep::merged_store() const { return join(dir, "merged"); }
std::string SlurmSweep::logs_dir() const { return join(dir, "logs"); }

CommandRunner system_command_runner() {
  return [](const std::vector<std::string>& argv) { return io::run_process(argv); };
}

SlurmSweep describe_slurm_sweep(const SlurmSweepRequest& q) {
  SlurmSweep s;
  if (q.dir.empty()) throw InvalidArgument("slurm: no output folder given (--out)");
  s.dir = absolute_normal(q.dir);
  if (s.dir.find('\\') != std::string::npos)
    throw InvalidArgument(
        "slurm: the folder " + s.dir +
        " contains a backslash, which turns off Slurm's output file patterns; choose another");
  check_path_for_slurm("slurm: the folder", s.dir);
  if (q.kvwb.empty())
    throw InvalidArgument("slurm: the path of the kvwb binary is unknown (--kvwb)");
  s.kvwb = absolute_normal(q.kvwb);
  check_path_for_slurm("slurm: the kvwb binary", s.kvwb);
  if (q.capture.empty()) throw InvalidArgument("slurm: no capture given");
  s.capture = absolute_normal(q.capture);
  check_path_for_slurm("slurm: the capture", s.capture);
  for (const auto& a : q.sweep_args) check_path_for_slurm("slurm: the sweep argument", a);
  for (const auto& a : q.resources.sbatch_args)
    check_path_for_slurm("slurm: the sbatch argument", a);
  if (q.shards < 1) throw InvalidArgument("slurm: --shards must be at least 1");
  if (q.resources.cpus_per_task < 1)
    throw InvalidArgument("slurm: --cpus-per-task must be at least 1, got " +
                          std::to_string(q.resources.cpus_per_task));
  if (q.resources.gpus_per_task < 0)
    throw InvalidArgument("slurm: --gpus-per-task must be >= 0, got " +
                          std::to_string(q.resources.gpus_per_task));
  s.grid = q.grid;
  s.cells = expand_sweep_grid(q.grid, "slurm grid").size();
  if (s.cells == 0) throw InvalidArgument("slurm: the grid has no cells");
  if (q.shards > s.cells)
    throw InvalidArgument(
        "slurm: " + std::to_string(q.shards) + " shards for a grid of " + std::to_string(s.cells) +
        " cells would leave shards empty; use at most " + std::to_string(s.cells) + " shards");
  s.shards = q.shards;
  s.resources = q.resources;
  s.allow_failed_cells = q.allow_failed_cells;
  s.sweep_args = q.sweep_args;
  s.capture_sha256 = io::sha256_file(s.capture);
  return s;
}

SlurmScripts slurm_scripts(const SlurmSweep& s) {
  SlurmScripts out;
  std::ostringstream a;
  const std::string n = std::to_string(s.shards);
  a << "#!/bin/bash\n"
    << "# One shard of a kvwb sweep per Slurm array task (written by kvwb slurm submit; "
       "docs/cluster.md).\n"
    << "# " << s.cells << " cells in " << n
    << " shards: task I runs the cells at positions = I (mod " << n << ") of the grid's\n"
    << "# canonical (configuration-hash-sorted) cell list into its own store, skipping the cells "
       "it already holds.\n"
    << "# Capture sha256 " << s.capture_sha256 << ".\n"
    << "set -euo pipefail\n"
    << "task=\"${SLURM_ARRAY_TASK_ID:?run this script as a Slurm array task: sbatch --array=0-"
    << (s.shards - 1) << "}\"\n"
    << "exec " << quoted(s.kvwb) << " sweep " << quoted(s.capture) << " \\\n"
    << "  --grid " << quoted(s.grid_path()) << " \\\n"
    << "  --out " << quoted(join(fs::path(s.dir) / "shards", "shard-")) << "\"$task\" \\\n"
    << "  --shard auto --shards " << n << " --resume --jobs \"${SLURM_CPUS_PER_TASK:-1}\""
    << (s.allow_failed_cells ? "" : " --fail-on-error");
  for (const auto& arg : s.sweep_args) a << " " << quoted(arg);
  a << "\n";
  out.array = a.str();

  std::ostringstream m;
  m << "#!/bin/bash\n"
    << "# Merges the shard stores of a kvwb sweep into one store (written by kvwb slurm submit; "
       "docs/cluster.md).\n"
    << "# Submitted with --dependency=afterok:<array job> --kill-on-invalid-dep=yes: it runs only "
       "when every\n"
    << "# shard succeeded, and Slurm cancels it when one fails. The merged store is written "
       "atomically.\n"
    << "set -euo pipefail\n"
    << "exec " << quoted(s.kvwb) << " store merge " << quoted(s.merged_store()) << " \\\n"
    << "  --grid " << quoted(s.grid_path()) << " --require-complete";
  for (size_t i = 0; i < s.shards; ++i) m << " \\\n  " << quoted(s.shard_store(i));
  m << "\n";
  out.merge = m.str();
  return out;
}

std::string slurm_array_spec(const std::vector<size_t>& shards) {
  std::vector<size_t> v = shards;
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  std::string out;
  for (size_t i = 0; i < v.size();) {
    size_t j = i;
    while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
    out += (out.empty() ? "" : ",") + std::to_string(v[i]);
    if (j > i) out += "-" + std::to_string(v[j]);
    i = j + 1;
  }
  return out;
}

namespace {

void add_common_sbatch(std::vector<std::string>& argv, const SlurmResources& r) {
  if (!r.partition.empty()) argv.push_back("--partition=" + r.partition);
  if (!r.time.empty()) argv.push_back("--time=" + r.time);
  if (!r.mem.empty()) argv.push_back("--mem=" + r.mem);
}

}  // namespace

std::vector<std::string> sbatch_array_command(const SlurmSweep& s,
                                              const std::vector<size_t>& shards) {
  std::vector<std::string> argv{"sbatch", "--parsable", "--job-name=kvwb-sweep-" + base_name(s.dir),
                                "--output=" + pattern_escape(s.logs_dir()) + "/shard-%a.job%A.out",
                                "--cpus-per-task=" + std::to_string(s.resources.cpus_per_task)};
  if (s.resources.gpus_per_task > 0)
    argv.push_back("--gpus-per-task=" + std::to_string(s.resources.gpus_per_task));
  add_common_sbatch(argv, s.resources);
  for (const auto& x : s.resources.sbatch_args) argv.push_back(x);
  argv.push_back("--array=" + slurm_array_spec(shards));
  argv.push_back(s.array_script_path());
  return argv;
}

std::vector<std::string> sbatch_merge_command(const SlurmSweep& s, const std::string& array_job) {
  std::vector<std::string> argv{"sbatch", "--parsable", "--job-name=kvwb-merge-" + base_name(s.dir),
                                "--output=" + pattern_escape(s.logs_dir()) + "/merge.job%j.out",
                                "--cpus-per-task=1"};
  add_common_sbatch(argv, s.resources);
  for (const auto& x : s.resources.sbatch_args) argv.push_back(x);
  if (!array_job.empty()) {
    argv.push_back("--dependency=afterok:" + array_job);
    argv.push_back("--kill-on-invalid-dep=yes");
  }
  argv.push_back(s.merge_script_path());
  return argv;
}

std::string slurm_dry_run_text(const SlurmSweep& s, const std::vector<size_t>& shards) {
  const SlurmScripts sc = slurm_scripts(s);
  std::ostringstream o;
  o << "# kvwb slurm submit --dry-run: nothing was written or submitted.\n"
    << "# folder " << s.dir << ": " << s.cells << " cells in " << s.shards
    << " shards; merged store " << s.merged_store() << "\n"
    << "# ---- " << s.array_script_path() << " ----\n"
    << sc.array << "# ---- " << s.merge_script_path() << " ----\n"
    << sc.merge << "# ---- submission: the shard array, then the merge after it ----\n";
  if (!shards.empty()) {
    o << "array_job=$(" << io::shell_command_line(sbatch_array_command(s, shards)) << ")\n";
    std::string merge = io::shell_command_line(sbatch_merge_command(s, "ARRAY_JOB_ID"));
    const std::string ph = "afterok:ARRAY_JOB_ID";
    const size_t at = merge.find(ph);
    if (at != std::string::npos) merge.replace(at, ph.size(), "afterok:\"${array_job%%;*}\"");
    o << merge << "\n";
  } else {
    o << io::shell_command_line(sbatch_merge_command(s, "")) << "\n";
  }
  return o.str();
}

void save_slurm_submission(const SlurmSweep& s) {
  io::write_file_atomic(s.submission_path(), submission_json(s).dump(2) + "\n");
}

void write_slurm_folder(const SlurmSweep& s) {
  std::error_code ec;
  for (const std::string& d : {s.dir, join(s.dir, "shards"), s.logs_dir()}) {
    fs::create_directories(d, ec);
    if (ec) throw IoError(d, "cannot create the folder: " + ec.message());
  }
  io::write_file_atomic(s.grid_path(), s.grid.dump(2) + "\n");
  const SlurmScripts sc = slurm_scripts(s);
  for (const auto& [path, text] :
       {std::pair{s.array_script_path(), sc.array}, std::pair{s.merge_script_path(), sc.merge}}) {
    io::write_file_atomic(path, text);
    if (::chmod(path.c_str(), 0755) != 0) throw IoError(path, "cannot make the script executable");
  }
  save_slurm_submission(s);
}

SlurmSweep read_slurm_folder(const std::string& dir) {
  SlurmSweep s;
  s.dir = absolute_normal(dir);
  const std::string path = s.submission_path();
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw FormatError(
        dir + ": not a kvwb Slurm sweep folder (no submission.json; made by kvwb slurm submit)");
  const auto bytes = io::read_file(path);
  json j;
  try {
    j = json::parse(bytes.begin(), bytes.end());
  } catch (const json::exception& e) {
    throw FormatError(path + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object() || j.value("format", std::string()) != kFolderFormat)
    throw FormatError(path + ": not a kvwb Slurm sweep description (expected \"format\": \"" +
                      std::string(kFolderFormat) + "\")");
  try {
    s.kvwb = j.at("kvwb").get<std::string>();
    s.capture = j.at("capture").at("file").get<std::string>();
    s.capture_sha256 = j.at("capture").at("sha256").get<std::string>();
    s.cells = j.at("cells").get<size_t>();
    s.shards = j.at("shards").get<size_t>();
    s.resources = resources_from_json(j.value("resources", json::object()));
    s.allow_failed_cells = j.value("allow_failed_cells", false);
    s.sweep_args = j.value("sweep_args", std::vector<std::string>());
    for (const auto& x : j.value("submissions", json::array())) {
      SlurmSubmission sub;
      sub.array_job = x.value("array_job", std::string());
      sub.merge_job = x.value("merge_job", std::string());
      sub.shards = x.value("shards", std::vector<size_t>());
      sub.submitted_unix = x.value("submitted_unix", 0.0);
      s.submissions.push_back(std::move(sub));
    }
  } catch (const json::exception& e) {
    throw FormatError(path + ": missing or malformed field (" + e.what() + ")");
  }
  if (s.shards < 1 || s.shards > s.cells)
    throw FormatError(path + ": shards must be between 1 and cells");
  for (const auto& sub : s.submissions)
    for (size_t i : sub.shards)
      if (i >= s.shards)
        throw FormatError(path + ": a submission names shard " + std::to_string(i) + " of " +
                          std::to_string(s.shards));
  const auto gb = io::read_file(s.grid_path());
  try {
    s.grid = json::parse(gb.begin(), gb.end());
  } catch (const json::exception& e) {
    throw FormatError(s.grid_path() + ": not valid JSON (" + e.what() + ")");
  }
  return s;
}

std::string parse_sbatch_job_id(const std::string& output) {
  std::string line = output.substr(0, output.find('\n'));
  line = line.substr(0, line.find(';'));
  while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
  if (line.empty() || line.find_first_not_of("0123456789") != std::string::npos)
    throw FormatError("sbatch --parsable printed '" + output + "', not a job id");
  return line;
}

SlurmSubmission submit_slurm_jobs(SlurmSweep& s, const std::vector<size_t>& shards,
                                  const CommandRunner& run) {
  SlurmSubmission sub;
  sub.shards = shards;
  std::sort(sub.shards.begin(), sub.shards.end());
  sub.submitted_unix = unix_now();
  auto call = [&](const std::vector<std::string>& argv, const std::string& what) {
    const io::ProcessResult r = run(argv);
    if (r.exit_code != 0)
      throw Unavailable("slurm: sbatch failed (exit " + std::to_string(r.exit_code) +
                        ") submitting " + what + ": " + r.err + r.out +
                        " [command: " + io::shell_command_line(argv) + "]");
    return parse_sbatch_job_id(r.out);
  };
  if (!sub.shards.empty()) {
    sub.array_job = call(sbatch_array_command(s, sub.shards), "the shard array");
    s.submissions.push_back(sub);
    save_slurm_submission(s);  // recorded before the merge is submitted
  }
  try {
    sub.merge_job = call(sbatch_merge_command(s, sub.array_job), "the merge job");
  } catch (const Error& e) {
    if (sub.array_job.empty()) throw;
    throw Unavailable(std::string(e.what()) + "; the shard array is job " + sub.array_job +
                      " (recorded); once it ends, `kvwb slurm submit --resume " + s.dir +
                      "` submits the merge");
  }
  if (sub.array_job.empty())
    s.submissions.push_back(sub);
  else
    s.submissions.back() = sub;
  save_slurm_submission(s);
  return sub;
}

// ---- job states ----

namespace {

/// "123_[1-3,7]" -> 123_1 123_2 123_3 123_7; other ids unchanged.
std::vector<std::string> expand_task_ids(const std::string& id) {
  const size_t lb = id.find("_[");
  if (lb == std::string::npos || id.back() != ']') return {id};
  const std::string base = id.substr(0, lb);
  std::string list = id.substr(lb + 2, id.size() - lb - 3);
  const size_t pct = list.find('%');  // "[0-9%2]": the throttle
  if (pct != std::string::npos) list = list.substr(0, pct);
  std::vector<std::string> out;
  std::stringstream ss(list);
  std::string part;
  while (std::getline(ss, part, ',')) {
    const size_t dash = part.find('-');
    try {
      const size_t a = std::stoul(part.substr(0, dash));
      const size_t b = dash == std::string::npos ? a : std::stoul(part.substr(dash + 1));
      for (size_t t = a; t <= b && t - a < 1000000; ++t)
        out.push_back(base + "_" + std::to_string(t));
    } catch (const std::exception&) {
      return {id};
    }
  }
  return out;
}

std::string first_word(const std::string& s) {
  const size_t b = s.find_first_not_of(' ');
  if (b == std::string::npos) return {};
  return s.substr(b, s.find(' ', b) - b);
}

}  // namespace

std::vector<SlurmJobState> parse_squeue_states(const std::string& text) {
  std::vector<SlurmJobState> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    const size_t a = line.find('|');
    if (a == std::string::npos) continue;
    const size_t b = line.find('|', a + 1);
    const std::string id = line.substr(0, a);
    const std::string state =
        line.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1);
    const std::string reason = b == std::string::npos ? std::string() : line.substr(b + 1);
    for (const auto& x : expand_task_ids(first_word(id)))
      out.push_back({x, first_word(state), reason, "squeue"});
  }
  return out;
}

std::vector<SlurmJobState> parse_sacct_states(const std::string& text) {
  std::vector<SlurmJobState> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) {
    const size_t a = line.find('|');
    if (a == std::string::npos) continue;
    const size_t b = line.find('|', a + 1);
    const std::string state =
        line.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1);
    for (const auto& x : expand_task_ids(first_word(line.substr(0, a))))
      out.push_back({x, first_word(state), "", "sacct"});
  }
  return out;
}

bool slurm_state_active(const std::string& state) {
  static const std::set<std::string> final_states = {
      "COMPLETED", "FAILED",    "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL",
      "PREEMPTED", "BOOT_FAIL", "DEADLINE",  "REVOKED", "NOT_SUBMITTED", "UNKNOWN"};
  return !state.empty() && !final_states.count(state);
}

// ---- status ----

SlurmStatus slurm_status(const std::string& dir, const CommandRunner& run) {
  SlurmStatus st;
  st.sweep = read_slurm_folder(dir);
  const SlurmSweep& s = st.sweep;
  const std::vector<GridCell> cells = expand_sweep_grid(s.grid, s.grid_path());
  if (cells.size() != s.cells)
    throw FormatError(s.grid_path() + ": the grid has " + std::to_string(cells.size()) +
                      " cells, submission.json says " + std::to_string(s.cells));
  const std::vector<size_t> shard_of = shard_of_cells(cells, s.shards);
  std::vector<std::unordered_set<std::string>> keys(s.shards);
  for (size_t c = 0; c < cells.size(); ++c)
    keys[shard_of[c]].insert(result_key(s.capture_sha256, run_config_hash(cells[c].config)));

  // The latest job of every shard and the latest merge job.
  std::vector<std::string> shard_job(s.shards);
  for (const auto& sub : s.submissions) {
    if (!sub.array_job.empty())
      for (size_t i : sub.shards) shard_job[i] = sub.array_job + "_" + std::to_string(i);
    if (!sub.merge_job.empty()) st.merge_job = sub.merge_job;
  }
  std::vector<std::string> query;
  for (const auto& sub : s.submissions) {
    bool latest = false;
    for (size_t i : sub.shards)
      latest = latest || shard_job[i] == sub.array_job + "_" + std::to_string(i);
    if (latest && !sub.array_job.empty()) query.push_back(sub.array_job);
  }
  if (!st.merge_job.empty()) query.push_back(st.merge_job);
  std::map<std::string, SlurmJobState> states;
  if (!query.empty()) {
    std::string ids;
    for (const auto& q : query) ids += (ids.empty() ? "" : ",") + q;
    try {
      const io::ProcessResult r =
          run({"squeue", "-h", "-t", "all", "-r", "-j", ids, "-o", "%i|%T|%r"});
      if (r.exit_code == 0)
        for (auto& x : parse_squeue_states(r.out)) states[x.id] = x;
    } catch (const Unavailable&) {
    }
    std::vector<std::string> wanted = shard_job;
    wanted.push_back(st.merge_job);
    bool missing = false;
    for (const auto& w : wanted) missing = missing || (!w.empty() && !states.count(w));
    if (missing) {
      try {
        const io::ProcessResult r =
            run({"sacct", "-n", "-P", "-X", "-j", ids, "-o", "JobID,State"});
        if (r.exit_code == 0)
          for (auto& x : parse_sacct_states(r.out))
            if (!states.count(x.id)) states[x.id] = x;
      } catch (const Unavailable&) {
      }
    }
  }
  auto state_of = [&](const std::string& job, std::string& state, std::string& reason) {
    if (job.empty()) {
      state = "NOT_SUBMITTED";
      return;
    }
    auto it = states.find(job);
    if (it == states.end()) {
      state = "UNKNOWN";
      return;
    }
    state = it->second.state;
    reason = it->second.reason == "None" ? std::string() : it->second.reason;
  };

  for (size_t i = 0; i < s.shards; ++i) {
    SlurmShardStatus sh;
    sh.index = i;
    sh.cells = keys[i].size();
    sh.job = shard_job[i];
    state_of(sh.job, sh.state, sh.reason);
    std::error_code ec;
    const std::string store = s.shard_store(i);
    if (fs::exists(store_meta_path(store), ec) || fs::exists(store_results_path(store), ec)) {
      StoreContents sc = read_result_store(store);
      sh.problems = sc.problems;
      for (const auto& r : sc.records) {
        if (!keys[i].count(r["key"].get<std::string>())) continue;
        if (r.value("status", std::string()) == "ok") {
          ++sh.done;
        } else {
          ++sh.failed;
          sh.failures.push_back({{"cell", r.value("cell", json())},
                                 {"config_hash", r.value("config_hash", std::string())},
                                 {"options", r.value("options", json::object())},
                                 {"error", r.value("error", json::object())}});
        }
      }
    }
    sh.pending = sh.cells - sh.done - sh.failed;
    st.done += sh.done;
    st.failed += sh.failed;
    st.pending += sh.pending;
    if (sh.pending > 0) st.incomplete_shards.push_back(i);
    if (slurm_state_active(sh.state)) st.active_jobs.push_back(sh.job);
    st.shards.push_back(std::move(sh));
  }
  state_of(st.merge_job, st.merge_state, st.merge_reason);
  if (slurm_state_active(st.merge_state)) st.active_jobs.push_back(st.merge_job);
  std::error_code ec;
  if (fs::exists(store_meta_path(s.merged_store()), ec)) {
    st.merged = true;
    st.merged_records = read_result_store(s.merged_store()).records.size();
  }

  // What to do next.
  const std::string resume = "kvwb slurm submit --resume " + io::shell_quote(s.dir);
  const bool never = st.merge_state == "PENDING" && st.merge_reason == "DependencyNeverSatisfied";
  if (st.merged) {
    st.next = "done: the merged store " + s.merged_store() + " holds " +
              std::to_string(st.merged_records) + " records";
  } else if (s.submissions.empty()) {
    st.next = "not submitted yet: " + resume + " submits every shard and the merge";
  } else if (!st.active_jobs.empty() && !(never && st.active_jobs.size() == 1)) {
    st.next = "jobs are pending or running; check again later (or scancel them)";
  } else if (st.failed > 0) {
    st.next = std::to_string(st.failed) + (st.failed == 1 ? " cell" : " cells") +
              " failed: fix the grid and submit it into a new folder, or " + resume +
              " --allow-failed-cells merges the failure records";
  } else if (!st.incomplete_shards.empty()) {
    st.next = resume + " reruns the missing cells of shard(s) " +
              slurm_array_spec(st.incomplete_shards) + " and merges";
  } else {
    st.next =
        "every cell is stored but the merged store is missing: " + resume + " submits the merge";
  }
  return st;
}

json slurm_status_json(const SlurmStatus& st) {
  json shards = json::array();
  for (const auto& sh : st.shards)
    shards.push_back({{"shard", sh.index},
                      {"cells", sh.cells},
                      {"done", sh.done},
                      {"failed", sh.failed},
                      {"pending", sh.pending},
                      {"job", sh.job},
                      {"state", sh.state},
                      {"reason", sh.reason},
                      {"failures", sh.failures},
                      {"problems", sh.problems}});
  return {
      {"format", "kvwb-slurm-status"},
      {"dir", st.sweep.dir},
      {"capture", {{"file", st.sweep.capture}, {"sha256", st.sweep.capture_sha256}}},
      {"cells", st.sweep.cells},
      {"shards", shards},
      {"done", st.done},
      {"failed", st.failed},
      {"pending", st.pending},
      {"merge", {{"job", st.merge_job}, {"state", st.merge_state}, {"reason", st.merge_reason}}},
      {"merged",
       {{"path", st.sweep.merged_store()}, {"exists", st.merged}, {"records", st.merged_records}}},
      {"active_jobs", st.active_jobs},
      {"incomplete_shards", st.incomplete_shards},
      {"next", st.next}};
}

std::string slurm_status_text(const SlurmStatus& st) {
  std::ostringstream o;
  const SlurmSweep& s = st.sweep;
  o << "sweep " << s.dir << ": " << s.cells << " cells of " << s.capture << " in " << s.shards
    << " shards, " << s.submissions.size() << " submission(s)\n";
  char line[256];
  std::snprintf(line, sizeof line, "%6s  %-14s %-26s %6s %6s %7s %8s\n", "shard", "job", "state",
                "cells", "done", "failed", "pending");
  o << line;
  for (const auto& sh : st.shards) {
    const std::string state = sh.state + (sh.reason.empty() ? "" : " (" + sh.reason + ")");
    std::snprintf(line, sizeof line, "%6zu  %-14s %-26s %6zu %6zu %7zu %8zu\n", sh.index,
                  sh.job.empty() ? "-" : sh.job.c_str(), state.c_str(), sh.cells, sh.done,
                  sh.failed, sh.pending);
    o << line;
  }
  const std::string mstate =
      st.merge_state + (st.merge_reason.empty() ? "" : " (" + st.merge_reason + ")");
  std::snprintf(line, sizeof line, "%6s  %-14s %s\n", "merge",
                st.merge_job.empty() ? "-" : st.merge_job.c_str(), mstate.c_str());
  o << line;
  o << "cells: " << st.done << " done, " << st.failed << " failed, " << st.pending << " pending of "
    << s.cells << "; merged store " << s.merged_store() << ": "
    << (st.merged ? std::to_string(st.merged_records) + " records" : std::string("not written"))
    << "\n";
  for (const auto& sh : st.shards)
    for (const auto& f : sh.failures)
      o << "failed: cell " << f.value("cell", json()).dump() << " (shard " << sh.index << ") "
        << f.value("options", json::object()).dump() << ": "
        << f.value("error", json::object()).value("code", std::string("?")) << ": "
        << f.value("error", json::object()).value("message", std::string()) << "\n";
  for (const auto& sh : st.shards)
    for (const auto& p : sh.problems) o << "warning: shard " << sh.index << ": " << p << "\n";
  o << "next: " << st.next << "\n";
  return o.str();
}

SlurmResumePlan plan_slurm_resume(const SlurmStatus& st, bool allow_failed_cells) {
  SlurmResumePlan plan;
  const SlurmSweep& s = st.sweep;
  const std::string sha = io::sha256_file(s.capture);
  if (sha != s.capture_sha256)
    throw CaptureChanged("slurm: the capture " + s.capture +
                         " changed since the sweep was submitted (sha256 " + s.capture_sha256 +
                         ", now " + sha + "); submit a new sweep into a new folder");
  std::vector<std::string> active;
  for (const auto& sh : st.shards)
    if (slurm_state_active(sh.state)) active.push_back(sh.job + " (" + sh.state + ")");
  if (slurm_state_active(st.merge_state)) {
    if (st.merge_state == "PENDING" && st.merge_reason == "DependencyNeverSatisfied")
      plan.cancel.push_back(st.merge_job);
    else
      active.push_back(st.merge_job + " (" + st.merge_state + ")");
  }
  if (!active.empty()) {
    std::string list;
    for (const auto& a : active) list += (list.empty() ? "" : ", ") + a;
    throw InvalidArgument("slurm: jobs of " + s.dir + " may still run: " + list +
                          "; wait for them (kvwb slurm status) or scancel them, then resume");
  }
  if (st.merged) {
    plan.cancel.clear();
    plan.message = "nothing to do: the merged store " + s.merged_store() + " holds " +
                   std::to_string(st.merged_records) + " records";
    return plan;
  }
  if (st.failed > 0 && !allow_failed_cells) {
    std::string list;
    size_t n = 0;
    for (const auto& sh : st.shards)
      for (const auto& f : sh.failures)
        if (n++ < 10)
          list += (list.empty() ? "" : "; ") + std::string("cell ") +
                  f.value("cell", json()).dump() + " " + f.value("options", json::object()).dump() +
                  ": " + f.value("error", json::object()).value("code", std::string("?")) + ": " +
                  f.value("error", json::object()).value("message", std::string());
    throw InvalidArgument(
        "slurm: " + std::to_string(st.failed) + " cells of " + s.dir + " failed (" + list +
        "); fix the grid and submit it into a new folder, or resume with --allow-failed-cells to "
        "merge the failure records");
  }
  plan.shards = st.incomplete_shards;
  plan.merge = true;
  return plan;
}

}  // namespace kvwb::sessions
