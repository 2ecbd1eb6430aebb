#include "app/cli/cli_common.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>

#include "base/errors.h"
#include "io/atomic_file.h"
#include "io/durable.h"

namespace kvwb::app {

namespace {
std::atomic<bool> g_interrupted{false};
std::atomic<int> g_cooperative{0};  // live TerminalJobs: a cancel token polls g_interrupted

/// SIGINT / SIGTERM. With a cooperative job running, the first signal asks it to cancel (finished
/// work is kept, exit 130); without one, or on a second signal, the process stops at once with
/// exit 130. Every write a user keeps is atomic, so stopping leaves old or new files, never torn
/// ones; temporaries are removed by the next writer of the same target.
extern "C" void on_signal(int) {
  if (g_cooperative.load() > 0 && !g_interrupted.exchange(true)) return;
  static const char msg[] = "\nerror[CANCELLED]: interrupted; nothing half-written was left behind\n";
  const ssize_t n = ::write(2, msg, sizeof msg - 1);
  (void)n;
  ::_exit(kExitCancelled);
}
}  // namespace

void protect_input_value(const std::string& path) { io::protect_input(path); }

CLI::Option* add_required_input(CLI::App& cmd, const std::string& name, std::string& path,
                                const std::string& description) {
  return cmd.add_option(name, path, description)->each(protect_input_value)->required();
}

void add_capture_arg(CLI::App& cmd, std::string& capture) {
  add_required_input(cmd, "capture", capture, "Capture file (.kvc.h5)");
}

std::string format_number(double v, const char* format) {
  if (!std::isfinite(v)) return "n/a";
  char b[64];
  std::snprintf(b, sizeof b, format, v);
  return b;
}

nlohmann::json read_json_file(const std::string& path, const std::string& expected,
                              uint64_t max_bytes) {
  const auto bytes = io::read_file(path, max_bytes);
  auto j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (j.is_discarded()) throw InvalidArgument(path + ": not valid JSON" + expected);
  return j;
}

bool interrupted() noexcept { return g_interrupted.load(); }
void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

ProgressBar::ProgressBar(std::string label, size_t total)
    : label_(std::move(label)), total_(total), tty_(::isatty(2) == 1),
      start_(std::chrono::steady_clock::now()), last_draw_() {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(size_t done, const std::string& detail) {
  if (!tty_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const int width = 30;
  const double frac = total_ ? static_cast<double>(done) / static_cast<double>(total_) : 1.0;
  const int fill = static_cast<int>(frac * width + 0.5);
  const double secs = std::chrono::duration<double>(now - start_).count();
  std::fprintf(stderr, "\r%s [%.*s%*s] %zu/%zu %5.1fs %s\033[K", label_.c_str(), fill,
               "##############################", width - fill, "", done, total_, secs, detail.c_str());
  std::fflush(stderr);
}

void ProgressBar::finish() {
  if (!tty_ || finished_) return;
  finished_ = true;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
}

TerminalJob::TerminalJob(std::string label) : bar_(std::move(label), 1) {
  g_cooperative.fetch_add(1);
  job_.progress = [this](size_t done, size_t total, const std::string& detail) {
    bar_.set_total(total);
    bar_.update(done, detail);
  };
  watcher_ = std::thread([this] {
    while (!stop_.load()) {
      if (interrupted()) job_.cancel.store(true);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
}

TerminalJob::~TerminalJob() {
  g_cooperative.fetch_sub(1);
  stop_.store(true);
  watcher_.join();
  bar_.finish();
}

std::unique_ptr<sessions::ResultCache> cli_result_cache(bool no_cache) {
  if (no_cache) return nullptr;
  return std::make_unique<sessions::ResultCache>(sessions::default_result_cache_options());
}

}  // namespace kvwb::app
