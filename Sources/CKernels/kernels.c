// Kernel selection, the SGD training loop and the co-occurrence scatter. The portable versions are plain C
// the compiler vectorizes for the baseline target; the AVX2+FMA versions are compiled for that target only
// and chosen at run time, so the binary still runs on CPUs without AVX2. The scan kernels are in scan.c.
#include "mfrec_kernels.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define MFREC_X86 1
#endif

// Whether the AVX2+FMA kernels run: detected once (pthread_once, so concurrent first calls agree), unless
// MFREC_PORTABLE_KERNELS=1 in the environment or mfrec_kernels_force_portable(1) chose the portable ones.
static atomic_int use_avx2 = 0;
static _Thread_local int forced_portable = 0;  // per thread: a test's choice does not reach other threads
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;

static void detect(void) {
    int supported = 0;
#ifdef MFREC_X86
    __builtin_cpu_init();
    supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    const char *portable = getenv("MFREC_PORTABLE_KERNELS");
    if (portable && portable[0] == '1') supported = 0;
    atomic_store(&use_avx2, supported);
}

static int vectorized(void) {
    pthread_once(&detect_once, detect);
    return atomic_load(&use_avx2) && !forced_portable;
}

int mfrec_kernels_vectorized(void) { return vectorized(); }

uint64_t mfrec_load_u64_acquire(const void *p) { return __atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE); }

void mfrec_kernels_force_portable(int portable) { forced_portable = portable ? 1 : 0; }

int mfrec_use_avx2(void) { return vectorized(); }

/// The scalar part of one SGD step, shared by both kernels: the error of the prediction (before the
/// update) and the bias updates. Returns the error. (The error sums stay in the callers' registers:
/// accumulating through pointers here cost 10–20% of the loop.)
static inline __attribute__((always_inline))
float sgd_error_and_biases(float dot, float rating, int32_t u, int32_t i, float *bu, float *bi,
                           float lr, float reg_b, float mean, int use_bias) {
    float pred = use_bias ? mean + bu[u] + bi[i] + dot : dot;
    float e = rating - pred;
    if (use_bias) {
        bu[u] += lr * (e - reg_b * bu[u]);
        bi[i] += lr * (e - reg_b * bi[i]);
    }
    return e;
}

static void sgd_portable(const int32_t *users, const int32_t *items, const float *ratings, size_t count,
                         float *P, float *Q, float *bu, float *bi, size_t stride,
                         float lr, float reg_p, float reg_q, float reg_b, float mean, int use_bias, int nonneg,
                         double *sq, double *ab) {
    double s = 0, a = 0;
    for (size_t j = 0; j < count; j++) {
        float *p = P + (size_t)users[j] * stride, *q = Q + (size_t)items[j] * stride;
        float dot = 0;
        for (size_t f = 0; f < stride; f++) dot += p[f] * q[f];
        float e = sgd_error_and_biases(dot, ratings[j], users[j], items[j], bu, bi, lr, reg_b, mean, use_bias);
        s += (double)(e * e);
        a += (double)(e < 0 ? -e : e);
        float dp = 1 - lr * reg_p, dq = 1 - lr * reg_q, le = lr * e;
        for (size_t f = 0; f < stride; f++) {
            float pv = p[f], qv = q[f];
            float np = dp * pv + le * qv, nq = dq * qv + le * pv;
            if (nonneg) { np = np < 0 ? 0 : np; nq = nq < 0 ? 0 : nq; }
            p[f] = np; q[f] = nq;
        }
    }
    *sq += s; *ab += a;
}

#ifdef MFREC_X86
__attribute__((target("avx2,fma")))
static inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    return _mm_cvtss_f32(lo);
}

void mfrec_prefetch_rows(const float *a, const float *b, size_t bytes) {
    for (size_t offset = 0; offset < bytes; offset += 64) {
        __builtin_prefetch((const char *)a + offset);
        __builtin_prefetch((const char *)b + offset);
    }
}

