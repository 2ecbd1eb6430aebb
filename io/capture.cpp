// Capture files (capture-format.md version 1, decisions.md #9) through the HDF5 C API.
//
// HDF5's own error printing is switched off; every failure becomes a typed kvwb error whose message
// names the file, the path inside it and what was expected. All HDF5 calls run under one
// process-wide mutex because the distribution's HDF5 is not built thread-safe.
#include "io/capture.h"

#include <hdf5.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <utility>

#include "base/errors.h"
#include "codec/format/half.h"
#include "codec/simd/rows.h"
#include "io/atomic_file.h"
#include "io/limits.h"

namespace kvwb::io {

namespace {

constexpr int kSupportedVersion = 1;
constexpr hsize_t kMaxChunkTokens = 4096;
constexpr std::array<TensorKind, 4> kAllKinds = {TensorKind::kKPre, TensorKind::kK, TensorKind::kV,
                                                 TensorKind::kQPre};

std::recursive_mutex& h5_mutex() {
  static std::recursive_mutex m;
  return m;
}

/// Locks the HDF5 mutex, silences HDF5's automatic error printing and clears its error stack.
class H5Scope {
 public:
  H5Scope() : lock_(h5_mutex()) {
    // No HDF5 exit handler: after a failed close (a full disk) HDF5 1.10's own clean-up at exit
    // crashes on the half-closed file. Every file is closed explicitly here; one still open at exit
    // is a temporary of an aborted write, which is discarded anyway. Must precede the first call.
    static const bool no_atexit = (H5dont_atexit(), true);
    (void)no_atexit;
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    H5Eclear2(H5E_DEFAULT);
  }

 private:
  std::lock_guard<std::recursive_mutex> lock_;
};

/// The most specific message on HDF5's error stack (e.g. "truncated file: eof = ..."), or "".
std::string h5_detail() {
  std::string deepest;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* data) -> herr_t {
        if (e && e->desc && *e->desc) *static_cast<std::string*>(data) = e->desc;
        return 0;
      },
      &deepest);
  H5Eclear2(H5E_DEFAULT);
  std::replace(deepest.begin(), deepest.end(), '\n', ' ');
  return deepest.empty() ? std::string() : " (HDF5: " + deepest + ")";
}

/// Owns one HDF5 identifier and closes it with the matching H5?close.
class H5Id {
 public:
  H5Id() = default;
  H5Id(hid_t id, herr_t (*closer)(hid_t)) : id_(id), closer_(closer) {}
  H5Id(H5Id&& o) noexcept : id_(std::exchange(o.id_, -1)), closer_(o.closer_) {}
  H5Id& operator=(H5Id&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, -1);
      closer_ = o.closer_;
    }
    return *this;
  }
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  ~H5Id() { reset(); }
  hid_t get() const noexcept { return id_; }
  bool valid() const noexcept { return id_ >= 0; }
  /// Closes now; returns false when HDF5 reports a failure.
  bool reset() noexcept {
    bool ok = true;
    if (id_ >= 0 && closer_) ok = closer_(id_) >= 0;
    id_ = -1;
    return ok;
  }

 private:
  hid_t id_ = -1;
  herr_t (*closer_)(hid_t) = nullptr;
};

std::string dims_text(const std::vector<hsize_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) {
    if (i) s.push_back(',');
    s.append(std::to_string(d[i]));
  }
  s.push_back(']');
  return s;
}

std::string layer_path(int layer) { return "/layers/" + std::to_string(layer); }
std::string dataset_path(int layer, TensorKind kind) {
  return layer_path(layer) + "/" + tensor_kind_name(kind);
}

size_t kind_index(TensorKind k) { return static_cast<size_t>(k); }

// ---- attribute reading (any integer/float width, fixed or variable-length strings) ----------

class AttrReader {
 public:
  AttrReader(const std::string& file, hid_t loc, std::string where)
      : file_(file), loc_(loc), where_(std::move(where)) {}

  [[noreturn]] void fail(const char* name, const std::string& what) const {
    throw FormatError(file_ + ": attribute " + where_ + (where_ == "/" ? "" : "/") + name + ": " +
                      what);
  }

  bool exists(const char* name) const {
    const htri_t ex = H5Aexists(loc_, name);
    if (ex < 0) fail(name, "cannot be inspected" + h5_detail());
    return ex > 0;
  }

  std::optional<int64_t> integer(const char* name) const {
    if (!exists(name)) return std::nullopt;
    auto [attr, type] = open_scalar(name);
    const H5T_class_t cls = H5Tget_class(type.get());
    if (cls == H5T_INTEGER) {
      long long v = 0;
      if (H5Aread(attr.get(), H5T_NATIVE_LLONG, &v) < 0) fail(name, "cannot be read" + h5_detail());
      return static_cast<int64_t>(v);
    }
    if (cls == H5T_FLOAT) {
      double v = 0;
      if (H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &v) < 0)
        fail(name, "cannot be read" + h5_detail());
      if (!std::isfinite(v) || v != std::floor(v) || std::fabs(v) > 9.0e15)
        fail(name, "value " + std::to_string(v) + " is not an integer; expected an int32");
      return static_cast<int64_t>(v);
    }
    fail(name, "has a non-numeric type; expected an int32");
  }

  std::optional<double> real(const char* name) const {
    if (!exists(name)) return std::nullopt;
    auto [attr, type] = open_scalar(name);
    const H5T_class_t cls = H5Tget_class(type.get());
    if (cls != H5T_INTEGER && cls != H5T_FLOAT)
      fail(name, "has a non-numeric type; expected a float64");
    double v = 0;
    if (H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &v) < 0) fail(name, "cannot be read" + h5_detail());
    return v;
  }

  std::optional<std::string> string(const char* name) const {
    if (!exists(name)) return std::nullopt;
    auto [attr, type] = open_scalar(name);
    if (H5Tget_class(type.get()) != H5T_STRING)
      fail(name, "is not a string; expected a UTF-8 string");
    const htri_t is_var = H5Tis_variable_str(type.get());
    if (is_var < 0) fail(name, "cannot be inspected" + h5_detail());
    H5Id mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_cset(mem.get(), H5Tget_cset(type.get()));
    if (is_var > 0) {
      H5Tset_size(mem.get(), H5T_VARIABLE);
      char* p = nullptr;
      if (H5Aread(attr.get(), mem.get(), &p) < 0) fail(name, "cannot be read" + h5_detail());
      std::string s = p ? p : "";
      if (p) H5free_memory(p);
      return s;
    }
    const size_t n = H5Tget_size(type.get());
    H5Tset_size(mem.get(), n);
    const H5T_str_t pad = H5Tget_strpad(type.get());
    H5Tset_strpad(mem.get(), pad);
    std::vector<char> buf(n + 1, '\0');
    if (n > 0 && H5Aread(attr.get(), mem.get(), buf.data()) < 0)
      fail(name, "cannot be read" + h5_detail());
    std::string s(buf.data(), strnlen(buf.data(), n));
    if (pad == H5T_STR_SPACEPAD)
      while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
  }

 private:
  std::pair<H5Id, H5Id> open_scalar(const char* name) const {
    H5Id attr(H5Aopen(loc_, name, H5P_DEFAULT), H5Aclose);
    if (!attr.valid()) fail(name, "cannot be opened" + h5_detail());
    H5Id space(H5Aget_space(attr.get()), H5Sclose);
    if (!space.valid() || H5Sget_simple_extent_npoints(space.get()) != 1)
      fail(name, "is not a single value; expected a scalar");
    H5Id type(H5Aget_type(attr.get()), H5Tclose);
    if (!type.valid()) fail(name, "cannot be inspected" + h5_detail());
    return {std::move(attr), std::move(type)};
  }

  const std::string& file_;
  hid_t loc_;
  std::string where_;
};

