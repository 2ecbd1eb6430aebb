#pragma once
// The configuration flags of `kvwb run` (shared by run, sweep, export-bundle, eval): they start
// from a RunConfig (default or --config FILE) and override what the user set.
#include <optional>
#include <string>
#include <vector>

#include "sessions/config/run_config.h"

namespace CLI {
class App;
}

namespace kvwb::app {

struct RunFlags {
  std::string config_file;
  std::string k_codec, v_codec;
  std::optional<int> bits_k, bits_v, block_size, rsvd_rank, kmeans_k, threads;
  std::optional<double> variance_ratio, outliers_k, outliers_v, target_cond;
  std::string pca, skeleton_dtype, block_rows, k_domain, q_precond, boundary, layers, turbo_policy, backend;
  std::string centroids_k, centroids_v, q_precond_skip, attn_sample;
  std::optional<std::string> seed;
  bool share_basis_v = false, no_attention = false;
  std::vector<std::string> k_params, v_params;  // name=value
};

/// Whether any flag that shapes the codec configuration was given (everything except --layers,
/// --q-precond-skip, --target-cond and --threads, which `kvwb analyze` uses by itself).
bool has_codec_flags(const RunFlags& f);

/// Registers the configuration flags on a (sub)command.
void add_run_flags(CLI::App& cmd, RunFlags& f);
/// Builds the configuration: --config FILE (else `base`, else the defaults), then each flag that
/// was given. A flag that applies to neither stream's codec is an InvalidArgument naming the flag
/// and the codecs.
sessions::RunConfig build_run_config(const RunFlags& f, const sessions::RunConfig* base = nullptr);
/// The default block size fitted to the capture (sessions::fit_block_size) when neither
/// --block-size nor --config chose it; returns the note that says so ("" when unchanged).
std::string fit_default_block_size(const RunFlags& f, sessions::RunConfig& cfg, const std::string& capture);

}  // namespace kvwb::app
