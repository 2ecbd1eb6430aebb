#pragma once
// Number formatting shared by the view models (plain text, no Qt).
#include <cstdio>
#include <string>

namespace kvwb::views {

/// `format`, a printf format with one double conversion ("%.3g", "%+.1f %%"), applied to `v`.
/// At most 95 characters.
inline std::string format_number(const char* format, double v) {
  char buf[96];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

}  // namespace kvwb::views
