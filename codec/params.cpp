#include "codec/params.h"

#include <charconv>
#include <cmath>

#include "base/errors.h"

namespace kvwb::codec {

ParamReader::ParamReader(std::string codec, const std::vector<ParamSpec>& specs,
                         const ParamMap& values)
    : codec_(std::move(codec)), specs_(specs), values_(values) {
  for (const auto& [k, v] : values_) {
    bool known = false;
    for (const auto& s : specs_) known = known || s.name == k;
    if (!known) {
      std::string names;
      for (const auto& s : specs_) names += (names.empty() ? "" : ", ") + s.name;
      throw InvalidArgument("codec " + codec_ + ": unknown parameter '" + k + "' (known: " +
                            (names.empty() ? "none" : names) + ")");
    }
  }
}

const ParamSpec& ParamReader::spec(const std::string& name) const {
  for (const auto& s : specs_)
    if (s.name == name) return s;
  throw InvalidArgument("codec " + codec_ + ": internal: no parameter '" + name + "'");
}

std::optional<std::string> ParamReader::raw(const std::string& name) const {
  auto it = values_.find(name);
  if (it != values_.end()) return it->second;
  const auto& s = spec(name);
  if (s.default_value.empty()) return std::nullopt;
  return s.default_value;
}

bool ParamReader::has(const std::string& name) const { return raw(name).has_value(); }

void ParamReader::fail(const std::string& name, const std::string& why) const {
  throw InvalidArgument("codec " + codec_ + ": parameter '" + name + "' " + why);
}

long long ParamReader::get_int(const std::string& name) const {
  const auto& s = spec(name);
  auto r = raw(name);
  if (!r) fail(name, "has no value");
  long long v = 0;
  const char* b = r->data();
  const char* e = b + r->size();
  int base = 10;
  if (r->size() > 2 && (*r)[0] == '0' && ((*r)[1] == 'x' || (*r)[1] == 'X')) {
    b += 2;
    base = 16;
  }
  unsigned long long uv = 0;
  auto [p, ec] = std::from_chars(b, e, uv, base);
  if (ec != std::errc() || p != e) fail(name, "must be an integer, got '" + *r + "'");
  v = static_cast<long long>(uv);
  if (uv > 0x7FFFFFFFFFFFFFFFull) v = static_cast<long long>(uv);  // seeds keep their bits
  if (!(s.min == 0.0 && s.max == 0.0) && (static_cast<double>(v) < s.min || static_cast<double>(v) > s.max))
    fail(name, "must be in [" + std::to_string(static_cast<long long>(s.min)) + ", " +
                   std::to_string(static_cast<long long>(s.max)) + "], got " + *r);
  return v;
}

double ParamReader::get_float(const std::string& name) const {
  const auto& s = spec(name);
  auto r = raw(name);
  if (!r) fail(name, "has no value");
  double v = 0;
  auto [p, ec] = std::from_chars(r->data(), r->data() + r->size(), v);
  if (ec != std::errc() || p != r->data() + r->size()) fail(name, "must be a number, got '" + *r + "'");
  if (!std::isfinite(v)) fail(name, "must be finite, got '" + *r + "'");
  if (!(s.min == 0.0 && s.max == 0.0) && (v < s.min || v > s.max))
    fail(name, "must be in [" + std::to_string(s.min) + ", " + std::to_string(s.max) + "], got " + *r);
  return v;
}

bool ParamReader::get_bool(const std::string& name) const {
  auto r = raw(name);
  if (!r) fail(name, "has no value");
  if (*r == "true" || *r == "1" || *r == "on") return true;
  if (*r == "false" || *r == "0" || *r == "off") return false;
  fail(name, "must be true or false, got '" + *r + "'");
}

std::string ParamReader::get_string(const std::string& name) const {
  const auto& s = spec(name);
  auto r = raw(name);
  if (!r) return {};
  if (s.type == ParamType::kChoice) {
    for (const auto& c : s.choices)
      if (c == *r) return *r;
    std::string cs;
    for (const auto& c : s.choices) cs += (cs.empty() ? "" : ", ") + c;
    fail(name, "must be one of {" + cs + "}, got '" + *r + "'");
  }
  return *r;
}

}  // namespace kvwb::codec
