// The reduced-precision scans of the item matrix's scan copy (`train --item-precision f16|i8`): each row is
// `stride` IEEE half floats, or `stride` signed bytes with one float scale per row. They only pick candidates,
// which the caller re-scores exactly from the f32 rows, so unlike scan.c's kernels they need not agree bit for
// bit with each other. The F16C/AVX2+FMA versions score four rows at a time (two accumulators each, so eight
// independent FMA chains) and are chosen at run time; the portable ones are plain C.
#include "mfrec_kernels.h"
#include "prefetch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define MFREC_X86 1
#endif

int mfrec_use_avx2(void);

static atomic_int has_f16c = 0, has_avx512 = 0, has_vnni = 0;
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;

static void detect(void) {
#ifdef MFREC_X86
    __builtin_cpu_init();
    atomic_store(&has_f16c, __builtin_cpu_supports("f16c") ? 1 : 0);
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
    atomic_store(&has_avx512, avx512 && __builtin_cpu_supports("f16c") ? 1 : 0);
    atomic_store(&has_vnni, avx512 && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") ? 1 : 0);
#endif
}

static _Thread_local int level_cap = 2;  // per thread, like mfrec_kernels_force_portable

void mfrec_kernels_cap_level(int level) { level_cap = level < 0 ? 0 : (level > 2 ? 2 : level); }

// 0: portable, 1: AVX2+FMA, 2: AVX-512F (scan.c's block kernel for `recommend --all`).
int mfrec_kernels_block_level(void) {
    pthread_once(&detect_once, detect);
    if (!mfrec_use_avx2()) return 0;
    int level = atomic_load(&has_avx512) ? 2 : 1;
    return level < level_cap ? level : level_cap;
}

// 0: portable, 1: AVX2 (+F16C for f16), 2: AVX-512 (f16) or AVX-512 VNNI (i8).
int mfrec_kernels_reduced_level(int bytes) {
    pthread_once(&detect_once, detect);
    if (!mfrec_use_avx2()) return 0;
    int level = bytes == 2 ? (atomic_load(&has_avx512) ? 2 : (atomic_load(&has_f16c) ? 1 : 0))
                           : (atomic_load(&has_vnni) ? 2 : 1);
    return level < level_cap ? level : level_cap;
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

static void scores_i8_portable(const int8_t *q, float qscale, const int8_t *rows, const float *scale, size_t stride,
                               size_t count, const float *bias, float *out) {
    for (size_t r = 0; r < count; r++) {
        const int8_t *row = rows + r * stride;
        int32_t acc = 0;
        for (size_t c = 0; c < stride; c++) acc += (int32_t)q[c] * (int32_t)row[c];
        float s = (float)acc * (qscale * scale[r]);
        out[r] = bias ? s + bias[r] : s;
    }
}

// MARK: F16C / AVX2 + FMA

#ifdef MFREC_X86
// Each step of these kernels asks for the rows 16 ahead of it (`mfrec_prefetch_ahead`).
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

// Runs BODY(width, ...) with the row width as a constant for the common widths (32, 64, 128, 256 values), so that
// each gets its own compiled copy of an always-inline body without masks or chunk loops, and with `stride` otherwise.
#define MFREC_BY_WIDTH(BODY, ...)                                                                                 \
    switch (stride) {                                                                                            \
    case 32: BODY(32, __VA_ARGS__); return;                                                                      \
    case 64: BODY(64, __VA_ARGS__); return;                                                                      \
    case 128: BODY(128, __VA_ARGS__); return;                                                                    \
    case 256: BODY(256, __VA_ARGS__); return;                                                                    \
    default: BODY(stride, __VA_ARGS__); return;                                                                  \
    }

// Inlined once per common row width, as the AVX-512 bodies below.
__attribute__((target("avx2,fma,f16c"), always_inline))
static inline void f16_avx2_body(size_t stride, const float *q, const uint16_t *rows, size_t count, const float *bias,
                                 float *out) {
    size_t r = 0;
    for (; r + 4 <= count; r += 4) {
        const uint16_t *r0 = rows + r * stride, *r1 = r0 + stride, *r2 = r1 + stride, *r3 = r2 + stride;
        mfrec_prefetch_ahead(r0, 16 * stride * 2, 4 * stride * 2);
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

__attribute__((target("avx2,fma,f16c")))
static void scores_f16_avx2(const float *q, const uint16_t *rows, size_t stride, size_t count, const float *bias,
                            float *out) {
    MFREC_BY_WIDTH(f16_avx2_body, q, rows, count, bias, out)
}

// 32 bytes of a row (or its last 16, zero-extended), times the signs of the query's bytes: with |q| as the
// unsigned operand, maddubs/dpbusd then sum q·row exactly (|q|, |row| ≤ 127, so no pair saturates int16).
__attribute__((target("avx2,fma")))
static inline __m256i load_i8(const int8_t *p, size_t rest) {
    return rest >= 32 ? _mm256_loadu_si256((const __m256i *)p)
                      : _mm256_inserti128_si256(_mm256_setzero_si256(), _mm_loadu_si128((const __m128i *)p), 0);
}

#define MFREC_I8_KERNEL(NAME, TARGET, STEP)                                                                         \
    __attribute__((target(TARGET))) static void NAME(const int8_t *q, float qscale, const int8_t *rows,             \
                                                     const float *scale, size_t stride, size_t count,             \
                                                     const float *bias, float *out) {                             \
        const __m256i ones = _mm256_set1_epi16(1);                                                                \
        (void)ones;                                                                                               \
        size_t r = 0;                                                                                             \
        for (; r < count; r += 4) {                                                                               \
            size_t n = count - r < 4 ? count - r : 4;                                                             \
            const int8_t *row[4];                                                                                 \
            for (size_t j = 0; j < 4; j++) row[j] = rows + (r + (j < n ? j : 0)) * stride;                         \
            mfrec_prefetch_ahead(rows + r * stride, 16 * stride, 4 * stride);                                      \
            __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),             \
                              _mm256_setzero_si256()};                                                            \
            for (size_t c = 0; c < stride; c += 32) {                                                             \
                __m256i qv = load_i8(q + c, stride - c), qa = _mm256_abs_epi8(qv);                                 \
                for (int j = 0; j < 4; j++) {                                                                     \
                    __m256i sv = _mm256_sign_epi8(load_i8(row[j] + c, stride - c), qv);                            \
                    STEP;                                                                                         \
                }                                                                                                 \
            }                                                                                                     \
            __m128 s = reduce4(_mm256_cvtepi32_ps(acc[0]), _mm256_cvtepi32_ps(acc[1]), _mm256_cvtepi32_ps(acc[2]), \
                               _mm256_cvtepi32_ps(acc[3]));                                                       \
            float v[4];                                                                                           \
            _mm_storeu_ps(v, s);                                                                                  \
            for (size_t j = 0; j < n; j++) {                                                                      \
                float x = v[j] * (qscale * scale[r + j]);                                                         \
                out[r + j] = bias ? x + bias[r + j] : x;                                                          \
            }                                                                                                     \
        }                                                                                                         \
    }

MFREC_I8_KERNEL(scores_i8_avx2, "avx2,fma",
                acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(_mm256_maddubs_epi16(qa, sv), ones)))
MFREC_I8_KERNEL(scores_i8_vnni, "avx2,fma,avx512f,avx512vl,avx512vnni", acc[j] = _mm256_dpbusd_epi32(acc[j], qa, sv))

// AVX2, eight rows at a time for rows of at most 64 bytes (k ≤ 64): the query's two 32-byte halves stay in registers
// as |q| and its signs, eight 32-bit accumulators keep eight rows' loads in flight, and one tree reduces them.
__attribute__((target("avx2,fma")))
static inline __m256i sum8x256(const __m256i *a) {
    __m256i g0 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[0], a[1]), _mm256_hadd_epi32(a[2], a[3]));
    __m256i g1 = _mm256_hadd_epi32(_mm256_hadd_epi32(a[4], a[5]), _mm256_hadd_epi32(a[6], a[7]));
    return _mm256_add_epi32(_mm256_permute2x128_si256(g0, g1, 0x20), _mm256_permute2x128_si256(g0, g1, 0x31));
}

