// The top-n scan's kernels: one user against many rows (`mfrec_dots`), and a block of users
// against a block of rows with the threshold check fused in (`mfrec_block_candidates`, `mfrec_block_moments`).
//
// Every dot product, whichever kernel and slot computes it, is the same sequence of operations: two 8-lane
// accumulators (lanes c..c+7 and c+8..c+15 of each 16-float chunk, the last chunk zero-filled past k), added
// lane-wise, then reduced as ((v0+v1)+(v2+v3))+((v4+v5)+(v6+v7)). So a user's list from the block kernel equals
// their list from the one-user scan bit for bit (in AVX2 mode and in portable mode alike), which the tests check.
#include "bounds.h"
#include "prefetch.h"
#include "mfrec_kernels.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__)
#include <immintrin.h>
#define MFREC_X86 1
#endif

int mfrec_use_avx2(void);

// MARK: Portable

static inline float reduce8(const float *v) { return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7])); }

static float dot_portable(const float *q, const float *r, size_t k) {
    float lo[8] = {0}, hi[8] = {0};
    size_t c = 0;
    for (; c + 16 <= k; c += 16)
        for (int l = 0; l < 8; l++) {
            lo[l] += q[c + l] * r[c + l];
            hi[l] += q[c + 8 + l] * r[c + 8 + l];
        }
    if (c < k)
        for (int l = 0; l < 8; l++) {
            if (c + l < k) lo[l] += q[c + l] * r[c + l];
            if (c + 8 + l < k) hi[l] += q[c + 8 + l] * r[c + 8 + l];
        }
    float v[8];
    for (int l = 0; l < 8; l++) v[l] = lo[l] + hi[l];
    return reduce8(v);
}

// MARK: AVX2 + FMA

#ifdef MFREC_X86
static const int32_t lane_mask[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

// The first `valid` lanes (0…8) of p, zeros after them; masked lanes are not read.
__attribute__((target("avx2,fma")))
static inline __m256 load_part(const float *p, size_t valid) {
    if (valid >= 8) return _mm256_loadu_ps(p);
    if (valid == 0) return _mm256_setzero_ps();
    return _mm256_maskload_ps(p, _mm256_loadu_si256((const __m256i *)(lane_mask + 8 - valid)));
}

__attribute__((target("avx2,fma")))
static inline float reduce1(__m256 v) {
    __m256 h = _mm256_hadd_ps(v, v);
    h = _mm256_hadd_ps(h, h);
    return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
}

// [d0, d1, d2, d3], each reduced exactly as reduce1 reduces one.
__attribute__((target("avx2,fma")))
static inline __m128 reduce4(__m256 d0, __m256 d1, __m256 d2, __m256 d3) {
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(d0, d1), _mm256_hadd_ps(d2, d3));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

__attribute__((target("avx2,fma")))
static float dot_avx2(const float *q, const float *r, size_t k) {
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    size_t c = 0;
    for (; c + 16 <= k; c += 16) {
        lo = _mm256_fmadd_ps(_mm256_loadu_ps(q + c), _mm256_loadu_ps(r + c), lo);
        hi = _mm256_fmadd_ps(_mm256_loadu_ps(q + c + 8), _mm256_loadu_ps(r + c + 8), hi);
    }
    if (c < k) {
        size_t rest = k - c, a = rest < 8 ? rest : 8, b = rest > 8 ? rest - 8 : 0;
        lo = _mm256_fmadd_ps(load_part(q + c, a), load_part(r + c, a), lo);
        hi = _mm256_fmadd_ps(load_part(q + c + 8, b), load_part(r + c + 8, b), hi);
    }
    return reduce1(_mm256_add_ps(lo, hi));
}

// Two users × two rows: [s(u0,r0), s(u0,r1), s(u1,r0), s(u1,r1)], each row chunk loaded once for both users.
__attribute__((target("avx2,fma")))
static inline __m128 dot2x2_avx2(const float *q0, const float *q1, const float *r0, const float *r1, size_t k) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
    __m256 c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps(), d0 = _mm256_setzero_ps(), d1 = _mm256_setzero_ps();
    size_t c = 0;
    for (; c + 16 <= k; c += 16) {
        __m256 x0 = _mm256_loadu_ps(r0 + c), x1 = _mm256_loadu_ps(r0 + c + 8);
        __m256 y0 = _mm256_loadu_ps(r1 + c), y1 = _mm256_loadu_ps(r1 + c + 8);
        __m256 p0 = _mm256_loadu_ps(q0 + c), p1 = _mm256_loadu_ps(q0 + c + 8);
        a0 = _mm256_fmadd_ps(p0, x0, a0);
        a1 = _mm256_fmadd_ps(p1, x1, a1);
        b0 = _mm256_fmadd_ps(p0, y0, b0);
        b1 = _mm256_fmadd_ps(p1, y1, b1);
        __m256 s0 = _mm256_loadu_ps(q1 + c), s1 = _mm256_loadu_ps(q1 + c + 8);
        c0 = _mm256_fmadd_ps(s0, x0, c0);
        c1 = _mm256_fmadd_ps(s1, x1, c1);
        d0 = _mm256_fmadd_ps(s0, y0, d0);
        d1 = _mm256_fmadd_ps(s1, y1, d1);
    }
    if (c < k) {
        size_t rest = k - c, a = rest < 8 ? rest : 8, b = rest > 8 ? rest - 8 : 0;
        __m256 x0 = load_part(r0 + c, a), x1 = load_part(r0 + c + 8, b);
        __m256 y0 = load_part(r1 + c, a), y1 = load_part(r1 + c + 8, b);
        __m256 p0 = load_part(q0 + c, a), p1 = load_part(q0 + c + 8, b);
        __m256 s0 = load_part(q1 + c, a), s1 = load_part(q1 + c + 8, b);
        a0 = _mm256_fmadd_ps(p0, x0, a0);
        a1 = _mm256_fmadd_ps(p1, x1, a1);
        b0 = _mm256_fmadd_ps(p0, y0, b0);
        b1 = _mm256_fmadd_ps(p1, y1, b1);
        c0 = _mm256_fmadd_ps(s0, x0, c0);
        c1 = _mm256_fmadd_ps(s1, x1, c1);
        d0 = _mm256_fmadd_ps(s0, y0, d0);
        d1 = _mm256_fmadd_ps(s1, y1, d1);
    }
    return reduce4(_mm256_add_ps(a0, a1), _mm256_add_ps(b0, b1), _mm256_add_ps(c0, c1), _mm256_add_ps(d0, d1));
}
#endif

