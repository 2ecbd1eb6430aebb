#include "io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>
#include <utility>

#include "base/errors.h"
#include "codec/format/half.h"
#include "io/atomic_file.h"

namespace kvwb::io {

namespace {

using nlohmann::json;

constexpr const char* kMetadataKey = "__metadata__";
/// Deepest container start the format needs: 0 = header object, 1 = entry / metadata object,
/// 2 = "shape" / "data_offsets" arrays.
constexpr int kMaxContainerDepth = 2;

struct DtypeInfo {
  const char* name;
  uint64_t size;
};
constexpr DtypeInfo kDtypes[] = {
    {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
    {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},     {"U32", 4},
    {"F32", 4},  {"I64", 8}, {"U64", 8}, {"F64", 8},     {"C64", 8},
};

std::string known_dtypes() {
  std::string s;
  for (const auto& d : kDtypes) {
    if (!s.empty()) s += ", ";
    s += d.name;
  }
  return s;
}

/// a * b, or false on overflow.
bool checked_mul(uint64_t a, uint64_t b, uint64_t& out) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return false;
  out = a * b;
  return true;
}

/// Product of `shape`, or false on overflow.
bool checked_product(const std::vector<uint64_t>& shape, uint64_t& out) {
  uint64_t n = 1;
  for (const uint64_t d : shape)
    if (!checked_mul(n, d, n)) return false;
  out = n;
  return true;
}

std::string shape_text(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

/// Validated header entry before its bytes are copied.
struct Entry {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
  uint64_t begin = 0, end = 0;
};

class HeaderParser {
 public:
  HeaderParser(std::string source) : source_(std::move(source)) {}

  [[noreturn]] void fail(const std::string& msg) const {
    throw FormatError(source_ + ": safetensors: " + msg);
  }
  [[noreturn]] void fail_tensor(const std::string& name, const std::string& msg) const {
    fail("tensor '" + name + "': " + msg);
  }

  /// Parses the JSON text, refusing duplicate keys at any level and nesting deeper than the
  /// format needs (nlohmann::json alone would silently keep the last duplicate).
  json parse_json(std::string_view text) {
    std::vector<std::set<std::string>> keys;  // keys seen, per open object
    std::string entry;                        // current top-level key
    json::parser_callback_t cb = [&](int depth, json::parse_event_t event, json& parsed) {
      switch (event) {
        case json::parse_event_t::object_start:
        case json::parse_event_t::array_start:
          if (depth > kMaxContainerDepth)
            fail("header nests JSON " + std::to_string(depth + 1) + " levels deep inside entry '" +
                 entry + "'; the format allows " + std::to_string(kMaxContainerDepth + 1));
          if (event == json::parse_event_t::object_start) keys.emplace_back();
          break;
        case json::parse_event_t::object_end:
          if (!keys.empty()) keys.pop_back();
          break;
        case json::parse_event_t::key: {
          const std::string& k = parsed.get_ref<const std::string&>();
          if (depth == 1) entry = k;
          if (keys.empty()) break;
          if (!keys.back().insert(k).second) {
            if (depth == 1) fail("duplicate key '" + k + "' in the header");
            fail("duplicate key '" + k + "' in entry '" + entry + "'");
          }
          break;
        }
        default:
          break;
      }
      return true;
    };
    try {
      return json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/true,
                         /*ignore_comments=*/false);
    } catch (const json::exception& e) {
      fail(std::string("header is not valid JSON: ") + e.what());
    }
  }

  std::vector<uint64_t> unsigned_array(const std::string& name, const json& v, const char* field) {
    if (!v.is_array()) fail_tensor(name, std::string("field '") + field + "' is not an array");
    std::vector<uint64_t> out;
    out.reserve(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_number_unsigned())
        fail_tensor(name, std::string("field '") + field + "' element " + std::to_string(i) +
                              " is " + v[i].dump() + ", expected a non-negative integer");
      out.push_back(v[i].get<uint64_t>());
    }
    return out;
  }

