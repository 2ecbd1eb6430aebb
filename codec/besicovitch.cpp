#include "codec/codec_factories.h"
#include "codec/errors.h"
namespace kvwb::codec::detail {
const std::vector<ParamSpec>& besicovitch_params() { static const std::vector<ParamSpec> s; return s; }
std::unique_ptr<Codec> make_besicovitch(const ParamMap&, size_t) { throw Unavailable("besicovitch is not in this build"); }
}