// The read bound the scans are measured against (mfrec-bench): every float of `count` read once and nothing else:
// 1 KiB a step as four interleaved 256-byte streams (four f32 rows of k = 64, as the scans take them) into
// independent sums, each step asking for the lines 4 KiB ahead as the scan kernels ask for theirs (the reduced-precision
// ones 16 rows ahead, the one-user f32 scan 32 rows). A bound, not a copy of any one scan's loop.
#if defined(__x86_64__)
__attribute__((target("avx2")))
static float read_floats_avx2(const float *p, size_t count) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 256 <= count; i += 256) {
        const float *b = p + i;
        for (size_t x = 0; x < 1024; x += 64) __builtin_prefetch((const char *)b + 4096 + x);
        for (int c = 0; c < 64; c += 8) {
            a0 = _mm256_add_ps(a0, _mm256_loadu_ps(b + c));
            a1 = _mm256_add_ps(a1, _mm256_loadu_ps(b + 64 + c));
            a2 = _mm256_add_ps(a2, _mm256_loadu_ps(b + 128 + c));
            a3 = _mm256_add_ps(a3, _mm256_loadu_ps(b + 192 + c));
        }
    }
    float lanes[8], s = 0;
    _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (int j = 0; j < 8; j++) s += lanes[j];
    for (; i < count; i++) s += p[i];
    return s;
}
#endif

float mfrec_read_floats(const float *p, size_t count) {
#if defined(__x86_64__)
    if (mfrec_use_avx2()) return read_floats_avx2(p, count);
#endif
    float a[8] = {0};
    size_t i = 0;
    for (; i + 8 <= count; i += 8)
        for (int j = 0; j < 8; j++) a[j] += p[i + j];
    float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    for (; i < count; i++) s += p[i];
    return s;
}

// How many ratings ahead the SGD kernel prefetches the rows it will update.
#define MFREC_SGD_AHEAD 4

__attribute__((target("avx2,fma")))
static void sgd_avx2(const int32_t *users, const int32_t *items, const float *ratings, size_t count,
                     float *P, float *Q, float *bu, float *bi, size_t stride,
                     float lr, float reg_p, float reg_q, float reg_b, float mean, int use_bias, int nonneg,
                     double *sq, double *ab) {
    double s = 0, a = 0;
    const __m256 dp = _mm256_set1_ps(1 - lr * reg_p), dq = _mm256_set1_ps(1 - lr * reg_q), zero = _mm256_setzero_ps();
    for (size_t j = 0; j < count; j++) {
        if (j + MFREC_SGD_AHEAD < count) {  // every line of the rows a few ratings ahead: hide the memory latency
            const char *pa = (const char *)(P + (size_t)users[j + MFREC_SGD_AHEAD] * stride);
            const char *qa = (const char *)(Q + (size_t)items[j + MFREC_SGD_AHEAD] * stride);
            for (size_t b = 0; b < stride * sizeof(float); b += 64) {
                _mm_prefetch(pa + b, _MM_HINT_T0);
                _mm_prefetch(qa + b, _MM_HINT_T0);
            }
        }
        float *p = P + (size_t)users[j] * stride, *q = Q + (size_t)items[j] * stride;
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        size_t f = 0;
        for (; f + 16 <= stride; f += 16) {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(p + f), _mm256_loadu_ps(q + f), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(p + f + 8), _mm256_loadu_ps(q + f + 8), acc1);
        }
        if (f < stride) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(p + f), _mm256_loadu_ps(q + f), acc0);
        float dot = hsum256(_mm256_add_ps(acc0, acc1));
        float e = sgd_error_and_biases(dot, ratings[j], users[j], items[j], bu, bi, lr, reg_b, mean, use_bias);
        s += (double)(e * e);
        a += (double)(e < 0 ? -e : e);
        const __m256 le = _mm256_set1_ps(lr * e);
        for (f = 0; f < stride; f += 8) {
            __m256 pv = _mm256_loadu_ps(p + f), qv = _mm256_loadu_ps(q + f);
            __m256 np = _mm256_fmadd_ps(le, qv, _mm256_mul_ps(dp, pv));
            __m256 nq = _mm256_fmadd_ps(le, pv, _mm256_mul_ps(dq, qv));
            if (nonneg) { np = _mm256_max_ps(np, zero); nq = _mm256_max_ps(nq, zero); }
            _mm256_storeu_ps(p + f, np);
            _mm256_storeu_ps(q + f, nq);
        }
    }
    *sq += s; *ab += a;
}
#endif

