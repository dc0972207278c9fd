// The software prefetch of the one-pass scans (reduced.c's kernels, scan.c's one-user f32 scan). Internal to
// CKernels (not under include/).
#ifndef MFREC_PREFETCH_H
#define MFREC_PREFETCH_H

#include <stddef.h>

// Asks for `bytes` of rows starting `ahead` bytes past `p`, a cache line at a time: the scans read rows in order, and
// the hardware prefetcher stops at each 4 KiB page, so each step asks for rows some way ahead of it. A prefetch never
// faults, so rows past the end need no check. (`__builtin_prefetch(p, 0, 3)` is x86's `prefetcht0`.)
static inline void mfrec_prefetch_ahead(const void *p, size_t ahead, size_t bytes) {
    for (size_t b = 0; b < bytes; b += 64) __builtin_prefetch((const char *)p + ahead + b, 0, 3);
}

#endif
