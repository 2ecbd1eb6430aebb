#pragma once
// Options shared by the commands that run a model (capture, eval, proxy-truth): the model path,
// an optional tokenizer override, and the text (tokenised by the model's tokenizer) or
// pre-tokenised ids.
#include <string>
#include <vector>

#include "base/errors.h"
#include "model/loader.h"

namespace CLI {
class App;
}

namespace kvwb::app {

struct ModelArgs {
  std::string model, tokenizer, text, ids;
};

/// Registers --model (required unless `model_required` is false), --tokenizer, --text and --ids.
void add_model_args(CLI::App& cmd, ModelArgs& a, bool model_required = true);

/// Text token ids (no BOS): --ids as given, or --text tokenised with the model's tokenizer.
/// Throws InvalidArgument when neither (or both) is given or the model has no tokenizer.
std::vector<int32_t> text_tokens(const ModelArgs& a, const model::LoadedModel& m);

/// The text or ids file given.
std::string text_file(const ModelArgs& a);

/// Runs `f` (which builds something from the text, e.g. an Evaluator); an InvalidArgument it
/// throws about the text (too short for the protocol) is rethrown naming the text file.
template <class F>
auto with_text_file(const ModelArgs& a, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(text_file(a) + ": " + e.what());
  }
}

/// "FILE (N tokens)" for the capture's text_source attribute and reports.
std::string text_source_text(const ModelArgs& a, size_t n_tokens);

}  // namespace kvwb::app
