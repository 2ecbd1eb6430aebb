#include <CLI/CLI.hpp>

#include "app/cli/cli_common.h"

namespace kvwb::app {
void add_synth_command(CLI::App& app) { app.add_subcommand("synth", "(being written)"); }
}  // namespace kvwb::app