// Inlined once per row width (see MFREC_BY_WIDTH; this kernel takes rows of at most 64 bytes).
__attribute__((target("avx2,fma"), always_inline))
static inline void i8_avx2_rows8_body(size_t stride, const int8_t *q, float qscale, const int8_t *rows,
                                      const float *scale, size_t count, const float *bias, float *out) {
    const __m256i ones = _mm256_set1_epi16(1);
    size_t chunks = (stride + 31) / 32;  // 1 or 2
    __m256i qv0 = load_i8(q, stride), qv1 = chunks > 1 ? load_i8(q + 32, stride - 32) : _mm256_setzero_si256();
    __m256i qa0 = _mm256_abs_epi8(qv0), qa1 = _mm256_abs_epi8(qv1);
    const __m256 qs = _mm256_set1_ps(qscale);
    size_t r = 0;
    for (; r + 8 <= count; r += 8) {
        const int8_t *base = rows + r * stride;
        mfrec_prefetch_ahead(base, 16 * stride, 8 * stride);
        __m256i acc[8];
        for (int j = 0; j < 8; j++) {
            const int8_t *row = base + j * stride;
            __m256i x = _mm256_sign_epi8(load_i8(row, stride), qv0);
            acc[j] = _mm256_madd_epi16(_mm256_maddubs_epi16(qa0, x), ones);
            if (chunks > 1) {
                __m256i y = _mm256_sign_epi8(load_i8(row + 32, stride - 32), qv1);
                acc[j] = _mm256_add_epi32(acc[j], _mm256_madd_epi16(_mm256_maddubs_epi16(qa1, y), ones));
            }
        }
        __m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(sum8x256(acc)), _mm256_mul_ps(qs, _mm256_loadu_ps(scale + r)));
        if (bias) s = _mm256_add_ps(s, _mm256_loadu_ps(bias + r));
        _mm256_storeu_ps(out + r, s);
    }
    if (r < count)
        scores_i8_avx2(q, qscale, rows + r * stride, scale + r, stride, count - r, bias ? bias + r : NULL, out + r);
}

