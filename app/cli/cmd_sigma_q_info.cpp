// kvwb sigma-q-info: conditioning, max|L| and the skip rule of a Σ_q safetensors file
// (bundle-format.md §2, metrics.md §5).
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>

#include "app/cli/cli_common.h"
#include "io/atomic_file.h"
#include "sessions/analysis/analysis.h"

namespace kvwb::app {

namespace {

struct SigmaQInfoArgs {
  std::string file, json_out;
  bool quiet = false;
};

void run(const SigmaQInfoArgs& a) {
  const sessions::SigmaQFileInfo info = sessions::sigma_q_file_info(a.file);
  if (!a.json_out.empty())
    io::write_file_atomic(a.json_out, sessions::sigma_q_file_info_to_json(info).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  if (a.quiet) return;
  std::printf("%s: %zu (layer, kv head) pairs, H_kv=%d, D=%d\n", a.file.c_str(), info.pairs.size(),
              info.n_kv_heads, info.head_dim);
  std::printf("%-5s %-4s %12s %9s %12s %9s\n", "layer", "head", "cond(LLt)", "cond(L)", "cond(S)",
              "max|L|");
  for (const auto& p : info.pairs)
    std::printf("%-5d %-4d %12s %9s %12s %9s\n", p.layer, p.kv_head, format_number(p.cond, "%.2f").c_str(),
                format_number(std::sqrt(p.cond), "%.2f").c_str(), format_number(p.cond_raw, "%.4g").c_str(),
                format_number(p.max_abs_L, "%.4f").c_str());
  std::printf("cond(L Lt): min %s / median %s / max %s\n", format_number(info.cond_min, "%.2f").c_str(),
              format_number(info.cond_median, "%.2f").c_str(), format_number(info.cond_max, "%.2f").c_str());
  std::printf("cond(L):    min %s / median %s / max %s\n",
              format_number(std::sqrt(info.cond_min), "%.2f").c_str(),
              format_number(std::sqrt(info.cond_median), "%.2f").c_str(),
              format_number(std::sqrt(info.cond_max), "%.2f").c_str());
  std::printf("cond(S) raw: min %s / median %s / max %s\n", format_number(info.cond_raw_min, "%.4g").c_str(),
              format_number(info.cond_raw_median, "%.4g").c_str(), format_number(info.cond_raw_max, "%.4g").c_str());
  std::printf("skip rule (max|L| > 2 x median): median of per-layer max|L| = %s\n",
              format_number(info.rule.median, "%.4f").c_str());
  for (const auto& [l, m] : info.rule.m)
    std::printf("  layer %-3d max|L| %9s  ratio %6s%s\n", l, format_number(m, "%.4f").c_str(),
                format_number(info.rule.median > 0 ? m / info.rule.median : NAN, "%.3f").c_str(),
                info.rule.skip.at(l) ? "  SKIP" : "");
  std::printf("skip_layers: [");
  for (size_t i = 0; i < info.skip_layers.size(); ++i)
    std::printf("%s%d", i ? ", " : "", info.skip_layers[i]);
  std::printf("]\n");
}

}  // namespace

void add_sigma_q_info_command(CLI::App& app) {
  auto args = std::make_shared<SigmaQInfoArgs>();
  auto* cmd = app.add_subcommand("sigma-q-info",
                                 "Conditioning, max|L| and skip rule of a Σ_q safetensors file");
  add_required_input(*cmd, "file", args->file,
                     "Σ_q file (.safetensors with layer_<l>_chol / inv_chol [/ sigma])");
  cmd->add_option("--json", args->json_out, "Write the summary JSON here (atomic)");
  cmd->add_flag("--quiet,-q", args->quiet, "Do not print the table");
  cmd->callback([args] { run(*args); });
}

}  // namespace kvwb::app
