#pragma once
// Validated access to a ParamMap against a codec's ParamSpec list. Every error names the codec
// and the parameter; unknown keys are refused so typos never pass silently.
#include <optional>
#include <string>
#include <vector>

#include "codec/codec.h"

namespace kvwb::codec {

class ParamReader {
 public:
  /// Throws InvalidArgument when `values` holds a key not in `specs`.
  ParamReader(std::string codec, const std::vector<ParamSpec>& specs, const ParamMap& values);
  /// Integer value (spec default when absent); range-checked.
  long long get_int(const std::string& name) const;
  /// Float value; must be finite; range-checked unless the spec has min == max == 0.
  double get_float(const std::string& name) const;
  bool get_bool(const std::string& name) const;
  /// kChoice value (must be one of the choices) or raw text for kTable.
  std::string get_string(const std::string& name) const;
  /// True when the user set it or the spec has a non-empty default.
  bool has(const std::string& name) const;
  [[noreturn]] void fail(const std::string& name, const std::string& why) const;

 private:
  const ParamSpec& spec(const std::string& name) const;
  std::optional<std::string> raw(const std::string& name) const;
  std::string codec_;
  const std::vector<ParamSpec>& specs_;
  const ParamMap& values_;
};

}  // namespace kvwb::codec
