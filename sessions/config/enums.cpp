#include "sessions/config/enums.h"

#include <initializer_list>

#include "base/errors.h"

namespace kvwb::sessions {

namespace {

/// The value of `values` whose name is `text`; otherwise InvalidArgument listing every name.
template <class E, class NameOf>
E parse(std::string_view text, const std::string& source, std::initializer_list<E> values,
        NameOf name_of) {
  for (E v : values)
    if (name_of(v) == text) return v;
  std::string names;
  for (E v : values) names += (names.empty() ? "" : ", ") + std::string(name_of(v));
  throw InvalidArgument(source + " must be one of " + names + " (got '" + std::string(text) + "')");
}

}  // namespace

std::string_view turbo_policy_name(TurboPolicy p) noexcept {
  switch (p) {
    case TurboPolicy::kNone:
      return "none";
    case TurboPolicy::kForkAuto:
      return "fork_auto";
    case TurboPolicy::kMode1:
      return "mode1";
    case TurboPolicy::kMode2:
      return "mode2";
    case TurboPolicy::kMode5:
      return "mode5";
    case TurboPolicy::kMode6:
      return "mode6";
    case TurboPolicy::kMode7:
      return "mode7";
  }
  return "none";
}

std::string_view backend_name(Backend b) noexcept {
  switch (b) {
    case Backend::kCpu:
      return "cpu";
    case Backend::kCuda:
      return "cuda";
    case Backend::kAuto:
      return "auto";
  }
  return "cpu";
}

TurboPolicy parse_turbo_policy(std::string_view text, const std::string& source) {
  return parse(text, source,
               {TurboPolicy::kNone, TurboPolicy::kForkAuto, TurboPolicy::kMode1,
                TurboPolicy::kMode2, TurboPolicy::kMode5, TurboPolicy::kMode6, TurboPolicy::kMode7},
               turbo_policy_name);
}

Backend parse_backend(std::string_view text, const std::string& source) {
  return parse(text, source, {Backend::kCpu, Backend::kCuda, Backend::kAuto}, backend_name);
}

codec::BlockRows parse_block_rows(std::string_view text, const std::string& source) {
  return parse(text, source, {codec::BlockRows::kPerHead, codec::BlockRows::kPooledHeads},
               codec::block_rows_name);
}

codec::KDomain parse_k_domain(std::string_view text, const std::string& source) {
  return parse(text, source, {codec::KDomain::kPreRope, codec::KDomain::kPostRope},
               codec::k_domain_name);
}

}  // namespace kvwb::sessions
