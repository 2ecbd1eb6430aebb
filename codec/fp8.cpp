#include "codec/codec_factories.h"
#include "codec/errors.h"
namespace kvwb::codec::detail {
const std::vector<ParamSpec>& fp8_params() { static const std::vector<ParamSpec> s; return s; }
std::unique_ptr<Codec> make_fp8(const ParamMap&, size_t) { throw Unavailable("fp8 is not in this build"); }
}
