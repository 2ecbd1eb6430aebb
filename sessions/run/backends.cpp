#include "sessions/run/backends.h"

namespace kvwb::sessions {

std::vector<BackendDescription> list_backends() { return codec::describe_backends(); }

std::string resolve_backend(const std::string& requested, std::string* note) {
  return codec::resolve_executor(requested, note);
}

}  // namespace kvwb::sessions
