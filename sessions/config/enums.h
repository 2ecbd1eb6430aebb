#pragma once
// The run configuration's enumerated settings. Inside the core they are enums; text exists only at
// the JSON / CLI / GUI edge: parse_* turn text into a value (a typed error lists the accepted
// values and names the source), *_name give back exactly the spelling that result JSON, session
// files and config_hash have always used.
#include <cstdint>
#include <string>
#include <string_view>

#include "codec/traits.h"

namespace kvwb::sessions {

/// TurboQuant layer policy of the fork (codec-peers.md §1.7); none = types exactly as chosen.
enum class TurboPolicy : uint8_t { kNone, kForkAuto, kMode1, kMode2, kMode5, kMode6, kMode7 };
/// Execution backend a configuration asks for; auto = cuda when it can run the codecs, else cpu.
enum class Backend : uint8_t { kCpu, kCuda, kAuto };

/// "none" | "fork_auto" | "mode1" | "mode2" | "mode5" | "mode6" | "mode7".
std::string_view turbo_policy_name(TurboPolicy p) noexcept;
/// "cpu" | "cuda" | "auto".
std::string_view backend_name(Backend b) noexcept;

/// Each parser accepts exactly the spellings of its *_name function; anything else throws
/// InvalidArgument "<source> must be one of a, b, … (got 'x')".
TurboPolicy parse_turbo_policy(std::string_view text, const std::string& source);
Backend parse_backend(std::string_view text, const std::string& source);
codec::BlockRows parse_block_rows(std::string_view text, const std::string& source);
codec::KDomain parse_k_domain(std::string_view text, const std::string& source);

}  // namespace kvwb::sessions