// MARK: Entry points

static inline float dot1(int avx, const float *q, const float *r, size_t k) {
#ifdef MFREC_X86
    if (avx) return dot_avx2(q, r, k);
#endif
    (void)avx;
    return dot_portable(q, r, k);
}

void mfrec_dots(const float *q, const float *rows, size_t k, size_t stride, size_t count, const float *bias,
                float *out) {
    // One query is a block of one user: in AVX2 four rows share a reduction (`dot1x4_avx2`), the same sums as one
    // `dot_avx2` each.
    mfrec_block_dots(q, k, 1, rows, k, stride, count, bias, out, count);
}


// s(u, r) for a 2 × 2 block (or fewer: a missing user or row is skipped), passed to `visit`.
#define MFREC_BLOCK_LOOP(VISIT)                                                                              \
    size_t u = 0;                                                                                            \
    for (; u + 2 <= nu; u += 2) {                                                                            \
        const float *q0 = queries + u * qstride, *q1 = q0 + qstride;                                         \
        size_t r = 0;                                                                                        \
        BLOCK_PAIRS(VISIT)                                                                                   \
        for (; r < count; r++) {                                                                             \
            const float *x = rows + r * stride;                                                              \
            VISIT(u, r, dot1(avx, q0, x, k));                                                                \
            VISIT(u + 1, r, dot1(avx, q1, x, k));                                                            \
        }                                                                                                    \
    }                                                                                                        \
    for (; u < nu; u++) {                                                                                    \
        const float *q0 = queries + u * qstride;                                                             \
        for (size_t r = 0; r < count; r++) VISIT(u, r, dot1(avx, q0, rows + r * stride, k));                 \
    }

#ifdef MFREC_X86
#define BLOCK_PAIRS(VISIT)                                                                                   \
    if (avx)                                                                                                 \
        for (; r + 2 <= count; r += 2) {                                                                     \
            float s[4];                                                                                      \
            _mm_storeu_ps(s, dot2x2_avx2(q0, q1, rows + r * stride, rows + (r + 1) * stride, k));            \
            VISIT(u, r, s[0]);                                                                               \
            VISIT(u, r + 1, s[1]);                                                                           \
            VISIT(u + 1, r, s[2]);                                                                           \
            VISIT(u + 1, r + 1, s[3]);                                                                       \
        }
#else
#define BLOCK_PAIRS(VISIT)
#endif

#ifdef MFREC_X86
// One user × four rows: [s(r0), s(r1), s(r2), s(r3)], each summed exactly as `dot_avx2` sums it (the same lo/hi
// accumulators, then `reduce4`'s tree, which is `reduce1`'s), with the query's chunks loaded once for the four
// rows and one reduction for four dots instead of four.
__attribute__((target("avx2,fma")))
static inline __m128 dot1x4_avx2(const float *q, const float *r0, const float *r1, const float *r2, const float *r3,
                                 size_t k) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
    __m256 c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps(), d0 = _mm256_setzero_ps(), d1 = _mm256_setzero_ps();
    size_t c = 0;
    for (; c + 16 <= k; c += 16) {
        __m256 p0 = _mm256_loadu_ps(q + c), p1 = _mm256_loadu_ps(q + c + 8);
        a0 = _mm256_fmadd_ps(p0, _mm256_loadu_ps(r0 + c), a0);
        a1 = _mm256_fmadd_ps(p1, _mm256_loadu_ps(r0 + c + 8), a1);
        b0 = _mm256_fmadd_ps(p0, _mm256_loadu_ps(r1 + c), b0);
        b1 = _mm256_fmadd_ps(p1, _mm256_loadu_ps(r1 + c + 8), b1);
        c0 = _mm256_fmadd_ps(p0, _mm256_loadu_ps(r2 + c), c0);
        c1 = _mm256_fmadd_ps(p1, _mm256_loadu_ps(r2 + c + 8), c1);
        d0 = _mm256_fmadd_ps(p0, _mm256_loadu_ps(r3 + c), d0);
        d1 = _mm256_fmadd_ps(p1, _mm256_loadu_ps(r3 + c + 8), d1);
    }
    if (c < k) {
        size_t rest = k - c, a = rest < 8 ? rest : 8, b = rest > 8 ? rest - 8 : 0;
        __m256 p0 = load_part(q + c, a), p1 = load_part(q + c + 8, b);
        a0 = _mm256_fmadd_ps(p0, load_part(r0 + c, a), a0);
        a1 = _mm256_fmadd_ps(p1, load_part(r0 + c + 8, b), a1);
        b0 = _mm256_fmadd_ps(p0, load_part(r1 + c, a), b0);
        b1 = _mm256_fmadd_ps(p1, load_part(r1 + c + 8, b), b1);
        c0 = _mm256_fmadd_ps(p0, load_part(r2 + c, a), c0);
        c1 = _mm256_fmadd_ps(p1, load_part(r2 + c + 8, b), c1);
        d0 = _mm256_fmadd_ps(p0, load_part(r3 + c, a), d0);
        d1 = _mm256_fmadd_ps(p1, load_part(r3 + c + 8, b), d1);
    }
    return reduce4(_mm256_add_ps(a0, a1), _mm256_add_ps(b0, b1), _mm256_add_ps(c0, c1), _mm256_add_ps(d0, d1));
}