/// "float16" / "float32" for the two accepted IEEE formats; "" for anything else.
std::string float_dtype_name(hid_t type) {
  if (H5Tget_class(type) != H5T_FLOAT) return {};
  size_t spos = 0, epos = 0, esize = 0, mpos = 0, msize = 0;
  if (H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) < 0) return {};
  const size_t size = H5Tget_size(type);
  if (size == 2 && spos == 15 && epos == 10 && esize == 5 && mpos == 0 && msize == 10 &&
      H5Tget_ebias(type) == 15)
    return "float16";
  if (size == 4 && spos == 31 && epos == 23 && esize == 8 && mpos == 0 && msize == 23 &&
      H5Tget_ebias(type) == 127)
    return "float32";
  return {};
}

std::string describe_type(hid_t type) {
  const size_t bits = H5Tget_size(type) * 8;
  switch (H5Tget_class(type)) {
    case H5T_FLOAT:
      return bits == 16 ? "a 16-bit non-IEEE float (bfloat16?)" : "float" + std::to_string(bits);
    case H5T_INTEGER:
      return "int" + std::to_string(bits);
    case H5T_STRING:
      return "string";
    default:
      return "a non-float type";
  }
}

/// An IEEE binary16 little-endian HDF5 type (HDF5 1.10 has no predefined one).
H5Id make_f16_type() {
  H5Id t(H5Tcopy(H5T_IEEE_F32LE), H5Tclose);
  H5Tset_fields(t.get(), 15, 10, 5, 0, 10);
  H5Tset_size(t.get(), 2);
  H5Tset_ebias(t.get(), 15);
  return t;
}

/// Whether every value of dataset `ds` (extent `dims`) is backed by stored data; otherwise `why`
/// says what is missing. A dataset whose storage was never (or only partly) written reads as fill
/// values, which would be a silent guess. Chunked: every chunk of the extent is allocated
/// (H5Dget_space_status cannot tell, it compares compressed sizes); contiguous: the storage is
/// allocated; compact: always stored.
bool fully_stored(hid_t ds, const std::vector<hsize_t>& dims, std::string& why) {
  hsize_t points = 1;
  for (hsize_t d : dims) points *= d;
  if (points == 0) return true;
  H5Id plist(H5Dget_create_plist(ds), H5Pclose);
  if (!plist.valid()) {
    why = "its storage cannot be inspected" + h5_detail();
    return false;
  }
  const H5D_layout_t layout = H5Pget_layout(plist.get());
  if (layout == H5D_COMPACT) return true;
  if (layout == H5D_CONTIGUOUS) {
    H5D_space_status_t status = H5D_SPACE_STATUS_ERROR;
    if (H5Dget_space_status(ds, &status) < 0 || status != H5D_SPACE_STATUS_ALLOCATED) {
      why = "its data was never written";
      return false;
    }
    return true;
  }
  if (layout != H5D_CHUNKED) {
    why = "it is a virtual or external dataset; expected data stored in the file";
    return false;
  }
  const int rank = static_cast<int>(dims.size());
  std::vector<hsize_t> chunk(dims.size(), 0);
  if (H5Pget_chunk(plist.get(), rank, chunk.data()) != rank) {
    why = "its chunk layout cannot be read" + h5_detail();
    return false;
  }
  hsize_t expected = 1;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (chunk[i] == 0) {
      why = "it has a zero chunk dimension";
      return false;
    }
    expected *= (dims[i] + chunk[i] - 1) / chunk[i];
  }
  hsize_t allocated = 0;
  H5Id space(H5Dget_space(ds), H5Sclose);
  if (!space.valid() || H5Dget_num_chunks(ds, space.get(), &allocated) < 0) {
    why = "its chunks cannot be counted" + h5_detail();
    return false;
  }
  if (allocated != expected) {
    why = allocated == 0 ? "its data was never written (no chunk is stored)"
                         : "only " + std::to_string(allocated) + " of its " + std::to_string(expected) +
                               " chunks were written";
    return false;
  }
  return true;
}

struct DatasetMeta {
  bool present = false;
  std::string dtype;
  std::vector<hsize_t> dims;
};

}  // namespace

const char* tensor_kind_name(TensorKind k) noexcept {
  switch (k) {
    case TensorKind::kKPre:
      return "k_pre";
    case TensorKind::kK:
      return "k";
    case TensorKind::kV:
      return "v";
    case TensorKind::kQPre:
      return "q_pre";
  }
  return "?";
}