  Entry entry(const std::string& name, const json& v, uint64_t data_size) {
    if (!v.is_object()) fail_tensor(name, "entry is not a JSON object");
    for (const auto& [k, unused] : v.items()) {
      if (k != "dtype" && k != "shape" && k != "data_offsets")
        fail_tensor(name, "unexpected field '" + k + "' (expected dtype, shape, data_offsets)");
    }
    for (const char* f : {"dtype", "shape", "data_offsets"})
      if (!v.contains(f)) fail_tensor(name, std::string("missing field '") + f + "'");

    Entry e;
    e.name = name;
    const json& dt = v["dtype"];
    if (!dt.is_string()) fail_tensor(name, "field 'dtype' is not a string");
    e.dtype = dt.get<std::string>();
    const uint64_t elem = safetensors_dtype_size(e.dtype);
    if (elem == 0)
      fail_tensor(name, "unknown or unsupported dtype '" + e.dtype + "' (expected one of " +
                            known_dtypes() + ")");
    e.shape = unsigned_array(name, v["shape"], "shape");
    const std::vector<uint64_t> off = unsigned_array(name, v["data_offsets"], "data_offsets");
    if (off.size() != 2)
      fail_tensor(name, "field 'data_offsets' has " + std::to_string(off.size()) +
                            " elements, expected [begin, end]");
    e.begin = off[0];
    e.end = off[1];
    if (e.begin > e.end)
      fail_tensor(name, "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                            "] has begin > end");
    uint64_t count = 0, nbytes = 0;
    if (!checked_product(e.shape, count) || !checked_mul(count, elem, nbytes))
      fail_tensor(name, "shape " + shape_text(e.shape) + " x " + e.dtype + " overflows 64 bits");
    if (nbytes != e.end - e.begin)
      fail_tensor(name, "shape " + shape_text(e.shape) + " x " + e.dtype + " needs " +
                            std::to_string(nbytes) + " bytes but data_offsets [" +
                            std::to_string(e.begin) + ", " + std::to_string(e.end) + "] span " +
                            std::to_string(e.end - e.begin));
    if (e.end > data_size)
      fail_tensor(name, "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                            "] run past the end of the data section (" + std::to_string(data_size) +
                            " bytes)");
    return e;
  }

  std::map<std::string, std::string> metadata(const json& v) {
    if (!v.is_object()) fail("'__metadata__' is not a JSON object of string -> string");
    std::map<std::string, std::string> out;
    for (const auto& [k, val] : v.items()) {
      if (!val.is_string())
        fail("'__metadata__' entry '" + k + "' is " + val.dump() + ", expected a string");
      out.emplace(k, val.get<std::string>());
    }
    return out;
  }

 private:
  std::string source_;
};

}  // namespace

uint64_t SafeTensor::element_count() const {
  uint64_t n = 0;
  if (!checked_product(shape, n))
    throw InvalidArgument("tensor '" + name + "': shape " + shape_text(shape) + " overflows");
  return n;
}

const SafeTensor* SafeTensorsFile::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

uint64_t safetensors_dtype_size(const std::string& dtype) noexcept {
  for (const auto& d : kDtypes)
    if (dtype == d.name) return d.size;
  return 0;
}

std::vector<float> tensor_to_f32(const SafeTensor& t) {
  const uint64_t elem = safetensors_dtype_size(t.dtype);
  if (t.dtype != "F32" && t.dtype != "F16" && t.dtype != "BF16")
    throw Unsupported("tensor '" + t.name + "': dtype '" + t.dtype +
                      "' cannot be read as f32 (F32, F16 and BF16 can)");
  const uint64_t count = t.element_count();
  if (count > t.data.size() / elem || count * elem != t.data.size())
    throw FormatError("tensor '" + t.name + "': " + std::to_string(t.data.size()) +
                      " data bytes, expected shape " + shape_text(t.shape) + " x " + t.dtype +
                      " = " + std::to_string(count) + " x " + std::to_string(elem));
  std::vector<float> out(static_cast<size_t>(count));
  if (t.dtype == "F32") {
    if (count > 0) std::memcpy(out.data(), t.data.data(), t.data.size());
    return out;
  }
  const bool half = t.dtype == "F16";
  for (size_t i = 0; i < out.size(); ++i) {
    uint16_t bits;
    std::memcpy(&bits, t.data.data() + 2 * i, 2);
    out[i] = half ? codec::f16_bits_to_f32(bits) : codec::bf16_bits_to_f32(bits);
  }
  return out;
}

