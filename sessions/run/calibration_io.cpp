#include "sessions/run/calibration_io.h"

#include <regex>

#include "base/errors.h"
#include "io/safetensors.h"

namespace kvwb::sessions {

std::map<int, std::vector<codec::WhiteningFactor>> load_whitening_file_any(const std::string& path, int* n_kv_heads,
                                                                           int* head_dim) {
  const io::SafeTensorsFile f = io::read_safetensors(path);
  static const std::regex name_re("layer_([0-9]+)_(chol|inv_chol|sigma)");
  std::map<int, int> seen;
  int H = -1, D = -1;
  for (const auto& t : f.tensors) {
    std::smatch m;
    if (!std::regex_match(t.name, m, name_re)) continue;
    if (t.shape.size() != 3 || t.shape[1] != t.shape[2])
      throw FormatError(path + ": tensor " + t.name + " must have shape [H_kv, D, D]");
    if (H < 0) {
      H = static_cast<int>(t.shape[0]);
      D = static_cast<int>(t.shape[1]);
    } else if (static_cast<int>(t.shape[0]) != H || static_cast<int>(t.shape[1]) != D) {
      throw FormatError(path + ": tensor " + t.name + " has shape [" + std::to_string(t.shape[0]) + ", " +
                        std::to_string(t.shape[1]) + ", " + std::to_string(t.shape[2]) + "], expected [" +
                        std::to_string(H) + ", " + std::to_string(D) + ", " + std::to_string(D) + "]");
    }
    seen[std::stoi(m[1].str())] = 1;
  }
  if (H <= 0) throw FormatError(path + ": no layer_<l>_chol tensors found (is this a Σ_q calibration file?)");
  std::map<int, std::vector<codec::WhiteningFactor>> out;
  const size_t d = static_cast<size_t>(D);
  for (const auto& [l, unused] : seen) {
    const std::string p = "layer_" + std::to_string(l) + "_";
    const auto* chol = f.find(p + "chol");
    const auto* inv = f.find(p + "inv_chol");
    const auto* sig = f.find(p + "sigma");
    if (!chol || !inv) throw FormatError(path + ": layer " + std::to_string(l) + " needs both " + p + "chol and " + p + "inv_chol");
    const auto Lall = io::tensor_to_f32(*chol);
    const auto Iall = io::tensor_to_f32(*inv);
    std::vector<float> Sall;
    if (sig) Sall = io::tensor_to_f32(*sig);
    for (int h = 0; h < H; ++h) {
      const size_t off = static_cast<size_t>(h) * d * d;
      std::vector<float> L(Lall.begin() + off, Lall.begin() + off + d * d);
      std::vector<float> I(Iall.begin() + off, Iall.begin() + off + d * d);
      std::vector<float> S;
      if (sig) S.assign(Sall.begin() + off, Sall.begin() + off + d * d);
      out[l].push_back(codec::factor_from_imported(L, I, sig ? &S : nullptr, d,
                                                   path + ": layer " + std::to_string(l) + ", kv head " + std::to_string(h)));
    }
  }
  if (n_kv_heads) *n_kv_heads = H;
  if (head_dim) *head_dim = D;
  return out;
}

std::map<int, std::vector<codec::WhiteningFactor>> load_whitening_file(const std::string& path, int n_kv_heads,
                                                                       int head_dim) {
  int H = 0, D = 0;
  auto out = load_whitening_file_any(path, &H, &D);
  if (H != n_kv_heads || D != head_dim)
    throw FormatError(path + ": Σ_q factors are for " + std::to_string(H) + " kv heads × head_dim " +
                      std::to_string(D) + ", but the capture has " + std::to_string(n_kv_heads) + " × " +
                      std::to_string(head_dim));
  return out;
}

}  // namespace kvwb::sessions
