#pragma once
// Execution backends as the front ends see them. Which backends exist, and whether CUDA was
// compiled at all, is known only to the executor factory (codec/executor_factory.cpp); this asks it.
#include <string>
#include <vector>

#include "codec/executor.h"

namespace kvwb::sessions {

using DeviceDescription = codec::DeviceDescription;
using BackendDescription = codec::BackendDescription;

/// Every backend this binary knows, compiled or not.
std::vector<BackendDescription> list_backends();

/// Resolves a requested backend ("cpu", "cuda", "auto") to the one that will run. Asking for
/// cuda when it cannot run throws Unavailable with the reason; auto falls back to cpu and puts
/// the reason into *note.
std::string resolve_backend(const std::string& requested, std::string* note);

}  // namespace kvwb::sessions
