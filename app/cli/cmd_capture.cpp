// kvwb capture: run a model over text and write its attention tensors as a capture (.kvc.h5).
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "app/cli/cli_common.h"
#include "app/cli/model_args.h"
#include "base/errors.h"
#include "sessions/eval/eval.h"

namespace kvwb::app {

void add_model_args(CLI::App& cmd, ModelArgs& a, bool model_required) {
  cmd.add_option("--model", a.model,
                 "Model: a folder with config.json + manifest.json (tiny1m layout), a Hugging Face folder "
                 "(config.json + model.safetensors), or a llama2.c .bin checkpoint")->each(protect_input_value)
      ->required(model_required);
  cmd.add_option("--tokenizer", a.tokenizer, "Tokenizer override: tokens.json or llama2.c tokenizer.bin")->each(protect_input_value);
  cmd.add_option("--text", a.text, "UTF-8 text file (CRLF read as LF), tokenised with the model's tokenizer")->each(protect_input_value);
  cmd.add_option("--ids", a.ids, "Pre-tokenised text: decimal token ids separated by spaces, commas or newlines")->each(protect_input_value);
}

std::vector<int32_t> text_tokens(const ModelArgs& a, const model::LoadedModel& m) {
  if (a.text.empty() == a.ids.empty()) throw InvalidArgument("give exactly one of --text FILE and --ids FILE");
  if (!a.ids.empty()) {
    std::vector<int32_t> ids = model::read_token_ids(a.ids);
    const int vocab = m.model.config().vocab_size;
    for (size_t i = 0; i < ids.size(); ++i)
      if (ids[i] < 0 || ids[i] >= vocab)
        throw FormatError(a.ids + ": token id " + std::to_string(ids[i]) + " (the " + std::to_string(i + 1) +
                          "th id) is outside the model's vocabulary 0.." + std::to_string(vocab - 1));
    return ids;
  }
  if (!m.tokenizer)
    throw InvalidArgument(a.model + " has no tokenizer (tokens.json or tokenizer.bin); pass --tokenizer FILE or "
                          "pre-tokenised --ids FILE");
  return m.tokenizer->encode(model::read_text_file(a.text));
}

std::string text_file(const ModelArgs& a) { return a.text.empty() ? a.ids : a.text; }

std::string text_source_text(const ModelArgs& a, size_t n_tokens) {
  const std::string f = std::filesystem::path(a.text.empty() ? a.ids : a.text).filename().string();
  return f + " (" + std::to_string(n_tokens) + " tokens" + (a.text.empty() ? ", pre-tokenised" : "") + ")";
}

namespace {

struct CaptureArgs {
  ModelArgs model;
  int seqs = 16, tokens = 256, gzip = 4;
  std::string out, model_name;
  bool float32 = false;
};

void run_capture(const CaptureArgs& a) {
  const model::LoadedModel m = model::load_model(a.model.model, a.model.tokenizer);
  const std::vector<int32_t> toks = text_tokens(a.model, m);
  sessions::ModelCaptureOptions o;
  o.sequences = a.seqs;
  o.tokens = a.tokens;
  o.float16 = !a.float32;
  o.gzip_level = a.gzip;
  o.model_name = a.model_name;
  o.text_source = text_source_text(a.model, toks.size()) + ": " + std::to_string(a.seqs) + " sequences, each BOS (id " +
                  std::to_string(m.model.config().bos_id) + ") then " + std::to_string(a.tokens - 1) +
                  " consecutive text tokens, from text token 0; written by kvwb capture";
  sessions::ModelCaptureResult r;
  {
    TerminalJob job("kvwb capture");
    r = sessions::write_model_capture(m.model, toks, o, a.out, &job.control());
  }
  const auto& c = m.model.config();
  std::printf("model:    %s (%s, %d layers, %d/%d heads, head_dim %d)\n", c.name.c_str(), m.format.c_str(),
              c.num_layers, c.num_heads, c.num_kv_heads, c.head_dim);
  std::printf("captured: %d sequences x %d tokens -> %s\n", a.seqs, a.tokens, a.out.c_str());
  std::printf("nll:      %.6f nats/token over %zu predictions (ppl %.4f)\n", r.nll, r.predictions, std::exp(r.nll));
}

}  // namespace

void add_capture_command(CLI::App& app) {
  auto a = std::make_shared<CaptureArgs>();
  auto* cmd = app.add_subcommand("capture", "Run a model over text and write k_pre, k, v, q_pre, tokens and "
                                            "positions of every layer as a capture (.kvc.h5)");
  add_model_args(*cmd, a->model);
  cmd->add_option("--seqs", a->seqs, "Sequences S (default 16)")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--tokens", a->tokens, "Tokens per sequence T incl. BOS (default 256)")->check(CLI::Range(2, 1 << 24));
  cmd->add_option("--out", a->out, "Output capture file (written atomically)")->required();
  cmd->add_option("--model-name", a->model_name, "model_name attribute (default: the model's name)");
  cmd->add_flag("--float32", a->float32, "Store float32 instead of float16");
  cmd->add_option("--gzip", a->gzip, "gzip level 0..9 (default 4)")->check(CLI::Range(0, 9));
  cmd->callback([a] { run_capture(*a); });
}

}  // namespace kvwb::app
