#ifndef MFREC_KERNELS_H
#define MFREC_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/// Scores `count` rows of `stride` floats against one query: out[r] = q·row_r + bias[r] (bias may be NULL:
/// no bias), the first `k` floats of the query and of each row (k ≤ stride; any k). Every kernel below
/// computes a dot product with the same operations, so their scores agree bit for bit (see scan.c).
void mfrec_dots(const float *query, const float *rows, size_t k, size_t stride, size_t count, const float *bias,
                float *out);

/// A block of `nu` queries (`qstride` floats apart) against `count` rows, the threshold check fused in:
/// s = q_u·row_r (+ scale[u] · bias[r] when bias is not NULL); every s ≥ threshold[u] is written to
/// out_user/out_row/out_score (room for nu × count). Returns how many were written. A tile of users × rows
/// (2 × 2 in AVX2, 4 × 4 in AVX-512) is scored at a time in registers, so each row chunk is loaded once for
/// all the tile's users; every kernel's scores equal `mfrec_dots`' bit for bit. Every kernel writes each user's
/// candidates in ascending row order (the caller walks the user's sorted excluded items alongside).
size_t mfrec_block_candidates(const float *queries, size_t qstride, size_t nu, const float *rows, size_t k,
                              size_t stride, size_t count, const float *bias, const float *scale,
                              const float *threshold, uint32_t *out_user, uint32_t *out_row, float *out_score);

/// Many users at once: `mfrec_panel_pack` lays out `nu` queries (`qstride` floats apart, the first k of each) in
/// panels of 32 users, dimension-major (`mfrec_panel_floats(nu, k)` floats, 64-byte aligned, zeros past the last
/// user), with each query's Euclidean norm (rounded up) in norms[u]. `mfrec_panel_candidates` then writes exactly
/// what `mfrec_block_candidates` writes for the same arguments (the same candidates, scores and order), but on
/// AVX-512 it sums a tile of 32 users × 12 rows with one broadcast row value per dimension and no horizontal
/// reduction, and re-scores a sum within a rounding bound of a threshold with the exact kernel. Pack once, then
/// call it for every block of rows.
size_t mfrec_panel_floats(size_t nu, size_t k);
void mfrec_panel_pack(const float *queries, size_t qstride, size_t nu, size_t k, float *panel, float *norms);
size_t mfrec_panel_candidates(const float *panel, const float *norms, const float *queries, size_t qstride,
                              size_t nu, const float *rows, size_t k, size_t stride, size_t count, const float *bias,
                              const float *scale, const float *threshold, uint32_t *out_user, uint32_t *out_row,
                              float *out_score);

/// Whether a BLAS was found at run time for `mfrec_gemm_candidates` (OpenBLAS, `libopenblas.so.0`; none when
/// MFREC_BLAS=off is in the environment). Loaded once, on the first call.
int mfrec_blas_available(void);

/// Each query's Euclidean norm (rounded up) into norms[u], for `mfrec_gemm_candidates`' bound.
void mfrec_query_norms(const float *queries, size_t qstride, size_t nu, size_t k, float *norms);

/// Writes exactly what `mfrec_block_candidates` writes for the same arguments (the same candidates and scores,
/// each user's in ascending rows), but takes the sums of the whole block from one BLAS sgemm into `sums` (room
/// for nu × count floats), and re-scores with `mfrec_dots` every sum within a rounding bound of its user's
/// threshold. Without a BLAS, or with a value that leaves no bound (NaN, ∞), it is `mfrec_block_candidates`.
/// `norms` from `mfrec_query_norms`.
size_t mfrec_gemm_candidates(const float *norms, const float *queries, size_t qstride, size_t nu, const float *rows,
                             size_t k, size_t stride, size_t count, const float *bias, const float *scale,
                             const float *threshold, float *sums, uint32_t *out_user, uint32_t *out_row,
                             float *out_score);

/// sum[u] += s and sumsq[u] += s² (in double, rows in order) for s = q_u·row_r: the moments a blend with
/// a prior standardizes by, from the same dot products the candidates come from.
void mfrec_block_moments(const float *queries, size_t qstride, size_t nu, const float *rows, size_t k,
                         size_t stride, size_t count, double *sum, double *sumsq);

/// out[u · ostride + r] = q_u·row_r (+ bias[r] when bias is not NULL) for a block of `nu` queries against `count`
/// rows: every score of the block written out, two users × two rows at a time in registers, each equal to
/// `mfrec_dots`' bit for bit (a blended list keeps all of a user's scores for its standardization).
void mfrec_block_dots(const float *queries, size_t qstride, size_t nu, const float *rows, size_t k, size_t stride,
                      size_t count, const float *bias, float *out, size_t ostride);

