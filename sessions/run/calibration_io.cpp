#include "sessions/run/calibration_io.h"

#include <regex>

#include "base/errors.h"
#include "io/limits.h"
#include "io/safetensors.h"

namespace kvwb::sessions {

namespace {

std::string shape_text(const std::vector<uint64_t>& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

}  // namespace

std::map<int, std::vector<codec::WhiteningFactor>> load_whitening_file_any(const std::string& path,
                                                                           int* n_kv_heads,
                                                                           int* head_dim) {
  const io::SafeTensorsFile f = io::read_safetensors(path);
  // Layer indices: decimal without padding, at most 9 digits, below io::kMaxLayers.
  static const std::regex name_re("layer_(0|[1-9][0-9]{0,8})_(chol|inv_chol|sigma)");
  std::map<int, int> seen;
  uint64_t H = 0, D = 0;
  std::string first;
  for (const auto& t : f.tensors) {
    std::smatch m;
    if (!std::regex_match(t.name, m, name_re)) {
      if (t.name.rfind("layer_", 0) == 0)
        throw FormatError(path + ": tensor '" + t.name +
                          "' is not layer_<l>_chol, layer_<l>_inv_chol or layer_<l>_sigma with a "
                          "decimal layer index");
      continue;
    }
    const long l = std::stol(m[1].str());
    if (l >= io::kMaxLayers)
      throw FormatError(path + ": tensor '" + t.name + "': layer index " + m[1].str() +
                        " exceeds the limit of " + std::to_string(io::kMaxLayers - 1));
    if (t.dtype != "F32" && t.dtype != "F16" && t.dtype != "BF16")
      throw FormatError(path + ": tensor '" + t.name + "' has dtype " + t.dtype +
                        "; expected F32 (or F16/BF16)");
    if (t.shape.size() != 3 || t.shape[1] != t.shape[2])
      throw FormatError(path + ": tensor '" + t.name + "' has shape " + shape_text(t.shape) +
                        "; expected [H_kv, D, D]");
    if (t.shape[0] < 1 || t.shape[1] < 1 || t.shape[0] > static_cast<uint64_t>(io::kMaxHeads) ||
        t.shape[1] > static_cast<uint64_t>(io::kMaxHeadDim))
      throw FormatError(path + ": tensor '" + t.name + "' has shape " + shape_text(t.shape) +
                        "; expected H_kv in 1.." + std::to_string(io::kMaxHeads) + " and D in 1.." +
                        std::to_string(io::kMaxHeadDim));
    if (first.empty()) {
      H = t.shape[0];
      D = t.shape[1];
      first = t.name;
    } else if (t.shape[0] != H || t.shape[1] != D) {
      throw FormatError(path + ": tensor '" + t.name + "' has shape " + shape_text(t.shape) +
                        ", but '" + first + "' has " + shape_text({H, D, D}) +
                        "; expected one [H_kv, D, D] for every tensor");
    }
    seen[static_cast<int>(l)] = 1;
  }
  if (first.empty())
    throw FormatError(
        path +
        ": no layer_<l>_chol tensors found; expected a Σ_q calibration file (bundle-format.md §2)");
  std::map<int, std::vector<codec::WhiteningFactor>> out;
  const size_t d = static_cast<size_t>(D);
  for (const auto& [l, unused] : seen) {
    const std::string p = "layer_" + std::to_string(l) + "_";
    const auto* chol = f.find(p + "chol");
    const auto* inv = f.find(p + "inv_chol");
    const auto* sig = f.find(p + "sigma");
    if (!chol || !inv)
      throw FormatError(path + ": layer " + std::to_string(l) + " needs both " + p + "chol and " +
                        p + "inv_chol; found only " +
                        (chol  ? p + "chol"
                         : inv ? p + "inv_chol"
                               : p + "sigma"));
    std::vector<float> Lall, Iall, Sall;
    try {
      Lall = io::tensor_to_f32(*chol);
      Iall = io::tensor_to_f32(*inv);
      if (sig) Sall = io::tensor_to_f32(*sig);
    } catch (const Error& e) {
      throw FormatError(path + ": " + e.what());
    }
    for (uint64_t h = 0; h < H; ++h) {
      const size_t off = static_cast<size_t>(h) * d * d;
      std::vector<float> L(Lall.begin() + off, Lall.begin() + off + d * d);
      std::vector<float> I(Iall.begin() + off, Iall.begin() + off + d * d);
      std::vector<float> S;
      if (sig) S.assign(Sall.begin() + off, Sall.begin() + off + d * d);
      out[l].push_back(codec::factor_from_imported(
          L, I, sig ? &S : nullptr, d,
          path + ": layer " + std::to_string(l) + ", kv head " + std::to_string(h)));
    }
  }
  if (n_kv_heads) *n_kv_heads = static_cast<int>(H);
  if (head_dim) *head_dim = static_cast<int>(D);
  return out;
}

std::map<int, std::vector<codec::WhiteningFactor>> load_whitening_file(const std::string& path,
                                                                       int n_kv_heads,
                                                                       int head_dim) {
  int H = 0, D = 0;
  auto out = load_whitening_file_any(path, &H, &D);
  if (H != n_kv_heads || D != head_dim)
    throw FormatError(path + ": Σ_q factors are for " + std::to_string(H) +
                      " kv heads × head_dim " + std::to_string(D) + ", but the capture has " +
                      std::to_string(n_kv_heads) + " × " + std::to_string(head_dim));
  // Factors of layers the capture does not hold are not used (a calibration may cover more layers
  // than a capture, e.g. another model's with the same head geometry); only their shapes must fit.
  return out;
}

}  // namespace kvwb::sessions
