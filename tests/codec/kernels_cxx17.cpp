// Compile-only: every shared kernel header of codec/kernels/ builds as C++17 with the project's
// warnings (nvcc compiles them as C++17 device code; codec/cuda/kernels_compile.cu checks that).
#include "codec/kernels/besicovitch.h"
#include "codec/kernels/bitpack.h"
#include "codec/kernels/fp8.h"
#include "codec/kernels/ggml.h"
#include "codec/kernels/half.h"
#include "codec/kernels/hd.h"
#include "codec/kernels/kakeya.h"
#include "codec/kernels/kivi.h"
#include "codec/kernels/lloyd_max.h"
#include "codec/kernels/rng.h"
#include "codec/kernels/turbo.h"
#include "codec/kernels/wht.h"

static_assert(__cplusplus == 201703L, "the kernels are checked as C++17");
static_assert(kvwb::codec::kernels::gaussian_lloyd_max(3).size == 8);
static_assert(kvwb::codec::kernels::turbo_signs_table(1).value[0] == -1.0f);
static_assert(kvwb::codec::kernels::turbo_tables(4).block_bytes == 68);