__attribute__((target("avx2,fma")))
static void scores_i8_avx2_rows8(const int8_t *q, float qscale, const int8_t *rows, const float *scale, size_t stride,
                                 size_t count, const float *bias, float *out) {
    MFREC_BY_WIDTH(i8_avx2_rows8_body, q, qscale, rows, scale, count, bias, out)
}

// AVX-512 VNNI on 64 bytes a step, eight rows at a time: the query's bytes as |q| (unsigned) and the mask of its
// negative lanes, each row's bytes negated under that mask (what sign_epi8 does, which has no 512-bit form; |row|
// ≤ 127, so no byte overflows), then dpbusd sums |q|·±row = q·row exactly in 32-bit lanes. Eight independent
// accumulators keep the loads of eight rows in flight; the sums are reduced eight at a time.
#define MFREC_I8_CHUNKS 16  // 1,024 bytes of query: wider rows take the 256-bit kernel

// Eight rows' 16-lane sums reduced to one lane each without horizontal adds (which cost three micro-ops each):
// rows paired by 256-bit halves, then by 128-bit blocks, then within the blocks, so that block b holds row b's sum in
// lane 0 and row b + 4's in lane 1; one permutation puts row j's sum in lane j of the low 256 bits. The moves are the
// same for 32-bit integers and floats; `floats` picks the adds (a constant at each call, so only one kind is compiled).
__attribute__((target("avx2,fma,avx512f,avx512vl")))
static inline __m512i add32x16(__m512i a, __m512i b, int floats) {
    return floats ? _mm512_castps_si512(_mm512_add_ps(_mm512_castsi512_ps(a), _mm512_castsi512_ps(b)))
                  : _mm512_add_epi32(a, b);
}

