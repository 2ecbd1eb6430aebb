#pragma once
// Loading a model for `kvwb capture` / `kvwb eval` (docs/model-in-the-loop.md):
//   (a) a folder with config.json + manifest.json and raw little-endian tensors (the tiny1m
//       layout of data/real/README.md; dtype float32, float16 or bfloat16 per tensor);
//   (b) a llama2.c checkpoint `.bin` (legacy header of 7 int32, or version 1 "ak42" fp32);
//       its RoPE is interleaved, as llama2.c's run.c applies it;
//   (c) a Hugging Face folder (or its model.safetensors) with config.json: Llama, Qwen2 (q/k/v
//       bias) and Qwen3 (q/k norm) naming, F32/F16/BF16 weights, sharded via
//       model.safetensors.index.json.
// The tokenizer comes from tokens.json (any of the folders), or tokenizer.bin (llama2.c) beside
// the checkpoint; `tokenizer_path` overrides both. Every error names the file and the field.
#include <optional>
#include <string>

#include "model/llama.h"
#include "model/tokenizer.h"

namespace kvwb::model {

struct LoadedModel {
  LlamaModel model;
  std::optional<Tokenizer> tokenizer;  // absent when the folder has none (use pre-tokenised ids)
  std::string format;                  // "raw_folder" | "llama2c" | "hf_safetensors"
};

/// Loads a model from `path` (folder or file; see the header comment). `tokenizer_path` ("" =
/// automatic) is a tokens.json or a llama2.c tokenizer.bin. Throws IoError, FormatError,
/// Unsupported (e.g. rope_scaling, quantised llama2.c checkpoints) or InvalidArgument.
LoadedModel load_model(const std::string& path, const std::string& tokenizer_path = "");

/// Reads pre-tokenised ids: whitespace- or comma-separated decimal integers. Throws FormatError.
std::vector<int32_t> read_token_ids(const std::string& path);

}  // namespace kvwb::model
