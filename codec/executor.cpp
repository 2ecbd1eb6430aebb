#include "codec/executor.h"

#include <algorithm>
#include <cmath>

#include "codec/math/metrics.h"

namespace kvwb::codec {

double whiten_batch(const BatchRequest& req, std::vector<float>& xw) {
  const size_t S = req.sequences, H = req.heads, T = req.tokens, D = req.dim;
  xw.resize(S * H * T * D);
  for (size_t s = 0; s < S; ++s)
    for (size_t h = 0; h < H; ++h)
      matmul_rows(req.rows + ((s * H + h) * T) * D, T, D, req.whiten + h * D * D,
                  xw.data() + ((s * H + h) * T) * D);
  double max_abs = 0;
  for (float v : xw) max_abs = std::max(max_abs, static_cast<double>(std::fabs(v)));
  return max_abs;
}

}  // namespace kvwb::codec
