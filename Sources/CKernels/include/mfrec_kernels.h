#ifndef MFREC_KERNELS_H
#define MFREC_KERNELS_H

#include <stddef.h>

/// Scores `count` rows of `stride` floats against one query: out[r] = q·row_r + bias[r].
/// `stride` must be a multiple of 16. Uses AVX2+FMA when the CPU has them (checked once at run time).
void mfrec_scores(const float *query, const float *rows, size_t stride, size_t count,
                  const float *bias, float *out);

/// Scores `count` rows against `nq` queries (each `stride` floats, consecutive):
/// out[u * count + r] = q_u·row_r + bias[r]. Each row is loaded once for all queries.
void mfrec_scores_batch(const float *queries, size_t nq, const float *rows, size_t stride, size_t count,
                        const float *bias, float *out);

/// 1 when the AVX2+FMA kernels are in use, 0 for the portable ones.
int mfrec_kernels_vectorized(void);

#endif
