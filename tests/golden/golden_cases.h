#pragma once
// Golden container bytes (architecture issue, item 3): fixed (layer, stream) batches run through a
// codec, hashed, and compared with tests/golden/golden.txt. They are the oracle every execution
// backend is held to. This part depends on codec/ alone (no HDF5, no GoogleTest), so a device
// self-test can reuse it; test_golden.cpp adds the real-capture batches and the file handling.
// Each batch runs twice: unit by unit through the Codec interface (the reference the goldens were
// generated with, before the execution seam existed) and as one batch through an Executor.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "codec/codec.h"
#include "codec/executor.h"
#include "codec/format/tensor.h"

namespace kvwb::golden {

/// One (layer, stream) batch exactly as the runner hands it to the codec: every sequence and kv
/// head of one layer's stream, the codec with its parameters, and the run-level block settings.
struct Batch {
  std::string name;  // unique, no spaces: "codec:params:D128:K[:pooled][:bs64][:weights][:whiten]"
  std::string codec;
  codec::ParamMap params;
  codec::CodecResources resources;
  codec::Stream stream = codec::Stream::kK;
  codec::BlockRows block_rows = codec::BlockRows::kPerHead;
  uint32_t block_size = 128;
  uint32_t layer = 0;
  uint8_t domain_flags = 0;    // container domain_flags before whitening (kDomainWhitened is added)
  codec::Tensor4 rows;         // [S, H, T, D] f32 in the stream's domain
  std::vector<float> weights;  // [S, H, T] row weights (codecs that take them), or empty
  std::vector<float> L, L_inv;  // [H, D, D] row-major Q-preconditioning factors, or empty
};

/// What a batch produced: every unit's container in unit order (s-major, then kv head; pooled:
/// one unit per sequence), and the decoded rows in the original (un-whitened) domain.
struct Outcome {
  std::vector<uint8_t> containers;  // the KVCB containers of all units, concatenated
  codec::Tensor4 decoded;           // [S, H, T, D]
};

/// A named batch built on demand (inputs are made only when the case runs).
struct Case {
  std::string name;
  std::function<Batch()> make;
};

/// The synthetic cases: every codec and the parameter sets that matter, on inputs drawn from the
/// project RNG (codec-kakeya.md §13.6 generator), D = 64 and 128 (96 for Besicovitch g = 3),
/// S = 2 sequences × H = 2 kv heads × T = 300 tokens (not a multiple of any block size).
std::vector<Case> synthetic_cases();

/// Runs a batch the way the runner did before the execution seam existed: one codec per batch,
/// unit by unit (gather, optional whitening, encode, decode from the bytes alone, un-whiten,
/// scatter). Codec errors propagate.
Outcome run_units(const Batch& b);

/// Runs a batch through an execution backend in one call (codec/executor.h). Must give the same
/// Outcome as run_units, for every backend and thread count.
Outcome run_executor(const Batch& b, const codec::Executor& executor);

/// A deterministic lower-triangular Q-preconditioning factor per head and its inverse (forward
/// substitution in f64), [H, D, D] each; no eigensolver, so it is the same on every machine.
void synthetic_whitening(size_t heads, size_t d, uint64_t seed, std::vector<float>& L,
                         std::vector<float>& L_inv);

}  // namespace kvwb::golden
