#pragma once
// Shared pieces of the kvwb command-line tool: command registration, exit codes, progress bars.
// Exit codes (decisions.md #7): 0 success, 1 data or runtime error, 2 usage error, 130 cancelled.
#include <atomic>
#include <chrono>
#include <memory>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "sessions/run/runner.h"

namespace CLI {
class App;
class Option;
}

namespace kvwb::app {

inline constexpr int kExitOk = 0;
inline constexpr int kExitData = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitCancelled = 130;

// One registration function per command file (cmd_<name>.cpp).
void add_info_command(CLI::App& app);
void add_synth_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_backends_command(CLI::App& app);
void add_codecs_command(CLI::App& app);
void add_capture_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_proxy_truth_command(CLI::App& app);
void add_analyze_command(CLI::App& app);
void add_sigma_q_info_command(CLI::App& app);
void add_calibrate_command(CLI::App& app);
void add_export_bundle_command(CLI::App& app);
void add_bundle_check_command(CLI::App& app);
void add_sweep_command(CLI::App& app);
void add_pareto_command(CLI::App& app);
void add_boundary_commands(CLI::App& app);  // recommend-boundary, plan
void add_store_commands(CLI::App& app);     // store merge, store diff

/// The result cache of `kvwb run`/`sweep` (sessions/run/result_cache.h): the user's cache folder
/// ($KVWB_CACHE_DIR, $XDG_CACHE_HOME/kvwb/results or ~/.cache/kvwb/results), shared with the GUI
/// and other processes; null with --no-cache.
std::unique_ptr<sessions::ResultCache> cli_result_cache(bool no_cache);
void add_slurm_commands(CLI::App& app);     // slurm submit, slurm status
void add_report_command(CLI::App& app);
void add_transfer_command(CLI::App& app);

/// A progress bar on stderr, drawn only when stderr is a terminal; silent otherwise.
class ProgressBar {
 public:
  ProgressBar(std::string label, size_t total);
  ~ProgressBar();
  /// Sets the number of finished units (thread-safe to call from one thread at a time).
  void update(size_t done, const std::string& detail = {});
  void set_total(size_t total) { total_ = total; }
  void finish();

 private:
  std::string label_;
  size_t total_;
  bool tty_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

/// A JobControl wired to a terminal progress bar (drawn only on a TTY) and to Ctrl-C:
/// a watcher thread turns SIGINT into the job's cooperative cancel. Destruction stops the
/// watcher and clears the bar, so scope it to the long call and print afterwards.
class TerminalJob {
 public:
  explicit TerminalJob(std::string label);
  ~TerminalJob();
  TerminalJob(const TerminalJob&) = delete;
  TerminalJob& operator=(const TerminalJob&) = delete;
  JobControl& control() noexcept { return job_; }

 private:
  JobControl job_;
  ProgressBar bar_;
  std::atomic<bool> stop_{false};
  std::thread watcher_;
};

/// CLI11 `->each` callback of an option naming an input file or folder: protects it from every
/// output of the command (io::protect_input), so no output ever replaces an input.
void protect_input_value(const std::string& path);

/// A required option (a positional when `name` has no dash) naming an input file or folder,
/// protected as an input (protect_input_value).
CLI::Option* add_required_input(CLI::App& cmd, const std::string& name, std::string& path,
                                const std::string& description);

/// The required positional `capture` of a command: a capture file (.kvc.h5), protected as an input.
void add_capture_arg(CLI::App& cmd, std::string& capture);

/// printf-style `format` of `v` for tables; "n/a" when `v` is NaN or infinite.
std::string format_number(double v, const char* format = "%.4g");

/// The JSON document in `path` (at most `max_bytes`); throws InvalidArgument "PATH: not valid
/// JSON" followed by `expected` (e.g. " (expected a sweep grid, docs/sweeps.md)") when it is not.
nlohmann::json read_json_file(const std::string& path, const std::string& expected = {},
                              uint64_t max_bytes = UINT64_MAX);
/// read_json_file's `expected` for a sweep grid.
inline constexpr const char* kSweepGridExpected = " (expected a sweep grid, docs/sweeps.md)";

/// Set by SIGINT/SIGTERM while a TerminalJob runs; long commands poll it through its cancel token.
bool interrupted() noexcept;
/// SIGINT and SIGTERM: the first cancels the running TerminalJob cooperatively (exit 130, finished
/// work kept); with no TerminalJob running, or on a second signal, the process exits 130 at once.
void install_interrupt_handler();

}  // namespace kvwb::app
