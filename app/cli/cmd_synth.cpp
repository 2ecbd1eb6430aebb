// `kvwb synth OUT.kvc.h5`: writes the deterministic SYNTHETIC demo capture (docs/demo-capture.md).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <memory>

#include "app/cli/cli_common.h"
#include "io/synthetic_capture.h"

namespace kvwb::app {

void add_synth_command(CLI::App& app) {
  struct Args {
    std::string out;
    io::DemoCaptureOptions opt;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "synth",
      "Write a deterministic SYNTHETIC capture (.kvc.h5) that resembles real KV statistics");
  cmd->add_option("OUT", args->out, "Output capture file (.kvc.h5), written atomically")
      ->required();
  cmd->add_option("--layers", args->opt.layers, "Number of layers")->capture_default_str();
  cmd->add_option("--kv-heads", args->opt.kv_heads, "KV heads H_kv")->capture_default_str();
  cmd->add_option("--q-heads", args->opt.q_heads, "Query heads H_q (a multiple of H_kv)")
      ->capture_default_str();
  cmd->add_option("--head-dim", args->opt.head_dim, "Head dimension D (even, >= 8)")
      ->capture_default_str();
  cmd->add_option("--seqs", args->opt.seqs, "Sequences S")->capture_default_str();
  cmd->add_option("--tokens", args->opt.tokens, "Tokens per sequence T")->capture_default_str();
  cmd->add_option("--seed", args->opt.seed, "Seed of the project RNG")->capture_default_str();
  cmd->callback([args] {
    const auto& o = args->opt;
    io::validate_demo_options(o);
    const auto t0 = std::chrono::steady_clock::now();
    {
      TerminalJob job("kvwb synth");
      io::write_demo_capture(args->out, o, &job.control());
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf(
        "wrote %s: SYNTHETIC capture, %d layers, %d query / %d KV heads, head_dim %d, "
        "%d sequences x %d tokens, seed %llu (%.2f s)\n",
        args->out.c_str(), o.layers, o.q_heads, o.kv_heads, o.head_dim, o.seqs, o.tokens,
        static_cast<unsigned long long>(o.seed), secs);
  });
}

}  // namespace kvwb::app
