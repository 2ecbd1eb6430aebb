#pragma once
// Plane rotations of Eigen 3.4's JacobiSVD (Jacobi.h, apply_rotation_in_the_plane) on f32 vector
// lanes (docs/decisions-made.md #38). Lanes are independent elements; each gets Eigen's operations
// in Eigen's operand order, mul and add separate (no contraction), so every path writes Eigen's
// bits. The caller does Eigen's early return for (c, s) = (1, 0).
#include <cstddef>

#include "codec/simd/dispatch.h"

namespace kvwb::codec::simd {

/// Rotation of two contiguous f32 vectors x, y [n] (columns of a column-major matrix) as Eigen's
/// vectorizable selector does it: elements [head, body) in its packet form x = c·x + s·y,
/// y = c·y − s·x; elements [0, head) and [body, n) in its scalar form x = c·x + s·y,
/// y = (−s)·x + c·y. 0 <= head <= body <= n. Any path (kScalar without lanes).
void rotate_contiguous_f32(Path p, float* x, float* y, size_t n, size_t head, size_t body, float c,
                           float s);

/// Rotation of two strided f32 vectors x[i·incx], y[i·incy], i < n (rows of a column-major
/// matrix, or a row kept contiguous), in Eigen's scalar form: x = c·x + s·y, y = (−s)·x + c·y.
/// Any path.
void rotate_strided_f32(Path p, float* x, size_t incx, float* y, size_t incy, size_t n, float c,
                        float s);

/// One element pair in Eigen's packet form (x = c·x + s·y, y = c·y − s·x) or its scalar form
/// (y = (−s)·x + c·y), as rotate_contiguous_f32 treats an element of its body or of its head/tail.
void rotate_element_f32(float* x, float* y, float c, float s, bool packet_form);

}  // namespace kvwb::codec::simd
