#include "sessions/analysis/distribution.h"

#include <cmath>
#include <cstring>
#include <numbers>

#include "base/errors.h"
#include "codec/codec.h"
#include "codec/math/quantizer.h"
#include "codec/params.h"
#include "codec/traits.h"
#include "io/atomic_file.h"

namespace kvwb::sessions {

using nlohmann::json;

json stream_config_for_layer(const json& run_config, int layer, bool k_stream) {
  const char* key = k_stream ? "k" : "v";
  if (const auto ov = run_config.find("overrides"); ov != run_config.end() && ov->is_array()) {
    for (const json& o : *ov) {
      if (!o.is_object() || !o.contains("layer") || !o["layer"].is_number_integer()) continue;
      if (o["layer"].get<int>() != layer) continue;
      if (const auto s = o.find(key); s != o.end() && s->is_object()) return *s;
    }
  }
  const auto s = run_config.find(key);
  if (s == run_config.end() || !s->is_object()) {
    throw InvalidArgument(std::string("run configuration: no '") + key + "' stream object");
  }
  return *s;
}

namespace {

/// Parameter values of a stream object in the text form of a ParamMap.
codec::ParamMap params_of(const json& stream_config, const std::string& what) {
  codec::ParamMap p;
  const auto it = stream_config.find("params");
  if (it == stream_config.end()) return p;
  if (!it->is_object()) throw InvalidArgument(what + ": 'params' must be an object");
  for (auto f = it->begin(); f != it->end(); ++f) {
    if (f->is_string()) {
      p[f.key()] = f->get<std::string>();
    } else if (f->is_number() || f->is_boolean()) {
      p[f.key()] = f->dump();
    } else if (!f->is_null()) {
      throw InvalidArgument(what + ": parameter '" + f.key() + "' must be a string or a number");
    }
  }
  return p;
}

std::vector<float> load_table(const std::string& path, unsigned bits, const std::string& what) {
  const auto bytes = io::read_file(path);
  if (bytes.empty() || bytes.size() % 4 != 0) {
    throw FormatError(path + ": " + what +
                      " centroid file must hold little-endian f32 values (size " +
                      std::to_string(bytes.size()) + " is not a positive multiple of 4)");
  }
  std::vector<float> t(bytes.size() / 4);
  std::memcpy(t.data(), bytes.data(), bytes.size());
  codec::validate_table(t, bits, (what + " centroid file " + path).c_str());
  return t;
}

}  // namespace

ResidualHistogram residual_histogram(const StreamResult& stream, const json& stream_config,
                                     int bins, double range) {
  const std::string what = "residual histogram";
  if (!codec::codec_traits(stream.codec).scaled_residuals) {
    throw InvalidArgument(what + ": the stream was coded by '" + stream.codec +
                          "'; scaled residuals exist for kakeya_pca streams only");
  }
  if (bins < 1)
    throw InvalidArgument(what + ": bins must be >= 1 (got " + std::to_string(bins) + ")");
  if (!std::isfinite(range) || range <= 0) {
    throw InvalidArgument(what + ": range must be finite and > 0 (got " + std::to_string(range) +
                          ")");
  }
  const std::string codec_name = stream_config.value("codec", stream.codec);
  if (codec_name != stream.codec) {
    throw InvalidArgument(what + ": stream configuration names codec '" + codec_name +
                          "' but the stream was coded by " + stream.codec);
  }
  const codec::ParamMap params = params_of(stream_config, what);
  const codec::ParamReader pr(codec_name, codec::codec_params(codec_name), params);

  ResidualHistogram h;
  h.bit_width = static_cast<unsigned>(pr.get_int("bit_width"));
  const std::string file = stream_config.value("centroids_file", std::string());
  if (!file.empty()) {
    for (float c : load_table(file, h.bit_width, what)) h.centroids.push_back(c);
    h.centroid_source = file;
  } else {
    for (float c : codec::gaussian_table(h.bit_width)) h.centroids.push_back(c);
    h.centroid_source = "gaussian";
  }
  if (pr.has("outlier_threshold")) h.outlier_threshold = pr.get_float("outlier_threshold");

  const size_t nb = static_cast<size_t>(bins);
  const double width = 2.0 * range / static_cast<double>(bins);
  h.edges.resize(nb + 1);
  for (size_t i = 0; i <= nb; ++i) h.edges[i] = -range + width * static_cast<double>(i);
  h.edges[nb] = range;
  h.counts.assign(nb, 0);
  for (float x : stream.scaled_residuals) {
    const double s = x;
    ++h.values;
    if (s < -range) {
      ++h.below;
    } else if (s > range) {
      ++h.above;
    } else {
      size_t i = static_cast<size_t>(std::floor((s + range) / width));
      if (i >= nb) i = nb - 1;
      // Guard against rounding of (s + range) / width at an edge: keep edges[i] <= s < edges[i+1].
      while (i > 0 && s < h.edges[i]) --i;
      while (i + 1 < nb && s >= h.edges[i + 1]) ++i;
      ++h.counts[i];
    }
  }
  h.density.assign(nb, 0.0);
  if (h.values > 0) {
    for (size_t i = 0; i < nb; ++i) {
      h.density[i] = static_cast<double>(h.counts[i]) / (static_cast<double>(h.values) * width);
    }
  }
  return h;
}

double standard_normal_pdf(double x) {
  return std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi);
}

std::vector<LayerKurtosis> layer_kurtosis(const AnalysisResult& analysis) {
  std::vector<LayerKurtosis> out;
  out.reserve(analysis.layers.size());
  auto mean_finite = [](const std::vector<double>& v) {
    double sum = 0;
    size_t n = 0;
    for (double x : v) {
      if (std::isfinite(x)) {
        sum += x;
        ++n;
      }
    }
    return n ? sum / static_cast<double>(n) : std::nan("");
  };
  for (const LayerAnalysis& la : analysis.layers) {
    std::vector<double> k, v;
    for (const HeadAnalysis& h : la.heads) {
      k.push_back(h.k_pre.kurtosis.pooled);
      v.push_back(h.v.kurtosis.pooled);
    }
    out.push_back({la.layer, mean_finite(k), mean_finite(v)});
  }
  return out;
}

}  // namespace kvwb::sessions
