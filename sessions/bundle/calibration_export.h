#pragma once
// Writers of the calibration artefacts of bundle-format.md, shared by `kvwb calibrate` and the
// bundle exporter:
//   - Σ_q: sigma_q.safetensors (§2: layer_<l>_chol / inv_chol / sigma, [H_kv, D, D] F32, written
//     layers = full-attention layers in scope with q_pre and not in q_precond_skip_layers) and
//     the sidecar sigma_q.json (§3, with diagnostics of every layer with Σ_q, skipped or not);
//   - Lloyd-Max centroid tables K_b<b>_centroids.f32 / V_b<b>_centroids.f32 (§4), calibrated on
//     the scaled residuals of the runtime encode path (the runner with collect_residuals).
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "codec/math/calibration.h"
#include "io/safetensors.h"
#include "sessions/config/run_config.h"
#include "sessions/run/runner.h"

namespace kvwb::sessions {

/// Σ_q factors of a capture, with everything the two sigma_q files need.
struct SigmaQCalibration {
  std::string capture_file_name;  // base name of the capture (calibration_source)
  std::string model_name;
  int head_dim = 0, num_q_heads = 0, num_kv_heads = 0, num_layers = 0;
  int sequences = 0, tokens = 0;  // S, T
  std::vector<std::string>
      layer_types;  // num_layers entries (full_attention | sliding_attention | not_captured)
  double ridge = codec::kDefaultRidge;
  std::optional<double> target_cond;
  Whitening whitening;  // factors of every full-attention layer with q_pre, skip rule, skipped set
  std::set<int> user_skip;   // user-chosen q_precond_skip_layers
  bool auto_skip = true;     // whether the auto skip rule applies
  std::vector<int> written;  // ascending layers that get tensors
};

/// Computes Σ_q, L, L⁻¹ for every full-attention layer of the capture that has q_pre (through
/// build_whitening with q_precond = "capture"), applies cfg.target_cond, cfg's skip settings
/// and the layers of plan_layers(cfg) as the scope. Throws InvalidArgument when the capture has no
/// q_pre at all.
SigmaQCalibration calibrate_sigma_q(const std::string& capture_path, const RunConfig& cfg);

/// The safetensors file of bundle-format.md §2 (tensors of the written layers).
io::SafeTensorsFile sigma_q_safetensors(const SigmaQCalibration& c);
/// The sidecar of bundle-format.md §3, keys in the spec's order.
nlohmann::ordered_json sigma_q_sidecar(const SigmaQCalibration& c);
/// Writes <dir>/sigma_q.safetensors and <dir>/sigma_q.json atomically (each file).
void write_sigma_q_files(const std::string& dir, const SigmaQCalibration& c);

/// Step 5 of bundle-format.md §4.2: `values` with their canonical indices `index` (same length,
/// ascending); keeps all when there are at most `cap`, else the `cap` values with the smallest
/// keys splitmix(seed ^ TAG_CALIB, i) (ties by smaller i). Returns them in ascending-i order.
std::vector<float> subsample_for_calibration(std::span<const float> values,
                                             std::span<const uint64_t> index, uint64_t seed,
                                             size_t cap = 5'000'000);

/// Result of a 1-D Lloyd-Max fit (steps 6–8).
struct LloydResult {
  std::vector<float> table;  // 2^b ascending f32 centroids
  int iterations = 0;
  bool converged = false;
  double final_max_change = 0;  // Δ of the last iteration
  double mse_gaussian = 0;      // quantiser MSE of the samples with the Gaussian table
  double mse_calibrated = 0;    // … with `table`
};

/// Steps 6–7: starts from the Gaussian table of `bits`, at most `max_iter` iterations of nearest
/// assignment (codec::quantize_nearest on the f32-rounded centroids) and f64 cell means (empty
/// cells keep their value), stopping when Δ < `tol`; then sorts, rounds to f32 and checks the
/// values are finite (NonFiniteInput) and strictly ascending (FormatError naming both entries).
/// Throws InvalidArgument for no samples or bits outside 1..4.
LloydResult lloyd_max_fit(std::vector<float> samples, unsigned bits, int max_iter = 200,
                          double tol = 1e-6);

/// One stream's calibrated table and its report (bundle-format.md §4.2 step 8).
struct CentroidCalibration {
  std::string stream;  // "K" or "V"
  unsigned bits = 0;
  uint64_t seed = 0;
  std::optional<double> outlier_threshold;  // of the stream (base configuration)
  std::vector<int> layers;                  // layers that entered the pool
  uint64_t samples_pooled = 0;              // all coordinates of step 2
  uint64_t samples_outliers = 0;            // dropped by step 3
  uint64_t samples_used = 0;                // after step 5
  LloydResult fit;
};

/// File name of bundle-format.md §4: "K_b3_centroids.f32".
std::string centroid_file_name(const std::string& stream, unsigned bits);

/// Calibrates the table of every stream whose configured codec uses a centroid table
/// (kakeya_pca), with one run of `cfg` through the runner (collect_residuals; the pool holds the
/// layers the layer plan runs with such a codec at the stream's bit width: no boundary layers, no
/// layers an override or the turbo policy gives another codec or width). Throws InvalidArgument
/// when no stream is kakeya_pca or a stream's pool is empty (e.g. block_size larger than the
/// sequences), and the layer's error when a layer-stream failed (e.g. FP16_RANGE).
std::vector<CentroidCalibration> calibrate_centroids(const std::string& capture_path,
                                                     const RunConfig& cfg,
                                                     JobControl* job = nullptr);

/// Like calibrate_centroids, with one table per (stream, bit width) in use (bundle-format.md §10):
/// each pool holds exactly the layers that run the stream's table codec at that width, in
/// ascending width order per stream (K first). A width no layer uses gets no table; the
/// run-level width's table keeps the stream's seed, another width's takes its first layer's.
/// For a configuration with one width per stream this equals calibrate_centroids.
std::vector<CentroidCalibration> calibrate_centroid_widths(const std::string& capture_path,
                                                           const RunConfig& cfg,
                                                           JobControl* job = nullptr);

/// Raw little-endian f32 bytes of a table after validating 2^b finite, strictly ascending values.
std::vector<uint8_t> centroid_file_bytes(std::span<const float> table);
/// Writes centroid_file_bytes(table) atomically.
void write_centroid_file(const std::string& path, std::span<const float> table);
/// Step-8 report: {path, bits, samples_pooled, samples_used, iterations, converged,
/// final_max_change, mse_gaussian, mse_calibrated, …}.
nlohmann::ordered_json centroid_report_json(const CentroidCalibration& c);

}  // namespace kvwb::sessions
