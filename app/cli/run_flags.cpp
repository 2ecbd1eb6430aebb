#include "app/cli/run_flags.h"

#include "io/capture.h"
#include "sessions/run/runner.h"

#include <CLI/CLI.hpp>
#include <fstream>
#include <sstream>

#include "app/cli/cli_common.h"
#include "codec/codec.h"
#include "base/errors.h"
#include "io/atomic_file.h"
#include "sessions/config/run_options.h"

namespace kvwb::app {

void add_run_flags(CLI::App& cmd, RunFlags& f) {
  cmd.add_option("--config", f.config_file, "Run configuration JSON (docs/run-config.md); flags override it")->each(protect_input_value);
  cmd.add_option("--k-codec", f.k_codec, "K stream codec (kakeya_pca, besicovitch, turbo2/3/4, q8_0, q4_0, q4_1, "
                                         "q5_0, q5_1, iq4_nl, kivi, fp8_e4m3, bf16)");
  cmd.add_option("--v-codec", f.v_codec, "V stream codec (same choices)");
  cmd.add_option("--bits-k", f.bits_k, "K bit width (kakeya_pca bit_width, kivi bits, besicovitch magnitude_bits)");
  cmd.add_option("--bits-v", f.bits_v, "V bit width");
  cmd.add_option("--block-size", f.block_size, "Rows per block, run-level (default 512)");
  cmd.add_option("--block-rows", f.block_rows, "per_head | pooled_heads (run-level)");
  cmd.add_option("--pca", f.pca, "Kakeya PCA: exact | rsvd");
  cmd.add_option("--rsvd-rank", f.rsvd_rank, "Kakeya randomized-PCA target rank");
  cmd.add_option("--variance-ratio", f.variance_ratio, "Kakeya PCA variance ratio (clamped to [0,1])");
  cmd.add_option("--kmeans-k", f.kmeans_k, "Kakeya K-means centres");
  cmd.add_option("--outliers-k", f.outliers_k, "K outlier threshold T (Kakeya)");
  cmd.add_option("--outliers-v", f.outliers_v, "V outlier threshold T (Kakeya)");
  cmd.add_option("--skeleton-dtype", f.skeleton_dtype, "Kakeya skeleton dtype: fp16 | bf16 | fp32");
  cmd.add_flag("--share-basis-v", f.share_basis_v, "Kakeya V: one PCA basis per unit (not streaming-safe)");
  cmd.add_option("--centroids-k", f.centroids_k, "Calibrated Lloyd-Max table (.f32) for K (Kakeya)")->each(protect_input_value);
  cmd.add_option("--centroids-v", f.centroids_v, "Calibrated Lloyd-Max table (.f32) for V (Kakeya)")->each(protect_input_value);
  cmd.add_option("--q-precond", f.q_precond, "Q-preconditioning: a Σ_q safetensors FILE, or 'capture' to "
                                             "calibrate from the capture's q_pre")->each(protect_input_value);
  cmd.add_option("--q-precond-skip", f.q_precond_skip, "Extra layers kept unwhitened, e.g. 0,13");
  cmd.add_option("--target-cond", f.target_cond, "Tikhonov re-regularisation target cond(L) (> 1)");
  cmd.add_option("--boundary", f.boundary, "Boundary layers kept bf16, e.g. 0,1,26,27 or 0-1");
  cmd.add_option("--layers", f.layers, "Layers to run (default: every full-attention layer)");
  cmd.add_option("--k-domain", f.k_domain, "K domain the codec sees: pre_rope | post_rope");
  cmd.add_option("--turbo-policy", f.turbo_policy, "TurboQuant fork policy: none | fork_auto | mode1|2|5|6|7");
  cmd.add_option("--threads", f.threads, "Worker threads (0 = all cores); results do not depend on it");
  cmd.add_option("--seed", f.seed, "Seed of every randomised codec stage (default 0xCAFEBABE)");
  cmd.add_option("--k-param", f.k_params, "Any K codec parameter as name=value (repeatable)");
  cmd.add_option("--v-param", f.v_params, "Any V codec parameter as name=value (repeatable)");
  cmd.add_flag("--no-attention", f.no_attention, "Skip the attention-aware metrics");
  cmd.add_option("--attn-sample", f.attn_sample,
                 "Attention metrics on N sampled query positions per (sequence, q head), or 'all' for the "
                 "exact ones (default 256)");
  cmd.add_option("--backend", f.backend, "cpu | cuda | auto (auto falls back to cpu and says so)");
}

bool has_codec_flags(const RunFlags& f) {
  return !f.config_file.empty() || !f.k_codec.empty() || !f.v_codec.empty() || f.bits_k || f.bits_v || f.block_size ||
         f.rsvd_rank || f.kmeans_k || f.variance_ratio || f.outliers_k || f.outliers_v || !f.pca.empty() ||
         !f.skeleton_dtype.empty() || !f.block_rows.empty() || !f.k_domain.empty() || !f.q_precond.empty() ||
         !f.boundary.empty() || !f.turbo_policy.empty() || !f.backend.empty() || !f.centroids_k.empty() ||
         !f.centroids_v.empty() || f.seed || f.share_basis_v || f.no_attention || !f.k_params.empty() ||
         !f.v_params.empty() || !f.attn_sample.empty();
}

sessions::RunConfig build_run_config(const RunFlags& f, const sessions::RunConfig* base) {
  sessions::RunConfig c = base ? *base : sessions::RunConfig{};
  if (!f.config_file.empty()) {
    c = sessions::run_config_from_json(read_json_file(f.config_file), f.config_file);
  }
  // The flags become options of the core's vocabulary (sessions/run_options.h), so the CLI,
  // sweep grids and the GUI share one mapping.
  nlohmann::json o = nlohmann::json::object();
  if (!f.k_codec.empty()) o["k_codec"] = f.k_codec;
  if (!f.v_codec.empty()) o["v_codec"] = f.v_codec;
  if (f.bits_k) o["bits_k"] = *f.bits_k;
  if (f.bits_v) o["bits_v"] = *f.bits_v;
  if (f.block_size) o["block_size"] = *f.block_size;
  if (!f.block_rows.empty()) o["block_rows"] = f.block_rows;
  if (!f.pca.empty()) o["pca"] = f.pca;
  if (f.rsvd_rank) o["rsvd_rank"] = *f.rsvd_rank;
  if (f.variance_ratio) o["variance_ratio"] = *f.variance_ratio;
  if (f.kmeans_k) o["kmeans_k"] = *f.kmeans_k;
  if (f.outliers_k) o["outliers_k"] = *f.outliers_k;
  if (f.outliers_v) o["outliers_v"] = *f.outliers_v;
  if (!f.skeleton_dtype.empty()) o["skeleton_dtype"] = f.skeleton_dtype;
  if (f.share_basis_v) o["share_basis_v"] = true;
  if (f.seed) o["seed"] = *f.seed;
  if (!f.centroids_k.empty()) o["centroids_k"] = f.centroids_k;
  if (!f.centroids_v.empty()) o["centroids_v"] = f.centroids_v;
  if (!f.k_params.empty()) o["k_param"] = f.k_params;
  if (!f.v_params.empty()) o["v_param"] = f.v_params;
  if (!f.q_precond.empty()) o["q_precond"] = f.q_precond;
  if (!f.q_precond_skip.empty()) o["q_precond_skip"] = f.q_precond_skip;
  if (f.target_cond) o["target_cond"] = *f.target_cond;
  if (!f.boundary.empty()) o["boundary"] = f.boundary;
  if (!f.layers.empty()) o["layers"] = f.layers;
  if (!f.k_domain.empty()) o["k_domain"] = f.k_domain;
  if (!f.turbo_policy.empty()) o["turbo_policy"] = f.turbo_policy;
  if (f.threads) o["threads"] = *f.threads;
  if (!f.backend.empty()) o["backend"] = f.backend;
  if (f.no_attention) o["no_attention"] = true;
  if (!f.attn_sample.empty()) o["attn_sample"] = f.attn_sample;
  return sessions::apply_run_options(c, o, sessions::kCommandLineSource);
}

std::string fit_default_block_size(const RunFlags& f, sessions::RunConfig& cfg, const std::string& capture) {
  if (f.block_size || !f.config_file.empty()) return "";
  const io::CaptureReader reader(capture);
  return sessions::fit_block_size(cfg, reader.info());
}

}  // namespace kvwb::app
