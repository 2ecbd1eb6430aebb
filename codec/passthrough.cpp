#include "codec/codec_factories.h"
#include "codec/errors.h"
namespace kvwb::codec::detail {
const std::vector<ParamSpec>& bf16_params() { static const std::vector<ParamSpec> s; return s; }
std::unique_ptr<Codec> make_bf16(const ParamMap&, size_t) { throw Unavailable("bf16 is not in this build"); }
}
