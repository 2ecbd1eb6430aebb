#include "codec/codec_factories.h"
#include "codec/errors.h"
namespace kvwb::codec::detail {
const std::vector<ParamSpec>& turbo_params() { static const std::vector<ParamSpec> s; return s; }
std::unique_ptr<Codec> make_turbo(CodecId, const ParamMap&, size_t) { throw Unavailable("turbo is not in this build"); }
}