void mfrec_sgd_block(const int32_t *users, const int32_t *items, const float *ratings, size_t count,
                     float *P, float *Q, float *user_bias, float *item_bias, size_t stride,
                     float lr, float reg_p, float reg_q, float reg_b, float mean, int use_bias, int nonnegative,
                     double *sq, double *ab) {
#ifdef MFREC_X86
    if (vectorized()) {
        sgd_avx2(users, items, ratings, count, P, Q, user_bias, item_bias, stride, lr, reg_p, reg_q, reg_b, mean,
                 use_bias, nonnegative, sq, ab);
        return;
    }
#endif
    sgd_portable(users, items, ratings, count, P, Q, user_bias, item_bias, stride, lr, reg_p, reg_q, reg_b, mean,
                 use_bias, nonnegative, sq, ab);
}

// Sparse scatter-add for the co-occurrence embedding: out[to[r]] += weight[weight_index[r]] * in[from[r]],
// rows of `width` floats. The rows are picked at random, so the loop waits on memory: the rows needed a
// few iterations ahead are prefetched.
#define MFREC_PREFETCH_AHEAD 8

static void scatter_portable(const int32_t *from, const int32_t *to, const int32_t *weight_index, const float *weight,
                             size_t count, const float *in, float *out, size_t width) {
    for (size_t r = 0; r < count; r++) {
        if (r + MFREC_PREFETCH_AHEAD < count) {
            __builtin_prefetch(in + (size_t)from[r + MFREC_PREFETCH_AHEAD] * width);
            __builtin_prefetch(out + (size_t)to[r + MFREC_PREFETCH_AHEAD] * width, 1);
        }
        const float w = weight[weight_index[r]];
        const float *src = in + (size_t)from[r] * width;
        float *dst = out + (size_t)to[r] * width;
        for (size_t c = 0; c < width; c++) dst[c] += w * src[c];
    }
}

#ifdef MFREC_X86
__attribute__((target("avx2,fma")))
static void scatter_avx2(const int32_t *from, const int32_t *to, const int32_t *weight_index, const float *weight,
                         size_t count, const float *in, float *out, size_t width) {
    const size_t wide = width & ~(size_t)7;
    for (size_t r = 0; r < count; r++) {
        if (r + MFREC_PREFETCH_AHEAD < count) {
            const float *a = in + (size_t)from[r + MFREC_PREFETCH_AHEAD] * width;
            float *b = out + (size_t)to[r + MFREC_PREFETCH_AHEAD] * width;
            for (size_t c = 0; c < width; c += 16) { __builtin_prefetch(a + c); __builtin_prefetch(b + c, 1); }
        }
        const float w = weight[weight_index[r]];
        const __m256 wv = _mm256_set1_ps(w);
        const float *src = in + (size_t)from[r] * width;
        float *dst = out + (size_t)to[r] * width;
        size_t c = 0;
        for (; c < wide; c += 8) _mm256_storeu_ps(dst + c, _mm256_fmadd_ps(wv, _mm256_loadu_ps(src + c), _mm256_loadu_ps(dst + c)));
        for (; c < width; c++) dst[c] += w * src[c];
    }
}
#endif

void mfrec_scatter_rows(const int32_t *from, const int32_t *to, const int32_t *weight_index, const float *weight,
                        size_t count, const float *in, float *out, size_t width) {
#ifdef MFREC_X86
    if (vectorized()) {
        scatter_avx2(from, to, weight_index, weight, count, in, out, width);
        return;
    }
#endif
    scatter_portable(from, to, weight_index, weight, count, in, out, width);
}
