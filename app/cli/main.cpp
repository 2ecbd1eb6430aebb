// kvwb — the headless KV Workbench: the same core as the GUI, driven from the command line.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "app/cli/cli_common.h"
#include "base/errors.h"

int main(int argc, char** argv) {
  using namespace kvwb::app;
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
  install_interrupt_handler();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help / the parse error
    return rc == 0 ? kExitOk : kExitUsage;
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