// The candidates a tiled kernel left: rows from `tiled_rows` on for the first `tiled_users` users, every row for
// the users after them (four rows at a time by `dot1x4_avx2`, the last few one dot at a time; the same sums
// either way), appended after the `found` already written; returns the new count. A one-user scan is all tail.
__attribute__((target("avx2,fma")))
static size_t tail_candidates(const float *queries, size_t qstride, size_t nu, const float *rows, size_t k,
                              size_t stride, size_t count, const float *bias, const float *scale,
                              const float *threshold, size_t tiled_users, size_t tiled_rows, uint32_t *out_user,
                              uint32_t *out_row, float *out_score, size_t found) {
    for (size_t w = 0; w < nu; w++) {
        const float *q = queries + w * qstride;
        size_t r = w < tiled_users ? tiled_rows : 0;
        __m128 limit = _mm_set1_ps(threshold[w]), factor = _mm_set1_ps(bias ? scale[w] : 0);
        for (; r + 4 <= count; r += 4) {
            const float *x0 = rows + r * stride;
            __m128 s = dot1x4_avx2(q, x0, x0 + stride, x0 + 2 * stride, x0 + 3 * stride, k);
            if (bias) s = _mm_add_ps(s, _mm_mul_ps(factor, _mm_loadu_ps(bias + r)));
            int pass = _mm_movemask_ps(_mm_cmp_ps(s, limit, _CMP_GE_OQ));
            if (pass) {
                float v[4];
                _mm_storeu_ps(v, s);
                for (int j = 0; j < 4; j++)
                    if (pass & (1 << j)) {
                        out_user[found] = (uint32_t)w;
                        out_row[found] = (uint32_t)(r + j);
                        out_score[found] = v[j];
                        found++;
                    }
            }
        }
        for (; r < count; r++) {
            float v = dot_avx2(q, rows + r * stride, k);
            if (bias) v = v + scale[w] * bias[r];
            if (v >= threshold[w]) {
                out_user[found] = (uint32_t)w;
                out_row[found] = (uint32_t)r;
                out_score[found] = v;
                found++;
            }
        }
    }
    return found;
}

// The candidates of a 2 × 2 block: s + scale·bias compared with the thresholds four at a time (the same
// operations as the scalar check: one multiply, one add), stored only when one passes.
__attribute__((target("avx2,fma")))
static size_t candidates_avx2(const float *queries, size_t qstride, size_t nu, const float *rows, size_t k,
                              size_t stride, size_t count, const float *bias, const float *scale,
                              const float *threshold, uint32_t *out_user, uint32_t *out_row, float *out_score) {
    size_t found = 0;
    // Rows outer, users inner: a row pair stays in registers and L1 while every user pair of the block (their
    // queries a few KiB, in L1 too) is scored against it.
    size_t pairs = nu / 2, even = count & ~(size_t)1;
    __m128 limits[pairs > 0 ? pairs : 1], factors[pairs > 0 ? pairs : 1];
    for (size_t p = 0; p < pairs; p++) {
        limits[p] = _mm_setr_ps(threshold[2 * p], threshold[2 * p], threshold[2 * p + 1], threshold[2 * p + 1]);
        factors[p] = bias ? _mm_setr_ps(scale[2 * p], scale[2 * p], scale[2 * p + 1], scale[2 * p + 1])
                          : _mm_setzero_ps();
    }
    for (size_t r = 0; r < even; r += 2) {
        const float *x0 = rows + r * stride, *x1 = x0 + stride;
        __m128 b = bias ? _mm_setr_ps(bias[r], bias[r + 1], bias[r], bias[r + 1]) : _mm_setzero_ps();
        for (size_t p = 0; p < pairs; p++) {
            size_t v0 = 2 * p;
            const float *q0 = queries + v0 * qstride, *q1 = q0 + qstride;
            __m128 s = dot2x2_avx2(q0, q1, x0, x1, k);
            if (bias) s = _mm_add_ps(s, _mm_mul_ps(factors[p], b));
            int pass = _mm_movemask_ps(_mm_cmp_ps(s, limits[p], _CMP_GE_OQ));
            if (pass) {
                float v[4];
                _mm_storeu_ps(v, s);
                for (int j = 0; j < 4; j++)
                    if (pass & (1 << j)) {
                        out_user[found] = (uint32_t)(v0 + (j >> 1));
                        out_row[found] = (uint32_t)(r + (j & 1));
                        out_score[found] = v[j];
                        found++;
                    }
            }
        }
    }
    // The rest one dot at a time: the odd last row for the paired users, every row for an odd last user.
    return tail_candidates(queries, qstride, nu, rows, k, stride, count, bias, scale, threshold, 2 * pairs, even,
                           out_user, out_row, out_score, found);
}
#endif

