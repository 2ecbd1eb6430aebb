#pragma once
// Execution backends as the front ends see them. Which backends exist, and whether CUDA was
// compiled at all, is known only to the executor factory (codec/executor_factory.cpp); this asks it.
#include <string>
#include <vector>

#include "codec/executor.h"
#include "sessions/config/enums.h"

namespace kvwb::sessions {

using DeviceDescription = codec::DeviceDescription;
using BackendDescription = codec::BackendDescription;

/// Every backend this binary knows, compiled or not.
std::vector<BackendDescription> list_backends();

/// Resolves a requested backend to the one that will run (cpu or cuda). Asking for cuda when it
/// cannot run throws Unavailable with the reason; auto falls back to cpu and puts the reason into
/// *note.
Backend resolve_backend(Backend requested, std::string* note);

}  // namespace kvwb::sessions