const LayerInfo* CaptureInfo::layer(int l) const noexcept {
  for (const auto& li : layers)
    if (li.layer == l) return &li;
  return nullptr;
}

codec::RopeParams CaptureInfo::rope() const noexcept {
  codec::RopeParams p;
  p.style = rope_style;
  p.theta = rope_theta;
  p.rotary_dim = static_cast<uint32_t>(rotary_dim > 0 ? rotary_dim : head_dim);
  p.head_dim = static_cast<uint32_t>(head_dim);
  return p;
}

// =============================================================================================
// Reader
// =============================================================================================

struct CaptureReader::Impl {
  std::string path;
  H5Id file;
  CaptureInfo info;
  std::map<int, std::array<DatasetMeta, 4>> layers;
  std::vector<int32_t> positions;

  [[noreturn]] void fail(const std::string& where, const std::string& what) const {
    throw FormatError(path + ": " + where + ": " + what);
  }

  void open();
  void read_root();
  void read_layers();
  DatasetMeta inspect(hid_t group, int layer, TensorKind kind);
  void check_shape(const std::string& where, const std::vector<hsize_t>& dims, hsize_t heads,
                   const char* heads_name, const std::string& first_path);
  void read_index_datasets();
  const DatasetMeta& meta(int layer, TensorKind kind) const;
  codec::Tensor4 read_slab(int layer, TensorKind kind, int head, const ReadOptions& opt) const;
  void derive(codec::Tensor4& t, bool inverse) const;
};

void CaptureReader::Impl::open() {
  // A folder, FIFO or device is refused before HDF5 sees it (opening a FIFO would block).
  require_regular_file(path, "a capture file (.kvc.h5)");
  {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw IoError(path, std::string("cannot open for reading: ") + std::strerror(errno));
    std::fclose(f);
  }
  const htri_t is_h5 = H5Fis_hdf5(path.c_str());
  if (is_h5 == 0)
    throw FormatError(path + ": not an HDF5 file (no HDF5 signature); expected a .kvc.h5 capture");
  // Default (weak) close degree, so other code in the process can open the same file too.
  file = H5Id(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file.valid())
    throw FormatError(path + ": cannot open as HDF5 (truncated or damaged file?)" + h5_detail());
}

void CaptureReader::Impl::read_root() {
  AttrReader a(path, file.get(), "/");
  auto req_int = [&](const char* name, int64_t lo, int64_t hi) -> int {
    const auto v = a.integer(name);
    if (!v) a.fail(name, "missing; expected a required int32 root attribute");
    if (*v < lo || *v > hi)
      a.fail(name, "value " + std::to_string(*v) + " out of range; expected " + std::to_string(lo) +
                       ".." + std::to_string(hi));
    return static_cast<int>(*v);
  };
  const auto version = a.integer("kvcapture_version");
  if (!version)
    a.fail("kvcapture_version", "missing; expected a required int32 root attribute (1)");
  if (*version > kSupportedVersion)
    a.fail("kvcapture_version", "version " + std::to_string(*version) +
                                    " is newer than this reader supports; expected " +
                                    std::to_string(kSupportedVersion));
  if (*version < 1)
    a.fail("kvcapture_version", "value " + std::to_string(*version) + " is invalid; expected 1");
  info.version = static_cast<int>(*version);

  const auto model = a.string("model_name");
  if (!model) a.fail("model_name", "missing; expected a required string root attribute");
  info.model_name = *model;

  // Sane limits (io/limits.h) before anything is sized by them.
  info.num_layers = req_int("num_layers", 1, kMaxLayers);
  info.num_query_heads = req_int("num_query_heads", 1, kMaxHeads);
  info.num_kv_heads = req_int("num_kv_heads", 1, kMaxHeads);
  info.head_dim = req_int("head_dim", 1, kMaxHeadDim);
  if (info.num_query_heads % info.num_kv_heads != 0)
    a.fail("num_query_heads", "H_q = " + std::to_string(info.num_query_heads) +
                                  " is not a multiple of num_kv_heads H_kv = " +
                                  std::to_string(info.num_kv_heads) + "; expected H_q % H_kv == 0");

  const auto style = a.string("rope_style");
  if (!style) a.fail("rope_style", "missing; expected half_split, interleaved or none");
  try {
    info.rope_style = codec::parse_rope_style(*style);
  } catch (const InvalidArgument&) {
    a.fail("rope_style",
           "unknown value '" + *style + "'; expected half_split, interleaved or none");
  }

  const auto theta = a.real("rope_theta");
  if (info.rope_style != codec::RopeStyle::kNone) {
    if (!theta)
      a.fail("rope_theta",
             "missing; expected a float64 base θ (required when rope_style is " + *style + ")");
    if (!std::isfinite(*theta) || *theta <= 0)
      a.fail("rope_theta",
             "value " + std::to_string(*theta) + " is invalid; expected a finite θ > 0");
  }
  info.rope_theta = theta.value_or(10000.0);

  const auto rotary = a.integer("rotary_dim");
  const int64_t r = rotary.value_or(info.head_dim);
  if (r < 2 || r % 2 != 0 || r > info.head_dim)
    a.fail("rotary_dim", "value " + std::to_string(r) + (rotary ? "" : " (defaulted to head_dim)") +
                             " is invalid; expected an even number in 2.." +
                             std::to_string(info.head_dim) + " (decisions.md #9)");
  info.rotary_dim = static_cast<int>(r);

  const auto qk = a.integer("qk_norm");
  if (qk && *qk != 0 && *qk != 1)
    a.fail("qk_norm", "value " + std::to_string(*qk) + " is invalid; expected 0 or 1");
  info.qk_norm = qk.value_or(0) == 1;
  info.source_dtype = a.string("source_dtype").value_or("");
  info.text_source = a.string("text_source").value_or("");
}

