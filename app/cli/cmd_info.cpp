#include <CLI/CLI.hpp>

#include "app/cli/cli_common.h"

namespace kvwb::app {
void add_info_command(CLI::App& app) { app.add_subcommand("info", "(being written)"); }
}  // namespace kvwb::app
