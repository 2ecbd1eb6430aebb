// Capture files (capture-format.md v1, decisions.md #9): writer -> reader round trips, lazy head
// reads, RoPE derivation, every validation rule on malformed files (built with the writer plus raw
// HDF5 calls), the real tiny1m captures, and the synthetic demo capture.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "base/errors.h"
#include "codec/format/half.h"
#include "codec/math/rng.h"
#include "codec/math/rope.h"
#include "io/capture.h"
#include "io/synthetic_capture.h"
#include "tests/test_support.h"

namespace {

using kvwb::codec::Tensor4;
using kvwb::io::CaptureInfo;
using kvwb::io::CaptureReader;
using kvwb::io::CaptureWriteOptions;
using kvwb::io::CaptureWriter;
using kvwb::io::ReadOptions;
using kvwb::io::TensorKind;
namespace rng = kvwb::codec::rng;

CaptureInfo small_info(int layers = 4, int hq = 4, int hkv = 2, int d = 16, int s = 2, int t = 12) {
  CaptureInfo ci;
  ci.model_name = "unit-test model";
  ci.num_layers = layers;
  ci.num_query_heads = hq;
  ci.num_kv_heads = hkv;
  ci.head_dim = d;
  ci.rope_style = kvwb::codec::RopeStyle::kHalfSplit;
  ci.rope_theta = 10000.0;
  ci.rotary_dim = d;
  ci.source_dtype = "float32";
  ci.text_source = "unit test";
  ci.sequences = s;
  ci.tokens = t;
  return ci;
}

/// Checks the shape a capture reports, as small_info sets it: layers, query and kv heads, head_dim
/// with full-width half-split RoPE at θ = 10000, sequences and tokens.
void expect_shape(const CaptureInfo& ci, int layers, int hq, int hkv, int d, int s, int t) {
  EXPECT_EQ(ci.num_layers, layers);
  EXPECT_EQ(ci.num_query_heads, hq);
  EXPECT_EQ(ci.num_kv_heads, hkv);
  EXPECT_EQ(ci.head_dim, d);
  EXPECT_EQ(ci.rotary_dim, d);
  EXPECT_EQ(ci.rope_style, kvwb::codec::RopeStyle::kHalfSplit);
  EXPECT_DOUBLE_EQ(ci.rope_theta, 10000.0);
  EXPECT_EQ(ci.sequences, s);
  EXPECT_EQ(ci.tokens, t);
}

Tensor4 random_tensor(size_t s, size_t h, size_t t, size_t d, uint64_t seed, float scale = 2.0f) {
  Tensor4 x(s, h, t, d);
  for (size_t i = 0; i < x.size(); ++i) x.data[i] = scale * rng::normal(seed ^ rng::kTagTest, i);
  return x;
}

std::vector<int32_t> iota_positions(int s, int t, int offset = 0) {
  std::vector<int32_t> p(static_cast<size_t>(s * t));
  for (int a = 0; a < s; ++a)
    for (int b = 0; b < t; ++b) p[static_cast<size_t>(a * t + b)] = offset + b + 3 * a;
  return p;
}

/// Runs `f` and checks it throws E whose message contains every string in `needles`.
template <class E, class F>
void expect_error(F&& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "expected an exception";
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const auto& n : needles)
      EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

// ---- raw HDF5 helpers for building malformed files ------------------------------------------

struct RawFile {
  hid_t id;
  explicit RawFile(const std::string& p) : id(H5Fopen(p.c_str(), H5F_ACC_RDWR, H5P_DEFAULT)) {
    EXPECT_GE(id, 0);
  }
  ~RawFile() { H5Fclose(id); }
};

void raw_delete_attr(const std::string& file, const char* obj, const char* name) {
  RawFile f(file);
  ASSERT_GE(H5Adelete_by_name(f.id, obj, name, H5P_DEFAULT), 0);
}

void raw_set_int_attr(const std::string& file, const char* obj, const char* name, int64_t v,
                      hid_t file_type = H5T_STD_I32LE) {
  RawFile f(file);
  if (H5Aexists_by_name(f.id, obj, name, H5P_DEFAULT) > 0)
    H5Adelete_by_name(f.id, obj, name, H5P_DEFAULT);
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a =
      H5Acreate_by_name(f.id, obj, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const long long x = v;
  ASSERT_GE(H5Awrite(a, H5T_NATIVE_LLONG, &x), 0);
  H5Aclose(a);
  H5Sclose(sp);
}

void raw_set_string_attr(const std::string& file, const char* obj, const char* name,
                         const std::string& v, bool fixed = false) {
  RawFile f(file);
  if (H5Aexists_by_name(f.id, obj, name, H5P_DEFAULT) > 0)
    H5Adelete_by_name(f.id, obj, name, H5P_DEFAULT);
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, fixed ? v.size() : H5T_VARIABLE);
  if (fixed) H5Tset_strpad(t, H5T_STR_NULLPAD);
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate_by_name(f.id, obj, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const char* p = v.c_str();
  ASSERT_GE(fixed ? H5Awrite(a, t, v.data()) : H5Awrite(a, t, &p), 0);
  H5Aclose(a);
  H5Sclose(sp);
  H5Tclose(t);
}

/// Replaces dataset `path` by a float dataset of `dims` (zeros) of HDF5 type `type`.
void raw_replace_dataset(const std::string& file, const std::string& path,
                         const std::vector<hsize_t>& dims, hid_t type = H5T_IEEE_F32LE) {
  RawFile f(file);
  if (H5Lexists(f.id, path.c_str(), H5P_DEFAULT) > 0) H5Ldelete(f.id, path.c_str(), H5P_DEFAULT);
  hid_t sp = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  hid_t d = H5Dcreate2(f.id, path.c_str(), type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(d, 0);
  hsize_t n = 1;
  for (auto x : dims) n *= x;
  std::vector<double> zeros(n, 0.0);
  ASSERT_GE(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, zeros.data()), 0);
  H5Dclose(d);
  H5Sclose(sp);
}

void raw_delete_link(const std::string& file, const std::string& path) {
  RawFile f(file);
  ASSERT_GE(H5Ldelete(f.id, path.c_str(), H5P_DEFAULT), 0);
}

/// Writes one value into a 4-D dataset at [s, h, t, d].
void raw_poke(const std::string& file, const std::string& path, const std::vector<hsize_t>& at,
              float v) {
  RawFile f(file);
  hid_t d = H5Dopen2(f.id, path.c_str(), H5P_DEFAULT);
  hid_t fs = H5Dget_space(d);
  const hsize_t one[4] = {1, 1, 1, 1};
  H5Sselect_hyperslab(fs, H5S_SELECT_SET, at.data(), nullptr, one, nullptr);
  hid_t ms = H5Screate_simple(4, one, nullptr);
  ASSERT_GE(H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, &v), 0);
  H5Sclose(ms);
  H5Sclose(fs);
  H5Dclose(d);
}

/// A valid float32 capture: layers 0 and 1 with k_pre, k, v and q_pre; positions 0..T-1.
void write_valid(const std::string& path, bool f16 = false) {
  const CaptureInfo ci = small_info(2, 4, 2, 8, 2, 6);
  CaptureWriteOptions wo;
  wo.float16 = f16;
  wo.gzip_level = 0;
  CaptureWriter w(path, ci, wo);
  for (int l = 0; l < 2; ++l) {
    w.write_layer(l, TensorKind::kKPre, random_tensor(2, 2, 6, 8, 10 + l));
    w.write_layer(l, TensorKind::kK, random_tensor(2, 2, 6, 8, 20 + l));
    w.write_layer(l, TensorKind::kV, random_tensor(2, 2, 6, 8, 30 + l));
    w.write_layer(l, TensorKind::kQPre, random_tensor(2, 4, 6, 8, 40 + l));
  }
  w.commit();
}

// ---- round trips -----------------------------------------------------------------------------

class RoundTrip : public ::testing::TestWithParam<std::tuple<bool, int>> {};

TEST_P(RoundTrip, WriterThenReaderGivesTheSameTensors) {
  const auto [f16, gzip] = GetParam();
  kvwb::test::TempDir dir;
  const std::string path = dir.file("rt.kvc.h5");
  CaptureInfo ci = small_info(4, 4, 2, 16, 2, 12);
  ci.qk_norm = true;
  const Tensor4 kp0 = random_tensor(2, 2, 12, 16, 1), k0 = random_tensor(2, 2, 12, 16, 2);
  const Tensor4 v0 = random_tensor(2, 2, 12, 16, 3), q0 = random_tensor(2, 4, 12, 16, 4);
  const Tensor4 k2 = random_tensor(2, 2, 12, 16, 5), v2 = random_tensor(2, 2, 12, 16, 6);
  std::vector<int32_t> tokens(24);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(7 * i + 1);
  const auto pos = iota_positions(2, 12, 5);
  {
    CaptureWriteOptions wo;
    wo.float16 = f16;
    wo.gzip_level = gzip;
    CaptureWriter w(path, ci, wo);
    w.write_tokens(tokens);
    w.write_positions(pos);
    w.write_layer(0, TensorKind::kKPre, kp0);
    w.write_layer(0, TensorKind::kK, k0);
    w.write_layer(0, TensorKind::kV, v0);
    w.write_layer(0, TensorKind::kQPre, q0);
    w.write_layer(2, TensorKind::kK, k2);  // partial layers, q_pre and k_pre absent
    w.write_layer(2, TensorKind::kV, v2);
    w.set_layer_attention(2, "sliding", 8);
    EXPECT_FALSE(std::filesystem::exists(path));  // nothing visible before commit
    w.commit();
  }
  // No temporary files left next to the capture.
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1u);

