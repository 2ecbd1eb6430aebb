#include "codec/executor.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "base/errors.h"
#include "base/thread_pool.h"
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

std::vector<ErrorSums> head_error_sums(const float* rows, const float* decoded, size_t S, size_t H,
                                       size_t T, size_t D, int threads) {
  std::vector<ErrorSums> heads(H);
  parallel_for(H, threads, [&](size_t h) {
    for (size_t s = 0; s < S; ++s)
      heads[h].add(rows + (s * H + h) * T * D, decoded + (s * H + h) * T * D, T, D);
  });
  return heads;
}

void check_attention_request(const AttentionRequest& r) {
  const std::string what = "attention metrics: layer " + std::to_string(r.layer);
  if (r.sequences == 0 || r.q_heads == 0 || r.kv_heads == 0 || r.tokens == 0 || r.dim == 0)
    throw InvalidArgument(what + ": empty shape [S, Hq, H, T, D] = [" +
                          std::to_string(r.sequences) + ", " + std::to_string(r.q_heads) + ", " +
                          std::to_string(r.kv_heads) + ", " + std::to_string(r.tokens) + ", " +
                          std::to_string(r.dim) + "]");
  if (!r.q || !r.k || !r.v || !r.khat || !r.vhat || !r.samples)
    throw InvalidArgument(what + ": missing input arrays or query sample");
  if (r.q_heads % r.kv_heads != 0)
    throw InvalidArgument(what + ": " + std::to_string(r.q_heads) + " query heads are not a " +
                          "multiple of " + std::to_string(r.kv_heads) + " kv heads");
  if (r.samples->size() != r.sequences * r.q_heads)
    throw InvalidArgument(what + ": " + std::to_string(r.samples->size()) +
                          " query samples, expected S·Hq = " +
                          std::to_string(r.sequences * r.q_heads));
  for (const auto& smp : *r.samples)
    for (size_t i = 0; i < smp.size(); ++i)
      if (smp[i] >= r.tokens || (i > 0 && smp[i] <= smp[i - 1]))
        throw InvalidArgument(what + ": a query sample is not ascending below T = " +
                              std::to_string(r.tokens));
}

AttentionResult attention_on_cpu(const AttentionRequest& r, int threads,
                                 const std::atomic<bool>* cancel) {
  check_attention_request(r);
  const size_t S = r.sequences, Hq = r.q_heads, H = r.kv_heads, T = r.tokens, D = r.dim;
  const size_t g = Hq / H;
  AttentionResult out;
  out.units.assign(S * H, {});
  parallel_for(
      S * H, threads,
      [&](size_t i) {
        const size_t s = i / H, h = i % H;
        for (size_t hq = h * g; hq < (h + 1) * g; ++hq)
          accumulate_attention(r.q + (s * Hq + hq) * T * D, r.k + (s * H + h) * T * D,
                               r.v + (s * H + h) * T * D, r.khat + (s * H + h) * T * D,
                               r.vhat + (s * H + h) * T * D, T, D, (*r.samples)[s * Hq + hq],
                               r.scale, r.window, out.units[i]);
      },
      cancel);
  return out;
}

}  // namespace kvwb::codec