/// The reduced-precision scans of the item matrix's scan copy: out[r] = q·row_r (+ bias[r] when bias is not
/// NULL) for `count` rows of `stride` IEEE half floats (`mfrec_scores_f16`), or out[r] = qscale · scale[r] ·
/// (q·row_r) (+ bias[r]) for rows of `stride` signed bytes and a query quantized to signed bytes in [-127, 127]
/// (`mfrec_scores_i8`, an exact integer dot product). `stride` is a multiple of 16. These scores pick candidates
/// that are then re-scored exactly from the f32 rows, so they need not agree bit for bit between kernels.
/// Kernels are chosen at run time: AVX-512 (f16 conversion; VNNI for bytes), else AVX2 (+F16C), else portable C.
void mfrec_scores_f16(const float *query, const uint16_t *rows, size_t stride, size_t count, const float *bias,
                      float *out);
void mfrec_scores_i8(const int8_t *query, float qscale, const int8_t *rows, const float *scale, size_t stride,
                     size_t count, const float *bias, float *out);

/// Which reduced-precision kernel runs for values of `bytes` bytes (2: f16, 1: i8): 0 portable, 1 AVX2 (+F16C),
/// 2 AVX-512 (VNNI for i8).
int mfrec_kernels_reduced_level(int bytes);

/// Writes to `index` (room for `count`), in order, the positions r with scores[r] ≥ threshold (NaN never);
/// returns how many. The one-user scans call it on each block of scores, so most rows never leave C.
size_t mfrec_select_ge(const float *scores, size_t count, float threshold, uint32_t *index);

/// Which block kernel `mfrec_block_candidates` runs: 0 portable, 1 AVX2+FMA, 2 AVX-512F (the same sums).
int mfrec_kernels_block_level(void);

/// Caps the reduced-precision and block kernel levels on the calling thread (2: whatever the CPU has), so
/// tests run each.
void mfrec_kernels_cap_level(int level);

/// 1 when the AVX2+FMA kernels are in use, 0 for the portable ones.
int mfrec_kernels_vectorized(void);

/// Loads an 8-byte-aligned 64-bit value with acquire ordering (the item matrix header's generation, which
/// a writer in another process changes around its in-place row writes).
uint64_t mfrec_load_u64_acquire(const void *p);

/// Forces the portable kernels (1) or lets the detected ones run (0) on the calling thread, so tests cover
/// both paths without changing what other threads run.
void mfrec_kernels_force_portable(int portable);

/// Runs fn(ctx, p) for every p in 0..<parts on the calling thread and up to parts − 1 helper threads (started on
/// first use, kept awake by spinning for 0.2 ms after each job, asleep after that; see pool.c), and returns 1 once
/// every part is done. Returns 0 without running anything when another thread's job holds the pool (one job at a
/// time): the caller then splits its work some other way.
typedef void (*mfrec_part_fn)(void *ctx, long part);
int mfrec_pool_run(long parts, mfrec_part_fn fn, void *ctx);

/// One half-sweep of implicit ALS (als.c): for each row u in [begin, end) with entries e in
/// [indptr[u], indptr[u+1]) (column indices[e], confidence excess conf[e] = c_ue − 1, preference 1), `steps`
/// conjugate-gradient steps on (G + Σ_e conf[e] y y ᵀ) x_u = Σ_e (1 + conf[e]) y, warm-started from X's row u
/// (a row without entries becomes 0). Y and X are row-major with k floats a row, G = YᵀY + λI (k × k);
/// scratch holds 3k floats.
void mfrec_als_cg(const int64_t *indptr, const int32_t *indices, const float *conf, int32_t begin, int32_t end,
                  const float *Y, const float *G, int32_t k, float *X, int32_t steps, float *scratch);

#endif

#include <stdint.h>

// Asks for every cache line of two rows of `bytes` bytes (a user's and an item's), for loops that visit rows in
// an order the hardware prefetcher cannot follow. A hint: no effect on any result.
void mfrec_prefetch_rows(const float *a, const float *b, size_t bytes);

// The sum of `count` floats, read with no arithmetic to wait for and with software prefetch: the memory-read bound
// `mfrec-bench query` compares the scans with (AVX2 where the CPU has it).
float mfrec_read_floats(const float *p, size_t count);

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