  CaptureReader r(path);
  const CaptureInfo& info = r.info();
  EXPECT_EQ(info.path, path);
  EXPECT_EQ(info.version, 1);
  EXPECT_EQ(info.model_name, "unit-test model");
  EXPECT_EQ(info.num_layers, 4);
  EXPECT_EQ(info.num_query_heads, 4);
  EXPECT_EQ(info.num_kv_heads, 2);
  EXPECT_EQ(info.head_dim, 16);
  EXPECT_EQ(info.rope_style, kvwb::codec::RopeStyle::kHalfSplit);
  EXPECT_DOUBLE_EQ(info.rope_theta, 10000.0);
  EXPECT_EQ(info.rotary_dim, 16);
  EXPECT_TRUE(info.qk_norm);
  EXPECT_EQ(info.source_dtype, "float32");
  EXPECT_EQ(info.text_source, "unit test");
  EXPECT_EQ(info.sequences, 2);
  EXPECT_EQ(info.tokens, 12);
  EXPECT_TRUE(info.has_tokens);
  EXPECT_TRUE(info.has_positions);
  ASSERT_EQ(info.layers.size(), 2u);
  EXPECT_EQ(info.layers[0].layer, 0);
  EXPECT_EQ(info.layers[1].layer, 2);
  EXPECT_EQ(info.layers[0].attention, "full");
  EXPECT_EQ(info.layers[1].attention, "sliding");
  EXPECT_EQ(info.layers[1].sliding_window, 8);
  const std::string dt = f16 ? "float16" : "float32";
  EXPECT_EQ(info.layers[0].dtype_k_pre, dt);
  EXPECT_EQ(info.layers[0].dtype_q_pre, dt);
  EXPECT_EQ(info.layers[1].dtype_k_pre, "");
  EXPECT_TRUE(r.has(0, TensorKind::kQPre));
  EXPECT_FALSE(r.has(2, TensorKind::kQPre));
  EXPECT_FALSE(r.has(2, TensorKind::kKPre));
  EXPECT_TRUE(r.has(2, TensorKind::kK));
  EXPECT_FALSE(r.has(1, TensorKind::kV));
  EXPECT_EQ(info.layer(2)->has_k, true);
  EXPECT_EQ(info.layer(1), nullptr);
  EXPECT_EQ(r.tokens(), tokens);
  EXPECT_EQ(r.positions(), pos);