DatasetMeta CaptureReader::Impl::inspect(hid_t group, int layer, TensorKind kind) {
  DatasetMeta m;
  const std::string where = dataset_path(layer, kind);
  const char* name = tensor_kind_name(kind);
  const htri_t ex = H5Lexists(group, name, H5P_DEFAULT);
  if (ex < 0) fail(where, "cannot be inspected" + h5_detail());
  if (ex == 0) return m;
  H5Id obj(H5Oopen(group, name, H5P_DEFAULT), H5Oclose);
  if (!obj.valid()) fail(where, "cannot be opened" + h5_detail());
  if (H5Iget_type(obj.get()) != H5I_DATASET) fail(where, "is not a dataset; expected a dataset");
  H5Id type(H5Dget_type(obj.get()), H5Tclose);
  H5Id space(H5Dget_space(obj.get()), H5Sclose);
  if (!type.valid() || !space.valid()) fail(where, "cannot be inspected" + h5_detail());
  m.dtype = float_dtype_name(type.get());
  if (m.dtype.empty())
    fail(where, "dtype is " + describe_type(type.get()) + "; expected float16 or float32");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank != 4)
    fail(where, "has rank " + std::to_string(rank) + "; expected 4 dimensions [S, H, T, D]");
  m.dims.resize(4);
  H5Sget_simple_extent_dims(space.get(), m.dims.data(), nullptr);
  // The declared extent must be backed by stored data (checked before any read is sized by it).
  if (std::string why; !fully_stored(obj.get(), m.dims, why))
    fail(where, "shape " + dims_text(m.dims) + " is declared but " + why + "; expected every value stored");
  m.present = true;
  return m;
}

void CaptureReader::Impl::check_shape(const std::string& where, const std::vector<hsize_t>& dims,
                                      hsize_t heads, const char* heads_name,
                                      const std::string& first_path) {
  const std::vector<hsize_t> want = {static_cast<hsize_t>(info.sequences), heads,
                                     static_cast<hsize_t>(info.tokens),
                                     static_cast<hsize_t>(info.head_dim)};
  if (dims != want)
    fail(where, "shape " + dims_text(dims) + " disagrees with the capture; expected [S, " +
                    heads_name + ", T, D] = " + dims_text(want) +
                    " (H and D from the root attributes, S and T from " + first_path + ")");
}

void CaptureReader::Impl::read_layers() {
  const htri_t ex = H5Lexists(file.get(), "layers", H5P_DEFAULT);
  if (ex <= 0) fail("/layers", "missing; expected a group with at least one layer");
  H5Id group(H5Gopen2(file.get(), "layers", H5P_DEFAULT), H5Gclose);
  if (!group.valid()) fail("/layers", "is not a group; expected a group of layers" + h5_detail());
  H5G_info_t ginfo;
  if (H5Gget_info(group.get(), &ginfo) < 0) fail("/layers", "cannot be listed" + h5_detail());

  std::string first_path;
  for (hsize_t i = 0; i < ginfo.nlinks; ++i) {
    const ssize_t n = H5Lget_name_by_idx(group.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr,
                                         0, H5P_DEFAULT);
    if (n < 0) fail("/layers", "cannot be listed" + h5_detail());
    std::string name(static_cast<size_t>(n) + 1, '\0');
    H5Lget_name_by_idx(group.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(),
                       H5P_DEFAULT);
    name.resize(static_cast<size_t>(n));
    const std::string where = "/layers/" + name;
    const bool decimal =
        !name.empty() && name.size() <= 9 &&
        std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
        (name == "0" || name[0] != '0');
    if (!decimal) fail(where, "unexpected name; expected a layer index in decimal without padding");
    const int l = std::stoi(name);
    if (l >= info.num_layers)
      fail(where, "layer index " + name + " is out of range; expected 0.." +
                      std::to_string(info.num_layers - 1) +
                      " (num_layers = " + std::to_string(info.num_layers) + ")");
    H5Id lg(H5Oopen(group.get(), name.c_str(), H5P_DEFAULT), H5Oclose);
    if (!lg.valid() || H5Iget_type(lg.get()) != H5I_GROUP)
      fail(where, "is not a group; expected a layer group" + h5_detail());

    std::array<DatasetMeta, 4> metas;
    for (TensorKind k : kAllKinds) metas[kind_index(k)] = inspect(lg.get(), l, k);
    const auto& kp = metas[kind_index(TensorKind::kKPre)];
    const auto& kk = metas[kind_index(TensorKind::kK)];
    if (!metas[kind_index(TensorKind::kV)].present)
      fail(where + "/v", "missing; expected the values [S, H_kv, T, D] (required in every layer)");
    if (!kp.present && !kk.present)
      fail(where + "/k_pre", "missing, and so is " + where + "/k; expected at least one of them");

    for (TensorKind k : kAllKinds) {
      const auto& m = metas[kind_index(k)];
      if (!m.present) continue;
      const std::string dp = dataset_path(l, k);
      if (first_path.empty()) {
        if (m.dims[0] == 0 || m.dims[2] == 0)
          fail(dp, "shape " + dims_text(m.dims) + " is empty; expected S >= 1 and T >= 1");
        if (m.dims[0] > static_cast<hsize_t>(std::numeric_limits<int32_t>::max()) ||
            m.dims[2] > static_cast<hsize_t>(std::numeric_limits<int32_t>::max()))
          fail(dp, "shape " + dims_text(m.dims) + " is too large");
        info.sequences = static_cast<int>(m.dims[0]);
        info.tokens = static_cast<int>(m.dims[2]);
        first_path = dp;
      }
      const bool q = k == TensorKind::kQPre;
      check_shape(dp, m.dims, static_cast<hsize_t>(q ? info.num_query_heads : info.num_kv_heads),
                  q ? "H_q" : "H_kv", first_path);
    }

    LayerInfo li;
    li.layer = l;
    li.has_k_pre = kp.present;
    li.has_k = kk.present;
    li.has_v = true;
    li.has_q_pre = metas[kind_index(TensorKind::kQPre)].present;
    li.dtype_k_pre = kp.dtype;
    li.dtype_k = kk.dtype;
    li.dtype_v = metas[kind_index(TensorKind::kV)].dtype;
    li.dtype_q_pre = metas[kind_index(TensorKind::kQPre)].dtype;
    AttrReader la(path, lg.get(), where);
    li.attention = la.string("attention").value_or("full");
    if (li.attention != "full" && li.attention != "sliding")
      la.fail("attention", "unknown value '" + li.attention + "'; expected full or sliding");
    if (li.attention == "sliding") {
      const auto w = la.integer("sliding_window");
      if (!w) la.fail("sliding_window", "missing; expected an int32 window for a sliding layer");
      if (*w < 1 || *w > std::numeric_limits<int32_t>::max())
        la.fail("sliding_window", "value " + std::to_string(*w) + " is invalid; expected >= 1");
      li.sliding_window = static_cast<int>(*w);
    }
    info.layers.push_back(li);
    layers[l] = std::move(metas);
  }
  if (info.layers.empty()) fail("/layers", "is empty; expected at least one layer group");
  std::sort(info.layers.begin(), info.layers.end(),
            [](const LayerInfo& x, const LayerInfo& y) { return x.layer < y.layer; });
}