#ifdef MFREC_X86
// AVX-512: a 16-lane accumulator holds lanes c..c+7 in its low half and c+8..c+15 in its high half, so one FMA is
// the AVX2 kernel's two and the sums are the same bit for bit: v = low + high, then the same pairwise tree
// (in-lane shuffles + adds do what hadd does). Tiles of 4 users × 4 rows: 16 accumulators, 8 loads a chunk.

// [a0+a1, a2+a3, b0+b1, b2+b3] in each 128-bit lane: _mm256_hadd_ps's sums, on 512 bits.
__attribute__((target("avx512f")))
static inline __m512 hadd512(__m512 a, __m512 b) {
    return _mm512_add_ps(_mm512_shuffle_ps(a, b, 0x88), _mm512_shuffle_ps(a, b, 0xDD));
}

// [lo(a) + hi(a) | lo(b) + hi(b)]: two rows' 8-lane sums v for one user.
__attribute__((target("avx512f")))
static inline __m512 fold512(__m512 a, __m512 b) {
    return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
}

// Eight dots reduced: a[u] holds (user u, row r0), b[u] (user u, row r1), for u = 0…3. Returns
// [s(u0,r0), s(u1,r0), s(u2,r0), s(u3,r0), s(u0,r1), …, s(u3,r1)], each ((v0+v1)+(v2+v3))+((v4+v5)+(v6+v7)).
__attribute__((target("avx512f")))
static inline __m256 reduce8x512(const __m512 *a, const __m512 *b) {
    __m512 h1 = hadd512(fold512(a[0], b[0]), fold512(a[1], b[1]));
    __m512 h2 = hadd512(fold512(a[2], b[2]), fold512(a[3], b[3]));
    __m512 h = _mm512_shuffle_f32x4(hadd512(h1, h2), hadd512(h1, h2), 0xD8);  // lanes [L0, L2, L1, L3]
    return _mm256_add_ps(_mm512_castps512_ps256(h), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(h), 1)));
}

// Stores the scores of `pass` (bit j: lane j of [u0..u3 of row r, u0..u3 of row r+1]).
#define MFREC_STORE_PASSING(PASS, S, U, R)                                                                   \
    do {                                                                                                     \
        float v_[8];                                                                                         \
        _mm256_storeu_ps(v_, (S));                                                                           \
        for (int j_ = 0; j_ < 8; j_++)                                                                       \
            if ((PASS) & (1 << j_)) {                                                                        \
                out_user[found] = (uint32_t)((U) + (j_ & 3));                                                \
                out_row[found] = (uint32_t)((R) + (j_ >> 2));                                                \
                out_score[found] = v_[j_];                                                                   \
                found++;                                                                                     \
            }                                                                                                \
    } while (0)