  auto check = [&](const Tensor4& want, const Tensor4& got) {
    ASSERT_EQ(got.s, want.s);
    ASSERT_EQ(got.h, want.h);
    ASSERT_EQ(got.t, want.t);
    ASSERT_EQ(got.d, want.d);
    for (size_t i = 0; i < want.size(); ++i) {
      const float w = f16 ? kvwb::codec::round_f16(want.data[i]) : want.data[i];
      ASSERT_EQ(got.data[i], w) << "index " << i;
    }
  };
  check(kp0, r.read(0, TensorKind::kKPre));
  check(k0, r.read(0, TensorKind::kK));
  check(v0, r.read(0, TensorKind::kV));
  check(q0, r.read(0, TensorKind::kQPre));
  check(k2, r.read(2, TensorKind::kK));
  check(v2, r.read(2, TensorKind::kV));
  EXPECT_THROW(r.read(1, TensorKind::kV), kvwb::InvalidArgument);
  EXPECT_THROW(r.read(2, TensorKind::kQPre), kvwb::InvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Capture, RoundTrip,
                         ::testing::Combine(::testing::Bool(), ::testing::Values(0, 4, 9)));

TEST(Capture, ReadHeadEqualsTheSliceOfRead) {
  kvwb::test::TempDir dir;
  const std::string path = dir.file("h.kvc.h5");
  write_valid(path, true);
  CaptureReader r(path);
  for (TensorKind kind : {TensorKind::kV, TensorKind::kQPre}) {
    const Tensor4 all = r.read(1, kind);
    for (size_t h = 0; h < all.h; ++h) {
      const Tensor4 one = r.read_head(1, kind, static_cast<int>(h));
      ASSERT_EQ(one.h, 1u);
      ASSERT_EQ(one.s, all.s);
      for (size_t s = 0; s < all.s; ++s)
        for (size_t t = 0; t < all.t; ++t)
          for (size_t d = 0; d < all.d; ++d) ASSERT_EQ(one.row(s, 0, t)[d], all.row(s, h, t)[d]);
    }
    EXPECT_THROW(r.read_head(1, kind, static_cast<int>(all.h)), kvwb::InvalidArgument);
    EXPECT_THROW(r.read_head(1, kind, -1), kvwb::InvalidArgument);
  }
}

TEST(Capture, DerivesKeysByRopeWhenOnlyOneIsStored) {
  kvwb::test::TempDir dir;
  const std::string path = dir.file("rope.kvc.h5");
  CaptureInfo ci = small_info(2, 2, 2, 16, 2, 20);
  ci.rotary_dim = 8;  // partial rotary: dims 8..15 pass through
  ci.rope_theta = 500.0;
  const auto pos = iota_positions(2, 20, 100);
  const Tensor4 kp = random_tensor(2, 2, 20, 16, 7);
  const Tensor4 k = random_tensor(2, 2, 20, 16, 8);
  {
    CaptureWriteOptions wo;
    wo.float16 = false;
    CaptureWriter w(path, ci, wo);
    w.write_positions(pos);
    w.write_layer(0, TensorKind::kKPre, kp);  // only k_pre in layer 0
    w.write_layer(0, TensorKind::kV, kp);
    w.write_layer(1, TensorKind::kK, k);  // only k in layer 1
    w.write_layer(1, TensorKind::kV, k);
    w.commit();
  }
  CaptureReader r(path);
  // Forward RoPE of every (sequence, head) at the capture's positions.
  auto forward_rope = [&](Tensor4 x) {
    for (size_t s = 0; s < 2; ++s)
      for (size_t h = 0; h < 2; ++h)
        kvwb::codec::apply_rope(x.row(s, h, 0), 20, pos.data() + s * 20, r.info().rope(), false);
    return x;
  };
  bool derived = false;
  const Tensor4 post = r.k_post(0, &derived);
  EXPECT_TRUE(derived);
  EXPECT_EQ(post.data, forward_rope(kp).data);
  // Position-dependent: a row at another position differs from its pre-RoPE value.
  EXPECT_NE(post.row(0, 0, 3)[0], kp.row(0, 0, 3)[0]);
  // Dims beyond rotary_dim pass through.
  EXPECT_EQ(post.row(1, 1, 7)[12], kp.row(1, 1, 7)[12]);
  const Tensor4 pre0 = r.k_pre(0, &derived);
  EXPECT_FALSE(derived);
  EXPECT_EQ(pre0.data, kp.data);

  const Tensor4 pre1 = r.k_pre(1, &derived);
  EXPECT_TRUE(derived);
  // forward ∘ inverse within 1e-5 relative (capture-format.md).
  const Tensor4 back = forward_rope(pre1);
  for (size_t row = 0; row < k.rows(); ++row) {
    float mx = 0;
    for (size_t d = 0; d < 16; ++d) mx = std::max(mx, std::fabs(k.data[row * 16 + d]));
    for (size_t d = 0; d < 16; ++d)
      ASSERT_NEAR(back.data[row * 16 + d], k.data[row * 16 + d], 1e-5f * mx);
  }
  EXPECT_NE(pre1.row(0, 1, 5)[1], k.row(0, 1, 5)[1]);
  EXPECT_EQ(r.k_post(1, &derived).data, k.data);
  EXPECT_FALSE(derived);
}

TEST(Capture, DefaultPositionsAndNoTokens) {
  kvwb::test::TempDir dir;
  const std::string path = dir.file("p.kvc.h5");
  write_valid(path);
  CaptureReader r(path);
  EXPECT_FALSE(r.info().has_positions);
  EXPECT_FALSE(r.info().has_tokens);
  EXPECT_TRUE(r.tokens().empty());
  ASSERT_EQ(r.positions().size(), 12u);
  for (size_t i = 0; i < 12; ++i) EXPECT_EQ(r.positions()[i], static_cast<int32_t>(i % 6));
}

// ---- writer refusals -------------------------------------------------------------------------

TEST(CaptureWriter, RefusesValuesBeyondFloat16AndNonFinite) {
  kvwb::test::TempDir dir;
  const std::string path = dir.file("w.kvc.h5");
  const CaptureInfo ci = small_info(1, 2, 2, 4, 1, 3);
  {
    CaptureWriter w(path, ci);
    Tensor4 t = random_tensor(1, 2, 3, 4, 1);
    t.row(0, 1, 2)[3] = 70000.0f;
    expect_error<kvwb::Fp16Range>([&] { w.write_layer(0, TensorKind::kV, t); },
                                  {path, "/layers/0/v", "s=0, h=1, t=2, d=3", "65504"});
    t.row(0, 1, 2)[3] = 65504.0f;  // the largest float16 is fine
    EXPECT_NO_THROW(w.write_layer(0, TensorKind::kV, t));
    t.row(0, 0, 0)[0] = std::numeric_limits<float>::quiet_NaN();
    expect_error<kvwb::NonFiniteInput>([&] { w.write_layer(0, TensorKind::kK, t); },
                                       {path, "/layers/0/k"});
    EXPECT_THROW(w.write_layer(0, TensorKind::kV, random_tensor(1, 2, 3, 4, 2)),
                 kvwb::InvalidArgument);  // already written
    EXPECT_THROW(w.write_layer(0, TensorKind::kQPre, random_tensor(1, 1, 3, 4, 2)),
                 kvwb::InvalidArgument);  // wrong head count
    EXPECT_THROW(w.write_layer(1, TensorKind::kV, random_tensor(1, 2, 3, 4, 2)),
                 kvwb::InvalidArgument);              // layer out of range
    EXPECT_THROW(w.commit(), kvwb::InvalidArgument);  // layer 0 has no key
    // The writer is dropped uncommitted: its temporary file must go.
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
  {
    CaptureWriteOptions wo;
    wo.float16 = false;  // float32 storage keeps large values
    CaptureWriter w(path, ci, wo);
    Tensor4 t = random_tensor(1, 2, 3, 4, 1);
    t.data[5] = 1e6f;
    w.write_layer(0, TensorKind::kK, t);
    w.write_layer(0, TensorKind::kV, t);
    w.commit();
  }
  EXPECT_EQ(CaptureReader(path).read(0, TensorKind::kK).data[5], 1e6f);
}

TEST(CaptureWriter, RefusesInvalidHeader) {
  CaptureInfo ci = small_info();
  ci.num_query_heads = 3;
  EXPECT_THROW(CaptureWriter("/tmp/never.kvc.h5", ci), kvwb::InvalidArgument);
  ci = small_info();
  ci.rotary_dim = 5;
  EXPECT_THROW(CaptureWriter("/tmp/never.kvc.h5", ci), kvwb::InvalidArgument);
  CaptureWriteOptions wo;
  wo.gzip_level = 10;
  EXPECT_THROW(CaptureWriter("/tmp/never.kvc.h5", small_info(), wo), kvwb::InvalidArgument);
  EXPECT_THROW(CaptureWriter("/nonexistent-dir/x.kvc.h5", small_info()), kvwb::IoError);
}

// ---- malformed files -------------------------------------------------------------------------

class Malformed : public ::testing::Test {
 protected:
  void SetUp() override {
    path = dir.file("bad.kvc.h5");
    write_valid(path);
    ASSERT_NO_THROW(CaptureReader{path});
  }
  void expect_format(const std::vector<std::string>& needles) {
    std::vector<std::string> all = needles;
    all.push_back(path);
    expect_error<kvwb::FormatError>([&] { CaptureReader r(path); }, all);
  }
  kvwb::test::TempDir dir;
  std::string path;
};

TEST_F(Malformed, MissingFileIsAnIoError) {
  const std::string p = dir.file("absent.kvc.h5");
  expect_error<kvwb::IoError>([&] { CaptureReader r(p); }, {p});
}

TEST_F(Malformed, NotHdf5) {
  std::ofstream(path, std::ios::trunc) << "this is not an HDF5 file at all, just text";
  expect_format({"not an HDF5 file"});
}

TEST_F(Malformed, TruncatedFile) {
  const auto bytes = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, bytes / 2);
  try {
    CaptureReader r(path);
    ADD_FAILURE() << "truncated file opened";
  } catch (const kvwb::Error& e) {
    EXPECT_TRUE(e.code() == "IO_ERROR" || e.code() == "FORMAT_ERROR") << e.code();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST_F(Malformed, MissingRequiredAttribute) {
  raw_delete_attr(path, "/", "head_dim");
  expect_format({"head_dim", "missing"});
}

TEST_F(Malformed, MissingModelName) {
  raw_delete_attr(path, "/", "model_name");
  expect_format({"model_name", "missing"});
}

TEST_F(Malformed, RopeThetaRequiredWithRope) {
  raw_delete_attr(path, "/", "rope_theta");
  expect_format({"rope_theta", "missing"});
  raw_set_string_attr(path, "/", "rope_style", "none");
  EXPECT_NO_THROW(CaptureReader{path});
}

TEST_F(Malformed, WrongShape) {
  raw_replace_dataset(path, "/layers/1/v", {2, 2, 6, 9});
  expect_format({"/layers/1/v", "[2,2,6,9]", "[2,2,6,8]"});
}

TEST_F(Malformed, TokensDisagreeAcrossLayers) {
  raw_replace_dataset(path, "/layers/1/k", {2, 2, 5, 8});
  expect_format({"/layers/1/k", "[2,2,5,8]", "expected"});
}

TEST_F(Malformed, QueryHeadsDisagreeWithRoot) {
  raw_replace_dataset(path, "/layers/0/q_pre", {2, 2, 6, 8});
  expect_format({"/layers/0/q_pre", "H_q"});
}

TEST_F(Malformed, PositionsShape) {
  raw_replace_dataset(path, "/positions", {2, 7}, H5T_STD_I32LE);
  expect_format({"/positions", "[2,7]"});
}

TEST_F(Malformed, QueryHeadsNotMultipleOfKvHeads) {
  raw_set_int_attr(path, "/", "num_query_heads", 3);
  expect_format({"num_query_heads", "multiple"});
}

TEST_F(Malformed, DtypeOtherThanFloat16Or32) {
  raw_replace_dataset(path, "/layers/0/v", {2, 2, 6, 8}, H5T_IEEE_F64LE);
  expect_format({"/layers/0/v", "float64", "float16 or float32"});
}

TEST_F(Malformed, MissingValues) {
  raw_delete_link(path, "/layers/1/v");
  expect_format({"/layers/1/v", "missing"});
}

TEST_F(Malformed, MissingBothKeys) {
  raw_delete_link(path, "/layers/0/k");
  raw_delete_link(path, "/layers/0/k_pre");
  expect_format({"/layers/0/k_pre", "/layers/0/k"});
}

TEST_F(Malformed, LayerIndexBeyondNumLayers) {
  raw_set_int_attr(path, "/", "num_layers", 1);
  expect_format({"/layers/1", "out of range"});
}

TEST_F(Malformed, UnknownRopeStyle) {
  raw_set_string_attr(path, "/", "rope_style", "yarn");
  expect_format({"rope_style", "yarn", "half_split"});
}

TEST_F(Malformed, OddRotaryDim) {
  raw_set_int_attr(path, "/", "rotary_dim", 7);
  expect_format({"rotary_dim", "7", "even"});
  raw_set_int_attr(path, "/", "rotary_dim", 10);  // > head_dim
  expect_format({"rotary_dim", "10"});
  raw_set_int_attr(path, "/", "rotary_dim", 0);
  expect_format({"rotary_dim", "0"});
}

TEST_F(Malformed, NewerVersionRefused) {
  raw_set_int_attr(path, "/", "kvcapture_version", 2);
  expect_format({"kvcapture_version", "2", "1"});
}

TEST_F(Malformed, UnknownAttention) {
  raw_set_string_attr(path, "/layers/1", "attention", "local");
  expect_format({"/layers/1/attention", "local"});
}

TEST_F(Malformed, NonFiniteValueInALoadedSlice) {
  raw_poke(path, "/layers/1/v", {1, 0, 2, 3}, std::numeric_limits<float>::quiet_NaN());
  {
    CaptureReader r(path);  // metadata is fine
    expect_error<kvwb::FormatError>([&] { (void)r.read(1, TensorKind::kV); },
                                    {path, "/layers/1/v", "s=1, h=0, t=2, d=3"});
    expect_error<kvwb::FormatError>([&] { (void)r.read_head(1, TensorKind::kV, 0); },
                                    {path, "/layers/1/v", "s=1, h=0, t=2, d=3"});
    EXPECT_NO_THROW((void)r.read_head(1, TensorKind::kV, 1));  // the other head is clean
    EXPECT_NO_THROW((void)r.read(0, TensorKind::kV));
    ReadOptions opt;
    opt.check_finite = false;
    const Tensor4 t = r.read(1, TensorKind::kV, opt);
    EXPECT_TRUE(std::isnan(t.row(1, 0, 2)[3]));
  }  // closed before the file is modified again
  raw_poke(path, "/layers/0/k_pre", {0, 1, 5, 0}, std::numeric_limits<float>::infinity());
  CaptureReader r2(path);
  expect_error<kvwb::FormatError>([&] { (void)r2.k_pre(0); }, {"/layers/0/k_pre", "inf"});
}

TEST_F(Malformed, AcceptsOtherAttributeEncodings) {
  // int64 and float-stored integers, fixed-length strings, and unknown extra attributes.
  raw_set_int_attr(path, "/", "head_dim", 8, H5T_STD_I64LE);
  raw_set_int_attr(path, "/", "num_layers", 2, H5T_IEEE_F64LE);
  raw_set_string_attr(path, "/", "rope_style", "half_split", true);
  raw_set_string_attr(path, "/", "model_name", "fixed name", true);
  raw_set_string_attr(path, "/", "note", "ignored");
  {
    CaptureReader r(path);
    EXPECT_EQ(r.info().head_dim, 8);
    EXPECT_EQ(r.info().num_layers, 2);
    EXPECT_EQ(r.info().model_name, "fixed name");
  }
  raw_set_string_attr(path, "/", "head_dim", "8");
  expect_format({"head_dim", "int32"});
}

// ---- real data -------------------------------------------------------------------------------

TEST(CaptureReal, Tiny1mWikitext2Shapes) {
  KVWB_REQUIRE_REAL(path, "tiny1m_wikitext2.kvc.h5");
  CaptureReader r(path);
  const CaptureInfo& ci = r.info();
  EXPECT_EQ(ci.model_name, "shibatch/tiny1m");
  expect_shape(ci, 4, 2, 2, 64, 16, 256);
  EXPECT_EQ(ci.source_dtype, "float32");
  ASSERT_EQ(ci.layers.size(), 4u);
  for (const auto& li : ci.layers) {
    EXPECT_TRUE(li.has_k_pre && li.has_k && li.has_v && li.has_q_pre);
    EXPECT_EQ(li.dtype_k, "float16");
    EXPECT_EQ(li.attention, "full");
  }
  const Tensor4 q = r.read(3, TensorKind::kQPre);
  EXPECT_EQ(q.s, 16u);
  EXPECT_EQ(q.h, 2u);
  EXPECT_EQ(q.t, 256u);
  EXPECT_EQ(q.d, 64u);
  const auto tokens = r.tokens();
  ASSERT_EQ(tokens.size(), 16u * 256u);
  EXPECT_EQ(tokens[0], 1);  // BOS
  EXPECT_EQ(tokens[256], 1);
  EXPECT_EQ(r.positions()[255], 255);
}

TEST(CaptureReal, Float16DecodingMatchesHdf5Conversion) {
  KVWB_REQUIRE_REAL(path, "tiny1m_wikitext2.kvc.h5");
  CaptureReader r(path);
  const Tensor4 ours = r.read(2, TensorKind::kKPre);
  std::vector<float> theirs(ours.size());
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5Dopen2(f, "/layers/2/k_pre", H5P_DEFAULT);
  ASSERT_GE(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, theirs.data()), 0);
  H5Dclose(d);
  H5Fclose(f);
  EXPECT_EQ(ours.data, theirs);
  const float mx = *std::max_element(theirs.begin(), theirs.end(),
                                     [](float a, float b) { return std::fabs(a) < std::fabs(b); });
  EXPECT_GT(std::fabs(mx), 1.0f);
}

TEST(CaptureReal, StoredKeyEqualsRopeOfStoredPreKey) {
  KVWB_REQUIRE_REAL(path, "tiny1m_wikitext2.kvc.h5");
  CaptureReader r(path);
  double worst = 0;
  for (int l = 0; l < 4; ++l) {
    const Tensor4 k = r.read(l, TensorKind::kK);
    Tensor4 rot = r.read(l, TensorKind::kKPre);
    for (size_t s = 0; s < rot.s; ++s)
      for (size_t h = 0; h < rot.h; ++h)
        kvwb::codec::apply_rope(rot.row(s, h, 0), rot.t, r.positions().data() + s * rot.t,
                                r.info().rope(), false);
    for (size_t row = 0; row < k.rows(); ++row) {
      float mx = 0, diff = 0;
      for (size_t d = 0; d < k.d; ++d) {
        mx = std::max(mx, std::fabs(k.data[row * k.d + d]));
        diff = std::max(diff, std::fabs(k.data[row * k.d + d] - rot.data[row * k.d + d]));
      }
      ASSERT_LE(diff, 2e-3f * mx) << "layer " << l << " row " << row;
      worst = std::max(worst, static_cast<double>(diff / mx));
    }
  }
  EXPECT_GT(worst, 0.0);  // the two were rounded separately
  EXPECT_LT(worst, 1.5e-3);
}

TEST(CaptureReal, LongFileStartsWithWikitextSequenceZero) {
  KVWB_REQUIRE_REAL(short_path, "tiny1m_wikitext2.kvc.h5");
  KVWB_REQUIRE_REAL(long_path, "tiny1m_wikitext2_long.kvc.h5");
  CaptureReader a(short_path), b(long_path);
  EXPECT_EQ(b.info().sequences, 2);
  EXPECT_EQ(b.info().tokens, 1024);
  const auto ta = a.tokens(), tb = b.tokens();
  for (size_t t = 0; t < 256; ++t) ASSERT_EQ(ta[t], tb[t]) << t;
  for (TensorKind kind : {TensorKind::kKPre, TensorKind::kK, TensorKind::kV, TensorKind::kQPre}) {
    for (int h = 0; h < 2; ++h) {
      const Tensor4 x = a.read_head(1, kind, h), y = b.read_head(1, kind, h);
      for (size_t t = 0; t < 256; ++t)
        for (size_t d = 0; d < 64; ++d) ASSERT_EQ(x.row(0, 0, t)[d], y.row(0, 0, t)[d]);
    }
  }
}

TEST(CaptureReal, TruncatedRealFileNamesTheFile) {
  KVWB_REQUIRE_REAL(path, "tiny1m_wikitext2.kvc.h5");
  kvwb::test::TempDir dir;
  const std::string cut = dir.file("cut.kvc.h5");
  {
    std::ifstream in(path, std::ios::binary);
    std::vector<char> buf(std::filesystem::file_size(path) / 2);
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    std::ofstream(cut, std::ios::binary)
        .write(buf.data(), static_cast<std::streamsize>(buf.size()));
  }
  try {
    CaptureReader r(cut);
    for (int l = 0; l < 4; ++l) (void)r.read(l, TensorKind::kV);
    ADD_FAILURE() << "truncated file read";
  } catch (const kvwb::Error& e) {
    EXPECT_TRUE(e.code() == "IO_ERROR" || e.code() == "FORMAT_ERROR") << e.code();
    EXPECT_NE(std::string(e.what()).find(cut), std::string::npos) << e.what();
  }
}

// ---- the synthetic demo capture --------------------------------------------------------------

kvwb::io::DemoCaptureOptions small_demo() {
  return {.layers = 2,
          .kv_heads = 2,
          .q_heads = 4,
          .head_dim = 32,
          .seqs = 2,
          .tokens = 64,
          .seed = 1234};
}

double row_norm(const float* r, size_t d) {
  double s = 0;
  for (size_t i = 0; i < d; ++i) s += double(r[i]) * r[i];
  return std::sqrt(s);
}

TEST(DemoCapture, ShapesAttributesSinkAndRope) {
  kvwb::test::TempDir dir;
  const std::string path = dir.file("demo.kvc.h5");
  kvwb::io::write_demo_capture(path, small_demo());
  CaptureReader r(path);
  const CaptureInfo& ci = r.info();
  EXPECT_EQ(ci.model_name, "synthetic-demo (SYNTHETIC DATA)");
  EXPECT_EQ(ci.text_source, "synthetic: generated by kvwb synth (not model activations)");
  EXPECT_EQ(ci.source_dtype, "float32");
  expect_shape(ci, 2, 4, 2, 32, 2, 64);
  EXPECT_TRUE(ci.has_tokens && ci.has_positions);
  ASSERT_EQ(ci.layers.size(), 2u);
  for (const auto& li : ci.layers) {
    EXPECT_TRUE(li.has_k_pre && li.has_k && li.has_v && li.has_q_pre);
    EXPECT_EQ(li.dtype_k_pre, "float16");
  }
  for (int l = 0; l < 2; ++l) {
    const Tensor4 kp = r.read(l, TensorKind::kKPre);
    const Tensor4 k = r.read(l, TensorKind::kK);
    EXPECT_EQ(r.read(l, TensorKind::kQPre).h, 4u);
    for (size_t s = 0; s < kp.s; ++s)
      for (size_t h = 0; h < kp.h; ++h) {
        std::vector<double> norms;
        for (size_t t = 1; t < kp.t; ++t) norms.push_back(row_norm(kp.row(s, h, t), kp.d));
        std::sort(norms.begin(), norms.end());
        const double sink = row_norm(kp.row(s, h, 0), kp.d);
        EXPECT_GT(sink, 4.0 * norms[norms.size() / 2]) << "layer " << l;
        EXPECT_GT(sink, 1.5 * norms.back());
      }
    Tensor4 rot = kp;
    for (size_t s = 0; s < kp.s; ++s)
      for (size_t h = 0; h < kp.h; ++h)
        kvwb::codec::apply_rope(rot.row(s, h, 0), kp.t, r.positions().data() + s * kp.t, ci.rope(),
                                false);
    for (size_t row = 0; row < k.rows(); ++row) {
      float mx = 0;
      for (size_t d = 0; d < k.d; ++d) mx = std::max(mx, std::fabs(k.data[row * k.d + d]));
      for (size_t d = 0; d < k.d; ++d)
        ASSERT_NEAR(k.data[row * k.d + d], rot.data[row * k.d + d], 2e-3f * mx);
    }
  }
  // Keys are anisotropic: the top quarter of the spectrum carries most of the energy (checked via
  // the per-channel variance spread), values are much closer to isotropic.
  const Tensor4 kp = r.read_head(1, TensorKind::kKPre, 0), v = r.read_head(1, TensorKind::kV, 0);
  auto channel_var_ratio = [](const Tensor4& t) {
    std::vector<double> var(t.d, 0), mean(t.d, 0);
    for (size_t row = 1; row < t.rows(); ++row)
      for (size_t d = 0; d < t.d; ++d) mean[d] += t.data[row * t.d + d];
    for (auto& m : mean) m /= double(t.rows() - 1);
    for (size_t row = 1; row < t.rows(); ++row)
      for (size_t d = 0; d < t.d; ++d) {
        const double x = t.data[row * t.d + d] - mean[d];
        var[d] += x * x;
      }
    std::sort(var.begin(), var.end());
    return var.back() / var.front();
  };
  EXPECT_GT(channel_var_ratio(kp), 3.0 * channel_var_ratio(v));
}

TEST(DemoCapture, DeterministicForASeed) {
  kvwb::test::TempDir dir;
  auto o = small_demo();
  kvwb::io::write_demo_capture(dir.file("a.kvc.h5"), o);
  kvwb::io::write_demo_capture(dir.file("b.kvc.h5"), o);
  o.seed = 99;
  kvwb::io::write_demo_capture(dir.file("c.kvc.h5"), o);
  CaptureReader a(dir.file("a.kvc.h5")), b(dir.file("b.kvc.h5")), c(dir.file("c.kvc.h5"));
  EXPECT_EQ(a.tokens(), b.tokens());
  for (int l = 0; l < 2; ++l)
    for (TensorKind kind : {TensorKind::kKPre, TensorKind::kK, TensorKind::kV, TensorKind::kQPre}) {
      EXPECT_EQ(a.read(l, kind).data, b.read(l, kind).data);
      EXPECT_NE(a.read(l, kind).data, c.read(l, kind).data);
    }
}

TEST(DemoCapture, ValidatesOptions) {
  auto o = small_demo();
  o.q_heads = 3;
  EXPECT_THROW(kvwb::io::validate_demo_options(o), kvwb::InvalidArgument);
  o = small_demo();
  o.head_dim = 33;
  EXPECT_THROW(kvwb::io::write_demo_capture("/tmp/never.kvc.h5", o), kvwb::InvalidArgument);
  o = small_demo();
  o.tokens = 0;
  EXPECT_THROW(kvwb::io::validate_demo_options(o), kvwb::InvalidArgument);
  o = small_demo();
  o.layers = 1000;
  o.tokens = 1 << 20;
  EXPECT_THROW(kvwb::io::validate_demo_options(o), kvwb::InvalidArgument);
  EXPECT_NO_THROW(kvwb::io::validate_demo_options(small_demo()));
}

}  // namespace
