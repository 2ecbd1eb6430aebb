#include "codec/codec_factories.h"
#include "codec/errors.h"
namespace kvwb::codec::detail {
const std::vector<ParamSpec>& ggml_params() { static const std::vector<ParamSpec> s; return s; }
std::unique_ptr<Codec> make_ggml(CodecId, const ParamMap&, size_t) { throw Unavailable("ggml is not in this build"); }
}
