// kvwb backends: what is compiled into this binary and what is present on this machine.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "app/cli/cli_common.h"
#include "sessions/run/backends.h"

namespace kvwb::app {

void add_backends_command(CLI::App& app) {
  auto json_out = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("backends", "List execution backends: compiled, present, devices");
  cmd->add_flag("--json", *json_out, "Print one JSON object");
  cmd->callback([json_out] {
    const auto list = sessions::list_backends();
    if (*json_out) {
      nlohmann::json j = nlohmann::json::array();
      for (const auto& b : list) {
        nlohmann::json devs = nlohmann::json::array();
        for (const auto& d : b.devices)
          devs.push_back({{"name", d.name}, {"total_memory", d.total_memory}, {"free_memory", d.free_memory},
                          {"compute_capability", std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor)},
                          {"driver_version", d.driver_version}, {"runtime_version", d.runtime_version}});
        j.push_back({{"name", b.name}, {"compiled", b.compiled}, {"available", b.available},
                     {"runs_codecs", b.runs_codecs}, {"codecs", b.codecs}, {"detail", b.detail},
                     {"devices", devs}});
        if (!b.simd_path.empty()) j.back()["simd_path"] = b.simd_path;
      }
      std::printf("%s\n", nlohmann::json{{"backends", j}}.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      return;
    }
    for (const auto& b : list) {
      std::printf("%-5s compiled=%s available=%s runs_codecs=%s  %s\n", b.name.c_str(),
                  b.compiled ? "yes" : "no", b.available ? "yes" : "no", b.runs_codecs ? "yes" : "no",
                  b.detail.c_str());
      for (const auto& d : b.devices)
        std::printf("      device: %s, %.1f GiB (%.1f free), compute %d.%d, driver %d\n", d.name.c_str(),
                    d.total_memory / 1073741824.0, d.free_memory / 1073741824.0, d.cc_major, d.cc_minor,
                    d.driver_version);
    }
  });
}

}  // namespace kvwb::app
