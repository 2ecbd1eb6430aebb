// kvwb — the headless KV Workbench: the same core as the GUI, driven from the command line.
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <exception>

#include "app/cli/cli_common.h"
#include "base/allocator.h"
#include "base/errors.h"
#include "codec/simd/dispatch.h"

int main(int argc, char** argv) {
  using namespace kvwb::app;
  kvwb::keep_freed_memory_for_reuse();
  install_interrupt_handler();  // first: Ctrl-C at any point gets the same policy
  CLI::App app{"kvwb: KV Workbench, analysis of LLM KV-cache codecs on captured tensors"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("kvwb 0.1.0"));
  add_info_command(app);
  add_synth_command(app);
  add_run_command(app);
  add_backends_command(app);
  add_codecs_command(app);
  add_capture_command(app);
  add_eval_command(app);
  add_proxy_truth_command(app);
  add_analyze_command(app);
  add_sigma_q_info_command(app);
  add_calibrate_command(app);
  add_export_bundle_command(app);
  add_bundle_check_command(app);
  add_sweep_command(app);
  add_pareto_command(app);
  add_boundary_commands(app);
  add_store_commands(app);
  add_slurm_commands(app);
  add_report_command(app);
  add_transfer_command(app);
  try {
    kvwb::codec::simd::active_path();  // a bad or unsupported KVWB_SIMD fails before any work
    app.parse(argc, argv);
    // From here on Ctrl-C takes its default action (the process ends by SIGINT, which a shell
    // reports as 130): a signal between the check below and the exit can no longer turn into 0.
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
    if (interrupted()) {
      // Ctrl-C came while a job ran its last, non-cancellable step: it finished, but the user asked
      // to stop, so the exit says so. What it wrote is complete (every write is atomic).
      std::fprintf(stderr, "error[CANCELLED]: interrupted as the work finished; what it wrote is complete\n");
      return kExitCancelled;
    }
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::fprintf(stderr, "error[INVALID_ARGUMENT]: %s\nRun with --help for more information.\n", e.what());
    return kExitUsage;
  } catch (const kvwb::Cancelled& e) {
    std::fprintf(stderr, "error[%s]: %s\n", e.code().c_str(), e.what());
    return kExitCancelled;
  } catch (const kvwb::InvalidArgument& e) {
    std::fprintf(stderr, "error[%s]: %s\n", e.code().c_str(), e.what());
    return kExitUsage;
  } catch (const kvwb::Error& e) {
    std::fprintf(stderr, "error[%s]: %s\n", e.code().c_str(), e.what());
    return kExitData;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error[INTERNAL]: %s\n", e.what());
    return kExitData;
  }
  return kExitOk;
}
