#pragma once
// Sweeps on a Slurm cluster (docs/cluster.md): the shards of a sweep run as one Slurm job array and
// a merge job that depends on it; nothing here schedules anything itself. A Slurm sweep folder:
//   DIR/submission.json     what the folder runs (capture, grid, shards, resources) and every
//                           submission (array and merge job ids), rewritten atomically
//   DIR/grid.json           the grid the shards and the merge read
//   DIR/sweep-array.sbatch  array task I runs `kvwb sweep --shard I/N --resume` into
//   DIR/shards/shard-I DIR/merge.sbatch        `kvwb store merge DIR/merged --grid DIR/grid.json
//   --require-complete DIR/shards/...` DIR/shards/shard-I/     the result store of shard I (written
//   by the array task) DIR/logs/               shard-I.jobA.out, merge.jobM.out (Slurm's output
//   files) DIR/merged/             the merged store (written atomically by the merge job)
// Scripts hold absolute, single-quoted paths; sbatch options are passed as separate arguments of
// sbatch (never through a shell), and every external program is run without a shell.
#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/process.h"

namespace kvwb::sessions {

/// sbatch resources of the shard array; the merge job gets the partition, time, memory and extra
/// arguments (one CPU, no GPU).
struct SlurmResources {
  std::string partition;  // --partition ("" = the cluster's default)
  std::string time;       // --time ("" = the partition's default)
  std::string mem;        // --mem ("" = the default)
  int cpus_per_task =
      1;  // --cpus-per-task; each shard runs this many cells at a time (sweep --jobs)
  int gpus_per_task = 0;                 // --gpus-per-task (0 = not requested)
  std::vector<std::string> sbatch_args;  // extra sbatch arguments, one argument each, for both jobs
};

/// One submission: an array of shards and the merge job after it.
struct SlurmSubmission {
  std::string array_job;       // array job id ("" when only the merge was submitted)
  std::string merge_job;       // "" when the merge job was not submitted
  std::vector<size_t> shards;  // the array's task ids = shard indices
  double submitted_unix = 0;
};

/// A Slurm sweep folder: what it runs and what was submitted (DIR/submission.json).
struct SlurmSweep {
  std::string dir;      // absolute
  std::string kvwb;     // absolute path of the kvwb binary the scripts run (same path on the nodes)
  std::string capture;  // absolute path of the capture (same path on the nodes)
  std::string capture_sha256;  // at submission; a resume refuses a changed capture
  nlohmann::json grid;
  size_t cells = 0;   // cells of the grid
  size_t shards = 1;  // N
  SlurmResources resources;
  /// Without it a shard with a failed cell exits non-zero (sweep --fail-on-error), so the merge job
  /// is cancelled; with it failure records are merged like results.
  bool allow_failed_cells = false;
  /// Extra `kvwb sweep` arguments (end-to-end axes: --model DIR --text FILE ...), absolute paths.
  std::vector<std::string> sweep_args;
  std::vector<SlurmSubmission> submissions;