__attribute__((target("avx512f,avx2,fma")))
static size_t candidates_avx512(const float *queries, size_t qstride, size_t nu, const float *rows, size_t k,
                                size_t stride, size_t count, const float *bias, const float *scale,
                                const float *threshold, uint32_t *out_user, uint32_t *out_row, float *out_score) {
    size_t found = 0;
    size_t quads = nu / 4, rquads = count / 4, full = k / 16;
    __mmask16 tail = (__mmask16)((1u << (k % 16)) - 1);
    __m256 limits[quads > 0 ? quads : 1], factors[quads > 0 ? quads : 1];
    for (size_t p = 0; p < quads; p++) {
        __m128 t = _mm_loadu_ps(threshold + 4 * p);
        limits[p] = _mm256_set_m128(t, t);
        __m128 f = bias ? _mm_loadu_ps(scale + 4 * p) : _mm_setzero_ps();
        factors[p] = _mm256_set_m128(f, f);
    }
    for (size_t rq = 0; rq < rquads; rq++) {
        size_t r = 4 * rq;
        const float *x0 = rows + r * stride, *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride;
        __m256 b01 = _mm256_setzero_ps(), b23 = _mm256_setzero_ps();
        if (bias) {
            b01 = _mm256_set_m128(_mm_set1_ps(bias[r + 1]), _mm_set1_ps(bias[r]));
            b23 = _mm256_set_m128(_mm_set1_ps(bias[r + 3]), _mm_set1_ps(bias[r + 2]));
        }
        for (size_t p = 0; p < quads; p++) {
            size_t v0 = 4 * p;
            const float *q = queries + v0 * qstride;
            __m512 a0[4], a1[4], a2[4], a3[4];  // a_r[u]: user u, row r
            for (int u = 0; u < 4; u++) a0[u] = a1[u] = a2[u] = a3[u] = _mm512_setzero_ps();
            size_t c = 0;
            for (size_t chunk = 0; chunk < full; chunk++, c += 16) {
                __m512 y0 = _mm512_loadu_ps(x0 + c), y1 = _mm512_loadu_ps(x1 + c);
                __m512 y2 = _mm512_loadu_ps(x2 + c), y3 = _mm512_loadu_ps(x3 + c);
                for (int u = 0; u < 4; u++) {
                    __m512 s = _mm512_loadu_ps(q + u * qstride + c);
                    a0[u] = _mm512_fmadd_ps(s, y0, a0[u]);
                    a1[u] = _mm512_fmadd_ps(s, y1, a1[u]);
                    a2[u] = _mm512_fmadd_ps(s, y2, a2[u]);
                    a3[u] = _mm512_fmadd_ps(s, y3, a3[u]);
                }
            }
            if (tail) {
                __m512 y0 = _mm512_maskz_loadu_ps(tail, x0 + c), y1 = _mm512_maskz_loadu_ps(tail, x1 + c);
                __m512 y2 = _mm512_maskz_loadu_ps(tail, x2 + c), y3 = _mm512_maskz_loadu_ps(tail, x3 + c);
                for (int u = 0; u < 4; u++) {
                    __m512 s = _mm512_maskz_loadu_ps(tail, q + u * qstride + c);
                    a0[u] = _mm512_fmadd_ps(s, y0, a0[u]);
                    a1[u] = _mm512_fmadd_ps(s, y1, a1[u]);
                    a2[u] = _mm512_fmadd_ps(s, y2, a2[u]);
                    a3[u] = _mm512_fmadd_ps(s, y3, a3[u]);
                }
            }
            __m256 s01 = reduce8x512(a0, a1), s23 = reduce8x512(a2, a3);
            if (bias) {
                s01 = _mm256_add_ps(s01, _mm256_mul_ps(factors[p], b01));
                s23 = _mm256_add_ps(s23, _mm256_mul_ps(factors[p], b23));
            }
            int pass01 = _mm256_movemask_ps(_mm256_cmp_ps(s01, limits[p], _CMP_GE_OQ));
            int pass23 = _mm256_movemask_ps(_mm256_cmp_ps(s23, limits[p], _CMP_GE_OQ));
            if (pass01) MFREC_STORE_PASSING(pass01, s01, v0, r);
            if (pass23) MFREC_STORE_PASSING(pass23, s23, v0, r + 2);
        }
    }
    // The rest one dot at a time: the last rows (count % 4) for the tiled users, every row for the last users.
    return tail_candidates(queries, qstride, nu, rows, k, stride, count, bias, scale, threshold, 4 * quads,
                           4 * rquads, out_user, out_row, out_score, found);
}
#undef MFREC_STORE_PASSING
#endif

// Users per panel of `mfrec_panel_pack` (two 16-lane vectors a dimension).
#define MFREC_PANEL_USERS 32

#ifdef MFREC_X86
// AVX-512, many users: 32 users' queries transposed into a panel (dimension-major, 2 zmm per dimension), each
// row's value at a dimension broadcast, so a tile of 32 users × 12 rows sums in 24 accumulators with no
// reduction at all. Those sums run in dimension order, not the other kernels' tree, so they only pick
// candidates: a score within the rounding bound of the threshold is re-scored by `dot_avx2` (the exact sum every
// other kernel computes) and the threshold checked again, so the candidates written are exactly the other
// kernels'. Bound: two float sums of the same k products differ by at most 2·γ_k·Σ|q_d·x_d| ≤
// 2·γ_k·‖q‖·‖x‖ (γ_k = k·u/(1 − k·u), u = 2⁻²⁴; Higham, Accuracy and Stability of Numerical Algorithms, §3.1),
// plus a rounding of each's bias term and final sum; the margin below is twice that. (An AVX2 form, 16 users ×
// 6 rows, measured slower than `candidates_avx2` on the batch bench's 40k × 20k × 64 model — 3.8–4.2 s of CPU
// against 3.7–3.9 s — so AVX2 keeps that one.)
#define MFREC_PANEL_ROWS 12