void CaptureReader::Impl::read_index_datasets() {
  const size_t st = static_cast<size_t>(info.sequences) * static_cast<size_t>(info.tokens);
  for (const char* name : {"tokens", "positions"}) {
    const std::string where = std::string("/") + name;
    const htri_t ex = H5Lexists(file.get(), name, H5P_DEFAULT);
    if (ex < 0) fail(where, "cannot be inspected" + h5_detail());
    if (ex == 0) continue;
    H5Id ds(H5Dopen2(file.get(), name, H5P_DEFAULT), H5Dclose);
    if (!ds.valid())
      fail(where, "is not a dataset; expected an int32 [S, T] dataset" + h5_detail());
    H5Id type(H5Dget_type(ds.get()), H5Tclose);
    if (H5Tget_class(type.get()) != H5T_INTEGER)
      fail(where, "dtype is " + describe_type(type.get()) + "; expected int32");
    H5Id space(H5Dget_space(ds.get()), H5Sclose);
    std::vector<hsize_t> dims(2);
    if (H5Sget_simple_extent_ndims(space.get()) != 2)
      fail(where, "has rank " + std::to_string(H5Sget_simple_extent_ndims(space.get())) +
                      "; expected [S, T]");
    H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
    const std::vector<hsize_t> want = {static_cast<hsize_t>(info.sequences),
                                       static_cast<hsize_t>(info.tokens)};
    if (dims != want)
      fail(where, "shape " + dims_text(dims) +
                      " disagrees with the layers; expected [S, T] = " + dims_text(want));
    if (std::string why; !fully_stored(ds.get(), dims, why))
      fail(where, "shape " + dims_text(dims) + " is declared but " + why + "; expected every value stored");
    if (std::string(name) == "tokens") {
      info.has_tokens = true;
    } else {
      info.has_positions = true;
      check_allocation(st * 4, path + ": " + where);
      positions.resize(st);
      if (H5Dread(ds.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, positions.data()) < 0)
        throw IoError(path, "/positions: read failed" + h5_detail());
    }
  }
  if (!info.has_positions) {
    check_allocation(st * 4, path + ": positions 0..T-1 of every sequence");
    positions.resize(st);
    for (size_t s = 0; s < static_cast<size_t>(info.sequences); ++s)
      for (size_t t = 0; t < static_cast<size_t>(info.tokens); ++t)
        positions[s * static_cast<size_t>(info.tokens) + t] = static_cast<int32_t>(t);
  }
}

const DatasetMeta& CaptureReader::Impl::meta(int layer, TensorKind kind) const {
  const auto it = layers.find(layer);
  if (it == layers.end())
    throw InvalidArgument(path + ": " + layer_path(layer) + ": layer not present in the capture");
  const DatasetMeta& m = it->second[kind_index(kind)];
  if (!m.present)
    throw InvalidArgument(path + ": " + dataset_path(layer, kind) + ": dataset not stored");
  return m;
}

codec::Tensor4 CaptureReader::Impl::read_slab(int layer, TensorKind kind, int head,
                                              const ReadOptions& opt) const {
  const DatasetMeta& m = meta(layer, kind);
  const std::string where = dataset_path(layer, kind);
  const hsize_t heads = m.dims[1];
  if (head >= 0 && static_cast<hsize_t>(head) >= heads)
    throw InvalidArgument(path + ": " + where + ": head " + std::to_string(head) +
                          " out of range; expected 0.." + std::to_string(heads - 1));
  const uint64_t values = m.dims[0] * (head >= 0 ? 1 : heads) * m.dims[2] * m.dims[3];
  check_allocation(values * (m.dtype == "float16" ? 6 : 4), path + ": reading " + where);
  codec::Tensor4 out(m.dims[0], head >= 0 ? 1 : heads, m.dims[2], m.dims[3]);
  H5Id ds(H5Dopen2(file.get(), where.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.valid()) throw IoError(path, where + ": cannot open dataset" + h5_detail());
  H5Id fspace, mspace;
  if (head >= 0) {
    fspace = H5Id(H5Dget_space(ds.get()), H5Sclose);
    const hsize_t start[4] = {0, static_cast<hsize_t>(head), 0, 0};
    const hsize_t count[4] = {m.dims[0], 1, m.dims[2], m.dims[3]};
    H5Sselect_hyperslab(fspace.get(), H5S_SELECT_SET, start, nullptr, count, nullptr);
    mspace = H5Id(H5Screate_simple(4, count, nullptr), H5Sclose);
  }
  const hid_t ms = head >= 0 ? mspace.get() : H5S_ALL;
  const hid_t fs = head >= 0 ? fspace.get() : H5S_ALL;
  herr_t rc;
  if (m.dtype == "float16") {
    // HDF5 1.10 converts float16 to float through its generic soft path (about 10x slower than
    // reading); read the raw binary16 words instead and widen them exactly with codec/half.h.
    // The raw words are all overwritten by H5Dread: no zero fill (values · 2 bytes).
    H5Id f16 = make_f16_type();
    const std::unique_ptr<uint16_t[]> raw(new uint16_t[out.data.size()]);
    rc = H5Dread(ds.get(), f16.get(), ms, fs, H5P_DEFAULT, raw.get());
    if (rc >= 0) codec::simd::f16_to_f32_row(codec::simd::active_path(), raw.get(), out.data.size(), out.data.data());
  } else {
    rc = H5Dread(ds.get(), H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, out.data.data());
  }
  if (rc < 0)
    throw IoError(path, where + ": read failed (truncated or damaged file?)" + h5_detail());
  if (opt.check_finite) {
    const size_t first_bad =
        codec::simd::first_non_finite(codec::simd::active_path(), out.data.data(), out.data.size());
    if (first_bad != out.data.size()) {
      const auto bad = out.data.begin() + static_cast<std::ptrdiff_t>(first_bad);
      size_t i = first_bad;
      const size_t d = i % out.d;
      i /= out.d;
      const size_t t = i % out.t;
      i /= out.t;
      const size_t h = head >= 0 ? static_cast<size_t>(head) : i % out.h;
      const size_t s = i / out.h;
      std::ostringstream msg;
      msg << "non-finite value " << *bad << " at [s=" << s << ", h=" << h << ", t=" << t
          << ", d=" << d << "]; expected finite values";
      fail(where, msg.str());
    }
  }
  return out;
}

void CaptureReader::Impl::derive(codec::Tensor4& t, bool inverse) const {
  const codec::RopeParams p = info.rope();
  for (size_t s = 0; s < t.s; ++s)
    for (size_t h = 0; h < t.h; ++h)
      codec::apply_rope(t.row(s, h, 0), t.t, positions.data() + s * t.t, p, inverse);
}

CaptureReader::CaptureReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  H5Scope scope;
  impl_->path = path;
  impl_->info.path = path;
  impl_->open();
  impl_->read_root();
  impl_->read_layers();
  impl_->read_index_datasets();
}

