#pragma once
// Loading Q-preconditioning factors from a Σ_q safetensors file (bundle-format.md §2): tensors
// layer_<l>_chol, layer_<l>_inv_chol and (optional) layer_<l>_sigma, each [H_kv, D, D] f32.
// Layers without tensors are identity (skipped), as the reference plugin treats them.
#include <map>
#include <string>
#include <vector>

#include "codec/math/calibration.h"

namespace kvwb::sessions {

/// Factors per layer; validates the file (names, shapes, limits, L⁻¹ the inverse of L, L·Lᵀ
/// consistent with Σ_q: codec::factor_from_imported) and its fit to the capture (n_kv_heads,
/// head_dim). Throws FormatError (IoError for an unreadable file) naming the file, the tensor or
/// layer, and what was expected.
std::map<int, std::vector<codec::WhiteningFactor>> load_whitening_file(const std::string& path, int n_kv_heads,
                                                                       int head_dim);

/// Every layer of a Σ_q safetensors file, with head count and dim taken from the file itself.
std::map<int, std::vector<codec::WhiteningFactor>> load_whitening_file_any(const std::string& path, int* n_kv_heads,
                                                                           int* head_dim);

}  // namespace kvwb::sessions
