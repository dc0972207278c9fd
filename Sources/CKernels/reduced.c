// The reduced-precision scans of the item matrix's scan copy (`train --item-precision f16|i8`): each row is
// `stride` IEEE half floats, or `stride` signed bytes with one float scale per row. They only pick candidates,
// which the caller re-scores exactly from the f32 rows, so unlike scan.c's kernels they need not agree bit for
// bit with each other. The F16C/AVX2+FMA versions score four rows at a time (two accumulators each, so eight
// independent FMA chains) and are chosen at run time; the portable ones are plain C.
#include "mfrec_kernels.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define MFREC_X86 1
#endif

int mfrec_use_avx2(void);

static atomic_int has_f16c = 0;
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;

static void detect(void) {
#ifdef MFREC_X86
    __builtin_cpu_init();
    atomic_store(&has_f16c, __builtin_cpu_supports("f16c") ? 1 : 0);
#endif
}

int mfrec_kernels_f16c(void) {
    pthread_once(&detect_once, detect);
    return mfrec_use_avx2() && atomic_load(&has_f16c);
}

// MARK: Portable

static inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
    uint32_t bits;
    if (exponent == 0) {
        float f = (float)mantissa * (1.0f / 16777216.0f);  // subnormal (or zero): mantissa · 2^-24
        return sign ? -f : f;
    } else if (exponent == 31) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static void scores_f16_portable(const float *q, const uint16_t *rows, size_t stride, size_t count, const float *bias,
                                float *out) {
    for (size_t r = 0; r < count; r++) {
        const uint16_t *row = rows + r * stride;
        float acc[8] = {0};
        for (size_t c = 0; c < stride; c += 8)
            for (int l = 0; l < 8; l++) acc[l] += q[c + l] * half_to_float(row[c + l]);
        float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        out[r] = bias ? s + bias[r] : s;
    }
}

static void scores_i8_portable(const float *q, const int8_t *rows, const float *scale, size_t stride, size_t count,
                               const float *bias, float *out) {
    for (size_t r = 0; r < count; r++) {
        const int8_t *row = rows + r * stride;
        float acc[8] = {0};
        for (size_t c = 0; c < stride; c += 8)
            for (int l = 0; l < 8; l++) acc[l] += q[c + l] * (float)row[c + l];
        float s = (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))) * scale[r];
        out[r] = bias ? s + bias[r] : s;
    }
}

// MARK: F16C / AVX2 + FMA

#ifdef MFREC_X86
__attribute__((target("avx2,fma")))
static inline __m128 reduce4(__m256 d0, __m256 d1, __m256 d2, __m256 d3) {
    __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(d0, d1), _mm256_hadd_ps(d2, d3));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

__attribute__((target("avx2,fma")))
static inline float reduce1(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

__attribute__((target("avx2,fma,f16c")))
static inline __m256 half8(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }

__attribute__((target("avx2,fma,f16c")))
static void scores_f16_avx2(const float *q, const uint16_t *rows, size_t stride, size_t count, const float *bias,
                            float *out) {
    size_t r = 0;
    for (; r + 4 <= count; r += 4) {
        const uint16_t *r0 = rows + r * stride, *r1 = r0 + stride, *r2 = r1 + stride, *r3 = r2 + stride;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps(), b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
        for (size_t c = 0; c < stride; c += 16) {
            __m256 x = _mm256_loadu_ps(q + c), y = _mm256_loadu_ps(q + c + 8);
            a0 = _mm256_fmadd_ps(x, half8(r0 + c), a0);
            a1 = _mm256_fmadd_ps(x, half8(r1 + c), a1);
            a2 = _mm256_fmadd_ps(x, half8(r2 + c), a2);
            a3 = _mm256_fmadd_ps(x, half8(r3 + c), a3);
            b0 = _mm256_fmadd_ps(y, half8(r0 + c + 8), b0);
            b1 = _mm256_fmadd_ps(y, half8(r1 + c + 8), b1);
            b2 = _mm256_fmadd_ps(y, half8(r2 + c + 8), b2);
            b3 = _mm256_fmadd_ps(y, half8(r3 + c + 8), b3);
        }
        __m128 s = reduce4(_mm256_add_ps(a0, b0), _mm256_add_ps(a1, b1), _mm256_add_ps(a2, b2), _mm256_add_ps(a3, b3));
        if (bias) s = _mm_add_ps(s, _mm_loadu_ps(bias + r));
        _mm_storeu_ps(out + r, s);
    }
    for (; r < count; r++) {
        const uint16_t *row = rows + r * stride;
        __m256 a = _mm256_setzero_ps();
        for (size_t c = 0; c < stride; c += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + c), half8(row + c), a);
        float s = reduce1(a);
        out[r] = bias ? s + bias[r] : s;
    }
}