CaptureReader::~CaptureReader() {
  if (!impl_) return;
  H5Scope scope;
  impl_->file.reset();
}

const CaptureInfo& CaptureReader::info() const noexcept { return impl_->info; }

bool CaptureReader::has(int layer, TensorKind kind) const noexcept {
  const auto it = impl_->layers.find(layer);
  return it != impl_->layers.end() && it->second[kind_index(kind)].present;
}

codec::Tensor4 CaptureReader::read(int layer, TensorKind kind, const ReadOptions& opt) const {
  H5Scope scope;
  return impl_->read_slab(layer, kind, -1, opt);
}

codec::Tensor4 CaptureReader::read_head(int layer, TensorKind kind, int head,
                                        const ReadOptions& opt) const {
  H5Scope scope;
  if (head < 0)
    throw InvalidArgument(impl_->path + ": " + dataset_path(layer, kind) + ": head " +
                          std::to_string(head) + " out of range");
  return impl_->read_slab(layer, kind, head, opt);
}

namespace {

/// Keys of `layer` in the pre-RoPE (`pre`) or post-RoPE domain: the stored dataset of that domain,
/// or the other one through `derive` (RoPE or its inverse), then *derived = true.
template <class Derive>
codec::Tensor4 keys_in_domain(const CaptureReader& r, int layer, bool pre, bool* derived,
                              Derive&& derive) {
  const TensorKind stored = pre ? TensorKind::kKPre : TensorKind::kK;
  if (r.has(layer, stored)) {
    if (derived) *derived = false;
    return r.read(layer, stored);
  }
  codec::Tensor4 t = r.read(layer, pre ? TensorKind::kK : TensorKind::kKPre);
  derive(t);
  if (derived) *derived = true;
  return t;
}

}  // namespace

codec::Tensor4 CaptureReader::k_pre(int layer, bool* derived) const {
  return keys_in_domain(*this, layer, true, derived,
                        [&](codec::Tensor4& t) { impl_->derive(t, true); });
}

codec::Tensor4 CaptureReader::k_post(int layer, bool* derived) const {
  return keys_in_domain(*this, layer, false, derived,
                        [&](codec::Tensor4& t) { impl_->derive(t, false); });
}

const std::vector<int32_t>& CaptureReader::positions() const noexcept { return impl_->positions; }

