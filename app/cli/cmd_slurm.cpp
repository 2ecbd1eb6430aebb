// kvwb slurm: run a sweep on a Slurm cluster as a job array of shards plus a merge job that depends
// on it (docs/cluster.md), and report where it stands. kvwb schedules nothing itself.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

#include "app/cli/cli_common.h"
#include "app/cli/model_args.h"
#include "base/errors.h"
#include "io/atomic_file.h"
#include "io/process.h"
#include "sessions/explore/slurm.h"

namespace kvwb::app {

namespace {

namespace fs = std::filesystem;

struct SubmitArgs {
  std::string capture, grid, out, resume, kvwb;
  size_t shards = 0;
  sessions::SlurmResources res;
  bool allow_failed_cells = false, dry_run = false, no_submit = false;
  ModelArgs model;
  int context = 0, continuation = 0, passages = 0, resamples = 0;
  std::string selection, bootstrap_seed;
  std::string bundle;  // kvwb sweep --bundle (calibration transfer)
};

struct StatusArgs {
  std::string dir, json_out;
};

std::string absolute(const std::string& p) { return fs::absolute(p).lexically_normal().string(); }

/// This kvwb binary (the scripts run the same path on the nodes).
std::string self_path() {
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  if (ec)
    throw Unavailable(
        "cannot find the path of this kvwb binary (/proc/self/exe); pass --kvwb PATH");
  return p.string();
}

/// kvwb sweep arguments of the end-to-end axes and the calibration bundle, with absolute paths.
std::vector<std::string> e2e_sweep_args(const SubmitArgs& a) {
  std::vector<std::string> v;
  if (!a.bundle.empty()) v = {"--bundle", absolute(a.bundle)};
  if (a.model.model.empty()) {
    if (!a.model.text.empty() || !a.model.ids.empty() || !a.model.tokenizer.empty() || a.context ||
        a.continuation || a.passages || a.resamples || !a.selection.empty() || !a.bootstrap_seed.empty())
      throw InvalidArgument(
          "slurm submit: --text/--ids/--tokenizer/--context/--continuation/--passages/--selection/"
          "--resamples/--bootstrap-seed need "
          "--model");
    return v;
  }
  v.insert(v.end(), {"--model", absolute(a.model.model)});
  if (!a.model.tokenizer.empty()) v.insert(v.end(), {"--tokenizer", absolute(a.model.tokenizer)});
  if (!a.model.text.empty()) v.insert(v.end(), {"--text", absolute(a.model.text)});
  if (!a.model.ids.empty()) v.insert(v.end(), {"--ids", absolute(a.model.ids)});
  if (a.context) v.insert(v.end(), {"--context", std::to_string(a.context)});
  if (a.continuation) v.insert(v.end(), {"--continuation", std::to_string(a.continuation)});
  if (a.passages) v.insert(v.end(), {"--passages", std::to_string(a.passages)});
  if (!a.selection.empty()) v.insert(v.end(), {"--selection", a.selection});
  if (a.resamples) v.insert(v.end(), {"--resamples", std::to_string(a.resamples)});
  if (!a.bootstrap_seed.empty()) v.insert(v.end(), {"--bootstrap-seed", a.bootstrap_seed});
  return v;
}

void print_submission(const sessions::SlurmSweep& s, const sessions::SlurmSubmission& sub) {
  if (!sub.array_job.empty())
    std::printf(
        "slurm: submitted the shard array as job %s (--array=%s) and the merge as job %s "
        "(--dependency=afterok:%s --kill-on-invalid-dep=yes)\n",
        sub.array_job.c_str(), sessions::slurm_array_spec(sub.shards).c_str(),
        sub.merge_job.c_str(), sub.array_job.c_str());
  else
    std::printf("slurm: submitted the merge as job %s\n", sub.merge_job.c_str());
  std::printf("merged store: %s\n", s.merged_store().c_str());
  std::printf("status: kvwb slurm status %s\n", io::shell_quote(s.dir).c_str());
}

void run_submit(const SubmitArgs& a, const CLI::App& cmd) {
  const auto run = sessions::system_command_runner();
  if (!a.resume.empty()) {
    for (const char* opt : {"capture", "--grid", "--out", "--shards", "--model", "--kvwb"})
      if (cmd.count(opt))
        throw InvalidArgument(
            std::string("slurm submit --resume DIR takes what to run from DIR/submission.json; ") +
            opt + " cannot be combined with it");
    const sessions::SlurmStatus st = sessions::slurm_status(a.resume, run);
    sessions::SlurmSweep s = st.sweep;
    if (cmd.count("--partition")) s.resources.partition = a.res.partition;
    if (cmd.count("--time")) s.resources.time = a.res.time;
    if (cmd.count("--mem")) s.resources.mem = a.res.mem;
    if (cmd.count("--cpus-per-task")) s.resources.cpus_per_task = a.res.cpus_per_task;
    if (cmd.count("--gpus-per-task")) s.resources.gpus_per_task = a.res.gpus_per_task;
    if (cmd.count("--sbatch-arg")) s.resources.sbatch_args = a.res.sbatch_args;
    const bool allow = a.allow_failed_cells || s.allow_failed_cells;
    const sessions::SlurmResumePlan plan = sessions::plan_slurm_resume(st, allow);
    if (!plan.message.empty()) {
      std::printf("slurm: %s\n", plan.message.c_str());
      return;
    }
    s.allow_failed_cells = allow;
    std::printf("slurm: resuming %s: %zu cells pending in shard(s) %s\n", s.dir.c_str(), st.pending,
                plan.shards.empty() ? "-" : sessions::slurm_array_spec(plan.shards).c_str());
    if (a.dry_run) {
      for (const auto& j : plan.cancel)
        std::printf("# would cancel the old merge job %s (DependencyNeverSatisfied)\n", j.c_str());
      std::fputs(sessions::slurm_dry_run_text(s, plan.shards).c_str(), stdout);
      return;
    }
    for (const auto& j : plan.cancel) {
      const io::ProcessResult r = run({"scancel", j});
      if (r.exit_code != 0)
        throw Unavailable("slurm: scancel " + j + " failed (exit " + std::to_string(r.exit_code) +
                          "): " + r.err);
      std::printf("slurm: cancelled the old merge job %s (its dependency can never be satisfied)\n",
                  j.c_str());
    }
    sessions::write_slurm_folder(s);  // scripts follow the (possibly changed) options
    print_submission(s, sessions::submit_slurm_jobs(s, plan.shards, run));
    return;
  }

  if (a.capture.empty() || a.grid.empty() || a.out.empty() || a.shards == 0)
    throw InvalidArgument(
        "slurm submit: give CAPTURE --grid G --out DIR --shards N (or --resume DIR)");
  sessions::SlurmSweepRequest q;
  q.dir = a.out;
  q.kvwb = a.kvwb.empty() ? self_path() : a.kvwb;
  q.capture = a.capture;
  q.grid = read_json_file(a.grid, kSweepGridExpected);
  q.shards = a.shards;
  q.resources = a.res;
  q.allow_failed_cells = a.allow_failed_cells;
  q.sweep_args = e2e_sweep_args(a);
  const sessions::SlurmSweep probe = sessions::describe_slurm_sweep(q);
  std::error_code ec;
  if (fs::exists(probe.dir, ec) &&
      (!fs::is_directory(probe.dir, ec) || !fs::is_empty(probe.dir, ec)))
    throw InvalidArgument("slurm submit: the folder " + probe.dir +
                          " exists and is not empty; continue it with --resume " + probe.dir +
                          " or choose a new folder");
  std::vector<size_t> all(probe.shards);
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  const bool kvwb_here = fs::exists(probe.kvwb, ec);
  if (a.dry_run) {
    if (!kvwb_here)
      std::fprintf(stderr, "warning: the kvwb binary %s does not exist on this machine\n",
                   probe.kvwb.c_str());
    std::fputs(sessions::slurm_dry_run_text(probe, all).c_str(), stdout);
    return;
  }
  if (!kvwb_here)
    throw InvalidArgument("slurm submit: the kvwb binary " + probe.kvwb + " does not exist");
  sessions::SlurmSweep s = probe;
  sessions::write_slurm_folder(s);
  if (a.no_submit) {
    std::printf(
        "slurm: wrote %s (%zu cells in %zu shards); submit it with: kvwb slurm submit --resume "
        "%s\n",
        s.dir.c_str(), s.cells, s.shards, io::shell_quote(s.dir).c_str());
    return;
  }
  print_submission(s, sessions::submit_slurm_jobs(s, all, run));
}

void run_status(const StatusArgs& a) {
  const sessions::SlurmStatus st = sessions::slurm_status(a.dir, sessions::system_command_runner());
  std::fputs(sessions::slurm_status_text(st).c_str(), stdout);
  if (!a.json_out.empty())
    io::write_file_atomic(a.json_out, sessions::slurm_status_json(st).dump(2) + "\n");
}

}  // namespace

void add_slurm_commands(CLI::App& app) {
  auto* slurm =
      app.add_subcommand("slurm",
                         "Run a sweep on a Slurm cluster as a job array of shards plus a merge job "
                         "(docs/cluster.md)");
  slurm->require_subcommand(1);

  auto a = std::make_shared<SubmitArgs>();
  auto* submit = slurm->add_subcommand(
      "submit",
      "Write the shard array and merge scripts into DIR and submit them with sbatch (the merge "
      "runs "
      "after every shard succeeded); --resume DIR resubmits only what is missing");
  submit->add_option("capture", a->capture,
                     "Capture file (.kvc.h5), at the same path on the compute nodes")->each(protect_input_value);
  submit->add_option("--grid", a->grid, "Grid JSON (docs/sweeps.md)")->each(protect_input_value);
  submit->add_option("--out", a->out,
                     "New folder for scripts, shard stores, logs and the merged store (shared "
                     "with the nodes)");
  submit
      ->add_option("--shards", a->shards,
                   "Number of shards N = array tasks (1 to the number of cells)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 30));
  submit->add_option("--partition", a->res.partition, "sbatch --partition");
  submit->add_option("--time", a->res.time, "sbatch --time (per shard and for the merge)");
  submit
      ->add_option("--gpus-per-task", a->res.gpus_per_task, "sbatch --gpus-per-task for the shards")
      ->check(CLI::Range(0, 1 << 16));
  submit
      ->add_option("--cpus-per-task", a->res.cpus_per_task,
                   "sbatch --cpus-per-task for the shards; each shard runs this many cells at a "
                   "time (default 1)")
      ->check(CLI::Range(1, 1 << 16));
  submit->add_option("--mem", a->res.mem, "sbatch --mem");
  submit
      ->add_option(
          "--sbatch-arg", a->res.sbatch_args,
          "Extra sbatch argument for both jobs, one per flag: --sbatch-arg=--qos=high (repeatable)")
      ->allow_extra_args(false);
  submit->add_flag(
      "--allow-failed-cells", a->allow_failed_cells,
      "Merge cells stored as failures instead of failing their shard (and cancelling the merge)");
  submit->add_option("--kvwb", a->kvwb, "kvwb binary the scripts run (default: this one)");
  add_model_args(*submit, a->model, false);
  submit->add_option("--context", a->context, "End-to-end: prefill tokens C (as kvwb sweep)");
  submit->add_option("--continuation", a->continuation,
                     "End-to-end: teacher-forced tokens N (as kvwb sweep)");
  submit->add_option("--passages", a->passages, "End-to-end: passages P (as kvwb sweep)");
  submit->add_option("--selection", a->selection, "End-to-end: passage selection spread | first (as kvwb sweep)")
      ->check(CLI::IsMember({"spread", "first"}));
  submit->add_option("--resamples", a->resamples, "End-to-end: bootstrap resamples (as kvwb sweep)")
      ->check(CLI::Range(100, 1000000));
  submit->add_option("--bootstrap-seed", a->bootstrap_seed, "End-to-end: bootstrap seed (as kvwb sweep)");
  submit->add_option("--bundle", a->bundle, "Calibration bundle every cell uses (as kvwb sweep --bundle)");
  submit->add_flag("--dry-run", a->dry_run,
                   "Print the scripts and the sbatch commands; write and submit nothing");
  submit->add_flag("--no-submit", a->no_submit, "Write the folder and scripts but submit nothing");
  submit->add_option(
      "--resume", a->resume,
      "Resubmit the shards of DIR with missing cells (they skip stored cells) and a merge job");
  submit->callback([a, submit] { run_submit(*a, *submit); });

  auto st = std::make_shared<StatusArgs>();
  auto* status = slurm->add_subcommand("status",
                                       "Cells done / failed / pending per shard (from the shard "
                                       "stores) and the jobs' states (squeue, sacct)");
  status->add_option("dir", st->dir, "Folder written by kvwb slurm submit")->required();
  status->add_option("--json", st->json_out, "Write the status as JSON");
  status->callback([st] { run_status(*st); });
}

}  // namespace kvwb::app