// An upper bound of max_r ‖row_r‖² over `count` rows: the lane-wise maximum of the rows' 16-lane partial sums of
// squares, summed (Σ_l max_r ≥ max_r Σ_l), then widened for the float rounding of the squares and sums.
__attribute__((target("avx512f")))
static double max_row_norm2(const float *rows, size_t k, size_t stride, size_t count) {
    size_t full = k / 16;
    __mmask16 tail = (__mmask16)((1u << (k % 16)) - 1);
    __m512 top = _mm512_setzero_ps(), all = _mm512_setzero_ps();  // `all`: a NaN or ∞ anywhere stays in it
    for (size_t r = 0; r < count; r++) {
        const float *x = rows + r * stride;
        __m512 acc = _mm512_setzero_ps();
        size_t c = 0;
        for (size_t chunk = 0; chunk < full; chunk++, c += 16) {
            __m512 v = _mm512_loadu_ps(x + c);
            acc = _mm512_fmadd_ps(v, v, acc);
        }
        if (tail) {
            __m512 v = _mm512_maskz_loadu_ps(tail, x + c);
            acc = _mm512_fmadd_ps(v, v, acc);
        }
        top = _mm512_max_ps(top, acc);
        all = _mm512_add_ps(all, acc);
    }
    float lanes[16], check[16];
    _mm512_storeu_ps(lanes, top);
    _mm512_storeu_ps(check, all);
    double sum = 0;
    for (int l = 0; l < 16; l++) {
        if (!isfinite(check[l])) return INFINITY;
        sum += (double)lanes[l];
    }
    return sum * (1.0 + (double)(k + 16) * 0x1p-23);
}

// Each panel slot's limit: the user's threshold lowered by the rounding bound (see above), +∞ for an empty slot;
// and its bias factor.
static void panel_limits(const float *norms, size_t nu, size_t p0, size_t k, double row_norm, double max_bias,
                         int has_bias, const float *scale, const float *threshold, float *limit, float *factor) {
    for (size_t j = 0; j < MFREC_PANEL_USERS; j++) {
        size_t u = p0 + j;
        if (u >= nu) {
            limit[j] = INFINITY;  // an empty slot (zeros in the panel): nothing passes
            factor[j] = 0;
            continue;
        }
        factor[j] = has_bias ? scale[u] : 0;
        limit[j] = mfrec_candidate_limit(threshold[u], norms[u], row_norm, factor[j], max_bias, k);
    }
}

