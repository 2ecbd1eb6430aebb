#include "sessions/run/backends.h"

namespace kvwb::sessions {

std::vector<BackendDescription> list_backends() { return codec::describe_backends(); }

Backend resolve_backend(Backend requested, std::string* note) {
  const std::string chosen = codec::resolve_executor(backend_name(requested), note);
  return parse_backend(chosen, "the executor factory");
}

}  // namespace kvwb::sessions