  std::string submission_path() const;
  std::string grid_path() const;
  std::string array_script_path() const;
  std::string merge_script_path() const;
  std::string shard_store(size_t index) const;
  std::string merged_store() const;
  std::string logs_dir() const;
};

/// Runs an external program (io::run_process in production; tests pass fakes).
using CommandRunner = std::function<io::ProcessResult(const std::vector<std::string>& argv)>;
CommandRunner system_command_runner();

/// What kvwb slurm submit needs to describe a new folder.
struct SlurmSweepRequest {
  std::string dir, kvwb, capture;
  nlohmann::json grid;
  size_t shards = 1;
  SlurmResources resources;
  bool allow_failed_cells = false;
  std::vector<std::string> sweep_args;
};

/// Checks a request and describes the folder: paths made absolute, the grid expanded (its cell
/// count; at least one cell), 1 <= shards <= cells, cpus_per_task >= 1, gpus_per_task >= 0, the
/// capture hashed. Throws InvalidArgument (a path Slurm's output patterns cannot hold: '\' or a
/// newline), IoError (capture unreadable).
SlurmSweep describe_slurm_sweep(const SlurmSweepRequest& request);

struct SlurmScripts {
  std::string array;  // DIR/sweep-array.sbatch
  std::string merge;  // DIR/merge.sbatch
};
/// The two batch scripts of a folder.
SlurmScripts slurm_scripts(const SlurmSweep& sweep);
/// "0-2,5,7-8" for the shard list (ascending, no duplicates).
std::string slurm_array_spec(const std::vector<size_t>& shards);
/// sbatch argv submitting `shards` of the array script.
std::vector<std::string> sbatch_array_command(const SlurmSweep& sweep,
                                              const std::vector<size_t>& shards);
/// sbatch argv submitting the merge script after `array_job` (afterok, kill on invalid
/// dependency); without a dependency when `array_job` is "".
std::vector<std::string> sbatch_merge_command(const SlurmSweep& sweep,
                                              const std::string& array_job);
/// What `--dry-run` prints: the folder, both scripts and a shell snippet with the two sbatch
/// commands (the merge depending on the array's job id) that submits `shards`.
std::string slurm_dry_run_text(const SlurmSweep& sweep, const std::vector<size_t>& shards);

/// Creates the folder (shards/, logs/) and writes grid.json, both scripts (mode 0755) and
/// submission.json, each atomically. Throws IoError.
void write_slurm_folder(const SlurmSweep& sweep);
/// Rewrites submission.json atomically.
void save_slurm_submission(const SlurmSweep& sweep);
/// Reads DIR/submission.json. Throws IoError, FormatError (not a kvwb Slurm sweep folder).
SlurmSweep read_slurm_folder(const std::string& dir);

/// The job id printed by `sbatch --parsable` ("123" or "123;cluster"). Throws FormatError.
std::string parse_sbatch_job_id(const std::string& output);

/// Submits `shards` as one array (none: only the merge job, without a dependency) and the merge
/// job after it, records the submission in submission.json (also when the merge submission fails)
/// and returns it. Throws Unavailable (sbatch missing) or InvalidArgument naming the failed sbatch
/// call and its stderr.
SlurmSubmission submit_slurm_jobs(SlurmSweep& sweep, const std::vector<size_t>& shards,
                                  const CommandRunner& run);

/// A job's state as Slurm reports it.
struct SlurmJobState {
  std::string id;     // "123_4" (array task) or "124"
  std::string state;  // PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, TIMEOUT, ...
  std::string
      reason;  // squeue's reason (Dependency, DependencyNeverSatisfied, None, ...), "" from sacct
  std::string source;  // "squeue" or "sacct"
};
/// Parses `squeue -h -t all -r -o %i|%T|%r` (one task per line; "123_[1-3]" ranges expanded).
std::vector<SlurmJobState> parse_squeue_states(const std::string& text);
/// Parses `sacct -n -P -X -o JobID,State` ("CANCELLED by 0" -> CANCELLED).
std::vector<SlurmJobState> parse_sacct_states(const std::string& text);
/// True for states in which a job may still run (PENDING, RUNNING, CONFIGURING, COMPLETING,
/// SUSPENDED, REQUEUED, ...): everything except the final states.
bool slurm_state_active(const std::string& state);

/// One shard of a folder: its cells as its store holds them and its latest job.
struct SlurmShardStatus {
  size_t index = 0;
  size_t cells = 0, done = 0, failed = 0,
         pending = 0;  // done counts ok records; failed failure records
  std::string job;     // "A_I" of the latest submission of this shard ("" = never submitted)
  std::string
      state;  // Slurm's state, "NOT_SUBMITTED", or "UNKNOWN" (no longer known to squeue/sacct)
  std::string reason;
  std::vector<nlohmann::json> failures;  // {cell, config_hash, options, error}
  std::vector<std::string> problems;     // damaged store lines
};

struct SlurmStatus {
  SlurmSweep sweep;
  std::vector<SlurmShardStatus> shards;
  std::string merge_job, merge_state, merge_reason;
  bool merged = false;  // DIR/merged exists
  size_t merged_records = 0;
  size_t done = 0, failed = 0, pending = 0;  // over all shards
  std::vector<std::string> active_jobs;      // jobs of the latest submissions that may still run
  std::vector<size_t> incomplete_shards;     // shards with pending cells
  std::string next;                          // what to do next, one line
};

/// Reads the folder, every shard store and the states of the latest jobs (squeue, then sacct for
/// jobs squeue no longer lists; both optional: without them states are UNKNOWN).
SlurmStatus slurm_status(const std::string& dir, const CommandRunner& run);
nlohmann::json slurm_status_json(const SlurmStatus& status);
std::string slurm_status_text(const SlurmStatus& status);

/// What `kvwb slurm submit --resume DIR` does, decided from a status.
struct SlurmResumePlan {
  std::vector<size_t> shards;       // shards to resubmit (those with missing cells)
  bool merge = false;               // submit a merge job
  std::vector<std::string> cancel;  // old merge jobs that can never run (DependencyNeverSatisfied)
  std::string message;              // "nothing to do: ..." when neither
};
/// Throws InvalidArgument when a job of the folder is still pending or running, or when cells
/// failed and `allow_failed_cells` is false (naming the cells); CaptureChanged when the capture's
/// sha256 changed since the submission.
SlurmResumePlan plan_slurm_resume(const SlurmStatus& status, bool allow_failed_cells);

}  // namespace kvwb::sessions
