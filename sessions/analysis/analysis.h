#pragma once
// Capture analysis (metrics.md §4–§6): per (layer, kv head) covariance spectra and d_eff of
// pre-RoPE K, whitened K (K·L) and V; Σ_q conditioning and the skip rule (codec-kakeya.md §8);
// excess kurtosis of the tensors as captured and rotated; outlier rates of the Kakeya scaled
// post-WHT residuals of a configuration (through the runner, i.e. the runtime encode path).
// All statistics in f64. No Qt, no HDF5 headers here.
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "codec/math/calibration.h"
#include "sessions/config/run_config.h"
#include "sessions/run/runner.h"

namespace kvwb::sessions {

/// Variance ratios at which every spectrum reports d_eff (metrics.md §4).
inline constexpr std::array<double, 3> kSpectrumRatios = {0.90, 0.95, 0.99};
/// Outlier thresholds T of metrics.md §6.2 and the Gaussian expectations 2·(1 − Φ(T)).
inline constexpr std::array<double, 4> kOutlierThresholds = {1.5, 2.0, 2.5, 3.0};
/// 2·(1 − Φ(T)) for T in kOutlierThresholds (exact to f64).
std::array<double, 4> gaussian_outlier_rates();

/// Eigen-spectrum of a centred covariance (metrics.md §4).
struct Spectrum {
  std::vector<double> eigenvalues;  // λ_1 ≥ … ≥ λ_D (f64, as computed; may hold tiny negatives)
  std::vector<double> cumulative;    // Σ_{m≤k} max(λ_m,0) / Σ max(λ,0), k = 1..D
  std::array<size_t, 3> d_eff{};     // d_eff at kSpectrumRatios (cumsum rule, K§5.3)
  std::optional<size_t> d_eff_user;  // at AnalysisOptions::user_vr when given
};

/// Spectrum of the eigenvalues `eig_desc` (descending); `user_vr` adds d_eff at that ratio.
Spectrum make_spectrum(std::vector<double> eig_desc, std::optional<double> user_vr = std::nullopt);

/// Excess kurtosis of one tensor slice (metrics.md §6.1); NaN = n/a (m2 = 0).
struct Kurtosis {
  double pooled = 0;            // all N·D entries as one sample
  double per_channel_mean = 0;  // mean over coordinates j of κ(column j); NaN columns ignored
  double per_channel_max = 0;   // max over coordinates
};

/// Kurtosis of rows [n, d] row-major f32.
Kurtosis kurtosis_of_rows(const float* rows, size_t n, size_t d);

/// y = H·x/√D' per row, x zero-padded to D' = next_pow2(d) (normalised Sylvester–Hadamard,
/// no signs): rows [n, d] -> [n, D'] row-major.
std::vector<float> rotate_rows_hadamard(const float* rows, size_t n, size_t d);

/// Statistics of one tensor of one (layer, kv head): rows = all S·T vectors of that head.
struct TensorStats {
  Spectrum spectrum;
  Kurtosis kurtosis;
  std::optional<Kurtosis> rotated_kurtosis;  // of y = H·x/√D' (AnalysisOptions::rotated)
  double max_abs = 0;                        // largest |value|
};

/// Σ_q conditioning of one (layer, kv head) (metrics.md §5), from the f64 factorisation.
struct SigmaQStats {
  double cond_reg = 0;              // cond(Σ_reg) (the bundle sidecar's `condition`)
  double cond_raw = 0;              // cond(Σ_q) unregularised
  double cond_L = 0;                // sqrt(cond(Σ_reg))
  double cond_L_final = 0;          // sqrt(cond(Σ_fin)) after Tikhonov (= cond_L without it)
  double tikhonov_lambda = 0;       // λ of K§8.5 (0 without target_cond)
  double max_abs_L = 0;             // largest |L| entry of the f32 L
  double eig_min = 0, eig_max = 0;  // of Σ_reg
  double sigma_trace = 0, diag_mean = 0, off_diag_max_abs = 0;  // of Σ_q
  double off_diag_ratio = 0;                                    // off_diag_max_abs / diag_mean
};

SigmaQStats sigma_q_stats(const codec::WhiteningFactor& f);

struct HeadAnalysis {
  int kv_head = 0;
  TensorStats k_pre;
  std::optional<TensorStats> k_whitened;  // K_pre · L, when the layer has Σ_q
  TensorStats v;
  std::optional<SigmaQStats> sigma_q;
  bool k_derived = false;  // k_pre was derived by inverse RoPE of stored k
};

struct LayerAnalysis {
  int layer = 0;
  std::string attention = "full";
  bool has_q = false;
  std::vector<HeadAnalysis> heads;
  // Skip rule (K§8.4; only when has_q): m_l, ratio m_l / median, verdict.
  double max_abs_L = 0;
  double skip_ratio = 0;
  bool skip = false;
  double max_abs_whitened = 0;        // largest |K·L| over heads (0 without Σ_q)
  bool whitened_beyond_fp16 = false;  // max_abs_whitened > 65504
};

/// Outlier counts of the scaled post-WHT residuals s of one layer-stream (metrics.md §6.2).
struct OutlierCounts {
  uint64_t values = 0;              // coordinates (all wht_len coordinates of every vector)
  std::array<uint64_t, 4> above{};  // |s| > T for T in kOutlierThresholds
  double kurtosis = 0;              // "codec residual" pooling of metrics.md §6.1
  double rate(size_t i) const {
    return values ? static_cast<double>(above[i]) / static_cast<double>(values) : 0.0;
  }
  void merge(const OutlierCounts& o);
};

struct OutlierLayer {
  int layer = 0;
  std::optional<OutlierCounts> k, v;  // only for streams coded by kakeya_pca in that layer
};

/// Outlier rates of a configuration (the would-be rates when it stores no outliers).
struct OutlierRates {
  nlohmann::json config;  // canonical configuration
  std::vector<OutlierLayer> layers;
  OutlierCounts k_total, v_total;
  bool has_k = false, has_v = false;
};

/// Counts |s| > T over a sample of scaled residuals.
OutlierCounts count_outliers(const float* s, size_t n);

/// Runs `cfg` on the capture with RunOptions::collect_residuals (attention metrics off: they do
/// not change the residuals) and counts the outliers per layer and stream. Throws what the runner
/// throws; a failed layer-stream (e.g. FP16_RANGE) is an error naming it.
OutlierRates residual_outlier_rates(const std::string& capture_path, const RunConfig& cfg,
                                    JobControl* job = nullptr);

/// Outlier rates of the scaled residuals a run collected (RunOptions::collect_residuals); streams
/// not coded by kakeya_pca are absent. A failed stream throws its error, or is left out when
/// `skip_failed` (the GUI shows the other layers).
OutlierRates outlier_rates_from_run(const RunResult& run, bool skip_failed);

struct AnalysisOptions {
  std::vector<int> layers;            // empty = every layer of the capture
  std::optional<double> user_vr;      // an extra d_eff ratio
  std::optional<double> target_cond;  // Tikhonov re-regularisation shown before/after (K§8.5)
  double ridge = codec::kDefaultRidge;
  std::vector<int> user_skip_layers;  // reported as user-skipped next to the auto rule
  bool rotated = true;                // kurtosis of the rotated tensor as well
  int threads = 0;
};

struct AnalysisResult {
  std::string capture_file;
  std::string model_name;
  int sequences = 0, tokens = 0, num_query_heads = 0, num_kv_heads = 0, head_dim = 0,
      num_layers = 0;
  double ridge = codec::kDefaultRidge;
  std::optional<double> target_cond;
  std::vector<LayerAnalysis> layers;
  double skip_median = 0;        // median of m_l over the layers with Σ_q
  std::vector<int> skip_layers;  // auto-skipped layers
  std::vector<int> user_skip_layers;
  std::optional<OutlierRates> outliers;
};

/// Analyses a capture layer by layer (one layer in memory at a time), the (layer, kv head) pairs
/// of a layer on the thread pool. The skip rule uses every layer with q_pre that is not sliding
/// (decisions.md #4), whatever `opt.layers` selects. Cancel via job->cancel (throws Cancelled).
AnalysisResult analyze_capture(const std::string& capture_path, const AnalysisOptions& opt,
                               JobControl* job = nullptr);

/// JSON of an analysis: {capture, model_name, shape…, summary, skip_rule, layers: [{layer, …,
/// heads: [{kv_head, sigma_q_cond, sigma_q_cond_raw, max_abs_L, skip, k_pre_d_eff_95, …}]}],
/// outlier_rates?}. Non-finite numbers are written as null.
nlohmann::json analysis_to_json(const AnalysisResult& r);
/// One CSV row per (layer, kv head) with the scalar columns of the JSON.
std::string analysis_to_csv(const AnalysisResult& r);

/// Summary of a Σ_q safetensors file (bundle-format.md §2) through load_whitening_file_any.
struct SigmaQPair {
  int layer = 0, kv_head = 0;
  double cond = 0;      // cond(L·Lᵀ) = cond(Σ_reg)
  double cond_raw = 0;  // cond(Σ_q) when the file has layer_<l>_sigma, else NaN
  double max_abs_L = 0;
};
struct SigmaQFileInfo {
  std::string path;
  int n_kv_heads = 0, head_dim = 0;
  std::vector<SigmaQPair> pairs;  // by layer, then head
  double cond_min = 0, cond_median = 0, cond_max = 0;
  double cond_raw_min = 0, cond_raw_median = 0, cond_raw_max = 0;  // NaN when no sigma tensors
  codec::SkipRule rule;  // over the file's layers (m_l = max over heads)
  std::vector<int> skip_layers;
};
SigmaQFileInfo sigma_q_file_info(const std::string& path);
nlohmann::json sigma_q_file_info_to_json(const SigmaQFileInfo& info);

/// Median of values (mean of the two middle ones when the count is even); NaN when empty.
double median_of(std::vector<double> v);

}  // namespace kvwb::sessions