__attribute__((target("avx2,fma,avx512f,avx512vl")))
static inline __m256i sum8x16(const __m512i *a, int floats) {
    __m512i t[4];
    for (int j = 0; j < 4; j++)
        t[j] = add32x16(_mm512_shuffle_i32x4(a[2 * j], a[2 * j + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                        _mm512_shuffle_i32x4(a[2 * j], a[2 * j + 1], _MM_SHUFFLE(3, 2, 3, 2)), floats);
    __m512i u0 = add32x16(_mm512_shuffle_i32x4(t[0], t[1], _MM_SHUFFLE(2, 0, 2, 0)),
                          _mm512_shuffle_i32x4(t[0], t[1], _MM_SHUFFLE(3, 1, 3, 1)), floats);
    __m512i u1 = add32x16(_mm512_shuffle_i32x4(t[2], t[3], _MM_SHUFFLE(2, 0, 2, 0)),
                          _mm512_shuffle_i32x4(t[2], t[3], _MM_SHUFFLE(3, 1, 3, 1)), floats);
    __m512i v = add32x16(_mm512_unpacklo_epi32(u0, u1), _mm512_unpackhi_epi32(u0, u1), floats);
    __m512i w = add32x16(v, _mm512_shuffle_epi32(v, _MM_PERM_BADC), floats);
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_castsi512_si256(_mm512_permutexvar_epi32(order, w));
}

// The kernel's body, inlined into `scores_i8_vnni512` once per common row width: with the width a constant the
// compiler drops the masks and the chunk loop (stride 64 measured 42 → 34 µs for 59,047 rows in C).
__attribute__((target("avx2,fma,avx512f,avx512vl,avx512bw,avx512vnni"), always_inline))
static inline void i8_vnni512_body(size_t stride, const int8_t *q, float qscale, const int8_t *rows,
                                   const float *scale, size_t count, const float *bias, float *out) {
    size_t chunks = (stride + 63) / 64;
    __m512i qa[MFREC_I8_CHUNKS];
    __mmask64 neg[MFREC_I8_CHUNKS], valid[MFREC_I8_CHUNKS];
    for (size_t c = 0; c < chunks; c++) {
        size_t rest = stride - c * 64;
        valid[c] = rest >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << rest) - 1);
        __m512i qv = _mm512_maskz_loadu_epi8(valid[c], q + c * 64);
        qa[c] = _mm512_abs_epi8(qv);
        neg[c] = _mm512_movepi8_mask(qv);
    }
    const __m512i zero = _mm512_setzero_si512();
    const __m256 qs = _mm256_set1_ps(qscale);
    size_t r = 0;
    for (; r + 8 <= count; r += 8) {
        const int8_t *base = rows + r * stride;
        mfrec_prefetch_ahead(base, 16 * stride, 8 * stride);
        __m512i acc[8];
        for (int j = 0; j < 8; j++) acc[j] = zero;
        for (size_t c = 0; c < chunks; c++)
            for (int j = 0; j < 8; j++) {
                __m512i x = _mm512_maskz_loadu_epi8(valid[c], base + j * stride + c * 64);
                x = _mm512_mask_sub_epi8(x, neg[c], zero, x);
                acc[j] = _mm512_dpbusd_epi32(acc[j], qa[c], x);
            }
        __m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(sum8x16(acc, 0)), _mm256_mul_ps(qs, _mm256_loadu_ps(scale + r)));
        if (bias) s = _mm256_add_ps(s, _mm256_loadu_ps(bias + r));
        _mm256_storeu_ps(out + r, s);
    }
    if (r < count)
        scores_i8_vnni(q, qscale, rows + r * stride, scale + r, stride, count - r, bias ? bias + r : NULL, out + r);
}

__attribute__((target("avx2,fma,avx512f,avx512vl,avx512bw,avx512vnni")))
static void scores_i8_vnni512(const int8_t *q, float qscale, const int8_t *rows, const float *scale, size_t stride,
                              size_t count, const float *bias, float *out) {
    MFREC_BY_WIDTH(i8_vnni512_body, q, qscale, rows, scale, count, bias, out)
}

// Eight rows at a time, 16 halves per step (eight independent accumulators keep eight rows' loads in flight); the
// eight 16-lane sums are reduced together by `sum8f512`.
__attribute__((target("avx2,fma,f16c,avx512f,avx512vl")))
static inline __m256 sum8f512(const __m512 *a) {
    __m512i bits[8];
    for (int j = 0; j < 8; j++) bits[j] = _mm512_castps_si512(a[j]);
    return _mm256_castsi256_ps(sum8x16(bits, 1));
}

