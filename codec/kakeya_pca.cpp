#include "codec/codec_factories.h"
#include "codec/errors.h"
namespace kvwb::codec::detail {
const std::vector<ParamSpec>& kakeya_params() { static const std::vector<ParamSpec> s; return s; }
std::unique_ptr<Codec> make_kakeya(const ParamMap&, size_t, const CodecResources&) { throw Unavailable("kakeya_pca is not in this build"); }
}
