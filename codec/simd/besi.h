#pragma once
// Besicovitch group kernels behind runtime dispatch (dispatch.h): the AVX2 / AVX-512 paths run
// independent groups in the lanes, each lane doing exactly the scalar kernel's f32 operations in
// the scalar order (codec/kernels/besicovitch.h, lloyd_max.h), so every path gives the same ids,
// magnitudes and bytes.
#include <cstddef>
#include <cstdint>

#include "codec/simd/dispatch.h"

namespace kvwb::codec::simd {

/// kernels::besi_assign with g = 2 on `groups` consecutive groups of x[0 … 2·groups) (each value
/// first reduced by mean[j], the f32 x[j] − mean[j], when mean is not null) against the m lines
/// of `codebook` [m, 2]: ids[k] and alphas[k] per group k. Returns max(0, |alphas[k]| …) (alphas
/// are never NaN; ±infinity when a dot product overflowed).
float besi_assign_g2(Path p, const float* x, const float* mean, size_t groups,
                    const float* codebook, size_t m, uint16_t* ids, float* alphas);

/// kernels::quantize_nearest(alphas[k] / s, table, count) into out[k] for k < n.
void besi_quantize(Path p, const float* alphas, size_t n, float s, const float* table,
                   size_t count, uint16_t* out);

/// kernels::besi_decode_group with g = 2 on `groups` groups: out[2k + j] = mean[2k + j] (0 when
/// mean is null) + alphas[k] · codebook[2·ids[k] + j], for ids[k] < m (the codebook's lines).
void besi_decode_g2(Path p, const uint16_t* ids, const float* alphas, size_t groups,
                    const float* codebook, size_t m, const float* mean, float* out);

}  // namespace kvwb::codec::simd