SafeTensor make_f32_tensor(std::string name, std::vector<uint64_t> shape,
                           std::span<const float> values) {
  SafeTensor t;
  t.name = std::move(name);
  t.dtype = "F32";
  t.shape = std::move(shape);
  const uint64_t count = t.element_count();
  if (count != values.size())
    throw InvalidArgument("tensor '" + t.name + "': " + std::to_string(values.size()) +
                          " values for shape " + shape_text(t.shape));
  t.data.resize(values.size() * 4);
  if (!values.empty()) std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

SafeTensorsFile parse_safetensors(std::span<const uint8_t> bytes, const std::string& source) {
  HeaderParser p(source);
  if (bytes.size() < 8)
    p.fail("file is " + std::to_string(bytes.size()) +
           " bytes, shorter than the 8-byte header length field");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);  // little-endian host (asserted in CMake)
  const uint64_t rest = bytes.size() - 8;
  if (n > rest)
    p.fail("header length " + std::to_string(n) + " exceeds the " + std::to_string(rest) +
           " bytes after the length field");
  if (n > kMaxSafetensorsHeaderBytes)
    p.fail("header length " + std::to_string(n) + " exceeds the limit of " +
           std::to_string(kMaxSafetensorsHeaderBytes) + " bytes");
  const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8),
                              static_cast<size_t>(n));
  const json header = p.parse_json(text);
  if (!header.is_object()) p.fail("header is not a JSON object");

  const uint64_t data_start = 8 + n;
  const uint64_t data_size = bytes.size() - data_start;
  SafeTensorsFile file;
  std::vector<Entry> entries;
  entries.reserve(header.size());
  for (const auto& [key, value] : header.items()) {
    if (key == kMetadataKey)
      file.metadata = p.metadata(value);
    else
      entries.push_back(p.entry(key, value, data_size));
  }

  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  uint64_t cursor = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : entries) {
    if (e.begin < cursor)
      p.fail_tensor(e.name, "data_offsets [" + std::to_string(e.begin) + ", " +
                                std::to_string(e.end) + "] overlap tensor '" + prev->name + "' [" +
                                std::to_string(prev->begin) + ", " + std::to_string(prev->end) +
                                "]");
    if (e.begin > cursor)
      p.fail_tensor(e.name, "data bytes [" + std::to_string(cursor) + ", " +
                                std::to_string(e.begin) +
                                ") before this tensor belong to no tensor (gaps are not allowed)");
    cursor = e.end;
    prev = &e;
  }
  if (cursor != data_size)
    p.fail("data section is " + std::to_string(data_size) + " bytes but the tensors cover only " +
           std::to_string(cursor) + " (unreferenced trailing bytes are not allowed)");

  file.tensors.reserve(entries.size());
  for (Entry& e : entries) {
    SafeTensor t;
    t.name = std::move(e.name);
    t.dtype = std::move(e.dtype);
    t.shape = std::move(e.shape);
    const uint8_t* begin = bytes.data() + data_start + e.begin;
    t.data.assign(begin, begin + (e.end - e.begin));
    file.tensors.push_back(std::move(t));
  }
  return file;
}

SafeTensorsFile read_safetensors(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file(path);
  return parse_safetensors(bytes, path);
}

std::vector<uint8_t> serialize_safetensors(const SafeTensorsFile& file) {
  std::vector<const SafeTensor*> order;
  order.reserve(file.tensors.size());
  for (const auto& t : file.tensors) order.push_back(&t);
  // std::string compares as unsigned char: byte-wise lexicographic, so layer_10 < layer_1_.
  std::sort(order.begin(), order.end(),
            [](const SafeTensor* a, const SafeTensor* b) { return a->name < b->name; });

  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  nlohmann::ordered_json meta = nlohmann::ordered_json::object();
  if (file.metadata.empty()) {
    meta["format"] = "pt";
  } else {
    for (const auto& [k, v] : file.metadata) meta[k] = v;
  }
  header[kMetadataKey] = std::move(meta);

  uint64_t offset = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const SafeTensor& t = *order[i];
    if (t.name == kMetadataKey)
      throw InvalidArgument("safetensors: '__metadata__' is reserved and cannot name a tensor");
    if (i > 0 && order[i - 1]->name == t.name)
      throw InvalidArgument("safetensors: duplicate tensor name '" + t.name + "'");
    const uint64_t elem = safetensors_dtype_size(t.dtype);
    if (elem == 0)
      throw InvalidArgument("safetensors: tensor '" + t.name + "': unknown dtype '" + t.dtype +
                            "' (expected one of " + known_dtypes() + ")");
    uint64_t nbytes = 0;
    if (!checked_mul(t.element_count(), elem, nbytes) || nbytes != t.data.size())
      throw InvalidArgument(
          "safetensors: tensor '" + t.name + "': " + std::to_string(t.data.size()) +
          " data bytes do not match shape " + shape_text(t.shape) + " x " + t.dtype);
    nlohmann::ordered_json e = nlohmann::ordered_json::object();
    e["dtype"] = t.dtype;
    e["shape"] = t.shape;
    e["data_offsets"] = {offset, offset + nbytes};
    header[t.name] = std::move(e);
    offset += nbytes;
  }

  std::string text;
  try {
    text = header.dump();
  } catch (const nlohmann::ordered_json::exception& e) {
    throw InvalidArgument(
        std::string("safetensors: a tensor name or metadata string is not UTF-8: ") + e.what());
  }
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');

  const uint64_t n = text.size();
  std::vector<uint8_t> out(static_cast<size_t>(8 + n + offset));
  std::memcpy(out.data(), &n, 8);  // little-endian host (asserted in CMake)
  std::memcpy(out.data() + 8, text.data(), text.size());
  size_t pos = static_cast<size_t>(8 + n);
  for (const SafeTensor* t : order) {
    if (!t->data.empty()) std::memcpy(out.data() + pos, t->data.data(), t->data.size());
    pos += t->data.size();
  }
  return out;
}

void write_safetensors(const std::string& path, const SafeTensorsFile& file) {
  const std::vector<uint8_t> bytes = serialize_safetensors(file);
  write_file_atomic(path, std::span<const uint8_t>(bytes));
}

}  // namespace kvwb::io