// Inlined once per common row width, as the i8 body above.
__attribute__((target("avx2,fma,f16c,avx512f,avx512vl"), always_inline))
static inline void f16_avx512_body(size_t stride, const float *q, const uint16_t *rows, size_t count,
                                   const float *bias, float *out) {
    size_t r = 0;
    for (; r + 8 <= count; r += 8) {
        const uint16_t *base = rows + r * stride;
        mfrec_prefetch_ahead(base, 16 * stride * 2, 8 * stride * 2);
        __m512 a[8];
        for (int j = 0; j < 8; j++) a[j] = _mm512_setzero_ps();
        for (size_t c = 0; c < stride; c += 16) {
            __m512 x = _mm512_loadu_ps(q + c);
            for (int j = 0; j < 8; j++)
                a[j] = _mm512_fmadd_ps(x, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(base + j * stride + c))),
                                       a[j]);
        }
        __m256 s = sum8f512(a);
        if (bias) s = _mm256_add_ps(s, _mm256_loadu_ps(bias + r));
        _mm256_storeu_ps(out + r, s);
    }
    if (r < count) scores_f16_avx2(q, rows + r * stride, stride, count - r, bias ? bias + r : NULL, out + r);
}

__attribute__((target("avx2,fma,f16c,avx512f,avx512vl")))
static void scores_f16_avx512(const float *q, const uint16_t *rows, size_t stride, size_t count, const float *bias,
                              float *out) {
    MFREC_BY_WIDTH(f16_avx512_body, q, rows, count, bias, out)
}
#endif

// MARK: Entry points

void mfrec_scores_f16(const float *q, const uint16_t *rows, size_t stride, size_t count, const float *bias,
                      float *out) {
#ifdef MFREC_X86
    switch (mfrec_kernels_reduced_level(2)) {
    case 2: scores_f16_avx512(q, rows, stride, count, bias, out); return;
    case 1: scores_f16_avx2(q, rows, stride, count, bias, out); return;
    default: break;
    }
#endif
    scores_f16_portable(q, rows, stride, count, bias, out);
}

void mfrec_scores_i8(const int8_t *q, float qscale, const int8_t *rows, const float *scale, size_t stride,
                     size_t count, const float *bias, float *out) {
#ifdef MFREC_X86
    switch (mfrec_kernels_reduced_level(1)) {
    case 2:
        if ((stride + 63) / 64 <= MFREC_I8_CHUNKS) scores_i8_vnni512(q, qscale, rows, scale, stride, count, bias, out);
        else scores_i8_vnni(q, qscale, rows, scale, stride, count, bias, out);
        return;
    case 1:
        if (stride <= 64) scores_i8_avx2_rows8(q, qscale, rows, scale, stride, count, bias, out);
        else scores_i8_avx2(q, qscale, rows, scale, stride, count, bias, out);
        return;
    default: break;
    }
#endif
    scores_i8_portable(q, qscale, rows, scale, stride, count, bias, out);
}

// MARK: Selection

#ifdef MFREC_X86
__attribute__((target("avx2,fma")))
static size_t select_ge_avx2(const float *scores, size_t count, float threshold, uint32_t *index) {
    size_t found = 0, r = 0;
    __m256 t = _mm256_set1_ps(threshold);
    for (; r + 8 <= count; r += 8) {
        unsigned mask = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(scores + r), t, _CMP_GE_OQ));
        while (mask) {
            index[found++] = (uint32_t)(r + (size_t)__builtin_ctz(mask));
            mask &= mask - 1;
        }
    }
    for (; r < count; r++)
        if (scores[r] >= threshold) index[found++] = (uint32_t)r;
    return found;
}
#endif

size_t mfrec_select_ge(const float *scores, size_t count, float threshold, uint32_t *index) {
#ifdef MFREC_X86
    if (mfrec_use_avx2()) return select_ge_avx2(scores, count, threshold, index);
#endif
    size_t found = 0;
    for (size_t r = 0; r < count; r++)
        if (scores[r] >= threshold) index[found++] = (uint32_t)r;
    return found;
}