__attribute__((target("avx512f,avx2,fma")))
static size_t candidates_panel512(const float *panel, const float *norms, const float *queries, size_t qstride,
                                  size_t nu, const float *rows, size_t k, size_t stride, size_t count,
                                  const float *bias, const float *scale, const float *threshold, uint32_t *out_user,
                                  uint32_t *out_row, float *out_score) {
    size_t found = 0;
    if (count == 0 || nu == 0) return 0;
    double row_norm = sqrt(max_row_norm2(rows, k, stride, count)), max_bias = bias ? mfrec_max_abs(bias, count) : 0;
    // A NaN or infinite row or bias leaves no bound: the block kernel scores this block (NaN scores are never
    // candidates there, the other rows are).
    if (!isfinite(row_norm) || !isfinite(max_bias))
        return candidates_avx512(queries, qstride, nu, rows, k, stride, count, bias, scale, threshold, out_user,
                                 out_row, out_score);
    for (size_t p0 = 0; p0 < nu; p0 += MFREC_PANEL_USERS, panel += k * MFREC_PANEL_USERS) {
        float limit[MFREC_PANEL_USERS], factor[MFREC_PANEL_USERS];
        panel_limits(norms, nu, p0, k, row_norm, max_bias, bias != NULL, scale, threshold, limit, factor);
        __m512 lim0 = _mm512_loadu_ps(limit), lim1 = _mm512_loadu_ps(limit + 16);
        __m512 f0 = _mm512_loadu_ps(factor), f1 = _mm512_loadu_ps(factor + 16);
        for (size_t r = 0; r < count; r += MFREC_PANEL_ROWS) {
            size_t nr = count - r < MFREC_PANEL_ROWS ? count - r : MFREC_PANEL_ROWS;
            __m512 a0[MFREC_PANEL_ROWS], a1[MFREC_PANEL_ROWS];
            const float *x = rows + r * stride;
            if (nr == MFREC_PANEL_ROWS) {
                // Unrolled by hand: 24 accumulators, two panel loads and twelve broadcasts a dimension.
                const float *x0 = x, *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride, *x4 = x3 + stride,
                            *x5 = x4 + stride, *x6 = x5 + stride, *x7 = x6 + stride, *x8 = x7 + stride,
                            *x9 = x8 + stride, *x10 = x9 + stride, *x11 = x10 + stride;
                __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0,
                       c8 = c0, c9 = c0, c10 = c0, c11 = c0;
                __m512 e0 = c0, e1 = c0, e2 = c0, e3 = c0, e4 = c0, e5 = c0, e6 = c0, e7 = c0, e8 = c0, e9 = c0,
                       e10 = c0, e11 = c0;
                const float *pq = panel;
                for (size_t d = 0; d < k; d++, pq += MFREC_PANEL_USERS) {
                    __m512 q0 = _mm512_load_ps(pq), q1 = _mm512_load_ps(pq + 16), v;
#define MFREC_PANEL_STEP(I)                                                                                  \
    v = _mm512_set1_ps(x##I[d]);                                                                             \
    c##I = _mm512_fmadd_ps(q0, v, c##I);                                                                     \
    e##I = _mm512_fmadd_ps(q1, v, e##I);
                    MFREC_PANEL_STEP(0) MFREC_PANEL_STEP(1) MFREC_PANEL_STEP(2) MFREC_PANEL_STEP(3)
                    MFREC_PANEL_STEP(4) MFREC_PANEL_STEP(5) MFREC_PANEL_STEP(6) MFREC_PANEL_STEP(7)
                    MFREC_PANEL_STEP(8) MFREC_PANEL_STEP(9) MFREC_PANEL_STEP(10) MFREC_PANEL_STEP(11)
#undef MFREC_PANEL_STEP
                }
                a0[0] = c0, a0[1] = c1, a0[2] = c2, a0[3] = c3, a0[4] = c4, a0[5] = c5;
                a0[6] = c6, a0[7] = c7, a0[8] = c8, a0[9] = c9, a0[10] = c10, a0[11] = c11;
                a1[0] = e0, a1[1] = e1, a1[2] = e2, a1[3] = e3, a1[4] = e4, a1[5] = e5;
                a1[6] = e6, a1[7] = e7, a1[8] = e8, a1[9] = e9, a1[10] = e10, a1[11] = e11;
            } else {
                for (size_t i = 0; i < nr; i++) {
                    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
                    for (size_t d = 0; d < k; d++) {
                        __m512 v = _mm512_set1_ps(x[i * stride + d]);
                        s0 = _mm512_fmadd_ps(_mm512_load_ps(panel + d * MFREC_PANEL_USERS), v, s0);
                        s1 = _mm512_fmadd_ps(_mm512_load_ps(panel + d * MFREC_PANEL_USERS + 16), v, s1);
                    }
                    a0[i] = s0;
                    a1[i] = s1;
                }
            }
            for (size_t i = 0; i < nr; i++) {
                __m512 s0 = a0[i], s1 = a1[i];
                if (bias) {
                    __m512 b = _mm512_set1_ps(bias[r + i]);
                    s0 = _mm512_add_ps(s0, _mm512_mul_ps(f0, b));
                    s1 = _mm512_add_ps(s1, _mm512_mul_ps(f1, b));
                }
                uint32_t pass = (uint32_t)_mm512_cmp_ps_mask(s0, lim0, _CMP_GE_OQ) |
                                ((uint32_t)_mm512_cmp_ps_mask(s1, lim1, _CMP_GE_OQ) << 16);
                while (pass) {
                    int j = __builtin_ctz(pass);
                    pass &= pass - 1;
                    size_t u = p0 + (size_t)j;
                    float v = dot_avx2(queries + u * qstride, x + i * stride, k);
                    if (bias) v = v + scale[u] * bias[r + i];
                    if (v >= threshold[u]) {
                        out_user[found] = (uint32_t)u;
                        out_row[found] = (uint32_t)(r + i);
                        out_score[found] = v;
                        found++;
                    }
                }
            }
        }
    }
    return found;
}
#undef MFREC_PANEL_ROWS
#endif

size_t mfrec_panel_floats(size_t nu, size_t k) {
    return (nu + MFREC_PANEL_USERS - 1) / MFREC_PANEL_USERS * MFREC_PANEL_USERS * k;
}

void mfrec_query_norms(const float *queries, size_t qstride, size_t nu, size_t k, float *norms) {
    for (size_t u = 0; u < nu; u++) {
        double norm2 = 0;
        for (size_t d = 0; d < k; d++) norm2 += (double)queries[u * qstride + d] * (double)queries[u * qstride + d];
        // Rounded up, so that the margin stays a bound (on the BLAS path a non-finite norm sends the block to the
        // exact kernel).
        norms[u] = (float)(sqrt(norm2) * (1.0 + 0x1p-20));
    }
}

void mfrec_panel_pack(const float *queries, size_t qstride, size_t nu, size_t k, float *panel, float *norms) {
    size_t panels = (nu + MFREC_PANEL_USERS - 1) / MFREC_PANEL_USERS;
    for (size_t p = 0; p < panels; p++, panel += k * MFREC_PANEL_USERS)
        for (size_t j = 0; j < MFREC_PANEL_USERS; j++) {
            size_t u = p * MFREC_PANEL_USERS + j;
            for (size_t d = 0; d < k; d++) panel[d * MFREC_PANEL_USERS + j] = u < nu ? queries[u * qstride + d] : 0;
        }
    mfrec_query_norms(queries, qstride, nu, k, norms);
}

size_t mfrec_panel_candidates(const float *panel, const float *norms, const float *queries, size_t qstride,
                              size_t nu, const float *rows, size_t k, size_t stride, size_t count, const float *bias,
                              const float *scale, const float *threshold, uint32_t *out_user, uint32_t *out_row,
                              float *out_score) {
#ifdef MFREC_X86
    if (mfrec_use_avx2() && mfrec_kernels_block_level() == 2)
        return candidates_panel512(panel, norms, queries, qstride, nu, rows, k, stride, count, bias, scale,
                                   threshold, out_user, out_row, out_score);
#endif
    (void)panel;
    (void)norms;
    return mfrec_block_candidates(queries, qstride, nu, rows, k, stride, count, bias, scale, threshold, out_user,
                                  out_row, out_score);
}
#undef MFREC_PANEL_USERS

size_t mfrec_block_candidates(const float *queries, size_t qstride, size_t nu, const float *rows, size_t k,
                              size_t stride, size_t count, const float *bias, const float *scale,
                              const float *threshold, uint32_t *out_user, uint32_t *out_row, float *out_score) {
    int avx = mfrec_use_avx2();
#ifdef MFREC_X86
    if (avx && mfrec_kernels_block_level() == 2)
        return candidates_avx512(queries, qstride, nu, rows, k, stride, count, bias, scale, threshold, out_user,
                                 out_row, out_score);
    if (avx)
        return candidates_avx2(queries, qstride, nu, rows, k, stride, count, bias, scale, threshold, out_user,
                               out_row, out_score);
#endif
    size_t found = 0;
#define MFREC_CANDIDATE(U, R, S)                                                                             \
    do {                                                                                                     \
        float v_ = (S);                                                                                      \
        if (bias) v_ = v_ + scale[(U)] * bias[(R)];                                                          \
        if (v_ >= threshold[(U)]) {                                                                          \
            out_user[found] = (uint32_t)(U);                                                                 \
            out_row[found] = (uint32_t)(R);                                                                  \
            out_score[found] = v_;                                                                           \
            found++;                                                                                         \
        }                                                                                                    \
    } while (0)
    MFREC_BLOCK_LOOP(MFREC_CANDIDATE)
#undef MFREC_CANDIDATE
    return found;
}

void mfrec_block_moments(const float *queries, size_t qstride, size_t nu, const float *rows, size_t k,
                         size_t stride, size_t count, double *sum, double *sumsq) {
    int avx = mfrec_use_avx2();
#define MFREC_MOMENT(U, R, S)                                                                                \
    do {                                                                                                     \
        double v_ = (double)(S);                                                                             \
        sum[(U)] += v_;                                                                                      \
        sumsq[(U)] += v_ * v_;                                                                               \
    } while (0)
    MFREC_BLOCK_LOOP(MFREC_MOMENT)
#undef MFREC_MOMENT
}

#ifdef MFREC_X86
// Every score of a block, in AVX2: two users × two rows at a time (`dot2x2_avx2`, inlined here), one user's rows
// four at a time (`dot1x4_avx2`); the same sums as `dot_avx2`'s. (A kernel with eight rows transposed into the
// lanes, which needs no horizontal sums, ran 20% slower than this one here: 10.9 against 13.3 GFLOP/s.)
__attribute__((target("avx2,fma")))
static void block_dots_avx2(const float *queries, size_t qstride, size_t nu, const float *rows, size_t k,
                            size_t stride, size_t count, const float *bias, float *out, size_t ostride) {
    size_t u = 0;
    for (; u + 2 <= nu; u += 2) {
        const float *q0 = queries + u * qstride, *q1 = q0 + qstride;
        float *o0 = out + u * ostride, *o1 = o0 + ostride;
        size_t r = 0;
        for (; r + 2 <= count; r += 2) {
            __m128 s = dot2x2_avx2(q0, q1, rows + r * stride, rows + (r + 1) * stride, k);
            if (bias) s = _mm_add_ps(s, _mm_setr_ps(bias[r], bias[r + 1], bias[r], bias[r + 1]));
            float v[4];
            _mm_storeu_ps(v, s);
            o0[r] = v[0];
            o0[r + 1] = v[1];
            o1[r] = v[2];
            o1[r + 1] = v[3];
        }
        for (; r < count; r++) {
            const float *x = rows + r * stride;
            float a = dot_avx2(q0, x, k), b = dot_avx2(q1, x, k);
            o0[r] = bias ? a + bias[r] : a;
            o1[r] = bias ? b + bias[r] : b;
        }
    }
    for (; u < nu; u++) {
        const float *q = queries + u * qstride;
        float *o = out + u * ostride;
        size_t r = 0;
        for (; r + 4 <= count; r += 4) {
            const float *x0 = rows + r * stride;
            // A one-user scan reads each row once, in order: ask for the rows 32 ahead. On 59,047 × 64 rows in the
            // L3 this took a one-thread scan from 1.3–2.4× to 1.0–1.2× of a plain read of the rows (C harness); on
            // 1,000,000 rows, read from memory, it changes nothing.
            mfrec_prefetch_ahead(x0, 32 * stride * sizeof(float), 4 * stride * sizeof(float));
            __m128 s = dot1x4_avx2(q, x0, x0 + stride, x0 + 2 * stride, x0 + 3 * stride, k);
            if (bias) s = _mm_add_ps(s, _mm_loadu_ps(bias + r));
            _mm_storeu_ps(o + r, s);
        }
        for (; r < count; r++) {
            float a = dot_avx2(q, rows + r * stride, k);
            o[r] = bias ? a + bias[r] : a;
        }
    }
}
#endif

void mfrec_block_dots(const float *queries, size_t qstride, size_t nu, const float *rows, size_t k, size_t stride,
                      size_t count, const float *bias, float *out, size_t ostride) {
    int avx = mfrec_use_avx2();
#ifdef MFREC_X86
    if (avx) {
        block_dots_avx2(queries, qstride, nu, rows, k, stride, count, bias, out, ostride);
        return;
    }
#endif
#define MFREC_STORE(U, R, S)                                                                                 \
    do {                                                                                                     \
        float v_ = (S);                                                                                      \
        out[(U) * ostride + (R)] = bias ? v_ + bias[(R)] : v_;                                               \
    } while (0)
    MFREC_BLOCK_LOOP(MFREC_STORE)
#undef MFREC_STORE
}
