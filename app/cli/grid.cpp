#include "app/cli/grid.h"

#include "sessions/config/run_options.h"

namespace kvwb::app {

// The grid format and its mapping onto RunConfig live in the core (sessions/run_options.h), so
// `kvwb sweep`, `kvwb proxy-truth` and the GUI read a grid the same way.
std::vector<std::pair<std::string, sessions::RunConfig>> expand_grid_cells(const nlohmann::json& grid,
                                                                           const std::string& source) {
  std::vector<std::pair<std::string, sessions::RunConfig>> out;
  for (auto& cell : sessions::expand_grid(grid, source)) {
    std::string label;
    for (auto it = cell.options.begin(); it != cell.options.end(); ++it)
      label += (label.empty() ? "" : " ") + it.key() + "=" + (it->is_string() ? it->get<std::string>() : it->dump());
    out.emplace_back(label, std::move(cell.config));
  }
  return out;
}

}  // namespace kvwb::app