__attribute__((target("avx2,fma")))
static inline __m256 bytes8(__m128i b) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)); }

__attribute__((target("avx2,fma")))
static void scores_i8_avx2(const float *q, const int8_t *rows, const float *scale, size_t stride, size_t count,
                           const float *bias, float *out) {
    size_t r = 0;
    for (; r + 4 <= count; r += 4) {
        const int8_t *r0 = rows + r * stride, *r1 = r0 + stride, *r2 = r1 + stride, *r3 = r2 + stride;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps(), b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
        for (size_t c = 0; c < stride; c += 16) {
            __m256 x = _mm256_loadu_ps(q + c), y = _mm256_loadu_ps(q + c + 8);
            __m128i v0 = _mm_loadu_si128((const __m128i *)(r0 + c)), v1 = _mm_loadu_si128((const __m128i *)(r1 + c));
            __m128i v2 = _mm_loadu_si128((const __m128i *)(r2 + c)), v3 = _mm_loadu_si128((const __m128i *)(r3 + c));
            a0 = _mm256_fmadd_ps(x, bytes8(v0), a0);
            a1 = _mm256_fmadd_ps(x, bytes8(v1), a1);
            a2 = _mm256_fmadd_ps(x, bytes8(v2), a2);
            a3 = _mm256_fmadd_ps(x, bytes8(v3), a3);
            b0 = _mm256_fmadd_ps(y, bytes8(_mm_unpackhi_epi64(v0, v0)), b0);
            b1 = _mm256_fmadd_ps(y, bytes8(_mm_unpackhi_epi64(v1, v1)), b1);
            b2 = _mm256_fmadd_ps(y, bytes8(_mm_unpackhi_epi64(v2, v2)), b2);
            b3 = _mm256_fmadd_ps(y, bytes8(_mm_unpackhi_epi64(v3, v3)), b3);
        }
        __m128 s = reduce4(_mm256_add_ps(a0, b0), _mm256_add_ps(a1, b1), _mm256_add_ps(a2, b2), _mm256_add_ps(a3, b3));
        s = _mm_mul_ps(s, _mm_loadu_ps(scale + r));
        if (bias) s = _mm_add_ps(s, _mm_loadu_ps(bias + r));
        _mm_storeu_ps(out + r, s);
    }
    for (; r < count; r++) {
        const int8_t *row = rows + r * stride;
        __m256 a = _mm256_setzero_ps();
        for (size_t c = 0; c < stride; c += 8)
            a = _mm256_fmadd_ps(_mm256_loadu_ps(q + c), bytes8(_mm_loadl_epi64((const __m128i *)(row + c))), a);
        float s = reduce1(a) * scale[r];
        out[r] = bias ? s + bias[r] : s;
    }
}
#endif

// MARK: Entry points

void mfrec_scores_f16(const float *q, const uint16_t *rows, size_t stride, size_t count, const float *bias,
                      float *out) {
#ifdef MFREC_X86
    if (mfrec_kernels_f16c()) {
        scores_f16_avx2(q, rows, stride, count, bias, out);
        return;
    }
#endif
    scores_f16_portable(q, rows, stride, count, bias, out);
}

void mfrec_scores_i8(const float *q, const int8_t *rows, const float *scale, size_t stride, size_t count,
                     const float *bias, float *out) {
#ifdef MFREC_X86
    if (mfrec_use_avx2()) {
        scores_i8_avx2(q, rows, scale, stride, count, bias, out);
        return;
    }
#endif
    scores_i8_portable(q, rows, scale, stride, count, bias, out);
}
