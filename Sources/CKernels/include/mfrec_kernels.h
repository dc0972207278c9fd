#ifndef MFREC_KERNELS_H
#define MFREC_KERNELS_H

#include <stddef.h>
#include <stdint.h>

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

/// Loads an 8-byte-aligned 64-bit value with acquire ordering (the item matrix header's generation, which
/// a writer in another process changes around its in-place row writes).
uint64_t mfrec_load_u64_acquire(const void *p);

/// Forces the portable kernels (1) or lets the detected ones run (0), so tests cover both paths.
void mfrec_kernels_force_portable(int portable);

#endif

#include <stdint.h>

/// One SGD pass over a block of ratings (the training hot loop). Rows of P and Q are `stride` floats
/// (a multiple of 8, zero-padded). Adds the squared and absolute errors (measured before each update)
/// to *sq and *ab. With `use_bias` 0, predictions are the plain dot product; with `nonnegative` 1,
/// P and Q entries are clamped at 0 after each update.
void mfrec_sgd_block(const int32_t *users, const int32_t *items, const float *ratings, size_t count,
                     float *P, float *Q, float *user_bias, float *item_bias, size_t stride,
                     float lr, float reg_p, float reg_q, float reg_b, float mean, int use_bias, int nonnegative,
                     double *sq, double *ab);

/// out[to[r] * width ..] += weight[weight_index[r]] * in[from[r] * width ..] for r in 0..<count: the
/// sparse product of the co-occurrence embedding (rows picked by rating; prefetched ahead).
void mfrec_scatter_rows(const int32_t *from, const int32_t *to, const int32_t *weight_index, const float *weight,
                        size_t count, const float *in, float *out, size_t width);