std::vector<int32_t> CaptureReader::tokens() const {
  H5Scope scope;
  if (!impl_->info.has_tokens) return {};
  check_allocation(
      static_cast<uint64_t>(impl_->info.sequences) * static_cast<uint64_t>(impl_->info.tokens) * 4,
      impl_->path + ": /tokens");
  std::vector<int32_t> out(static_cast<size_t>(impl_->info.sequences) *
                           static_cast<size_t>(impl_->info.tokens));
  H5Id ds(H5Dopen2(impl_->file.get(), "tokens", H5P_DEFAULT), H5Dclose);
  if (!ds.valid() ||
      H5Dread(ds.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0)
    throw IoError(impl_->path, "/tokens: read failed" + h5_detail());
  return out;
}

// =============================================================================================
// Writer
// =============================================================================================

struct CaptureWriter::Impl {
  std::string path, tmp;
  CaptureInfo info;
  CaptureWriteOptions opt;
  H5Id file;
  H5Id f16;
  std::map<int, std::array<bool, 4>> written;
  bool committed = false;

  [[noreturn]] void io_fail(const std::string& where, const std::string& what) const {
    throw IoError(path, where + ": " + what + h5_detail());
  }
  void write_string_attr(hid_t loc, const char* name, const std::string& value,
                         const std::string& where);
  void write_int_attr(hid_t loc, const char* name, int64_t value, const std::string& where);
  void write_double_attr(hid_t loc, const char* name, double value, const std::string& where);
  /// Writes (replacing) the scalar attribute `name` of `file_type` from `*value` of `mem_type`.
  void write_scalar_attr(hid_t loc, const char* name, hid_t file_type, hid_t mem_type,
                         const void* value, const std::string& where);
  H5Id layer_group(int layer);
  void write_index(const char* name, const std::vector<int32_t>& v);
};

void CaptureWriter::Impl::write_string_attr(hid_t loc, const char* name, const std::string& value,
                                            const std::string& where) {
  if (H5Aexists(loc, name) > 0) H5Adelete(loc, name);
  H5Id type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  H5Id space(H5Screate(H5S_SCALAR), H5Sclose);
  H5Id attr(H5Acreate2(loc, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  const char* p = value.c_str();
  if (!attr.valid() || H5Awrite(attr.get(), type.get(), &p) < 0)
    io_fail(where, std::string("cannot write attribute ") + name);
}

void CaptureWriter::Impl::write_scalar_attr(hid_t loc, const char* name, hid_t file_type,
                                            hid_t mem_type, const void* value,
                                            const std::string& where) {
  if (H5Aexists(loc, name) > 0) H5Adelete(loc, name);
  H5Id space(H5Screate(H5S_SCALAR), H5Sclose);
  H5Id attr(H5Acreate2(loc, name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  if (!attr.valid() || H5Awrite(attr.get(), mem_type, value) < 0)
    io_fail(where, std::string("cannot write attribute ") + name);
}

void CaptureWriter::Impl::write_int_attr(hid_t loc, const char* name, int64_t value,
                                         const std::string& where) {
  const int32_t v = static_cast<int32_t>(value);
  write_scalar_attr(loc, name, H5T_STD_I32LE, H5T_NATIVE_INT32, &v, where);
}

void CaptureWriter::Impl::write_double_attr(hid_t loc, const char* name, double value,
                                            const std::string& where) {
  write_scalar_attr(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value, where);
}

H5Id CaptureWriter::Impl::layer_group(int layer) {
  if (H5Lexists(file.get(), "layers", H5P_DEFAULT) <= 0) {
    H5Id g(H5Gcreate2(file.get(), "layers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    if (!g.valid()) io_fail("/layers", "cannot create group");
  }
  const std::string where = layer_path(layer);
  if (H5Lexists(file.get(), where.c_str(), H5P_DEFAULT) > 0) {
    H5Id g(H5Gopen2(file.get(), where.c_str(), H5P_DEFAULT), H5Gclose);
    if (!g.valid()) io_fail(where, "cannot open group");
    return g;
  }
  H5Id g(H5Gcreate2(file.get(), where.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  if (!g.valid()) io_fail(where, "cannot create group");
  write_string_attr(g.get(), "attention", "full", where);
  written[layer] = {false, false, false, false};
  return g;
}

void CaptureWriter::Impl::write_index(const char* name, const std::vector<int32_t>& v) {
  const size_t s = static_cast<size_t>(info.sequences), t = static_cast<size_t>(info.tokens);
  const std::string where = std::string("/") + name;
  if (v.size() != s * t)
    throw InvalidArgument(path + ": " + where + ": " + std::to_string(v.size()) +
                          " values; expected S*T = " + std::to_string(s * t));
  if (H5Lexists(file.get(), name, H5P_DEFAULT) > 0)
    throw InvalidArgument(path + ": " + where + ": already written");
  const hsize_t dims[2] = {s, t};
  H5Id space(H5Screate_simple(2, dims, nullptr), H5Sclose);
  H5Id ds(H5Dcreate2(file.get(), name, H5T_STD_I32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                     H5P_DEFAULT),
          H5Dclose);
  if (!ds.valid() ||
      H5Dwrite(ds.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) < 0)
    io_fail(where, "cannot write dataset");
}

CaptureWriter::CaptureWriter(const std::string& path, const CaptureInfo& info,
                             const CaptureWriteOptions& opt)
    : impl_(std::make_unique<Impl>()) {
  auto bad = [&](const std::string& what) { throw InvalidArgument(path + ": " + what); };
  if (info.num_layers < 1) bad("num_layers must be >= 1");
  if (info.num_kv_heads < 1 || info.num_query_heads < 1) bad("head counts must be >= 1");
  if (info.num_query_heads % info.num_kv_heads != 0)
    bad("num_query_heads " + std::to_string(info.num_query_heads) +
        " is not a multiple of num_kv_heads " + std::to_string(info.num_kv_heads));
  if (info.head_dim < 1) bad("head_dim must be >= 1");
  if (info.sequences < 1 || info.tokens < 1) bad("sequences and tokens must be >= 1");
  const int r = info.rotary_dim > 0 ? info.rotary_dim : info.head_dim;
  if (r < 2 || r % 2 != 0 || r > info.head_dim)
    bad("rotary_dim " + std::to_string(r) + " must be even and in 2.." +
        std::to_string(info.head_dim));
  if (info.rope_style != codec::RopeStyle::kNone &&
      !(std::isfinite(info.rope_theta) && info.rope_theta > 0))
    bad("rope_theta must be finite and > 0");
  if (opt.gzip_level < 0 || opt.gzip_level > 9)
    bad("gzip_level " + std::to_string(opt.gzip_level) + " must be in 0..9");

  check_not_an_input(path);  // e.g. run X --dump-decoded X would replace the capture with its reconstruction
  H5Scope scope;
  remove_stale_temps(path);
  impl_->path = path;
  impl_->tmp = temp_path_for(path);
  impl_->info = info;
  impl_->info.rotary_dim = r;
  impl_->opt = opt;
  H5Id fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG);
  impl_->file =
      H5Id(H5Fcreate(impl_->tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose);
  if (!impl_->file.valid())
    throw IoError(path, "cannot create temporary file " + impl_->tmp + h5_detail());
  impl_->f16 = make_f16_type();
  const hid_t root = impl_->file.get();
  Impl& w = *impl_;
  w.write_int_attr(root, "kvcapture_version", kSupportedVersion, "/");
  w.write_string_attr(root, "model_name", info.model_name, "/");
  w.write_int_attr(root, "num_layers", info.num_layers, "/");
  w.write_int_attr(root, "num_query_heads", info.num_query_heads, "/");
  w.write_int_attr(root, "num_kv_heads", info.num_kv_heads, "/");
  w.write_int_attr(root, "head_dim", info.head_dim, "/");
  w.write_string_attr(root, "rope_style", std::string(codec::rope_style_name(info.rope_style)),
                      "/");
  if (info.rope_style != codec::RopeStyle::kNone)
    w.write_double_attr(root, "rope_theta", info.rope_theta, "/");
  w.write_int_attr(root, "rotary_dim", r, "/");
  w.write_int_attr(root, "qk_norm", info.qk_norm ? 1 : 0, "/");
  if (!info.source_dtype.empty()) w.write_string_attr(root, "source_dtype", info.source_dtype, "/");
  if (!info.text_source.empty()) w.write_string_attr(root, "text_source", info.text_source, "/");
}

CaptureWriter::~CaptureWriter() {
  if (!impl_ || impl_->committed) return;
  H5Scope scope;
  impl_->f16.reset();
  impl_->file.reset();
  std::error_code ec;
  std::filesystem::remove(impl_->tmp, ec);
}

void CaptureWriter::write_tokens(const std::vector<int32_t>& tokens) {
  H5Scope scope;
  impl_->write_index("tokens", tokens);
}

void CaptureWriter::write_positions(const std::vector<int32_t>& positions) {
  H5Scope scope;
  impl_->write_index("positions", positions);
}

void CaptureWriter::write_layer(int layer, TensorKind kind, const codec::Tensor4& t) {
  Impl& w = *impl_;
  const CaptureInfo& info = w.info;
  const std::string where = dataset_path(layer, kind);
  if (w.committed) throw InvalidArgument(w.path + ": " + where + ": writer already committed");
  if (layer < 0 || layer >= info.num_layers)
    throw InvalidArgument(w.path + ": " + where + ": layer index out of range; expected 0.." +
                          std::to_string(info.num_layers - 1));
  const size_t heads =
      static_cast<size_t>(kind == TensorKind::kQPre ? info.num_query_heads : info.num_kv_heads);
  const std::vector<hsize_t> want = {static_cast<hsize_t>(info.sequences), heads,
                                     static_cast<hsize_t>(info.tokens),
                                     static_cast<hsize_t>(info.head_dim)};
  const std::vector<hsize_t> got = {t.s, t.h, t.t, t.d};
  if (got != want || t.data.size() != t.s * t.h * t.t * t.d)
    throw InvalidArgument(w.path + ": " + where + ": tensor shape " + dims_text(got) +
                          "; expected " + dims_text(want));
  // Check every value before touching the file.
  std::vector<uint16_t> half;
  if (w.opt.float16) half.resize(t.data.size());
  for (size_t i = 0; i < t.data.size(); ++i) {
    const float v = t.data[i];
    if (!std::isfinite(v) || (w.opt.float16 && std::fabs(v) > codec::kFp16Max)) {
      size_t j = i;
      const size_t d = j % t.d;
      j /= t.d;
      const size_t tt = j % t.t;
      j /= t.t;
      const size_t h = j % t.h, s = j / t.h;
      std::ostringstream msg;
      msg << w.path << ": " << where << ": value " << v << " at [s=" << s << ", h=" << h
          << ", t=" << tt << ", d=" << d << "]";
      if (!std::isfinite(v)) throw NonFiniteInput(msg.str() + " is not finite");
      throw Fp16Range(msg.str() + " exceeds the float16 range ±65504 (store as float32 instead)");
    }
    if (w.opt.float16) half[i] = codec::f32_to_f16_bits(v);
  }

  H5Scope scope;
  H5Id group = w.layer_group(layer);
  auto& flags = w.written[layer];
  if (flags[kind_index(kind)]) throw InvalidArgument(w.path + ": " + where + ": already written");
  H5Id space(H5Screate_simple(4, want.data(), nullptr), H5Sclose);
  H5Id dcpl(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  const hsize_t chunk[4] = {1, 1, std::min<hsize_t>(want[2], kMaxChunkTokens), want[3]};
  H5Pset_chunk(dcpl.get(), 4, chunk);
  if (w.opt.gzip_level > 0) {
    H5Pset_shuffle(dcpl.get());
    H5Pset_deflate(dcpl.get(), static_cast<unsigned>(w.opt.gzip_level));
  }
  const hid_t ftype = w.opt.float16 ? w.f16.get() : H5T_IEEE_F32LE;
  H5Id ds(H5Dcreate2(group.get(), tensor_kind_name(kind), ftype, space.get(), H5P_DEFAULT,
                     dcpl.get(), H5P_DEFAULT),
          H5Dclose);
  if (!ds.valid()) w.io_fail(where, "cannot create dataset");
  const herr_t rc =
      w.opt.float16
          ? H5Dwrite(ds.get(), w.f16.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, half.data())
          : H5Dwrite(ds.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data.data());
  if (rc < 0) w.io_fail(where, "cannot write dataset");
  flags[kind_index(kind)] = true;
}

void CaptureWriter::set_layer_attention(int layer, const std::string& attention,
                                        int sliding_window) {
  Impl& w = *impl_;
  const std::string where = layer_path(layer);
  if (layer < 0 || layer >= w.info.num_layers)
    throw InvalidArgument(w.path + ": " + where + ": layer index out of range");
  if (attention != "full" && attention != "sliding")
    throw InvalidArgument(w.path + ": " + where + ": attention '" + attention +
                          "'; expected full or sliding");
  if (attention == "sliding" && sliding_window < 1)
    throw InvalidArgument(w.path + ": " + where + ": sliding_window must be >= 1");
  H5Scope scope;
  H5Id group = w.layer_group(layer);
  w.write_string_attr(group.get(), "attention", attention, where);
  if (attention == "sliding")
    w.write_int_attr(group.get(), "sliding_window", sliding_window, where);
  else if (H5Aexists(group.get(), "sliding_window") > 0)
    H5Adelete(group.get(), "sliding_window");
}

void CaptureWriter::commit() {
  Impl& w = *impl_;
  if (w.committed) throw InvalidArgument(w.path + ": capture already committed");
  if (w.written.empty())
    throw InvalidArgument(w.path + ": no layer written; expected at least one");
  for (const auto& [l, f] : w.written) {
    if (!f[kind_index(TensorKind::kV)])
      throw InvalidArgument(w.path + ": " + dataset_path(l, TensorKind::kV) +
                            ": not written; every layer needs v");
    if (!f[kind_index(TensorKind::kKPre)] && !f[kind_index(TensorKind::kK)])
      throw InvalidArgument(w.path + ": " + layer_path(l) + ": neither k_pre nor k written");
  }
  {
    H5Scope scope;
    w.f16.reset();
    if (!w.file.reset())
      throw IoError(w.path, "cannot close temporary file " + w.tmp + h5_detail());
  }
  commit_temp_file(w.tmp, w.path);
  w.committed = true;
}

}  // namespace kvwb::io
