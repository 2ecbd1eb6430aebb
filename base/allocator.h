#pragma once
// Process-wide allocator policy for the front ends (kvwb, kvwb-gui, bench_codecs): call once at the
// start of main. The codecs allocate per block scratch of a few hundred KiB (PCA matrices, decoded
// rows); glibc serves such sizes with mmap and returns them on free, so every block of a fresh
// process pays page faults again (a cold Kakeya stream cost about twice a warm one). Raising the
// mmap threshold to 64 MiB and the trim threshold to 256 MiB keeps freed scratch in the heap for
// the next block; buffers above 64 MiB (whole captures) are still mapped and unmapped directly.
// Results do not depend on it.
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace kvwb {

/// Keeps freed codec scratch for reuse (see above); a no-op outside glibc.
inline void keep_freed_memory_for_reuse() noexcept {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
#endif
}

}  // namespace kvwb
