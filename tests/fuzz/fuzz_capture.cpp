// libFuzzer harness: the capture reader (io/capture.h). Structure-aware: the input describes a
// capture — root attributes (each present or not, of a fuzzed type and value), layer groups
// (decimal, padded, huge or text names; attention attributes), their datasets (rank, shape,
// dtype, chunking, fully / partly / never written, values straight from the input, so NaN and
// Inf too), /tokens and /positions — which is written as a valid HDF5 file and then opened and
// read like `kvwb info` / `run` do. This drives every check of the validation layer. (Mutating
// raw HDF5 bytes mostly exercises libhdf5's own parser, which is not ours and not instrumented;
// byte-level damage is covered by the malformed-input suite: truncations, flips, garbage.)
// Seeds (tests/fuzz/corpus/capture) describe slices of the real tiny1m capture with its values.
#include <fuzzer/FuzzedDataProvider.h>
#include <hdf5.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "io/capture.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

/// Writes one attribute of a fuzzed type: int32, int64, float64, string, an int32 array.
void put_attr(FuzzedDataProvider& in, hid_t loc, const char* name, int64_t typical) {
  const int kind = in.ConsumeIntegralInRange<int>(0, 9);
  if (kind == 0) return;  // absent
  int64_t v = typical;
  if (in.ConsumeBool())
    v = in.ConsumeIntegral<int64_t>();
  else if (in.ConsumeBool())
    v = in.ConsumeIntegralInRange<int64_t>(-2, 8);
  hid_t space = H5Screate(H5S_SCALAR);
  if (kind <= 5) {
    const int32_t x = static_cast<int32_t>(v);
    hid_t a = H5Acreate2(loc, name, H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT32, &x);
    H5Aclose(a);
  } else if (kind == 6) {
    hid_t a = H5Acreate2(loc, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
  } else if (kind == 7) {
    const double d = in.ConsumeBool() ? static_cast<double>(v) : in.ConsumeFloatingPoint<double>();
    hid_t a = H5Acreate2(loc, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_DOUBLE, &d);
    H5Aclose(a);
  } else if (kind == 8) {
    const std::string s = in.ConsumeRandomLengthString(16);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    const char* p = s.c_str();
    hid_t a = H5Acreate2(loc, name, t, space, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, &p);
    H5Aclose(a);
    H5Tclose(t);
  } else {
    const hsize_t n = 2;
    hid_t s2 = H5Screate_simple(1, &n, nullptr);
    const int32_t x[2] = {static_cast<int32_t>(v), 1};
    hid_t a = H5Acreate2(loc, name, H5T_STD_I32LE, s2, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT32, x);
    H5Aclose(a);
    H5Sclose(s2);
  }
  H5Sclose(space);
}

void put_string_attr(FuzzedDataProvider& in, hid_t loc, const char* name, const char* typical) {
  const int kind = in.ConsumeIntegralInRange<int>(0, 5);
  if (kind == 0) return;
  std::string s = kind <= 3 ? typical : in.ConsumeRandomLengthString(24);
  hid_t t = H5Tcopy(H5T_C_S1);
  if (kind == 5)
    H5Tset_size(t, s.size() + 1);  // fixed-length
  else
    H5Tset_size(t, H5T_VARIABLE);
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(loc, name, t, space, H5P_DEFAULT, H5P_DEFAULT);
  if (kind == 5) {
    H5Awrite(a, t, s.c_str());
  } else {
    const char* p = s.c_str();
    H5Awrite(a, t, &p);
  }
  H5Aclose(a);
  H5Sclose(space);
  H5Tclose(t);
}

hid_t f16_type() {
  hid_t t = H5Tcopy(H5T_IEEE_F32LE);
  H5Tset_fields(t, 15, 10, 5, 0, 10);
  H5Tset_size(t, 2);
  H5Tset_ebias(t, 15);
  return t;
}

/// One dataset of a fuzzed rank, shape, dtype, layout and fill state; values from the input.
void put_dataset(FuzzedDataProvider& in, hid_t loc, const char* name,
                 const std::vector<hsize_t>& typical) {
  std::vector<hsize_t> dims = typical;
  const int shape_kind = in.ConsumeIntegralInRange<int>(0, 9);
  if (shape_kind == 7) {
    dims.resize(in.ConsumeIntegralInRange<size_t>(1, 5), 2);
  } else if (shape_kind == 8) {
    dims[in.ConsumeIntegralInRange<size_t>(0, dims.size() - 1)] =
        in.ConsumeIntegralInRange<hsize_t>(0, 9);
  } else if (shape_kind == 9) {
    // A huge declared extent (left unwritten: the reader must refuse it before allocating).
    dims[in.ConsumeIntegralInRange<size_t>(0, dims.size() - 1)] =
        hsize_t{1} << in.ConsumeIntegralInRange<int>(16, 30);
  }
  hsize_t count = 1;
  for (hsize_t d : dims) count *= d;
  const bool huge = count > (1u << 16);
  const int dtype = in.ConsumeIntegralInRange<int>(0, 6);  // 0-2 f16, 3-4 f32, 5 f64, 6 i32
  hid_t ftype = dtype <= 2 ? f16_type()
                           : H5Tcopy(dtype <= 4   ? H5T_IEEE_F32LE
                                     : dtype == 5 ? H5T_IEEE_F64LE
                                                  : H5T_STD_I32LE);
  hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  const bool chunked = huge || in.ConsumeBool();
  if (chunked && count > 0) {
    std::vector<hsize_t> chunk(dims.size(), 1);
    chunk.back() = std::max<hsize_t>(1, std::min<hsize_t>(dims.back(), 4096));
    if (dims.size() >= 2)
      chunk[dims.size() - 2] = std::max<hsize_t>(1, std::min<hsize_t>(dims[dims.size() - 2], 64));
    H5Pset_chunk(dcpl, static_cast<int>(dims.size()), chunk.data());
    if (in.ConsumeBool()) H5Pset_deflate(dcpl, 1);
  }
  hid_t ds = H5Dcreate2(loc, name, ftype, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  const int fill =
      huge ? 0 : in.ConsumeIntegralInRange<int>(0, 7);  // 0 never written, 1 partly, else fully
  if (ds >= 0 && fill > 0 && count > 0) {
    std::vector<float> v(static_cast<size_t>(count));
    for (auto& x : v) x = in.remaining_bytes() >= 4 ? in.ConsumeFloatingPoint<float>() : 0.5f;
    if (fill == 1 && dims.size() >= 1) {
      hid_t fs = H5Dget_space(ds);
      std::vector<hsize_t> start(dims.size(), 0), cnt = dims;
      cnt[0] = std::max<hsize_t>(1, dims[0] / 2);
      H5Sselect_hyperslab(fs, H5S_SELECT_SET, start.data(), nullptr, cnt.data(), nullptr);
      hid_t ms = H5Screate_simple(static_cast<int>(cnt.size()), cnt.data(), nullptr);
      H5Dwrite(ds, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, v.data());
      H5Sclose(ms);
      H5Sclose(fs);
    } else {
      H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
    }
  }
  if (ds >= 0) H5Dclose(ds);
  H5Pclose(dcpl);
  H5Sclose(space);
  H5Tclose(ftype);
}

std::string layer_name(FuzzedDataProvider& in, int index) {
  switch (in.ConsumeIntegralInRange<int>(0, 9)) {
    case 7:
      return "0" + std::to_string(index);
    case 8:
      return std::to_string(in.ConsumeIntegral<uint32_t>());
    case 9:
      return in.ConsumeRandomLengthString(10);
    default:
      return std::to_string(index);
  }
}

/// Writes the capture the input describes to `path`; false when HDF5 refused to create it.
bool write_capture(FuzzedDataProvider& in, const std::string& path) {
  hid_t f = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) return false;
  const int L = in.ConsumeIntegralInRange<int>(0, 3), Hkv = in.ConsumeIntegralInRange<int>(1, 2);
  const int Hq = Hkv * in.ConsumeIntegralInRange<int>(1, 2),
            D = 2 * in.ConsumeIntegralInRange<int>(1, 16);
  const int S = in.ConsumeIntegralInRange<int>(1, 2), T = in.ConsumeIntegralInRange<int>(1, 16);
  put_attr(in, f, "kvcapture_version", 1);
  put_string_attr(in, f, "model_name", "fuzz/model");
  put_attr(in, f, "num_layers", std::max(L, 1));
  put_attr(in, f, "num_query_heads", Hq);
  put_attr(in, f, "num_kv_heads", Hkv);
  put_attr(in, f, "head_dim", D);
  put_string_attr(in, f, "rope_style", in.ConsumeBool() ? "half_split" : "interleaved");
  put_attr(in, f, "rope_theta", 10000);
  put_attr(in, f, "rotary_dim", D);
  put_attr(in, f, "qk_norm", 0);
  if (in.ConsumeBool()) {
    hid_t g = H5Gcreate2(f, "layers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    for (int l = 0; l < L; ++l) {
      const std::string name = layer_name(in, l);
      if (name.empty() || name.find('/') != std::string::npos || name == "." ||
          H5Lexists(g, name.c_str(), H5P_DEFAULT) > 0)
        continue;
      hid_t lg = H5Gcreate2(g, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      if (lg < 0) continue;
      put_string_attr(in, lg, "attention",
                      in.ConsumeIntegralInRange<int>(0, 3) == 0 ? "sliding" : "full");
      if (in.ConsumeBool()) put_attr(in, lg, "sliding_window", 8);
      for (const char* ds : {"k_pre", "k", "v", "q_pre"}) {
        if (in.ConsumeIntegralInRange<int>(0, 4) == 0) continue;
        const hsize_t h = ds[0] == 'q' ? static_cast<hsize_t>(Hq) : static_cast<hsize_t>(Hkv);
        put_dataset(in, lg, ds,
                    {static_cast<hsize_t>(S), h, static_cast<hsize_t>(T), static_cast<hsize_t>(D)});
      }
      H5Gclose(lg);
    }
    H5Gclose(g);
  }
  for (const char* idx : {"tokens", "positions"}) {
    if (!in.ConsumeBool()) continue;
    const int dtype_kind = in.ConsumeIntegralInRange<int>(0, 3);
    std::vector<hsize_t> dims = {static_cast<hsize_t>(S), static_cast<hsize_t>(T)};
    if (in.ConsumeIntegralInRange<int>(0, 4) == 0) dims.back() += 1;
    hid_t space = H5Screate_simple(2, dims.data(), nullptr);
    hid_t ds = H5Dcreate2(f, idx, dtype_kind == 3 ? H5T_IEEE_F32LE : H5T_STD_I32LE, space,
                          H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    std::vector<int32_t> v(static_cast<size_t>(dims[0] * dims[1]));
    for (auto& x : v) x = in.ConsumeIntegral<int32_t>();
    if (ds >= 0 && in.ConsumeIntegralInRange<int>(0, 5) != 0)
      H5Dwrite(ds, dtype_kind == 3 ? H5T_NATIVE_INT32 : H5T_NATIVE_INT32, H5S_ALL, H5S_ALL,
               H5P_DEFAULT, v.data());
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(space);
  }
  H5Fclose(f);
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kvwb;
  static const bool quiet = (H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr), true);
  (void)quiet;
  FuzzedDataProvider in(data, size);
  const auto path = (fuzz::scratch() / "in.kvc.h5").string();
  if (!write_capture(in, path)) return 0;
  fuzz::expect_typed([&] {
    const io::CaptureReader r(path);
    for (const auto& li : r.info().layers) {
      for (io::TensorKind k :
           {io::TensorKind::kKPre, io::TensorKind::kK, io::TensorKind::kV, io::TensorKind::kQPre})
        if (r.has(li.layer, k)) {
          fuzz::expect_typed([&] { (void)r.read(li.layer, k); });
          fuzz::expect_typed([&] { (void)r.read_head(li.layer, k, 0); });
        }
      fuzz::expect_typed([&] { (void)r.k_pre(li.layer); });
      fuzz::expect_typed([&] { (void)r.k_post(li.layer); });
    }
    (void)r.tokens();
  });
  return 0;
}
