// kvwb codecs: every codec and its parameters (name, type, range, default, help) — the same
// descriptions the GUI builds its forms from.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "app/cli/cli_common.h"
#include "codec/codec.h"

namespace kvwb::app {

namespace {
const char* type_name(codec::ParamType t) {
  switch (t) {
    case codec::ParamType::kInt: return "int";
    case codec::ParamType::kFloat: return "float";
    case codec::ParamType::kBool: return "bool";
    case codec::ParamType::kChoice: return "choice";
    case codec::ParamType::kTable: return "table";
  }
  return "?";
}
}  // namespace

void add_codecs_command(CLI::App& app) {
  auto json_out = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("codecs", "List the codecs and their parameters");
  cmd->add_flag("--json", *json_out, "Print one JSON object");
  cmd->callback([json_out] {
    nlohmann::json all = nlohmann::json::array();
    for (const auto& name : codec::codec_names()) {
      nlohmann::json params = nlohmann::json::array();
      if (!*json_out) std::printf("%s\n", name.c_str());
      for (const auto& p : codec::codec_params(name)) {
        nlohmann::json pj = {{"name", p.name}, {"type", type_name(p.type)}, {"default", p.default_value},
                             {"help", p.help}};
        if (p.type == codec::ParamType::kInt || p.type == codec::ParamType::kFloat) {
          if (!(p.min == 0 && p.max == 0)) pj["range"] = {p.min, p.max};
        }
        if (!p.choices.empty()) pj["choices"] = p.choices;
        params.push_back(pj);
        if (!*json_out) {
          std::string range;
          if (!p.choices.empty()) {
            for (const auto& c : p.choices) range += (range.empty() ? "" : "|") + c;
          } else if (!(p.min == 0 && p.max == 0)) {
            char b[96];
            std::snprintf(b, sizeof b, "%g..%g", p.min, p.max);
            range = b;
          }
          std::printf("  %-20s %-7s %-22s default %-12s %s\n", p.name.c_str(), type_name(p.type), range.c_str(),
                      p.default_value.empty() ? "(none)" : p.default_value.c_str(), p.help.c_str());
        }
      }
      all.push_back({{"codec", name}, {"params", params}});
    }
    if (*json_out) std::printf("%s\n", nlohmann::json{{"codecs", all}}.dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  });
}

}  // namespace kvwb::app
